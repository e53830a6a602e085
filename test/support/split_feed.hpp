// Test-only helpers shared by the unit tests that feed the same input whole, byte by byte and
// split in two at every byte boundary, and require every way to give the same result.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <cstring>
#include <functional>
#include <ostream>  // doctest prints std::error_code through it
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace wscoro_test {

using bytes = std::vector<std::byte>;

// Hex digits to bytes; anything that is not a hex digit (spaces, newlines) is skipped.
inline bytes hex(std::string_view s) {
    bytes out;
    int hi = -1;
    for (char c : s) {
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<std::byte>(hi * 16 + v));
            hi = -1;
        }
    }
    return out;
}

inline bytes txt(std::string_view s) {
    bytes out(s.size());
    if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
    return out;
}

inline bytes pattern(std::size_t n, unsigned seed = 0) {
    bytes out(n);
    for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<std::byte>((i * 7 + seed) & 0xFF);
    return out;
}

inline bytes operator+(bytes a, const bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// Gives the size of each next chunk to feed.
using chunker = std::function<std::size_t()>;

// Calls `attempt(next_chunk, how)` with an n-byte input fed whole, then byte by byte, then
// split in two at every boundary (a sample of them for inputs over 4 KiB: the first and last
// 40 and every 1021st). `attempt` returns false on a failure; the rest is then skipped.
inline void for_each_chunking(
    std::size_t n, const std::function<bool(const chunker&, const std::string&)>& attempt) {
    if (!attempt([&] { return n; }, "whole")) return;
    if (!attempt([] { return std::size_t{1}; }, "byte by byte")) return;
    for (std::size_t k = 1; k < n; ++k) {
        if (!(n <= 4096 || k <= 40 || k + 40 >= n || k % 1021 == 0)) continue;
        bool first = true;
        const auto two = [&] {
            const std::size_t c = first ? k : n;
            first = false;
            return c;
        };
        if (!attempt(two, "split at " + std::to_string(k))) break;
    }
}

// What every incremental parser reports about one parse (feed_pieces_to fills it in), so that
// different ways of feeding the same bytes can be compared.
struct parse_status {
    bool done = false;
    bool failed = false;
    std::error_code ec;
    std::string detail;
    std::size_t consumed = 0;
};

inline void check_same_status(const parse_status& a, const parse_status& b) {
    CHECK(a.done == b.done);
    CHECK(a.failed == b.failed);
    CHECK(a.ec == b.ec);
    CHECK(a.detail == b.detail);
    CHECK(a.consumed == b.consumed);
}

// Feeds `input` to `parser` in pieces ending at each offset of `cuts` (ascending) and then the
// rest, checking the feed contract; then fills `out`'s done, failed, ec, detail and consumed.
// A finished or failed parser must take nothing more: `more` is offered to it to check that.
template <class Parser, class Outcome>
void feed_pieces_to(Parser& parser, Outcome& out, std::string_view input,
                    const std::vector<std::size_t>& cuts, std::string_view more) {
    std::size_t pos = 0;
    auto feed_to = [&](std::size_t end) {
        if (parser.done() || parser.failed()) return;
        const auto piece = input.substr(pos, end - pos);
        const auto used = parser.feed(piece);
        out.consumed += used;
        CHECK(used <= piece.size());
        // The parser may only stop short once it has finished or failed.
        if (used < piece.size()) CHECK((parser.done() || parser.failed()));
        pos = end;
    };
    for (const auto cut : cuts)
        feed_to(cut);
    feed_to(input.size());
    if (parser.done() || parser.failed()) CHECK(parser.feed(more) == 0);
    out.done = parser.done();
    out.failed = parser.failed();
    out.ec = parser.error();
    out.detail = std::string(parser.error_detail());
}

// Feeds an n-byte input whole (`feed_cuts({})`), split in two at every `stride`-th boundary
// and byte by byte, and calls `check_same(whole, other)` for each; returns the whole result.
template <class FeedCuts, class CheckSame>
auto check_every_split(std::size_t n, std::size_t stride, FeedCuts feed_cuts,
                       CheckSame check_same) {
    const auto whole = feed_cuts(std::vector<std::size_t>{});
    for (std::size_t cut = 1; cut < n; cut += stride) {
        INFO("split at ", cut);
        check_same(whole, feed_cuts(std::vector<std::size_t>{cut}));
    }
    std::vector<std::size_t> every;
    for (std::size_t cut = 1; cut < n; ++cut)
        every.push_back(cut);
    {
        INFO("byte by byte");
        check_same(whole, feed_cuts(every));
    }
    return whole;
}

}  // namespace wscoro_test
