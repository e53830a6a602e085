#pragma once
// Event callbacks: em-websocket's onopen / onmessage / onclose, for connections served
// without a coroutine.

#include <functional>

#include "wscoro/connection.hpp"
#include "wscoro/message.hpp"

namespace wscoro {

/// Callbacks for connections served by server::serve(event_handlers) instead of a handler
/// coroutine, as em-websocket's `ws.onopen`, `ws.onmessage` and `ws.onclose`.
///
/// Why a second style: a coroutine handler keeps a chain of coroutine frames (about 1.5 KiB)
/// for as long as its connection lives, and every message costs a resumption through Asio's
/// scheduler. With callbacks an idle connection is only its state and a waiting read, and a
/// message is handed over by a plain call from the read completion. Use them for servers
/// with many mostly idle connections or small request/response messages; use coroutines
/// when the per-connection logic is a sequence of steps.
///
/// Every callback runs on the connection's strand, one at a time, and may be empty.
///
/// - Inside a callback, send with connection::send_now() (queues a copy, never waits) or
///   try_send(). Everything queued while the callbacks for one read run goes out together,
///   in one system call, once they return.
/// - Backpressure: while more than write_high_water bytes are queued
///   (slow_consumer_policy::suspend), the connection stops reading; it reads again once the
///   queue drains below write_low_water. The peer's TCP window fills meanwhile, so a fast
///   sender is slowed down instead of growing memory.
/// - To wait for something (a database, a timer), co_spawn a coroutine on
///   connection::get_executor(); the awaitable members (send(), close(), ...) work as
///   usual. receive() does not: the callbacks are this connection's reader.
/// - An exception escaping a callback goes to server_options::on_error and the connection is
///   closed with 1011, as for a handler coroutine (close_info().error is
///   error::application_error). An escaping wscoro::system_error with error::closed is
///   ignored.
struct event_handlers {
    /// The opening handshake succeeded (the connection is open).
    std::function<void(const connection&)> on_open;
    /// A complete message; its bytes are valid until the callback returns. Pings and pongs
    /// arrive here too once connection::deliver_control_frames(true) was called.
    std::function<void(const connection&, const message&)> on_message;
    /// The connection is closed (the socket too): how it ended, as connection::close_info().
    /// Called once for every connection on_open was called for.
    std::function<void(const connection&, const close_info&)> on_close;
};

}  // namespace wscoro
