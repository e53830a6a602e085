#pragma once
// What the server learned from a client's opening handshake.

#include <asio/ip/tcp.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wscoro/protocol/http_request.hpp"

namespace wscoro {

namespace detail {
class connection_impl;
struct handshake_info_access;  // (tests)
}  // namespace detail

/// What TLS negotiated, for connections served over wss:// (empty strings otherwise).
struct tls_details {
    std::string version;               ///< e.g. "TLSv1.3"
    std::string cipher;                ///< e.g. "TLS_AES_256_GCM_SHA384"
    std::string server_name;           ///< the name the client asked for (SNI), if any
    std::string peer_subject;          ///< the client certificate's subject (mutual TLS), if any
    std::string peer_certificate_pem;  ///< the client certificate, PEM, if any
};

/// The parsed upgrade request and the connection's addresses, as em-websocket's Handshake
/// object (path, query_string, query, origin, headers, secure?, protocol_version) plus the
/// endpoints. Immutable after the handshake; safe to read from any thread.
class handshake_info {
  public:
    handshake_info() = default;
    handshake_info(protocol::http_request request, int protocol_version, bool secure,
                   asio::ip::tcp::endpoint remote, asio::ip::tcp::endpoint local);

    /// The request-target's path, e.g. "/chat" for "/chat?room=1" (not percent-decoded).
    std::string_view path() const noexcept { return request_.path(); }
    /// The raw query, e.g. "room=1&x" ("" if none).
    std::string_view query_string() const noexcept { return request_.query_string(); }
    /// The whole request-target as sent.
    std::string_view target() const noexcept { return request_.target; }
    /// Query parameters split on '&' and the first '=', percent-decoded ('+' is a space), in
    /// order; a key without '=' has an empty value.
    const std::vector<std::pair<std::string, std::string>>& query_params() const noexcept {
        return query_;
    }
    /// The decoded value of the last parameter named `key` (em-websocket: the last wins).
    std::optional<std::string_view> query(std::string_view key) const noexcept;
    /// `Origin`, else `Sec-WebSocket-Origin` (hybi drafts 04-10), if present.
    std::optional<std::string_view> origin() const noexcept;
    /// The first header named `name` (ASCII case-insensitive).
    std::optional<std::string_view> header(std::string_view name) const noexcept {
        return request_.header(name);
    }
    /// All request headers in arrival order, original case, repeats kept.
    const std::vector<protocol::http_header>& headers() const noexcept { return request_.headers; }
    /// The whole parsed request.
    const protocol::http_request& request() const noexcept { return request_; }
    /// True if the connection runs over TLS (or behind a TLS proxy declared secure).
    bool secure() const noexcept { return secure_; }
    /// The WebSocket protocol version spoken (13 for RFC 6455).
    int protocol_version() const noexcept { return protocol_version_; }
    /// The peer's address and port (IPv4 or IPv6).
    const asio::ip::tcp::endpoint& remote_endpoint() const noexcept { return remote_; }
    /// The local address and port the connection was accepted on.
    const asio::ip::tcp::endpoint& local_endpoint() const noexcept { return local_; }
    /// The TCP peer: the same as remote_endpoint() unless a trusted proxy told us the real
    /// client (PROXY protocol or X-Forwarded-For), in which case this is the proxy.
    const asio::ip::tcp::endpoint& tcp_peer_endpoint() const noexcept { return tcp_peer_; }
    /// The subprotocols the client offered in Sec-WebSocket-Protocol, in its order of
    /// preference (RFC 6455 §4.1 item 10).
    std::vector<std::string_view> subprotocols() const;
    /// The subprotocol the server accepted ("" for none).
    std::string_view subprotocol() const noexcept { return subprotocol_; }
    /// TLS details (all empty unless the connection itself runs TLS).
    const tls_details& tls() const noexcept;

  private:
    friend class detail::connection_impl;
    friend struct detail::handshake_info_access;

    /// Everything but the TLS details, in one compact string (for a parked connection), and
    /// back: unfold(fold()) compares equal field by field.
    std::string fold() const;
    static handshake_info unfold(std::string_view folded);

    protocol::http_request request_;
    std::vector<std::pair<std::string, std::string>> query_;
    int protocol_version_ = 0;
    bool secure_ = false;
    asio::ip::tcp::endpoint remote_;
    asio::ip::tcp::endpoint local_;
    asio::ip::tcp::endpoint tcp_peer_;
    std::string subprotocol_;
    // Only TLS connections have details: the rest share no allocation (an idle plain
    // connection costs 16 bytes here, not five strings).
    std::shared_ptr<const tls_details> tls_;
};

}  // namespace wscoro
