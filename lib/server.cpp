#include "wscoro/server.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#include <netinet/tcp.h>
#endif
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "connection_impl.hpp"
#include "socket_fast_path.hpp"
#include "tls_context.hpp"
#include "wscoro/protocol/handshake.hpp"

namespace wscoro {

using asio::ip::tcp;
using detail::connection_impl;
// SO_REUSEPORT lives in asio::detail: keep our own name for it.
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

namespace {
class event_bridge;
}

struct server::state : std::enable_shared_from_this<server::state> {
    asio::any_io_executor executor;
    server_options options;
    std::shared_ptr<const detail::connection_config> config;
    std::shared_ptr<const wscoro::handler> handler;  // one of these two
    std::shared_ptr<const event_handlers> events;
    // One listener per io_context: the caller's (threads <= 1), or one per server-owned
    // context and thread (threads > 1), each with its own SO_REUSEPORT acceptor so the kernel
    // spreads connections and every connection stays on the thread that accepted it.
    struct listener {
        asio::any_io_executor executor;
        std::unique_ptr<tcp::acceptor> acceptor;
        bool single_threaded = false;
        tcp::endpoint bound_local;  // every connection's local endpoint, unless a wildcard
        // Connections of this listener alive, and how many reactor records were reserved
        // for them (see reserve_reactor_records).
        std::shared_ptr<std::atomic<std::size_t>> live =
            std::make_shared<std::atomic<std::size_t>>(0);
        std::size_t reserved = 0;
        // Serving with callbacks: the listener's event bridge and parking lot, and how many
        // connections are parked (written by the bridge only, read anywhere).
        std::weak_ptr<event_bridge> bridge;
        std::shared_ptr<std::atomic<std::size_t>> parked =
            std::make_shared<std::atomic<std::size_t>>(0);
    };
    std::vector<listener> listeners;
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::vector<std::thread> threads;
    tcp::endpoint local;
    std::mutex mutex;  // guards `connections` (connections live on different strands)
    // Every open connection, for stop(). Not owning: a connection lives as long as something
    // of its own is pending (a wait, a write, a timer, its handler coroutine). Owning
    // references here would form a cycle (connection -> event bridge -> this state ->
    // connection) that nothing breaks when the io_context is destroyed with connections open.
    std::unordered_map<const connection_impl*, std::weak_ptr<connection_impl>> connections;
    std::atomic<bool> stopping{false};
    std::atomic<std::size_t> count{0};
    std::atomic<std::uint64_t> next_id{1};
    std::mutex listen_mutex;
    // Memory return after a burst (see forget_connection); guarded by `mutex`.
    std::size_t peak = 0;
    bool trim_at_zero = false;
    std::atomic<bool> trim_scheduled{false};
};

namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

std::shared_ptr<const detail::connection_config> make_config(const server_options& o) {
    auto c = std::make_shared<detail::connection_config>();
    c->limits.max_frame_size = o.max_frame_size;
    c->limits.max_message_size = o.max_message_size;
    c->http_limits = o.http_limits;
    c->timeouts = o.timeouts;
    if (c->timeouts.ping_interval.count() > 0 && c->timeouts.pong_timeout.count() <= 0)
        c->timeouts.pong_timeout = c->timeouts.ping_interval;
    c->slow_consumer = o.slow_consumer;
    c->max_outbound = o.max_outbound;
    c->write_high_water = o.write_high_water;
    c->write_low_water = std::min(o.write_low_water, o.write_high_water);
    c->log = logger(o.debug ? log_level::trace : o.log_level, o.log_sink);
    c->on_error = o.on_error;
    c->secure_proxy = o.secure_proxy;
    c->protocol_versions = o.protocol_versions;
    for (const auto& p : o.trusted_proxies)
        c->trusted_proxies.push_back(detail::ip_network::parse(p));
    c->trust_forwarded_headers = o.trust_forwarded_headers;
    c->proxy_protocol = o.proxy_protocol;
    c->on_handshake = o.on_handshake;
    c->health_check_path = o.health_check_path;
    c->flash_policy = o.flash_policy;
    c->flash_policy_xml = o.flash_policy_xml;
    if (o.secure) {
#if WSCORO_HAS_TLS
        c->tls = std::make_shared<detail::tls_context>(o.tls);  // throws on a bad key/cert
#else
        throw std::system_error(std::make_error_code(std::errc::not_supported),
                                "wscoro: built without TLS (the `tls` Meson feature)");
#endif
    }
    return c;
}

using detail::describe;
using detail::is_closed_error;

// After a burst of connections the heap is full of freed holes that malloc keeps. Give them
// back when the number of connections has halved since its peak (and once more when it
// reaches zero), so the process's RSS returns to its baseline after a load peak or an
// attack. Bursts of fewer than `trim_min_peak` connections are not worth a malloc_trim().
constexpr std::size_t trim_min_peak = 256;

// With this many connections waiting unparked, a connection waiting for the first time after
// its handshake is parked at once (see event_bridge::waiting).
constexpr std::size_t fresh_park_threshold = 256;

void trim_now() {
#if defined(__GLIBC__)
    ::malloc_trim(0);
#endif
}

// The trim runs a little later: a connection's last handlers (cancelled timers, the end of
// its coroutines) still hold memory when it is forgotten, and that memory should go too.
constexpr std::chrono::milliseconds trim_delay{250};

void schedule_trim(server::state& st) {
    if (st.stopping) {  // (no timer to keep io_context::run() from returning)
        trim_now();
        return;
    }
    if (st.trim_scheduled.exchange(true)) return;
    auto timer = std::make_shared<asio::steady_timer>(st.executor, trim_delay);
    timer->async_wait([timer, weak = st.weak_from_this()](std::error_code) {
        if (auto s = weak.lock()) s->trim_scheduled = false;
        trim_now();
    });
}

void forget_connection(server::state& st, const std::shared_ptr<connection_impl>& c,
                       std::atomic<std::size_t>& live) {
    live.fetch_sub(1);
    bool trim = false;
    {
        std::lock_guard lock(st.mutex);
        st.connections.erase(c.get());
        const auto n = st.count.fetch_sub(1) - 1;
        if (st.peak >= trim_min_peak && n <= st.peak / 2) {
            trim = true;
            st.trim_at_zero = n != 0;
            st.peak = n;
        } else if (n == 0 && st.trim_at_zero) {
            trim = true;
            st.trim_at_zero = false;
        }
        if (n == 0) st.connections.rehash(0);  // the bucket array grew with the peak
    }
    if (trim) schedule_trim(st);
}

// Connections served with callbacks report here: the application's callbacks, then the
// registry. One per listener; it holds the server state, which only holds a weak reference
// to it (for stop()).
//
// It is also the listener's parking lot (server_options::park_idle_after). Waiting
// connections are kept in a list, oldest wait first; a sweep timer ticks every half
// park_idle_after while the list is not empty, and folds the connections that have waited
// two ticks into parked_connection records. A parked socket sits in the lot's own epoll set
// (EPOLLONESHOT), which Asio watches as one descriptor; when it reports, the record is
// unfolded into a new connection object that reads at once. All of it runs on the
// listener's one thread (parking needs a single-threaded io_context).
class event_bridge final : public detail::event_sink,
                           public std::enable_shared_from_this<event_bridge> {
  public:
    event_bridge(std::shared_ptr<server::state> st, std::size_t index);
    ~event_bridge() override;
    void open(const connection& c) override {
        if (h_.on_open) h_.on_open(c);
    }
    void message(const connection& c, const wscoro::message& m) override {
        if (h_.on_message) h_.on_message(c, m);
    }
    void closed(const connection& c, const close_info& info) override {
        if (h_.on_close) h_.on_close(c, info);
    }
    void finished(const std::shared_ptr<connection_impl>& c) override;
    void rethrow(std::exception_ptr ex) override {
        if (!st_->options.rethrow_handler_exceptions) return;
        // em-websocket's behaviour, on request: out of io_context::run().
        asio::post(st_->executor, [ex] { std::rethrow_exception(ex); });
    }

    bool parks() const noexcept override { return parks_; }
    bool waiting(connection_impl& c) noexcept override;
    void woke(connection_impl& c) noexcept override;

    /// Connections parked now (not holding a reactor record).
    std::size_t parked() const noexcept { return l_.parked->load(std::memory_order_relaxed); }
    /// server::stop(): no more parking; every parked connection is unfolded and closed with
    /// 1001. On the listener's executor.
    void stop_parking();

  private:
    void arm_sweep();
    void sweep();
    bool park(connection_impl& c);
    void watch();
    void unpark_ready();
    /// Takes `parked` off the list and rebuilds its connection (null if that failed).
    std::shared_ptr<connection_impl> unpark(detail::parked_connection* parked);
    void link(detail::parked_connection* r) noexcept;
    void unlink(detail::parked_connection* r) noexcept;

    std::shared_ptr<server::state> st_;
    server::state::listener& l_;
    const event_handlers& h_;  // (st_->events, kept alive by st_)
    bool parks_ = false;
    bool stopping_ = false;
    // waiting connections, oldest first
    connection_impl* head_ = nullptr;
    connection_impl* tail_ = nullptr;
    std::size_t waiting_count_ = 0;
    std::uint32_t tick_ = 0;
    std::chrono::milliseconds tick_period_{0};
    asio::steady_timer sweep_timer_;
    bool sweep_armed_ = false;
    // parked records (owned), oldest first, and the epoll set their sockets wait in
    detail::parked_connection* parked_head_ = nullptr;
    detail::parked_connection* parked_tail_ = nullptr;
    std::chrono::milliseconds keepalive_due_{0};
    int epoll_fd_ = -1;
    std::optional<asio::posix::stream_descriptor> watch_;
    bool watching_ = false;
};

event_bridge::event_bridge(std::shared_ptr<server::state> st, std::size_t index)
    : st_(std::move(st)), l_(st_->listeners[index]), h_(*st_->events), sweep_timer_(l_.executor) {
    const auto& o = st_->options;
    const auto& t = st_->config->timeouts;
    // (TLS state and strands cannot be folded.)
    parks_ = o.park_idle_after.count() > 0 && l_.single_threaded && !o.secure;
    // A parked connection is woken this long after its last read, when the first of its
    // keep-alive events is due (a ping, or the idle limit); zero: never.
    if (t.ping_interval.count() > 0) keepalive_due_ = t.ping_interval;
    if (t.idle.count() > 0)
        keepalive_due_ = keepalive_due_.count() > 0 ? std::min(keepalive_due_, t.idle) : t.idle;
    tick_period_ = std::max(std::chrono::milliseconds(1), o.park_idle_after / 2);
}

event_bridge::~event_bridge() {
    while (parked_head_) {  // (the io_context went away with connections parked)
        std::unique_ptr<detail::parked_connection> rec(parked_head_);
        unlink(parked_head_);
    }
    if (watch_) {
        std::error_code ignored;
        watch_->close(ignored);  // closes epoll_fd_
    } else if (epoll_fd_ >= 0) {
        ::close(epoll_fd_);
    }
}

void event_bridge::finished(const std::shared_ptr<connection_impl>& c) {
    forget_connection(*st_, c, *l_.live);
}

bool event_bridge::waiting(connection_impl& c) noexcept {
    if (stopping_) return false;
    // A burst of new connections that then wait (a client opening thousands at once): fold
    // them as soon as they are open rather than a sweep later. That keeps the number of live
    // connection objects, and of Asio's reactor records (which Asio never frees), at about
    // this threshold however large the burst; the heap they leave is reused by the next
    // accepts instead of being left fragmented.
    if (!c.lot_waited && waiting_count_ >= fresh_park_threshold) {
        c.lot_waited = true;
        if (park(c)) return true;
    }
    c.lot_waited = true;
    ++waiting_count_;
    c.lot_tick = tick_;
    c.lot_prev = tail_;
    c.lot_next = nullptr;
    (tail_ ? tail_->lot_next : head_) = &c;
    tail_ = &c;
    c.lot_linked = true;
    if (!sweep_armed_) arm_sweep();
    return false;
}

void event_bridge::woke(connection_impl& c) noexcept {
    if (!c.lot_linked) return;
    (c.lot_prev ? c.lot_prev->lot_next : head_) = c.lot_next;
    (c.lot_next ? c.lot_next->lot_prev : tail_) = c.lot_prev;
    c.lot_prev = c.lot_next = nullptr;
    c.lot_linked = false;
    --waiting_count_;
}

void event_bridge::arm_sweep() {
    sweep_armed_ = true;
    sweep_timer_.expires_after(tick_period_);
    sweep_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
        self->sweep_armed_ = false;
        if (!ec) self->sweep();
    });
}

void event_bridge::sweep() {
    if (stopping_) return;
    ++tick_;
    // Waited two ticks: at least half park_idle_after, at most all of it.
    const auto before = parked();
    while (head_ && tick_ - head_->lot_tick >= 2) {
        auto& c = *head_;
        woke(c);
        park(c);
    }
    // Many connections folded at once (after a burst of connections) leave their objects'
    // memory free in the heap, where malloc keeps it: give it back.
    if (parked() >= before + trim_min_peak) schedule_trim(*st_);
    // Parked connections whose keep-alive ping (or idle limit) is due are woken to see to it.
    // They were parked in about the order of their last reads: the due ones are in front.
    if (keepalive_due_.count() > 0) {
        const auto now = std::chrono::steady_clock::now();
        while (parked_head_ && parked_head_->last_read + keepalive_due_ <= now) {
            unpark(parked_head_);
        }
    }
    if (head_ || (keepalive_due_.count() > 0 && parked_head_)) arm_sweep();
}

bool event_bridge::park(connection_impl& c) {
    if (!c.parkable()) return false;  // (not linked any more: its next wait links it again)
    if (epoll_fd_ < 0) {
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epoll_fd_ < 0) return false;
    }
    std::unique_ptr<detail::parked_connection> rec;
    try {
        rec = c.fold();
    } catch (...) {
        return false;  // out of memory: stays as it is
    }
    // Into our epoll set first (a descriptor may be in two), so no byte can slip between.
    // EPOLLONESHOT: reported once, then disabled until the next park re-arms it.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    ev.data.ptr = rec.get();
    int r = ::epoll_ctl(epoll_fd_, c.in_lot_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, rec->fd, &ev);
    if (r != 0 && errno == (c.in_lot_epoll ? ENOENT : EEXIST))
        r = ::epoll_ctl(epoll_fd_, c.in_lot_epoll ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, rec->fd, &ev);
    if (r != 0) {
        rec->fd = -1;  // (still the connection's)
        return false;
    }
    if (!watching_) watch();
    auto self = c.shared_from_this();
    c.release_for_parking();
    {
        std::lock_guard lock(st_->mutex);
        st_->connections.erase(self.get());
    }
    link(rec.release());
    if (keepalive_due_.count() > 0 && !sweep_armed_ && !stopping_) arm_sweep();
    return true;
}

void event_bridge::link(detail::parked_connection* r) noexcept {
    r->prev = parked_tail_;
    r->next = nullptr;
    (parked_tail_ ? parked_tail_->next : parked_head_) = r;
    parked_tail_ = r;
    l_.parked->store(parked() + 1, std::memory_order_relaxed);
}

void event_bridge::unlink(detail::parked_connection* r) noexcept {
    (r->prev ? r->prev->next : parked_head_) = r->next;
    (r->next ? r->next->prev : parked_tail_) = r->prev;
    r->prev = r->next = nullptr;
    l_.parked->store(parked() - 1, std::memory_order_relaxed);
}

void event_bridge::watch() {
    if (!watch_) watch_.emplace(l_.executor, epoll_fd_);
    watching_ = true;
    watch_->async_wait(asio::posix::stream_descriptor::wait_read,
                       [self = shared_from_this()](std::error_code ec) {
                           self->watching_ = false;
                           if (ec) return;
                           self->unpark_ready();
                           if (self->parked() > 0 && !self->stopping_) self->watch();
                       });
}

void event_bridge::unpark_ready() {
    epoll_event events[64];
    for (;;) {
        const int n = ::epoll_wait(epoll_fd_, events, 64, 0);
        for (int i = 0; i < n; ++i) {
            unpark(static_cast<detail::parked_connection*>(events[i].data.ptr));
        }
        if (n < 64) break;
    }
}

std::shared_ptr<connection_impl> event_bridge::unpark(detail::parked_connection* parked) {
    unlink(parked);
    std::unique_ptr<detail::parked_connection> rec(parked);
    std::shared_ptr<connection_impl> c;
    try {
        tcp::socket socket(l_.executor);
        socket.assign(rec->v6 ? tcp::v6() : tcp::v4(), rec->fd);  // throws on failure
        rec->fd = -1;
        detail::mark_not_duplicated(socket);
        c = std::make_shared<connection_impl>(std::move(socket),
                                              detail::make_connection_strand(l_.executor, true),
                                              st_->config, rec->id);
        {
            std::lock_guard lock(st_->mutex);
            st_->connections.insert_or_assign(c.get(), c);
        }
        c->unfold(*rec, shared_from_this());
    } catch (const std::exception& e) {
        // Out of memory or descriptors: this connection is lost (its socket closes with the
        // record or the object); the server goes on.
        error_report r;
        r.code = std::make_error_code(std::errc::not_enough_memory);
        r.message = std::string("could not unpark a connection: ") + e.what();
        r.connection_id = rec->id;
        if (st_->config->on_error) st_->config->on_error(r);
        if (c) {
            c->force_close();
        } else {
            st_->count.fetch_sub(1);
            l_.live->fetch_sub(1);
        }
        return nullptr;
    }
    return c;
}

void event_bridge::stop_parking() {
    stopping_ = true;
    while (head_)
        woke(*head_);
    sweep_timer_.cancel();
    while (parked_head_) {
        if (auto c = unpark(parked_head_))
            (void)c->start_close(close_code::going_away, "server shutdown");
    }
    std::error_code ignored;
    if (watch_) watch_->cancel(ignored);
}

// One connection from accept to the socket's close, or to the handshake when callbacks serve
// it (`events`). Every exception is caught here: a handler that throws closes its connection
// with 1011 and nothing else.
asio::awaitable<void> run_connection(std::shared_ptr<server::state> st,
                                     std::shared_ptr<connection_impl> c, bool busy,
                                     std::shared_ptr<std::atomic<std::size_t>> live,
                                     std::shared_ptr<detail::event_sink> events) {
    {
        std::lock_guard lock(st->mutex);
        // (insert_or_assign: an object freed without forget_connection, when its io_context
        // was destroyed, may have left its address behind)
        st->connections.insert_or_assign(c.get(), c);
        st->peak = std::max(st->peak, st->connections.size());
    }
    try {
        if (busy) {
            co_await c->reject_busy();
        } else if (co_await c->accept_handshake()) {
            if (events) {
                // From here on the callbacks run from the connection's own completions, and
                // this coroutine's frames are freed; the bridge forgets the connection.
                c->start_events(std::move(events));
                co_return;
            }
            std::exception_ptr failure;
            try {
                co_await (*st->handler)(connection(c));
            } catch (...) {
                failure = std::current_exception();
            }
            std::uint16_t code = st->stopping ? close_code::going_away : close_code::normal;
            const bool app_error = failure && !is_closed_error(failure);
            if (app_error) {
                c->report(make_error_code(error::application_error), failure,
                          "connection handler threw: " + describe(failure));
                code = close_code::internal_error;
            }
            co_await c->finish(code, {});
            if (app_error && st->options.rethrow_handler_exceptions) {
                // em-websocket's behaviour, on request: out of io_context::run().
                forget_connection(*st, c, *live);
                auto ex = st->executor;
                asio::post(ex, [failure] { std::rethrow_exception(failure); });
                co_return;
            }
        }
    } catch (...) {
        // Only an allocation failure can get here; drop the connection, keep the server.
        c->force_close();
    }
    forget_connection(*st, c, *live);
}

bool is_resource_exhaustion(std::error_code ec) {
    // Compare errno values: Asio 1.22's "asio.system" category maps nothing to std::errc
    // conditions (its default_error_condition is compiled out), so `ec == std::errc::x`
    // is always false for errors Asio reports.
    const bool os_error = ec.category() == asio::error::get_system_category() ||
                          ec.category() == std::system_category() ||
                          ec.category() == std::generic_category();
    const int v = ec.value();
    return os_error && (v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM);
}

// Asio's reactor keeps a record (168 bytes) for every socket it has ever had open at once,
// in a pool it never frees. Allocated one per accept, those records end up between the
// connections' own allocations, one every few kilobytes, and after a peak of connections they
// pin nearly every page of the heap the connections used: malloc_trim() cannot return it (34
// MiB after 10 000 connections). So when the number of live connections is about to exceed
// the records reserved so far, reserve a batch at once: open sockets, then close them, which
// leaves their records side by side in Asio's pool for the next accepts. Costs a socket() and
// a close() per record, only while the peak grows.
constexpr std::size_t reactor_record_batch = 64;

void reserve_reactor_records(server::state::listener& l, tcp protocol, std::size_t parked) {
    std::vector<tcp::socket> sockets;
    sockets.reserve(reactor_record_batch);  // (allocated before the records)
    for (std::size_t i = 0; i < reactor_record_batch; ++i) {
        tcp::socket s(l.executor);
        std::error_code ec;
        s.open(protocol, ec);
        if (ec) break;  // out of descriptors: the accept will say so
        sockets.push_back(std::move(s));
    }
    // Count the batch as reserved even if it came out short, so that a process at its
    // descriptor limit does not retry on every accept.
    l.reserved = l.live->load() - parked + reactor_record_batch;
}

asio::awaitable<void> accept_loop(std::shared_ptr<server::state> st, std::size_t index) {
    auto& log = st->config->log;
    auto& l = st->listeners[index];
    std::shared_ptr<event_bridge> events;
    if (st->events) {
        events = std::make_shared<event_bridge>(st, index);
        l.bridge = events;
    }
    while (!st->stopping) {
        auto strand = detail::make_connection_strand(l.executor, l.single_threaded);
        auto strand_executor =
            std::visit([](const auto& s) { return asio::any_io_executor(s); }, strand);
        // (Parked connections hold no reactor record.)
        const std::size_t parked = events ? events->parked() : 0;
        if (l.live->load() - parked + 1 > l.reserved)
            reserve_reactor_records(l, l.acceptor->local_endpoint().protocol(), parked);
        // accept() reports the peer's address, so the connection needs no getpeername().
        tcp::endpoint peer;
        auto [ec, socket] = co_await l.acceptor->async_accept(strand_executor, peer, use_tuple);
        if (st->stopping) break;
        if (ec) {
            if (ec == asio::error::operation_aborted) break;
            // EMFILE and friends: the listener must survive. Report, back off, retry (the
            // pending connection stays in the backlog until descriptors free up).
            error_report r;
            r.code = ec;
            r.message = "accept failed: " + ec.message();
            if (st->config->on_error)
                st->config->on_error(r);
            else
                log.log(log_level::warn, 0, "{}", r.message);
            asio::steady_timer backoff(l.executor);
            backoff.expires_after(is_resource_exhaustion(ec) ? std::chrono::milliseconds(100)
                                                             : std::chrono::milliseconds(10));
            (void)co_await backoff.async_wait(use_tuple);
            continue;
        }
        std::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);  // frames are corked by us already
        detail::mark_not_duplicated(socket);              // close() alone leaves the epoll set
        const auto id = st->next_id.fetch_add(1);
        auto c = std::make_shared<connection_impl>(std::move(socket), strand, st->config, id, peer,
                                                   l.bound_local);
        const bool busy =
            st->options.max_connections != 0 && st->count.load() >= st->options.max_connections;
        st->count.fetch_add(1);
        log.log(log_level::debug, id, "accepted{}", busy ? ", over max_connections" : "");
        l.live->fetch_add(1);
        auto run = run_connection(st, c, busy, l.live, events);
        asio::co_spawn(strand_executor, std::move(run), asio::detached);
    }
    log.log(log_level::debug, 0, "listener stopped");
}

}  // namespace

server::server(asio::any_io_executor executor, server_options options)
    : state_(std::make_shared<state>()) {
    state_->executor = std::move(executor);
    state_->options = std::move(options);
}

server::~server() {
    stop();
    auto& st = *state_;
    if (st.threads.empty()) return;
    // The server's own threads finish the closing handshakes (bounded by timeouts.close).
    // The caller's io_context may have stopped running, so release their work here too.
    st.work.clear();
    for (auto& t : st.threads)
        if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
    for (auto& t : st.threads)
        if (t.joinable()) t.detach();  // destroyed from one of its own threads: cannot join
}

void server::listen() {
    auto& st = *state_;
    std::lock_guard lock(st.listen_mutex);
    if (!st.listeners.empty()) return;
    // Everything that can be wrong in the configuration (addresses, TLS files, keys,
    // passwords) fails here, at start-up, not at the first client.
    if (!st.config) st.config = make_config(st.options);
    // libcrypto sets itself up (providers, method tables: about 2 MiB and a few milliseconds)
    // on its first digest: let that be start-up's cost, not the first client's handshake's.
    (void)protocol::compute_accept_key("dGhlIHNhbXBsZSBub25jZQ==");
    std::error_code ec;
    auto address = asio::ip::make_address(st.options.host, ec);
    tcp::endpoint endpoint;
    if (!ec) {
        endpoint = tcp::endpoint(address, st.options.port);
    } else {
        tcp::resolver resolver(st.executor);
        auto results = resolver.resolve(st.options.host, std::to_string(st.options.port),
                                        tcp::resolver::passive);  // throws on failure
        endpoint = results.begin()->endpoint();
    }
    const unsigned n = std::max(1u, st.options.threads);
    std::vector<state::listener> listeners;
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    for (unsigned i = 0; i < n; ++i) {
        state::listener l;
        if (n == 1) {
            l.executor = st.executor;
            l.single_threaded = st.options.single_threaded;
        } else {
            // One thread runs it, and every socket operation happens on that thread (other
            // threads only post to it): Asio's per-socket reactor locks are not needed.
            contexts.push_back(std::make_unique<asio::io_context>(ASIO_CONCURRENCY_HINT_UNSAFE_IO));
            l.executor = contexts.back()->get_executor();
            l.single_threaded = true;  // each context is run by exactly one thread
        }
        l.acceptor = std::make_unique<tcp::acceptor>(l.executor);
        auto& a = *l.acceptor;
        a.open(endpoint.protocol());
        a.set_option(tcp::acceptor::reuse_address(true));
        if (n > 1) a.set_option(reuse_port(true));
        if (endpoint.address().is_v6() && endpoint.address().is_unspecified())
            a.set_option(asio::ip::v6_only(false), ec);  // "::" serves IPv4 too
        a.bind(endpoint);
#ifdef TCP_DEFER_ACCEPT
        if (st.options.defer_accept) {
            // Seconds: how long the kernel waits for the first bytes before accepting anyway.
            using defer = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_DEFER_ACCEPT>;
            const auto secs =
                std::chrono::duration_cast<std::chrono::seconds>(st.options.timeouts.handshake);
            a.set_option(
                defer(static_cast<int>(std::max<std::chrono::seconds::rep>(1, secs.count()))), ec);
        }
#endif
        a.listen(st.options.backlog);
        if (i == 0) endpoint = a.local_endpoint();  // port 0: the others join the same port
        if (!endpoint.address().is_unspecified()) l.bound_local = endpoint;
        listeners.push_back(std::move(l));
    }
    st.local = endpoint;
    st.contexts = std::move(contexts);
    st.listeners = std::move(listeners);
    st.config->log.log(log_level::info, 0, "listening on {}:{}{}", st.local.address().to_string(),
                       st.local.port(), n > 1 ? fmt::format(" with {} threads", n) : "");
}

tcp::endpoint server::local_endpoint() const {
    return state_->local;
}

void server::serve(handler h) {
    listen();
    state_->handler = std::make_shared<const handler>(std::move(h));
    start_serving(state_);
}

void server::serve(event_handlers h) {
    listen();
    state_->events = std::make_shared<const event_handlers>(std::move(h));
    start_serving(state_);
}

void server::start_serving(const std::shared_ptr<state>& st) {
    for (std::size_t i = 0; i < st->listeners.size(); ++i)
        asio::co_spawn(st->listeners[i].executor, accept_loop(st, i), asio::detached);
    for (auto& ctx : st->contexts) {
        st->work.push_back(asio::make_work_guard(*ctx));
        st->threads.emplace_back([c = ctx.get()] { c->run(); });
    }
}

asio::awaitable<void> server::run(handler h) {
    auto st = state_;  // the server object may be gone when this resumes
    listen();
    st->handler = std::make_shared<const handler>(std::move(h));
    co_await run_state(st);
}

asio::awaitable<void> server::run(event_handlers h) {
    auto st = state_;
    listen();
    st->events = std::make_shared<const event_handlers>(std::move(h));
    co_await run_state(st);
}

asio::awaitable<void> server::run_state(std::shared_ptr<state> st) {
    // (`st`, not the server object, which may be gone when this resumes.)
    if (std::max(1u, st->options.threads) > 1) {
        // The work happens on the server's own threads: wait here until stopped.
        start_serving(st);
        asio::steady_timer wait(co_await asio::this_coro::executor);
        while (!st->stopping) {
            wait.expires_after(std::chrono::milliseconds(50));
            auto [ec] = co_await wait.async_wait(use_tuple);
            if (ec) break;  // cancelled
        }
    } else {
        co_await accept_loop(st, 0);
    }
    // The accept loop ends on stop() or when this coroutine is cancelled (e.g. through a
    // cancellation_signal bound to co_spawn): both mean a graceful shutdown.
    if (!st->stopping) stop_state(st);
}

void server::stop() {
    stop_state(state_);
}

void server::stop_state(const std::shared_ptr<state>& st) {
    if (st->stopping.exchange(true)) return;
    for (auto& l : st->listeners) {
        // Each acceptor is closed on its own executor (Asio objects are not thread-safe), and
        // parked connections are woken there to be closed too.
        asio::post(l.executor, [st, a = l.acceptor.get(), bridge = l.bridge] {
            std::error_code ignored;
            a->close(ignored);
            if (auto b = bridge.lock()) b->stop_parking();
        });
    }
    asio::post(st->executor, [st] {
        // Server-owned threads end once their connections are gone.
        st->work.clear();
        std::vector<std::shared_ptr<connection_impl>> open;
        {
            std::lock_guard lock(st->mutex);
            for (const auto& [address, weak] : st->connections)
                if (auto c = weak.lock()) open.push_back(std::move(c));
        }
        for (auto& c : open) {
            // Each close runs on its connection's strand; close() bounds itself by
            // close_timeout, after which the socket is dropped.
            asio::co_spawn(
                c->executor(),
                [c]() -> asio::awaitable<void> {
                    if (c->state() == connection_state::handshake) {
                        c->force_close();
                        co_return;
                    }
                    std::error_code ec;
                    co_await c->close(close_code::going_away, "server shutdown", ec);
                },
                asio::detached);
        }
    });
}

std::size_t server::connection_count() const noexcept {
    return state_->count.load();
}

std::size_t server::parked_count() const noexcept {
    std::size_t n = 0;
    for (const auto& l : state_->listeners)
        n += l.parked->load(std::memory_order_relaxed);
    return n;
}

const server_options& server::options() const noexcept {
    return state_->options;
}

}  // namespace wscoro
