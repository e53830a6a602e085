// Microbenchmark of the sans-I/O decode path: ns per frame of protocol::codec::next over a
// buffer of masked client frames, used exactly as connection_impl::receive() uses it (server
// role, protocol version 13, default limits, contiguous limit = 64 KiB read buffer - 14; one
// next() per event, `consumed` bytes dropped from the front). Then ns per 1 MiB message,
// next() alone against direct payload reads (direct_payload_buffer / commit_direct).
//
//   meson setup --buildtype=release build && meson test -C build --benchmark decode -v
//   or: ninja -C build test/bench/decode_bench && nice build/test/bench/decode_bench [reps]
//
// Each case encodes its frames once; every repetition restores the masked bytes (the decoder
// unmasks in place) and times only the decode loop. The best repetition is reported, since
// the machine is shared and noise only ever adds time.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "wscoro/protocol/codec.hpp"
#include "wscoro/protocol/frame.hpp"

namespace {

using namespace wscoro::protocol;

// As lib/connection.cpp: a 64 KiB read buffer, the decoder keeps at most that minus a header.
constexpr std::size_t read_buffer_size = 64 * 1024;

struct bench_case {
    const char* name;
    opcode op;
    std::vector<std::byte> payload;
    std::size_t frames;  // frames per buffer (the buffer stays well inside L2)
};

std::vector<std::byte> ascii_text(std::size_t n) {
    std::vector<std::byte> out(n);
    for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<std::byte>('a' + i % 26);
    return out;
}

// 64 bytes: ASCII with a 2-byte (é), a 3-byte (€) and a 4-byte (😀) character in it.
std::vector<std::byte> mixed_text() {
    const std::string s = "Hello w\xC3\xA9rld, price 5\xE2\x82\xAC, smile \xF0\x9F\x98\x80 ok";
    std::string t = s;
    while (t.size() < 64)
        t += 'x';
    t.resize(64);
    std::vector<std::byte> out(t.size());
    std::memcpy(out.data(), t.data(), t.size());
    return out;
}

// Text that is mostly not ASCII: Cyrillic (2 bytes), CJK (3) and emoji (4), with spaces,
// cut at a character boundary and padded to `n` with ASCII.
std::vector<std::byte> unicode_text(std::size_t n) {
    const std::string words[] = {"\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 ",
                                 "\xE4\xB8\x96\xE7\x95\x8C\xE4\xBD\xA0\xE5\xA5\xBD ",
                                 "\xF0\x9F\x98\x80\xF0\x9F\x9A\x80 ", "ok "};
    std::string t;
    for (std::size_t i = 0; t.size() + 16 < n; ++i)
        t += words[i % std::size(words)];
    t.resize(n, 'x');
    std::vector<std::byte> out(t.size());
    std::memcpy(out.data(), t.data(), t.size());
    return out;
}

std::vector<std::byte> binary(std::size_t n) {
    std::vector<std::byte> out(n);
    std::uint32_t x = 12345;
    for (auto& b : out) {
        x = x * 1103515245u + 12345u;
        b = static_cast<std::byte>(x >> 24);
    }
    return out;
}

// Decodes the whole buffer once; returns the number of messages (sanity check) and folds the
// payload sizes into `sink` so nothing can be optimised away.
std::size_t decode_all(codec& dec, std::span<std::byte> buf, std::uint64_t& sink) {
    std::size_t begin = 0;
    std::size_t messages = 0;
    for (;;) {
        std::size_t consumed = 0;
        const auto ev = dec.next(buf.subspan(begin), consumed);
        begin += consumed;
        if (ev.kind == event_kind::message) {
            ++messages;
            sink += ev.payload.size() + std::to_integer<unsigned>(ev.payload[0]);
            continue;
        }
        if (ev.kind == event_kind::need_more) break;
        std::fprintf(stderr, "decode_bench: unexpected event %d (%s)\n", static_cast<int>(ev.kind),
                     ev.ec.message().c_str());
        std::exit(1);
    }
    return messages;
}

// One large masked binary message arriving through a 64 KiB read buffer, as
// connection_impl::receive() sees it: `next_only` copies each chunk (standing in for recv())
// into the read buffer and lets next() stream it into the assembly buffer; otherwise, once
// the decoder offers it, each chunk is copied straight into the message buffer
// (direct_payload_buffer / commit_direct) and the read buffer only sees the header.
// Returns the payload size of the message decoded.
std::size_t decode_large(codec& dec, std::span<const std::byte> wire, bool next_only,
                         std::vector<std::byte>& read_buf, std::uint64_t& sink) {
    std::size_t at = 0;    // wire bytes "received" so far
    std::size_t have = 0;  // bytes in read_buf not consumed yet
    while (at < wire.size() || have != 0) {
        if (!next_only && have == 0) {
            const auto direct = dec.direct_payload_buffer(1);
            if (!direct.empty()) {
                const std::size_t n = std::min({direct.size(), read_buf.size(), wire.size() - at});
                std::memcpy(direct.data(), wire.data() + at, n);
                at += n;
                const auto ev = dec.commit_direct(n);
                if (ev.kind == event_kind::message) {
                    sink += std::to_integer<unsigned>(ev.payload[0]);
                    return ev.payload.size();
                }
                if (ev.kind != event_kind::need_more) break;
                continue;
            }
        }
        const std::size_t n = std::min(read_buf.size() - have, wire.size() - at);
        std::memcpy(read_buf.data() + have, wire.data() + at, n);
        at += n;
        have += n;
        std::size_t consumed = 0;
        const auto ev = dec.next(std::span(read_buf).first(have), consumed);
        std::memmove(read_buf.data(), read_buf.data() + consumed, have - consumed);
        have -= consumed;
        if (ev.kind == event_kind::message) {
            sink += std::to_integer<unsigned>(ev.payload[0]);
            return ev.payload.size();
        }
        if (ev.kind != event_kind::need_more) break;
    }
    std::fprintf(stderr, "decode_bench: large message not decoded\n");
    std::exit(1);
}

void large_message_bench(int reps, std::uint64_t& sink) {
    constexpr std::size_t size = 1024 * 1024;
    const std::vector<std::byte> payload = binary(size);
    const mask_key key = {std::byte{0x12}, std::byte{0x34}, std::byte{0x56}, std::byte{0x78}};
    std::vector<std::byte> wire;
    append_frame(wire, opcode::binary, true, payload, &key);
    std::vector<std::byte> read_buf(read_buffer_size);

    std::printf("\n%-20s %6s %10s %10s\n", "1 MiB masked binary", "", "ns/MiB", "GB/s");
    // Both paths also copy the bytes in from `wire` in 64 KiB reads, as recv() would; only
    // where that copy lands and the decoder's own copy differ. The paths alternate within
    // each repetition so that noise on the shared machine hits both alike; the first pass of
    // each grows its assembly buffer (steady state after).
    codec decoders[2] = {
        codec(role::server, 13, frame_limits{}, read_buffer_size - max_header_size),
        codec(role::server, 13, frame_limits{}, read_buffer_size - max_header_size)};
    double best[2] = {1e300, 1e300};
    for (int r = 0; r < std::max(3, reps / 4); ++r) {
        for (int path = 0; path < 2; ++path) {
            const auto t0 = std::chrono::steady_clock::now();
            const std::size_t n = decode_large(decoders[path], wire, path == 0, read_buf, sink);
            const auto t1 = std::chrono::steady_clock::now();
            if (n != size) {
                std::fprintf(stderr, "decode_bench: large message of %zu bytes\n", n);
                std::exit(1);
            }
            best[path] =
                std::min(best[path], std::chrono::duration<double, std::nano>(t1 - t0).count());
        }
    }
    for (int path = 0; path < 2; ++path)
        std::printf("%-20s %6s %10.0f %10.2f\n", path == 0 ? "  next() only" : "  direct", "",
                    best[path], static_cast<double>(size) / best[path]);
}

}  // namespace

int main(int argc, char** argv) {
    const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 200;

    bench_case cases[] = {
        {"text 64 B ASCII", opcode::text, ascii_text(64), 512},
        {"text 64 B UTF-8", opcode::text, mixed_text(), 512},
        {"text 4 KiB ASCII", opcode::text, ascii_text(4096), 32},
        {"text 4 KiB UTF-8", opcode::text, unicode_text(4096), 32},
        {"binary 125 B", opcode::binary, binary(125), 512},
    };

    std::uint64_t sink = 0;
    std::printf("%-18s %8s %10s %10s\n", "case", "frames", "ns/frame", "GB/s");
    for (auto& c : cases) {
        std::vector<std::byte> wire;
        for (std::size_t i = 0; i < c.frames; ++i) {
            // A different key per frame, as a browser sends.
            const auto k = static_cast<std::uint32_t>(0x9E3779B9u * (i + 1));
            const mask_key key = {std::byte(k >> 24), std::byte(k >> 16), std::byte(k >> 8),
                                  std::byte(k)};
            append_frame(wire, c.op, true, c.payload, &key);
        }
        std::vector<std::byte> buf(wire.size());
        codec dec(role::server, 13, frame_limits{}, read_buffer_size - max_header_size);

        // Bounded: `inner` passes per timed repetition, `reps` repetitions.
        const std::size_t inner = std::max<std::size_t>(1, 20000 / c.frames);
        double best = 1e300;
        for (int r = 0; r < reps; ++r) {
            double ns = 0;
            for (std::size_t k = 0; k < inner; ++k) {
                std::memcpy(buf.data(), wire.data(), wire.size());
                const auto t0 = std::chrono::steady_clock::now();
                const std::size_t n = decode_all(dec, buf, sink);
                const auto t1 = std::chrono::steady_clock::now();
                if (n != c.frames) {
                    std::fprintf(stderr, "decode_bench: %s: %zu of %zu messages\n", c.name, n,
                                 c.frames);
                    return 1;
                }
                ns += std::chrono::duration<double, std::nano>(t1 - t0).count();
            }
            best = std::min(best, ns / static_cast<double>(inner * c.frames));
        }
        std::printf("%-18s %8zu %10.2f %10.2f\n", c.name, c.frames, best,
                    static_cast<double>(c.payload.size()) / best);
    }
    large_message_bench(reps, sink);
    // Printed so that the decoding cannot be optimised away.
    std::printf("(checksum %llu)\n", static_cast<unsigned long long>(sink % 1000));
    return 0;
}
