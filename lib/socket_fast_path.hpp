#pragma once
// Private: plain-TCP socket operations that Asio's public API cannot express without extra
// system calls. Each one has a portable fallback (WSCORO_SOCKET_FAST_PATH == 0) that behaves
// the same, only with Asio's usual system calls.
//
// Why reach below Asio's public API at all: on the hot path of an echo server the kernel's
// cost is per system call, and Asio 1.22's epoll reactor adds two a server can do without.
//
// 1. A system call per wait for data. Asio's async_wait() re-arms the descriptor with
//    epoll_ctl(EPOLL_CTL_MOD) every time, and async_read_some() tries a recv() at once after
//    every epoll event (the descriptor's `try_speculative_` flag), which in request/response
//    traffic finds nothing (EAGAIN) once per message. A raw epoll server pays neither: it
//    reads when told and waits for free. `async_wait_readable` does the same inside Asio's
//    reactor: it completes at once if an edge came since the last wait, and otherwise waits
//    in the reactor with no system call (the socket is registered edge-triggered once). It
//    reports "done and exhausted", Asio's status for "nothing more before the next edge",
//    which is true once the caller has read until a short read: on a TCP socket a recv()
//    that returns less than asked has emptied the receive queue (tcp_recvmsg copies every
//    queued segment up to the length asked), and the next byte raises a new edge. No buffer
//    waits with it, so an idle connection holds none.
// 2. The reads here use recv(MSG_DONTWAIT) and writes send(MSG_DONTWAIT), so the socket never
//    needs Asio's internal non-blocking mode: no ioctl(FIONBIO) per connection.
// 3. A socket Asio accepted is marked "possibly a dup()", so closing it costs an
//    epoll_ctl(EPOLL_CTL_DEL) before close(). The server knows its accepted descriptors are
//    not duplicated, and close() alone removes them from the epoll set.
//
// The fast path reaches into Asio's detail namespace and is enabled only for the exact Asio
// release it was written against (1.22.1, Debian 12) with its epoll reactor. A later Asio
// builds with the fallback. test_inject's "request/response: one recv and one send per
// message" counts the system calls.

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <asio/version.hpp>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#if ASIO_VERSION == 102201 && defined(ASIO_HAS_EPOLL) && !defined(ASIO_HAS_IO_URING_AS_DEFAULT) && \
    !defined(ASIO_HAS_IOCP) && !defined(WSCORO_NO_SOCKET_FAST_PATH)
#define WSCORO_SOCKET_FAST_PATH 1
#include <asio/detail/epoll_reactor.hpp>
#include <asio/detail/fenced_block.hpp>
#include <asio/detail/handler_alloc_helpers.hpp>
#include <asio/detail/handler_work.hpp>
#include <asio/detail/reactor_op.hpp>
#include <asio/detail/socket_ops.hpp>
#else
#define WSCORO_SOCKET_FAST_PATH 0
#endif

namespace wscoro::detail {

/// True when this build uses the reactor fast path (for tests and the debug log).
inline constexpr bool socket_fast_path = WSCORO_SOCKET_FAST_PATH != 0;

#if WSCORO_SOCKET_FAST_PATH
/// The Asio implementation object behind a tcp::socket. basic_socket keeps it protected; a
/// pointer to member named through a derived class is the standard way to reach it.
struct socket_internals : asio::ip::tcp::socket {
    static auto& io_object(asio::ip::tcp::socket& s) noexcept {
        return s.*(&socket_internals::impl_);
    }
};

/// A wait for readability that costs no system call: done at once if an epoll event came
/// since the last wait (Asio's try_speculative_ flag), else queued in the reactor until the
/// next edge. It reports "exhausted", which clears that flag: the caller then reads until a
/// short read, EAGAIN or end of stream before it waits again (see async_wait_readable).
template <typename Handler, typename IoExecutor>
class readable_wait_op : public asio::detail::reactor_op {
  public:
    ASIO_DEFINE_HANDLER_PTR(readable_wait_op);

    readable_wait_op(Handler& handler, const IoExecutor& io_ex)
        : reactor_op(asio::error_code(), &readable_wait_op::do_perform,
                     &readable_wait_op::do_complete),
          handler_(std::move(handler)),
          work_(handler_, io_ex) {}

    static status do_perform(reactor_op*) { return done_and_exhausted; }

    // As Asio's own operations: move the handler out, free the operation, then call it.
    static void do_complete(void* owner, asio::detail::operation* base, const asio::error_code&,
                            std::size_t) {
        auto* o = static_cast<readable_wait_op*>(base);
        ptr p = {std::addressof(o->handler_), o, o};
        asio::detail::handler_work<Handler, IoExecutor> w(std::move(o->work_));
        asio::detail::binder1<Handler, asio::error_code> handler(o->handler_, o->ec_);
        p.h = std::addressof(handler.handler_);
        p.reset();
        if (owner) {
            asio::detail::fenced_block b(asio::detail::fenced_block::half);
            w.complete(handler, handler.handler_);
        }
    }

  private:
    Handler handler_;
    asio::detail::handler_work<Handler, IoExecutor> work_;
};

/// Per-operation cancellation of a wait in the reactor (as Asio's own).
class readable_wait_cancellation {
  public:
    readable_wait_cancellation(asio::detail::epoll_reactor* r,
                               asio::detail::epoll_reactor::per_descriptor_data* d, int fd)
        : reactor_(r), data_(d), fd_(fd) {}
    void operator()(asio::cancellation_type_t type) {
        if (!!(type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                       asio::cancellation_type::total)))
            reactor_->cancel_ops_by_key(fd_, *data_, asio::detail::epoll_reactor::read_op, this);
    }

  private:
    asio::detail::epoll_reactor* reactor_;
    asio::detail::epoll_reactor::per_descriptor_data* data_;
    int fd_;
};

#endif

/// The io_context executor inside `ex`, or null if it holds anything else (a strand, another
/// context's executor). Asio 1.22's any_executor::target<T>() does not check the type (it is
/// a plain cast), so the type is compared here.
inline const asio::io_context::executor_type* io_context_executor(
    const asio::any_io_executor& ex) noexcept {
    if (!ex || ex.target_type() != typeid(asio::io_context::executor_type)) return nullptr;
    return ex.target<asio::io_context::executor_type>();
}

/// What async_wait_readable looks up on every wait (the socket's reactor: a service registry
/// lookup under a mutex), remembered for one socket. Empty until its first wait.
struct readable_wait_cache {
    void* reactor = nullptr;
};

#if WSCORO_SOCKET_FAST_PATH
struct initiate_readable_wait {
    template <typename Handler>
    void operator()(Handler&& h, asio::ip::tcp::socket* socket, readable_wait_cache* cache) const {
        using handler_type = std::decay_t<Handler>;
        handler_type handler(std::forward<Handler>(h));
        auto& io = socket_internals::io_object(*socket);
        // A handler with no executor of its own, for a socket on an io_context's own executor
        // (no strand), gets an operation typed for that executor: its completion then calls
        // the handler directly, with no work counting and no polymorphic executor in between.
        // (A handler with its own executor, e.g. a coroutine's, keeps the general operation:
        // typed, its completion would go through that executor as a new function object.)
        using typed_ex = asio::io_context::executor_type;
        if constexpr (std::is_same_v<asio::associated_executor_t<handler_type, typed_ex>,
                                     typed_ex>) {
            if (const auto* typed = io_context_executor(io.get_executor())) {
                start<readable_wait_op<handler_type, typed_ex>>(handler, *typed, *socket, cache);
                return;
            }
        }
        start<readable_wait_op<handler_type, asio::ip::tcp::socket::executor_type>>(
            handler, io.get_executor(), *socket, cache);
    }

    template <typename Op, typename Handler, typename IoExecutor>
    static void start(Handler& handler, const IoExecutor& io_ex, asio::ip::tcp::socket& socket,
                      readable_wait_cache* cache) {
        auto& io = socket_internals::io_object(socket);
        auto& impl = io.get_implementation();
        auto* cached = cache ? static_cast<asio::detail::epoll_reactor*>(cache->reactor) : nullptr;
        auto& reactor = cached ? *cached
                               : asio::use_service<asio::detail::epoll_reactor>(
                                     asio::query(io.get_executor(), asio::execution::context));
        if (cache) cache->reactor = &reactor;
        auto slot = asio::get_associated_cancellation_slot(handler);
        typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
        p.p = new (p.v) Op(handler, io_ex);
        if (slot.is_connected())
            p.p->cancellation_key_ = &slot.template emplace<readable_wait_cancellation>(
                &reactor, &impl.reactor_data_, impl.socket_);
        // allow_speculative: done at once if an edge came since the last wait; no
        // epoll_ctl() either way (Asio's async_wait() re-arms with EPOLL_CTL_MOD each time).
        reactor.start_op(asio::detail::epoll_reactor::read_op, impl.socket_, impl.reactor_data_,
                         p.p, false, true);
        p.v = p.p = nullptr;
    }
};
#endif

#if WSCORO_SOCKET_FAST_PATH
/// The same wait as async_wait_readable (same contract), for an owner that waits on one
/// socket again and again: one operation object, kept by the owner and reused for every
/// wait, so a wait allocates nothing and its completion moves no handler. The owner starts
/// a wait only when none is pending, and keeps itself alive until the callback runs: with
/// `destroying` true when the io_context is destroyed with the wait pending (only release
/// what keeps the owner alive then), else with the outcome (operation_aborted when the
/// socket is closed or released).
class reusable_readable_wait : public asio::detail::reactor_op {
  public:
    using callback = void (*)(void* owner, const std::error_code& ec, bool destroying);

    reusable_readable_wait() noexcept
        : reactor_op(asio::error_code(), &reusable_readable_wait::do_perform,
                     &reusable_readable_wait::do_complete) {}
    reusable_readable_wait(const reusable_readable_wait&) = delete;
    reusable_readable_wait& operator=(const reusable_readable_wait&) = delete;

    void start(asio::ip::tcp::socket& socket, readable_wait_cache& cache, callback cb,
               void* owner) {
        callback_ = cb;
        owner_ = owner;
        ec_ = asio::error_code();
        auto& io = socket_internals::io_object(socket);
        auto& impl = io.get_implementation();
        if (!cache.reactor)
            cache.reactor = &asio::use_service<asio::detail::epoll_reactor>(
                asio::query(io.get_executor(), asio::execution::context));
        // (allow_speculative: see initiate_readable_wait::start)
        static_cast<asio::detail::epoll_reactor*>(cache.reactor)
            ->start_op(asio::detail::epoll_reactor::read_op, impl.socket_, impl.reactor_data_, this,
                       false, true);
    }

  private:
    static status do_perform(reactor_op*) { return done_and_exhausted; }
    static void do_complete(void* scheduler, asio::detail::operation* base, const asio::error_code&,
                            std::size_t) {
        auto* o = static_cast<reusable_readable_wait*>(base);
        // (The callback may free the owner, and this object with it: nothing after it.)
        o->callback_(o->owner_, o->ec_, scheduler == nullptr);
    }

    callback callback_ = nullptr;
    void* owner_ = nullptr;
};
#endif

/// Waits until the socket may have bytes to read. Completion: void(std::error_code).
///
/// Contract (fast path): after each completed wait the caller reads with recv(MSG_DONTWAIT)
/// until a short read, EAGAIN or end of stream before it waits again. A read that filled its
/// buffer may have left bytes behind, and no new edge would announce them. Two waits with no
/// read between are wrong too: the first may have consumed the flag raised by an edge whose
/// bytes are still unread (an edge processed before the wait began, e.g. the one
/// epoll_ctl(ADD) raises for a request that came with the connection), and the second would
/// then wait for an edge that never comes.
/// `cache` (optional) must belong to this socket alone.
template <typename Token>
auto async_wait_readable(asio::ip::tcp::socket& socket, Token&& token,
                         readable_wait_cache* cache = nullptr) {
#if WSCORO_SOCKET_FAST_PATH
    return asio::async_initiate<Token, void(std::error_code)>(initiate_readable_wait{}, token,
                                                              &socket, cache);
#else
    (void)cache;
    return socket.async_wait(asio::ip::tcp::socket::wait_read, std::forward<Token>(token));
#endif
}

/// An accepted socket is not shared with anyone: closing it need not remove it from the
/// epoll set first (close() does that), which saves an epoll_ctl() per connection.
inline void mark_not_duplicated(asio::ip::tcp::socket& socket) noexcept {
#if WSCORO_SOCKET_FAST_PATH
    socket_internals::io_object(socket).get_implementation().state_ &=
        static_cast<asio::detail::socket_ops::state_type>(~asio::detail::socket_ops::possible_dup);
#else
    (void)socket;
#endif
}

/// Writes as much of `bufs` as the socket takes now, without blocking, skipping the first
/// `skip` bytes (written already) and giving the kernel at most `max_bytes`: the count
/// written, 0 if it would block, or an error (EPIPE/ECONNRESET, ...). Never raises SIGPIPE.
inline std::size_t write_now(asio::ip::tcp::socket& socket,
                             std::span<const asio::const_buffer> bufs, std::error_code& ec,
                             std::size_t skip = 0, std::size_t max_bytes = SIZE_MAX) noexcept {
    constexpr std::size_t max_iov = 64;
    iovec iov[max_iov];
    std::size_t count = 0;
    std::size_t total = 0;
    for (const auto& whole : bufs) {
        if (count == max_iov || total == max_bytes) break;
        if (whole.size() <= skip) {  // written already
            skip -= whole.size();
            continue;
        }
        const auto b = whole + skip;
        skip = 0;
        iov[count].iov_base = const_cast<void*>(b.data());
        iov[count].iov_len = std::min(b.size(), max_bytes - total);
        total += iov[count].iov_len;
        ++count;
    }
    if (count == 0) {
        ec = {};
        return 0;
    }
    for (;;) {
        ssize_t r;
        if (count == 1) {
            r = ::send(socket.native_handle(), iov[0].iov_base, iov[0].iov_len,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
        } else {
            msghdr msg{};
            msg.msg_iov = iov;
            msg.msg_iovlen = count;
            r = ::sendmsg(socket.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        if (r >= 0) {
            ec = {};
            return static_cast<std::size_t>(r);
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            ec = {};
            return 0;
        }
        ec = std::error_code(errno, asio::error::get_system_category());
        return 0;
    }
}

}  // namespace wscoro::detail
