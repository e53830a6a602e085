#include "ws_client.hpp"

#include <doctest/doctest.h>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cstring>
#include <exception>
#include <random>
#include <stdexcept>

#include "wscoro/protocol/handshake.hpp"

namespace wscoro::test {

namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

protocol::mask_key random_key() {
    static std::mt19937 rng(12345);
    protocol::mask_key k;
    for (auto& b : k)
        b = static_cast<std::byte>(rng() & 0xFF);
    return k;
}
}  // namespace

std::span<const std::byte> bytes(std::string_view s) {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> v(n);
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& b : v) {
        x = x * 1103515245u + 12345u;
        b = static_cast<std::byte>(x >> 24);
    }
    return v;
}

ws_client::ws_client(asio::ip::tcp::socket socket)
    : stream_(std::in_place_type<asio::ip::tcp::socket>, std::move(socket)),
      decoder_(protocol::role::client, {1u << 30, 1u << 30}, 0) {
    buf_.resize(256 * 1024);
}

ws_client::ws_client(std::shared_ptr<asio::ssl::context> ctx, tls_stream stream)
    : tls_ctx_(std::move(ctx)),
      stream_(std::in_place_type<tls_stream>, std::move(stream)),
      decoder_(protocol::role::client, {1u << 30, 1u << 30}, 0) {
    buf_.resize(256 * 1024);
}

asio::ip::tcp::socket& ws_client::socket() {
    if (auto* t = std::get_if<tls_stream>(&stream_)) return t->next_layer();
    return std::get<asio::ip::tcp::socket>(stream_);
}

SSL* ws_client::tls_handle() {
    auto* t = std::get_if<tls_stream>(&stream_);
    return t ? t->native_handle() : nullptr;
}

asio::awaitable<ws_client> ws_client::connect_raw(asio::ip::tcp::endpoint ep,
                                                  const tls_client_options* tls) {
    asio::ip::tcp::socket s(co_await asio::this_coro::executor);
    co_await s.async_connect(ep, asio::use_awaitable);
    s.set_option(asio::ip::tcp::no_delay(true));
    if (!tls) co_return ws_client(std::move(s));
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    if (!tls->ca_pem.empty()) {
        ctx->add_certificate_authority(asio::buffer(tls->ca_pem));
        ctx->set_verify_mode(asio::ssl::verify_peer);
    } else {
        ctx->set_verify_mode(asio::ssl::verify_none);
    }
    if (!tls->cert_pem.empty()) {
        ctx->use_certificate_chain(asio::buffer(tls->cert_pem));
        ctx->use_private_key(asio::buffer(tls->key_pem), asio::ssl::context::pem);
    }
    tls_stream ts(std::move(s), *ctx);
    if (!tls->server_name.empty())
        SSL_set_tlsext_host_name(ts.native_handle(), tls->server_name.c_str());
    co_await ts.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
    co_return ws_client(std::move(ctx), std::move(ts));
}

asio::awaitable<ws_client> ws_client::connect(asio::ip::tcp::endpoint ep, std::string target,
                                              std::string extra_headers,
                                              const tls_client_options* tls) {
    auto c = co_await connect_raw(ep, tls);
    const auto key = protocol::generate_key();
    auto request = protocol::client_request("127.0.0.1", target, key);
    // splice extra header lines in before the final empty line
    request.insert(request.size() - 2, extra_headers);
    co_await c.write_raw(request);
    const auto head = co_await c.read_http_head();
    if (auto ec = protocol::check_accept_response(head, key))
        throw std::runtime_error("handshake failed: " + ec.message() + "\n" + head);
    co_return c;
}

asio::awaitable<void> ws_client::write_raw(std::span<const std::byte> data) {
    auto op = std::visit(
        [&](auto& s) {
            return asio::async_write(s, asio::buffer(data.data(), data.size()),
                                     asio::use_awaitable);
        },
        stream_);
    co_await std::move(op);
}

asio::awaitable<void> ws_client::write_raw(std::string_view data) {
    co_await write_raw(bytes(data));
}

asio::awaitable<void> ws_client::send_frame(protocol::opcode op, std::span<const std::byte> payload,
                                            bool fin) {
    std::vector<std::byte> frame;
    const auto key = random_key();
    protocol::append_frame(frame, op, fin, payload, &key);
    co_await write_raw(frame);
}

asio::awaitable<void> ws_client::send_text(std::string_view text) {
    co_await send_frame(protocol::opcode::text, bytes(text));
}

asio::awaitable<void> ws_client::send_close(std::uint16_t code, std::string_view reason) {
    std::byte body[125];
    const auto n = protocol::encode_close_payload(body, code, reason);
    co_await send_frame(protocol::opcode::close, std::span<const std::byte>(body, n));
}

asio::awaitable<std::size_t> ws_client::read_some(std::chrono::milliseconds limit,
                                                  bool& timed_out) {
    using namespace asio::experimental::awaitable_operators;
    if (begin_ == end_) begin_ = end_ = 0;
    if (end_ == buf_.size()) {
        if (begin_ > 0) {
            std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
        } else {
            buf_.resize(buf_.size() * 2);
        }
    }
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(limit);
    auto read = std::visit(
        [&](auto& s) {
            return s.async_read_some(asio::buffer(buf_.data() + end_, buf_.size() - end_),
                                     use_tuple);
        },
        stream_);
    auto wait = timer.async_wait(use_tuple);
    auto result = co_await (std::move(read) || std::move(wait));
    if (result.index() == 1) {
        timed_out = true;
        co_return 0;
    }
    auto [ec, n] = std::get<0>(result);
    if (ec) co_return 0;  // eof or reset
    end_ += n;
    co_return n;
}

asio::awaitable<received> ws_client::next(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        std::size_t consumed = 0;
        auto ev = decoder_.next(std::span(buf_.data() + begin_, end_ - begin_), consumed);
        begin_ += consumed;
        if (ev.kind != protocol::event_kind::need_more) {
            received r;
            r.kind = ev.kind;
            r.type = ev.type;
            r.payload.assign(ev.payload.begin(), ev.payload.end());
            r.code = ev.close_code;
            r.reason = std::string(ev.close_reason);
            r.ec = ev.ec;
            co_return r;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        bool timed_out = left.count() <= 0;
        const auto n = timed_out ? 0 : co_await read_some(left, timed_out);
        if (n == 0) {
            received r;
            r.timeout = timed_out;
            r.eof = !timed_out;
            // As browsers do: once the server has closed, close our side too.
            std::error_code ignored;
            if (r.eof) socket().close(ignored);
            co_return r;
        }
    }
}

asio::awaitable<std::string> ws_client::read_until_eof(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::string all(reinterpret_cast<const char*>(buf_.data() + begin_), end_ - begin_);
    begin_ = end_ = 0;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) throw std::runtime_error("server did not close the connection");
        bool timed_out = false;
        const auto n = co_await read_some(left, timed_out);
        if (timed_out) throw std::runtime_error("server did not close the connection");
        if (n == 0) co_return all;
        all.append(reinterpret_cast<const char*>(buf_.data() + begin_), n);
        begin_ = end_ = 0;
    }
}

asio::awaitable<std::string> ws_client::read_http_head(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        std::string_view have(reinterpret_cast<const char*>(buf_.data() + begin_), end_ - begin_);
        if (auto pos = have.find("\r\n\r\n"); pos != std::string_view::npos) {
            std::string head(have.substr(0, pos + 4));
            begin_ += pos + 4;
            co_return head;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        bool timed_out = left.count() <= 0;
        const auto n = timed_out ? 0 : co_await read_some(left, timed_out);
        if (n == 0) co_return std::string(have);  // incomplete: the caller's checks fail
    }
}

void run_test(asio::io_context& io, std::function<asio::awaitable<void>()> test,
              std::chrono::milliseconds limit) {
    bool done = false;
    std::exception_ptr failure;
    asio::co_spawn(io, test(), [&](std::exception_ptr e) {
        done = true;
        failure = e;
    });
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done && std::chrono::steady_clock::now() < deadline) {
        if (io.stopped()) io.restart();
        io.run_for(std::chrono::milliseconds(20));
    }
    REQUIRE_MESSAGE(done, "test coroutine did not finish in time");
    if (failure) std::rethrow_exception(failure);
}

}  // namespace wscoro::test

#include "server_fixture.hpp"

namespace wscoro::test {
asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_after(d);
    co_await t.async_wait(asio::use_awaitable);
}
}  // namespace wscoro::test
