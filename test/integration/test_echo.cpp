// Messages over real sockets on 127.0.0.1: our client-role codec against the server.

#include <doctest/doctest.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <ostream>
#include <thread>

#include "server_fixture.hpp"
#include "session_helpers.hpp"
#include "wscoro/connection.hpp"
#include "wscoro/prepared_message.hpp"
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

}  // namespace

TEST_SUITE("echo") {
    TEST_CASE("text and binary of every length class come back exactly") {
        server_fixture f;
        f.options.max_frame_size = 32u << 20;
        f.options.max_message_size = 32u << 20;
        f.start(echo);
        f.run(
            [&]() -> asio::awaitable<void> {
                auto c = co_await ws_client::connect(f.endpoint());
                // (Named: no braced list inside a co_await with g++ 12, see DESIGN.md.)
                const std::vector<std::size_t> sizes{0,     1,     125,     126,     127,
                                                     65535, 65536, 1 << 20, 16 << 20};
                co_await echo_each_size(c, sizes);
            },
            std::chrono::seconds(120));
    }

    TEST_CASE("fragmented message with a ping in the middle") {
        server_fixture f;
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await c.send_frame(opcode::text, bytes("Hel"), false);
            co_await c.send_frame(opcode::ping, bytes("are you there"));
            co_await c.send_frame(opcode::continuation, bytes(""), false);
            co_await c.send_frame(opcode::continuation, bytes("lo κόσμε"), true);
            auto pong = co_await c.next();
            REQUIRE(pong.kind == event_kind::pong);
            CHECK(pong.text() == "are you there");
            co_await expect_message(c, opcode::text, bytes("Hello κόσμε"));
            // a multi-byte code point split across fragments
            const std::string_view k = "κ";
            co_await c.send_frame(opcode::text, bytes(k.substr(0, 1)), false);
            co_await c.send_frame(opcode::continuation, bytes(k.substr(1)), true);
            co_await expect_message(c, opcode::text, bytes(k));
        });
    }

    TEST_CASE("frames pipelined with the upgrade request are kept") {
        server_fixture f;
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect_raw(f.endpoint());
            const auto key = protocol::generate_key();
            std::string all = protocol::client_request("127.0.0.1", "/", key);
            std::vector<std::byte> frames;
            const protocol::mask_key mk{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
            protocol::append_frame(frames, opcode::text, true, bytes("first"), &mk);
            protocol::append_frame(frames, opcode::binary, true, bytes("second"), &mk);
            all.append(reinterpret_cast<const char*>(frames.data()), frames.size());
            co_await c.write_raw(all);
            const auto head = co_await c.read_http_head();
            CHECK_FALSE(protocol::check_accept_response(head, key));
            co_await expect_message(c, opcode::text, bytes("first"));
            co_await expect_message(c, opcode::binary, bytes("second"));
        });
    }

    TEST_CASE("a burst of messages in one write is echoed in order") {
        server_fixture f;
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            std::vector<std::byte> burst;
            const protocol::mask_key mk{std::byte{9}, std::byte{8}, std::byte{7}, std::byte{6}};
            for (int i = 0; i < 1000; ++i) {
                const auto s = std::to_string(i);
                protocol::append_frame(burst, opcode::text, true, bytes(s), &mk);
            }
            co_await c.write_raw(burst);
            for (int i = 0; i < 1000; ++i)
                co_await expect_message(c, opcode::text, bytes(std::to_string(i)));
        });
    }

    TEST_CASE("pauses between messages and inside a frame lose nothing") {
        // A connection waits for readability with no buffer once everything read is
        // consumed, and keeps its buffer (and the partial frame in it) when a pause starts
        // in the middle of a frame. Each wait after a short read is one the reactor must
        // end on the next edge (lib/socket_fast_path.hpp).
        const bool single = executor_mode();
        server_fixture f;
        f.options.single_threaded = single;
        std::optional<close_info> info;
        f.start([&](connection ws) -> asio::awaitable<void> {
            while (auto msg = co_await ws.receive())
                co_await ws.send(*msg);
            info = ws.close_info();
        });
        f.run(
            [&]() -> asio::awaitable<void> {
                auto c = co_await ws_client::connect(f.endpoint());
                for (int round = 0; round < 2; ++round) {
                    for (int i = 0; i < 5; ++i) {
                        const auto s = "busy " + std::to_string(round) + "." + std::to_string(i);
                        co_await c.send_text(s);
                        co_await expect_message(c, opcode::text, bytes(s));
                    }
                    co_await sleep_for(std::chrono::milliseconds(100));
                }
                // Half a frame, a quiet period, then the rest.
                std::vector<std::byte> frame;
                const protocol::mask_key mk{std::byte{5}, std::byte{6}, std::byte{7}, std::byte{8}};
                protocol::append_frame(frame, opcode::binary, true, bytes("split by silence"), &mk);
                const auto half = frame.size() / 2;
                co_await c.write_raw(std::span(frame).first(half));
                co_await sleep_for(std::chrono::milliseconds(100));
                co_await c.write_raw(std::span(frame).subspan(half));
                co_await expect_message(c, opcode::binary, bytes("split by silence"));
                co_await c.send_text("after");
                co_await expect_message(c, opcode::text, bytes("after"));
                co_await c.send_close(close_code::normal);
                auto r = co_await c.next();
                CHECK(r.kind == event_kind::close);
                const bool drained = co_await f.drained();
                CHECK(drained);
            },
            std::chrono::seconds(30));
        REQUIRE(info);
        CHECK(info->code == close_code::normal);
        CHECK(info->was_clean);
        CHECK(f.errors.empty());
    }

    TEST_CASE("try_receive and try_send: a burst echoed without suspending, in order") {
        const bool single = executor_mode();
        server_fixture f;
        f.options.single_threaded = single;
        int from_try = 0, via_receive = 0, try_send_refused = 0;
        bool idle_try_receive_empty = false;
        std::optional<close_info> info;
        f.start([&](connection ws) -> asio::awaitable<void> {
            // Nothing is buffered before the first receive(): empty, no I/O, no waiting.
            idle_try_receive_empty = !ws.try_receive();
            while (auto msg = co_await ws.receive()) {
                ++via_receive;
                do {
                    if (!ws.try_send(*msg)) {
                        ++try_send_refused;
                        co_await ws.send(*msg);
                    }
                } while ((msg = ws.try_receive()) && ++from_try);
            }
            info = ws.close_info();
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            // 300 text and binary messages, a ping among them, then a Close: one write.
            std::vector<std::byte> burst;
            const protocol::mask_key mk{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
            for (int i = 0; i < 300; ++i) {
                const auto s = "m" + std::to_string(i);
                protocol::append_frame(burst, i % 2 ? opcode::binary : opcode::text, true, bytes(s),
                                       &mk);
                if (i == 150) protocol::append_frame(burst, opcode::ping, true, bytes("pi"), &mk);
            }
            std::byte body[2];
            protocol::encode_close_payload(body, close_code::normal, {});
            protocol::append_frame(burst, opcode::close, true, std::span(body, 2), &mk);
            co_await c.write_raw(burst);
            bool pong = false;
            for (int i = 0; i < 300; ++i) {
                auto r = co_await c.next();
                if (r.kind == event_kind::pong) {
                    CHECK(r.text() == "pi");
                    pong = true;
                    r = co_await c.next();
                }
                REQUIRE(r.kind == event_kind::message);
                CHECK(r.type == (i % 2 ? opcode::binary : opcode::text));
                CHECK(r.text() == "m" + std::to_string(i));
            }
            CHECK(pong);
            auto r = co_await c.next();
            CHECK(r.kind == event_kind::close);
            CHECK(r.code == close_code::normal);
        });
        CHECK(idle_try_receive_empty);
        CHECK(via_receive + from_try == 300);
        // One write of ~2.7 KB arrives in one read: all but the first come from try_receive.
        CHECK(from_try > 0);
        CHECK(try_send_refused == 0);
        REQUIRE(info);
        CHECK(info->code == close_code::normal);
        CHECK(info->was_clean);
        CHECK(f.errors.empty());
    }

    TEST_CASE("try_send refuses what would need waiting, and off the connection's strand") {
        server_fixture f;
        f.options.write_high_water = 64 * 1024;
        f.options.write_low_water = 16 * 1024;
        bool large_refused = false, bad_utf8_refused = false, off_strand_refused = false;
        bool after_close_refused = false, try_receive_after_close_empty = false;
        std::size_t queued_until_refused = 0, buffered_at_refusal = 0;
        f.start([&](connection ws) -> asio::awaitable<void> {
            CHECK(ws.try_send("hello"));
            CHECK(ws.try_send_binary(bytes("bin")));
            large_refused = !ws.try_send_binary(pattern(64 * 1024));
            bad_utf8_refused = !ws.try_send(std::string_view("\xC0\xAF"));
            // From another thread (not the connection's strand): refused, nothing queued.
            std::thread other([&] { off_strand_refused = !ws.try_send("from elsewhere"); });
            other.join();
            // The client does not read yet: fill up to the high-water mark.
            const auto chunk = pattern(8 * 1024, 3);
            while (queued_until_refused < 100000 && ws.try_send_binary(chunk))
                ++queued_until_refused;
            buffered_at_refusal = ws.buffered_amount();
            (void)co_await ws.receive();  // the client's Close
            after_close_refused = !ws.try_send("late");
            try_receive_after_close_empty = !ws.try_receive();
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await sleep_for(std::chrono::milliseconds(200));
            auto r = co_await c.next();
            CHECK(r.text() == "hello");
            r = co_await c.next();
            CHECK(r.text() == "bin");
            const auto chunk = pattern(8 * 1024, 3);
            for (std::size_t i = 0; i < queued_until_refused; ++i)
                co_await expect_message(c, opcode::binary, chunk);
            co_await c.send_close(close_code::normal);
            r = co_await c.next();
            CHECK(r.kind == event_kind::close);
        });
        CHECK(large_refused);
        CHECK(bad_utf8_refused);
        CHECK(off_strand_refused);
        // (The flush runs once the handler suspends, so here the whole queue is ours.) It
        // fills up to the mark, and try_send refuses the frame that would cross it.
        CHECK(queued_until_refused < 100000);
        CHECK(buffered_at_refusal <= f.options.write_high_water);
        CHECK(buffered_at_refusal + 8 * 1024 + protocol::max_header_size >
              f.options.write_high_water);
        CHECK(after_close_refused);
        CHECK(try_receive_after_close_empty);
        CHECK(f.errors.empty());
    }

    TEST_CASE("a slow peer sending one byte at a time") {
        server_fixture f;
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            std::vector<std::byte> frame;
            const protocol::mask_key mk{std::byte{0x37}, std::byte{0xfa}, std::byte{0x21},
                                        std::byte{0x3d}};
            protocol::append_frame(frame, opcode::text, true, bytes("slowly but surely"), &mk);
            for (auto b : frame) {
                co_await c.write_raw(std::span<const std::byte>(&b, 1));
                co_await sleep_for(std::chrono::milliseconds(2));
            }
            co_await expect_message(c, opcode::text, bytes("slowly but surely"));
        });
    }

    TEST_CASE("concurrent senders on one connection never interleave frames") {
        server_fixture f;
        constexpr int senders = 4, per_sender = 300;
        f.start([&](connection ws) -> asio::awaitable<void> {
            using namespace asio::experimental::awaitable_operators;
            auto sender = [](connection ws, int k) -> asio::awaitable<void> {
                for (int i = 0; i < per_sender; ++i) {
                    co_await ws.send(std::to_string(k) + ":" + std::to_string(i) + ":" +
                                     std::string(static_cast<std::size_t>(i * 7 % 3000), 'x'));
                    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
                }
            };
            auto a = sender(ws, 0), b = sender(ws, 1), c = sender(ws, 2), d = sender(ws, 3);
            co_await (std::move(a) && std::move(b) && std::move(c) && std::move(d));
            (void)co_await ws.receive();
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            int next[senders] = {};
            for (int n = 0; n < senders * per_sender; ++n) {
                auto r = co_await c.next();
                REQUIRE(r.kind == event_kind::message);
                const auto t = r.text();
                const auto k = std::stoi(t.substr(0, t.find(':')));
                const auto i = std::stoi(t.substr(t.find(':') + 1));
                REQUIRE(k >= 0);
                REQUIRE(k < senders);
                CHECK(i == next[k]);
                next[k] = i + 1;
                CHECK(t.size() ==
                      t.find(':', t.find(':') + 1) + 1 + static_cast<std::size_t>(i * 7 % 3000));
            }
            co_await c.send_close(1000);
        });
    }

    TEST_CASE("send from another thread reaches the connection's executor") {
        // Both executor modes: a strand per connection, and the single-threaded io_context.
        const bool single_threaded = executor_mode();
        server_fixture f;
        f.options.single_threaded = single_threaded;
        asio::io_context other(1);
        auto work = asio::make_work_guard(other);
        std::thread other_thread([&] { other.run(); });
        std::atomic<int> sent{0};
        f.start([&](connection ws) -> asio::awaitable<void> {
            // Hand the connection to a coroutine on the other thread's io_context.
            asio::co_spawn(
                other,
                [ws, &sent]() -> asio::awaitable<void> {
                    for (int i = 0; i < 100; ++i) {
                        co_await ws.send("from afar " + std::to_string(i));
                        ++sent;
                    }
                },
                asio::detached);
            while (auto m = co_await ws.receive()) {
            }
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            for (int i = 0; i < 100; ++i)
                co_await expect_message(c, opcode::text, bytes("from afar " + std::to_string(i)));
            co_await c.send_close(1000);
        });
        work.reset();
        other_thread.join();
        CHECK(sent == 100);
    }

    TEST_CASE("send suspends above the high-water mark (backpressure)") {
        server_fixture f;
        f.options.write_high_water = 256 * 1024;
        f.options.write_low_water = 64 * 1024;
        // 32 KiB: copied into the queue (payloads from 64 KiB are written from the sender's
        // memory instead, see the zero-copy test). 20 MiB: more than the kernel buffers.
        constexpr std::size_t chunk = 32 * 1024, count = 640;
        std::size_t max_buffered = 0;
        bool reached_high_water = false;
        f.start([&](connection ws) -> asio::awaitable<void> {
            const auto data = pattern(chunk, 7);
            for (std::size_t i = 0; i < count; ++i) {
                co_await ws.send_binary(data);
                max_buffered = std::max(max_buffered, ws.buffered_amount());
                if (ws.buffered_amount() > 64 * 1024) reached_high_water = true;
            }
            (void)co_await ws.receive();
        });
        f.run(
            [&]() -> asio::awaitable<void> {
                auto c = co_await ws_client::connect(f.endpoint());
                co_await sleep_for(std::chrono::milliseconds(300));  // let the server fill up
                const auto data = pattern(chunk, 7);
                for (std::size_t i = 0; i < count; ++i)
                    co_await expect_message(c, opcode::binary, data);
                co_await c.send_close(1000);
            },
            std::chrono::seconds(60));
        CHECK(reached_high_water);
        // A send may queue one frame beyond the mark, never more.
        CHECK(max_buffered <= f.options.write_high_water + chunk + protocol::max_header_size);
    }

    TEST_CASE("incoming pings are answered and can be delivered to the handler") {
        server_fixture f;
        f.start([&](connection ws) -> asio::awaitable<void> {
            ws.deliver_control_frames(true);
            while (auto m = co_await ws.receive()) {
                if (m->type() == message_type::ping) co_await ws.send("saw ping " + m->str());
                if (m->type() == message_type::pong) co_await ws.send("saw pong " + m->str());
            }
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await c.send_frame(opcode::ping, bytes("p1"));
            auto pong = co_await c.next();
            REQUIRE(pong.kind == event_kind::pong);
            CHECK(pong.text() == "p1");
            co_await expect_message(c, opcode::text, bytes("saw ping p1"));
            co_await c.send_frame(opcode::pong, bytes("unsolicited"));
            co_await expect_message(c, opcode::text, bytes("saw pong unsolicited"));
        });
    }

    TEST_CASE("server ping reaches the client with its payload") {
        server_fixture f;
        bool pingable = false, ok = false;
        f.start([&](connection ws) -> asio::awaitable<void> {
            pingable = ws.pingable();
            ok = co_await ws.ping("heartbeat");
            ws.deliver_control_frames(true);
            auto m = co_await ws.receive();
            if (m && m->type() == message_type::pong) co_await ws.send("pong: " + m->str());
            bool threw = false;
            try {
                co_await ws.ping(std::string(126, 'x'));
            } catch (const wscoro::system_error& e) {
                threw = e.code() == error::control_too_big;
            }
            co_await ws.send(threw ? "126 refused" : "126 sent");
            (void)co_await ws.receive();
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            auto ping = co_await c.next();
            REQUIRE(ping.kind == event_kind::ping);
            CHECK(ping.text() == "heartbeat");
            co_await c.send_frame(opcode::pong, ping.payload);
            co_await expect_message(c, opcode::text, bytes("pong: heartbeat"));
            co_await expect_message(c, opcode::text, bytes("126 refused"));
            co_await c.send_close(1000);
        });
        CHECK(pingable);
        CHECK(ok);
    }

    TEST_CASE("invalid UTF-8 passed to send is refused") {
        server_fixture f;
        std::error_code seen;
        f.start([&](connection ws) -> asio::awaitable<void> {
            co_await ws.send("\xC0\xAF", seen);
            co_await ws.send("after");
            (void)co_await ws.receive();
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await expect_message(c, opcode::text, bytes("after"));
            co_await c.send_close(1000);
        });
        CHECK(seen == error::invalid_utf8_argument);
    }

    TEST_CASE("the seed example: greeting with the path, then Pong replies") {
        server_fixture f;
        f.start([](connection ws) -> asio::awaitable<void> {
            co_await ws.send("Hello Client, you connected to " +
                             std::string(ws.handshake().path()));
            while (auto msg = co_await ws.receive())
                co_await ws.send("Pong: " + std::string(msg->text()));
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint(), "/foo/bar?hello=world");
            co_await expect_message(c, opcode::text,
                                    bytes("Hello Client, you connected to /foo/bar"));
            co_await c.send_text("hi");
            co_await expect_message(c, opcode::text, bytes("Pong: hi"));
        });
    }

    TEST_CASE("many clients at once") {
        server_fixture f;
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            std::vector<ws_client> clients;
            for (int i = 0; i < 50; ++i)
                clients.push_back(co_await ws_client::connect(f.endpoint()));
            for (int round = 0; round < 5; ++round) {
                for (std::size_t i = 0; i < clients.size(); ++i)
                    co_await clients[i].send_text("c" + std::to_string(i) + "r" +
                                                  std::to_string(round));
                for (std::size_t i = 0; i < clients.size(); ++i)
                    co_await expect_message(
                        clients[i], opcode::text,
                        bytes("c" + std::to_string(i) + "r" + std::to_string(round)));
            }
            CHECK(f.srv->connection_count() == 50);
            for (auto& c : clients)
                co_await c.send_close(1000);
            {
                const bool drained = co_await f.drained();
                CHECK(drained);
            }
        });
    }

    TEST_CASE("large payloads go out from the sender's memory, in order with small ones") {
        server_fixture f;
        f.options.max_frame_size = 8u << 20;
        f.options.max_message_size = 8u << 20;
        std::size_t max_buffered = 0;
        f.start([&](connection ws) -> asio::awaitable<void> {
            for (int i = 0; i < 8; ++i) {
                // a fresh buffer per send: send() must not return before it is written
                auto big =
                    pattern((1u << 20) + static_cast<std::size_t>(i), static_cast<unsigned>(i));
                co_await ws.send("small " + std::to_string(i));
                co_await ws.send_binary(big);
                max_buffered = std::max(max_buffered, ws.buffered_amount());
                std::fill(big.begin(), big.end(), std::byte{0});  // caller reuses its memory
            }
            (void)co_await ws.receive();
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            for (int i = 0; i < 8; ++i) {
                auto s1 = co_await c.next();
                CHECK(s1.text() == "small " + std::to_string(i));
                auto b = co_await c.next();
                CHECK(b.type == opcode::binary);
                CHECK(b.payload ==
                      pattern((1u << 20) + static_cast<std::size_t>(i), static_cast<unsigned>(i)));
            }
            co_await c.send_close(1000);
        });
        CHECK(max_buffered == 0);  // each large send completed once written
    }

    TEST_CASE("a prepared message reaches many connections, framed once and shared") {
        server_fixture f;
        // One thread and no strands: every send below queues without a hop to another strand.
        // The first frame queued on a connection after it read goes out at once (nothing
        // could join it), so each connection gets the shared frame twice: the second copy
        // stays queued, by reference, until the loop ends. (With strands, each hop lets that
        // connection's flush run, so the frame would rarely be seen shared.)
        f.options.single_threaded = true;
        constexpr int n = 100;
        std::vector<connection> members;
        long max_use_count = 0;
        long small_use_count = 0;
        // Above prepared_copy_limit (512 bytes of frame): queued by reference. A small frame
        // is copied into each queue instead.
        const std::string text = shared_broadcast_text();
        f.start([&](connection ws) -> asio::awaitable<void> {
            members.push_back(ws);
            while (auto m = co_await ws.receive()) {
                if (m->text() != "go") continue;
                const auto shared = prepared_message::text(text);
                const auto small = prepared_message::text("hello, κόσμε");
                for (auto& member : members) {
                    co_await member.send(shared);
                    co_await member.send(shared);
                    co_await member.send(small);
                }
                max_use_count = shared.shared_frame().use_count();
                small_use_count = small.shared_frame().use_count();
                const auto big = prepared_message::binary(pattern(200000));
                for (auto& member : members)
                    co_await member.send(big);
            }
        });
        f.run(
            [&]() -> asio::awaitable<void> {
                std::vector<ws_client> cs;
                for (int i = 0; i < n; ++i)
                    cs.push_back(co_await ws_client::connect(f.endpoint()));
                co_await sleep_for(std::chrono::milliseconds(50));
                co_await cs[0].send_text("go");
                const auto big = pattern(200000);
                for (auto& c : cs) {
                    for (int copy = 0; copy < 2; ++copy) {
                        auto r = co_await c.next();
                        CHECK(r.text() == text);
                    }
                    auto r1 = co_await c.next();
                    CHECK(r1.text() == "hello, κόσμε");
                    auto r2 = co_await c.next();
                    CHECK(r2.payload == big);
                }
                for (auto& c : cs)
                    co_await c.send_close(1000);
            },
            std::chrono::seconds(60));
        // queued by reference: while queued, the connections hold the same frame (one
        // reference each: the second copy) besides `shared` itself
        CHECK(max_use_count == n + 1);
        CHECK(small_use_count == 1);  // copied: no queue holds it
        CHECK_THROWS_AS(prepared_message::text("\xC0\xAF"), wscoro::system_error);
    }
}
