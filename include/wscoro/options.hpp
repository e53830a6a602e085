#pragma once
// Server configuration.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <system_error>

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
    std::error_code code;
    /// The exception thrown by the handler, when code == error::application_error.
    std::exception_ptr exception;
    /// A readable description (the exception's what(), or the error's message).
    std::string message;
    /// The connection's id as used in log lines (0 for the listener).
    std::uint64_t connection_id = 0;
    /// The handshake, when it had completed; nullptr otherwise. Valid during the call only.
    const handshake_info* handshake = nullptr;
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

    /// Set when the executor's io_context is run by exactly one thread (e.g. `io.run()` on
    /// `asio::io_context io(1)`, or one io_context per thread). Connections then run on that
    /// executor directly instead of on a strand of it: no lock and no extra operations per
    /// completion. send() from other threads stays safe (it is posted to the io_context).
    /// Leave false if several threads call run() on the same io_context.
    bool single_threaded = false;

    /// Largest frame payload accepted; above it the connection is failed with 1009 as soon
    /// as the frame header arrives. em-websocket's default.
    std::uint64_t max_frame_size = 10 * 1024 * 1024;
    /// Largest message (all fragments together); above it: 1009.
    std::uint64_t max_message_size = 64 * 1024 * 1024;
    /// Limits of the HTTP upgrade request (414 / 431 beyond them).
    protocol::http_limits http_limits{};

    /// Time allowed from accept until the upgrade request is complete; then the TCP
    /// connection is closed. Bounds slowloris-style idle connections.
    std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10);
    /// After sending a Close, how long to wait for the peer's Close before dropping TCP
    /// (close_info then reports 1006 with error::close_timeout). em-websocket's default.
    std::chrono::milliseconds close_timeout = std::chrono::seconds(60);

    /// send() suspends while more than this many bytes are queued for the socket, and
    /// resumes once the queue has drained to write_low_water (backpressure).
    std::size_t write_high_water = 4 * 1024 * 1024;
    std::size_t write_low_water = 1024 * 1024;

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
    std::function<void(const error_report&)> on_error;
};

}  // namespace wscoro
