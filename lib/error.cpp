#include "wscoro/error.hpp"

namespace wscoro {
namespace {

class error_category_impl final : public std::error_category {
  public:
    const char* name() const noexcept override { return "wscoro"; }

    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
            case error::bad_http_request:
                return "malformed HTTP request";
            case error::request_line_too_long:
                return "HTTP request line too long";
            case error::headers_too_large:
                return "HTTP header block too large";
            case error::bad_method:
                return "WebSocket handshake must be a GET request";
            case error::bad_http_version:
                return "WebSocket handshake needs HTTP/1.1 or later";
            case error::no_host:
                return "missing or repeated Host header";
            case error::no_upgrade:
                return "not a WebSocket upgrade request (Upgrade: websocket)";
            case error::no_connection_upgrade:
                return "Connection header lacks the upgrade token";
            case error::no_sec_key:
                return "missing or repeated Sec-WebSocket-Key";
            case error::bad_sec_key:
                return "Sec-WebSocket-Key is not 16 base64-encoded bytes";
            case error::bad_sec_version:
                return "unsupported Sec-WebSocket-Version";
            case error::bad_hixie_key:
                return "missing, repeated or malformed Sec-WebSocket-Key1/Key2";
            case error::handshake_timeout:
                return "opening handshake timed out";
            case error::server_busy:
                return "server busy: too many connections";
            case error::tls_handshake_failed:
                return "TLS handshake failed";
            case error::bad_proxy_header:
                return "missing or malformed PROXY protocol header";
            case error::invalid_subprotocol:
                return "handshake hook chose a subprotocol the client did not offer";
            case error::handshake_rejected:
                return "handshake rejected by the application";
            case error::bad_reserved_bits:
                return "reserved bits set without an extension";
            case error::bad_opcode:
                return "reserved opcode";
            case error::bad_unmasked_frame:
                return "client frame is not masked";
            case error::bad_masked_frame:
                return "server frame is masked";
            case error::bad_control_fragment:
                return "fragmented control frame";
            case error::bad_control_size:
                return "control frame payload above 125 bytes";
            case error::bad_size_encoding:
                return "payload length not minimally encoded";
            case error::bad_frame_length:
                return "64-bit payload length has its top bit set";
            case error::bad_continuation:
                return "continuation frame without a message";
            case error::bad_data_frame:
                return "data frame inside a fragmented message";
            case error::frame_too_big:
                return "frame too big";
            case error::message_too_big:
                return "message too big";
            case error::bad_frame_payload:
                return "invalid UTF-8 in text message";
            case error::bad_close_size:
                return "close frame payload of 1 byte";
            case error::bad_close_code:
                return "invalid close code";
            case error::bad_close_payload:
                return "invalid UTF-8 in close reason";
            case error::closed:
                return "WebSocket connection closed";
            case error::close_timeout:
                return "closing handshake timed out";
            case error::idle_timeout:
                return "nothing received within the idle timeout";
            case error::pong_timeout:
                return "no answer to a keep-alive ping: the peer is gone";
            case error::slow_consumer:
                return "the peer does not read: too much data queued for it";
            case error::invalid_close_code:
                return "close code may not be sent by an endpoint";
            case error::reason_too_long:
                return "close reason above 123 bytes";
            case error::control_too_big:
                return "ping or pong payload to send is above 125 bytes";
            case error::invalid_utf8_argument:
                return "text to send is not valid UTF-8";
            case error::unsupported_by_version:
                return "the connection's protocol version cannot send this frame type";
            case error::application_error:
                return "the connection handler threw an exception";
        }
        return "unknown wscoro error";
    }

    std::error_condition default_error_condition(int ev) const noexcept override {
        const auto e = static_cast<error>(ev);
        if (e >= error::bad_http_request && e <= error::handshake_rejected)
            return e == error::handshake_timeout
                       ? make_error_condition(condition::timeout)
                       : make_error_condition(condition::handshake_failed);
        switch (e) {
            case error::bad_frame_payload:
            case error::bad_close_payload:
                return make_error_condition(condition::invalid_data);
            case error::frame_too_big:
            case error::message_too_big:
                return make_error_condition(condition::message_too_big);
            case error::close_timeout:
            case error::idle_timeout:
            case error::pong_timeout:
                return make_error_condition(condition::timeout);
            case error::closed:
                return make_error_condition(condition::closed);
            default:
                break;
        }
        if (e >= error::bad_reserved_bits && e <= error::bad_close_payload)
            return make_error_condition(condition::protocol_violation);
        return {ev, *this};
    }
};

class condition_category_impl final : public std::error_category {
  public:
    const char* name() const noexcept override { return "wscoro.condition"; }
    std::string message(int ev) const override {
        switch (static_cast<condition>(ev)) {
            case condition::handshake_failed:
                return "WebSocket handshake failed";
            case condition::protocol_violation:
                return "WebSocket protocol violation";
            case condition::invalid_data:
                return "invalid WebSocket payload data";
            case condition::message_too_big:
                return "WebSocket message too big";
            case condition::timeout:
                return "WebSocket timeout";
            case condition::closed:
                return "WebSocket connection closed";
        }
        return "unknown wscoro condition";
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const error_category_impl instance;
    return instance;
}

const std::error_category& condition_category() noexcept {
    static const condition_category_impl instance;
    return instance;
}

std::uint16_t close_code_for(std::error_code ec) noexcept {
    if (ec.category() != error_category()) return 0;
    const auto e = static_cast<error>(ec.value());
    switch (e) {
        case error::frame_too_big:
        case error::message_too_big:
            return close_code::message_too_big;
        case error::bad_frame_payload:
        case error::bad_close_payload:
            return close_code::invalid_payload;
        case error::application_error:
            return close_code::internal_error;
        case error::idle_timeout:
            return close_code::going_away;
        case error::slow_consumer:
            return close_code::policy_violation;
        default:
            break;
    }
    if (e >= error::bad_reserved_bits && e <= error::bad_close_payload)
        return close_code::protocol_error;
    return 0;
}

int http_status_for(std::error_code ec) noexcept {
    if (ec.category() != error_category()) return 0;
    switch (static_cast<error>(ec.value())) {
        case error::bad_http_request:
        case error::no_host:
        case error::no_sec_key:
        case error::bad_sec_key:
        case error::bad_hixie_key:
            return 400;
        case error::request_line_too_long:
            return 414;
        case error::headers_too_large:
            return 431;
        case error::bad_method:
            return 405;
        case error::bad_http_version:
            return 505;
        case error::no_upgrade:
        case error::no_connection_upgrade:
        case error::bad_sec_version:
            return 426;
        case error::handshake_rejected:
            return 403;
        case error::server_busy:
            return 503;
        case error::bad_proxy_header:
            return 400;
        case error::invalid_subprotocol:
            return 500;
        case error::handshake_timeout:
            return 408;
        default:
            return 0;
    }
}

}  // namespace wscoro
