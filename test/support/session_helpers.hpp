#pragma once
// Checks shared by the integration tests that drive whole sessions with ws_client.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ws_client.hpp"

namespace wscoro::test {

/// Runs the calling test case twice, once per executor mode (doctest subcases): false for a
/// strand per connection, true for server_options::single_threaded.
inline bool executor_mode() {
    bool mode = false;
    SUBCASE("strand per connection") {
        mode = false;
    }
    SUBCASE("single-threaded io_context") {
        mode = true;
    }
    return mode;
}

/// The next event is a message of `type` with exactly `data`.
inline asio::awaitable<void> expect_message(ws_client& c, protocol::opcode type,
                                            std::span<const std::byte> data) {
    auto r = co_await c.next(std::chrono::seconds(20));
    REQUIRE(r.kind == protocol::event_kind::message);
    CHECK(r.type == type);
    REQUIRE(r.payload.size() == data.size());
    CHECK(std::equal(r.payload.begin(), r.payload.end(), data.begin()));
}

/// The next event is a Close with `code`, and then the server closes TCP (RFC 6455 §7.1.1).
inline asio::awaitable<void> expect_close(ws_client& c, std::uint16_t code) {
    auto r = co_await c.next();
    REQUIRE(r.kind == protocol::event_kind::close);
    CHECK(r.code == code);
    auto eof = co_await c.next();
    CHECK(eof.eof);
}

/// A text of about 1 000 bytes (not all ASCII) for a prepared message: its frame is above
/// prepared_copy_limit (512 bytes), so connections queue it by reference, not as a copy.
inline std::string shared_broadcast_text() {
    std::string text;
    while (text.size() < 1000)
        text += "to everyone: κόσμε ";
    return text;
}

/// `n` bytes of lowercase ASCII, starting `seed` letters into the alphabet.
inline std::vector<std::byte> ascii(std::size_t n, std::size_t seed = 0) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i)
        v[i] = static_cast<std::byte>('a' + (i + seed) % 26);
    return v;
}

/// For each size: a text message of `ascii(n)` and a binary one of `pattern(n, n)`, each
/// echoed back exactly.
inline asio::awaitable<void> echo_each_size(ws_client& c, std::vector<std::size_t> sizes) {
    for (const std::size_t n : sizes) {
        CAPTURE(n);
        const auto text = ascii(n);
        co_await c.send_frame(protocol::opcode::text, text);
        co_await expect_message(c, protocol::opcode::text, text);
        const auto bin = pattern(n, static_cast<unsigned>(n));
        co_await c.send_frame(protocol::opcode::binary, bin);
        co_await expect_message(c, protocol::opcode::binary, bin);
    }
}

}  // namespace wscoro::test
