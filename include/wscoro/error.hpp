#pragma once
// Error codes of wscoro.
//
// Every failure the library reports is a `std::error_code` in `wscoro::error_category()`.
// Protocol errors carry the close code they cause (`close_code_for`), handshake errors the
// HTTP status they are answered with (`http_status_for`). `wscoro::condition` groups them
// for coarse matching:
//
//     if (ec == wscoro::condition::protocol_violation) ...
//
// This header has no Asio dependency; the sans-I/O layer (wscoro::protocol) uses it too.

#include <cstdint>
#include <string>
#include <system_error>
#include <type_traits>

namespace wscoro {

/// WebSocket close status codes (RFC 6455 §7.4.1, IANA registry).
namespace close_code {
inline constexpr std::uint16_t normal = 1000;            ///< normal closure
inline constexpr std::uint16_t going_away = 1001;        ///< server shutdown / page left
inline constexpr std::uint16_t protocol_error = 1002;    ///< protocol violation
inline constexpr std::uint16_t unsupported_data = 1003;  ///< data type not accepted
inline constexpr std::uint16_t no_status = 1005;         ///< reserved: close frame carried no code
inline constexpr std::uint16_t abnormal = 1006;          ///< reserved: no close frame (TCP dropped)
inline constexpr std::uint16_t invalid_payload = 1007;   ///< e.g. text that is not UTF-8
inline constexpr std::uint16_t policy_violation = 1008;
inline constexpr std::uint16_t message_too_big = 1009;
inline constexpr std::uint16_t mandatory_extension = 1010;  ///< client-only
inline constexpr std::uint16_t internal_error = 1011;       ///< unexpected server condition
inline constexpr std::uint16_t service_restart = 1012;
inline constexpr std::uint16_t try_again_later = 1013;
inline constexpr std::uint16_t bad_gateway = 1014;
inline constexpr std::uint16_t tls_handshake = 1015;  ///< reserved: TLS failure

/// True if `code` may appear in a received Close frame (RFC 6455 §7.4.1, §7.4.2):
/// 1000-1003, 1007-1014 and 3000-4999. 1004-1006 and 1015 are reserved and never sent;
/// 1016-2999 are unassigned; 0-999 and >= 5000 are not used.
constexpr bool is_valid_on_wire(std::uint16_t code) noexcept {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/// True if an application may send `code` with `connection::close` (the same set as
/// `is_valid_on_wire`).
constexpr bool is_sendable(std::uint16_t code) noexcept {
    return is_valid_on_wire(code);
}
}  // namespace close_code

/// Every error wscoro reports. Values are stable; do not rely on their numbers.
enum class error {
    // --- HTTP request / opening handshake (answered with an HTTP status, then TCP closes) ---
    bad_http_request = 1,   ///< malformed request line or header (400)
    request_line_too_long,  ///< request line above the limit (414)
    headers_too_large,      ///< header block above the limit, or too many headers (431)
    bad_method,             ///< not GET (405); RFC 6455 §4.2.1 item 1
    bad_http_version,       ///< not HTTP/1.1 or later (505); RFC 6455 §4.2.1 item 1
    no_host,                ///< missing or repeated Host (400); RFC 6455 §4.2.1 item 2
    no_upgrade,             ///< no `Upgrade: websocket` (426); RFC 6455 §4.2.1 item 3
    no_connection_upgrade,  ///< `Connection` lacks `upgrade` (426); RFC 6455 §4.2.1 item 4
    no_sec_key,             ///< missing or repeated Sec-WebSocket-Key (400); §4.2.1 item 5
    bad_sec_key,            ///< Sec-WebSocket-Key is not base64 of 16 bytes (400); §4.2.1 item 5
    bad_sec_version,        ///< unsupported Sec-WebSocket-Version (426); §4.2.1 item 6, §4.4
    bad_hixie_key,          ///< missing, repeated or malformed Sec-WebSocket-Key1/Key2 (400)
    handshake_timeout,      ///< the request did not arrive within the handshake timeout
    server_busy,            ///< max_connections reached (503)
    tls_handshake_failed,   ///< the TLS handshake failed (the transport error is logged)
    bad_proxy_header,       ///< missing or malformed PROXY protocol header from a trusted proxy
    invalid_subprotocol,    ///< the handshake hook chose a subprotocol the client did not offer
    handshake_rejected,     ///< the application's handshake hook refused the request

    // --- Framing (the connection is failed with the close code in parentheses) ---
    bad_reserved_bits,     ///< RSV1-3 set without a negotiated extension (1002); §5.2
    bad_opcode,            ///< reserved opcode 3-7 or 0xB-0xF (1002); §5.2
    bad_unmasked_frame,    ///< a client sent an unmasked frame (1002); §5.1
    bad_masked_frame,      ///< a server sent a masked frame (1002); §5.1
    bad_control_fragment,  ///< control frame with FIN clear (1002); §5.5
    bad_control_size,      ///< control frame payload above 125 bytes (1002); §5.5
    bad_size_encoding,     ///< length not in its minimal encoding (1002); §5.2
    bad_frame_length,      ///< 64-bit length with the most significant bit set (1002); §5.2
    bad_continuation,      ///< continuation frame with no message open (1002); §5.4
    bad_data_frame,        ///< new data frame while a fragmented message is open (1002); §5.4
    frame_too_big,         ///< frame above max_frame_size (1009); §7.4.1
    message_too_big,       ///< message above max_message_size (1009); §7.4.1
    bad_frame_payload,     ///< text message that is not valid UTF-8 (1007); §8.1
    bad_close_size,        ///< Close payload of exactly 1 byte (1002); §5.5.1
    bad_close_code,        ///< Close code not allowed on the wire (1002); §7.4
    bad_close_payload,     ///< Close reason that is not valid UTF-8 (1007); §5.5.1

    // --- Connection and API ---
    closed,                  ///< the connection is closed (or closing, for data frames)
    close_timeout,           ///< the peer did not answer our Close within timeouts.close
    idle_timeout,            ///< nothing received within timeouts.idle (closed with 1001)
    pong_timeout,            ///< no answer to a keep-alive Ping within timeouts.pong_timeout
    slow_consumer,           ///< more than max_outbound bytes queued (closed with 1008)
    invalid_close_code,      ///< close() called with a code an endpoint may not send
    reason_too_long,         ///< close() reason above 123 bytes (§5.5: control payload <= 125)
    control_too_big,         ///< ping()/pong() payload above 125 bytes (§5.5)
    invalid_utf8_argument,   ///< send() of text that is not valid UTF-8
    application_error,       ///< the handler threw an exception (closed with 1011)
    unsupported_by_version,  ///< the protocol version cannot send this (binary or ping on hixie)
};

/// Coarse groups of `wscoro::error` (and of some system errors), for `ec == condition::x`.
enum class condition {
    handshake_failed = 1,  ///< the opening handshake did not complete
    protocol_violation,    ///< the peer broke RFC 6455 (closed with 1002)
    invalid_data,          ///< invalid UTF-8 (closed with 1007)
    message_too_big,       ///< a size limit was exceeded (closed with 1009)
    timeout,               ///< a handshake or close timeout expired
    closed,                ///< the connection is no longer open
};

/// The category of `wscoro::error`. Its name is "wscoro".
const std::error_category& error_category() noexcept;
/// The category of `wscoro::condition`. Its name is "wscoro.condition".
const std::error_category& condition_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}
inline std::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

/// The close code the connection is failed with for a framing error, or 0 if `ec` is not a
/// framing error (1002 for protocol errors, 1007 for invalid UTF-8, 1009 for size limits).
std::uint16_t close_code_for(std::error_code ec) noexcept;

/// The HTTP status a handshake error is answered with (400, 405, 414, 426, 431, 505), or 0.
int http_status_for(std::error_code ec) noexcept;

/// The exception thrown by the throwing forms of the API; `code()` is the error.
class system_error : public std::system_error {
  public:
    using std::system_error::system_error;
};

}  // namespace wscoro

template <>
struct std::is_error_code_enum<wscoro::error> : std::true_type {};
template <>
struct std::is_error_condition_enum<wscoro::condition> : std::true_type {};
