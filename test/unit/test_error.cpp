#include <doctest/doctest.h>
#include <ostream>

#include <set>
#include <string>

#include "wscoro/error.hpp"

using wscoro::condition;
using wscoro::error;

TEST_SUITE("error") {
    TEST_CASE("every error has its own message and the wscoro category") {
        std::error_code ec = error::bad_opcode;
        CHECK(ec.category().name() == std::string("wscoro"));
        CHECK(ec.message() == "reserved opcode");
        std::set<std::string> seen;
        for (int e = static_cast<int>(error::bad_http_request);
             e <= static_cast<int>(error::unsupported_by_version); ++e) {
            const auto msg = wscoro::make_error_code(static_cast<error>(e)).message();
            CHECK(msg != "unknown wscoro error");
            CHECK(seen.insert(msg).second);
        }
    }

    TEST_CASE("framing errors map to their close codes (RFC 6455 §7.4.1)") {
        CHECK(wscoro::close_code_for(error::bad_opcode) == 1002);
        CHECK(wscoro::close_code_for(error::bad_reserved_bits) == 1002);
        CHECK(wscoro::close_code_for(error::bad_unmasked_frame) == 1002);
        CHECK(wscoro::close_code_for(error::bad_close_code) == 1002);
        CHECK(wscoro::close_code_for(error::bad_frame_payload) == 1007);
        CHECK(wscoro::close_code_for(error::bad_close_payload) == 1007);
        CHECK(wscoro::close_code_for(error::frame_too_big) == 1009);
        CHECK(wscoro::close_code_for(error::message_too_big) == 1009);
        CHECK(wscoro::close_code_for(error::application_error) == 1011);
        CHECK(wscoro::close_code_for(error::closed) == 0);
        CHECK(wscoro::close_code_for(std::make_error_code(std::errc::io_error)) == 0);
    }

    TEST_CASE("handshake errors map to HTTP statuses") {
        CHECK(wscoro::http_status_for(error::bad_http_request) == 400);
        CHECK(wscoro::http_status_for(error::request_line_too_long) == 414);
        CHECK(wscoro::http_status_for(error::headers_too_large) == 431);
        CHECK(wscoro::http_status_for(error::bad_method) == 405);
        CHECK(wscoro::http_status_for(error::bad_http_version) == 505);
        CHECK(wscoro::http_status_for(error::no_upgrade) == 426);
        CHECK(wscoro::http_status_for(error::bad_sec_version) == 426);
        CHECK(wscoro::http_status_for(error::no_sec_key) == 400);
        CHECK(wscoro::http_status_for(error::bad_opcode) == 0);
    }

    TEST_CASE("conditions group the errors") {
        CHECK(std::error_code(error::bad_opcode) == condition::protocol_violation);
        CHECK(std::error_code(error::bad_close_size) == condition::protocol_violation);
        CHECK(std::error_code(error::bad_frame_payload) == condition::invalid_data);
        CHECK(std::error_code(error::message_too_big) == condition::message_too_big);
        CHECK(std::error_code(error::no_sec_key) == condition::handshake_failed);
        CHECK(std::error_code(error::handshake_timeout) == condition::timeout);
        CHECK(std::error_code(error::close_timeout) == condition::timeout);
        CHECK(std::error_code(error::closed) == condition::closed);
        CHECK(std::error_code(error::closed) != condition::protocol_violation);
        CHECK(std::error_code(error::bad_frame_payload) != condition::protocol_violation);
    }

    TEST_CASE("close codes allowed on the wire (RFC 6455 §7.4)") {
        for (unsigned c = 0; c < 70000; ++c) {
            const auto code = static_cast<std::uint16_t>(c);
            if (c > 0xFFFF) break;
            const bool expected =
                (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
            CHECK_MESSAGE(wscoro::close_code::is_valid_on_wire(code) == expected, c);
        }
    }
}
