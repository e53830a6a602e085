// Every way a connection ends, over real sockets on 127.0.0.1.

#include <doctest/doctest.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/use_awaitable.hpp>
#include <optional>
#include <ostream>

#include "server_fixture.hpp"
#include "session_helpers.hpp"
#include "wscoro/connection.hpp"

using namespace wscoro;
using namespace wscoro::test;
using protocol::event_kind;
using protocol::opcode;

namespace {

// Runs an echo loop and records how the connection ended.
struct recorder {
    std::optional<wscoro::close_info> info;
    connection_state state_after = connection_state::open;
    std::error_code send_after_close;

    handler make() {
        return [this](connection ws) -> asio::awaitable<void> {
            while (auto m = co_await ws.receive())
                co_await ws.send(*m);
            info = ws.close_info();
            state_after = ws.state();
            co_await ws.send("too late", send_after_close);
        };
    }
};

}  // namespace

TEST_SUITE("close") {
    TEST_CASE("client closes with a code and reason: echoed, clean, TCP closed by the server") {
        server_fixture f;
        recorder rec;
        f.start(rec.make());
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await c.send_close(4001, "bye now");
            co_await expect_close(c, 4001);
            {
                const bool drained = co_await f.drained();
                CHECK(drained);
            }
        });
        REQUIRE(rec.info);
        CHECK(rec.info->code == 4001);
        CHECK(rec.info->reason == "bye now");
        CHECK(rec.info->was_clean);
        CHECK_FALSE(rec.info->error);
        CHECK(rec.state_after == connection_state::closed);
        CHECK(rec.send_after_close == error::closed);
    }

    TEST_CASE("client closes without a code: 1005 reported, empty Close echoed") {
        server_fixture f;
        recorder rec;
        f.start(rec.make());
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await c.send_frame(opcode::close, {});
            auto r = co_await c.next();
            REQUIRE(r.kind == event_kind::close);
            CHECK(r.code == close_code::no_status);
            CHECK(r.payload.empty());
            {
                auto eof_event = co_await c.next();
                CHECK(eof_event.eof);
            }
        });
        REQUIRE(rec.info);
        CHECK(rec.info->code == 1005);
        CHECK(rec.info->was_clean);
    }

    TEST_CASE("server closes: the client's answer completes close() cleanly") {
        server_fixture f;
        std::optional<wscoro::close_info> info;
        f.start([&](connection ws) -> asio::awaitable<void> {
            co_await ws.send("going");
            co_await ws.close(4000, "done here");
            info = ws.close_info();
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            auto m = co_await c.next();
            CHECK(m.text() == "going");
            auto r = co_await c.next();
            REQUIRE(r.kind == event_kind::close);
            CHECK(r.code == 4000);
            CHECK(r.reason == "done here");
            co_await c.send_close(4000);
            {
                auto eof_event = co_await c.next();
                CHECK(eof_event.eof);
            }
        });
        REQUIRE(info);
        CHECK(info->code == 4000);
        CHECK(info->was_clean);
    }

    TEST_CASE("an unanswered close is dropped after close_timeout with 1006") {
        server_fixture f;
        f.options.timeouts.close = std::chrono::milliseconds(300);
        std::optional<wscoro::close_info> info;
        f.start([&](connection ws) -> asio::awaitable<void> {
            co_await ws.close(1000, {});
            info = ws.close_info();
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            auto r = co_await c.next();
            REQUIRE(r.kind == event_kind::close);
            CHECK(r.code == 1000);
            // never answer; the server must drop TCP by itself
            auto eof = co_await c.next(std::chrono::seconds(5));
            CHECK(eof.eof);
        });
        REQUIRE(info);
        CHECK(info->code == 1006);
        CHECK_FALSE(info->was_clean);
        CHECK(info->error == error::close_timeout);
        CHECK(f.saw_error(error::close_timeout));
    }

    TEST_CASE("a Close answered into a peer that stopped reading ends after close_timeout") {
        // The peer sends a message and its Close, then reads nothing: our echo (16 MiB, more
        // than the socket buffers hold) and our Close behind it never get out. The close
        // handshake did not complete, so receive() must not report it clean, and the
        // connection must still end within timeouts.close.
        server_fixture f;
        f.options.timeouts.close = std::chrono::milliseconds(500);
        f.options.write_high_water = 64u << 20;  // the echo must queue, not suspend
        f.options.max_outbound = 64u << 20;
        std::optional<wscoro::close_info> info;
        f.start([&](connection ws) -> asio::awaitable<void> {
            // (Pieces below the zero-copy size, which would wait until written.)
            const std::vector<std::byte> piece(32u << 10, std::byte{'x'});
            while (auto m = co_await ws.receive())
                for (int i = 0; i < 512; ++i)
                    co_await ws.send_binary(piece);
            info = ws.close_info();
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await c.send_text("start");
            co_await c.send_close(1000);
            const bool drained = co_await f.drained(std::chrono::seconds(10));
            CHECK(drained);
        });
        REQUIRE(info);
        CHECK(info->code == 1006);
        CHECK_FALSE(info->was_clean);
        CHECK(info->error == error::close_timeout);
    }

    TEST_CASE("protocol violations fail the connection with the right code") {
        struct violation {
            const char* name;
            std::vector<std::byte> frame;
            std::uint16_t code;
            wscoro::error err;
        };
        const protocol::mask_key mk{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
        auto masked = [&](opcode op, std::string_view payload, bool fin = true) {
            std::vector<std::byte> v;
            protocol::append_frame(v, op, fin, bytes(payload), &mk);
            return v;
        };
        std::vector<violation> cases;
        {
            std::vector<std::byte> unmasked;
            protocol::append_frame(unmasked, opcode::text, true, bytes("hi"));
            cases.push_back({"unmasked", unmasked, 1002, error::bad_unmasked_frame});
        }
        {
            auto rsv = masked(opcode::text, "hi");
            rsv[0] |= std::byte{0x40};
            cases.push_back({"rsv1", rsv, 1002, error::bad_reserved_bits});
        }
        {
            auto op3 = masked(opcode::text, "hi");
            op3[0] = std::byte{0x83};
            cases.push_back({"opcode 3", op3, 1002, error::bad_opcode});
        }
        cases.push_back({"bad utf-8", masked(opcode::text, "\xCE\xBA\xC0\xAF"), 1007,
                         error::bad_frame_payload});
        cases.push_back({"continuation first", masked(opcode::continuation, "x"), 1002,
                         error::bad_continuation});
        cases.push_back({"fragmented ping", masked(opcode::ping, "x", false), 1002,
                         error::bad_control_fragment});
        cases.push_back({"too big", masked(opcode::binary, std::string(2000, 'x')), 1009,
                         error::frame_too_big});
        {
            auto bad_code = masked(opcode::close, "\x03\xed");  // 1005 may not be sent
            cases.push_back({"close 1005", bad_code, 1002, error::bad_close_code});
        }
        for (auto& v : cases) {
            CAPTURE(v.name);
            server_fixture f;
            f.options.max_frame_size = 1000;
            recorder rec;
            f.start(rec.make());
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await ws_client::connect(f.endpoint());
                co_await c.write_raw(v.frame);
                co_await expect_close(c, v.code);
                {
                    const bool drained = co_await f.drained();
                    CHECK(drained);
                }
            });
            REQUIRE(rec.info);
            CHECK(rec.info->code == v.code);
            CHECK_FALSE(rec.info->was_clean);
            CHECK(rec.info->error == v.err);
            CHECK(f.saw_error(v.err));
        }
    }

    TEST_CASE("per-connection max_frame_size") {
        server_fixture f;
        recorder rec;
        f.start([&](connection ws) -> asio::awaitable<void> {
            ws.set_max_frame_size(10);
            CHECK(ws.max_frame_size() == 10);
            auto echo_and_record = rec.make();
            co_await echo_and_record(ws);
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await c.send_text("0123456789");
            auto ok = co_await c.next();
            CHECK(ok.text() == "0123456789");
            co_await c.send_text("0123456789A");
            co_await expect_close(c, 1009);
        });
        REQUIRE(rec.info);
        CHECK(rec.info->code == 1009);
    }

    TEST_CASE("the peer vanishing mid-frame is a 1006 and frees the connection") {
        server_fixture f;
        recorder rec;
        f.start(rec.make());
        f.run([&]() -> asio::awaitable<void> {
            {
                auto c = co_await ws_client::connect(f.endpoint());
                std::vector<std::byte> frame;
                const protocol::mask_key mk{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
                protocol::append_frame(frame, opcode::binary, true, pattern(5000), &mk);
                co_await c.write_raw(std::span(frame).first(2500));
                co_await sleep_for(std::chrono::milliseconds(50));
            }  // the socket closes here, half a frame sent
            {
                const bool drained = co_await f.drained();
                CHECK(drained);
            }
        });
        REQUIRE(rec.info);
        CHECK(rec.info->code == 1006);
        CHECK_FALSE(rec.info->was_clean);
        CHECK(rec.info->error);
    }

    TEST_CASE("a handler that returns closes with 1000") {
        server_fixture f;
        f.start([](connection ws) -> asio::awaitable<void> { co_await ws.send("only this"); });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            {
                auto text_event = co_await c.next();
                CHECK(text_event.text() == "only this");
            }
            auto r = co_await c.next();
            REQUIRE(r.kind == event_kind::close);
            CHECK(r.code == 1000);
            co_await c.send_close(1000);
            {
                auto eof_event = co_await c.next();
                CHECK(eof_event.eof);
            }
            {
                const bool drained = co_await f.drained();
                CHECK(drained);
            }
        });
    }

    TEST_CASE("a handler exception closes with 1011, is reported, and the server lives on") {
        server_fixture f;
        f.start([](connection ws) -> asio::awaitable<void> {
            auto m = co_await ws.receive();
            if (m && m->text() == "boom") throw std::runtime_error("handler failed on purpose");
            co_await ws.send("fine");
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await c.send_text("boom");
            auto r = co_await c.next();
            REQUIRE(r.kind == event_kind::close);
            CHECK(r.code == 1011);
            co_await c.send_close(1011);
            {
                auto eof_event = co_await c.next();
                CHECK(eof_event.eof);
            }
            auto c2 = co_await ws_client::connect(f.endpoint());
            co_await c2.send_text("ok?");
            {
                auto text_event = co_await c2.next();
                CHECK(text_event.text() == "fine");
            }
        });
        REQUIRE_FALSE(f.errors.empty());
        CHECK(f.errors[0].code == error::application_error);
        CHECK(f.errors[0].had_exception);
        CHECK(f.errors[0].message.find("handler failed on purpose") != std::string::npos);
    }

    TEST_CASE("close() while another coroutine is in receive()") {
        server_fixture f;
        std::optional<wscoro::close_info> seen_by_reader;
        bool reader_done = false;
        f.start([&](connection ws) -> asio::awaitable<void> {
            asio::co_spawn(
                ws.get_executor(),
                [ws, &reader_done, &seen_by_reader]() -> asio::awaitable<void> {
                    while (auto m = co_await ws.receive()) {
                    }
                    seen_by_reader = ws.close_info();
                    reader_done = true;
                },
                asio::detached);
            co_await sleep_for(std::chrono::milliseconds(20));
            co_await ws.close(3001, "from the side");
            CHECK(ws.state() == connection_state::closed);
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            auto r = co_await c.next();
            REQUIRE(r.kind == event_kind::close);
            CHECK(r.code == 3001);
            co_await c.send_close(3001);
            {
                auto eof_event = co_await c.next();
                CHECK(eof_event.eof);
            }
            {
                const bool drained = co_await f.drained();
                CHECK(drained);
            }
        });
        CHECK(reader_done);
        REQUIRE(seen_by_reader);
        CHECK(seen_by_reader->was_clean);
    }

    TEST_CASE("close() argument checks") {
        server_fixture f;
        std::vector<std::error_code> seen;
        f.start([&](connection ws) -> asio::awaitable<void> {
            for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000}) {
                try {
                    co_await ws.close(code);
                    seen.push_back({});
                } catch (const wscoro::system_error& e) {
                    seen.push_back(e.code());
                }
            }
            try {
                co_await ws.close(1000, std::string(124, 'r'));
            } catch (const wscoro::system_error& e) {
                seen.push_back(e.code());
            }
            co_await ws.close(1000, std::string(123, 'r'));  // the longest allowed reason
            co_await ws.close(1000);                         // idempotent
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            auto r = co_await c.next();
            REQUIRE(r.kind == event_kind::close);
            CHECK(r.reason == std::string(123, 'r'));
            co_await c.send_close(1000);
            {
                auto eof_event = co_await c.next();
                CHECK(eof_event.eof);
            }
        });
        REQUIRE(seen.size() == 10);
        for (std::size_t i = 0; i < 9; ++i)
            CHECK(seen[i] == error::invalid_close_code);
        CHECK(seen[9] == error::reason_too_long);
    }

    TEST_CASE("server stop sends 1001 to every client and the listener stops") {
        server_fixture f;
        f.start([](connection ws) -> asio::awaitable<void> {
            while (auto m = co_await ws.receive())
                co_await ws.send(*m);
        });
        f.run([&]() -> asio::awaitable<void> {
            auto a = co_await ws_client::connect(f.endpoint());
            auto b = co_await ws_client::connect(f.endpoint());
            f.srv->stop();
            for (auto* c : {&a, &b}) {
                auto r = co_await c->next();
                REQUIRE(r.kind == event_kind::close);
                CHECK(r.code == 1001);
                co_await c->send_close(1001);
                {
                    auto eof_event = co_await c->next();
                    CHECK(eof_event.eof);
                }
            }
            {
                const bool drained = co_await f.drained();
                CHECK(drained);
            }
            bool refused = false;
            try {
                (void)co_await ws_client::connect(f.endpoint());
            } catch (const std::exception&) {
                refused = true;
            }
            CHECK(refused);
        });
    }
}
