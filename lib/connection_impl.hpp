#pragma once
// Private: the per-connection state behind wscoro::connection. Every member function runs on
// the connection's strand (the public wrappers in connection.cpp hop there first).

#include <array>
#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include <asio/io_context.hpp>

#include "wscoro/config.hpp"
#if WSCORO_HAS_TLS
#include <asio/ssl/stream.hpp>
#endif

#include "byte_buffer.hpp"
#include "handler_memory.hpp"
#include "socket_fast_path.hpp"
#include "tls_context.hpp"
#include "wscoro/connection.hpp"
#include "wscoro/options.hpp"
#include "wscoro/prepared_message.hpp"
#include "wscoro/protocol/codec.hpp"
#include "wscoro/protocol/frame.hpp"

namespace wscoro::detail {

/// Payloads at least this large are written from the sender's memory (gather write, no
/// copy); smaller ones are copied into the write queue, where they coalesce with others.
inline constexpr std::size_t zero_copy_threshold = 64 * 1024;

/// A prepared message's frame up to this size is copied into the write queue rather than
/// queued by reference: below it the copy costs less than sharing (test/bench/fanout_bench,
/// 1 000 connections: 128 B 475 against 538 us per round, 512 B 501 against 562; from 1 KiB
/// on the reference wins, 640 against 727).
inline constexpr std::size_t prepared_copy_limit = 512;

/// An IP network (address + prefix length), for server_options::trusted_proxies. IPv4
/// addresses are kept in their IPv4-mapped IPv6 form so one comparison serves both.
struct ip_network {
    std::array<unsigned char, 16> bytes{};
    unsigned prefix = 128;

    /// Parses "10.0.0.0/8", "::1", "192.168.1.7"; throws std::invalid_argument if malformed.
    static ip_network parse(const std::string& text);
    bool contains(const asio::ip::address& a) const noexcept;
};

/// What every connection of a server shares (immutable once the server listens).
struct connection_config {
    protocol::frame_limits limits;
    protocol::http_limits http_limits;
    wscoro::timeouts timeouts;
    slow_consumer_policy slow_consumer = slow_consumer_policy::suspend;
    std::size_t max_outbound = 0;
    std::size_t write_high_water = 0;
    std::size_t write_low_water = 0;
    logger log;
    std::function<void(const error_report&)> on_error;

    bool secure_proxy = false;
    std::set<int> protocol_versions;
    std::vector<ip_network> trusted_proxies;
    bool trust_forwarded_headers = false;
    bool proxy_protocol = false;
    handshake_hook on_handshake;
    std::string health_check_path;
    bool flash_policy = true;
    std::string flash_policy_xml;
#if WSCORO_HAS_TLS
    std::shared_ptr<tls_context> tls;  // null unless server_options::secure
#endif

    bool is_trusted_proxy(const asio::ip::address& a) const noexcept {
        for (const auto& n : trusted_proxies)
            if (n.contains(a)) return true;
        return false;
    }
};

#if WSCORO_HAS_TLS
using tls_stream = asio::ssl::stream<asio::ip::tcp::socket>;
// The TLS stream (about 440 bytes) lives on the heap: a plain-TCP connection pays 8 bytes for
// it, not the size of the largest alternative.
using transport = std::variant<asio::ip::tcp::socket, std::unique_ptr<tls_stream>>;
inline tls_stream& stream_of(std::unique_ptr<tls_stream>& s) noexcept {
    return *s;
}
#else
using transport = std::variant<asio::ip::tcp::socket>;
#endif
inline asio::ip::tcp::socket& stream_of(asio::ip::tcp::socket& s) noexcept {
    return s;
}

/// The strand a connection runs on. For an io_context's executor it is a strand of the typed
/// executor: that fits in any_io_executor's small-object buffer, whereas a strand of an
/// any_io_executor does not, and every async operation's work-tracking copy would then
/// allocate.
///
/// When the server is told its io_context runs on one thread (server_options::single_threaded)
/// there is no strand at all: the io_context's executor already serialises everything, and a
/// strand would only add a lock and two extra operations to every completion.
using io_strand = asio::strand<asio::io_context::executor_type>;
using any_strand = asio::strand<asio::any_io_executor>;
using strand_variant = std::variant<asio::io_context::executor_type, io_strand, any_strand>;

/// The executor for a new connection on `ex`: `ex` itself when single-threaded and an
/// io_context executor, else a new strand of it (typed when `ex` is an io_context executor).
strand_variant make_connection_strand(const asio::any_io_executor& ex, bool single_threaded);

/// Read buffers are whole pages from mmap(): memory given back is returned to the system at
/// once, so a burst of busy connections leaves no heap behind (RSS returns to its baseline).
struct read_buffer_deleter {
    void operator()(std::byte* p) const noexcept;
};
using read_buffer = std::unique_ptr<std::byte[], read_buffer_deleter>;

class connection_impl;

/// A parked connection (server_options::park_idle_after): what an idle event-driven
/// connection needs to be rebuilt, about 300 bytes with its folded handshake, against some
/// 2.5 KiB for the live object. Owns the socket descriptor.
struct parked_connection {
    parked_connection* prev = nullptr;  // in its parking lot's list
    parked_connection* next = nullptr;
    std::string handshake;  // handshake_info::fold()
    std::uint64_t id = 0;
    std::uint64_t max_frame_size = 0;
    std::chrono::steady_clock::time_point last_read{};  // for keep-alive pings and idle timeout
    int fd = -1;
    bool v6 = false;
    bool deliver_control = false;

    parked_connection() = default;
    parked_connection(const parked_connection&) = delete;
    parked_connection& operator=(const parked_connection&) = delete;
    ~parked_connection();
};

/// Where a connection served with callbacks (server::serve(event_handlers)) reports. The
/// server implements it: the application's callbacks plus the connection registry.
class event_sink {
  public:
    virtual ~event_sink() = default;
    virtual void open(const connection& c) = 0;
    virtual void message(const connection& c, const wscoro::message& m) = 0;
    virtual void closed(const connection& c, const close_info& info) = 0;
    /// The connection is over (closed() has run): forget it.
    virtual void finished(const std::shared_ptr<connection_impl>& c) = 0;
    /// A callback threw (reported and the connection closing already): rethrow it out of
    /// io_context::run() if the server was asked to (rethrow_handler_exceptions).
    virtual void rethrow(std::exception_ptr ex) = 0;

    // Parking (server_options::park_idle_after): when parks() is true the connection calls
    // waiting() as it is about to wait for data, and woke() (while linked) when the wait ends
    // or the connection closes. waiting() returns true if it parked the connection at once
    // (then it must not wait: the socket is gone).
    virtual bool parks() const noexcept { return false; }
    virtual bool waiting(connection_impl&) noexcept { return false; }
    virtual void woke(connection_impl&) noexcept {}
};

/// True if `ex` is a wscoro::system_error (or std::system_error) with error::closed: a send
/// after the peer left, a normal end for a handler rather than a failure.
bool is_closed_error(const std::exception_ptr& ex);
/// what() of the exception, or "unknown exception".
std::string describe(const std::exception_ptr& ex);

class connection_impl : public std::enable_shared_from_this<connection_impl> {
  public:
    /// `peer` and `local` are the socket's endpoints if known (port 0: ask the socket).
    connection_impl(asio::ip::tcp::socket socket, strand_variant strand,
                    std::shared_ptr<const connection_config> config, std::uint64_t id,
                    asio::ip::tcp::endpoint peer = {}, asio::ip::tcp::endpoint local = {});
    ~connection_impl();

    // --- lifecycle, driven by the server's per-connection coroutine ---
    /// Reads the upgrade request and answers it. True if the connection is now open.
    asio::awaitable<bool> accept_handshake();
    /// After the handler: closes with `code` if still open, then waits until the socket is
    /// closed (every path is bounded by close_timeout or the linger time).
    asio::awaitable<void> finish(std::uint16_t code, std::string_view reason);
    /// Refuses a connection beyond server_options::max_connections: 503 (plain TCP) or a
    /// close (TLS, where an answer would need a full handshake).
    asio::awaitable<void> reject_busy();

    // --- the API (on the strand) ---
    asio::awaitable<std::optional<message>> receive();
    /// The next message if it is complete in bytes already read; never suspends (see
    /// connection::try_receive).
    std::optional<message> try_receive();
    /// Queues a copy of one frame if that needs no waiting (see connection::try_send).
    bool try_send(protocol::opcode op, std::span<const std::byte> payload);
    /// Queues one frame, then waits while the queue is above the high-water mark. Errors go
    /// to `*ec`, or are thrown as wscoro::system_error when `ec` is null.
    asio::awaitable<void> send_frame(protocol::opcode op, std::span<const std::byte> payload,
                                     std::error_code* ec);
    asio::awaitable<void> close(std::uint16_t code, std::string_view reason, std::error_code& ec);
    /// Queues a complete prepared RFC 6455 frame by reference (no copy), or its payload
    /// re-framed for older protocol versions.
    asio::awaitable<void> send_prepared(const prepared_message& msg, std::error_code* ec);
    /// Starts the closing handshake without waiting (connection::start_close); close() waits
    /// for its end.
    std::error_code start_close(std::uint16_t code, std::string_view reason);
    /// Serves the open connection with callbacks instead of a handler coroutine: on_open
    /// now, then a message callback per message read, then closed() and finished() once the
    /// socket is closed. The callbacks are this connection's reader for good.
    void start_events(std::shared_ptr<event_sink> sink);
    /// Queues a copy of one frame without waiting, whatever the queue holds
    /// (connection::send_now). On the strand only.
    std::error_code send_now(protocol::opcode op, std::span<const std::byte> payload);
    /// Queues a prepared message without waiting (connection::send_now).
    std::error_code send_now(const prepared_message& msg);
    // --- parking (server_options::park_idle_after), driven by the server's parking lot ---
    /// True if this waiting connection can be folded: served with parking callbacks, open,
    /// nothing received of a next frame, nothing queued or being written, no timer, and no
    /// holder but the server's registry and the wait itself.
    bool parkable() const noexcept;
    /// The record for folding this connection; the socket stays registered with Asio (and
    /// owned here) until release_for_parking().
    std::unique_ptr<parked_connection> fold();
    /// Hands the socket over to the record: Asio forgets it and ends the pending wait
    /// (aborted, ignored), after which this object goes away.
    void release_for_parking() noexcept;
    /// Rebuilds a folded connection in this new object, made for the record's socket, then
    /// reads what woke it (or, woken for keep-alive, finds nothing and pings).
    void unfold(const parked_connection& rec, std::shared_ptr<event_sink> sink);
    // The parking lot's list of waiting connections (oldest first), and whether the socket
    // is in the lot's epoll set already (parked before: re-armed, not added).
    connection_impl* lot_prev = nullptr;
    connection_impl* lot_next = nullptr;
    std::uint32_t lot_tick = 0;
    bool lot_linked = false;
    bool lot_waited = false;  // it waited before (is not fresh from its handshake)
    bool in_lot_epoll = false;

    /// Closes the socket at once (server shutdown after the close timeout, fatal errors).
    void force_close();
    /// Reports an error to on_error (never throws).
    void report(std::error_code ec, std::exception_ptr ex, std::string message);

    /// The connection's strand, as an executor.
    asio::any_io_executor executor() const noexcept { return executor_; }
    /// True when called from code running on the connection's strand.
    bool on_strand() const noexcept {
        return std::visit([](const auto& s) { return s.running_in_this_thread(); }, strand_);
    }
    std::uint64_t id() const noexcept { return id_; }
    connection_state state() const noexcept { return state_.load(std::memory_order_acquire); }
    std::size_t buffered_amount() const noexcept {
        return buffered_.load(std::memory_order_relaxed);
    }
    const handshake_info& handshake() const noexcept { return handshake_; }
    wscoro::close_info get_close_info() const;
    std::atomic<bool> deliver_control{false};
    std::atomic<std::uint64_t> max_frame_size;

  private:
    using byte_span = std::span<const std::byte>;

    // write side
    std::error_code enqueue(protocol::opcode op, byte_span payload, bool even_if_closing);
    /// Queues a prepared message: its shared frame by reference (RFC 6455; a copy of it up to
    /// prepared_copy_limit), or its payload re-framed for older protocol versions.
    std::error_code enqueue_prepared(const prepared_message& msg);
    /// After a frame queued by send_now(): with slow_consumer_policy::close, a queue above
    /// max_outbound closes the connection (error::slow_consumer).
    std::error_code check_slow_consumer() {
        if (config_->slow_consumer == slow_consumer_policy::close &&
            buffered_.load(std::memory_order_relaxed) > config_->max_outbound) [[unlikely]]
            return close_slow_consumer();
        return {};
    }
    std::error_code close_slow_consumer();
    /// Queues `header` (copied) then `external` by reference: `keep` holds the bytes alive
    /// until written (null: the caller waits for the write, see send_frame). Returns the
    /// write generation that completes once these bytes are written.
    std::uint64_t enqueue_external(byte_span header, byte_span external,
                                   std::shared_ptr<const void> keep);
    std::error_code check_can_send(protocol::opcode op, bool even_if_closing) const;
    void enqueue_close(std::uint16_t code, std::string_view reason);
    /// Cork: frames queued while more of a read is left to decode (e.g. the echoes of a
    /// pipelined batch) are written together, in one system call, by one posted flush or
    /// the reader's flush before it waits. (While event callbacks run, event_read flushes
    /// when they return.)
    void schedule_flush() {
        if (writing_ || flush_scheduled_ || in_dispatch_) return;
        // Nothing left in the read buffer: no further reply can join this write before the
        // handler reads again (which means a wait), so the first frame queued after a read
        // goes out now, with no posted flush. Later ones before the next read are corked.
        if (rb_begin_ == rb_end_ && immediate_write_read_ != reads_ &&
            std::holds_alternative<asio::ip::tcp::socket>(stream_)) {
            immediate_write_read_ = reads_;
            start_write();
            return;
        }
        post_flush();
    }
    void post_flush();
    void start_write();
    /// Writes what is queued now (receive() calls it before waiting for more data).
    void flush_now();
    void on_write(std::error_code ec, std::size_t n);
    /// After a successful write: a late pong, what was queued meanwhile, a pending
    /// half-close, a paused reader and waiters on the queue.
    void after_write();
    asio::awaitable<void> wait_below_low_water();

    // opening handshake steps
    asio::awaitable<std::error_code> read_more();
    asio::awaitable<std::optional<asio::ip::tcp::endpoint>> read_proxy_header();
    asio::awaitable<bool> refuse(std::error_code ec, std::string response);
    asio::awaitable<bool> answer_flash_policy();
    void apply_forwarded_headers();
    void collect_tls_details();

    // transport
    asio::ip::tcp::socket& tcp() noexcept;
#if WSCORO_HAS_TLS
    /// The TLS stream, or null for plain TCP.
    tls_stream* tls_or_null() noexcept {
        auto* p = std::get_if<std::unique_ptr<tls_stream>>(&stream_);
        return p ? p->get() : nullptr;
    }
#endif

    // read side
    enum class decode_result { message, again, ended, need_more };
    /// Decodes the next event from the read buffer and acts on it (pings answered, the
    /// peer's Close answered, protocol errors failing the connection). `message`: `out`
    /// holds it; `again`: a control frame was handled; `ended`: the connection is closing;
    /// `need_more`: nothing complete is buffered.
    decode_result decode_step(std::optional<message>& out) {
        // Nothing buffered and nothing of a frame pending: nothing to decode (the common end
        // of every batch; the decoder's general path would only say the same).
        if (rb_begin_ == rb_end_ && decoder_.idle()) return decode_result::need_more;
        return decode_buffered(out);
    }
    decode_result decode_buffered(std::optional<message>& out);
    /// Acts on one decoder event as decode_step describes.
    decode_result handle_event(const protocol::decoder_event& ev, std::optional<message>& out);
    void prepare_read_buffer();
    void release_read_buffer();
    void trim_write_buffers(std::size_t keep);
    /// Steady traffic keeps its write-queue capacity (no allocation per batch of echoes). A
    /// connection holding more than zero_copy_threshold gives it back after a quiet
    /// write_capacity_linger; one timer, armed only for such connections.
    void trim_write_buffers_later() {
        if (!trim_timer_armed_ && !socket_closed_ &&
            std::max(wbuf_.capacity(), inflight_.capacity()) > zero_copy_threshold) [[unlikely]]
            arm_trim_timer();
    }
    void arm_trim_timer();
    /// One non-blocking recv() into the read buffer's free space.
    std::size_t read_now(asio::ip::tcp::socket& sock, std::error_code& ec);
    enum class recv_status { data, would_block, closed, failed };
    /// One non-blocking recv() into `into`: `n` bytes, or would_block, closed (end of
    /// stream) or failed (errno says why). Sets last_read_full_.
    recv_status recv_some(asio::ip::tcp::socket& sock, std::span<std::byte> into,
                          std::size_t& n) noexcept;
    /// As recv_some, with the outcome as an error_code (would_block included).
    std::size_t recv_now(asio::ip::tcp::socket& sock, std::span<std::byte> into,
                         std::error_code& ec);
    void on_peer_close(const protocol::decoder_event& ev);
    /// Bytes came in: the peer is alive (keep-alive pings and the idle timeout count from here).
    void note_read() noexcept {
        if (keepalive_) {
            last_read_ = std::chrono::steady_clock::now();
            ping_outstanding_ = false;
        }
    }

    // event-driven serving (start_events)
    /// Hands every complete message already read to the callbacks, then reads (once
    /// `readable` says the socket has data, or the last read filled its buffer) or waits
    /// for data without holding a buffer. `h` keeps the connection alive meanwhile.
    void event_read(connection h, bool readable);
    /// A wait for data of event_read completed (`ec`): read on, unless the connection was
    /// parked or closed meanwhile.
    static void read_wait_done(connection h, const std::error_code& ec);
    void event_read_tls(connection h);
    /// event_read(h, false) from the strand's queue (no callbacks nest in the caller's).
    void post_event_read(connection h);
    /// Runs a callback; an exception is reported and closes the connection with 1011.
    template <class F>
    void event_call(F&& f);
    /// The socket is closed: the close callback, then the server forgets the connection.
    void event_end();
    void fail_connection(std::error_code ec);
    void on_transport_error(std::error_code ec);

    // teardown
    void shutdown_after_flush();
    void begin_linger();
    void linger_read();
    void set_close_info(std::uint16_t code, std::string reason, bool clean, std::error_code ec);
    void start_timer(std::chrono::milliseconds after, std::error_code reason);
    void cancel_timer();

    // keep-alive pings and idle detection: one timer, re-armed from timestamps, so reads
    // cost a clock read and no timer operation
    /// Arms keep-alive pings and the idle timeout (if configured), counting from `last_read`.
    void start_keepalive(std::chrono::steady_clock::time_point last_read);
    void arm_keepalive();
    void on_keepalive();
    /// Starts a closing handshake we decided on (idle timeout, slow consumer, ...): `why`
    /// goes into close_info().error however the handshake ends.
    void close_for(std::error_code why, std::uint16_t code, std::string_view reason);

    // "something changed" signal for waiters (backpressure, close completion)
    void notify() {
        if (signal_) [[unlikely]]
            signal_->cancel();
    }
    asio::awaitable<void> wait_signal();

    /// Frame logging: the level test is inline so that disabled logging costs a compare.
    void log_frame(const char* dir, protocol::opcode op, byte_span payload) const {
        if (config_->log.enabled(log_level::debug)) log_frame_slow(dir, op, payload);
    }
    void log_frame_slow(const char* dir, protocol::opcode op, byte_span payload) const;

    asio::ip::tcp::endpoint peer_;
    asio::ip::tcp::endpoint local_;
    transport stream_;
    strand_variant strand_;
    asio::any_io_executor executor_;
    std::shared_ptr<const connection_config> config_;
    std::uint64_t id_;
    std::atomic<connection_state> state_{connection_state::handshake};
    handshake_info handshake_;

    // read buffer: [rb_begin_, rb_end_) holds received bytes not consumed by the decoder
    read_buffer rbuf_;
    std::size_t rcap_ = 0;
    std::size_t rb_begin_ = 0;
    std::size_t rb_end_ = 0;
    protocol::codec decoder_;  // chosen by the negotiated protocol version
    // decoder_'s max_frame_size (compared per decode with max_frame_size, which the
    // application may change; every codec made here starts from config_->limits).
    std::uint64_t decoder_max_frame_;
    bool reader_active_ = false;
    readable_wait_cache wait_cache_;  // (the socket's reactor, for async_wait_readable)
#if WSCORO_SOCKET_FAST_PATH
    // Served with callbacks on plain TCP without a strand: the one wait for data, reused,
    // and the reference that keeps this object alive while it is pending (on_read_wait).
    // (Made at the first wait: a coroutine-served connection carries only the pointer.)
    struct read_wait_state {
        reusable_readable_wait op;
        connection hold;
    };
    std::unique_ptr<read_wait_state> read_wait_;
    std::int8_t reusable_wait_ = -1;  // used (1) or not (0, on a strand); -1: not known yet
    static void on_read_wait(void* self, const std::error_code& ec, bool destroying);
#endif
    // Served with callbacks (start_events): where they go. in_dispatch_: callbacks are
    // running and event_read flushes the queue when they return, so queueing posts no
    // flush. read_paused_: reading stopped for backpressure, on_write resumes it.
    std::shared_ptr<event_sink> events_;
    bool in_dispatch_ = false;
    bool read_paused_ = false;
    bool end_posted_ = false;
    bool parks_ = false;           // events_->parks(): report waits to the parking lot
    bool parked_ = false;          // folded into a parked_connection: this object is done
    bool last_read_full_ = false;  // the last plain-TCP read filled the space it was given
    // Plain-TCP reads with data, and the read after which schedule_flush last wrote at once.
    std::uint32_t reads_ = 0;
    std::uint32_t immediate_write_read_ = ~std::uint32_t{0};
    bool peer_close_received_ = false;
    // The peer's Close arrived and ours is queued: close_info() becomes {code, reason, clean}
    // once ours is written (begin_linger), or 1006 if the write fails.
    bool clean_close_pending_ = false;
    std::uint16_t pending_close_code_ = 0;
    std::string pending_close_reason_;

    // write queue: frames are appended to wbuf_; the one write in flight owns inflight_
    byte_buffer wbuf_;
    byte_buffer inflight_;
    // Bytes not in wbuf_ (a prepared message shared by many connections, a large payload
    // written from the caller's memory): the queue is then a list of segments, inline runs
    // of wbuf_ (data == nullptr, `offset` into it) and external spans, written with one
    // gather write. Empty in the common case, where wbuf_ alone is written.
    struct segment {
        const std::byte* data;
        std::size_t size;
        std::size_t offset;
        std::shared_ptr<const void> keep;
    };
    std::vector<segment> segs_;
    std::vector<segment> inflight_segs_;
    std::size_t inline_mark_ = 0;  // wbuf_ bytes before this offset are in segs_ already
    std::vector<asio::const_buffer> gather_;
    std::uint64_t queued_gen_ = 0;    // bumped per external segment
    std::uint64_t inflight_gen_ = 0;  // the generation the write in flight completes
    std::uint64_t written_gen_ = 0;
    std::atomic<std::size_t> buffered_{0};  // read anywhere, written on the strand only
    /// A plain load and store: only the strand writes buffered_, and a locked fetch_add per
    /// message costs more than the rest of queueing a small frame.
    void add_buffered(std::size_t n) noexcept {
        buffered_.store(buffered_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void sub_buffered(std::size_t n) noexcept {
        buffered_.store(buffered_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
    }
    // For the posted flush and the socket write; allocated by the first flush, so that a
    // connection that never sends holds none.
    std::unique_ptr<handler_memory> write_memory_;
    handler_memory& write_memory() {
        if (!write_memory_) write_memory_ = std::make_unique<handler_memory>();
        return *write_memory_;
    }
    // Write-queue capacity beyond zero_copy_threshold is kept while writing, given back
    // when quiet (trim_write_buffers_later).
    std::uint32_t writes_ = 0;
    std::uint32_t writes_at_arm_ = 0;
    bool trim_timer_armed_ = false;
    std::unique_ptr<asio::steady_timer> trim_timer_;
    std::unique_ptr<timer_handler_memory> trim_memory_;
    bool writing_ = false;
    bool flush_scheduled_ = false;
    bool close_sent_ = false;
    bool shutdown_pending_ = false;  // half-close once the queue is flushed
    bool linger_started_ = false;    // begin_linger ran (it runs once)
    bool socket_closed_ = false;

    std::optional<asio::steady_timer> timer_;  // handshake, close or linger deadline
    std::error_code timer_reason_;             // what the armed timer means on expiry
    // Timers made when first needed: most connections never wait, ping or trim.
    std::unique_ptr<asio::steady_timer> signal_;  // never expires; cancel() wakes waiters

    std::unique_ptr<asio::steady_timer> keepalive_;
    bool keepalive_armed_ = false;  // its wait is pending (and holds a reference)
    std::chrono::steady_clock::time_point last_read_{};
    std::chrono::steady_clock::time_point ping_deadline_{};
    bool ping_outstanding_ = false;
    std::error_code close_reason_;  // why we started closing, for close_info().error

    // A peer that floods pings without reading: only the latest ping is answered once the
    // queue drains (RFC 6455 §5.5.3 allows answering just the most recent one).
    std::unique_ptr<std::array<std::byte, 125>> late_pong_;  // (made by the first flood)
    std::size_t late_pong_size_ = 0;
    bool late_pong_pending_ = false;

    mutable std::mutex info_mutex_;
    wscoro::close_info close_info_;
    bool close_info_final_ = false;
};

}  // namespace wscoro::detail
