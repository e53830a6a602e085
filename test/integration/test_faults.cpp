// Faults and abuse over 127.0.0.1: peers vanishing at every stage, failing writes, and
// abusive clients, while a well-behaved client keeps being served. Every case must free
// its connection (the server's live-connection counter returns to zero).

#include <doctest/doctest.h>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <ostream>

#include "server_fixture.hpp"
#include "test_certs.hpp"
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

// Closes with a RST (SO_LINGER 0) instead of a FIN.
void reset(asio::ip::tcp::socket& s) {
    s.set_option(asio::socket_base::linger(true, 0));
    std::error_code ignored;
    s.close(ignored);
}

}  // namespace

TEST_SUITE("faults") {
    TEST_CASE("the peer vanishes mid-handshake, mid-TLS-handshake and mid-close") {
        const auto cert = make_self_signed("localhost");
        for (const bool tls : {false, true}) {
            CAPTURE(tls);
            server_fixture f;
            if (tls) {
                f.options.secure = true;
                f.options.tls.cert = cert.cert_pem;
                f.options.tls.private_key = cert.key_pem;
            }
            std::vector<wscoro::close_info> infos;
            f.start([&](connection ws) -> asio::awaitable<void> {
                co_await ws.close(1000, "bye");  // the client below never answers
                infos.push_back(ws.close_info());
            });
            f.run([&]() -> asio::awaitable<void> {
                {
                    // half a request (or half a TLS ClientHello), then gone
                    auto c = co_await ws_client::connect_raw(f.endpoint());
                    // (a named local: g++ 12 frees a conditional's temporaries twice
                    // inside a co_await expression, toolchain.md bug 2)
                    const std::string half = tls ? std::string("\x16\x03\x01\x02\x00\x01", 6)
                                                 : std::string("GET / HTTP/1.1\r\nHost: x");
                    co_await c.write_raw(half);
                }
                {
                    tls_client_options opts{"localhost", {}, {}, {}};
                    auto c =
                        co_await ws_client::connect(f.endpoint(), "/", {}, tls ? &opts : nullptr);
                    auto r = co_await c.next();
                    CHECK(r.kind == event_kind::close);
                    reset(c.socket());  // mid-close: no answer, a RST
                }
                const bool drained = co_await f.drained();
                CHECK(drained);
            });
            REQUIRE(infos.size() == 1);
            CHECK(infos[0].code == 1006);
            CHECK_FALSE(infos[0].was_clean);
            CHECK(infos[0].error);
            CHECK(infos[0].error != error::close_timeout);  // noticed at once, not after 5 s
            CHECK(
                f.saw_error(tls ? error::tls_handshake_failed : std::error_code(asio::error::eof)));
        }
    }

    TEST_CASE("writes that fail: the sender gets error::closed, the connection is freed") {
        server_fixture f;
        std::error_code send_error;
        std::optional<wscoro::close_info> info;
        f.start([&](connection ws) -> asio::awaitable<void> {
            const auto big = pattern(1 << 20);
            for (int i = 0; i < 200 && !send_error; ++i)
                co_await ws.send_binary(big, send_error);
            info = ws.close_info();
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await sleep_for(std::chrono::milliseconds(100));  // let the queue fill
            reset(c.socket());
            const bool drained = co_await f.drained();
            CHECK(drained);
        });
        CHECK(send_error == error::closed);
        REQUIRE(info);
        CHECK(info->code == 1006);
        CHECK(info->error);
    }

    TEST_CASE("abuse while a well-behaved client is served") {
        server_fixture f;
        f.options.timeouts.handshake = std::chrono::milliseconds(500);
        f.options.max_message_size = 1 << 20;
        f.start(echo);
        int good_echoes = 0;
        std::chrono::steady_clock::duration worst{};
        f.run(
            [&]() -> asio::awaitable<void> {
                auto good = co_await ws_client::connect(f.endpoint());
                // slowloris: ten connections dribbling a request a byte at a time
                std::vector<ws_client> slow;
                for (int i = 0; i < 10; ++i)
                    slow.push_back(co_await ws_client::connect_raw(f.endpoint()));
                // header flood, garbage, fragment flood, ping flood
                auto header = co_await ws_client::connect_raw(f.endpoint());
                co_await header.write_raw("GET / HTTP/1.1\r\nX: " + std::string(100000, 'a'));
                auto garbage = co_await ws_client::connect_raw(f.endpoint());
                co_await garbage.write_raw(pattern(5000, 3));
                auto frags = co_await ws_client::connect(f.endpoint());
                {
                    std::vector<std::byte> burst;
                    const protocol::mask_key mk{std::byte{1}, std::byte{2}, std::byte{3},
                                                std::byte{4}};
                    protocol::append_frame(burst, opcode::text, false, bytes("x"), &mk);
                    for (int i = 0; i < 20000; ++i)
                        protocol::append_frame(
                            burst, opcode::continuation, false,
                            bytes(
                                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
                            &mk);
                    co_await frags.write_raw(burst);  // 1.28 MB in one message: over the limit
                }
                const std::string dribble = "GET / HTTP/1.1\r\nHost: x\r\n";
                for (std::size_t step = 0; step < 12; ++step) {
                    for (auto& s : slow) {
                        std::error_code ec;
                        asio::write(s.socket(),
                                    asio::buffer(dribble.data() + step % dribble.size(), 1), ec);
                    }
                    const auto t0 = std::chrono::steady_clock::now();
                    co_await good.send_text("ping " + std::to_string(step));
                    auto r = co_await good.next();
                    worst = std::max(worst, std::chrono::steady_clock::now() - t0);
                    if (r.text() == "ping " + std::to_string(step)) ++good_echoes;
                    co_await sleep_for(std::chrono::milliseconds(100));
                }
                const auto h = co_await header.read_until_eof();
                CHECK(h.rfind("HTTP/1.1 431 ", 0) == 0);
                const auto g = co_await garbage.read_until_eof();
                CHECK(g.rfind("HTTP/1.1 400 ", 0) == 0);
                auto fr = co_await frags.next();
                REQUIRE(fr.kind == event_kind::close);
                CHECK(fr.code == 1009);
                for (auto& s : slow) {
                    const auto rest = co_await s.read_until_eof(std::chrono::seconds(3));
                    CHECK(rest.empty());  // dropped by the handshake timeout
                }
                co_await good.send_close(1000);
                (void)co_await good.next();
                const bool drained = co_await f.drained();
                CHECK(drained);
            },
            std::chrono::seconds(60));
        CHECK(good_echoes == 12);
        CHECK(worst < std::chrono::milliseconds(500));
        CHECK(f.saw_error(error::handshake_timeout));
        CHECK(f.saw_error(error::headers_too_large));
        CHECK(f.saw_error(error::message_too_big));
    }
}
