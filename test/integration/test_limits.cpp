// Timeouts and limits over 127.0.0.1: idle timeout, keep-alive pings and dead peers,
// max_connections, slow consumers, ping floods.

#include <doctest/doctest.h>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/use_awaitable.hpp>
#include <ostream>

#include "server_fixture.hpp"
#include "wscoro/connection.hpp"

using namespace wscoro;
using namespace wscoro::test;
using protocol::event_kind;
using protocol::opcode;

namespace {

struct recorder {
    std::optional<wscoro::close_info> info;
    handler make() {
        return [this](connection ws) -> asio::awaitable<void> {
            while (auto m = co_await ws.receive())
                co_await ws.send(*m);
            info = ws.close_info();
        };
    }
};

}  // namespace

TEST_SUITE("limits") {
    TEST_CASE("idle timeout closes with 1001 and error::idle_timeout") {
        server_fixture f;
        f.options.timeouts.idle = std::chrono::milliseconds(300);
        recorder rec;
        f.start(rec.make());
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            // activity keeps it open past the idle time
            for (int i = 0; i < 4; ++i) {
                co_await sleep_for(std::chrono::milliseconds(150));
                co_await c.send_text("tick");
                auto r = co_await c.next();
                CHECK(r.text() == "tick");
            }
            auto r = co_await c.next(std::chrono::seconds(3));
            REQUIRE(r.kind == event_kind::close);
            CHECK(r.code == 1001);
            CHECK(r.reason == "idle timeout");
            co_await c.send_close(1001);
            auto eof = co_await c.next();
            CHECK(eof.eof);
        });
        REQUIRE(rec.info);
        CHECK(rec.info->code == 1001);
        CHECK(rec.info->was_clean);
        CHECK(rec.info->error == error::idle_timeout);
        CHECK(f.saw_error(error::idle_timeout));
    }

    TEST_CASE("keep-alive pings: an answering peer stays, a dead one is dropped") {
        server_fixture f;
        f.options.timeouts.ping_interval = std::chrono::milliseconds(100);
        f.options.timeouts.pong_timeout = std::chrono::milliseconds(200);
        std::vector<wscoro::close_info> infos;
        f.start([&](connection ws) -> asio::awaitable<void> {
            while (auto m = co_await ws.receive())
                co_await ws.send(*m);
            infos.push_back(ws.close_info());
        });
        f.run([&]() -> asio::awaitable<void> {
            auto alive = co_await ws_client::connect(f.endpoint());
            int pings = 0;
            const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(700);
            while (std::chrono::steady_clock::now() < until) {
                auto r = co_await alive.next(std::chrono::milliseconds(300));
                if (r.kind == event_kind::ping) {
                    ++pings;
                    co_await alive.send_frame(opcode::pong, r.payload);
                }
                CHECK_FALSE(r.eof);
            }
            CHECK(pings >= 3);
            // a peer that never answers (nor sends anything) is dropped without a close
            auto dead = co_await ws_client::connect(f.endpoint());
            auto first = co_await dead.next(std::chrono::seconds(2));
            CHECK(first.kind == event_kind::ping);
            auto end = co_await dead.next(std::chrono::seconds(2));
            CHECK(end.eof);
            co_await alive.send_close(1000);
            (void)co_await alive.next();
        });
        REQUIRE(infos.size() == 2);
        CHECK(infos[0].code == 1006);  // the dead one ends first
        CHECK(infos[0].error == error::pong_timeout);
        CHECK(infos[1].code == 1000);
        CHECK(f.saw_error(error::pong_timeout));
    }

    TEST_CASE("beyond max_connections: 503 before the upgrade, the listener keeps running") {
        server_fixture f;
        f.options.max_connections = 2;
        f.start([](connection ws) -> asio::awaitable<void> {
            while (auto m = co_await ws.receive())
                co_await ws.send(*m);
        });
        f.run([&]() -> asio::awaitable<void> {
            auto a = co_await ws_client::connect(f.endpoint());
            auto b = co_await ws_client::connect(f.endpoint());
            auto c = co_await ws_client::connect_raw(f.endpoint());
            const auto answer = co_await c.read_until_eof();
            CHECK(answer.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
            CHECK(answer.find("Retry-After: 1\r\n") != std::string::npos);
            co_await a.send_close(1000);
            (void)co_await a.next();
            (void)co_await a.next();
            for (int i = 0; i < 200 && f.srv->connection_count() > 1; ++i)
                co_await sleep_for(std::chrono::milliseconds(10));
            CHECK(f.srv->connection_count() <= 1);
            auto d = co_await ws_client::connect(f.endpoint());  // room again
            co_await d.send_text("in");
            auto r = co_await d.next();
            CHECK(r.text() == "in");
            co_await b.send_text("still");
            auto r2 = co_await b.next();
            CHECK(r2.text() == "still");
        });
        CHECK(f.saw_error(error::server_busy));
    }

    TEST_CASE("slow consumer policy close: 1008 once max_outbound is exceeded") {
        server_fixture f;
        f.options.slow_consumer = slow_consumer_policy::close;
        f.options.max_outbound = 256 * 1024;
        std::error_code failed_with;
        std::optional<wscoro::close_info> info;
        f.start([&](connection ws) -> asio::awaitable<void> {
            const auto chunk = pattern(64 * 1024);
            for (int i = 0; i < 1000 && !failed_with; ++i)
                co_await ws.send_binary(chunk, failed_with);
            while (auto m = co_await ws.receive()) {
            }
            info = ws.close_info();
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await sleep_for(std::chrono::milliseconds(300));  // do not read meanwhile
            int messages = 0;
            for (;;) {
                auto r = co_await c.next(std::chrono::seconds(5));
                if (r.kind == event_kind::message) {
                    ++messages;
                    continue;
                }
                REQUIRE(r.kind == event_kind::close);
                CHECK(r.code == 1008);
                CHECK(r.reason == "slow consumer");
                break;
            }
            CHECK(messages < 1000);
            co_await c.send_close(1008);
            (void)co_await c.next();
        });
        CHECK(failed_with == error::slow_consumer);
        REQUIRE(info);
        CHECK(info->error == error::slow_consumer);
        CHECK(f.saw_error(error::slow_consumer));
    }

    TEST_CASE("a ping flood from a peer that does not read cannot grow memory") {
        server_fixture f;
        f.options.write_high_water = 64 * 1024;
        f.options.write_low_water = 16 * 1024;
        std::size_t max_buffered = 0;
        connection seen;
        f.start([&](connection ws) -> asio::awaitable<void> {
            seen = ws;
            while (auto m = co_await ws.receive()) {
                max_buffered = std::max(max_buffered, ws.buffered_amount());
                co_await ws.send(*m);
            }
        });
        f.run([&]() -> asio::awaitable<void> {
            auto flood = co_await ws_client::connect(f.endpoint());
            // 40 000 pings of 125 bytes = 5 MB of pongs if all were kept; never read them.
            std::vector<std::byte> burst;
            const protocol::mask_key mk{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
            const auto body = pattern(125);
            for (int i = 0; i < 1000; ++i)
                protocol::append_frame(burst, opcode::ping, true, body, &mk);
            for (int i = 0; i < 40; ++i) {
                co_await flood.write_raw(burst);
                max_buffered = std::max(max_buffered, seen.buffered_amount());
            }
            co_await sleep_for(std::chrono::milliseconds(100));
            max_buffered = std::max(max_buffered, seen.buffered_amount());
            // a well-behaved client is served meanwhile
            auto good = co_await ws_client::connect(f.endpoint());
            co_await good.send_text("hello");
            auto r = co_await good.next();
            CHECK(r.text() == "hello");
        });
        // Bounded by the high-water mark plus what the kernel would not take, never 5 MB.
        CHECK(max_buffered <= f.options.write_high_water + 4096);
    }

    TEST_CASE("graceful shutdown: 1001 to everyone, bounded by the close timeout, run() returns") {
        for (const bool by_cancellation : {false, true}) {
            CAPTURE(by_cancellation);
            asio::io_context io(1);
            server_options o;
            o.port = 0;
            o.timeouts.close = std::chrono::milliseconds(300);
            server srv(io.get_executor(), o);
            asio::cancellation_signal cancel;
            auto echo = [](connection ws) -> asio::awaitable<void> {
                while (auto m = co_await ws.receive())
                    co_await ws.send(*m);
            };
            if (by_cancellation) {
                srv.listen();
                asio::co_spawn(io, srv.run(echo),
                               asio::bind_cancellation_slot(cancel.slot(), asio::detached));
            } else {
                srv.serve(echo);
            }
            const asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"),
                                             srv.local_endpoint().port());
            std::vector<std::uint16_t> codes;
            bool answered_clean = false;
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    auto polite = co_await ws_client::connect(ep);
                    auto silent = co_await ws_client::connect(ep);    // never answers the close
                    auto half = co_await ws_client::connect_raw(ep);  // handshake in flight
                    co_await half.write_raw("GET / HTTP/1.1\r\n");
                    co_await sleep_for(std::chrono::milliseconds(50));
                    if (by_cancellation)
                        cancel.emit(asio::cancellation_type::terminal);
                    else
                        srv.stop();
                    auto a = co_await polite.next();
                    auto b = co_await silent.next();
                    codes = {a.code, b.code};
                    co_await polite.send_close(1001);
                    auto eof = co_await polite.next();
                    answered_clean = eof.eof;
                    auto h = co_await half.read_until_eof();
                    CHECK(h.empty());
                    auto b_end = co_await silent.next(std::chrono::seconds(3));
                    CHECK(b_end.eof);  // dropped after the close timeout
                },
                asio::detached);
            const auto start = std::chrono::steady_clock::now();
            io.run();  // must return by itself
            const auto took = std::chrono::steady_clock::now() - start;
            CHECK(codes == std::vector<std::uint16_t>{1001, 1001});
            CHECK(answered_clean);
            CHECK(srv.connection_count() == 0);
            CHECK(took < std::chrono::seconds(5));
        }
    }
}
