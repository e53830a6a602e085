#pragma once
// The WebSocket server: listener, per-connection coroutines, connection registry.

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <cstddef>
#include <functional>
#include <memory>

#include "wscoro/connection.hpp"
#include "wscoro/events.hpp"
#include "wscoro/options.hpp"

namespace wscoro {

/// The application's per-connection coroutine. It starts once the opening handshake has
/// succeeded; when it returns, the server closes the connection (1000) if still open. If it
/// throws, the exception goes to on_error and the connection is closed with 1011; the
/// process keeps running. An escaping wscoro::system_error with error::closed (a send
/// after the peer left) is a normal end, not an error.
using handler = std::function<asio::awaitable<void>(connection)>;

/// A WebSocket server on the caller's executor.
///
///     asio::io_context io;
///     wscoro::server srv(io.get_executor(), {.port = 8080});
///     srv.serve(session);   // session: asio::awaitable<void>(wscoro::connection)
///     io.run();
///
/// Each connection gets its own strand of that executor, so the server is correct whether
/// the io_context runs on one thread or many. Threading: listen(), serve(), stop() and the
/// queries may be called from any thread.
class server {
  public:
    server(asio::any_io_executor executor, server_options options);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Binds and listens now (IPv4 or IPv6 per options.host; SO_REUSEADDR). Throws
    /// std::system_error if the address cannot be resolved or bound, so a bad configuration
    /// fails at start-up. Does nothing if already listening.
    void listen();
    /// The bound address (after listen()); useful with port 0.
    asio::ip::tcp::endpoint local_endpoint() const;

    /// listen(), then accept connections in the background, running `h` for each one.
    void serve(handler h);
    /// listen(), then accept connections until stop(); completes when the listener stops.
    /// Accept errors (EMFILE, ...) are reported to on_error and retried after 100 ms.
    /// Cancelling this awaitable (Asio per-operation cancellation, e.g. a cancellation_signal
    /// bound to co_spawn, or an `||` race) shuts the server down gracefully, as stop().
    asio::awaitable<void> run(handler h);

    /// As serve(handler), with callbacks instead of a handler coroutine (see
    /// event_handlers): no coroutine frame per connection once it is open, and a message is
    /// handed to on_message straight from the read that brought it.
    void serve(event_handlers h);
    /// As run(handler), with callbacks (see serve(event_handlers)).
    asio::awaitable<void> run(event_handlers h);

    /// Graceful shutdown: stops accepting, drops handshakes in flight, and closes every open
    /// connection with 1001 (going away), each waiting for its closing handshake up to
    /// timeouts.close before its socket is dropped. Returns at once; idempotent. Once every
    /// connection is gone the server holds no more work, so io_context::run() returns
    /// (if nothing else keeps it busy).
    void stop();

    /// Connections accepted and not yet fully closed (handshakes included).
    std::size_t connection_count() const noexcept;
    /// Of those, how many are parked now (server_options::park_idle_after).
    std::size_t parked_count() const noexcept;
    const server_options& options() const noexcept;

    struct state;

  private:
    static void stop_state(const std::shared_ptr<state>& st);
    static asio::awaitable<void> run_state(std::shared_ptr<state> st);
    static void start_serving(const std::shared_ptr<state>& st);
    std::shared_ptr<state> state_;
};

}  // namespace wscoro
