#include "wscoro/protocol/handshake.hpp"

#include <doctest/doctest.h>

#include <ostream>  // doctest prints std::error_code through it
#include <string>
#include <string_view>
#include <vector>

#include "rfc6455_sample.hpp"
#include "split_feed.hpp"
#include "wscoro/error.hpp"

using namespace std::literals;
using wscoro::error;
using wscoro::protocol::accept_response;
using wscoro::protocol::check_accept_response;
using wscoro::protocol::check_upgrade;
using wscoro::protocol::client_request;
using wscoro::protocol::compute_accept_key;
using wscoro::protocol::error_response;
using wscoro::protocol::generate_key;
using wscoro::protocol::http_header;
using wscoro::protocol::http_request;
using wscoro::protocol::http_request_parser;
using wscoro::protocol::reason_phrase;
using wscoro::protocol::reject_response;

namespace {

constexpr std::string_view rfc_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view rfc_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// RFC 6455 §1.2 / §1.3: the sample client handshake.
constexpr std::string_view rfc_request = wscoro_test::rfc6455_request;

// RFC 6455 §1.2: the sample server handshake answering it.
constexpr std::string_view rfc_response = wscoro_test::rfc6455_response;

// Parses a complete head whole, split in two at every byte boundary and byte by byte; all
// must succeed identically. Returns the request.
http_request parse(std::string_view head) {
    auto feed = [&](const std::vector<std::size_t>& cuts) {
        http_request_parser parser;
        std::size_t pos = 0;
        std::size_t consumed = 0;
        for (const auto cut : cuts) {
            consumed += parser.feed(head.substr(pos, cut - pos));
            pos = cut;
        }
        consumed += parser.feed(head.substr(pos));
        CHECK(parser.done());
        CHECK(consumed == head.size());
        return std::move(parser).take_request();
    };
    auto same = [](const http_request& a, const http_request& b) {
        CHECK(a.method == b.method);
        CHECK(a.target == b.target);
        CHECK(a.version_major == b.version_major);
        CHECK(a.version_minor == b.version_minor);
        REQUIRE(a.headers.size() == b.headers.size());
        for (std::size_t i = 0; i < a.headers.size(); ++i) {
            CHECK(a.headers[i].name == b.headers[i].name);
            CHECK(a.headers[i].value == b.headers[i].value);
        }
    };
    return wscoro_test::check_every_split(head.size(), 1, feed, same);
}

// A request built from the RFC sample's request line and the given field lines.
std::string request_with(std::string_view request_line, std::vector<std::string_view> fields) {
    std::string out(request_line);
    out += "\r\n";
    for (const auto f : fields) {
        out += f;
        out += "\r\n";
    }
    out += "\r\n";
    return out;
}

std::vector<std::string_view> valid_fields() {
    return {"Host: server.example.com", "Upgrade: websocket", "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"};
}

// valid_fields() with every field whose line starts with `prefix` removed, then `add` appended.
std::string valid_but(std::string_view prefix, std::vector<std::string_view> add = {}) {
    std::vector<std::string_view> fields;
    for (const auto f : valid_fields())
        if (f.substr(0, prefix.size()) != prefix) fields.push_back(f);
    fields.insert(fields.end(), add.begin(), add.end());
    return request_with("GET /chat HTTP/1.1", fields);
}

std::error_code upgrade_error(std::string_view head) {
    return check_upgrade(parse(head)).ec;
}

}  // namespace

TEST_SUITE("handshake") {
    TEST_CASE("compute_accept_key matches RFC 6455 section 1.3") {
        CHECK(compute_accept_key(rfc_key) == rfc_accept);
        // Independent vectors: base64(SHA-1(key + GUID)) computed outside this library.
        CHECK(compute_accept_key("x3JJHMbDL1EzLkh9GBhXDw==") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
        CHECK(compute_accept_key("") == "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w=");
    }

    TEST_CASE("the RFC 6455 sample request is accepted with the exact 101 response") {
        const auto request = parse(rfc_request);
        const auto check = check_upgrade(request);
        CHECK_FALSE(check.ec);
        CHECK(check.protocol_version == 13);
        const http_header protocol[] = {{"Sec-WebSocket-Protocol", "chat"}};
        CHECK(accept_response(request, protocol) == rfc_response);
        CHECK(accept_response(request) ==
              "HTTP/1.1 101 Switching Protocols\r\n"
              "Upgrade: websocket\r\n"
              "Connection: Upgrade\r\n"
              "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
              "\r\n");
        const http_header two[] = {{"Sec-WebSocket-Protocol", "chat"}, {"X-A", "b c"}};
        CHECK(accept_response(request, two) ==
              "HTTP/1.1 101 Switching Protocols\r\n"
              "Upgrade: websocket\r\n"
              "Connection: Upgrade\r\n"
              "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
              "Sec-WebSocket-Protocol: chat\r\n"
              "X-A: b c\r\n"
              "\r\n");
    }

    TEST_CASE("check_upgrade: method must be GET (405)") {
        auto post = request_with("POST /chat HTTP/1.1", valid_fields());
        CHECK(upgrade_error(post) == error::bad_method);
        CHECK(wscoro::http_status_for(error::bad_method) == 405);
        // RFC 9110 §9.1: methods are case-sensitive.
        CHECK(upgrade_error(request_with("get /chat HTTP/1.1", valid_fields())) ==
              error::bad_method);
        // The method is checked first: a POST over HTTP/1.0 without any field is still 405.
        CHECK(upgrade_error(request_with("POST /chat HTTP/1.0", {})) == error::bad_method);
        const auto check = check_upgrade(parse(post));
        CHECK(check.protocol_version == 0);
    }

    TEST_CASE("check_upgrade: HTTP/1.1 or later (505)") {
        CHECK(upgrade_error(request_with("GET /chat HTTP/1.0", valid_fields())) ==
              error::bad_http_version);
        CHECK(upgrade_error(request_with("GET /chat HTTP/0.9", valid_fields())) ==
              error::bad_http_version);
        CHECK(wscoro::http_status_for(error::bad_http_version) == 505);
        CHECK_FALSE(upgrade_error(request_with("GET /chat HTTP/1.2", valid_fields())));
        CHECK_FALSE(upgrade_error(request_with("GET /chat HTTP/2.0", valid_fields())));
        // Checked before the fields.
        CHECK(upgrade_error(request_with("GET /chat HTTP/1.0", {})) == error::bad_http_version);
    }

    TEST_CASE("check_upgrade: exactly one Host (400)") {
        CHECK(upgrade_error(valid_but("Host")) == error::no_host);
        CHECK(upgrade_error(valid_but("Host", {"Host: a", "Host: a"})) == error::no_host);
        CHECK(upgrade_error(valid_but("Nothing", {"Host: a"})) == error::no_host);
        CHECK(wscoro::http_status_for(error::no_host) == 400);
        // An empty Host is allowed by RFC 9112 §3.2 (no authority in the target URI).
        CHECK_FALSE(upgrade_error(valid_but("Host", {"Host:"})));
        // Checked before Upgrade.
        CHECK(upgrade_error(request_with("GET / HTTP/1.1", {})) == error::no_host);
    }

    TEST_CASE("check_upgrade: Upgrade must hold the websocket token (426)") {
        CHECK(upgrade_error(valid_but("Upgrade")) == error::no_upgrade);
        CHECK(upgrade_error(valid_but("Upgrade", {"Upgrade: h2c"})) == error::no_upgrade);
        CHECK(upgrade_error(valid_but("Upgrade", {"Upgrade: websockets"})) == error::no_upgrade);
        CHECK(upgrade_error(valid_but("Upgrade", {"Upgrade:"})) == error::no_upgrade);
        CHECK(upgrade_error(valid_but("Upgrade", {"X-Upgrade: websocket"})) == error::no_upgrade);
        CHECK(wscoro::http_status_for(error::no_upgrade) == 426);
        // RFC 9110 §7.8: Upgrade is a list, and tokens compare case-insensitively.
        CHECK_FALSE(upgrade_error(valid_but("Upgrade", {"Upgrade: websocket, foo"})));
        CHECK_FALSE(upgrade_error(valid_but("Upgrade", {"Upgrade: foo,WebSocket"})));
        CHECK_FALSE(upgrade_error(valid_but("Upgrade", {"Upgrade: foo", "Upgrade: websocket"})));
        // Checked before Connection.
        CHECK(upgrade_error(request_with("GET / HTTP/1.1", {"Host: a"})) == error::no_upgrade);
    }

    TEST_CASE("check_upgrade: Connection must hold the upgrade token (426)") {
        CHECK(upgrade_error(valid_but("Connection")) == error::no_connection_upgrade);
        CHECK(upgrade_error(valid_but("Connection", {"Connection: keep-alive"})) ==
              error::no_connection_upgrade);
        CHECK(upgrade_error(valid_but("Connection", {"Connection: upgraded"})) ==
              error::no_connection_upgrade);
        CHECK(wscoro::http_status_for(error::no_connection_upgrade) == 426);
        // Firefox sends "keep-alive, Upgrade"; repeated fields form one list.
        CHECK_FALSE(upgrade_error(valid_but("Connection", {"Connection: keep-alive, Upgrade"})));
        CHECK_FALSE(upgrade_error(
            valid_but("Connection", {"Connection: keep-alive", "Connection: UPGRADE"})));
        // Checked before the key.
        CHECK(upgrade_error(request_with("GET / HTTP/1.1", {"Host: a", "Upgrade: websocket"})) ==
              error::no_connection_upgrade);
    }

    TEST_CASE("check_upgrade: exactly one Sec-WebSocket-Key (400)") {
        CHECK(upgrade_error(valid_but("Sec-WebSocket-Key")) == error::no_sec_key);
        CHECK(upgrade_error(valid_but("Sec-WebSocket-Version",
                                      {"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                                       "Sec-WebSocket-Version: 13"})) == error::no_sec_key);
        CHECK(wscoro::http_status_for(error::no_sec_key) == 400);
        // Checked before the version.
        CHECK(upgrade_error(valid_but("Sec-WebSocket")) == error::no_sec_key);
    }

    TEST_CASE("check_upgrade: the key must be base64 of exactly 16 bytes (400)") {
        const std::string_view bad_keys[] = {
            "",
            "dGhlIHNhbXBsZSBub25jZQ=",       // 23 chars
            "dGhlIHNhbXBsZSBub25jZQ===",     // 25 chars
            "dGhlIHNhbXBsZSBub25jZQA=",      // 17 bytes
            "dGhlIHNhbXBsZSBub25jZQAB",      // 18 bytes, no padding
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAA",  // 20 bytes
            "dGhlIHNhbXBsZSBub25jZ!==",      // not in the alphabet
            "dGhlIHNhbXBsZSBub25jZ-==",      // base64url is not base64
            "dGhl=HNhbXBsZSBub25jZQ==",      // '=' inside the data
            "dGhlIHNh XBsZSBub25jZQ==",      // space inside
            "dGhlIHNhbXBsZSBub25jZ\x80==",   // non-ASCII
        };
        for (const auto key : bad_keys) {
            INFO("key '", std::string(key), "'");
            const std::string field = "Sec-WebSocket-Key: " + std::string(key);
            CHECK(upgrade_error(valid_but("Sec-WebSocket-Key", {field})) == error::bad_sec_key);
        }
        CHECK(wscoro::http_status_for(error::bad_sec_key) == 400);
        // Any 22 alphabet chars plus "==" is 16 bytes.
        CHECK_FALSE(upgrade_error(
            valid_but("Sec-WebSocket-Key", {"Sec-WebSocket-Key: +/+/09azAZ09azAZ09azAw=="})));
        // Surrounding OWS is not part of the value (RFC 9110 §5.5).
        CHECK_FALSE(upgrade_error(
            valid_but("Sec-WebSocket-Key", {"Sec-WebSocket-Key: \t dGhlIHNhbXBsZSBub25jZQ== "})));
    }

    TEST_CASE("check_upgrade: exactly one Sec-WebSocket-Version of 13 (426)") {
        CHECK(upgrade_error(valid_but("Sec-WebSocket-Version")) == error::bad_sec_version);
        const std::string_view bad_versions[] = {"8", "7", "013", "13, 8", "8, 13", "14", ""};
        for (const auto v : bad_versions) {
            INFO("version '", std::string(v), "'");
            const std::string field = "Sec-WebSocket-Version: " + std::string(v);
            CHECK(upgrade_error(valid_but("Sec-WebSocket-Version", {field})) ==
                  error::bad_sec_version);
        }
        CHECK(upgrade_error(valid_but("Nothing", {"Sec-WebSocket-Version: 13"})) ==
              error::bad_sec_version);
        CHECK(wscoro::http_status_for(error::bad_sec_version) == 426);
    }

    TEST_CASE("check_upgrade: field names and tokens are case-insensitive") {
        const auto head = request_with(
            "GET /chat HTTP/1.1",
            {"host: server.example.com", "UPGRADE: WebSocket", "connection: keep-alive, UPGRADE",
             "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==", "SEC-WEBSOCKET-VERSION: 13"});
        const auto request = parse(head);
        const auto check = check_upgrade(request);
        CHECK_FALSE(check.ec);
        CHECK(check.protocol_version == 13);
        CHECK(accept_response(request).find("\r\nSec-WebSocket-Accept: " + std::string(rfc_accept) +
                                            "\r\n") != std::string::npos);
        // Repeated names in other cases still count as repeats.
        CHECK(upgrade_error(valid_but("Nothing", {"HOST: other"})) == error::no_host);
        CHECK(
            upgrade_error(valid_but("Nothing", {"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ=="})) ==
            error::no_sec_key);
        CHECK(upgrade_error(valid_but("Nothing", {"sec-websocket-VERSION: 13"})) ==
              error::bad_sec_version);
    }

    TEST_CASE("check_upgrade works on a request with bare LF line ends") {
        std::string lf;
        for (char c : rfc_request)
            if (c != '\r') lf += c;
        const auto check = check_upgrade(parse(lf));
        CHECK_FALSE(check.ec);
        CHECK(check.protocol_version == 13);
    }

    TEST_CASE("reject_response: exact bytes for 426, 405 and 400") {
        CHECK(reject_response(error::bad_sec_version) ==
              "HTTP/1.1 426 Upgrade Required\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 34\r\n"
              "Connection: close\r\n"
              "Upgrade: websocket\r\n"
              "Sec-WebSocket-Version: 13\r\n"
              "\r\n"
              "unsupported Sec-WebSocket-Version\n");
        CHECK(reject_response(error::bad_method) ==
              "HTTP/1.1 405 Method Not Allowed\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 42\r\n"
              "Connection: close\r\n"
              "Allow: GET\r\n"
              "\r\n"
              "WebSocket handshake must be a GET request\n");
        CHECK(reject_response(error::no_host) ==
              "HTTP/1.1 400 Bad Request\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 32\r\n"
              "Connection: close\r\n"
              "\r\n"
              "missing or repeated Host header\n");
    }

    TEST_CASE("reject_response: status, body and extra fields for every handshake error") {
        struct row {
            error e;
            std::string_view status_line;
            std::string_view extra;
        };
        const row rows[] = {
            {error::bad_http_request, "HTTP/1.1 400 Bad Request", ""},
            {error::request_line_too_long, "HTTP/1.1 414 URI Too Long", ""},
            {error::headers_too_large, "HTTP/1.1 431 Request Header Fields Too Large", ""},
            {error::bad_method, "HTTP/1.1 405 Method Not Allowed", "Allow: GET\r\n"},
            {error::bad_http_version, "HTTP/1.1 505 HTTP Version Not Supported", ""},
            {error::no_host, "HTTP/1.1 400 Bad Request", ""},
            {error::no_upgrade, "HTTP/1.1 426 Upgrade Required",
             "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"},
            {error::no_connection_upgrade, "HTTP/1.1 426 Upgrade Required",
             "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"},
            {error::no_sec_key, "HTTP/1.1 400 Bad Request", ""},
            {error::bad_sec_key, "HTTP/1.1 400 Bad Request", ""},
            {error::bad_sec_version, "HTTP/1.1 426 Upgrade Required",
             "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"},
            {error::handshake_rejected, "HTTP/1.1 403 Forbidden", ""},
            {error::handshake_timeout, "HTTP/1.1 408 Request Timeout", ""},
            // Not a handshake error: falls back to 400.
            {error::bad_opcode, "HTTP/1.1 400 Bad Request", ""},
        };
        for (const auto& r : rows) {
            const std::error_code ec = r.e;
            INFO(ec.message());
            const std::string body = ec.message() + "\n";
            const std::string expected = std::string(r.status_line) +
                                         "\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                         "Content-Length: " +
                                         std::to_string(body.size()) + "\r\nConnection: close\r\n" +
                                         std::string(r.extra) + "\r\n" + body;
            CHECK(reject_response(ec) == expected);
        }
        const auto foreign = std::make_error_code(std::errc::invalid_argument);
        CHECK(reject_response(foreign).substr(0, 26) == "HTTP/1.1 400 Bad Request\r\n");
    }

    TEST_CASE("error_response: exact bytes with extra fields, empty body, unknown status") {
        const http_header extra[] = {{"Retry-After", "5"}, {"X-Why", "busy"}};
        CHECK(error_response(503, "try later", extra) ==
              "HTTP/1.1 503 Service Unavailable\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 9\r\n"
              "Connection: close\r\n"
              "Retry-After: 5\r\n"
              "X-Why: busy\r\n"
              "\r\n"
              "try later");
        CHECK(error_response(404, "") ==
              "HTTP/1.1 404 Not Found\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 0\r\n"
              "Connection: close\r\n"
              "\r\n");
        // RFC 9112 §4: the reason phrase may be empty, the SP before it is not optional.
        CHECK(error_response(299, "\xc3\xa9") ==
              "HTTP/1.1 299 \r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 2\r\n"
              "Connection: close\r\n"
              "\r\n"
              "\xc3\xa9");
    }

    TEST_CASE("reason_phrase knows the standard phrases") {
        CHECK(reason_phrase(101) == "Switching Protocols");
        CHECK(reason_phrase(200) == "OK");
        CHECK(reason_phrase(400) == "Bad Request");
        CHECK(reason_phrase(401) == "Unauthorized");
        CHECK(reason_phrase(403) == "Forbidden");
        CHECK(reason_phrase(404) == "Not Found");
        CHECK(reason_phrase(405) == "Method Not Allowed");
        CHECK(reason_phrase(408) == "Request Timeout");
        CHECK(reason_phrase(413) == "Content Too Large");
        CHECK(reason_phrase(414) == "URI Too Long");
        CHECK(reason_phrase(426) == "Upgrade Required");
        CHECK(reason_phrase(429) == "Too Many Requests");
        CHECK(reason_phrase(431) == "Request Header Fields Too Large");
        CHECK(reason_phrase(500) == "Internal Server Error");
        CHECK(reason_phrase(501) == "Not Implemented");
        CHECK(reason_phrase(503) == "Service Unavailable");
        CHECK(reason_phrase(505) == "HTTP Version Not Supported");
        CHECK(reason_phrase(0) == "");
        CHECK(reason_phrase(299) == "");
        CHECK(reason_phrase(-400) == "");
    }

    TEST_CASE("generate_key makes fresh 24-char keys that check_upgrade accepts") {
        const auto a = generate_key();
        const auto b = generate_key();
        CHECK(a.size() == 24);
        CHECK(b.size() == 24);
        CHECK(a != b);
        for (const auto& key : {a, b}) {
            const std::string field = "Sec-WebSocket-Key: " + key;
            CHECK_FALSE(upgrade_error(valid_but("Sec-WebSocket-Key", {field})));
        }
    }

    TEST_CASE("client_request: exact bytes for the RFC sample") {
        CHECK(client_request("server.example.com", "/chat", rfc_key) ==
              "GET /chat HTTP/1.1\r\n"
              "Host: server.example.com\r\n"
              "Upgrade: websocket\r\n"
              "Connection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              "Sec-WebSocket-Version: 13\r\n"
              "\r\n");
        const http_header extra[] = {{"Origin", "http://example.com"},
                                     {"Sec-WebSocket-Protocol", "chat, superchat"}};
        CHECK(client_request("server.example.com", "/chat", rfc_key, extra) ==
              "GET /chat HTTP/1.1\r\n"
              "Host: server.example.com\r\n"
              "Upgrade: websocket\r\n"
              "Connection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              "Sec-WebSocket-Version: 13\r\n"
              "Origin: http://example.com\r\n"
              "Sec-WebSocket-Protocol: chat, superchat\r\n"
              "\r\n");
    }

    TEST_CASE("client_request and accept_response round-trip through check_accept_response") {
        const auto key = generate_key();
        const http_header extra[] = {{"Sec-WebSocket-Protocol", "chat"}};
        const auto request = parse(client_request("localhost:8080", "/room?id=7", key, extra));
        const auto check = check_upgrade(request);
        CHECK_FALSE(check.ec);
        CHECK(check.protocol_version == 13);
        CHECK(request.path() == "/room");
        CHECK(request.query_string() == "id=7");
        REQUIRE(request.header("Host").has_value());
        CHECK(*request.header("Host") == "localhost:8080");
        REQUIRE(request.header("Sec-WebSocket-Protocol").has_value());
        CHECK(*request.header("Sec-WebSocket-Protocol") == "chat");
        const auto response = accept_response(request, extra);
        CHECK_FALSE(check_accept_response(response, key));
        CHECK(check_accept_response(response, generate_key()) == error::bad_sec_key);
        // The RFC sample pair, too.
        CHECK_FALSE(check_accept_response(rfc_response, rfc_key));
    }

    TEST_CASE("check_accept_response: leniency it must keep") {
        // Bare LF line ends, case-insensitive names and tokens, token lists, no reason phrase,
        // and bytes after the head (the first frame) are ignored.
        CHECK_FALSE(
            check_accept_response("HTTP/1.1 101 Switching Protocols\n"
                                  "upgrade: WebSocket\n"
                                  "CONNECTION: keep-alive, UPGRADE\n"
                                  "sec-websocket-accept:   s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \n"
                                  "\n",
                                  rfc_key));
        CHECK_FALSE(
            check_accept_response("HTTP/1.1 101\r\n"
                                  "Upgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                  "\r\n"
                                  "\x81\x05hello"sv,
                                  rfc_key));
    }

    TEST_CASE("check_accept_response: failure branches") {
        auto with = [](std::string_view status, std::vector<std::string_view> fields) {
            std::string out(status);
            out += "\r\n";
            for (const auto f : fields) {
                out += f;
                out += "\r\n";
            }
            return out + "\r\n";
        };
        const std::string_view up = "Upgrade: websocket";
        const std::string_view conn = "Connection: Upgrade";
        const std::string_view acc = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        const auto ok = "HTTP/1.1 101 Switching Protocols"sv;
        REQUIRE_FALSE(check_accept_response(with(ok, {up, conn, acc}), rfc_key));

        // RFC 6455 §4.1 client requirement 1: the status must be 101.
        const std::string_view bad_status_lines[] = {
            "HTTP/1.1 200 OK",
            "HTTP/1.1 400 Bad Request",
            "HTTP/1.1 1010 Switching Protocols",
            "HTTP/1.1 10 Switching Protocols",
            "HTTP/1.1  101 Switching Protocols",
            "HTTX/1.1 101 Switching Protocols",
            "http/1.1 101 Switching Protocols",
            "HTTP/1 101 Switching Protocols",
            "HTTP/1.1101 Switching Protocols",
            "101 Switching Protocols",
            "",
        };
        for (const auto s : bad_status_lines) {
            INFO("status line '", std::string(s), "'");
            CHECK(check_accept_response(with(s, {up, conn, acc}), rfc_key) ==
                  error::bad_http_request);
        }
        CHECK(check_accept_response("", rfc_key) == error::bad_http_request);

        // Malformed fields.
        CHECK(check_accept_response(with(ok, {up, conn, acc, "NoColon"}), rfc_key) ==
              error::bad_http_request);
        CHECK(check_accept_response(with(ok, {up, conn, acc, ": empty name"}), rfc_key) ==
              error::bad_http_request);
        CHECK(check_accept_response(with(ok, {"Upgrade : websocket", conn, acc}), rfc_key) ==
              error::bad_http_request);
        CHECK(check_accept_response(with(ok, {up, " folded", conn, acc}), rfc_key) ==
              error::bad_http_request);

        // Requirement 2: Upgrade.
        CHECK(check_accept_response(with(ok, {conn, acc}), rfc_key) == error::no_upgrade);
        CHECK(check_accept_response(with(ok, {"Upgrade: h2c", conn, acc}), rfc_key) ==
              error::no_upgrade);
        // Requirement 3: Connection.
        CHECK(check_accept_response(with(ok, {up, acc}), rfc_key) == error::no_connection_upgrade);
        CHECK(check_accept_response(with(ok, {up, "Connection: close", acc}), rfc_key) ==
              error::no_connection_upgrade);
        // Requirement 4: exactly the expected Sec-WebSocket-Accept.
        CHECK(check_accept_response(with(ok, {up, conn}), rfc_key) == error::bad_sec_key);
        CHECK(check_accept_response(with(ok, {up, conn, acc, acc}), rfc_key) == error::bad_sec_key);
        CHECK(check_accept_response(
                  with(ok, {up, conn, "Sec-WebSocket-Accept: S3pPLMBiTxaQ9kYGzzhZRbK+xOo="}),
                  rfc_key) == error::bad_sec_key);
        CHECK(check_accept_response(
                  with(ok, {up, conn, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo"}),
                  rfc_key) == error::bad_sec_key);
        CHECK(check_accept_response(with(ok, {up, conn, "Sec-WebSocket-Accept:"}), rfc_key) ==
              error::bad_sec_key);
        CHECK(check_accept_response(with(ok, {up, conn, acc}), "x3JJHMbDL1EzLkh9GBhXDw==") ==
              error::bad_sec_key);
        // Fields after the empty line are not part of the head.
        CHECK(check_accept_response(std::string(ok) + "\r\n" + std::string(up) + "\r\n" +
                                        std::string(conn) + "\r\n\r\n" + std::string(acc) + "\r\n",
                                    rfc_key) == error::bad_sec_key);
    }
}
