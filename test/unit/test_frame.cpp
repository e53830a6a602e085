#include "wscoro/protocol/frame.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "decoder_feed.hpp"
#include "skip_under_valgrind.hpp"
#include "wscoro/error.hpp"

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
}
