#include "wscoro/protocol/frame.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "decoder_feed.hpp"
#include "skip_under_valgrind.hpp"
#include "wscoro/error.hpp"
#include "wscoro/protocol/codec.hpp"

// Counts heap allocations while `g_counting` is set, to prove the steady state allocates
// nothing (the decoder must not allocate per message).
namespace {
bool g_counting = false;
std::size_t g_allocations = 0;
}  // namespace

void* operator new(std::size_t n) {
    if (g_counting) ++g_allocations;
    if (void* p = std::malloc(n != 0 ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {

using namespace wscoro::protocol;
using wscoro::error;
using namespace wscoro_test;

// ---------------------------------------------------------------------------------------
// Byte helpers and an independent frame builder (RFC 6455 §5.2 written out by hand, so the
// decoder is not only tested against the encoder).

const mask_key test_key = {std::byte{0x37}, std::byte{0xfa}, std::byte{0x21}, std::byte{0x3d}};

// `len_bytes`: -1 minimal, 0 / 2 / 8 forces that many extended length bytes.
bytes frame(std::uint8_t b0, const bytes& payload, const mask_key* key, int len_bytes = -1) {
    const std::uint64_t n = payload.size();
    if (len_bytes < 0) len_bytes = n < 126 ? 0 : n <= 0xFFFF ? 2 : 8;
    const std::uint8_t mask = key != nullptr ? 0x80 : 0x00;
    bytes out{std::byte{b0}};
    if (len_bytes == 0) {
        out.push_back(static_cast<std::byte>(mask | n));
    } else {
        out.push_back(static_cast<std::byte>(mask | (len_bytes == 2 ? 126 : 127)));
        for (int i = len_bytes - 1; i >= 0; --i)
            out.push_back(static_cast<std::byte>(n >> (8 * i)));
    }
    if (key != nullptr) {
        out.insert(out.end(), key->begin(), key->end());
        for (std::size_t i = 0; i < payload.size(); ++i)
            out.push_back(payload[i] ^ (*key)[i % 4]);
    } else {
        out.insert(out.end(), payload.begin(), payload.end());
    }
    return out;
}
bytes m(std::uint8_t b0, const bytes& payload) {
    return frame(b0, payload, &test_key);
}
bytes m(std::uint8_t b0, std::string_view payload) {
    return m(b0, txt(payload));
}
bytes u(std::uint8_t b0, const bytes& payload) {
    return frame(b0, payload, nullptr);
}
bytes u(std::uint8_t b0, std::string_view payload) {
    return u(b0, txt(payload));
}

bytes close_body(std::uint16_t code, std::string_view reason = {}) {
    return bytes{static_cast<std::byte>(code >> 8), static_cast<std::byte>(code & 0xFF)} +
           txt(reason);
}

// ---------------------------------------------------------------------------------------
// Expected events.

rec msg(opcode t, bytes p) {
    return {event_kind::message, t, std::move(p), 0, {}, {}};
}
rec text(std::string_view s) {
    return msg(opcode::text, txt(s));
}
rec binary(bytes p) {
    return msg(opcode::binary, std::move(p));
}
rec ping(bytes p) {
    return {event_kind::ping, opcode::ping, std::move(p), 0, {}, {}};
}
rec pong(bytes p) {
    return {event_kind::pong, opcode::pong, std::move(p), 0, {}, {}};
}
rec closed(std::uint16_t code, std::string_view reason) {
    return {
        event_kind::close, opcode::close, close_body(code, reason), code, std::string(reason), {}};
}
rec closed_empty() {
    return {event_kind::close, opcode::close, {}, 1005, {}, {}};
}
rec err(error e) {
    rec r;
    r.kind = event_kind::error;
    r.ec = make_error_code(e);
    return r;
}

// Feeds `wire` whole, byte by byte and split in two at every boundary (a sample of them for
// long inputs), each with contiguous_limit 0, 16 and 64 KiB; every run must give `want`.
void check_all(role r, const bytes& wire, const std::vector<rec>& want, frame_limits lim = {}) {
    check_runs(wire.size(), want, [&](const chunker& next_chunk, std::size_t limit) {
        message_decoder d(r, lim, limit);
        return feed(d, wire, next_chunk);
    });
}

void check_error(role r, const bytes& wire, error e, std::uint16_t code, frame_limits lim = {}) {
    CHECK(wscoro::close_code_for(make_error_code(e)) == code);
    check_all(r, wire, {err(e)}, lim);
}

// Valid UTF-8 of about `n` bytes drawn from every encoding length.
bytes random_utf8(std::size_t n, std::mt19937& rng) {
    bytes out;
    out.reserve(n + 4);
    while (out.size() < n) {
        const unsigned cls = rng() % 8;
        std::uint32_t cp;
        if (cls < 5)
            cp = rng() % 0x80;
        else if (cls == 5)
            cp = 0x80 + rng() % (0x800 - 0x80);
        else if (cls == 6)
            do
                cp = 0x800 + rng() % (0x10000 - 0x800);
            while (cp >= 0xD800 && cp <= 0xDFFF);
        else
            cp = 0x10000 + rng() % (0x110000 - 0x10000);
        const auto put = [&](std::uint32_t v) { out.push_back(static_cast<std::byte>(v)); };
        if (cp < 0x80) {
            put(cp);
        } else if (cp < 0x800) {
            put(0xC0 | cp >> 6);
            put(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            put(0xE0 | cp >> 12);
            put(0x80 | (cp >> 6 & 0x3F));
            put(0x80 | (cp & 0x3F));
        } else {
            put(0xF0 | cp >> 18);
            put(0x80 | (cp >> 12 & 0x3F));
            put(0x80 | (cp >> 6 & 0x3F));
            put(0x80 | (cp & 0x3F));
        }
    }
    return out;
}

// What the decoder did with `wire` fed in chunks (feed()'s buffer handling): each event with
// the number of bytes consumed in total up to and including the call that returned it. The
// fast path for whole frames must match the general path here too, not only in events.
struct traced {
    std::vector<rec> events;
    std::vector<std::size_t> consumed;
    bool operator==(const traced&) const = default;
};

traced trace(message_decoder& d, const bytes& wire, const chunker& next_chunk) {
    traced t;
    bytes buf;
    std::size_t at = 0;
    std::size_t total = 0;
    while (at < wire.size()) {
        const std::size_t n = std::clamp<std::size_t>(next_chunk(), 1, wire.size() - at);
        buf.insert(buf.end(), wire.begin() + static_cast<std::ptrdiff_t>(at),
                   wire.begin() + static_cast<std::ptrdiff_t>(at + n));
        at += n;
        for (;;) {
            std::size_t used = 0;
            const decoder_event ev = d.next(buf, used);
            total += used;
            // Copied out before the consumed bytes go: the payload may point into `buf`.
            if (ev.kind != event_kind::need_more) {
                t.events.push_back(record(ev));
                t.consumed.push_back(total);
            }
            buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(used));
            if (ev.kind == event_kind::need_more) break;
            if (ev.kind == event_kind::error) return t;
        }
    }
    return t;
}

std::string describe(const traced& t) {
    std::string s = describe(t.events) + " consumed";
    for (std::size_t c : t.consumed) {
        s += ' ';
        s += std::to_string(c);
    }
    return s;
}

// Byte by byte, no call ever sees a whole frame header, so only the general path runs; fed
// whole, every eligible frame takes the fast path; split in two at every boundary, a mix.
// All must give the same events for every contiguous_limit. With the 64 KiB limit no frame
// of these tests is streamed, so bytes are consumed only at frame ends and at errors, the
// same whatever the split: there the consumed counts must agree too. (With smaller limits an
// error mid-frame comes after a split-dependent number of streamed bytes, as it always has.)
// Returns the byte-by-byte trace.
traced check_paths_agree(role r, const bytes& wire, frame_limits lim = {}) {
    constexpr std::size_t waiting = 64 * 1024;
    message_decoder ref(r, lim, waiting);
    const traced want = trace(ref, wire, [] { return std::size_t{1}; });
    for (std::size_t limit : {std::size_t{0}, std::size_t{16}, waiting}) {
        for_each_chunking(wire.size(), [&](const chunker& next_chunk, const std::string& how) {
            message_decoder d(r, lim, limit);
            traced got = trace(d, wire, next_chunk);
            if (limit != waiting) got.consumed = want.consumed;
            if (got == want) return true;
            CAPTURE(limit);
            CAPTURE(how);
            CHECK_EQ(describe(got), describe(want));
            return false;
        });
    }
    return want;
}

// ---------------------------------------------------------------------------------------
// Direct payload reads (direct_payload_buffer / commit_direct).

// What a run of `wire` through a decoder gave: each event with the number of wire bytes
// handed to the decoder before and after the call that returned it (read into the buffer
// and passed to next(), or written into a direct span and committed).
struct direct_run {
    std::vector<rec> events;
    std::vector<std::size_t> before;
    std::vector<std::size_t> after;
    std::size_t direct_bytes = 0;  // payload bytes that went through commit_direct
    std::size_t direct_calls = 0;
    std::string violation;
};

struct direct_options {
    std::size_t read_size = 64 * 1024;  // bytes "received" into the read buffer per read
    std::size_t min_bytes = 1;          // direct_payload_buffer's argument (SIZE_MAX: never)
    bool alternate = false;             // after each direct commit, one read into the buffer
};

// Reads `wire` as connection_impl::receive() would with a `read_size` read buffer (next()
// until need_more, unconsumed bytes kept in front), except that whenever the buffer is empty
// and the decoder offers a direct span, the next bytes are "received" into the span instead:
// `direct_chunk()` bytes at a time (clamped to the span), each committed with commit_direct.
direct_run feed_direct(message_decoder& d, const bytes& wire, const direct_options& o,
                       const chunker& direct_chunk) {
    direct_run r;
    bytes buf;
    std::size_t at = 0;
    bool after_direct = false;
    const auto add = [&](const decoder_event& ev, std::size_t before) {
        r.events.push_back(record(ev));
        r.before.push_back(before);
        r.after.push_back(at);
    };
    for (;;) {
        if (buf.empty() && !(o.alternate && after_direct) && at < wire.size()) {
            const std::span<std::byte> span = d.direct_payload_buffer(o.min_bytes);
            if (!span.empty()) {
                if (span.size() > wire.size() - at) {
                    r.violation = "direct span past the end of the input";
                    return r;
                }
                const std::size_t n = std::clamp<std::size_t>(direct_chunk(), 1, span.size());
                std::memcpy(span.data(), wire.data() + at, n);
                const std::size_t before = at;
                at += n;
                r.direct_bytes += n;
                ++r.direct_calls;
                after_direct = true;
                const decoder_event ev = d.commit_direct(n);
                if (ev.kind == event_kind::need_more) {
                    if (ev.needed == 0) r.violation = "need_more with needed == 0";
                    continue;
                }
                add(ev, before);
                if (ev.kind == event_kind::error) return r;
                continue;
            }
        }
        after_direct = false;
        if (at == wire.size()) return r;
        const std::size_t n = std::min(o.read_size, wire.size() - at);
        const std::size_t before = at;
        buf.insert(buf.end(), wire.begin() + static_cast<std::ptrdiff_t>(at),
                   wire.begin() + static_cast<std::ptrdiff_t>(at + n));
        at += n;
        for (;;) {
            std::size_t used = 0;
            const decoder_event ev = d.next(buf, used);
            if (ev.kind != event_kind::need_more) add(ev, before);
            buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(used));
            if (ev.kind == event_kind::need_more || ev.kind == event_kind::error) break;
        }
        if (!r.events.empty() && r.events.back().kind == event_kind::error) return r;
    }
}

// A masking key with four different bytes, rotated by `phase`, so that a payload unmasked
// at the wrong key phase cannot come out right.
mask_key phase_key(unsigned phase) {
    const mask_key k = {std::byte{0x5a}, std::byte{0xc3}, std::byte{0x0f}, std::byte{0x96}};
    return {k[phase % 4], k[(phase + 1) % 4], k[(phase + 2) % 4], k[(phase + 3) % 4]};
}

// `payload` as fragments of the sizes in `parts` followed by one with the rest (so `{}` is
// a single frame), each fragment with its own key, rotated one phase from the previous.
bytes fragments(opcode op, const bytes& payload, const std::vector<std::size_t>& parts,
                unsigned key_phase) {
    bytes out;
    std::size_t at = 0;
    for (std::size_t i = 0; i <= parts.size(); ++i) {
        const bool last = i == parts.size();
        const std::size_t n = last ? payload.size() - at : parts[i];
        const bytes part(payload.begin() + static_cast<std::ptrdiff_t>(at),
                         payload.begin() + static_cast<std::ptrdiff_t>(at + n));
        const mask_key key = phase_key(key_phase + static_cast<unsigned>(i));
        append_frame(out, i == 0 ? op : opcode::continuation, last, part, &key);
        at += n;
    }
    return out;
}

struct chunk_pattern {
    const char* name;
    std::vector<std::size_t> sizes;  // cycled; 0 means "the whole span"
};

chunker cycle(const std::vector<std::size_t>& sizes) {
    auto i = std::make_shared<std::size_t>(0);
    return [sizes, i] {
        const std::size_t n = sizes[(*i)++ % sizes.size()];
        return n == 0 ? ~std::size_t{0} : n;
    };
}

const chunk_pattern all_patterns[] = {
    {"1 byte", {1}},
    {"7 bytes", {7}},
    {"4096 bytes", {4096}},
    {"whole span", {0}},
    {"mixed 1/7/4096/3/whole", {1, 7, 4096, 3, 0}},
};

// Runs `wire` through the plain next() path and through direct reads with every chunk
// pattern, read buffer size (the direct path then starts at each key phase of the payload)
// and way of mixing; all must give `want`. For an error, the call that reports it must be
// the one that handed over byte `error_at` of the wire (fail-fast, at the same point).
// Returns the payload bytes read directly by the run with the server's settings.
std::size_t check_direct(const bytes& wire, const std::vector<rec>& want,
                         std::size_t error_at = ~std::size_t{0}, frame_limits lim = {},
                         bool with_1_byte_chunks = true) {
    constexpr std::size_t server_contiguous = 64 * 1024 - max_header_size;
    std::size_t server_direct = 0;
    const auto check = [&](const direct_run& res, const std::string& how) {
        CAPTURE(how);
        CHECK(res.violation == "");
        if (res.events != want) {
            CHECK_EQ(describe(res.events), describe(want));
            return false;
        }
        if (error_at != ~std::size_t{0} && !res.events.empty()) {
            CHECK(res.before.back() <= error_at);
            CHECK(error_at < res.after.back());
        }
        return true;
    };
    for (const std::size_t contiguous : {server_contiguous, std::size_t{0}}) {
        for (const std::size_t read_size :
             {std::size_t{64 * 1024}, std::size_t{4096 + 14}, std::size_t{4097 + 14},
              std::size_t{4098 + 14}, std::size_t{4099 + 14}, std::size_t{100}}) {
            CAPTURE(contiguous);
            CAPTURE(read_size);
            {
                message_decoder plain(role::server, lim, contiguous);
                if (!check(
                        feed_direct(plain, wire, {read_size, ~std::size_t{0}, false}, cycle({1})),
                        "next() only"))
                    return server_direct;
            }
            for (const chunk_pattern& pat : all_patterns) {
                if (!with_1_byte_chunks && pat.sizes == std::vector<std::size_t>{1}) continue;
                struct mix {
                    const char* name;
                    std::size_t min_bytes;
                    bool alternate;
                };
                for (const mix& x : {mix{"direct", 1, false}, mix{"tail via next()", 5000, false},
                                     mix{"alternating", 1, true}}) {
                    message_decoder d(role::server, lim, contiguous);
                    const direct_run res = feed_direct(
                        d, wire, {read_size, x.min_bytes, x.alternate}, cycle(pat.sizes));
                    if (!check(res, std::string(pat.name) + ", " + x.name)) return server_direct;
                    if (contiguous == server_contiguous && read_size == 64 * 1024 &&
                        x.min_bytes == 1 && !x.alternate &&
                        pat.sizes == std::vector<std::size_t>{0})
                        server_direct = res.direct_bytes;
                }
            }
        }
    }
    return server_direct;
}

bytes with_byte_at(bytes b, std::size_t at, std::uint8_t v) {
    b[at] = std::byte{v};
    return b;
}

// `n` ASCII letters.
bytes letters(std::size_t n) {
    bytes out(n);
    for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<std::byte>('a' + i % 26);
    return out;
}
}  // namespace

TEST_SUITE("frame") {
    // -------------------------------------------------------------------------- RFC §5.7
    TEST_CASE("RFC 6455 §5.7: single-frame unmasked text to a client") {
        check_all(role::client, hex("81 05 48 65 6c 6c 6f"), {text("Hello")});
    }

    TEST_CASE("RFC 6455 §5.7: single-frame masked text to a server") {
        check_all(role::server, hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"), {text("Hello")});
    }

    TEST_CASE("RFC 6455 §5.7: fragmented unmasked text") {
        check_all(role::client, hex("01 03 48 65 6c 80 02 6c 6f"), {text("Hello")});
    }

    TEST_CASE("RFC 6455 §5.7: unmasked ping and masked pong") {
        check_all(role::client, hex("89 05 48 65 6c 6c 6f"), {ping(txt("Hello"))});
        check_all(role::server, hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"), {pong(txt("Hello"))});
    }

    TEST_CASE("RFC 6455 §5.7: 256-byte and 64 KiB binary messages") {
        check_all(role::client, hex("82 7E 01 00") + pattern(256), {binary(pattern(256))});
        check_all(role::client, hex("82 7F 00 00 00 00 00 01 00 00") + pattern(65536, 3),
                  {binary(pattern(65536, 3))});
    }

    TEST_CASE("RFC 6455 §5.7: all examples back to back in one stream") {
        const bytes wire = hex("81 05 48 65 6c 6c 6f") + hex("01 03 48 65 6c 80 02 6c 6f") +
                           hex("89 05 48 65 6c 6c 6f") + hex("8a 05 48 65 6c 6c 6f") +
                           hex("82 7E 01 00") + pattern(256);
        check_all(role::client, wire,
                  {text("Hello"), text("Hello"), ping(txt("Hello")), pong(txt("Hello")),
                   binary(pattern(256))});
    }

    TEST_CASE("encoder reproduces the RFC 6455 §5.7 examples byte for byte") {
        bytes out;
        append_frame(out, opcode::text, true, txt("Hello"));
        CHECK(out == hex("81 05 48 65 6c 6c 6f"));

        out.clear();
        append_frame(out, opcode::text, true, txt("Hello"), &test_key);
        CHECK(out == hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"));

        out.clear();
        append_frame(out, opcode::text, false, txt("Hel"));
        append_frame(out, opcode::continuation, true, txt("lo"));
        CHECK(out == hex("01 03 48 65 6c 80 02 6c 6f"));

        out.clear();
        append_frame(out, opcode::ping, true, txt("Hello"));
        append_frame(out, opcode::pong, true, txt("Hello"), &test_key);
        CHECK(out == hex("89 05 48 65 6c 6c 6f 8a 85 37 fa 21 3d 7f 9f 4d 51 58"));

        out.clear();
        append_frame(out, opcode::binary, true, pattern(256));
        CHECK(out == hex("82 7E 01 00") + pattern(256));

        out.clear();
        append_frame(out, opcode::binary, true, pattern(65536));
        CHECK(out == hex("82 7F 00 00 00 00 00 01 00 00") + pattern(65536));
    }

    TEST_CASE("encode_header: flags, rsv1, mask key and return value") {
        std::byte h[max_header_size];
        CHECK(encode_header(h, opcode::text, true, 5) == 2);
        CHECK(bytes(h, h + 2) == hex("81 05"));
        CHECK(encode_header(h, opcode::text, false, 5) == 2);
        CHECK(bytes(h, h + 2) == hex("01 05"));
        CHECK(encode_header(h, opcode::continuation, true, 0) == 2);
        CHECK(bytes(h, h + 2) == hex("80 00"));
        CHECK(encode_header(h, opcode::text, true, 5, nullptr, true) == 2);
        CHECK(bytes(h, h + 2) == hex("C1 05"));
        CHECK(encode_header(h, opcode::close, true, 2, &test_key) == 6);
        CHECK(bytes(h, h + 6) == hex("88 82 37 fa 21 3d"));
        CHECK(encode_header(h, opcode::binary, true, 0x123456789ULL, &test_key) == 14);
        CHECK(bytes(h, h + 14) == hex("82 FF 00 00 00 01 23 45 67 89 37 fa 21 3d"));
    }

    TEST_CASE("encode_close_payload: code in network byte order, then the reason") {
        std::byte out[16];
        CHECK(encode_close_payload(out, 1000, "bye") == 5);
        CHECK(bytes(out, out + 5) == hex("03 E8 62 79 65"));
        CHECK(encode_close_payload(out, 4999, "") == 2);
        CHECK(bytes(out, out + 2) == hex("13 87"));
    }

    // ------------------------------------------------------------------ length encodings
    TEST_CASE("length boundaries 0, 125, 126, 127, 65535, 65536: encode and decode") {
        struct boundary {
            std::uint64_t length;
            const char* header;  // unmasked binary frame header, hand-written from §5.2
        };
        const boundary cases[] = {
            {0, "82 00"},         {125, "82 7D"},         {126, "82 7E 00 7E"},
            {127, "82 7E 00 7F"}, {65535, "82 7E FF FF"}, {65536, "82 7F 00 00 00 00 00 01 00 00"},
        };
        for (const boundary& c : cases) {
            CAPTURE(c.length);
            const bytes header = hex(c.header);
            std::byte h[max_header_size];
            CHECK(encode_header(h, opcode::binary, true, c.length) == header.size());
            CHECK(bytes(h, h + header.size()) == header);
            CHECK(header_size(c.length, false) == header.size());
            CHECK(header_size(c.length, true) == header.size() + 4);

            bytes masked_header = header;
            masked_header[1] |= std::byte{0x80};
            CHECK(encode_header(h, opcode::binary, true, c.length, &test_key) == header.size() + 4);
            CHECK(bytes(h, h + header.size() + 4) ==
                  masked_header + bytes(test_key.begin(), test_key.end()));

            const bytes payload = pattern(c.length, 11);
            bytes encoded;
            append_frame(encoded, opcode::binary, true, payload, &test_key);
            CHECK(encoded == frame(0x82, payload, &test_key));

            check_all(role::client, header + payload, {binary(payload)});
            check_all(role::server, encoded, {binary(payload)});
        }
    }

    TEST_CASE("non-minimal length encodings are rejected (RFC 6455 §5.2)") {
        // 16-bit form for lengths below 126.
        check_error(role::client, hex("82 7E 00 00"), error::bad_size_encoding, 1002);
        check_error(role::client, hex("82 7E 00 7D"), error::bad_size_encoding, 1002);
        check_error(role::client, frame(0x82, pattern(125), nullptr, 2), error::bad_size_encoding,
                    1002);
        // 64-bit form for lengths that fit 16 bits.
        check_error(role::client, hex("82 7F 00 00 00 00 00 00 00 00"), error::bad_size_encoding,
                    1002);
        check_error(role::client, hex("82 7F 00 00 00 00 00 00 00 7D"), error::bad_size_encoding,
                    1002);
        check_error(role::client, hex("82 7F 00 00 00 00 00 00 FF FF"), error::bad_size_encoding,
                    1002);
        check_error(role::server, frame(0x82, pattern(200), &test_key, 8), error::bad_size_encoding,
                    1002);
        // Reported from the length bytes alone: no masking key or payload is needed.
        check_error(role::server, hex("82 FE 00 7D"), error::bad_size_encoding, 1002);
    }

    TEST_CASE("64-bit length with the most significant bit set is rejected (RFC 6455 §5.2)") {
        check_error(role::client, hex("82 7F 80 00 00 00 00 00 00 00"), error::bad_frame_length,
                    1002);
        check_error(role::client, hex("82 7F FF FF FF FF FF FF FF FF"), error::bad_frame_length,
                    1002);
        check_error(role::server, hex("82 FF 80 00 00 00 00 01 00 00"), error::bad_frame_length,
                    1002);
    }

    // ------------------------------------------------------------------ header validation
    TEST_CASE("RSV1, RSV2 and RSV3 each rejected without an extension (RFC 6455 §5.2)") {
        check_error(role::server, m(0xC1, "Hello"), error::bad_reserved_bits, 1002);
        check_error(role::server, m(0xA1, "Hello"), error::bad_reserved_bits, 1002);
        check_error(role::server, m(0x91, "Hello"), error::bad_reserved_bits, 1002);
        check_error(role::client, u(0xC9, ""), error::bad_reserved_bits, 1002);
        // Found from the first byte, whatever follows.
        check_error(role::server, hex("C1"), error::bad_reserved_bits, 1002);
    }

    TEST_CASE("every reserved opcode 3-7 and 0xB-0xF is rejected (RFC 6455 §5.2)") {
        for (std::uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
            CAPTURE(static_cast<int>(op));
            check_error(role::server, m(static_cast<std::uint8_t>(0x80 | op), "x"),
                        error::bad_opcode, 1002);
            check_error(role::client, u(op, ""), error::bad_opcode, 1002);
            // Found from the first byte alone.
            check_error(role::server, bytes{std::byte{op}}, error::bad_opcode, 1002);
        }
    }

    TEST_CASE("fragmented control frames are rejected (RFC 6455 §5.5)") {
        check_error(role::server, m(0x09, "a"), error::bad_control_fragment, 1002);
        check_error(role::server, m(0x0A, ""), error::bad_control_fragment, 1002);
        check_error(role::client, u(0x08, close_body(1000)), error::bad_control_fragment, 1002);
        check_error(role::server, hex("09"), error::bad_control_fragment, 1002);
    }

    TEST_CASE("control frames above 125 bytes are rejected, 125 accepted (RFC 6455 §5.5)") {
        check_all(role::server, m(0x89, pattern(125)), {ping(pattern(125))});
        check_error(role::server, m(0x89, pattern(126)), error::bad_control_size, 1002);
        check_error(role::server, m(0x8A, pattern(127)), error::bad_control_size, 1002);
        check_error(role::client, u(0x88, close_body(1000, std::string(200, 'x'))),
                    error::bad_control_size, 1002);
        // The 7-bit length alone decides: 126 / 127 announce an extended length.
        check_error(role::server, hex("89 FE"), error::bad_control_size, 1002);
        check_error(role::client, hex("89 7F"), error::bad_control_size, 1002);
    }

    TEST_CASE("masking must match the role (RFC 6455 §5.1)") {
        check_error(role::server, hex("81 05 48 65 6c 6c 6f"), error::bad_unmasked_frame, 1002);
        check_error(role::server, u(0x89, ""), error::bad_unmasked_frame, 1002);
        check_error(role::client, hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"), error::bad_masked_frame,
                    1002);
        check_error(role::client, m(0x8A, ""), error::bad_masked_frame, 1002);
    }

    TEST_CASE("header checks run in the documented order") {
        // RSV before opcode before control rules before masking before sequencing.
        check_error(role::server, u(0xF3, ""), error::bad_reserved_bits, 1002);
        check_error(role::server, u(0x03, ""), error::bad_opcode, 1002);
        check_error(role::server, u(0x09, pattern(126)), error::bad_control_fragment, 1002);
        check_error(role::server, u(0x89, pattern(126)), error::bad_control_size, 1002);
        check_error(role::server, u(0x80, "x"), error::bad_unmasked_frame, 1002);
        check_error(role::server, m(0x80, pattern(70000)), error::bad_continuation, 1002);
    }

    TEST_CASE("continuation without an open message is rejected (RFC 6455 §5.4)") {
        check_error(role::server, m(0x80, "x"), error::bad_continuation, 1002);
        check_error(role::server, m(0x00, "x"), error::bad_continuation, 1002);
        check_all(role::server, m(0x01, "a") + m(0x80, "b") + m(0x80, "c"),
                  {text("ab"), err(error::bad_continuation)});
        check_all(role::server, m(0x81, "a") + m(0x00, "b"),
                  {text("a"), err(error::bad_continuation)});
    }

    TEST_CASE("a new data frame inside an open fragmented message is rejected (RFC 6455 §5.4)") {
        check_error(role::server, m(0x01, "a") + m(0x81, "b"), error::bad_data_frame, 1002);
        check_error(role::server, m(0x02, "a") + m(0x82, "b"), error::bad_data_frame, 1002);
        check_error(role::server, m(0x01, "a") + m(0x00, "b") + m(0x02, "c"), error::bad_data_frame,
                    1002);
        check_all(role::client, u(0x01, "a") + u(0x89, "") + u(0x81, "b"),
                  {ping({}), err(error::bad_data_frame)});
    }

    // ---------------------------------------------------------------------- size limits
    TEST_CASE("frame_too_big at the exact limit (limit passes, limit + 1 fails)") {
        frame_limits lim;
        lim.max_frame_size = 100;
        check_all(role::server, m(0x82, pattern(100)), {binary(pattern(100))}, lim);
        check_error(role::server, m(0x82, pattern(101)), error::frame_too_big, 1009, lim);
        check_error(role::server, m(0x01, "a") + m(0x80, pattern(101)), error::frame_too_big, 1009,
                    lim);
        lim.max_frame_size = 300;
        check_all(role::server, m(0x82, pattern(300)), {binary(pattern(300))}, lim);
        check_error(role::server, m(0x82, pattern(301)), error::frame_too_big, 1009, lim);
        // Decided from the header: nothing of the payload has to arrive.
        check_error(role::server, hex("82 FE 01 2D"), error::frame_too_big, 1009, lim);
        // The frame limit covers control frames too.
        lim.max_frame_size = 10;
        check_all(role::server, m(0x89, pattern(10)), {ping(pattern(10))}, lim);
        check_error(role::server, m(0x89, pattern(11)), error::frame_too_big, 1009, lim);
        // The default limit refuses a 4 GiB frame from its header.
        check_error(role::client, hex("82 7F 00 00 00 01 00 00 00 00"), error::frame_too_big, 1009);
    }

    TEST_CASE("message_too_big at the exact limit (limit passes, limit + 1 fails)") {
        frame_limits lim;
        lim.max_message_size = 100;
        check_all(role::server, m(0x82, pattern(100)), {binary(pattern(100))}, lim);
        check_error(role::server, m(0x82, pattern(101)), error::message_too_big, 1009, lim);

        const bytes p = pattern(100);
        const bytes first(p.begin(), p.begin() + 60);
        const bytes rest(p.begin() + 60, p.end());
        check_all(role::server, m(0x02, first) + m(0x89, pattern(50)) + m(0x80, rest),
                  {ping(pattern(50)), binary(p)}, lim);
        check_error(role::server, m(0x02, first) + m(0x80, rest + hex("00")),
                    error::message_too_big, 1009, lim);
        check_error(role::server, m(0x02, first) + m(0x00, rest) + m(0x80, hex("00")),
                    error::message_too_big, 1009, lim);
        // The limit is per message: the next message starts from zero.
        check_all(role::server, m(0x02, first) + m(0x80, rest) + m(0x82, p), {binary(p), binary(p)},
                  lim);
    }

    TEST_CASE("set_limits applies from the next frame header") {
        message_decoder d(role::client);
        bytes in = u(0x82, pattern(50));
        std::size_t used = 0;
        CHECK(d.next(in, used).kind == event_kind::message);
        d.set_limits({40, 1000});
        CHECK(d.limits().max_frame_size == 40);
        bytes in2 = u(0x82, pattern(50));
        const auto ev = d.next(in2, used);
        CHECK(ev.kind == event_kind::error);
        CHECK(ev.ec == make_error_code(error::frame_too_big));
    }

    // ---------------------------------------------------------------------- close frames
    TEST_CASE("close frame body: empty, code, code + reason (RFC 6455 §5.5.1)") {
        check_all(role::server, m(0x88, ""), {closed_empty()});
        check_all(role::server, m(0x88, close_body(1000)), {closed(1000, "")});
        check_all(role::server, m(0x88, close_body(1001, "bye \xE2\x82\xAC")),
                  {closed(1001, "bye \xE2\x82\xAC")});
        check_all(role::client, u(0x88, close_body(3000, std::string(123, 'r'))),
                  {closed(3000, std::string(123, 'r'))});
    }

    TEST_CASE("close frame with a 1-byte body is rejected (RFC 6455 §5.5.1)") {
        check_error(role::server, m(0x88, hex("03")), error::bad_close_size, 1002);
    }

    TEST_CASE("close codes not allowed on the wire are rejected (RFC 6455 §7.4)") {
        for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
            CAPTURE(code);
            check_error(role::server, m(0x88, close_body(code)), error::bad_close_code, 1002);
        }
    }

    TEST_CASE("close codes 1000-1003, 1007-1014, 3000 and 4999 are accepted (RFC 6455 §7.4)") {
        for (std::uint16_t code :
             {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999}) {
            CAPTURE(code);
            check_all(role::server, m(0x88, close_body(code, "ok")), {closed(code, "ok")});
        }
    }

    TEST_CASE("close reason that is not UTF-8 is rejected with 1007 (RFC 6455 §5.5.1)") {
        check_error(role::server, m(0x88, close_body(1000) + hex("FF")), error::bad_close_payload,
                    1007);
        check_error(role::server, m(0x88, close_body(1000) + hex("61 E2 82")),
                    error::bad_close_payload, 1007);
        check_error(role::client, u(0x88, close_body(1000) + hex("ED A0 80")),
                    error::bad_close_payload, 1007);
    }

    TEST_CASE("everything after a close is ignored (RFC 6455 §5.5.1)") {
        check_all(role::server, m(0x88, close_body(1000)) + m(0x81, "x") + hex("FF FF FF"),
                  {closed(1000, "")});

        message_decoder d(role::server);
        bytes in = m(0x88, "") + m(0x81, "after");
        std::size_t used = 0;
        CHECK(d.next(in, used).kind == event_kind::close);
        CHECK(used == 6);
        bytes rest(in.begin() + 6, in.end());
        const auto ev = d.next(rest, used);
        CHECK(ev.kind == event_kind::need_more);
        CHECK(used == rest.size());
    }

    // ------------------------------------------------------------ whole-frame fast path
    TEST_CASE("fast path: data frames of every size class agree with the general path") {
        std::mt19937 rng(20240703);
        const std::size_t sizes[] = {0,   1,   2,   3,   4,   5,    7,    8,    9,   15,
                                     16,  17,  31,  32,  33,  63,   64,   65,   100, 124,
                                     125, 126, 127, 128, 200, 1000, 4096, 65535};
        for (std::size_t n : sizes) {
            CAPTURE(n);
            const bytes ascii(n, std::byte{'q'});
            const bytes bin = pattern(n, static_cast<unsigned>(n));
            bytes utf8 = random_utf8(n, rng);
            // Two frames back to back, then a third: the fast path runs after itself.
            const auto wire_s = m(0x81, ascii) + m(0x82, bin) + m(0x81, utf8);
            const auto got = check_paths_agree(role::server, wire_s);
            CHECK(got.events ==
                  std::vector<rec>{msg(opcode::text, ascii), binary(bin), msg(opcode::text, utf8)});
            const auto wire_c = u(0x81, ascii) + u(0x82, bin) + u(0x81, utf8);
            CHECK(check_paths_agree(role::client, wire_c).events == got.events);
        }
    }

    TEST_CASE("fast path: invalid UTF-8 at every position agrees with the general path") {
        // One bad sequence at every offset of 7-bit and 16-bit frames: inside and across the
        // 32/16-byte vectors, the word and the last bytes of the fused unmask-and-ASCII test,
        // and as a code point cut off at the end of the frame.
        const bytes bads[] = {hex("80"),       hex("FF"),          hex("C0 80"), hex("E2 41"),
                              hex("ED A0 80"), hex("F4 90 80 80"), hex("E2 82"), hex("F0 9F 98")};
        for (std::size_t n : {std::size_t{40}, std::size_t{130}}) {
            for (std::size_t at = 0; at < n; ++at) {
                for (const bytes& bad : bads) {
                    CAPTURE(n);
                    CAPTURE(at);
                    CAPTURE(describe(msg(opcode::text, bad)));
                    bytes p(n, std::byte{'a'});
                    std::copy_n(bad.begin(), std::min(bad.size(), n - at),
                                p.begin() + static_cast<std::ptrdiff_t>(at));
                    const auto got = check_paths_agree(role::server, m(0x81, p) + m(0x81, "after"));
                    REQUIRE_FALSE(got.events.empty());
                    CHECK(got.events[0] == err(error::bad_frame_payload));
                }
            }
        }
        // Valid multi-byte text at every offset passes.
        for (std::size_t at = 0; at + 4 <= 70; ++at) {
            bytes p(70, std::byte{'a'});
            const bytes c = hex("F0 9F 98 80");
            std::copy(c.begin(), c.end(), p.begin() + static_cast<std::ptrdiff_t>(at));
            CHECK(check_paths_agree(role::server, m(0x81, p)).events ==
                  std::vector<rec>{msg(opcode::text, p)});
        }
    }

    TEST_CASE("fast path: every header it must not take agrees with the general path") {
        const bytes p = txt("payload");
        const std::vector<bytes> wires = {
            m(0x01, "frag") + m(0x80, "ment") + m(0x81, "next"),  // fragmented, then whole
            m(0x89, "ping") + m(0x81, "x"),                       // control first
            m(0x01, "open") + m(0x81, "x"),                       // §5.4: message open
            m(0x81 | 0x40, p),
            m(0x81 | 0x20, p),
            m(0x82 | 0x10, p),  // RSV bits
            m(0x83, p),
            m(0x8B, p),                    // reserved opcodes
            m(0x80, p),                    // lone continuation
            u(0x81, p),                    // unmasked to a server
            frame(0x81, p, &test_key, 2),  // non-minimal 16-bit
            frame(0x82, pattern(125), &test_key, 2),
            frame(0x81, p, &test_key, 8),                   // non-minimal 64-bit
            frame(0x82, pattern(70000), &test_key, 8),      // 64-bit, general path
            m(0x88, close_body(1000, "bye")) + m(0x81, p),  // nothing after a close
        };
        for (const bytes& w : wires) {
            CAPTURE(w.size());
            check_paths_agree(role::server, w);
        }
        // A masked frame to a client.
        check_paths_agree(role::client, m(0x81, p) + u(0x81, p));
        check_paths_agree(role::client, u(0x81, p) + m(0x82, p));
    }

    TEST_CASE("fast path: frame and message limits at the exact boundary") {
        for (std::size_t n :
             {std::size_t{10}, std::size_t{125}, std::size_t{126}, std::size_t{300}}) {
            CAPTURE(n);
            const bytes wire = m(0x81, bytes(n, std::byte{'a'})) + m(0x82, pattern(n));
            for (std::uint64_t frame_limit : {n - 1, n, n + 1}) {
                for (std::uint64_t message_limit : {n - 1, n, n + 1}) {
                    CAPTURE(frame_limit);
                    CAPTURE(message_limit);
                    const auto got =
                        check_paths_agree(role::server, wire, {frame_limit, message_limit});
                    REQUIRE_FALSE(got.events.empty());
                    if (frame_limit < n)
                        CHECK(got.events[0] == err(error::frame_too_big));
                    else if (message_limit < n)
                        CHECK(got.events[0] == err(error::message_too_big));
                    else
                        CHECK(got.events.size() == 2);
                }
            }
        }
        // set_limits between two whole frames applies to the second.
        message_decoder d(role::server);
        bytes wire = m(0x81, "0123456789") + m(0x81, "0123456789");
        std::size_t used = 0;
        CHECK(d.next(wire, used).kind == event_kind::message);
        d.set_limits({9, 100});
        bytes rest(wire.begin() + static_cast<std::ptrdiff_t>(used), wire.end());
        CHECK(record(d.next(rest, used)) == err(error::frame_too_big));
    }

    // --------------------------------------------------------------------------- UTF-8
    TEST_CASE("text that is not UTF-8 is rejected with 1007 (RFC 6455 §8.1)") {
        check_error(role::server, m(0x81, hex("48 FF 6c")), error::bad_frame_payload, 1007);
        check_error(role::server, m(0x81, hex("ED A0 80")), error::bad_frame_payload, 1007);
        // A message may not end inside a code point.
        check_error(role::server, m(0x81, hex("48 E2 82")), error::bad_frame_payload, 1007);
        check_error(role::server, m(0x01, hex("48 E2")) + m(0x80, hex("82")),
                    error::bad_frame_payload, 1007);
        // Binary messages are not checked.
        check_all(role::server, m(0x82, hex("48 FF E2 82")), {binary(hex("48 FF E2 82"))});
    }

    TEST_CASE("fail-fast UTF-8: error before the rest of a short (waiting) frame arrives") {
        // A 10-byte text frame, within contiguous_limit 16 and 64 KiB (the waiting path) and
        // streamed with limit 0; only its header and first payload byte are ever sent.
        const bytes whole = m(0x81, hex("FF 61 62 63 64 65 66 67 68 69"));
        check_all(role::server, bytes(whole.begin(), whole.begin() + 7),
                  {err(error::bad_frame_payload)});
        // The invalid byte in the middle, found with only the bytes up to it.
        const bytes mid = m(0x81, hex("61 62 63 F4 90 80 80 64 65 66"));
        check_all(role::server, bytes(mid.begin(), mid.begin() + 6 + 5),
                  {err(error::bad_frame_payload)});
    }

    TEST_CASE("fail-fast UTF-8: error before the rest of a long (streamed) frame arrives") {
        // 100000 bytes exceed every contiguous_limit used: always streamed.
        const bytes whole = m(0x81, txt("abc") + hex("C0 80") + pattern(99995));
        check_all(role::server, bytes(whole.begin(), whole.begin() + 14 + 5),
                  {err(error::bad_frame_payload)});
        // 1000 bytes: streamed with limits 0 and 16, waited for with 64 KiB.
        const bytes medium = m(0x81, txt("abc") + hex("E0 9F") + bytes(995, std::byte{'a'}));
        check_all(role::server, bytes(medium.begin(), medium.begin() + 8 + 5),
                  {err(error::bad_frame_payload)});
    }

    TEST_CASE("fail-fast UTF-8 across fragments: fragment 2 fails before fragment 3 arrives") {
        check_all(role::server, m(0x01, "ab") + m(0x00, hex("63 FF")),
                  {err(error::bad_frame_payload)});
        check_all(role::client, u(0x01, "ab") + u(0x89, "") + u(0x00, hex("63 EF 41")) + hex("80"),
                  {ping({}), err(error::bad_frame_payload)});
        // Invalid only in combination with fragment 1's trailing lead byte.
        check_all(role::server, m(0x01, hex("61 E2")) + m(0x00, hex("41")),
                  {err(error::bad_frame_payload)});
    }

    TEST_CASE("a code point split across fragments is valid") {
        check_all(role::server, m(0x01, hex("61 E2")) + m(0x00, hex("82")) + m(0x80, hex("AC")),
                  {text("a\xE2\x82\xAC")});
        check_all(role::client, u(0x01, hex("F0 9F")) + u(0x8A, "") + u(0x80, hex("98 80")),
                  {pong({}), text("\xF0\x9F\x98\x80")});
    }

    TEST_CASE("UTF-8 validation restarts with each message") {
        // The second message starts with a continuation byte: invalid on its own.
        check_all(role::server, m(0x81, "ok") + m(0x81, hex("80")),
                  {text("ok"), err(error::bad_frame_payload)});
        // A binary message in between does not disturb the text ones.
        check_all(role::server, m(0x81, "a") + m(0x82, hex("FF")) + m(0x81, "b"),
                  {text("a"), binary(hex("FF")), text("b")});
    }

    // -------------------------------------------------------------- control interleaving
    TEST_CASE("control frames between fragments (RFC 6455 §5.4)") {
        check_all(role::server, m(0x01, "Hel") + m(0x89, "p") + m(0x80, "lo"),
                  {ping(txt("p")), text("Hello")});
        check_all(
            role::server,
            m(0x02, "a") + m(0x8A, "x") + m(0x00, "b") + m(0x89, "") + m(0x89, "y") + m(0x80, "c"),
            {pong(txt("x")), ping({}), ping(txt("y")), binary(txt("abc"))});

        message_decoder d(role::server);
        bytes in = m(0x01, "Hel") + m(0x89, "p");
        std::size_t used = 0;
        const auto ev = d.next(in, used);
        CHECK(ev.kind == event_kind::ping);
        CHECK(d.in_message());
    }

    TEST_CASE("close between fragments ends decoding") {
        check_all(role::server, m(0x01, "Hel") + m(0x88, close_body(1000)) + m(0x80, "lo"),
                  {closed(1000, "")});
    }

    TEST_CASE("empty frames in every position") {
        check_all(role::server, m(0x81, ""), {text("")});
        check_all(role::server, m(0x82, ""), {binary({})});
        check_all(role::server, m(0x01, "") + m(0x00, "") + m(0x80, ""), {text("")});
        check_all(role::server, m(0x01, "") + m(0x89, "") + m(0x80, "x"), {ping({}), text("x")});
        check_all(role::server, m(0x01, "ab") + m(0x00, "") + m(0x80, "c"), {text("abc")});
        check_all(role::server, m(0x02, "ab") + m(0x80, ""), {binary(txt("ab"))});
        check_all(role::server, m(0x89, "") + m(0x8A, "") + m(0x88, ""),
                  {ping({}), pong({}), closed_empty()});
    }

    // ---------------------------------------------------------------------- zero copy
    TEST_CASE("zero-copy: a single-frame message fed whole points into the input") {
        message_decoder d(role::server);
        bytes in = hex("81 85 37 fa 21 3d 7f 9f 4d 51 58") + m(0x82, pattern(1000));
        std::size_t used = 0;
        auto ev = d.next(in, used);
        REQUIRE(ev.kind == event_kind::message);
        CHECK(bytes(ev.payload.begin(), ev.payload.end()) == txt("Hello"));
        CHECK(points_into(ev.payload, in));
        CHECK(used == 11);

        auto rest = std::span(in).subspan(used);
        ev = d.next(rest, used);
        REQUIRE(ev.kind == event_kind::message);
        CHECK(bytes(ev.payload.begin(), ev.payload.end()) == pattern(1000));
        CHECK(points_into(ev.payload, rest));
    }

    TEST_CASE("zero-copy: a fragmented message is assembled outside the input") {
        message_decoder d(role::client);
        bytes in = hex("01 03 48 65 6c 80 02 6c 6f");
        std::size_t used = 0;
        const auto ev = d.next(in, used);
        REQUIRE(ev.kind == event_kind::message);
        CHECK(bytes(ev.payload.begin(), ev.payload.end()) == txt("Hello"));
        CHECK(!points_into(ev.payload, in));
        CHECK(used == in.size());
    }

    TEST_CASE("zero-copy: a frame within contiguous_limit waits in the caller's buffer") {
        message_decoder d(role::server, {}, 16);
        const bytes wire = m(0x81, "0123456789");
        bytes buf(wire.begin(), wire.begin() + 9);  // header + 3 payload bytes
        std::size_t used = 0;
        auto ev = d.next(buf, used);
        CHECK(ev.kind == event_kind::need_more);
        CHECK(ev.needed == 7);
        CHECK(used == 6);  // the header only; the payload stays
        buf.erase(buf.begin(), buf.begin() + 6);
        buf.insert(buf.end(), wire.begin() + 9, wire.end());
        ev = d.next(buf, used);
        REQUIRE(ev.kind == event_kind::message);
        CHECK(bytes(ev.payload.begin(), ev.payload.end()) == txt("0123456789"));
        CHECK(points_into(ev.payload, buf));
        CHECK(used == 10);

        // Longer than the limit: streamed, consumed as it arrives, assembled.
        message_decoder s(role::server, {}, 16);
        const bytes longer = m(0x82, pattern(40));
        bytes part(longer.begin(), longer.begin() + 20);
        ev = s.next(part, used);
        CHECK(ev.kind == event_kind::need_more);
        CHECK(ev.needed == 26);
        CHECK(used == 20);
        bytes tail(longer.begin() + 20, longer.end());
        ev = s.next(tail, used);
        REQUIRE(ev.kind == event_kind::message);
        CHECK(bytes(ev.payload.begin(), ev.payload.end()) == pattern(40));
        CHECK(!points_into(ev.payload, tail));
    }

    TEST_CASE("need_more reports the missing header bytes") {
        message_decoder d(role::server);
        bytes one = hex("81");
        std::size_t used = 0;
        auto ev = d.next(one, used);
        CHECK(ev.kind == event_kind::need_more);
        CHECK(ev.needed == 1);
        CHECK(used == 1);
        bytes more = hex("FE 01");
        ev = d.next(more, used);
        CHECK(ev.kind == event_kind::need_more);
        CHECK(ev.needed == 5);  // one length byte and the masking key
        CHECK(used == 2);
    }

    TEST_CASE("shrink() does not drop a frame being streamed") {
        message_decoder d(role::client, {}, 0);
        const bytes wire = u(0x82, pattern(1000));
        bytes part(wire.begin(), wire.begin() + 500);
        std::size_t used = 0;
        CHECK(d.next(part, used).kind == event_kind::need_more);
        d.shrink();
        bytes rest(wire.begin() + 500, wire.end());
        const auto ev = d.next(rest, used);
        REQUIRE(ev.kind == event_kind::message);
        CHECK(bytes(ev.payload.begin(), ev.payload.end()) == pattern(1000));
        d.shrink();
        bytes again = u(0x02, "a") + u(0x80, "b");
        const auto ev2 = d.next(again, used);
        REQUIRE(ev2.kind == event_kind::message);
        CHECK(bytes(ev2.payload.begin(), ev2.payload.end()) == txt("ab"));
    }

    TEST_CASE("steady state: 1000 messages decode without allocating") {
        std::mt19937 rng(7);
        bytes wire;
        std::vector<bool> fragmented;
        for (int i = 0; i < 1000; ++i) {
            const bytes p = i % 2 ? txt(std::string(rng() % 300, 'a')) : pattern(rng() % 300, i);
            if (i % 10 == 0) {
                const bytes a(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(p.size() / 2));
                const bytes b(p.begin() + static_cast<std::ptrdiff_t>(p.size() / 2), p.end());
                wire = wire + m(0x02, a) + m(0x80, b);
                fragmented.push_back(true);
            } else {
                wire = wire + m(i % 2 ? 0x81 : 0x82, p) + (i % 7 == 0 ? m(0x89, "p") : bytes{});
                fragmented.push_back(false);
            }
        }
        message_decoder d(role::server);
        // Warm up the assembly buffer to its largest size.
        bytes warm = m(0x02, pattern(150)) + m(0x80, pattern(150));
        std::size_t used = 0;
        const auto first = d.next(warm, used);
        REQUIRE(first.kind == event_kind::message);
        const std::byte* assembly = first.payload.data();

        std::vector<int> in_place(1000, -1);
        std::vector<int> same_assembly(1000, -1);
        int n = 0;
        std::span<std::byte> rest(wire);
        g_counting = true;
        g_allocations = 0;
        while (n < 1000) {
            const auto ev = d.next(rest, used);
            if (ev.kind == event_kind::message) {
                in_place[n] = points_into(ev.payload, rest) ? 1 : 0;
                same_assembly[n] = ev.payload.data() == assembly ? 1 : 0;
                ++n;
            } else if (ev.kind != event_kind::ping) {
                break;
            }
            rest = rest.subspan(used);
        }
        g_counting = false;
        CHECK(g_allocations == 0);
        REQUIRE(n == 1000);
        CHECK(rest.empty());
        for (int i = 0; i < 1000; ++i) {
            CAPTURE(i);
            if (fragmented[i])
                CHECK(same_assembly[i] == 1);
            else
                CHECK(in_place[i] == 1);
        }
    }

    // ------------------------------------------------------------- direct payload reads
    TEST_CASE("direct reads: text and binary of 70 000 B and 1 MiB agree with next()") {
        std::mt19937 rng(6455);
        const bytes t70 = random_utf8(70000, rng);
        const bytes b70 = pattern(70000, 3);
        const bytes t1m = random_utf8(1024 * 1024, rng);
        const bytes b1m = pattern(1024 * 1024, 11);
        for (unsigned phase = 0; phase < 4; ++phase) {
            CAPTURE(phase);
            // A small frame after each large one: its header comes through next() again.
            const bytes wire70 = fragments(opcode::text, t70, {}, phase) + m(0x81, "after") +
                                 fragments(opcode::binary, b70, {}, phase + 1) + m(0x89, "p") +
                                 m(0x82, "x");
            const std::size_t direct70 =
                check_direct(wire70, {msg(opcode::text, t70), text("after"),
                                      msg(opcode::binary, b70), ping(txt("p")), binary(txt("x"))});
            // With a 64 KiB read buffer: each frame but the payload bytes that came in the
            // read with its header (and, for the second, with the 11-byte "after" frame).
            CHECK(direct70 == (70000 - (64 * 1024 - 14)) + (70000 - (64 * 1024 - 11 - 14)));
        }
        // 1 MiB: 1-byte chunks only for the text (1 M commits is enough once).
        const bytes wire_t = fragments(opcode::text, t1m, {}, 1) + m(0x81, "after");
        CHECK(check_direct(wire_t, {msg(opcode::text, t1m), text("after")}) ==
              1024 * 1024 - (64 * 1024 - 14));
        const bytes wire_b = fragments(opcode::binary, b1m, {}, 2) + m(0x82, "after");
        CHECK(check_direct(wire_b, {msg(opcode::binary, b1m), binary(txt("after"))},
                           ~std::size_t{0}, {}, false) == 1024 * 1024 - (64 * 1024 - 14));
    }

    TEST_CASE("direct reads: fragmented messages with large fragments agree with next()") {
        std::mt19937 rng(17);
        const bytes t = random_utf8(600000, rng);
        const bytes b = pattern(500000, 5);
        for (unsigned phase = 0; phase < 4; ++phase) {
            CAPTURE(phase);
            // Large and small fragments, a ping between two of them, a first fragment that
            // waits whole in the read buffer (below contiguous_limit) and a tiny last one.
            bytes wire = fragments(opcode::text, t, {70000, 100, 200000}, phase);
            const bytes head = fragments(opcode::binary, b, {1000, 300000, 198999}, phase + 2);
            // Put a ping between the binary message's first and second fragments.
            const std::size_t first_frame = 2 + 2 + 4 + 1000;
            wire = wire + bytes(head.begin(), head.begin() + first_frame) + m(0x89, "mid") +
                   bytes(head.begin() + first_frame, head.end()) + m(0x81, "z");
            check_direct(
                wire, {msg(opcode::text, t), ping(txt("mid")), msg(opcode::binary, b), text("z")},
                ~std::size_t{0}, {}, phase == 0);
        }
    }

    TEST_CASE("direct reads: invalid UTF-8 inside a direct chunk fails at the same point") {
        // 1007 as on the plain path, reported by the call that hands over the bad byte.
        CHECK(wscoro::close_code_for(make_error_code(error::bad_frame_payload)) == 1007);
        const std::size_t header = 2 + 8 + 4;
        for (const std::size_t bad : {std::size_t{40000}, std::size_t{65536}, std::size_t{69999}}) {
            CAPTURE(bad);
            // 0xFF is never UTF-8; 0xC3 followed by ASCII fails at the ASCII byte.
            const bytes t1 = with_byte_at(letters(70000), bad, 0xFF);
            check_direct(fragments(opcode::text, t1, {}, 1), {err(error::bad_frame_payload)},
                         header + bad);
            const bytes t2 = with_byte_at(letters(70000), bad - 1, 0xC3);
            check_direct(fragments(opcode::text, t2, {}, 2), {err(error::bad_frame_payload)},
                         header + bad);
        }
        // In a 1 MiB message, and in a continuation frame read directly (after a first
        // fragment that was valid): the first fragment's header and payload come first.
        const bytes big = with_byte_at(letters(1024 * 1024), 700001, 0xFF);
        check_direct(fragments(opcode::text, big, {}, 3), {err(error::bad_frame_payload)},
                     header + 700001, {}, false);
        const bytes frag = with_byte_at(letters(300000), 250000, 0xC0);
        const bytes fwire = fragments(opcode::text, frag, {100000}, 0);
        check_direct(fwire, {err(error::bad_frame_payload)}, (header + 100000) + header + 150000);
        // A message that ends inside a code point fails when its last byte is committed.
        bytes cut = letters(70000);
        cut.back() = std::byte{0xE2};
        check_direct(fragments(opcode::text, cut, {}, 0), {err(error::bad_frame_payload)},
                     header + 69999);
        // Binary is not UTF-8: the same bytes pass.
        const bytes not_text = with_byte_at(letters(70000), 40000, 0xFF);
        check_direct(fragments(opcode::binary, not_text, {}, 0), {msg(opcode::binary, not_text)});
    }

    TEST_CASE("direct reads: a code point straddling two direct chunks") {
        // "😀" (F0 9F 98 80) at payload offset 69000 of a 70 000-byte text frame. The first
        // read takes the header and 100 payload bytes; the direct chunks then split the
        // code point after each of its first three bytes.
        const std::size_t at = 69000;
        bytes t = letters(70000);
        const std::uint8_t smile[4] = {0xF0, 0x9F, 0x98, 0x80};
        for (int i = 0; i < 4; ++i)
            t[at + i] = std::byte{smile[i]};
        const bytes wire = fragments(opcode::text, t, {}, 3) + m(0x81, "ok");
        for (std::size_t split = 1; split < 4; ++split) {
            CAPTURE(split);
            for (const std::size_t read_size : {std::size_t{14 + 100}, std::size_t{14 + 101}}) {
                message_decoder d(role::server, {}, 64 * 1024 - max_header_size);
                const std::size_t first = at + split - (read_size - 14);
                const direct_run res =
                    feed_direct(d, wire, {read_size, 1, false}, cycle({first, 0}));
                CHECK(res.violation == "");
                CHECK(res.direct_calls == 2);
                CHECK_EQ(describe(res.events),
                         describe(std::vector<rec>{msg(opcode::text, t), text("ok")}));
                // The same split with the code point made invalid (its last byte ASCII):
                // the second chunk fails, not the first.
                const bytes bad = with_byte_at(t, at + 3, 'A');
                const bytes bad_wire = fragments(opcode::text, bad, {}, 3);
                message_decoder e(role::server, {}, 64 * 1024 - max_header_size);
                const direct_run bres =
                    feed_direct(e, bad_wire, {read_size, 1, false}, cycle({first, 0}));
                CHECK(bres.direct_calls == 2);
                CHECK_EQ(describe(bres.events),
                         describe(std::vector<rec>{err(error::bad_frame_payload)}));
            }
        }
        // Straddling a direct chunk and the next fragment (read directly too), and straddling
        // bytes streamed by next() and a direct chunk: covered by check_direct's 1- and
        // 7-byte chunks over random UTF-8; here explicitly across two fragments.
        bytes two = letters(140000);
        for (int i = 0; i < 4; ++i)
            two[69998 + i] = std::byte{smile[i]};
        check_direct(fragments(opcode::text, two, {70000}, 1), {msg(opcode::text, two)});
    }

    TEST_CASE("direct reads: limits still come from the header") {
        // max_message_size: the second fragment's header (through next()) is refused
        // before any of its payload; the first fragment was read directly.
        const bytes p = pattern(140000, 9);
        const frame_limits lim{1024 * 1024, 100000};
        const bytes wire = fragments(opcode::binary, p, {70000}, 0);
        const std::size_t second_header = 14 + 70000 + 10;  // through its 64-bit length
        check_direct(wire, {err(error::message_too_big)}, second_header - 1, lim);
        // A single frame over max_message_size or max_frame_size: refused at its header, and
        // no direct span is ever offered for it.
        const bytes one = fragments(opcode::binary, pattern(100001, 1), {}, 0);
        check_direct(one, {err(error::message_too_big)}, 9, lim);
        check_direct(one, {err(error::frame_too_big)}, 9, {100000, 1024 * 1024});
        for (const frame_limits& l : {lim, frame_limits{100000, 1024 * 1024}}) {
            message_decoder d(role::server, l, 0);
            bytes head(one.begin(), one.begin() + 14);
            std::size_t used = 0;
            CHECK(d.next(head, used).kind == event_kind::error);
            CHECK(d.direct_payload_buffer(1).empty());
            // Sticky, through commit_direct as well.
            const auto ev = d.commit_direct(0);
            CHECK(ev.kind == event_kind::error);
        }
        // Exactly at the limit: accepted, and the span reserves no more than the frame.
        const bytes exact = fragments(opcode::binary, pattern(100000, 1), {}, 0);
        check_direct(exact, {msg(opcode::binary, pattern(100000, 1))}, ~std::size_t{0}, lim);
    }

    TEST_CASE("direct reads: the span is the frame's remaining payload, and only when offered") {
        const bytes p = pattern(70000, 4);
        const bytes wire = fragments(opcode::binary, p, {}, 0) + m(0x82, "n");
        message_decoder d(role::server, {}, 64 * 1024 - max_header_size);
        CHECK(d.direct_payload_buffer(1).empty());  // between frames
        // Header and 1000 payload bytes through next(): streamed (the frame is longer than
        // contiguous_limit), all consumed.
        bytes first(wire.begin(), wire.begin() + 14 + 1000);
        std::size_t used = 0;
        auto ev = d.next(first, used);
        REQUIRE(ev.kind == event_kind::need_more);
        CHECK(used == first.size());
        CHECK(ev.needed == 69000);
        auto span = d.direct_payload_buffer(1);
        REQUIRE(span.size() == 69000);
        CHECK(d.direct_payload_buffer(69000).data() == span.data());  // the same span again
        CHECK(d.direct_payload_buffer(69001).empty());                // less than min_bytes left
        // A partial commit: the rest of the frame is offered, right after it.
        std::memcpy(span.data(), wire.data() + 14 + 1000, 5);
        ev = d.commit_direct(5);
        CHECK(ev.kind == event_kind::need_more);
        CHECK(ev.needed == 68995);
        CHECK(d.commit_direct(0).needed == 68995);
        const auto rest = d.direct_payload_buffer(1);
        REQUIRE(rest.size() == 68995);
        CHECK(rest.data() == span.data() + 5);
        d.shrink();  // a frame is being assembled: must not drop it
        CHECK(d.direct_payload_buffer(1).data() == rest.data());
        std::memcpy(rest.data(), wire.data() + 14 + 1005, rest.size());
        ev = d.commit_direct(rest.size());
        REQUIRE(ev.kind == event_kind::message);
        CHECK(bytes(ev.payload.begin(), ev.payload.end()) == p);
        CHECK(ev.payload.data() == span.data() - 1000);  // the assembly buffer
        CHECK(d.direct_payload_buffer(1).empty());       // a header comes next
        bytes tail(wire.begin() + 14 + 70000, wire.end());
        ev = d.next(tail, used);
        REQUIRE(ev.kind == event_kind::message);
        CHECK(bytes(ev.payload.begin(), ev.payload.end()) == txt("n"));

        // A frame within contiguous_limit waits in the caller's buffer (handed out in place
        // later): never direct, whether or not some of it is there.
        message_decoder w(role::server, {}, 64 * 1024 - max_header_size);
        const bytes small = m(0x82, pattern(1000));
        bytes part(small.begin(), small.begin() + 8);
        CHECK(w.next(part, used).kind == event_kind::need_more);
        CHECK(w.direct_payload_buffer(1).empty());
        // The header was consumed; now payload bytes only.
        bytes payload_part(small.begin() + 8, small.begin() + 18);
        CHECK(w.next(payload_part, used).kind == event_kind::need_more);
        CHECK(used == 0);
        CHECK(w.direct_payload_buffer(1).empty());
        // Control frames never: a ping split after its header.
        message_decoder c(role::server, {}, 0);
        const bytes pingf = m(0x89, "hello");
        bytes ph(pingf.begin(), pingf.begin() + 6);
        CHECK(c.next(ph, used).kind == event_kind::need_more);
        CHECK(c.direct_payload_buffer(1).empty());
        // Payload bytes left unconsumed (contiguous_limit lowered while they wait): not
        // direct until next() has taken them.
        message_decoder q(role::server, {}, 64 * 1024 - max_header_size);
        bytes qa(wire.begin(), wire.begin() + 14);
        CHECK(q.next(qa, used).kind == event_kind::need_more);
        CHECK(!q.direct_payload_buffer(1).empty());  // 70000 > contiguous_limit: streamed
        message_decoder q2(role::server, {}, 100000);
        CHECK(q2.next(qa, used).kind == event_kind::need_more);
        bytes qb(wire.begin() + 14, wire.begin() + 14 + 500);
        CHECK(q2.next(qb, used).kind == event_kind::need_more);
        CHECK(used == 0);  // waiting whole, 500 bytes prepared in the caller's buffer
        q2.set_contiguous_limit(0);
        CHECK(q2.direct_payload_buffer(1).empty());
        ev = q2.next(qb, used);
        CHECK(used == 500);
        CHECK(q2.direct_payload_buffer(1).size() == 69500);
    }

    TEST_CASE("direct reads: misuse of commit_direct is a sticky application_error") {
        const bytes wire = fragments(opcode::binary, pattern(70000), {}, 0);
        bytes head(wire.begin(), wire.begin() + 14);
        std::size_t used = 0;
        {
            // No span handed out yet.
            message_decoder d(role::server, {}, 0);
            CHECK(d.next(head, used).kind == event_kind::need_more);
            const auto ev = d.commit_direct(10);
            CHECK(ev.kind == event_kind::error);
            CHECK(ev.ec == make_error_code(error::application_error));
            CHECK(d.next(head, used).ec == make_error_code(error::application_error));
            CHECK(wscoro::close_code_for(ev.ec) == 1011);
        }
        {
            // More than the span; and a span made stale by next().
            message_decoder d(role::server, {}, 0);
            CHECK(d.next(head, used).kind == event_kind::need_more);
            const auto span = d.direct_payload_buffer(1);
            CHECK(d.commit_direct(span.size() + 1).kind == event_kind::error);
            message_decoder e(role::server, {}, 0);
            CHECK(e.next(head, used).kind == event_kind::need_more);
            CHECK(!e.direct_payload_buffer(1).empty());
            bytes some(wire.begin() + 14, wire.begin() + 20);
            CHECK(e.next(some, used).kind == event_kind::need_more);
            CHECK(e.commit_direct(1).ec == make_error_code(error::application_error));
        }
        {
            // Between frames.
            message_decoder d(role::server);
            CHECK(d.commit_direct(1).ec == make_error_code(error::application_error));
        }
    }

    TEST_CASE("direct reads: steady state allocates nothing, the buffer is reused") {
        const bytes p = pattern(1024 * 1024, 2);
        const bytes wire =
            fragments(opcode::binary, p, {}, 1) + fragments(opcode::binary, p, {300000, 400000}, 2);
        message_decoder d(role::server, {}, 64 * 1024 - max_header_size);
        // Warm up: grows the assembly buffer to 1 MiB.
        const direct_run warm = feed_direct(d, wire, {64 * 1024, 1, false}, cycle({0}));
        REQUIRE(warm.events.size() == 2);
        g_counting = true;
        g_allocations = 0;
        const auto run_one = [&] {
            // As feed_direct, without its allocating bookkeeping.
            std::size_t at = 0, events = 0;
            std::byte buf[max_header_size];
            while (at < wire.size()) {
                const auto span = d.direct_payload_buffer(1);
                if (!span.empty()) {
                    const std::size_t n = std::min<std::size_t>(span.size(), 64 * 1024);
                    std::memcpy(span.data(), wire.data() + at, n);
                    at += n;
                    const auto ev = d.commit_direct(n);
                    if (ev.kind == event_kind::message) ++events;
                    continue;
                }
                // Every header of `wire` is 14 bytes: read exactly one.
                const std::size_t n = std::min<std::size_t>(14, wire.size() - at);
                std::memcpy(buf, wire.data() + at, n);
                std::size_t used = 0;
                const auto ev = d.next(std::span<std::byte>(buf, n), used);
                at += used;
                if (ev.kind == event_kind::message) ++events;
                if (used != n) break;
            }
            return events;
        };
        const std::size_t events = run_one();
        g_counting = false;
        CHECK(g_allocations == 0);
        CHECK(events == 2);
    }
    // -------------------------------------------------------------------- round trip
    TEST_CASE("randomized round trip: 2000 messages, random fragmentation, pings and chunks") {
        std::mt19937 rng(20240611);
        struct setup {
            role r;
            std::size_t contiguous;
        };
        const setup setups[] = {
            {role::server, 64 * 1024}, {role::server, 0}, {role::client, 16}, {role::server, 1000}};
        for (const setup& s : setups) {
            CAPTURE(static_cast<int>(s.r));
            CAPTURE(s.contiguous);
            bytes wire;
            std::vector<rec> want;
            const auto put = [&](opcode op, bool fin, const bytes& p) {
                mask_key key;
                for (auto& b : key)
                    b = static_cast<std::byte>(rng() & 0xFF);
                append_frame(wire, op, fin, p, s.r == role::server ? &key : nullptr);
            };
            for (int i = 0; i < 500; ++i) {
                const unsigned size_class = rng() % 10;
                const std::size_t size = size_class < 4   ? rng() % 126
                                         : size_class < 8 ? rng() % 4000
                                         : size_class < 9 ? 60000 + rng() % 10001
                                                          : rng() % 70001;
                const bool is_text = rng() % 2 == 0;
                const bytes payload = is_text ? random_utf8(size, rng) : pattern(size, rng());
                const unsigned frames = rng() % 2 == 0 ? 1 : 2 + rng() % 5;
                std::vector<std::size_t> cuts{0};
                for (unsigned f = 1; f < frames; ++f)
                    cuts.push_back(rng() % (payload.size() + 1));
                cuts.push_back(payload.size());
                std::sort(cuts.begin(), cuts.end());
                for (unsigned f = 0; f < frames; ++f) {
                    const bytes part(payload.begin() + static_cast<std::ptrdiff_t>(cuts[f]),
                                     payload.begin() + static_cast<std::ptrdiff_t>(cuts[f + 1]));
                    const opcode op = f > 0     ? opcode::continuation
                                      : is_text ? opcode::text
                                                : opcode::binary;
                    put(op, f + 1 == frames, part);
                    // Events come in wire order: the message when its last frame is done.
                    if (f + 1 == frames)
                        want.push_back(msg(is_text ? opcode::text : opcode::binary, payload));
                    if (rng() % 4 == 0) {
                        const std::size_t body_size = rng() % 126;
                        const bytes body = pattern(body_size, rng());
                        const bool is_ping = rng() % 2 == 0;
                        put(is_ping ? opcode::ping : opcode::pong, true, body);
                        want.push_back(is_ping ? ping(body) : pong(body));
                    }
                }
            }
            message_decoder d(s.r, {}, s.contiguous);
            const run_result res = feed(d, wire, [&]() -> std::size_t {
                return rng() % 2 == 0 ? 1 + rng() % 64 : 1 + rng() % 80000;
            });
            CHECK(res.violation == "");
            CHECK(res.events.size() == want.size());
            std::size_t same = 0;
            while (same < res.events.size() && same < want.size() && res.events[same] == want[same])
                ++same;
            if (same < want.size()) {
                CAPTURE(same);
                CHECK_EQ(same < res.events.size() ? describe(res.events[same]) : "(none)",
                         describe(want[same]));
            }
        }
    }

    TEST_CASE("idle(): only between messages with nothing of the next frame received") {
        // What parking relies on: a new decoder would decode what comes next the same way.
        const mask_key key{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
        std::vector<std::byte> stream;
        append_frame(stream, opcode::text, true, txt("whole"), &key);   // 11 bytes
        append_frame(stream, opcode::text, false, txt("first"), &key);  // a fragment
        append_frame(stream, opcode::ping, true, txt("p"), &key);       // between fragments
        append_frame(stream, opcode::continuation, true, txt("last"), &key);
        message_decoder d(role::server);
        CHECK(d.idle());
        std::vector<bool> idle_after;  // after each byte
        std::vector<event_kind> kinds;
        std::vector<std::byte> buf;
        for (std::size_t i = 0; i < stream.size(); ++i) {
            buf.push_back(stream[i]);
            for (;;) {
                std::size_t consumed = 0;
                const auto ev = d.next(buf, consumed);
                buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(consumed));
                if (ev.kind == event_kind::need_more) break;
                kinds.push_back(ev.kind);
            }
            idle_after.push_back(d.idle());
        }
        const std::vector<event_kind> want{event_kind::message, event_kind::ping,
                                           event_kind::message};
        CHECK(kinds == want);
        // Idle exactly after the first message (byte 11) and after the last (the end).
        for (std::size_t i = 0; i < idle_after.size(); ++i) {
            CAPTURE(i);
            CHECK(idle_after[i] == (i == 10 || i == stream.size() - 1));
        }
        codec legacy(role::server, 8);  // hybi-08: the same decoder
        CHECK(legacy.idle());
        CHECK_FALSE(codec(role::server, 76).idle());  // older formats are never "idle"
    }
}
