// Connections served with event callbacks (server::serve(event_handlers)), over real sockets
// on 127.0.0.1: the same protocol engine as the coroutine handlers, driven from completions.

#include <doctest/doctest.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <optional>
#include <ostream>
#include <random>
#include <thread>

#include "server_fixture.hpp"
#include "session_helpers.hpp"
#include "test_certs.hpp"
#include "wscoro/connection.hpp"
#include "wscoro/events.hpp"
#include "wscoro/prepared_message.hpp"

using namespace wscoro;
using namespace wscoro::test;
using protocol::event_kind;
using protocol::opcode;

namespace {

// What the callbacks saw.
struct journal {
    int opens = 0;
    int closes = 0;
    int messages = 0;
    std::string path;
    std::optional<close_info> info;
    connection_state state_at_close = connection_state::open;
    std::size_t max_buffered = 0;
    std::vector<message_type> types;
};

// An echo with send_now(), recording into `j`.
event_handlers echo_into(journal& j) {
    event_handlers h;
    h.on_open = [&j](const connection& ws) {
        ++j.opens;
        j.path = std::string(ws.handshake().path());
    };
    h.on_message = [&j](const connection& ws, const message& m) {
        ++j.messages;
        j.types.push_back(m.type());
        if (m.type() == message_type::ping || m.type() == message_type::pong) return;
        CHECK_FALSE(ws.send_now(m));
        j.max_buffered = std::max(j.max_buffered, ws.buffered_amount());
    };
    h.on_close = [&j](const connection& ws, const close_info& info) {
        ++j.closes;
        j.info = info;
        j.state_at_close = ws.state();
    };
    return h;
}

std::vector<std::byte> masked(opcode op, std::span<const std::byte> payload) {
    std::vector<std::byte> out;
    const protocol::mask_key mk{std::byte{0x11}, std::byte{0x22}, std::byte{0x33}, std::byte{0x44}};
    protocol::append_frame(out, op, true, payload, &mk);
    return out;
}

}  // namespace

namespace {

// Parking needs an io_context run by one thread: the fixture's is.
void parking_options(server_fixture& f) {
    f.options.single_threaded = true;
    f.options.park_idle_after = std::chrono::milliseconds(20);
}

// Waits (bounded) until the server has `n` connections parked.
asio::awaitable<bool> parked(server_fixture& f, std::size_t n) {
    for (int i = 0; i < 400; ++i) {
        if (f.srv->parked_count() == n) co_return true;
        co_await sleep_for(std::chrono::milliseconds(5));
    }
    co_return false;
}

// What the callbacks saw of the handshake, per message, to compare across parking.
struct seen {
    std::uint64_t id = 0;
    std::string path, query, header, subprotocol;
    std::string remote;
    int version = 0;
    bool operator==(const seen&) const = default;
};

seen look(const connection& ws) {
    const auto& h = ws.handshake();
    return {ws.id(),
            std::string(h.path()),
            std::string(h.query("room").value_or("-")),
            std::string(h.header("X-Test").value_or("-")),
            std::string(h.subprotocol()),
            h.remote_endpoint().address().to_string() + ":" +
                std::to_string(h.remote_endpoint().port()),
            h.protocol_version()};
}

}  // namespace

TEST_SUITE("events") {
    TEST_CASE("echo of every length class; on_open, then on_close once with a clean close") {
        const bool single = executor_mode();
        server_fixture f;
        f.options.single_threaded = single;
        f.options.max_frame_size = 32u << 20;
        f.options.max_message_size = 32u << 20;
        journal j;
        f.start(echo_into(j));
        f.run(
            [&]() -> asio::awaitable<void> {
                auto c = co_await ws_client::connect(f.endpoint(), "/room?x=1");
                // 70 000 B and up: the payload is read straight into the message buffer.
                const std::vector<std::size_t> sizes{0,     1,     125,     126,     65535,
                                                     65536, 70000, 1 << 20, 16 << 20};
                co_await echo_each_size(c, sizes);
                co_await c.send_close(4001, "bye now");
                co_await expect_close(c, 4001);
                const bool drained = co_await f.drained();
                CHECK(drained);
            },
            std::chrono::seconds(120));
        CHECK(j.opens == 1);
        CHECK(j.closes == 1);
        CHECK(j.path == "/room");
        CHECK(j.messages == 18);  // 9 sizes, text and binary
        REQUIRE(j.info);
        CHECK(j.info->code == 4001);
        CHECK(j.info->reason == "bye now");
        CHECK(j.info->was_clean);
        CHECK_FALSE(j.info->error);
        CHECK(j.state_at_close == connection_state::closed);
        CHECK(f.errors.empty());
    }

    TEST_CASE("a burst in one write: every message in order, the ping answered, a clean close") {
        const bool single = executor_mode();
        server_fixture f;
        f.options.single_threaded = single;
        journal j;
        f.start(echo_into(j));
        constexpr int count = 300;
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            std::vector<std::byte> burst;
            for (int i = 0; i < count; ++i) {
                const auto body =
                    ascii(static_cast<std::size_t>(i % 200), static_cast<std::size_t>(i));
                const auto frame = masked(i % 3 ? opcode::text : opcode::binary, body);
                burst.insert(burst.end(), frame.begin(), frame.end());
                if (i == count / 2) {
                    const auto ping = masked(opcode::ping, bytes("are you there"));
                    burst.insert(burst.end(), ping.begin(), ping.end());
                }
            }
            std::byte body[2];
            protocol::encode_close_payload(body, 1000, {});
            const auto close = masked(opcode::close, std::span(body, 2));
            burst.insert(burst.end(), close.begin(), close.end());
            co_await c.write_raw(burst);
            bool pong = false;
            for (int i = 0; i < count; ++i) {
                auto r = co_await c.next();
                if (r.kind == event_kind::pong) {
                    CHECK(r.text() == "are you there");
                    pong = true;
                    r = co_await c.next();
                }
                REQUIRE(r.kind == event_kind::message);
                CHECK(r.type == (i % 3 ? opcode::text : opcode::binary));
                const auto want =
                    ascii(static_cast<std::size_t>(i % 200), static_cast<std::size_t>(i));
                CHECK(r.payload == want);
            }
            CHECK(pong);
            co_await expect_close(c, 1000);
            const bool drained = co_await f.drained();
            CHECK(drained);
        });
        CHECK(j.messages == count);  // the ping was answered, not delivered
        REQUIRE(j.info);
        CHECK(j.info->code == 1000);
        CHECK(j.info->was_clean);
    }

    TEST_CASE("deliver_control_frames: pings and pongs reach on_message too") {
        server_fixture f;
        journal j;
        auto h = echo_into(j);
        h.on_open = [](const connection& ws) { ws.deliver_control_frames(true); };
        f.start(std::move(h));
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await c.send_frame(opcode::ping, bytes("p1"));
            auto r = co_await c.next();
            CHECK(r.kind == event_kind::pong);  // still answered
            co_await c.send_frame(opcode::pong, bytes("unsolicited"));
            co_await c.send_text("after");
            co_await expect_message(c, opcode::text, bytes("after"));
            co_await c.send_close(1000);
            co_await expect_close(c, 1000);
        });
        const std::vector<message_type> want{message_type::ping, message_type::pong,
                                             message_type::text};
        CHECK(j.types == want);
    }

    TEST_CASE("a protocol error closes with 1002 and on_close reports it") {
        server_fixture f;
        journal j;
        f.start(echo_into(j));
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await c.send_text("fine");
            co_await expect_message(c, opcode::text, bytes("fine"));
            // An unmasked frame from a client (RFC 6455 §5.1).
            const std::byte unmasked[] = {std::byte{0x81}, std::byte{0x01}, std::byte{'x'}};
            co_await c.write_raw(unmasked);
            co_await expect_close(c, close_code::protocol_error);
            const bool drained = co_await f.drained();
            CHECK(drained);
        });
        CHECK(j.closes == 1);
        REQUIRE(j.info);
        CHECK(j.info->code == close_code::protocol_error);
        CHECK_FALSE(j.info->was_clean);
        CHECK(j.info->error == error::bad_unmasked_frame);
    }

    TEST_CASE("a callback that throws: on_error, 1011, the server goes on") {
        server_fixture f;
        journal j;
        auto h = echo_into(j);
        auto echo = h.on_message;
        h.on_message = [echo](const connection& ws, const message& m) {
            if (m.text() == "boom") throw std::runtime_error("exploded");
            echo(ws, m);
        };
        f.start(std::move(h));
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await c.send_text("boom");
            auto r = co_await c.next();
            REQUIRE(r.kind == event_kind::close);
            CHECK(r.code == close_code::internal_error);
            co_await c.send_close(close_code::internal_error);
            auto eof = co_await c.next();
            CHECK(eof.eof);
            // Another connection is served as usual.
            auto c2 = co_await ws_client::connect(f.endpoint());
            co_await c2.send_text("still here");
            co_await expect_message(c2, opcode::text, bytes("still here"));
            co_await c2.send_close(1000);
            co_await expect_close(c2, 1000);
        });
        REQUIRE(f.errors.size() == 1);
        CHECK(f.errors[0].code == error::application_error);
        CHECK(f.errors[0].had_exception);
        CHECK(f.errors[0].message.find("exploded") != std::string::npos);
        CHECK(j.closes == 2);
    }

    TEST_CASE("start_close from a callback: our Close, the peer's answer, a clean end") {
        server_fixture f;
        journal j;
        auto h = echo_into(j);
        std::error_code bad_code, bad_reason, second;
        h.on_message = [&](const connection& ws, const message& m) {
            bad_code = ws.start_close(1005);
            bad_reason = ws.start_close(1000, std::string(124, 'r'));
            CHECK_FALSE(ws.start_close(4000, m.text()));
            second = ws.start_close(4001);  // already closing: nothing
            CHECK(ws.state() == connection_state::closing);
            CHECK(ws.send_now("late") == error::closed);
        };
        f.start(std::move(h));
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await c.send_text("done here");
            auto r = co_await c.next();
            REQUIRE(r.kind == event_kind::close);
            CHECK(r.code == 4000);
            CHECK(r.reason == "done here");
            co_await c.send_close(4000);
            auto eof = co_await c.next();
            CHECK(eof.eof);
            const bool drained = co_await f.drained();
            CHECK(drained);
        });
        CHECK(bad_code == error::invalid_close_code);
        CHECK(bad_reason == error::reason_too_long);
        CHECK_FALSE(second);
        REQUIRE(j.info);
        CHECK(j.info->code == 4000);
        CHECK(j.info->was_clean);
    }

    TEST_CASE("backpressure: a peer that does not read stops being read; nothing is lost") {
        const bool single = executor_mode();
        server_fixture f;
        f.options.single_threaded = single;
        f.options.write_high_water = 64 * 1024;
        f.options.write_low_water = 16 * 1024;
        journal j;
        f.start(echo_into(j));
        // 32 MiB of echoes: far more than the kernel's socket buffers hold.
        constexpr int count = 8192;
        constexpr std::size_t size = 4096;
        int read_while_stalled = 0;
        f.run(
            [&]() -> asio::awaitable<void> {
                auto c = co_await ws_client::connect(f.endpoint());
                auto writer = [](ws_client& c) -> asio::awaitable<void> {
                    std::vector<std::byte> all;
                    for (int i = 0; i < count; ++i) {
                        const auto frame =
                            masked(opcode::binary, pattern(size, static_cast<unsigned>(i)));
                        all.insert(all.end(), frame.begin(), frame.end());
                    }
                    co_await c.write_raw(all);
                };
                asio::co_spawn(f.io, writer(c), asio::detached);
                co_await sleep_for(std::chrono::milliseconds(500));
                read_while_stalled = j.messages;
                for (int i = 0; i < count; ++i) {
                    auto r = co_await c.next(std::chrono::seconds(20));
                    REQUIRE(r.kind == event_kind::message);
                    if (r.payload != pattern(size, static_cast<unsigned>(i))) {
                        FAIL("echo " << i << " differs");
                    }
                }
                co_await c.send_close(1000);
                co_await expect_close(c, 1000);
            },
            std::chrono::seconds(90));
        CHECK(j.messages == count);
        CHECK(read_while_stalled < count);  // reading stopped while the peer did not read
        // At most the high-water mark plus the echoes of one read (64 KiB) are ever queued.
        CHECK(j.max_buffered <= f.options.write_high_water + 64 * 1024 + 2 * size);
        REQUIRE(j.info);
        CHECK(j.info->was_clean);
    }

    TEST_CASE("large echoes are written through; what the socket does not take is kept") {
        // 200 KiB messages: send_now writes each from the message buffer as far as the socket
        // takes it and queues the rest; a peer that reads late still gets every byte in order.
        server_fixture f;
        f.options.single_threaded = true;
        f.options.write_high_water = 256 * 1024;
        f.options.write_low_water = 64 * 1024;
        journal j;
        f.start(echo_into(j));
        constexpr int count = 100;
        constexpr std::size_t size = 200 * 1024;
        f.run(
            [&]() -> asio::awaitable<void> {
                auto c = co_await ws_client::connect(f.endpoint());
                auto writer = [](ws_client& c) -> asio::awaitable<void> {
                    for (int i = 0; i < count; ++i) {
                        // (Named, not a temporary in the co_await: g++ 12, see DESIGN.md.)
                        const auto body = i % 2 ? pattern(size, static_cast<unsigned>(i))
                                                : ascii(size, static_cast<std::size_t>(i));
                        const auto op = i % 2 ? opcode::binary : opcode::text;
                        co_await c.send_frame(op, body);
                    }
                };
                asio::co_spawn(f.io, writer(c), asio::detached);
                co_await sleep_for(std::chrono::milliseconds(300));
                for (int i = 0; i < count; ++i) {
                    auto r = co_await c.next(std::chrono::seconds(20));
                    REQUIRE(r.kind == event_kind::message);
                    const auto want = i % 2 ? pattern(size, static_cast<unsigned>(i))
                                            : ascii(size, static_cast<std::size_t>(i));
                    if (r.payload != want) FAIL("echo " << i << " differs");
                }
                co_await c.send_close(1000);
                co_await expect_close(c, 1000);
            },
            std::chrono::seconds(90));
        CHECK(j.messages == count);
        CHECK(j.max_buffered <= f.options.write_high_water + 64 * 1024 + size);
    }

    TEST_CASE("graceful stop: open or parked connections get 1001 and on_close") {
        bool park = false;
        SUBCASE("open") {
            park = false;
        }
        SUBCASE("parked (woken on their thread to be closed)") {
            park = true;
        }
        server_fixture f;
        if (park) parking_options(f);
        journal j;
        f.start(echo_into(j));
        f.run([&]() -> asio::awaitable<void> {
            auto c1 = co_await ws_client::connect(f.endpoint());
            auto c2 = co_await ws_client::connect(f.endpoint());
            co_await c1.send_text("x");
            co_await expect_message(c1, opcode::text, bytes("x"));
            if (park) {
                const bool p = co_await parked(f, 2);
                REQUIRE(p);
            }
            f.srv->stop();
            for (auto* c : {&c1, &c2}) {
                auto r = co_await c->next();
                REQUIRE(r.kind == event_kind::close);
                CHECK(r.code == close_code::going_away);
                co_await c->send_close(close_code::going_away);
                auto eof = co_await c->next();
                CHECK(eof.eof);
            }
            const bool drained = co_await f.drained();
            CHECK(drained);
        });
        CHECK(j.opens == 2);
        CHECK(j.closes == 2);
        REQUIRE(j.info);
        CHECK(j.info->code == close_code::going_away);
        CHECK(j.info->was_clean);
    }

    TEST_CASE("the peer drops TCP: on_close with 1006") {
        server_fixture f;
        journal j;
        f.start(echo_into(j));
        f.run([&]() -> asio::awaitable<void> {
            {
                auto c = co_await ws_client::connect(f.endpoint());
                co_await c.send_text("x");
                co_await expect_message(c, opcode::text, bytes("x"));
            }  // closed without a closing handshake
            const bool drained = co_await f.drained();
            CHECK(drained);
        });
        CHECK(j.closes == 1);
        REQUIRE(j.info);
        CHECK(j.info->code == close_code::abnormal);
        CHECK_FALSE(j.info->was_clean);
    }

    TEST_CASE("handles kept from on_open: awaitable sends from another thread, send_now refused") {
        server_fixture f;
        journal j;
        auto h = echo_into(j);
        connection kept;
        h.on_open = [&](const connection& ws) { kept = ws; };
        f.start(std::move(h));
        std::error_code off_strand;
        std::atomic<bool> sent{false};
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            for (int i = 0; i < 100 && !kept; ++i)
                co_await sleep_for(std::chrono::milliseconds(5));
            REQUIRE(kept);
            std::thread other([&] {
                off_strand = kept.send_now("nope");
                asio::io_context io2;
                asio::co_spawn(
                    io2, [&]() -> asio::awaitable<void> { co_await kept.send("from afar"); },
                    [&](std::exception_ptr e) { sent = !e; });
                io2.run();
            });
            auto r = co_await c.next();
            other.join();
            CHECK(r.kind == event_kind::message);
            CHECK(r.text() == "from afar");
            co_await c.send_text("echo");
            co_await expect_message(c, opcode::text, bytes("echo"));
            co_await c.send_close(1000);
            co_await expect_close(c, 1000);
        });
        CHECK(sent);
        CHECK(off_strand == std::errc::operation_not_permitted);
        kept = {};
    }

    TEST_CASE("send_now(prepared) from a callback: one frame, shared by every connection") {
        server_fixture f;
        f.options.single_threaded = true;
        constexpr int n = 20;
        std::vector<connection> members;
        long use_count = 0;
        long small_use_count = 0;
        std::error_code off_strand, after_close;
        // Above prepared_copy_limit: queued by reference; the small one is copied.
        const std::string text = shared_broadcast_text();
        event_handlers h;
        h.on_open = [&](const connection& ws) { members.push_back(ws); };
        h.on_message = [&](const connection& ws, const message& m) {
            if (m.text() != "go") return;
            const auto shared = prepared_message::text(text);
            const auto small = prepared_message::text("hello, κόσμε");
            // Twice each: on the other connections the first copy is written at once, the
            // second stays queued by reference; the sender's both wait for its callbacks.
            for (auto& member : members) {
                CHECK_FALSE(member.send_now(shared));
                CHECK_FALSE(member.send_now(shared));
                CHECK_FALSE(member.send_now(small));
            }
            use_count = shared.shared_frame().use_count();
            small_use_count = small.shared_frame().use_count();
            CHECK_FALSE(ws.start_close(1000));
            after_close = ws.send_now(shared);
        };
        f.start(std::move(h));
        f.run([&]() -> asio::awaitable<void> {
            std::vector<ws_client> cs;
            for (int i = 0; i < n; ++i)
                cs.push_back(co_await ws_client::connect(f.endpoint()));
            for (int i = 0; i < 100 && members.size() < n; ++i)
                co_await sleep_for(std::chrono::milliseconds(5));
            REQUIRE(members.size() == n);
            std::thread other(
                [&] { off_strand = members[1].send_now(prepared_message::text("x")); });
            other.join();
            co_await cs[0].send_text("go");
            for (auto& c : cs) {
                for (int copy = 0; copy < 2; ++copy) {
                    auto r = co_await c.next();
                    CHECK(r.kind == event_kind::message);
                    CHECK(r.text() == text);
                }
                auto r = co_await c.next();
                CHECK(r.text() == "hello, κόσμε");
            }
            // The sender's connection: our Close came after the two copies; answered, the
            // server closes TCP.
            auto closing = co_await cs[0].next();
            CHECK(closing.kind == event_kind::close);
            CHECK(closing.code == 1000);
            co_await cs[0].send_close(1000);
            auto eof = co_await cs[0].next();
            CHECK(eof.eof);
            for (int i = 1; i < n; ++i) {
                co_await cs[static_cast<std::size_t>(i)].send_close(1000);
                co_await expect_close(cs[static_cast<std::size_t>(i)], 1000);
            }
        });
        // The sender's two copies and the other connections' second copies were queued by
        // reference when the loop ended, besides the local handle.
        CHECK(use_count == 1 + 2 + (n - 1));
        CHECK(small_use_count == 1);  // copied: no queue holds it
        CHECK(off_strand == std::errc::operation_not_permitted);
        CHECK(after_close == error::closed);
        members.clear();
    }

    TEST_CASE("event callbacks over TLS") {
        const auto server_cert = make_self_signed("localhost");
        server_fixture f;
        f.options.secure = true;
        f.options.tls.cert = server_cert.cert_pem;
        f.options.tls.private_key = server_cert.key_pem;
        journal j;
        f.start(echo_into(j));
        f.run([&]() -> asio::awaitable<void> {
            tls_client_options tls;
            tls.server_name = "localhost";
            tls.ca_pem = server_cert.cert_pem;
            auto c = co_await ws_client::connect(f.endpoint(), "/", {}, &tls);
            for (std::size_t n : {5, 70000}) {
                const auto text = ascii(n);
                co_await c.send_frame(opcode::text, text);
                co_await expect_message(c, opcode::text, text);
            }
            co_await c.send_close(1000);
            auto r = co_await c.next();
            CHECK(r.kind == event_kind::close);
            const bool drained = co_await f.drained();
            CHECK(drained);
        });
        CHECK(j.messages == 2);
        REQUIRE(j.info);
        CHECK(j.info->was_clean);
    }
}

TEST_SUITE("parking") {
    TEST_CASE("an idle connection is parked and unparked: messages, handshake, settings survive") {
        server_fixture f;
        parking_options(f);
        f.options.on_handshake = [](const handshake_info&) -> asio::awaitable<handshake_decision> {
            handshake_decision d;
            d.subprotocol = "chat";
            co_return d;
        };
        journal j;
        auto h = echo_into(j);
        std::vector<seen> looks;
        h.on_open = [&](const connection& ws) {
            looks.push_back(look(ws));
            ws.deliver_control_frames(true);
            ws.set_max_frame_size(1000);
        };
        auto echo = h.on_message;
        h.on_message = [&, echo](const connection& ws, const message& m) {
            looks.push_back(look(ws));
            echo(ws, m);
        };
        f.start(std::move(h));
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint(), "/lobby?room=blue%20one",
                                                 "Sec-WebSocket-Protocol: chat\r\nX-Test: yes\r\n");
            co_await c.send_text("before");
            co_await expect_message(c, opcode::text, bytes("before"));
            for (int round = 0; round < 3; ++round) {
                CAPTURE(round);
                const bool p = co_await parked(f, 1);
                REQUIRE(p);
                CHECK(f.srv->connection_count() == 1);
                const auto text = ascii(static_cast<std::size_t>(100 + round));
                co_await c.send_frame(opcode::text, text);
                co_await expect_message(c, opcode::text, text);
                CHECK(f.srv->parked_count() == 0);
            }
            co_await parked(f, 1);
            co_await c.send_frame(opcode::ping, bytes("hi"));  // delivered: the setting survived
            auto pong = co_await c.next();
            CHECK(pong.kind == event_kind::pong);
            co_await parked(f, 1);
            // The frame limit set in on_open survived too: 1001 bytes are too many.
            const auto big = ascii(1001);
            co_await c.send_frame(opcode::binary, big);
            co_await expect_close(c, close_code::message_too_big);
            const bool drained = co_await f.drained();
            CHECK(drained);
        });
        REQUIRE(looks.size() == 6);  // on_open, 4 messages (one a ping), ... and the ping
        for (const auto& l : looks) {
            CHECK(l == looks.front());
        }
        CHECK(looks.front().path == "/lobby");
        CHECK(looks.front().query == "blue one");
        CHECK(looks.front().header == "yes");
        CHECK(looks.front().subprotocol == "chat");
        CHECK(looks.front().version == 13);
        REQUIRE(j.info);
        CHECK(j.info->code == close_code::message_too_big);
    }

    TEST_CASE("many parked connections wake together; each echo goes to its own peer") {
        server_fixture f;
        parking_options(f);
        journal j;
        f.start(echo_into(j));
        constexpr int n = 150;  // more than one epoll_wait batch (64)
        f.run(
            [&]() -> asio::awaitable<void> {
                std::vector<ws_client> clients;
                for (int i = 0; i < n; ++i)
                    clients.push_back(co_await ws_client::connect(f.endpoint()));
                const bool p = co_await parked(f, n);
                REQUIRE(p);
                for (int i = 0; i < n; ++i)
                    co_await clients[static_cast<std::size_t>(i)].send_text(std::to_string(i));
                for (int i = 0; i < n; ++i) {
                    const auto want = std::to_string(i);
                    co_await expect_message(clients[static_cast<std::size_t>(i)], opcode::text,
                                            bytes(want));
                }
                const bool again = co_await parked(f, n);
                CHECK(again);
                for (auto& c : clients)
                    co_await c.send_close(1000);
                for (auto& c : clients)
                    co_await expect_close(c, 1000);
                const bool drained = co_await f.drained();
                CHECK(drained);
                CHECK(f.srv->parked_count() == 0);
            },
            std::chrono::seconds(60));
        CHECK(j.opens == n);
        CHECK(j.closes == n);
        CHECK(j.messages == n);
    }

    TEST_CASE("parked and rebuilt between frames at random: fragments, pings, every echo right") {
        server_fixture f;
        parking_options(f);
        f.options.park_idle_after = std::chrono::milliseconds(1);
        int parks = 0, unparks = 0;
        f.options.log_level = log_level::debug;
        f.options.log_sink = [&](log_level, std::uint64_t, std::string_view text) {
            if (text == "parked") ++parks;
            if (text == "unparked") ++unparks;
        };
        journal j;
        f.start(echo_into(j));
        constexpr int clients = 8;
        constexpr int messages = 25;
        int echoed = 0;
        f.run(
            [&]() -> asio::awaitable<void> {
                auto session = [&](int who) -> asio::awaitable<void> {
                    std::minstd_rand rng(static_cast<unsigned>(who) + 1);
                    auto c = co_await ws_client::connect(f.endpoint());
                    for (int m = 0; m < messages; ++m) {
                        const auto body = ascii(rng() % 300, static_cast<std::size_t>(m));
                        const std::size_t parts = 1 + rng() % 3;
                        const std::size_t step = body.size() / parts + 1;
                        // Pings before a message and between its fragments: every pong comes
                        // before the echo.
                        if (rng() % 4 == 0) co_await c.send_frame(opcode::ping, bytes("p"));
                        for (std::size_t at = 0, k = 0; k < parts; ++k, at += step) {
                            const auto from = std::min(at, body.size());
                            const auto to = std::min(at + step, body.size());
                            const auto piece = std::span(body).subspan(from, to - from);
                            const auto op = k == 0 ? opcode::text : opcode::continuation;
                            co_await c.send_frame(op, piece, k + 1 == parts);
                            if (k + 1 < parts && rng() % 2 == 0) {
                                co_await c.send_frame(opcode::ping, bytes("p"));
                            }
                            co_await sleep_for(std::chrono::milliseconds(rng() % 5));
                        }
                        for (;;) {
                            auto r = co_await c.next();
                            if (r.kind == event_kind::pong) continue;
                            REQUIRE(r.kind == event_kind::message);
                            CHECK(r.payload == body);
                            ++echoed;
                            break;
                        }
                        co_await sleep_for(std::chrono::milliseconds(rng() % 5));
                    }
                    co_await c.send_close(1000);
                    co_await expect_close(c, 1000);
                };
                int done = 0;
                for (int i = 0; i < clients; ++i)
                    asio::co_spawn(f.io, session(i), [&](std::exception_ptr e) {
                        ++done;
                        if (e) std::rethrow_exception(e);
                    });
                for (int i = 0; i < 2000 && done < clients; ++i)
                    co_await sleep_for(std::chrono::milliseconds(10));
                CHECK(done == clients);
                const bool drained = co_await f.drained();
                CHECK(drained);
            },
            std::chrono::seconds(60));
        CHECK(echoed == clients * messages);
        CHECK(j.closes == clients);
        MESSAGE("parked " << parks << " times, unparked " << unparks);
        CHECK(parks > clients * messages / 4);  // folded mid-session often
        CHECK(unparks == parks);
    }

    TEST_CASE("a burst of new idle connections is parked at once beyond 256 waiting") {
        server_fixture f;
        f.options.single_threaded = true;
        f.options.park_idle_after = std::chrono::seconds(60);  // no sweep during the test
        journal j;
        f.start(echo_into(j));
        constexpr int early = 256;
        constexpr int late = 44;
        f.run(
            [&]() -> asio::awaitable<void> {
                std::vector<ws_client> clients;
                for (int i = 0; i < early; ++i)
                    clients.push_back(co_await ws_client::connect(f.endpoint()));
                co_await sleep_for(std::chrono::milliseconds(50));
                CHECK(f.srv->parked_count() == 0);  // 256 waiting: not yet a burst
                for (int i = 0; i < late; ++i)
                    clients.push_back(co_await ws_client::connect(f.endpoint()));
                const bool p = co_await parked(f, late);  // each parked as it opened
                CHECK(p);
                // The late ones woken by a message wait again with the 256 early ones still
                // waiting, yet are not parked at once again: only new connections are.
                for (int i = early; i < early + late; ++i)
                    co_await clients[static_cast<std::size_t>(i)].send_text(std::to_string(i));
                for (int i = early; i < early + late; ++i) {
                    const auto want = std::to_string(i);
                    co_await expect_message(clients[static_cast<std::size_t>(i)], opcode::text,
                                            bytes(want));
                }
                co_await sleep_for(std::chrono::milliseconds(100));
                CHECK(f.srv->parked_count() == 0);
                for (int i = 0; i < early; ++i)
                    co_await clients[static_cast<std::size_t>(i)].send_text(std::to_string(i));
                for (int i = 0; i < early; ++i) {
                    const auto want = std::to_string(i);
                    co_await expect_message(clients[static_cast<std::size_t>(i)], opcode::text,
                                            bytes(want));
                }
                for (auto& c : clients)
                    co_await c.send_close(1000);
                for (auto& c : clients)
                    co_await expect_close(c, 1000);
                const bool drained = co_await f.drained();
                CHECK(drained);
            },
            std::chrono::seconds(60));
        CHECK(j.messages == early + late);
        CHECK(j.closes == early + late);
    }

    TEST_CASE("a parked connection's peer closes, or drops TCP: on_close as usual") {
        server_fixture f;
        parking_options(f);
        journal j;
        f.start(echo_into(j));
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            bool p = co_await parked(f, 1);
            REQUIRE(p);
            co_await c.send_close(4002, "later");
            co_await expect_close(c, 4002);
            bool drained = co_await f.drained();
            CHECK(drained);
            REQUIRE(j.info);
            CHECK(j.info->code == 4002);
            CHECK(j.info->reason == "later");
            CHECK(j.info->was_clean);
            {
                auto c2 = co_await ws_client::connect(f.endpoint());
                p = co_await parked(f, 1);
                REQUIRE(p);
            }  // TCP closed, no closing handshake
            drained = co_await f.drained();
            CHECK(drained);
            CHECK(j.info->code == close_code::abnormal);
            CHECK_FALSE(j.info->was_clean);
        });
        CHECK(j.closes == 2);
    }

    TEST_CASE("keep-alive with parking: parked between pings, woken to ping, dead peers dropped") {
        server_fixture f;
        parking_options(f);
        f.options.timeouts.ping_interval = std::chrono::milliseconds(200);
        f.options.timeouts.pong_timeout = std::chrono::milliseconds(300);
        int parks = 0;
        f.options.log_level = log_level::debug;
        f.options.log_sink = [&](log_level, std::uint64_t, std::string_view text) {
            if (text == "parked") ++parks;
        };
        journal j;
        std::vector<close_info> infos;
        auto h = echo_into(j);
        h.on_close = [&](const connection&, const close_info& info) { infos.push_back(info); };
        f.start(std::move(h));
        f.run([&]() -> asio::awaitable<void> {
            // A peer that never answers is dropped (1006, pong_timeout), parked or not.
            {
                auto dead = co_await ws_client::connect(f.endpoint());
                auto first = co_await dead.next(std::chrono::seconds(2));
                CHECK(first.kind == event_kind::ping);
                auto end = co_await dead.next(std::chrono::seconds(2));
                CHECK(end.eof);
            }
            auto alive = co_await ws_client::connect(f.endpoint());
            int pings = 0;
            bool seen_parked = false;
            const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1100);
            while (std::chrono::steady_clock::now() < until) {
                auto r = co_await alive.next(std::chrono::milliseconds(50));
                seen_parked = seen_parked || f.srv->parked_count() == 1;
                if (r.kind == event_kind::ping) {
                    ++pings;
                    co_await alive.send_frame(opcode::pong, r.payload);
                }
                CHECK_FALSE(r.eof);
            }
            CHECK(pings >= 4);  // one per 200 ms of silence, parked or not
            CHECK(seen_parked);
            CHECK(parks >= pings);  // parked again after each ping and pong
            // Messages still flow.
            co_await alive.send_text("still here");
            for (;;) {
                auto r = co_await alive.next();
                if (r.kind == event_kind::ping) continue;
                CHECK(r.text() == "still here");
                break;
            }
            co_await alive.send_close(1000);
            for (;;) {
                auto r = co_await alive.next();
                if (r.kind != event_kind::ping) break;
            }
        });
        REQUIRE(infos.size() == 2);
        CHECK(infos[0].code == close_code::abnormal);
        CHECK(infos[0].error == error::pong_timeout);
        CHECK(infos[1].code == 1000);
    }

    TEST_CASE("idle timeout with parking: a parked connection is woken and closed with 1001") {
        server_fixture f;
        parking_options(f);
        f.options.timeouts.idle = std::chrono::milliseconds(300);
        journal j;
        f.start(echo_into(j));
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            const bool p = co_await parked(f, 1);
            CHECK(p);
            auto r = co_await c.next(std::chrono::seconds(3));
            REQUIRE(r.kind == event_kind::close);
            CHECK(r.code == close_code::going_away);
            co_await c.send_close(close_code::going_away);
            auto eof = co_await c.next();
            CHECK(eof.eof);
        });
        REQUIRE(j.info);
        CHECK(j.info->code == close_code::going_away);
        CHECK(j.info->error == error::idle_timeout);
    }

    TEST_CASE("not parked: a handle kept outside the callbacks, a half-received frame, off") {
        server_fixture f;
        parking_options(f);
        journal j;
        auto h = echo_into(j);
        connection kept;
        h.on_open = [&](const connection& ws) {
            if (ws.handshake().path() == "/keep") kept = ws;
        };
        f.start(std::move(h));
        f.run([&]() -> asio::awaitable<void> {
            auto kept_client = co_await ws_client::connect(f.endpoint(), "/keep");
            auto partial = co_await ws_client::connect(f.endpoint(), "/partial");
            auto free_client = co_await ws_client::connect(f.endpoint(), "/free");
            // Half a frame header: the decoder holds state a fresh one would not have.
            const auto frame = masked(opcode::text, bytes("split"));
            co_await partial.write_raw(std::span(frame).first(3));
            const bool p = co_await parked(f, 1);  // only /free
            CHECK(p);
            co_await sleep_for(std::chrono::milliseconds(100));
            CHECK(f.srv->parked_count() == 1);
            co_await partial.write_raw(std::span(frame).subspan(3));
            co_await expect_message(partial, opcode::text, bytes("split"));
            co_await kept_client.send_text("k");
            co_await expect_message(kept_client, opcode::text, bytes("k"));
            kept = {};  // now it may be parked too (at its next wait)
            co_await kept_client.send_text("k2");
            co_await expect_message(kept_client, opcode::text, bytes("k2"));
            const bool all = co_await parked(f, 3);
            CHECK(all);
            for (auto* c : {&kept_client, &partial, &free_client}) {
                co_await c->send_close(1000);
                co_await expect_close(*c, 1000);
            }
        });

        server_fixture off;
        off.options.single_threaded = true;
        off.options.park_idle_after = std::chrono::milliseconds(0);
        journal j2;
        off.start(echo_into(j2));
        off.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(off.endpoint());
            co_await sleep_for(std::chrono::milliseconds(100));
            CHECK(off.srv->parked_count() == 0);
            co_await c.send_close(1000);
            co_await expect_close(c, 1000);
        });
    }

    TEST_CASE("an io_context destroyed with connections parked frees them") {
        // (The leak check is ASan's, in the sanitizer build.)
        auto f = std::make_unique<server_fixture>();
        parking_options(*f);
        journal j;
        f->start(echo_into(j));
        std::vector<ws_client> clients;
        f->run([&]() -> asio::awaitable<void> {
            for (int i = 0; i < 3; ++i)
                clients.push_back(co_await ws_client::connect(f->endpoint()));
            const bool p = co_await parked(*f, 3);
            CHECK(p);
        });
        clients.clear();
        f.reset();
        CHECK(j.opens == 3);
    }

    TEST_CASE("an io_context destroyed with connections waiting for data frees them") {
        // Not parked: each waits in the reactor with the operation it reuses for every wait,
        // which keeps the connection alive until Asio destroys the operation.
        auto f = std::make_unique<server_fixture>();
        f->options.single_threaded = true;
        f->options.park_idle_after = std::chrono::milliseconds(0);
        std::vector<std::weak_ptr<wscoro::detail::connection_impl>> opened;
        event_handlers h;
        h.on_open = [&opened](const connection& ws) { opened.push_back(ws.impl()); };
        h.on_message = [](const connection& ws, const message& m) { (void)ws.send_now(m); };
        f->start(std::move(h));
        std::vector<ws_client> clients;
        f->run([&]() -> asio::awaitable<void> {
            for (int i = 0; i < 3; ++i) {
                clients.push_back(co_await ws_client::connect(f->endpoint()));
                co_await clients.back().send_text("then waits");
                auto r = co_await clients.back().next();
                CHECK(r.text() == "then waits");
            }
        });
        REQUIRE(opened.size() == 3);
        for (const auto& w : opened)
            CHECK_FALSE(w.expired());  // alive, held by their pending waits
        clients.clear();
        f.reset();
        for (const auto& w : opened)
            CHECK(w.expired());
    }
}
