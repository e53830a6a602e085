#pragma once
// The RFC 6455 opening handshake (§4), server and client side.
//
// Part of the sans-I/O layer: no I/O, never throws. Hashing and base64 use OpenSSL's EVP
// interface (libcrypto), never hand-written digests.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "wscoro/protocol/http_request.hpp"

namespace wscoro::protocol {

/// The GUID appended to Sec-WebSocket-Key before hashing (RFC 6455 §1.3).
inline constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// base64(SHA-1(key + GUID)): the Sec-WebSocket-Accept value for a Sec-WebSocket-Key
/// (RFC 6455 §4.2.2 item 5.4). `key` is used exactly as received (already trimmed).
/// Returns "" only if libcrypto fails.
std::string compute_accept_key(std::string_view key);

/// Outcome of checking an upgrade request.
struct upgrade_check {
    std::error_code ec;        ///< empty if the request is a valid upgrade
    int protocol_version = 0;  ///< the negotiated version (13) when ec is empty
};

/// Checks a request against RFC 6455 §4.2.1: GET, HTTP/1.1 or later, exactly one Host,
/// `Upgrade` holding the token `websocket`, `Connection` holding `upgrade`, exactly one
/// Sec-WebSocket-Key that decodes to 16 bytes, and exactly one Sec-WebSocket-Version: 13.
/// The error names the first rule broken (see wscoro::error).
upgrade_check check_upgrade(const http_request& request) noexcept;

/// The `101 Switching Protocols` response to an accepted request (RFC 6455 §4.2.2 item 5),
/// with `extra` header fields (e.g. Sec-WebSocket-Protocol) appended in order.
std::string accept_response(const http_request& request, std::span<const http_header> extra = {});

/// A complete HTTP error response: status line, `Content-Type: text/plain`,
/// `Content-Length`, `Connection: close`, the `extra` fields, and `body`.
std::string error_response(int status, std::string_view body,
                           std::span<const http_header> extra = {});

/// The error response for a failed handshake check or a parser error: the status from
/// wscoro::http_status_for(ec) and the error's message as the body. A 426 carries
/// `Upgrade: websocket` and `Sec-WebSocket-Version: 13` (RFC 6455 §4.4).
std::string reject_response(std::error_code ec);

/// Standard reason phrase of an HTTP status ("Bad Request" for 400), "" if unknown.
std::string_view reason_phrase(int status) noexcept;

// --- client side ---

/// 16 random bytes (OpenSSL RAND_bytes), base64-encoded: a fresh Sec-WebSocket-Key.
/// Returns "" if the random generator fails (never a predictable key).
std::string generate_key();

/// A client upgrade request for `target` on `host` (RFC 6455 §4.1), with `extra` fields.
std::string client_request(std::string_view host, std::string_view target, std::string_view key,
                           std::span<const http_header> extra = {});

/// Checks a server's response head (status line + fields, as a string ending in the empty
/// line) against the key the client sent (RFC 6455 §4.1, client requirements 1-4): status
/// 101, `Upgrade: websocket`, `Connection: upgrade`, and the matching Sec-WebSocket-Accept.
/// Returns wscoro::error::bad_http_request, no_upgrade, no_connection_upgrade or bad_sec_key.
std::error_code check_accept_response(std::string_view response_head, std::string_view key);

}  // namespace wscoro::protocol
