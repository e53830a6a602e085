// The server around the protocol: HTTP answers, timeouts, limits, logging, IPv6, EMFILE.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <ostream>
#include <thread>

#include "server_fixture.hpp"
#include "wscoro/connection.hpp"
#include "wscoro/protocol/handshake.hpp"

using namespace wscoro;
using namespace wscoro::test;
using protocol::event_kind;
using protocol::opcode;

namespace {

asio::awaitable<void> echo(connection ws) {
    while (auto msg = co_await ws.receive())
        co_await ws.send(*msg);
}

std::string request_with(std::string_view replace_from, std::string_view replace_to) {
    std::string r = protocol::client_request("127.0.0.1", "/", "dGhlIHNhbXBsZSBub25jZQ==");
    if (!replace_from.empty()) {
        const auto pos = r.find(replace_from);
        REQUIRE(pos != std::string::npos);
        r.replace(pos, replace_from.size(), replace_to);
    }
    return r;
}

// Sends `request` and returns everything the server answers before closing TCP.
asio::awaitable<std::string> exchange(server_fixture& f, std::string request) {
    auto c = co_await ws_client::connect_raw(f.endpoint());
    co_await c.write_raw(request);
    co_return co_await c.read_until_eof();
}

asio::awaitable<void> check_still_serving(server_fixture& f) {
    auto c = co_await ws_client::connect(f.endpoint());
    co_await c.send_text("still here");
    auto r = co_await c.next();
    CHECK(r.text() == "still here");
}

}  // namespace

TEST_SUITE("server") {
    TEST_CASE("bad upgrade requests get a real HTTP error response") {
        struct bad {
            std::string request;
            std::string status_line;
            std::string must_contain;
            wscoro::error err;
        };
        const std::vector<bad> cases = {
            {request_with("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
             "HTTP/1.1 400 Bad Request\r\n", "Connection: close", error::no_sec_key},
            {request_with("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 12"),
             "HTTP/1.1 426 Upgrade Required\r\n", "Sec-WebSocket-Version: 13, 8, 7\r\n",
             error::bad_sec_version},
            {request_with("GET", "POST"), "HTTP/1.1 405 Method Not Allowed\r\n", "Allow: GET",
             error::bad_method},
            {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 426 Upgrade Required\r\n",
             "Upgrade: websocket", error::no_upgrade},
            {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n", 23),
             "HTTP/1.1 400 Bad Request\r\n", "Content-Length:", error::bad_http_request},
            {request_with(
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"),
             "HTTP/1.1 400 Bad Request\r\n", "Connection: close", error::bad_http_request},
            {"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70000, 'a') + "\r\n\r\n",
             "HTTP/1.1 431 ", "Request Header Fields Too Large", error::headers_too_large},
            {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n", "HTTP/1.1 414 ",
             "URI Too Long", error::request_line_too_long},
        };
        server_fixture f;
        f.start(echo);
        for (auto& b : cases) {
            CAPTURE(b.status_line);
            f.errors.clear();
            f.run([&]() -> asio::awaitable<void> {
                const auto answer = co_await exchange(f, b.request);
                CHECK(answer.rfind(b.status_line, 0) == 0);
                CHECK(answer.find(b.must_contain) != std::string::npos);
                CHECK(answer.find("\r\n\r\n") != std::string::npos);
                co_await check_still_serving(f);
            });
            CHECK(f.saw_error(b.err));
            CHECK(std::error_code(b.err) == condition::handshake_failed);
        }
    }

    TEST_CASE("a server on a thread pool's executor, or on a strand, serves on strands") {
        // Not an io_context executor: every connection gets a strand of it. (Asio 1.22's
        // any_executor::target<T>() does not check T; wscoro compares the type itself.)
        asio::thread_pool pool(2);
        asio::io_context strand_io(1);
        const auto strand = asio::make_strand(strand_io.get_executor());
        for (int which = 0; which < 2; ++which) {
            CAPTURE(which);
            const asio::any_io_executor ex = which == 0 ? asio::any_io_executor(pool.get_executor())
                                                        : asio::any_io_executor(strand);
            server_options o;
            o.port = 0;
            server srv(ex, o);
            std::atomic<int> on_strand{0};
            srv.serve([&](connection ws) -> asio::awaitable<void> {
                while (auto m = co_await ws.receive()) {
                    // try_send() only queues on the connection's strand.
                    if (ws.try_send(*m))
                        ++on_strand;
                    else
                        co_await ws.send(*m);
                }
            });
            std::thread runner;
            if (which == 1)
                runner = std::thread([&] { strand_io.run_for(std::chrono::seconds(20)); });
            asio::io_context client_io(1);
            const asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"),
                                             srv.local_endpoint().port());
            run_test(client_io, [&]() -> asio::awaitable<void> {
                auto c = co_await ws_client::connect(ep);
                for (int i = 0; i < 20; ++i) {
                    const auto text = "m" + std::to_string(i);
                    co_await c.send_text(text);
                    auto r = co_await c.next();
                    CHECK(r.text() == text);
                }
                co_await c.send_close(1000);
                (void)co_await c.next();
            });
            srv.stop();
            for (int i = 0; i < 500 && srv.connection_count() != 0; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            CHECK(srv.connection_count() == 0);
            CHECK(on_strand == 20);
            if (which == 1) {
                strand_io.stop();
                runner.join();
            }
        }
        pool.join();
    }

    TEST_CASE("an upgrade request arriving one byte at a time") {
        server_fixture f;
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect_raw(f.endpoint());
            const auto key = protocol::generate_key();
            const auto request = protocol::client_request("127.0.0.1", "/split", key);
            for (char ch : request) {
                co_await c.write_raw(std::string_view(&ch, 1));
                co_await sleep_for(std::chrono::milliseconds(1));
            }
            const auto head = co_await c.read_http_head();
            CHECK_FALSE(protocol::check_accept_response(head, key));
        });
    }

    TEST_CASE("a connection that never completes its handshake is closed after the timeout") {
        server_fixture f;
        f.options.timeouts.handshake = std::chrono::milliseconds(200);
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect_raw(f.endpoint());
            co_await c.write_raw("GET / HTTP/1.1\r\n");  // and then nothing
            const auto start = std::chrono::steady_clock::now();
            const auto got = co_await c.read_until_eof(std::chrono::seconds(5));
            CHECK(got.empty());
            CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
            const bool drained = co_await f.drained();
            CHECK(drained);
        });
        CHECK(f.saw_error(error::handshake_timeout));
    }

    TEST_CASE("defer_accept: a connection is accepted once its request arrives") {
        for (const bool defer : {false, true}) {
            CAPTURE(defer);
            server_fixture f;
            f.options.defer_accept = defer;
            f.start(echo);
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await ws_client::connect_raw(f.endpoint());
                // Connected, nothing sent: without the option the server accepts at once.
                for (int i = 0; i < 40 && !defer && f.srv->connection_count() == 0; ++i)
                    co_await sleep_for(std::chrono::milliseconds(10));
                co_await sleep_for(std::chrono::milliseconds(100));
                CHECK(f.srv->connection_count() == (defer ? 0u : 1u));
                // The request arrives: accepted, upgraded, echoing.
                const auto key = protocol::generate_key();
                const auto request = protocol::client_request("127.0.0.1", "/", key);
                co_await c.write_raw(request);
                const auto head = co_await c.read_http_head();
                CHECK_FALSE(protocol::check_accept_response(head, key));
                CHECK(f.srv->connection_count() == 1);
                co_await c.send_text("after the wait");
                auto r = co_await c.next();
                CHECK(r.text() == "after the wait");
                co_await c.send_close(close_code::normal);
                (void)co_await c.next();
                const bool drained = co_await f.drained();
                CHECK(drained);
            });
        }
    }

    TEST_CASE("handshake view: path, query, origin, headers, endpoints") {
        server_fixture f;
        std::optional<handshake_info> seen;
        f.start([&](connection ws) -> asio::awaitable<void> {
            seen = ws.handshake();
            (void)co_await ws.receive();
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c =
                co_await ws_client::connect(f.endpoint(), "/room/1?user=ann&tag=a%20b",
                                            "Origin: http://example.test\r\nX-Custom: yes\r\n");
            co_await c.send_close(1000);
            (void)co_await c.next();
        });
        REQUIRE(seen);
        CHECK(seen->path() == "/room/1");
        CHECK(seen->query_string() == "user=ann&tag=a%20b");
        CHECK(seen->query("tag") == "a b");
        CHECK(seen->origin() == "http://example.test");
        CHECK(seen->header("x-custom") == "yes");
        CHECK(seen->protocol_version() == 13);
        CHECK_FALSE(seen->secure());
        CHECK(seen->remote_endpoint().address().is_loopback());
        CHECK(seen->local_endpoint().port() == f.srv->local_endpoint().port());
    }

    TEST_CASE("IPv6 loopback") {
        server_fixture f;
        f.options.host = "::1";
        bool v6_remote = false;
        try {
            f.start([&](connection ws) -> asio::awaitable<void> {
                v6_remote = ws.handshake().remote_endpoint().address().is_v6();
                while (auto m = co_await ws.receive())
                    co_await ws.send(*m);
            });
        } catch (const std::system_error& e) {
            MESSAGE("IPv6 loopback unavailable here: " << e.what());
            return;
        }
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await c.send_text("over v6");
            auto r = co_await c.next();
            CHECK(r.text() == "over v6");
        });
        CHECK(v6_remote);
    }

    TEST_CASE("debug logging shows handshakes, frames and closes") {
        server_fixture f;
        std::mutex m;
        std::vector<std::string> lines;
        f.options.debug = true;
        f.options.log_sink = [&](log_level, std::uint64_t, std::string_view text) {
            std::lock_guard lock(m);
            lines.emplace_back(text);
        };
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint(), "/logged");
            co_await c.send_text("hello log");
            (void)co_await c.next();
            co_await c.send_close(1000);
            (void)co_await c.next();
            const bool drained = co_await f.drained();
            CHECK(drained);
        });
        auto has = [&](std::string_view needle) {
            for (auto& l : lines)
                if (l.find(needle) != std::string::npos) return true;
            return false;
        };
        CHECK(has("handshake: GET /logged"));
        CHECK(has("frame in: text len=9 'hello log'"));
        CHECK(has("frame out: text len=9"));
        CHECK(has("close received: code 1000"));
    }

    TEST_CASE("the listener survives running out of file descriptors (EMFILE)") {
        rlimit old{};
        REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
        server_fixture f;
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            // Leave room for only a few more descriptors, then exhaust them with clients.
            // New descriptors take the lowest free number below the limit, so a limit a few
            // above the lowest free number leaves only a few.
            int lowest_free = 0;
            while (fcntl(lowest_free, F_GETFD) != -1)
                ++lowest_free;
            rlimit low = old;
            low.rlim_cur = static_cast<rlim_t>(lowest_free + 6);
            REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
            std::vector<asio::ip::tcp::socket> held;
            // Connect until no descriptor is left (socket creation fails): the server's
            // accept then has none either.
            bool exhausted = false;
            for (int i = 0; i < 64 && !exhausted; ++i) {
                asio::ip::tcp::socket s(f.io);
                std::error_code ec;
                s.connect(f.endpoint(), ec);
                if (ec)
                    exhausted = true;
                else
                    held.push_back(std::move(s));
            }
            CHECK(exhausted);
            co_await sleep_for(std::chrono::milliseconds(300));  // accept fails meanwhile
            held.clear();
            REQUIRE(setrlimit(RLIMIT_NOFILE, &old) == 0);
            co_await check_still_serving(f);
        });
        setrlimit(RLIMIT_NOFILE, &old);
        bool saw_emfile = false;
        // (by value: Asio 1.22's error category maps nothing to std::errc conditions)
        for (auto& e : f.errors)
            saw_emfile |= e.code.value() == EMFILE;
        CHECK(saw_emfile);
    }

    TEST_CASE("log levels: payloads only at trace, frames from debug, quiet at info") {
        struct captured {
            std::vector<std::pair<log_level, std::string>> lines;
            bool has(std::string_view needle) const {
                for (auto& l : lines)
                    if (l.second.find(needle) != std::string::npos) return true;
                return false;
            }
        };
        auto run_with = [](log_level level, captured& out) {
            server_fixture f;
            f.options.log_level = level;
            std::mutex m;
            f.options.log_sink = [&](log_level l, std::uint64_t id, std::string_view text) {
                std::lock_guard lock(m);
                out.lines.emplace_back(l, std::string(text) + " #" + std::to_string(id));
            };
            f.start(echo);
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await ws_client::connect(f.endpoint(), "/levels");
                co_await c.send_text("secret payload");
                (void)co_await c.next();
                co_await c.send_close(1000);
                (void)co_await c.next();
                const bool drained = co_await f.drained();
                CHECK(drained);
            });
        };
        captured trace, debug, info;
        run_with(log_level::trace, trace);
        run_with(log_level::debug, debug);
        run_with(log_level::info, info);
        CHECK(trace.has("'secret payload'"));
        CHECK(debug.has("frame in: text len=14"));
        CHECK_FALSE(debug.has("secret payload"));
        CHECK_FALSE(info.has("frame in"));
        CHECK(info.has("listening on"));
        for (auto& l : debug.lines)
            CHECK(l.first >= log_level::debug);
        // connection ids: frame lines carry the connection's id, the listener's are #0
        CHECK(debug.has("frame in: text len=14 #1"));
        CHECK(info.has("listening on 127.0.0.1"));
    }

    TEST_CASE("the default sink writes timestamped lines") {
        // Redirect stderr into a pipe for the duration of one log line.
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        const int saved = dup(2);
        dup2(fds[1], 2);
        stderr_sink(log_level::warn, 42, "hello from the sink");
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        close(fds[1]);
        char buf[512] = {};
        const auto n = read(fds[0], buf, sizeof buf - 1);
        close(fds[0]);
        const std::string line(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
        CHECK(line.find("wscoro warn [#42] hello from the sink\n") != std::string::npos);
        CHECK(line.size() > 24);
        CHECK(line[4] == '-');
        CHECK(line[10] == 'T');
        CHECK(line.find("Z wscoro") != std::string::npos);
    }

    TEST_CASE("server_options works with designated initializers (no -Wextra warnings)") {
        asio::io_context io(1);
        server srv(io.get_executor(), {.host = "127.0.0.1", .port = 0, .backlog = 16});
        srv.listen();
        CHECK(srv.local_endpoint().port() != 0);
        const auto d = handshake_decision{.status = 403, .body = "no"};
        CHECK(d.status == 403);
    }
}
