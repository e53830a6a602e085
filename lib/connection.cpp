#include "wscoro/connection.hpp"

#include <algorithm>
#include <asio/bind_allocator.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cstring>

#include "connection_impl.hpp"
#include "wscoro/protocol/handshake.hpp"
#include "wscoro/protocol/utf8.hpp"

namespace wscoro::detail {

using protocol::opcode;
namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// Read buffer size. A message that arrives as one frame of up to this size (minus the
// header) is handed to the application in place, without a copy.
constexpr std::size_t read_buffer_size = 16 * 1024;
// How long we keep reading after our last bytes, waiting for the peer's FIN, so that
// closing with unread data does not turn into a RST that could destroy our Close frame.
constexpr std::chrono::milliseconds max_linger{2000};

std::string_view opcode_name(opcode op) {
    switch (op) {
        case opcode::continuation:
            return "cont";
        case opcode::text:
            return "text";
        case opcode::binary:
            return "binary";
        case opcode::close:
            return "close";
        case opcode::ping:
            return "ping";
        case opcode::pong:
            return "pong";
    }
    return "?";
}
}  // namespace

strand_variant make_connection_strand(const asio::any_io_executor& ex, bool single_threaded) {
    if (const auto* io = ex.target<asio::io_context::executor_type>()) {
        if (single_threaded) return *io;
        return asio::make_strand(*io);
    }
    return asio::make_strand(ex);
}

connection_impl::connection_impl(asio::ip::tcp::socket socket, strand_variant strand,
                                 std::shared_ptr<const connection_config> config, std::uint64_t id)
    : max_frame_size(config->limits.max_frame_size),
      socket_(std::move(socket)),
      strand_(std::move(strand)),
      executor_(std::visit([](const auto& st) { return asio::any_io_executor(st); }, strand_)),
      config_(std::move(config)),
      id_(id),
      decoder_(protocol::role::server, config_->limits,
               read_buffer_size - protocol::max_header_size) {}

connection_impl::~connection_impl() = default;

// ---------------------------------------------------------------------------------------------
// Opening handshake
// ---------------------------------------------------------------------------------------------

asio::awaitable<bool> connection_impl::accept_handshake() {
    auto self = shared_from_this();  // timers and writes hold the connection, not the caller
    start_timer(config_->handshake_timeout, make_error_code(error::handshake_timeout));
    prepare_read_buffer();
    protocol::http_request_parser parser(config_->http_limits);
    while (!parser.done() && !parser.failed()) {
        auto [ec, n] = co_await socket_.async_read_some(
            asio::buffer(rbuf_.get() + rb_end_, rcap_ - rb_end_), use_tuple);
        if (ec) {
            // The peer left (or the handshake timer closed the socket): nothing to answer.
            if (!socket_closed_) {  // else the handshake timer closed it and reported already
                set_close_info(close_code::abnormal, {}, false, ec);
                report(ec, nullptr, "opening handshake failed: " + ec.message());
                force_close();
            }
            co_return false;
        }
        rb_end_ += n;
        rb_begin_ += parser.feed(std::span(rbuf_.get() + rb_begin_, rb_end_ - rb_begin_));
        // The parser keeps partial lines itself, so consumed bytes are free again.
        if (rb_begin_ == rb_end_) rb_begin_ = rb_end_ = 0;
    }

    std::error_code ec = parser.failed() ? parser.error() : std::error_code{};
    protocol::upgrade_check check;
    if (!ec) {
        check = protocol::check_upgrade(parser.request());
        ec = check.ec;
    }
    if (ec) {
        // A real HTTP answer (400/405/414/426/431/505), never a silent drop.
        set_close_info(close_code::abnormal, {}, false, ec);
        report(ec, nullptr, "handshake rejected: " + ec.message());
        const auto response = protocol::reject_response(ec);
        wbuf_.assign(reinterpret_cast<const std::byte*>(response.data()),
                     reinterpret_cast<const std::byte*>(response.data()) + response.size());
        buffered_ = wbuf_.size();
        state_ = connection_state::closed;
        shutdown_after_flush();
        while (!socket_closed_)
            co_await wait_signal();
        co_return false;
    }

    auto request = std::move(parser).take_request();
    const auto response = protocol::accept_response(request);
    std::error_code ep_ec;
    const auto remote = socket_.remote_endpoint(ep_ec);
    const auto local = socket_.local_endpoint(ep_ec);
    handshake_ = handshake_info(std::move(request), check.protocol_version, false, remote, local);
    config_->log.log(log_level::debug, id_, "handshake: GET {} from {} (version {})",
                     handshake_.target(), remote.address().to_string(),
                     handshake_.protocol_version());

    auto [wec, wn] = co_await asio::async_write(socket_, asio::buffer(response), use_tuple);
    (void)wn;
    if (wec) {
        set_close_info(close_code::abnormal, {}, false, wec);
        force_close();
        co_return false;
    }
    cancel_timer();
    state_ = connection_state::open;
    co_return true;
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

void connection_impl::prepare_read_buffer() {
    if (!rbuf_) {
        rbuf_ = std::make_unique<std::byte[]>(read_buffer_size);
        rcap_ = read_buffer_size;
    }
    if (rb_begin_ == rb_end_) {
        rb_begin_ = rb_end_ = 0;
    } else if (rb_begin_ > 0 && rcap_ - rb_end_ < rcap_ / 4) {
        // Keep unconsumed bytes (a partial frame the decoder may have unmasked already) but
        // make room behind them; the decoder only needs them in front and unchanged.
        std::memmove(rbuf_.get(), rbuf_.get() + rb_begin_, rb_end_ - rb_begin_);
        rb_end_ -= rb_begin_;
        rb_begin_ = 0;
    }
}

asio::awaitable<std::optional<message>> connection_impl::receive() {
    if (reader_active_ && state_ == connection_state::closing) {
        // close() is draining the connection on our behalf: just wait for the end.
        auto self = shared_from_this();
        while (state_ != connection_state::closed)
            co_await wait_signal();
        co_return std::nullopt;
    }
    if (reader_active_)
        throw std::system_error(std::make_error_code(std::errc::operation_in_progress),
                                "wscoro: receive() is already pending on this connection");
    reader_active_ = true;
    struct reset_flag {
        bool& flag;
        ~reset_flag() { flag = false; }
    } guard{reader_active_};
    auto self = shared_from_this();

    for (;;) {
        const auto st = state_.load();
        if (st == connection_state::closed || st == connection_state::handshake)
            co_return std::nullopt;
        if (decoder_.limits().max_frame_size != max_frame_size.load(std::memory_order_relaxed)) {
            auto limits = decoder_.limits();
            limits.max_frame_size = max_frame_size.load(std::memory_order_relaxed);
            decoder_.set_limits(limits);
        }

        std::size_t consumed = 0;
        const auto ev =
            decoder_.next(std::span(rbuf_.get() + rb_begin_, rb_end_ - rb_begin_), consumed);
        rb_begin_ += consumed;
        switch (ev.kind) {
            case protocol::event_kind::message:
                log_frame("in", ev.type, ev.payload);
                co_return message(
                    ev.type == opcode::text ? message_type::text : message_type::binary,
                    ev.payload);
            case protocol::event_kind::ping:
                log_frame("in", opcode::ping, ev.payload);
                // RFC 6455 §5.5.2: answer with a Pong carrying the same payload (unless we
                // already sent our Close, after which we send nothing more).
                if (!close_sent_) enqueue(opcode::pong, ev.payload, true);
                if (deliver_control) co_return message(message_type::ping, ev.payload);
                continue;
            case protocol::event_kind::pong:
                log_frame("in", opcode::pong, ev.payload);
                if (deliver_control) co_return message(message_type::pong, ev.payload);
                continue;
            case protocol::event_kind::close:
                log_frame("in", opcode::close, ev.payload);
                on_peer_close(ev);
                co_return std::nullopt;
            case protocol::event_kind::error:
                fail_connection(ev.ec);
                co_return std::nullopt;
            case protocol::event_kind::need_more:
                break;
        }

        prepare_read_buffer();
        auto [ec, n] = co_await socket_.async_read_some(
            asio::buffer(rbuf_.get() + rb_end_, rcap_ - rb_end_), use_tuple);
        if (ec) {
            on_transport_error(ec);
            co_return std::nullopt;
        }
        rb_end_ += n;
    }
}

void connection_impl::on_peer_close(const protocol::decoder_event& ev) {
    std::string reason(ev.close_reason);
    config_->log.log(log_level::debug, id_, "close received: code {} reason '{}'", ev.close_code,
                     reason);
    if (!close_sent_) {
        // RFC 6455 §5.5.1: answer with a Close, echoing the status code received.
        enqueue_close(ev.close_code == close_code::no_status ? 0 : ev.close_code, {});
    }
    cancel_timer();
    set_close_info(ev.close_code, std::move(reason), true, {});
    state_ = connection_state::closed;
    // RFC 6455 §7.1.1: the server closes the TCP connection first, once the Close is out.
    shutdown_after_flush();
    notify();
}

void connection_impl::fail_connection(std::error_code ec) {
    // RFC 6455 §7.1.7 "Fail the WebSocket Connection": send a Close with the code for the
    // error (if we have not sent one yet), then close TCP without waiting for an answer.
    const std::uint16_t code = close_code_for(ec);
    std::string reason = ec.message();
    config_->log.log(log_level::debug, id_, "failing connection: {} (close {})", reason, code);
    if (!close_sent_) enqueue_close(code, reason);
    cancel_timer();
    set_close_info(code, std::move(reason), false, ec);
    state_ = connection_state::closed;
    report(ec, nullptr, "protocol error from peer: " + ec.message());
    shutdown_after_flush();
    notify();
}

void connection_impl::on_transport_error(std::error_code ec) {
    // The TCP connection ended without a closing handshake: 1006 (RFC 6455 §7.1.5). If one
    // of our timers closed the socket, its reason was recorded already.
    set_close_info(close_code::abnormal, {}, false, ec);
    config_->log.log(log_level::debug, id_, "connection dropped: {}", ec.message());
    state_ = connection_state::closed;
    force_close();
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

std::error_code connection_impl::enqueue(opcode op, byte_span payload, bool even_if_closing) {
    const auto st = state_.load();
    // RFC 6455 §5.5.1: no data frames after our Close; nothing at all once closed.
    if (socket_closed_ || st == connection_state::closed || st == connection_state::handshake ||
        (st == connection_state::closing && !even_if_closing) ||
        (close_sent_ && op != opcode::close))
        return make_error_code(error::closed);
    log_frame("out", op, payload);
    std::byte header[protocol::max_header_size];
    const auto hn = protocol::encode_header(header, op, true, payload.size());
    wbuf_.insert(wbuf_.end(), header, header + hn);
    wbuf_.insert(wbuf_.end(), payload.begin(), payload.end());
    buffered_.fetch_add(hn + payload.size(), std::memory_order_relaxed);
    schedule_flush();
    return {};
}

void connection_impl::enqueue_close(std::uint16_t code, std::string_view reason) {
    std::byte body[125];
    std::size_t n = 0;
    if (code != 0) {
        // Control frames carry at most 125 bytes (§5.5): cut the reason on a UTF-8 boundary.
        reason = reason.substr(0, 123);
        while (!reason.empty() && !protocol::is_valid_utf8(reason))
            reason.remove_suffix(1);
        n = protocol::encode_close_payload(body, code, reason);
    }
    if (!enqueue(opcode::close, std::span(body, n), true)) close_sent_ = true;
}

void connection_impl::schedule_flush() {
    // Cork: frames queued while the current handler code runs (e.g. every echo produced
    // from one read) are written together by one posted flush, in one system call.
    if (writing_ || flush_scheduled_) return;
    flush_scheduled_ = true;
    // Posted through the typed executor: any_io_executor would drop the handler's allocator.
    auto flush =
        asio::bind_allocator(handler_allocator<void>(write_memory_), [self = shared_from_this()] {
            self->flush_scheduled_ = false;
            self->start_write();
        });
    std::visit([&](const auto& ex) { asio::post(ex, std::move(flush)); }, strand_);
}

void connection_impl::start_write() {
    if (writing_ || socket_closed_) return;
    if (wbuf_.empty()) {
        if (shutdown_pending_) begin_linger();
        return;
    }
    writing_ = true;
    std::swap(wbuf_, inflight_);
    asio::async_write(
        socket_, asio::buffer(inflight_),
        asio::bind_allocator(handler_allocator<void>(write_memory_),
                             [self = shared_from_this()](std::error_code ec, std::size_t n) {
                                 self->on_write(ec, n);
                             }));
}

void connection_impl::on_write(std::error_code ec, std::size_t n) {
    writing_ = false;
    buffered_.fetch_sub(n, std::memory_order_relaxed);
    inflight_.clear();  // keeps its capacity: no allocation per write in the steady state
    if (ec) {
        if (!socket_closed_) on_transport_error(ec);
        buffered_ = 0;
        wbuf_.clear();
        notify();
        return;
    }
    start_write();
    notify();
}

asio::awaitable<void> connection_impl::wait_below_low_water() {
    if (buffered_.load(std::memory_order_relaxed) <= config_->write_high_water) co_return;
    while (!socket_closed_ && buffered_.load(std::memory_order_relaxed) > config_->write_low_water)
        co_await wait_signal();
}

asio::awaitable<void> connection_impl::send_frame(opcode op, std::span<const std::byte> payload,
                                                  std::error_code* ec) {
    // The common path creates no further coroutine frame: Asio recycles only a couple of
    // frames per thread, so nesting more would allocate per message.
    const auto e = enqueue(op, payload, false);
    if (!e && buffered_.load(std::memory_order_relaxed) > config_->write_high_water)
        co_await wait_below_low_water();
    if (ec)
        *ec = e;
    else if (e)
        throw wscoro::system_error(e);
}

// ---------------------------------------------------------------------------------------------
// Closing
// ---------------------------------------------------------------------------------------------

asio::awaitable<void> connection_impl::close(std::uint16_t code, std::string_view reason,
                                             std::error_code& ec) {
    ec = {};
    if (!close_code::is_sendable(code)) {
        ec = make_error_code(error::invalid_close_code);
        co_return;
    }
    if (reason.size() > 123) {
        ec = make_error_code(error::reason_too_long);
        co_return;
    }
    if (!protocol::is_valid_utf8(reason)) {
        ec = make_error_code(error::invalid_utf8_argument);
        co_return;
    }
    auto self = shared_from_this();
    if (state_ == connection_state::open) {
        config_->log.log(log_level::debug, id_, "closing: code {} reason '{}'", code, reason);
        enqueue_close(code, reason);
        state_ = connection_state::closing;
        start_timer(config_->close_timeout, make_error_code(error::close_timeout));
        notify();
    }
    if (!reader_active_) {
        // Nobody else reads: read (and drop) messages until the peer's Close arrives.
        while (state_ == connection_state::closing)
            (void)co_await receive();
    }
    while (state_ != connection_state::closed)
        co_await wait_signal();
}

asio::awaitable<void> connection_impl::finish(std::uint16_t code, std::string_view reason) {
    auto self = shared_from_this();
    if (state_ == connection_state::open || state_ == connection_state::closing) {
        std::error_code ec;
        co_await close(code, reason, ec);
    }
    while (!socket_closed_)
        co_await wait_signal();
}

void connection_impl::shutdown_after_flush() {
    shutdown_pending_ = true;
    if (!writing_ && !flush_scheduled_) start_write();
}

void connection_impl::begin_linger() {
    if (socket_closed_) return;
    shutdown_pending_ = false;
    // Half-close: our FIN tells the peer we are done (RFC 6455 §7.1.1: the server closes
    // first), then read until its FIN so unread bytes cannot provoke a RST.
    std::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    if (ignored) {
        force_close();
        return;
    }
    start_timer(std::min(config_->close_timeout, max_linger), {});
    prepare_read_buffer();
    rb_begin_ = rb_end_ = 0;
    linger_read();
}

void connection_impl::linger_read() {
    socket_.async_read_some(asio::buffer(rbuf_.get(), rcap_),
                            [self = shared_from_this()](std::error_code ec, std::size_t) {
                                if (ec || self->socket_closed_)
                                    self->force_close();
                                else
                                    self->linger_read();
                            });
}

void connection_impl::force_close() {
    if (socket_closed_) return;
    socket_closed_ = true;
    std::error_code ignored;
    socket_.close(ignored);
    cancel_timer();
    if (state_ != connection_state::closed) {
        set_close_info(close_code::abnormal, {}, false, make_error_code(error::closed));
        state_ = connection_state::closed;
    }
    config_->log.log(log_level::debug, id_, "socket closed");
    notify();
}

void connection_impl::start_timer(std::chrono::milliseconds after, std::error_code reason) {
    if (!timer_) timer_.emplace(socket_.get_executor());
    timer_reason_ = reason;
    timer_->expires_after(after);
    timer_->async_wait([self = shared_from_this(), reason](std::error_code ec) {
        if (ec || self->timer_reason_ != reason) return;  // cancelled or re-armed
        if (reason) {
            self->config_->log.log(log_level::debug, self->id_, "{}", reason.message());
            self->set_close_info(close_code::abnormal, {}, false, reason);
            self->report(reason, nullptr, reason.message());
        }
        self->force_close();
    });
}

void connection_impl::cancel_timer() {
    if (timer_) timer_->cancel();
}

void connection_impl::set_close_info(std::uint16_t code, std::string reason, bool clean,
                                     std::error_code ec) {
    std::lock_guard lock(info_mutex_);
    if (close_info_final_) return;  // the first account of how it ended wins
    close_info_ = {code, std::move(reason), clean, ec};
    close_info_final_ = true;
}

wscoro::close_info connection_impl::get_close_info() const {
    std::lock_guard lock(info_mutex_);
    return close_info_;
}

void connection_impl::notify() {
    if (signal_) signal_->cancel();
}

asio::awaitable<void> connection_impl::wait_signal() {
    if (!signal_) {
        signal_.emplace(socket_.get_executor());
        signal_->expires_at(asio::steady_timer::time_point::max());
    }
    (void)co_await signal_->async_wait(use_tuple);
}

void connection_impl::report(std::error_code ec, std::exception_ptr ex, std::string text) {
    error_report r;
    r.code = ec;
    r.exception = std::move(ex);
    r.message = std::move(text);
    r.connection_id = id_;
    r.handshake = state_ == connection_state::handshake ? nullptr : &handshake_;
    try {
        if (config_->on_error) {
            config_->on_error(r);
        } else {
            const auto level = ec == error::application_error ? log_level::error : log_level::debug;
            config_->log.log(level, id_, "{}", r.message);
        }
    } catch (...) {
        // on_error must not throw; if it does, keep the connection machinery intact.
        config_->log.log(log_level::error, id_, "on_error threw an exception");
    }
}

void connection_impl::log_frame(const char* dir, opcode op, byte_span payload) const {
    const auto& log = config_->log;
    if (!log.enabled(log_level::debug)) return;
    if (log.enabled(log_level::trace)) {
        constexpr std::size_t max_shown = 64;
        const auto shown = payload.first(std::min(payload.size(), max_shown));
        std::string excerpt;
        for (auto b : shown) {
            const auto c = static_cast<unsigned char>(b);
            excerpt += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '.';
        }
        log.log(log_level::trace, id_, "frame {}: {} len={} '{}'{}", dir, opcode_name(op),
                payload.size(), excerpt, payload.size() > max_shown ? "..." : "");
    } else {
        log.log(log_level::debug, id_, "frame {}: {} len={}", dir, opcode_name(op), payload.size());
    }
}

}  // namespace wscoro::detail

// -------------------------------------------------------------------------------------------------
// The public handle: hop to the connection's strand, then call the implementation.
// -------------------------------------------------------------------------------------------------

namespace wscoro {

namespace {
using detail::connection_impl;
using protocol::opcode;

// The public members are plain functions returning the implementation's awaitable, so a send
// or receive on the connection's own strand costs one coroutine frame. From elsewhere, the
// operation is spawned on the strand with an owned copy of the payload (the caller's bytes
// may be gone by the time the strand runs it).

asio::awaitable<void> send_owned(std::shared_ptr<connection_impl> impl, opcode op,
                                 std::vector<std::byte> payload, std::error_code* ec) {
    co_await impl->send_frame(op, payload, ec);
}

asio::awaitable<void> fail_with(std::error_code e, std::error_code* ec) {
    if (!ec) throw wscoro::system_error(e);
    *ec = e;
    co_return;
}

asio::awaitable<void> send_any(const std::shared_ptr<connection_impl>& impl, opcode op,
                               std::span<const std::byte> payload, std::error_code* ec) {
    if (!impl) return fail_with(make_error_code(error::closed), ec);
    if (impl->on_strand()) return impl->send_frame(op, payload, ec);
    std::vector<std::byte> owned(payload.begin(), payload.end());
    auto op_awaitable = send_owned(impl, op, std::move(owned), ec);
    return asio::co_spawn(impl->executor(), std::move(op_awaitable), asio::use_awaitable);
}

asio::awaitable<void> send_text(const std::shared_ptr<connection_impl>& impl, std::string_view text,
                                std::error_code* ec) {
    // A text frame must carry UTF-8 (RFC 6455 §5.6); refuse rather than have the peer fail.
    if (!protocol::is_valid_utf8(text))
        return fail_with(make_error_code(error::invalid_utf8_argument), ec);
    return send_any(impl, opcode::text, std::as_bytes(std::span(text.data(), text.size())), ec);
}

asio::awaitable<std::error_code> close_on_strand(std::shared_ptr<connection_impl> impl,
                                                 std::uint16_t code, std::string reason) {
    std::error_code ec;
    co_await impl->close(code, reason, ec);
    co_return ec;
}

asio::awaitable<std::optional<message>> receive_on_strand(std::shared_ptr<connection_impl> impl) {
    co_return co_await impl->receive();
}

asio::awaitable<std::optional<message>> nothing_to_receive() {
    co_return std::nullopt;
}

asio::awaitable<bool> send_control(const std::shared_ptr<connection_impl>& impl, opcode op,
                                   std::string_view body, bool pingable) {
    // RFC 6455 §5.5: control frame payloads are at most 125 bytes.
    if (body.size() > 125) throw wscoro::system_error(make_error_code(error::control_too_big));
    if (!pingable) co_return false;
    co_await send_any(impl, op, std::as_bytes(std::span(body.data(), body.size())), nullptr);
    co_return true;
}

void throw_if(std::error_code ec) {
    if (ec) throw wscoro::system_error(ec);
}
}  // namespace

asio::awaitable<std::optional<message>> connection::receive() const {
    if (!impl_) return nothing_to_receive();
    if (impl_->on_strand()) return impl_->receive();
    return asio::co_spawn(impl_->executor(), receive_on_strand(impl_), asio::use_awaitable);
}

asio::awaitable<void> connection::send(std::string_view text, std::error_code& ec) const {
    ec = {};
    return send_text(impl_, text, &ec);
}

asio::awaitable<void> connection::send(std::string_view text) const {
    return send_text(impl_, text, nullptr);
}

asio::awaitable<void> connection::send_binary(std::span<const std::byte> data,
                                              std::error_code& ec) const {
    ec = {};
    return send_any(impl_, opcode::binary, data, &ec);
}

asio::awaitable<void> connection::send_binary(std::span<const std::byte> data) const {
    return send_any(impl_, opcode::binary, data, nullptr);
}

asio::awaitable<void> connection::send(const message& msg) const {
    opcode op = opcode::binary;
    switch (msg.type()) {
        case message_type::text:
            op = opcode::text;
            break;
        case message_type::binary:
            op = opcode::binary;
            break;
        case message_type::ping:
            op = opcode::ping;
            break;
        case message_type::pong:
            op = opcode::pong;
            break;
    }
    return send_any(impl_, op, msg.data(), nullptr);
}

asio::awaitable<bool> connection::ping(std::string_view body) const {
    return send_control(impl_, opcode::ping, body, pingable());
}

asio::awaitable<bool> connection::pong(std::string_view body) const {
    return send_control(impl_, opcode::pong, body, pingable());
}

asio::awaitable<void> connection::close(std::uint16_t code, std::string_view reason) const {
    if (!impl_) co_return;
    auto impl = impl_;  // this handle may be gone once we are suspended
    std::error_code ec;
    if (impl->on_strand()) {
        co_await impl->close(code, reason, ec);
    } else {
        auto op = close_on_strand(impl, code, std::string(reason));
        ec = co_await asio::co_spawn(impl->executor(), std::move(op), asio::use_awaitable);
    }
    throw_if(ec);
}

void connection::deliver_control_frames(bool on) const noexcept {
    if (impl_) impl_->deliver_control = on;
}

bool connection::pingable() const noexcept {
    return impl_ && impl_->handshake().protocol_version() >= 1 &&
           impl_->handshake().protocol_version() < 75;
}

bool connection::supports_close_codes() const noexcept {
    return impl_ && impl_->handshake().protocol_version() >= 6 &&
           impl_->handshake().protocol_version() < 75;
}

connection_state connection::state() const noexcept {
    return impl_ ? impl_->state() : connection_state::closed;
}

std::size_t connection::buffered_amount() const noexcept {
    return impl_ ? impl_->buffered_amount() : 0;
}

const handshake_info& connection::handshake() const noexcept {
    static const handshake_info none;
    return impl_ ? impl_->handshake() : none;
}

wscoro::close_info connection::close_info() const {
    return impl_ ? impl_->get_close_info() : wscoro::close_info{};
}

std::uint64_t connection::max_frame_size() const noexcept {
    return impl_ ? impl_->max_frame_size.load() : 0;
}

void connection::set_max_frame_size(std::uint64_t bytes) const noexcept {
    if (impl_) impl_->max_frame_size = bytes;
}

asio::any_io_executor connection::get_executor() const noexcept {
    return impl_ ? impl_->executor() : asio::any_io_executor();
}

std::uint64_t connection::id() const noexcept {
    return impl_ ? impl_->id() : 0;
}

}  // namespace wscoro
