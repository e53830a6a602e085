#pragma once
// Server configuration.

#include <asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "wscoro/logger.hpp"
#include "wscoro/protocol/http_request.hpp"

namespace wscoro {

class handshake_info;

/// What the server tells `on_error` about a failure.
struct error_report {
    /// What happened: wscoro::error::application_error for an exception thrown by the
    /// handler, the protocol error a peer committed (condition::protocol_violation,
    /// invalid_data, message_too_big), a handshake error (condition::handshake_failed), a
    /// timeout (condition::timeout), or an accept error from the operating system.
    std::error_code code{};
    /// The exception thrown by the handler, when code == error::application_error.
    std::exception_ptr exception{};
    /// A readable description (the exception's what(), or the error's message).
    std::string message{};
    /// The connection's id as used in log lines (0 for the listener).
    std::uint64_t connection_id = 0;
    /// The handshake, when it had completed; nullptr otherwise. Valid during the call only.
    const handshake_info* handshake = nullptr;
};

/// The application's answer to an upgrade request (server_options::on_handshake).
struct handshake_decision {
    /// 101 accepts the upgrade; any other status (401, 403, 404, 429, 503 ...) rejects it
    /// with a real HTTP response carrying that status and `body`.
    int status = 101;
    /// The body of a rejection (sent as text/plain).
    std::string body{};
    /// For an accepted upgrade: the subprotocol chosen, which must be one of
    /// handshake_info::subprotocols() (RFC 6455 §4.2.2: one of the client's, never the
    /// whole list), or empty for none. Anything else is a programming error: the upgrade is
    /// refused with 500 and on_error gets error::invalid_subprotocol.
    std::string subprotocol{};
    /// Extra response header fields, for either outcome (e.g. Set-Cookie, WWW-Authenticate).
    std::vector<protocol::http_header> headers{};

    static handshake_decision accept(std::string subprotocol = {}) {
        handshake_decision d;
        d.subprotocol = std::move(subprotocol);
        return d;
    }
    static handshake_decision reject(int status, std::string body = {}) {
        handshake_decision d;
        d.status = status;
        d.body = std::move(body);
        return d;
    }
};

/// Decides on an upgrade request before the 101 is sent: authenticate, route on the path,
/// check the origin, pick a subprotocol. It runs on the connection's executor and may await
/// (a database, another service); the handshake timeout still applies. An exception is
/// reported to on_error and answered with 500.
using handshake_hook = std::function<asio::awaitable<handshake_decision>(const handshake_info&)>;

/// Every timeout of a connection. A zero duration turns that timeout off.
///
/// Idle and keep-alive detection look at bytes *received*, which are read while a receive()
/// (or close()) is pending: a handler that stops receiving looks idle.
struct timeouts {
    /// From accept until the 101 response is written: TLS handshake, PROXY header and the
    /// upgrade request included (slowloris protection). Expiry: TCP is closed,
    /// error::handshake_timeout.
    std::chrono::milliseconds handshake = std::chrono::seconds(10);
    /// Nothing received for this long: the connection is closed with 1001 "idle timeout"
    /// (close_info().error and on_error: error::idle_timeout). Off by default.
    std::chrono::milliseconds idle{0};
    /// Nothing received for this long: send a Ping (keep-alive; not on hixie-75/76, which
    /// have none). Off by default.
    std::chrono::milliseconds ping_interval{0};
    /// After a keep-alive Ping, if nothing at all arrives within this long the peer is
    /// considered dead: TCP is dropped, close_info() is 1006 with error::pong_timeout.
    /// 0 with ping_interval set means "the same as ping_interval".
    std::chrono::milliseconds pong_timeout{0};
    /// After our Close, how long to wait for the peer's before dropping TCP (1006,
    /// error::close_timeout). em-websocket's close_timeout and default.
    std::chrono::milliseconds close = std::chrono::seconds(60);
};

/// server_options::slow_consumer.
enum class slow_consumer_policy : std::uint8_t { suspend, close };

/// TLS protocol versions, for tls_options::min_version.
enum class tls_version : std::uint8_t { tls1_2, tls1_3 };

/// One certificate and key, from files or PEM strings (not both).
struct tls_certificate {
    std::string cert_chain_file{};   ///< PEM file: the certificate, then its chain
    std::string private_key_file{};  ///< PEM file: the private key
    std::string cert{};              ///< PEM text of the certificate chain (instead of the file)
    std::string private_key{};       ///< PEM text of the private key (instead of the file)
    std::string private_key_pass{};  ///< password of an encrypted private key
};

/// TLS settings for wss:// (server_options::secure), em-websocket's tls_options names.
/// A missing or bad file, key, certificate or password makes server::listen() throw.
struct tls_options : tls_certificate {
    /// More certificates, chosen by the name the client asks for (SNI); the certificate
    /// above serves every other name.
    struct sni_certificate : tls_certificate {
        std::string server_name{};  ///< exact host name, case-insensitive
    };
    std::vector<sni_certificate> sni{};
    /// OpenSSL cipher list for TLS 1.2 (empty: OpenSSL's default).
    std::string cipher_list{};
    /// OpenSSL TLS 1.3 cipher suites (empty: OpenSSL's default).
    std::string ciphersuites{};
    /// Oldest protocol version accepted.
    tls_version min_version = tls_version::tls1_2;
    /// Ask clients for a certificate and verify it against ca_file (mutual TLS).
    bool verify_peer = false;
    /// With verify_peer: refuse clients that send no certificate.
    bool fail_if_no_peer_cert = false;
    /// PEM file of the CAs trusted for client certificates.
    std::string ca_file{};
    /// Key-exchange groups, e.g. "X25519:P-256" (empty: OpenSSL's default; em-websocket's
    /// ecdh_curve).
    std::string ecdh_curve{};
    /// PEM file with DH parameters for DHE ciphers (empty: OpenSSL 3 picks them itself).
    std::string dhparam_file{};
};

/// Options of a wscoro::server, with em-websocket's names where it had them.
struct server_options {
    /// Address to listen on: an IPv4 or IPv6 literal ("0.0.0.0", "::" for dual stack,
    /// "::1") or a host name resolved once at listen().
    std::string host = "127.0.0.1";
    /// TCP port; 0 picks a free one (see server::local_endpoint()).
    std::uint16_t port = 8080;
    /// Listen backlog.
    int backlog = 1024;
    /// Linux TCP_DEFER_ACCEPT: the kernel completes accept() only once the client has sent
    /// its first bytes (the upgrade request, a TLS ClientHello, a PROXY header, a Flash policy
    /// request; a WebSocket client always speaks first). Saves a wake-up and a read that finds
    /// nothing per connection, and a silent client costs no descriptor meanwhile. A client
    /// that stays silent is accepted after about timeouts.handshake (the kernel's SYN-ACK
    /// retries), so the handshake timeout runs from then, and max_connections does not count
    /// it before. Ignored where the option does not exist.
    bool defer_accept = false;

    /// Multi-core: with threads > 1 the server runs its own `threads` io_contexts, each on
    /// its own thread with its own SO_REUSEPORT acceptor; the kernel spreads new connections
    /// over them and each connection stays on its thread (no locks, no strands on the hot
    /// path). The executor given to the server is then only used for stop(). send() from any
    /// thread stays safe. The server's destructor joins these threads. 1: everything runs on
    /// the given executor.
    unsigned threads = 1;

    /// Set when the executor's io_context is run by exactly one thread (e.g. `io.run()` on
    /// `asio::io_context io(1)`, or one io_context per thread). Connections then run on that
    /// executor directly instead of on a strand of it: no lock and no extra operations per
    /// completion. send() from other threads stays safe (it is posted to the io_context).
    /// Leave false if several threads call run() on the same io_context. Such an io_context
    /// may also be made with ASIO_CONCURRENCY_HINT_UNSAFE_IO, which drops Asio's per-socket
    /// locks (wscoro does every socket operation on the connection's thread; posting from
    /// other threads stays locked): about 130 fewer instructions per echoed message.
    bool single_threaded = false;

    /// Connections served with event callbacks (server::serve(event_handlers)) that have
    /// received nothing for about this long are parked: their state is folded into a record
    /// of about 300 bytes (the upgrade request kept compactly, the socket watched by one
    /// epoll set of the server's), and unfolded when data or a hang-up arrives, or when a
    /// keep-alive ping or the idle timeout is due (up to half this late). An idle connection
    /// then costs some 0.3 KiB instead of about 2.5 KiB. Unparking costs a few system calls and
    /// allocations (2-4 microseconds of CPU measured per park and unpark), so only connections
    /// silent for a while are parked. A connection is parked only if nothing is queued or
    /// half-received either way, no ping awaits its pong, and no wscoro::connection handle to
    /// it is kept outside its callbacks; and only on plain TCP (not wss://), for RFC 6455 /
    /// hybi-07+ peers, on an io_context run by one thread (single_threaded, or threads > 1).
    /// 0 turns parking off. Invisible to the application: handshake(), id(),
    /// max_frame_size() and deliver_control_frames() survive it.
    std::chrono::milliseconds park_idle_after{500};

    /// Serve wss://: TLS on every accepted connection, with `tls`. The TLS handshake is bounded
    /// by timeouts.handshake. Needs the library built with the `tls` feature.
    bool secure = false;
    wscoro::tls_options tls{};
    /// Running behind a TLS terminator (stunnel, a load balancer): handshake().secure() is
    /// true and hixie Location headers use wss://, without doing TLS here (em-websocket's
    /// :secure_proxy).
    bool secure_proxy = false;

    /// Addresses of reverse proxies whose forwarding information is believed: IPv4/IPv6
    /// addresses or CIDR prefixes ("10.0.0.0/8", "::1"). From any other peer it is ignored.
    std::vector<std::string> trusted_proxies{};
    /// From a trusted proxy, take the client from `X-Forwarded-For` (the rightmost address
    /// that is not itself a trusted proxy) and `X-Forwarded-Proto: https` as secure.
    bool trust_forwarded_headers = false;
    /// From a trusted proxy, require a PROXY protocol v1 or v2 header before the request and
    /// take the client address from it; a connection from a trusted proxy without one is
    /// refused.
    bool proxy_protocol = false;

    /// Decides on each upgrade request before the 101 (auth, routing, subprotocols). Empty:
    /// accept every valid request with no subprotocol.
    handshake_hook on_handshake{};
    /// If not empty, a plain GET of this path is answered `200 OK` with body "OK" and
    /// closed (load-balancer health checks; em-websocket's /healthcheck).
    std::string health_check_path{};
    /// Answer Adobe Flash's `<policy-file-request/>` with `flash_policy_xml` followed by a
    /// NUL byte, then close (em-websocket always did; can be turned off).
    bool flash_policy = true;
    /// The cross-domain policy sent; the default allows every domain and port.
    std::string flash_policy_xml =
        "<?xml version=\"1.0\"?><cross-domain-policy>"
        "<allow-access-from domain=\"*\" to-ports=\"*\"/></cross-domain-policy>";

    /// The WebSocket protocol versions accepted (em-websocket's set, all of them, by default):
    /// 75 (hixie-75), 76 (hixie-76 = hybi-00), 1, 2, 3 (hybi-01..03), 4, 5, 6, 7, 8
    /// (hybi-04..12) and 13 (hybi-13..17, RFC 6455). A request for another version is
    /// answered 426 with `Sec-WebSocket-Version` listing the allowed ones among 13, 8, 7.
    std::set<int> protocol_versions{75, 76, 1, 2, 3, 4, 5, 6, 7, 8, 13};

    /// Largest frame payload accepted; above it the connection is failed with 1009 as soon
    /// as the frame header arrives. em-websocket's default.
    std::uint64_t max_frame_size = 10 * 1024 * 1024;
    /// Largest message (all fragments together); above it: 1009.
    std::uint64_t max_message_size = 64 * 1024 * 1024;
    /// Limits of the HTTP upgrade request (414 / 431 beyond them).
    protocol::http_limits http_limits{};

    /// Every timeout, with its default (see wscoro::timeouts).
    wscoro::timeouts timeouts{};

    /// Connections served at once (handshakes included); beyond it a new connection gets
    /// `503 Service Unavailable` before any upgrade, and the listener keeps running. 0: no
    /// limit.
    std::size_t max_connections = 0;

    /// send() suspends while more than this many bytes are queued for the socket, and
    /// resumes once the queue has drained to write_low_water (backpressure).
    std::size_t write_high_water = 4 * 1024 * 1024;
    std::size_t write_low_water = 1024 * 1024;
    /// What to do with a peer that does not read: `suspend` the senders (backpressure, the
    /// default), or `close` the connection with 1008 once more than `max_outbound` bytes are
    /// queued (the send fails with error::slow_consumer; em-websocket's outbound_limit).
    slow_consumer_policy slow_consumer = slow_consumer_policy::suspend;
    std::size_t max_outbound = 16 * 1024 * 1024;

    /// Log everything (handshakes, every frame with opcode and length, closes) to the log
    /// sink, as em-websocket's :debug. Same as log_level = log_level::trace.
    bool debug = false;
    /// Minimum level logged when debug is false.
    wscoro::log_level log_level = wscoro::log_level::warn;
    /// Where log lines go (default: stderr with timestamps and connection ids).
    wscoro::log_sink log_sink = wscoro::stderr_sink;

    /// Called for handler exceptions, protocol and handshake errors, and accept errors, on
    /// the connection's executor. It must not throw. Default: log the report (application
    /// errors at level error, peer errors at debug).
    std::function<void(const error_report&)> on_error{};
    /// em-websocket's behaviour for handler exceptions: after on_error, rethrow the exception
    /// out of io_context::run() (which usually ends the program). Off by default: the
    /// connection is closed with 1011 and the server goes on.
    bool rethrow_handler_exceptions = false;
};

}  // namespace wscoro
