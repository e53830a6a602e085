// Test-only harness for the frame decoders (frame.hpp's caller contract): events copied out of
// a decoder, a feeder that follows the contract and reports any breach of it, and a check that
// runs a decoder fed whole, byte by byte and split at every boundary.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "split_feed.hpp"
#include "wscoro/protocol/frame.hpp"

namespace wscoro_test {

inline bool points_into(std::span<const std::byte> part, std::span<const std::byte> whole) {
    const auto p = reinterpret_cast<std::uintptr_t>(part.data());
    const auto b = reinterpret_cast<std::uintptr_t>(whole.data());
    return p >= b && p + part.size() <= b + whole.size();
}

// ---------------------------------------------------------------------------------------
// Events copied out of a decoder.

struct rec {
    wscoro::protocol::event_kind kind = wscoro::protocol::event_kind::need_more;
    wscoro::protocol::opcode type = wscoro::protocol::opcode::text;
    bytes payload;
    std::uint16_t close_code = 0;
    std::string close_reason;
    std::error_code ec;
    bool operator==(const rec&) const = default;
};

inline rec record(const wscoro::protocol::decoder_event& ev) {
    using wscoro::protocol::event_kind;
    rec r;
    r.kind = ev.kind;
    if (ev.kind == event_kind::error) {
        r.ec = ev.ec;
        return r;
    }
    r.type = ev.type;
    r.payload.assign(ev.payload.begin(), ev.payload.end());
    if (ev.kind == event_kind::close) {
        r.close_code = ev.close_code;
        r.close_reason = std::string(ev.close_reason);
    }
    return r;
}

inline std::string describe(const rec& r) {
    static const char* const kinds[] = {"need_more", "message", "ping", "pong", "close", "error"};
    std::ostringstream os;
    os << kinds[static_cast<int>(r.kind)] << "(op " << static_cast<int>(r.type) << ", "
       << r.payload.size() << " bytes:";
    for (std::size_t i = 0; i < r.payload.size() && i < 24; ++i)
        os << ' ' << std::hex << std::to_integer<int>(r.payload[i]) << std::dec;
    if (r.payload.size() > 24) os << " ...";
    os << ")";
    if (r.kind == wscoro::protocol::event_kind::close)
        os << " code " << r.close_code << " '" << r.close_reason << "'";
    if (r.ec) os << " " << r.ec.message();
    return os.str();
}

inline std::string describe(const std::vector<rec>& v) {
    std::string s = "[";
    for (const rec& r : v)
        s += describe(r) + "; ";
    return s + "]";
}

// ---------------------------------------------------------------------------------------
// The caller-contract harness (frame.hpp): one read buffer, unconsumed bytes kept in front
// (moved to the buffer's start), the next chunk appended, events copied out before the next
// call.

struct run_result {
    std::vector<rec> events;
    std::string violation;  // empty unless the decoder broke its contract
};

template <class Decoder>
run_result feed(Decoder& d, std::span<const std::byte> wire, const chunker& next_chunk) {
    using wscoro::protocol::decoder_event;
    using wscoro::protocol::event_kind;
    run_result r;
    bytes buf;
    bool closed_seen = false;
    std::size_t at = 0;
    while (at < wire.size()) {
        const std::size_t n = std::clamp<std::size_t>(next_chunk(), 1, wire.size() - at);
        buf.insert(buf.end(), wire.begin() + static_cast<std::ptrdiff_t>(at),
                   wire.begin() + static_cast<std::ptrdiff_t>(at + n));
        at += n;
        for (;;) {
            std::size_t used = ~std::size_t{0};
            const decoder_event ev = d.next(buf, used);
            if (used > buf.size()) {
                r.violation = "consumed more than given";
                return r;
            }
            if (ev.kind == event_kind::need_more) {
                if (!closed_seen && ev.needed == 0) r.violation = "need_more with needed == 0";
                buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(used));
                break;
            }
            r.events.push_back(record(ev));
            if (ev.kind == event_kind::error) {
                std::size_t again_used = 99;
                const decoder_event again = d.next(buf, again_used);
                if (again.kind != event_kind::error || again.ec != ev.ec || again_used != 0)
                    r.violation = "error not sticky";
                return r;
            }
            if (ev.kind == event_kind::close) closed_seen = true;
            buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(used));
        }
    }
    return r;
}

// Runs `run(chunker, contiguous_limit)` fed whole, byte by byte and split in two at every
// boundary (a sample of them for long inputs), each with contiguous_limit 0, 16 and 64 KiB;
// every run must give `want`.
inline void check_runs(std::size_t n, const std::vector<rec>& want,
                       const std::function<run_result(const chunker&, std::size_t)>& run) {
    for (std::size_t limit : {std::size_t{0}, std::size_t{16}, std::size_t{64 * 1024}}) {
        for_each_chunking(n, [&](const chunker& next_chunk, const std::string& how) {
            const run_result res = run(next_chunk, limit);
            if (res.events == want && res.violation.empty()) return true;
            CAPTURE(limit);
            CAPTURE(how);
            CHECK_EQ(describe(res.events) + res.violation, describe(want));
            return false;
        });
    }
}

}  // namespace wscoro_test
