// One io_context run by several threads: connections on strands, sends across strands and
// from foreign threads. Built under TSan (clang) by test/run_all.sh.

#include <doctest/doctest.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <mutex>
#include <ostream>
#include <set>
#include <thread>

#include "server_fixture.hpp"
#include "wscoro/connection.hpp"
#include "wscoro/events.hpp"

using namespace wscoro;
using namespace wscoro::test;
using protocol::event_kind;
using protocol::opcode;

TEST_SUITE("threads") {
    TEST_CASE("a multi-threaded io_context: echo and broadcast across strands") {
        asio::io_context server_io(2);
        server_options o;
        o.port = 0;
        server srv(server_io.get_executor(), o);
        std::mutex members_mutex;
        std::set<connection> members;
        std::atomic<int> handlers_done{0};
        srv.serve([&](connection ws) -> asio::awaitable<void> {
            {
                std::lock_guard lock(members_mutex);
                members.insert(ws);
            }
            while (auto m = co_await ws.receive()) {
                const std::string text = m->str();
                if (text.rfind("all:", 0) == 0) {
                    std::vector<connection> copy;
                    {
                        std::lock_guard lock(members_mutex);
                        copy.assign(members.begin(), members.end());
                    }
                    for (auto& other : copy) {  // other connections live on other strands
                        std::error_code ec;
                        co_await other.send(text, ec);
                    }
                } else {
                    co_await ws.send(*m);
                }
            }
            {
                std::lock_guard lock(members_mutex);
                members.erase(ws);
            }
            ++handlers_done;
        });
        std::vector<std::thread> threads;
        for (int i = 0; i < 2; ++i)
            threads.emplace_back([&] { server_io.run(); });

        constexpr int clients = 8, messages = 100;
        const asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"),
                                         srv.local_endpoint().port());
        asio::io_context client_io(1);
        int ok_clients = 0;
        int broadcasts_seen = 0;
        run_test(
            client_io,
            [&]() -> asio::awaitable<void> {
                std::vector<ws_client> cs;
                for (int i = 0; i < clients; ++i)
                    cs.push_back(co_await ws_client::connect(ep));
                for (int round = 0; round < messages; ++round) {
                    for (int i = 0; i < clients; ++i)
                        co_await cs[i].send_text("c" + std::to_string(i) + " " +
                                                 std::to_string(round));
                    for (int i = 0; i < clients; ++i) {
                        auto r = co_await cs[i].next();
                        CHECK(r.text() == "c" + std::to_string(i) + " " + std::to_string(round));
                    }
                }
                ok_clients = clients;
                co_await cs[0].send_text("all:hello");
                for (int i = 0; i < clients; ++i) {
                    auto r = co_await cs[i].next();
                    if (r.text() == "all:hello") ++broadcasts_seen;
                }
                for (auto& c : cs)
                    co_await c.send_close(1000);
                for (auto& c : cs)
                    (void)co_await c.next();
            },
            std::chrono::seconds(60));
        for (int i = 0; i < 500 && handlers_done < clients; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        srv.stop();
        for (auto& t : threads)
            t.join();  // run() returns once everything is closed
        CHECK(ok_clients == clients);
        CHECK(broadcasts_seen == clients);
        CHECK(handlers_done == clients);
        CHECK(srv.connection_count() == 0);
    }

    TEST_CASE("threads = 2: one io_context and acceptor per thread, connections spread") {
        std::mutex m;
        std::set<std::thread::id> handler_threads;
        std::vector<connection> all;
        std::atomic<int> handlers_done{0};
        constexpr int clients = 24;
        int echoed = 0, cross = 0;
        {
            asio::io_context main_io(1);
            server_options o;
            o.port = 0;
            o.threads = 2;
            server srv(main_io.get_executor(), o);
            srv.serve([&](connection ws) -> asio::awaitable<void> {
                {
                    std::lock_guard lock(m);
                    handler_threads.insert(std::this_thread::get_id());
                    all.push_back(ws);
                }
                while (auto msg = co_await ws.receive()) {
                    if (msg->text() == "shout") {
                        std::vector<connection> copy;
                        {
                            std::lock_guard lock(m);
                            copy = all;
                        }
                        for (auto& c : copy) {  // some live on the other thread
                            std::error_code ec;
                            co_await c.send("heard", ec);
                        }
                    } else {
                        co_await ws.send(*msg);
                    }
                }
                ++handlers_done;
            });
            const asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"),
                                             srv.local_endpoint().port());
            asio::io_context client_io(1);
            run_test(
                client_io,
                [&]() -> asio::awaitable<void> {
                    std::vector<ws_client> cs;
                    for (int i = 0; i < clients; ++i)
                        cs.push_back(co_await ws_client::connect(ep));
                    for (int i = 0; i < clients; ++i)
                        co_await cs[i].send_text("n" + std::to_string(i));
                    for (int i = 0; i < clients; ++i) {
                        auto r = co_await cs[i].next();
                        if (r.text() == "n" + std::to_string(i)) ++echoed;
                    }
                    co_await cs[0].send_text("shout");
                    for (int i = 0; i < clients; ++i) {
                        auto r = co_await cs[i].next();
                        if (r.text() == "heard") ++cross;
                    }
                    for (auto& c : cs)
                        co_await c.send_close(1000);
                    for (auto& c : cs)
                        (void)co_await c.next();
                },
                std::chrono::seconds(60));
            for (int i = 0; i < 500 && handlers_done < clients; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            {
                std::lock_guard lock(m);
                all.clear();
            }
        }  // ~server joins its threads
        CHECK(echoed == clients);
        CHECK(cross == clients);
        CHECK(handlers_done == clients);
        CHECK(handler_threads.size() == 2);
    }

    TEST_CASE("threads = 2 with event callbacks: parking per thread, sends across threads") {
        std::mutex m;
        std::set<std::thread::id> callback_threads;
        std::vector<connection> kept;  // the "/keep" connections (never parked)
        std::atomic<int> opens{0}, closes{0};
        constexpr int clients = 40;
        constexpr int keepers = 4;
        int echoed = 0, heard = 0;
        std::size_t parked_seen = 0;
        {
            asio::io_context main_io(1);
            server_options o;
            o.port = 0;
            o.threads = 2;
            o.park_idle_after = std::chrono::milliseconds(20);
            server srv(main_io.get_executor(), o);
            event_handlers h;
            h.on_open = [&](const connection& ws) {
                ++opens;
                std::lock_guard lock(m);
                callback_threads.insert(std::this_thread::get_id());
                if (ws.handshake().path() == "/keep") kept.push_back(ws);
            };
            h.on_message = [&](const connection& ws, const message& msg) {
                if (msg.text() != "shout") {
                    (void)ws.send_now(msg);
                    return;
                }
                std::vector<connection> copy;
                {
                    std::lock_guard lock(m);
                    copy = kept;
                }
                for (auto& c : copy) {  // some live on the other thread
                    auto send = [](connection c) -> asio::awaitable<void> {
                        std::error_code ec;
                        co_await c.send("heard", ec);
                    };
                    asio::co_spawn(c.get_executor(), send(c), asio::detached);
                }
            };
            h.on_close = [&](const connection&, const close_info&) { ++closes; };
            srv.serve(std::move(h));
            const asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"),
                                             srv.local_endpoint().port());
            asio::io_context client_io(1);
            run_test(
                client_io,
                [&]() -> asio::awaitable<void> {
                    std::vector<ws_client> cs;
                    for (int i = 0; i < clients; ++i)
                        cs.push_back(co_await ws_client::connect(ep, i < keepers ? "/keep" : "/"));
                    for (int i = 0; i < 400 && srv.parked_count() != clients - keepers; ++i)
                        co_await sleep_for(std::chrono::milliseconds(5));
                    parked_seen = srv.parked_count();
                    for (int i = 0; i < clients; ++i)
                        co_await cs[i].send_text("n" + std::to_string(i));
                    for (int i = 0; i < clients; ++i) {
                        auto r = co_await cs[i].next();
                        if (r.text() == "n" + std::to_string(i)) ++echoed;
                    }
                    co_await cs[clients - 1].send_text("shout");
                    for (int i = 0; i < keepers; ++i) {
                        auto r = co_await cs[i].next();
                        if (r.text() == "heard") ++heard;
                    }
                    for (auto& c : cs)
                        co_await c.send_close(1000);
                    for (auto& c : cs)
                        (void)co_await c.next();
                },
                std::chrono::seconds(60));
            for (int i = 0; i < 500 && closes < clients; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            {
                std::lock_guard lock(m);
                kept.clear();
            }
        }  // ~server joins its threads
        CHECK(parked_seen == clients - keepers);
        CHECK(echoed == clients);
        CHECK(heard == keepers);
        CHECK(opens == clients);
        CHECK(closes == clients);
        CHECK(callback_threads.size() == 2);
    }
}
