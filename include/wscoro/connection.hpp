#pragma once
// One WebSocket connection, as seen by the application's handler coroutine.

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>

#include "wscoro/error.hpp"
#include "wscoro/handshake_info.hpp"
#include "wscoro/message.hpp"
#include "wscoro/prepared_message.hpp"

namespace wscoro {

namespace detail {
class connection_impl;
}

/// The state of a connection (em-websocket's `state`).
enum class connection_state : std::uint8_t {
    handshake,  ///< the opening handshake is in progress
    open,       ///< messages flow both ways
    closing,    ///< we sent a Close and wait for the peer's
    closed,     ///< no more messages; close_info() is final
};

/// A cheap, copyable, shared handle to one connection.
///
/// Copies refer to the same connection (keep them in a set to broadcast). The connection
/// lives as long as any handle or its server-side coroutine does; operations on a closed
/// connection fail with error::closed instead of touching freed memory.
///
/// Threading: every member may be called from any thread. Awaitable members run on the
/// connection's executor (a strand): called from elsewhere, they hop there and back. The
/// queries (state(), buffered_amount(), ...) return a snapshot.
///
/// Reading: one coroutine at a time calls receive(). Pings are answered and the closing
/// handshake is carried out while receive() runs, so a handler that stops calling receive()
/// also stops answering pings.
///
/// Writing: any number of coroutines may send concurrently. Frames are queued whole, never
/// interleaved, and the queue is written with gather writes, coalescing everything queued
/// since the last write into one system call.
class connection {
  public:
    connection() = default;
    explicit connection(std::shared_ptr<detail::connection_impl> impl) noexcept
        : impl_(std::move(impl)) {}

    /// The next complete message, or an empty optional once the connection is closed (then
    /// close_info() says how). Never throws for anything the peer does: protocol violations
    /// close the connection with the right code (1002 / 1007 / 1009) and end the receive
    /// loop. The message's bytes stay valid until the next receive() call.
    /// Throws std::system_error (operation_in_progress) if another receive() is pending, or
    /// if the connection is served with event callbacks (they are its reader).
    asio::awaitable<std::optional<message>> receive() const;

    /// Queues `text` as one text frame. Completes once the frame is queued and the queue is
    /// below the high-water mark (suspends meanwhile: backpressure). A payload of 64 KiB or
    /// more is written straight from the caller's memory with a gather write (no copy), so
    /// that send completes once it has been written. Throws
    /// wscoro::system_error: error::closed once the connection is closing or closed,
    /// error::invalid_utf8_argument if `text` is not UTF-8. `text` is copied before the
    /// first suspension, so it may refer to a temporary or to a received message.
    asio::awaitable<void> send(std::string_view text) const;
    /// As send(text), reporting errors through `ec` instead of throwing.
    asio::awaitable<void> send(std::string_view text, std::error_code& ec) const;
    /// Queues `data` as one binary frame; errors as send(text).
    asio::awaitable<void> send_binary(std::span<const std::byte> data) const;
    asio::awaitable<void> send_binary(std::span<const std::byte> data, std::error_code& ec) const;
    /// Queues a prepared message by reference: the frame built once is shared, not copied,
    /// however many connections it is sent to (a frame of at most 512 bytes is copied as it
    /// is, which is cheaper; older protocol versions re-frame its payload). Backpressure and
    /// errors as send(text).
    asio::awaitable<void> send(const prepared_message& msg) const;
    asio::awaitable<void> send(const prepared_message& msg, std::error_code& ec) const;

    /// Sends a received message back with its type (text or binary): an exact echo, with
    /// no second UTF-8 check. Ping and pong messages are sent as ping and pong.
    asio::awaitable<void> send(const message& msg) const;

    // --- The non-suspending fast path. A pipelining peer sends many messages per read;
    // receive() and send() cost a coroutine call each (a frame and two trips through
    // Asio's scheduler loop), which is most of the CPU spent on a small message. These
    // never suspend and allocate nothing. Call them from the connection's handler (its
    // strand); anywhere else they do nothing and return empty / false. ---

    /// The next message if it is complete in the bytes already read: no I/O. Empty when
    /// receive() would have to wait for the network, when the connection is not open (then
    /// receive() reports the end) or while a receive() is pending. Pings are answered and
    /// control frames handled as by receive(). The message's bytes stay valid until the
    /// next receive() or try_receive() call.
    std::optional<message> try_receive() const;
    /// Queues `text` as one text frame if that needs no waiting: the connection is open,
    /// the payload is under 64 KiB (send() writes larger ones without a copy) and the queue
    /// stays under the high-water mark. True: queued (written in the background, as by
    /// send()). False: nothing was queued; send() then waits for room or reports the error
    /// (also for `text` that is not UTF-8).
    bool try_send(std::string_view text) const;
    /// As try_send(text), for one binary frame.
    bool try_send_binary(std::span<const std::byte> data) const;
    /// As send(const message&) (an exact echo), if that needs no waiting; see try_send(text).
    bool try_send(const message& msg) const;

    // --- Sending without waiting, for event callbacks (server::serve(event_handlers)). ---

    /// Queues `text` as one text frame (a copy) without waiting, however full the queue is;
    /// it is written in the background. Returns error::closed once the connection is
    /// closing or closed, error::invalid_utf8_argument for text that is not UTF-8, and
    /// std::errc::operation_not_permitted when called off the connection's strand (event
    /// callbacks run on it; elsewhere use send()). With slow_consumer_policy::close, going
    /// above max_outbound closes the connection (error::slow_consumer). With the suspend
    /// policy an event-driven connection stops reading while the queue is above
    /// write_high_water, which bounds what its callbacks can queue.
    std::error_code send_now(std::string_view text) const;
    /// As send_now(text), for one binary frame.
    std::error_code send_now_binary(std::span<const std::byte> data) const;
    /// As send(const message&) (an exact echo, no second UTF-8 check), without waiting; see
    /// send_now(text).
    std::error_code send_now(const message& msg) const;
    /// As send(const prepared_message&) (the frame built once, shared by reference), without
    /// waiting; see send_now(text). For broadcasting from event callbacks or any handler on
    /// the connection's strand.
    std::error_code send_now(const prepared_message& msg) const;
    /// Starts the closing handshake (as close(), with the same checks and errors) without
    /// waiting for its end: the connection's reader (receive() or the event callbacks)
    /// sees the end, and on_close reports it. Anywhere but the connection's strand it
    /// returns std::errc::operation_not_permitted. Closing a connection that is already
    /// closing or closed does nothing.
    std::error_code start_close(std::uint16_t code = close_code::normal,
                                std::string_view reason = {}) const;

    /// Sends a Ping (payload at most 125 bytes, else error::control_too_big). The Pong comes
    /// back through receive() when control frames are delivered. Returns false (sending
    /// nothing) if the protocol version has no ping. Throws as send().
    asio::awaitable<bool> ping(std::string_view body = {}) const;
    /// Sends an unsolicited Pong (a heartbeat); as ping().
    asio::awaitable<bool> pong(std::string_view body = {}) const;

    /// Starts the closing handshake with `code` (1000-1003, 1007-1014 or 3000-4999, else
    /// error::invalid_close_code) and a UTF-8 `reason` of at most 123 bytes (else
    /// error::reason_too_long). Completes when the connection is closed: the peer answered,
    /// or close_timeout expired (then TCP is dropped and close_info() reports 1006 with
    /// error::close_timeout). While no receive() is pending, close() itself reads and
    /// discards incoming messages until the peer's Close arrives. Closing a connection that
    /// is already closing or closed does nothing.
    asio::awaitable<void> close(std::uint16_t code = close_code::normal,
                                std::string_view reason = {}) const;

    /// When on, receive() also returns incoming pings and pongs (message_type::ping / pong),
    /// as em-websocket's onping / onpong. Pings are answered automatically either way.
    void deliver_control_frames(bool on) const noexcept;

    /// True if the protocol version has ping/pong (every version but hixie-75/76).
    bool pingable() const noexcept;
    /// True if Close frames carry codes and reasons (hybi-06 and later, RFC 6455).
    bool supports_close_codes() const noexcept;
    connection_state state() const noexcept;
    /// Bytes queued but not yet handed to the operating system.
    std::size_t buffered_amount() const noexcept;
    /// The upgrade request, protocol version and endpoints. The reference is valid while a
    /// handle to this connection is held (inside an event callback: until it returns; a
    /// parked connection's handshake lives on in folded form and is rebuilt when it wakes).
    const handshake_info& handshake() const noexcept;
    /// How the connection ended; meaningful once state() is closed.
    wscoro::close_info close_info() const;

    /// This connection's largest accepted frame payload (defaults to the server's option).
    std::uint64_t max_frame_size() const noexcept;
    void set_max_frame_size(std::uint64_t bytes) const noexcept;

    /// The executor (strand) every operation of this connection runs on.
    asio::any_io_executor get_executor() const noexcept;
    /// A process-unique number, as used in log lines.
    std::uint64_t id() const noexcept;

    /// True if this handle refers to a connection.
    explicit operator bool() const noexcept { return impl_ != nullptr; }
    friend bool operator==(const connection& a, const connection& b) noexcept {
        return a.impl_ == b.impl_;
    }
    /// Orders handles (by identity), so they can be kept in std::set.
    friend bool operator<(const connection& a, const connection& b) noexcept {
        return a.impl_ < b.impl_;
    }

    /// The implementation, for wscoro's own layers.
    const std::shared_ptr<detail::connection_impl>& impl() const noexcept { return impl_; }

  private:
    std::shared_ptr<detail::connection_impl> impl_;
};

}  // namespace wscoro

template <>
struct std::hash<wscoro::connection> {
    std::size_t operator()(const wscoro::connection& c) const noexcept {
        return std::hash<const void*>()(c.impl().get());
    }
};
