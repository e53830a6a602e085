#include "wscoro/protocol/codec.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "decoder_feed.hpp"
#include "wscoro/error.hpp"

namespace {

using namespace wscoro::protocol;
using wscoro::error;
using namespace wscoro_test;

// ---------------------------------------------------------------------------------------
// Byte helpers and independent frame builders: every layout below is written out by hand
// from the drafts, so the decoders are not only tested against the encoders.

// hybi-01..06 layout: byte 0 as given, 7-bit length (126 -> 16-bit, 127 -> 64-bit), payload.
bytes plain(std::uint8_t b0, const bytes& payload) {
    const std::uint64_t n = payload.size();
    bytes out{std::byte{b0}};
    if (n < 126) {
        out.push_back(static_cast<std::byte>(n));
    } else {
        const int ext = n <= 0xFFFF ? 2 : 8;
        out.push_back(static_cast<std::byte>(ext == 2 ? 126 : 127));
        for (int i = ext - 1; i >= 0; --i)
            out.push_back(static_cast<std::byte>(n >> (8 * i)));
    }
    return out + payload;
}
bytes plain(std::uint8_t b0, std::string_view payload) {
    return plain(b0, txt(payload));
}

// hybi-05/06 client frame: the key, then the whole frame XORed with key[i mod 4].
bytes masked05(const mask_key& key, const bytes& frame) {
    bytes out(key.begin(), key.end());
    for (std::size_t i = 0; i < frame.size(); ++i)
        out.push_back(frame[i] ^ key[i % 4]);
    return out;
}

// hybi-04: the connection key for Sec-WebSocket-Key "dGhlIHNhbXBsZSBub25jZQ==" and
// Sec-WebSocket-Nonce "AQIDBAUGBwgJCgsMDQ4PEC==", and the frame masks
// SHA-1(nonce + key) of two nonces, all computed with Python's hashlib.
const hybi04_key conn_key04 = [] {
    hybi04_key k;
    const bytes b = hex("41 e1 4f 78 31 1e 4c 34 28 3e 6d 8b 36 3b 88 48 d5 85 91 a7");
    std::copy(b.begin(), b.end(), k.begin());
    return k;
}();
const mask_key nonce_a = {std::byte{0x01}, std::byte{0x02}, std::byte{0x03}, std::byte{0x04}};
const mask_key nonce_b = {std::byte{0xde}, std::byte{0xad}, std::byte{0xbe}, std::byte{0xef}};
const bytes frame_mask_a = hex("9e 97 4c 32 84 18 94 b7 1b bd 90 96 ff 66 40 1e 5d a6 58 01");
const bytes frame_mask_b = hex("92 19 9d 7f 1f 08 c2 e6 47 b5 f2 4b 6e 3d 59 d2 83 50 ec b1");

// hybi-04 client frame: the nonce, then the whole frame XORed with mask[i mod 20].
bytes masked04(const mask_key& nonce, const bytes& frame) {
    const bytes& mask = nonce == nonce_a ? frame_mask_a : frame_mask_b;
    bytes out(nonce.begin(), nonce.end());
    for (std::size_t i = 0; i < frame.size(); ++i)
        out.push_back(frame[i] ^ mask[i % 20]);
    return out;
}

const mask_key key_rfc = {std::byte{0x37}, std::byte{0xfa}, std::byte{0x21}, std::byte{0x3d}};
const mask_key key_em = {std::byte{0x01}, std::byte{0x02}, std::byte{0x03}, std::byte{0x04}};
const mask_key key_other = {std::byte{0xa5}, std::byte{0x00}, std::byte{0x5a}, std::byte{0xff}};

// ---------------------------------------------------------------------------------------
// Expected events.

rec text(std::string_view s) {
    return {event_kind::message, opcode::text, txt(s), 0, {}, {}};
}
rec binary(bytes p) {
    return {event_kind::message, opcode::binary, std::move(p), 0, {}, {}};
}
rec ping(std::string_view p) {
    return {event_kind::ping, opcode::ping, txt(p), 0, {}, {}};
}
rec pong(std::string_view p) {
    return {event_kind::pong, opcode::pong, txt(p), 0, {}, {}};
}
// A Close as reported: `body` is the whole Close payload.
rec closed(std::uint16_t code, std::string_view reason, bytes body) {
    return {event_kind::close, opcode::close, std::move(body), code, std::string(reason), {}};
}
rec closed_empty() {
    return closed(1005, "", {});
}
rec err(error e) {
    rec r;
    r.kind = event_kind::error;
    r.ec = make_error_code(e);
    return r;
}

// How to build the codec under test.
struct setup {
    role r = role::server;
    int version = 13;
    frame_limits lim{};
    bool key04 = false;  // draft 04: install conn_key04
};

codec make(const setup& s, std::size_t contiguous_limit) {
    codec c(s.r, s.version, s.lim, contiguous_limit);
    if (s.key04) c.set_hybi04_key(conn_key04);
    return c;
}

void check_all(const setup& s, const bytes& wire, const std::vector<rec>& want) {
    check_runs(wire.size(), want, [&](const chunker& next_chunk, std::size_t cl) {
        codec c = make(s, cl);
        return feed(c, wire, next_chunk);
    });
}

void check_error(const setup& s, const bytes& wire, error e) {
    check_all(s, wire, {err(e)});
}

frame_limits limits(std::uint64_t frame, std::uint64_t message = 64 * 1024 * 1024) {
    return {frame, message};
}

// A decoder fed `wire` in one piece, asserting the first event is a message handed out in
// place (a pointer into the caller's buffer).
void check_in_place(const setup& s, const bytes& wire, const bytes& want) {
    codec c = make(s, 64 * 1024);
    bytes buf = wire;
    std::size_t used = 0;
    const decoder_event ev = c.next(buf, used);
    REQUIRE(ev.kind == event_kind::message);
    CHECK(bytes(ev.payload.begin(), ev.payload.end()) == want);
    CHECK(points_into(ev.payload, buf));
}

// Reads `wire` through `c` as connection_impl::receive() would with a `read_size` buffer,
// except that whenever the buffer is empty and the codec offers a direct span
// (direct_payload_buffer(1)), the next bytes go into the span, `direct` bytes at a time
// (0: the whole span), each committed with commit_direct. Returns the events and counts
// the payload bytes read directly.
std::vector<rec> feed_direct(codec& c, const bytes& wire, std::size_t read_size, std::size_t direct,
                             std::size_t& direct_bytes) {
    std::vector<rec> events;
    bytes buf;
    std::size_t at = 0;
    direct_bytes = 0;
    while (at < wire.size()) {
        if (buf.empty()) {
            const std::span<std::byte> span = c.direct_payload_buffer(1);
            if (!span.empty()) {
                const std::size_t n =
                    std::min({direct == 0 ? span.size() : direct, span.size(), wire.size() - at});
                std::memcpy(span.data(), wire.data() + at, n);
                at += n;
                direct_bytes += n;
                const decoder_event ev = c.commit_direct(n);
                if (ev.kind != event_kind::need_more) events.push_back(record(ev));
                if (ev.kind == event_kind::error) return events;
                continue;
            }
        }
        const std::size_t n = std::min(read_size, wire.size() - at);
        buf.insert(buf.end(), wire.begin() + static_cast<std::ptrdiff_t>(at),
                   wire.begin() + static_cast<std::ptrdiff_t>(at + n));
        at += n;
        for (;;) {
            std::size_t used = 0;
            const decoder_event ev = c.next(buf, used);
            if (ev.kind != event_kind::need_more) events.push_back(record(ev));
            buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(used));
            if (ev.kind == event_kind::error) return events;
            if (ev.kind == event_kind::need_more) break;
        }
    }
    return events;
}

}  // namespace

TEST_SUITE("codec") {
    // ============================================================= versions and features
    TEST_CASE("wire_format_for maps every version in the wild") {
        CHECK(wire_format_for(75) == wire_format::hixie);
        CHECK(wire_format_for(76) == wire_format::hixie);
        CHECK(wire_format_for(0) == wire_format::hixie);  // hybi-00 is hixie-76
        CHECK(wire_format_for(1) == wire_format::hybi01);
        CHECK(wire_format_for(2) == wire_format::hybi01);
        CHECK(wire_format_for(3) == wire_format::hybi01);
        CHECK(wire_format_for(4) == wire_format::hybi04);
        CHECK(wire_format_for(5) == wire_format::hybi05);
        CHECK(wire_format_for(6) == wire_format::hybi05);
        CHECK(wire_format_for(7) == wire_format::rfc6455);
        CHECK(wire_format_for(8) == wire_format::rfc6455);
        CHECK(wire_format_for(13) == wire_format::rfc6455);
    }

    TEST_CASE("feature predicates: ping/binary from hybi-01, close codes from hybi-06") {
        CHECK_FALSE(has_ping(wire_format::hixie));
        CHECK_FALSE(has_binary(wire_format::hixie));
        for (wire_format f : {wire_format::hybi01, wire_format::hybi04, wire_format::hybi05,
                              wire_format::rfc6455}) {
            CHECK(has_ping(f));
            CHECK(has_binary(f));
        }
        for (int v : {75, 76, 0, 1, 2, 3, 4, 5})
            CHECK_FALSE(has_close_codes(v));
        for (int v : {6, 7, 8, 13})
            CHECK(has_close_codes(v));
    }

    TEST_CASE("codec reports its format and version") {
        codec a(role::server, 6);
        CHECK(a.format() == wire_format::hybi05);
        CHECK(a.protocol_version() == 6);
        codec b(role::client, wire_format::hybi01);
        CHECK(b.format() == wire_format::hybi01);
        CHECK(b.protocol_version() == 3);
        CHECK(b.get_role() == role::client);
        codec c(role::server, wire_format::hybi05);
        CHECK(c.protocol_version() == 6);
    }

    // ============================================================= hixie-75/76 decoding
    const setup hixie76{role::server, 76};
    const setup hixie75{role::server, 75};

    TEST_CASE("hixie-76 §5.3: 0x00 <UTF-8> 0xFF text frames") {
        check_all(hixie76, hex("00 48 65 6c 6c 6f ff"), {text("Hello")});
        check_all(hixie75, hex("00 48 65 6c 6c 6f ff"), {text("Hello")});
        check_all(hixie76, hex("00 ff"), {text("")});
        check_all(hixie76, hex("00 48 69 ff 00 c3 a9 ff 00 f0 9f 98 80 ff"),
                  {text("Hi"), text("\xc3\xa9"), text("\xf0\x9f\x98\x80")});
        // NUL is valid UTF-8 inside a frame; only 0xFF ends it.
        check_all(hixie76, hex("00 41 00 42 ff"), {text(std::string_view("A\0B", 3))});
        // A role client decodes the same framing (nothing is masked in hixie).
        check_all({role::client, 76}, hex("00 48 69 ff"), {text("Hi")});
    }

    TEST_CASE("hixie-76 §5.3: 0xFF 0x00 closes; later bytes are ignored") {
        check_all(hixie76, hex("ff 00"), {closed_empty()});
        check_all(hixie76, hex("00 48 69 ff ff 00 00 41 ff 05"), {text("Hi"), closed_empty()});
        // The length may be spelt with empty 7-bit groups: still 0.
        check_all(hixie76, hex("ff 80 80 00"), {closed_empty()});
    }

    TEST_CASE("hixie-76 §5.3: length-prefixed frames are skipped, never delivered") {
        check_all(hixie76, hex("80 03 61 62 63 00 48 69 ff"), {text("Hi")});
        // 0xFF with a non-zero length is skipped, not a close; its bytes may hold 00 and FF.
        check_all(hixie76, hex("ff 02 00 ff 00 48 69 ff"), {text("Hi")});
        // Only type 0xFF with length 0 closes (em-websocket also closed on 80 00).
        check_all(hixie76, hex("80 00 00 48 69 ff"), {text("Hi")});
        // Type 80, length 81 00: (1 * 128) + 0 = 128 bytes, 0xFF bytes among them.
        check_all(hixie76, hex("80 81 00") + pattern(128) + hex("00 48 69 ff"), {text("Hi")});
        // Type 80, length 86 8d 20: ((6 * 128) + 13) * 128 + 32 = 100000 bytes, skipped in
        // pieces as they arrive.
        check_all(hixie76, hex("80 86 8d 20") + pattern(100000, 5) + hex("00 4f 4b ff ff 00"),
                  {text("OK"), closed_empty()});
    }

    TEST_CASE("hixie-76 §5.3: other types without the high bit are read to 0xFF and discarded") {
        check_all(hixie76, hex("05 41 42 ff 00 48 69 ff"), {text("Hi")});
        check_all(hixie76, hex("7f ff 01 ff 00 48 69 ff"), {text("Hi")});
        // Discarded bytes are not UTF-8-checked: only type 0x00 is text.
        check_all(hixie76, hex("01 c3 28 80 ff 00 4f 4b ff"), {text("OK")});
    }

    TEST_CASE("hixie text must be UTF-8, checked fail-fast") {
        check_error(hixie76, hex("00 c3 28 ff"), error::bad_frame_payload);
        // No terminator needed to fail.
        check_error(hixie76, hex("00 48 c3 28"), error::bad_frame_payload);
        check_all(hixie76, hex("00 48 ff 00 ed a0 80"), {text("H"), err(error::bad_frame_payload)});
        // Truncated code point at the end of the frame.
        check_all(hixie76, hex("00 48 69 ff 00 e2 82 ff"),
                  {text("Hi"), err(error::bad_frame_payload)});
        // A stray 0x80 continuation byte.
        check_error(hixie76, hex("00 80 ff"), error::bad_frame_payload);
    }

    TEST_CASE("hixie limits: text fails as soon as it passes the limit") {
        setup s = hixie76;
        s.lim = limits(5);
        check_all(s, hex("00 41 42 43 44 45 ff"), {text("ABCDE")});
        check_error(s, hex("00 41 42 43 44 45 46 ff"), error::frame_too_big);
        // No terminator needed: the 6th byte is enough.
        check_error(s, hex("00 41 42 43 44 45 46"), error::frame_too_big);
        // The first offending byte decides: invalid UTF-8 before the limit ...
        check_error(s, hex("00 41 c3 28 44 45 46 47"), error::bad_frame_payload);
        // ... or the limit before invalid UTF-8.
        check_error(s, hex("00 41 42 43 44 45 c3 28 ff"), error::frame_too_big);
        // The message limit applies to the (only) frame too.
        s.lim = limits(10, 3);
        check_error(s, hex("00 41 42 43 44 ff"), error::message_too_big);
        check_all(s, hex("00 41 42 43 ff"), {text("ABC")});
    }

    TEST_CASE("hixie limits: skipped and discarded frames are bounded too") {
        setup s = hixie76;
        s.lim = limits(5);
        check_all(s, hex("80 05 01 02 03 04 05 00 48 69 ff"), {text("Hi")});
        check_error(s, hex("80 06 01 02 03 04 05 06"), error::frame_too_big);
        check_error(s, hex("05 41 42 43 44 45 46 ff"), error::frame_too_big);
        // em-websocket's absurd length prefix, and one long enough to wrap 64 bits.
        check_error(hixie76, hex("ff ff ff ff ff ff ff ff ff ff 00"), error::frame_too_big);
        setup huge = hixie76;
        huge.lim = limits(~std::uint64_t{0}, ~std::uint64_t{0});
        check_error(huge, hex("ff ff ff ff ff ff ff ff ff ff ff 00"), error::frame_too_big);
    }

    TEST_CASE("hixie: a lowered limit mid-frame fails cleanly") {
        codec c(role::server, 76, {}, 64 * 1024);
        bytes buf = hex("00 41 42 43");
        std::size_t used = 0;
        CHECK(c.next(buf, used).kind == event_kind::need_more);
        CHECK(used == 1);  // the type byte; the text stays in place
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(used));
        c.set_limits(limits(2));
        buf = buf + hex("44 ff");
        const decoder_event ev = c.next(buf, used);
        CHECK(ev.kind == event_kind::error);
        CHECK(ev.ec == make_error_code(error::frame_too_big));
    }

    TEST_CASE("hixie: long text frames are kept in place or streamed, never cut") {
        // "abc...z" repeated, plus a 2-byte and a 3-byte code point now and then, so that
        // splits fall inside code points too.
        const auto long_text = [](std::size_t n) {
            std::string s;
            while (s.size() < n) {
                s += static_cast<char>('a' + s.size() % 26);
                if (s.size() % 37 == 0) s += "\xc3\xa9\xe2\x82\xac";
            }
            return s;
        };
        for (std::size_t n : {std::size_t{17}, std::size_t{100}, std::size_t{70000}}) {
            const std::string s = long_text(n);
            check_all(hixie76, hex("00") + txt(s) + hex("ff 00 48 69 ff"), {text(s), text("Hi")});
        }
    }

    TEST_CASE("hixie: a text frame wholly in the buffer is handed out in place") {
        check_in_place(hixie76, hex("00 48 65 6c 6c 6f ff"), txt("Hello"));
        codec c(role::server, 76);
        CHECK_FALSE(c.in_message());
    }

    // ============================================================= hybi-01..03 decoding
    const setup hybi03{role::server, 3};

    TEST_CASE("hybi-03 §4.6 examples") {
        check_all(hybi03, hex("04 05 48 65 6c 6c 6f"), {text("Hello")});
        check_all(hybi03, hex("84 03 48 65 6c 00 02 6c 6f"), {text("Hello")});
        check_all(hybi03, hex("02 05 48 65 6c 6c 6f"), {ping("Hello")});
        check_all(hybi03, hex("03 05 48 65 6c 6c 6f"), {pong("Hello")});
        check_all(hybi03, hex("05 7e 01 00") + pattern(256), {binary(pattern(256))});
        check_all(hybi03, hex("05 7f 00 00 00 00 00 01 00 00") + pattern(65536, 3),
                  {binary(pattern(65536, 3))});
        for (int v : {1, 2})
            check_all({role::server, v}, hex("84 03 48 65 6c 00 02 6c 6f"), {text("Hello")});
        // No masking in either direction.
        check_all({role::client, 3}, hex("84 03 48 65 6c 00 02 6c 6f"), {text("Hello")});
    }

    TEST_CASE("hybi-03: close, ping and em-websocket's wire examples") {
        check_all(hybi03, hex("04 02 48 69 84 01 48 00 01 69 02 00 01 00"),
                  {text("Hi"), text("Hi"), ping(""), closed_empty()});
        // Before draft 06 a Close body is not interpreted: 1005, body kept as is.
        check_all(hybi03, hex("01 02 03 e8 04 01 41"), {closed(1005, "", hex("03 e8"))});
    }

    TEST_CASE("hybi-03 §4.3: any number of fragments, control frames in between") {
        // 5 fragments: MORE on the first four.
        check_all(hybi03, hex("84 01 61 80 01 62 80 01 63 80 01 64 00 01 65"), {text("abcde")});
        // 3 fragments of a binary message (em-websocket dropped these on 05/06).
        check_all(hybi03, hex("85 01 01 80 01 02 00 01 03"), {binary(hex("01 02 03"))});
        check_all(hybi03, hex("84 02 48 65 02 01 70 80 01 6c 03 00 00 02 6c 6f 04 01 21"),
                  {ping("p"), pong(""), text("Hello"), text("!")});
        // A code point split across fragments.
        check_all(hybi03, hex("84 01 e2 00 02 82 ac"), {text("\xe2\x82\xac")});
        // A Close in the middle of a message ends everything.
        check_all(hybi03, hex("84 01 48 01 00 00 01 69"), {closed_empty()});
    }

    TEST_CASE("hybi-03 errors") {
        check_error(hybi03, hex("06 00"), error::bad_opcode);
        check_error(hybi03, hex("0f 00"), error::bad_opcode);
        check_all(hybi03, hex("04 02 48 69 07 00"), {text("Hi"), err(error::bad_opcode)});
        check_error(hybi03, hex("00 01 61"), error::bad_continuation);
        check_error(hybi03, hex("80 01 61"), error::bad_continuation);
        check_error(hybi03, hex("84 01 61 04 01 62"), error::bad_data_frame);
        check_error(hybi03, hex("84 01 61 85 01 62"), error::bad_data_frame);
        check_error(hybi03, hex("82 00"), error::bad_control_fragment);
        check_error(hybi03, hex("81 00"), error::bad_control_fragment);
        check_error(hybi03, hex("02 7e 00 7e") + pattern(126), error::bad_control_size);
        check_error(hybi03, hex("44 00"), error::bad_reserved_bits);
        check_error(hybi03, hex("24 00"), error::bad_reserved_bits);
        check_error(hybi03, hex("14 00"), error::bad_reserved_bits);
        check_error(hybi03, hex("04 80"), error::bad_reserved_bits);  // RSV4
        check_error(hybi03, hex("05 7f 80 00 00 00 00 00 00 00"), error::bad_frame_length);
    }

    TEST_CASE("hybi-03 limits are checked from the header") {
        setup s = hybi03;
        s.lim = limits(5, 8);
        check_all(s, hex("04 05 41 42 43 44 45"), {text("ABCDE")});
        check_error(s, hex("04 06"), error::frame_too_big);  // no payload needed
        check_error(s, hex("84 05 41 42 43 44 45 00 04"), error::message_too_big);
        check_error(s, hex("02 06"), error::frame_too_big);
        // 64-bit lengths use all 64 bits: 2^32 + 5 is not a 5-byte frame (em-websocket bug).
        const bytes lie = hex("05 7f 00 00 00 01 00 00 00 05 68 65 6c 6c 6f");
        check_error(hybi03, lie, error::frame_too_big);
        setup huge = hybi03;
        huge.lim = limits(~std::uint64_t{0}, ~std::uint64_t{0});
        check_all(huge, lie, {});  // still waiting for the rest of the frame
    }

    TEST_CASE("hybi-03 text is UTF-8, checked fail-fast") {
        check_error(hybi03, hex("84 02 c3 28"), error::bad_frame_payload);
        check_error(hybi03, hex("04 02 e2 82"), error::bad_frame_payload);
        check_error(hybi03, hex("04 05 41 42 c3 28"), error::bad_frame_payload);
        // Binary is not checked.
        check_all(hybi03, hex("05 02 c3 28"), {binary(hex("c3 28"))});
    }

    TEST_CASE("hybi: a one-frame message wholly in the buffer is handed out in place") {
        check_in_place(hybi03, hex("04 05 48 65 6c 6c 6f"), txt("Hello"));
        check_in_place({role::server, 6}, masked05(key_rfc, hex("84 05 48 65 6c 6c 6f")),
                       txt("Hello"));
        check_in_place({role::server, 4, {}, true}, hex("01 02 03 04 1a 92 04 57 e8 74 fb"),
                       txt("Hello"));
    }

    TEST_CASE("hybi: in_message follows fragmentation") {
        codec c(role::server, 3);
        bytes buf = hex("84 01 61");
        std::size_t used = 0;
        CHECK(c.next(buf, used).kind == event_kind::need_more);
        CHECK(c.in_message());
        buf = hex("00 01 62");
        CHECK(c.next(buf, used).kind == event_kind::message);
        CHECK_FALSE(c.in_message());
    }

    // ============================================================= hybi-04 decoding
    const setup hybi04s{role::server, 4, {}, true};
    const setup hybi04c{role::client, 4};

    TEST_CASE("hybi-04: the connection masking key") {
        hybi04_key k{};
        REQUIRE(make_hybi04_key("dGhlIHNhbXBsZSBub25jZQ==", "AQIDBAUGBwgJCgsMDQ4PEC==", k));
        CHECK(k == conn_key04);
    }

    TEST_CASE("hybi-04 examples (FIN replaces MORE), as the server sends them") {
        check_all(hybi04c, hex("84 05 48 65 6c 6c 6f"), {text("Hello")});
        check_all(hybi04c, hex("04 03 48 65 6c 80 02 6c 6f"), {text("Hello")});
        check_all(hybi04c, hex("82 05 48 65 6c 6c 6f"), {ping("Hello")});
        check_all(hybi04c, hex("83 05 48 65 6c 6c 6f"), {pong("Hello")});
        check_all(hybi04c, hex("85 7e 01 00") + pattern(256), {binary(pattern(256))});
        check_all(hybi04c, hex("85 7f 00 00 00 00 00 01 00 00") + pattern(65536, 3),
                  {binary(pattern(65536, 3))});
        check_all(hybi04c, hex("81 00"), {closed_empty()});
    }

    TEST_CASE("hybi-04: client frames masked with SHA-1(nonce + connection key)") {
        // Computed with Python: nonce 01 02 03 04, "Hello" as 84 05 48 65 6c 6c 6f.
        check_all(hybi04s, hex("01 02 03 04 1a 92 04 57 e8 74 fb"), {text("Hello")});
        check_all(hybi04s,
                  masked04(nonce_a, plain(0x04, "Hel")) + masked04(nonce_b, plain(0x80, "lo")),
                  {text("Hello")});
        // 5 fragments, a fresh nonce each, ping and pong in between; the mask cycles over
        // 20 bytes across a 300-byte binary frame.
        const bytes wire =
            masked04(nonce_b, plain(0x04, "a")) + masked04(nonce_a, plain(0x00, "b")) +
            masked04(nonce_b, plain(0x82, "p")) + masked04(nonce_a, plain(0x00, "c")) +
            masked04(nonce_b, plain(0x00, "d")) + masked04(nonce_a, plain(0x83, "")) +
            masked04(nonce_b, plain(0x80, "e")) + masked04(nonce_a, plain(0x85, pattern(300))) +
            masked04(nonce_b, plain(0x81, ""));
        check_all(hybi04s, wire,
                  {ping("p"), pong(""), text("abcde"), binary(pattern(300)), closed_empty()});
        check_all(hybi04s, masked04(nonce_a, plain(0x85, pattern(70000, 9))),
                  {binary(pattern(70000, 9))});
    }

    TEST_CASE("hybi-04 errors") {
        check_error(hybi04s, masked04(nonce_a, plain(0x86, "")), error::bad_opcode);
        check_error(hybi04s, masked04(nonce_a, plain(0x80, "x")), error::bad_continuation);
        check_error(hybi04s, masked04(nonce_a, plain(0x02, "")), error::bad_control_fragment);
        check_error(hybi04s, masked04(nonce_a, plain(0xc4, "")), error::bad_reserved_bits);
        check_error(hybi04s, masked04(nonce_a, hex("84 81 41")), error::bad_reserved_bits);
        check_error(hybi04s, masked04(nonce_a, plain(0x84, "\xc3\x28")), error::bad_frame_payload);
        check_error(hybi04c, hex("04 01 61 84 01 62"), error::bad_data_frame);
    }

    // ============================================================= hybi-05/06 decoding
    const setup hybi05s{role::server, 5};
    const setup hybi06s{role::server, 6};
    const setup hybi06c{role::client, 6};

    TEST_CASE("hybi-05/06: the key in front masks the whole frame") {
        for (const setup& s : {hybi05s, hybi06s}) {
            // em-websocket's verified example: key 01 02 03 04, "Hi".
            check_all(s, hex("01 02 03 04 85 00 4b 6d"), {text("Hi")});
            // Computed with Python: key 37 fa 21 3d, "Hello".
            check_all(s, hex("37 fa 21 3d b3 ff 69 58 5b 96 4e"), {text("Hello")});
            check_all(s, masked05(key_other, plain(0x82, "Hello")), {ping("Hello")});
            check_all(s, masked05(key_other, plain(0x83, "Hello")), {pong("Hello")});
            check_all(s, masked05(key_rfc, plain(0x85, pattern(256))), {binary(pattern(256))});
            check_all(s, masked05(key_em, plain(0x85, pattern(65536, 3))),
                      {binary(pattern(65536, 3))});
        }
        // Server frames are not masked.
        check_all(hybi06c, hex("84 05 48 65 6c 6c 6f 04 03 48 65 6c 80 02 6c 6f"),
                  {text("Hello"), text("Hello")});
    }

    TEST_CASE("hybi-05/06: 3 and 5 fragments arrive whole (em-websocket dropped them)") {
        const bytes three = masked05(key_em, plain(0x04, "He")) +
                            masked05(key_rfc, plain(0x00, "ll")) +
                            masked05(key_other, plain(0x80, "o"));
        check_all(hybi06s, three, {text("Hello")});
        const bytes five =
            masked05(key_em, plain(0x05, hex("01"))) + masked05(key_rfc, plain(0x00, hex("02"))) +
            masked05(key_other, plain(0x82, "ping")) + masked05(key_em, plain(0x00, hex("03"))) +
            masked05(key_rfc, plain(0x00, hex("04"))) + masked05(key_other, plain(0x80, hex("05")));
        check_all(hybi05s, five, {ping("ping"), binary(hex("01 02 03 04 05"))});
    }

    TEST_CASE("hybi-06 Close carries a code and a UTF-8 reason; hybi-05's does not") {
        const bytes c1000 = masked05(key_rfc, plain(0x81, hex("03 e8")));
        check_all(hybi05s, c1000, {closed(1005, "", hex("03 e8"))});
        check_all(hybi06s, c1000, {closed(1000, "", hex("03 e8"))});
        check_all(hybi06s, masked05(key_rfc, plain(0x81, hex("03 e8 62 79 65"))),
                  {closed(1000, "bye", hex("03 e8 62 79 65"))});
        check_all(hybi06s, masked05(key_rfc, plain(0x81, "")), {closed_empty()});
        // 1004 ("frame too large") is a code of draft 06.
        check_all(hybi06s, masked05(key_rfc, plain(0x81, hex("03 ec"))),
                  {closed(1004, "", hex("03 ec"))});
        // Nothing after a Close is processed.
        check_all(hybi06s, c1000 + masked05(key_rfc, plain(0x84, "x")),
                  {closed(1000, "", hex("03 e8"))});
        check_error(hybi06s, masked05(key_rfc, plain(0x81, hex("03"))), error::bad_close_size);
        check_error(hybi06s, masked05(key_rfc, plain(0x81, hex("03 e7"))), error::bad_close_code);
        check_error(hybi06s, masked05(key_rfc, plain(0x81, hex("13 88"))), error::bad_close_code);
        check_error(hybi06s, masked05(key_rfc, plain(0x81, hex("03 e8 c3 28"))),
                    error::bad_close_payload);
        // em-websocket's draft-05 server Close, a 1-byte body, is fine on 05.
        check_all({role::client, 5}, hex("81 01 53"), {closed(1005, "", hex("53"))});
    }

    TEST_CASE("hybi-05/06 errors") {
        // An RFC 6455 client frame: its MASK bit is RSV4 here.
        check_error(hybi06s, masked05(key_rfc, hex("84 85 01 02 03 04 00")),
                    error::bad_reserved_bits);
        check_error(hybi06s, masked05(key_rfc, plain(0x89, "")), error::bad_opcode);
        check_error(hybi06s,
                    masked05(key_rfc, plain(0x04, "a")) + masked05(key_rfc, plain(0x84, "b")),
                    error::bad_data_frame);
        check_error(hybi06s, masked05(key_rfc, plain(0x80, "a")), error::bad_continuation);
        check_error(hybi06s, masked05(key_rfc, plain(0x01, "")), error::bad_control_fragment);
        check_error(hybi06s, masked05(key_rfc, plain(0x82, pattern(126))), error::bad_control_size);
        check_error(hybi06s, masked05(key_rfc, hex("85 7f 80 00 00 00 00 00 00 00")),
                    error::bad_frame_length);
        check_error(hybi06s, masked05(key_rfc, plain(0x84, "A\xed\xa0\x80")),
                    error::bad_frame_payload);
        setup s = hybi06s;
        s.lim = limits(4, 6);
        check_error(s, masked05(key_rfc, hex("85 05")), error::frame_too_big);
        check_error(s, masked05(key_rfc, plain(0x05, "abcd")) + masked05(key_rfc, hex("80 03")),
                    error::message_too_big);
    }

    // ============================================================= need_more hints
    TEST_CASE("need_more says how many bytes at least are still missing") {
        const auto needed = [](const setup& s, const bytes& wire) {
            codec c = make(s, 64 * 1024);
            bytes buf = wire;
            std::size_t used = 0;
            const decoder_event ev = c.next(buf, used);
            REQUIRE(ev.kind == event_kind::need_more);
            return ev.needed;
        };
        CHECK(needed(hixie76, hex("80")) == 1);
        CHECK(needed(hixie76, hex("80 05 01 02")) == 3);
        CHECK(needed(hixie76, hex("80 81 00 01")) == 127);
        CHECK(needed(hixie76, hex("00 41")) == 1);
        CHECK(needed(hybi03, hex("04")) == 1);
        CHECK(needed(hybi03, hex("04 7e")) == 2);
        CHECK(needed(hybi03, hex("04 7f 00")) == 7);
        CHECK(needed(hybi03, hex("04 7e 01 00 41")) == 255);
        CHECK(needed(hybi03, hex("02 05 41")) == 4);
        // The masking key (05/06) or nonce (04) comes first: 4 bytes, then 2 of header.
        CHECK(needed(hybi06s, hex("01 02")) == 4);
        CHECK(needed(hybi06s, hex("01 02 03 04")) == 2);
        CHECK(needed(hybi06s, masked05(key_em, hex("84 7e"))) == 2);  // the 16-bit length
        CHECK(needed(hybi04s, hex("01 02 03")) == 3);
        CHECK(needed(hybi04s, hex("01 02 03 04 1a")) == 1);
    }

    // ============================================================= RFC 6455 path
    TEST_CASE("the rfc6455 path of the codec is message_decoder") {
        const mask_key* k = &key_rfc;
        const auto rfc = [&](std::uint8_t b0, const bytes& p) {
            // RFC 6455 §5.2, masked (client to server).
            bytes out{std::byte{b0}};
            const std::size_t n = p.size();
            if (n < 126) {
                out.push_back(static_cast<std::byte>(0x80 | n));
            } else {
                out.push_back(std::byte{0x80 | 126});
                out.push_back(static_cast<std::byte>(n >> 8));
                out.push_back(static_cast<std::byte>(n & 0xFF));
            }
            out.insert(out.end(), k->begin(), k->end());
            for (std::size_t i = 0; i < n; ++i)
                out.push_back(p[i] ^ (*k)[i % 4]);
            return out;
        };
        const std::vector<bytes> vectors = {
            hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"),  // RFC 6455 §5.7
            rfc(0x01, txt("Hel")) + rfc(0x89, txt("p")) + rfc(0x80, txt("lo")),
            rfc(0x82, pattern(300)) + rfc(0x88, hex("03 e8 62 79 65")),
            rfc(0x81, hex("c3 28")),
            rfc(0x83, {}),
            rfc(0x00, txt("x")),
            hex("81 05 48 65 6c 6c 6f"),  // unmasked: refused by a server
            rfc(0x88, hex("03 ed")),
        };
        for (const bytes& wire : vectors) {
            // message_decoder's own results (split-independent: see test_frame.cpp) ...
            message_decoder ref(role::server);
            const run_result want = feed(ref, wire, [&] { return wire.size(); });
            REQUIRE(want.violation.empty());
            CHECK_FALSE(want.events.empty());
            // ... are the codec's, however the input is split.
            check_runs(wire.size(), want.events, [&](const chunker& next_chunk, std::size_t limit) {
                codec c(role::server, 13, {}, limit);
                return feed(c, wire, next_chunk);
            });
        }
    }

    TEST_CASE("rfc6455: whole frames through the codec (decoder fast path) as byte by byte") {
        // What connection_impl::receive() sees in the steady state: many whole small frames in
        // one buffer, each masked with its own key. Fed whole they take message_decoder's
        // fast path; byte by byte never; the events must be the same, and in place.
        bytes wire;
        std::vector<rec> want;
        for (std::size_t i = 0; i < 64; ++i) {
            const mask_key key = {std::byte(i * 37), std::byte(i * 91 + 1), std::byte(0x80 | i),
                                  std::byte(255 - i)};
            const bool is_text = i % 3 != 2;
            bytes payload = is_text ? txt(std::string(i * 5 % 140, 'a')) : pattern(i * 7 % 300, 9);
            if (is_text && i % 4 == 1) payload = payload + txt("\xC3\xA9\xE2\x82\xAC");
            append_frame(wire, is_text ? opcode::text : opcode::binary, true, payload, &key);
            want.push_back(rec{
                event_kind::message, is_text ? opcode::text : opcode::binary, payload, 0, {}, {}});
        }
        const mask_key bad_key = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
        append_frame(wire, opcode::text, true, txt("ok \xF0\x9F\x98"), &bad_key);
        want.push_back(rec{
            event_kind::error, opcode::text, {}, 0, {}, make_error_code(error::bad_frame_payload)});
        check_runs(wire.size(), want, [&](const chunker& next_chunk, std::size_t limit) {
            codec c(role::server, 13, {}, limit);
            return feed(c, wire, next_chunk);
        });

        codec c(role::server, 13);
        std::size_t used = 0;
        const auto ev = c.next(wire, used);
        REQUIRE(ev.kind == event_kind::message);
        CHECK(points_into(ev.payload, wire));
        CHECK(used == 2 + 4);  // the first frame is empty
    }

    TEST_CASE("rfc6455: direct payload reads through the codec are message_decoder's") {
        // A 70 000-byte text message, a fragmented binary one with large fragments and a
        // ping between them, each frame with its own key.
        bytes text_payload(70000);
        for (std::size_t i = 0; i < text_payload.size(); ++i)
            text_payload[i] = static_cast<std::byte>(i % 97 == 0 ? 0xC3 : i % 97 == 1 ? 0xA9 : 'a');
        const bytes bin = pattern(300000, 5);
        bytes wire;
        const mask_key k1 = {std::byte{1}, std::byte{0x82}, std::byte{0x43}, std::byte{0xC4}};
        const mask_key k2 = {std::byte{0xF5}, std::byte{6}, std::byte{0x77}, std::byte{8}};
        append_frame(wire, opcode::text, true, text_payload, &k1);
        append_frame(wire, opcode::binary, false, std::span(bin).first(100000), &k2);
        append_frame(wire, opcode::ping, true, txt("p"), &k1);
        append_frame(wire, opcode::continuation, true, std::span(bin).subspan(100000), &k1);
        const std::vector<rec> want = {
            rec{event_kind::message, opcode::text, text_payload, 0, {}, {}}, ping("p"),
            binary(bin)};
        for (const std::size_t read_size : {std::size_t{64 * 1024}, std::size_t{1001}}) {
            for (const std::size_t direct : {std::size_t{0}, std::size_t{7}, std::size_t{4096}}) {
                CAPTURE(read_size);
                CAPTURE(direct);
                codec c(role::server, 13, {}, 64 * 1024 - max_header_size);
                std::size_t direct_bytes = 0;
                CHECK_EQ(describe(feed_direct(c, wire, read_size, direct, direct_bytes)),
                         describe(want));
                // All but what the reads carrying the headers brought (at most 3 of them).
                CHECK(direct_bytes >= 70000 + 300000 - 3 * read_size);
                // The same through next() alone.
                codec plain(role::server, 13, {}, 64 * 1024 - max_header_size);
                CHECK_EQ(describe(feed(plain, wire, [&] { return read_size; }).events),
                         describe(want));
            }
        }
        // Invalid UTF-8 in a directly read chunk: 1007, as through next().
        bytes bad_text = text_payload;
        bad_text[69000] = std::byte{0xFF};
        bytes bad_wire;
        append_frame(bad_wire, opcode::text, true, bad_text, &k2);
        codec c(role::server, 13, {}, 64 * 1024 - max_header_size);
        std::size_t direct_bytes = 0;
        CHECK_EQ(describe(feed_direct(c, bad_wire, 64 * 1024, 0, direct_bytes)),
                 describe(std::vector<rec>{err(error::bad_frame_payload)}));
        CHECK(direct_bytes > 0);
    }

    TEST_CASE("direct payload reads: other wire formats never offer a span") {
        // A 100 000-byte text frame in each legacy format, longer than contiguous_limit so
        // that the decoder streams it: still no direct span, and a stray commit_direct does
        // not disturb the decoder.
        const bytes payload(100000, std::byte{'a'});
        for (const int version : {76, 3, 4, 6}) {
            CAPTURE(version);
            codec c(role::server, version, {}, 1000);
            if (version == 4) c.set_hybi04_key(conn_key04);
            bytes wire;
            if (version == 76) {
                wire = bytes{std::byte{0x00}} + payload + bytes{std::byte{0xFF}};
            } else {
                codec client(role::client, version);
                if (version == 4) client.set_hybi04_key(conn_key04);
                const mask_key key = {std::byte{9}, std::byte{8}, std::byte{7}, std::byte{6}};
                REQUIRE_FALSE(client.append_frame(wire, opcode::text, payload, &key));
            }
            bytes head(wire.begin(), wire.begin() + 5000);
            std::size_t used = 0;
            const decoder_event ev = c.next(head, used);
            CHECK(ev.kind == event_kind::need_more);
            CHECK(c.direct_payload_buffer(1).empty());
            CHECK(c.direct_payload_buffer(0).empty());
            CHECK(c.commit_direct(0).kind == event_kind::need_more);
            const decoder_event stray = c.commit_direct(10);
            CHECK(stray.kind == event_kind::error);
            CHECK(stray.ec == make_error_code(error::application_error));
            bytes rest(wire.begin() + static_cast<std::ptrdiff_t>(used), wire.end());
            const decoder_event done = c.next(rest, used);
            REQUIRE(done.kind == event_kind::message);
            CHECK(bytes(done.payload.begin(), done.payload.end()) == payload);
        }
    }

    // ============================================================= encoding
    TEST_CASE("hixie encoding: text and close only") {
        codec c(role::server, 76);
        bytes out;
        CHECK_FALSE(c.append_frame(out, opcode::text, txt("Hello")));
        CHECK(out == hex("00 48 65 6c 6c 6f ff"));
        out.clear();
        CHECK_FALSE(c.append_close(out, 1000, "bye"));
        CHECK(out == hex("ff 00"));
        out.clear();
        CHECK(c.append_frame(out, opcode::binary, txt("x")) ==
              make_error_code(error::unsupported_by_version));
        CHECK(c.append_frame(out, opcode::ping, {}) ==
              make_error_code(error::unsupported_by_version));
        CHECK(c.append_frame(out, opcode::pong, {}) ==
              make_error_code(error::unsupported_by_version));
        CHECK(c.append_frame(out, opcode::text, false, txt("x")) ==
              make_error_code(error::unsupported_by_version));
        CHECK(c.append_frame(out, opcode::text, hex("41 ff 42")) ==
              make_error_code(error::invalid_utf8_argument));
        CHECK(out.empty());
        // A client role codec writes the same bytes: hixie never masks.
        codec cl(role::client, 75);
        CHECK_FALSE(cl.append_frame(out, opcode::text, txt("Hi"), &key_rfc));
        CHECK(out == hex("00 48 69 ff"));
    }

    TEST_CASE("hybi-03 encoding reproduces the §4.6 examples") {
        codec c(role::server, 3);
        bytes out;
        CHECK_FALSE(c.append_frame(out, opcode::text, txt("Hello")));
        CHECK(out == hex("04 05 48 65 6c 6c 6f"));
        out.clear();
        CHECK_FALSE(c.append_frame(out, opcode::text, false, txt("Hel")));
        CHECK_FALSE(c.append_frame(out, opcode::continuation, true, txt("lo")));
        CHECK(out == hex("84 03 48 65 6c 00 02 6c 6f"));
        out.clear();
        CHECK_FALSE(c.append_frame(out, opcode::ping, txt("Hello")));
        CHECK_FALSE(c.append_frame(out, opcode::pong, txt("Hello")));
        CHECK(out == hex("02 05 48 65 6c 6c 6f 03 05 48 65 6c 6c 6f"));
        out.clear();
        CHECK_FALSE(c.append_frame(out, opcode::binary, pattern(256)));
        CHECK(out == hex("05 7e 01 00") + pattern(256));
        out.clear();
        CHECK_FALSE(c.append_frame(out, opcode::binary, pattern(65536)));
        CHECK(out == hex("05 7f 00 00 00 00 00 01 00 00") + pattern(65536));
        out.clear();
        CHECK_FALSE(c.append_close(out, 1000, "bye"));
        CHECK(out == hex("01 00"));
        out.clear();
        CHECK(c.append_frame(out, opcode::ping, pattern(126)) ==
              make_error_code(error::control_too_big));
        CHECK(c.append_frame(out, opcode::ping, false, {}) ==
              make_error_code(error::bad_control_fragment));
        CHECK(c.append_frame(out, static_cast<opcode>(3), {}) ==
              make_error_code(error::bad_opcode));
        CHECK(out.empty());
        // 01-03 never mask: a client codec ignores the key.
        codec cl(role::client, 1);
        CHECK_FALSE(cl.append_frame(out, opcode::text, txt("Hello"), &key_rfc));
        CHECK(out == hex("04 05 48 65 6c 6c 6f"));
    }

    TEST_CASE("hybi-04 encoding") {
        codec s(role::server, 4);
        bytes out;
        CHECK_FALSE(s.append_frame(out, opcode::text, txt("Hello")));
        CHECK(out == hex("84 05 48 65 6c 6c 6f"));
        out.clear();
        CHECK_FALSE(s.append_frame(out, opcode::text, false, txt("Hel")));
        CHECK_FALSE(s.append_frame(out, opcode::continuation, true, txt("lo")));
        CHECK(out == hex("04 03 48 65 6c 80 02 6c 6f"));
        out.clear();
        CHECK_FALSE(s.append_close(out, 1000, "bye"));
        CHECK(out == hex("81 00"));

        codec c(role::client, 4);
        c.set_hybi04_key(conn_key04);
        out.clear();
        CHECK_FALSE(c.append_frame(out, opcode::text, txt("Hello"), &nonce_a));
        CHECK(out == hex("01 02 03 04 1a 92 04 57 e8 74 fb"));
        out.clear();
        CHECK_FALSE(c.append_frame(out, opcode::binary, pattern(300), &nonce_b));
        CHECK(out == masked04(nonce_b, plain(0x85, pattern(300))));
        out.clear();
        CHECK(c.append_frame(out, opcode::text, txt("x")) ==
              make_error_code(error::bad_unmasked_frame));
        CHECK(s.append_frame(out, opcode::text, txt("x"), &nonce_a) ==
              make_error_code(error::bad_masked_frame));
        CHECK(out.empty());
        // The low-level encoder cannot mask without the connection key.
        CHECK(append_hybi04_frame(out, opcode::text, true, txt("x"), &nonce_a) ==
              make_error_code(error::bad_unmasked_frame));
    }

    TEST_CASE("hybi-05/06 encoding") {
        codec s5(role::server, 5);
        bytes out;
        CHECK_FALSE(s5.append_frame(out, opcode::text, txt("Hello")));
        CHECK(out == hex("84 05 48 65 6c 6c 6f"));
        out.clear();
        CHECK_FALSE(s5.append_close(out, 1000, "bye"));
        CHECK(out == hex("81 00"));

        codec s6(role::server, 6);
        out.clear();
        CHECK_FALSE(s6.append_close(out, 1000, "bye"));
        CHECK(out == hex("81 05 03 e8 62 79 65"));
        out.clear();
        CHECK_FALSE(s6.append_close(out, 0));
        CHECK(out == hex("81 00"));

        codec c(role::client, 6);
        out.clear();
        CHECK_FALSE(c.append_frame(out, opcode::text, txt("Hi"), &key_em));
        CHECK(out == hex("01 02 03 04 85 00 4b 6d"));
        out.clear();
        CHECK_FALSE(c.append_frame(out, opcode::text, txt("Hello"), &key_rfc));
        CHECK(out == hex("37 fa 21 3d b3 ff 69 58 5b 96 4e"));
        out.clear();
        CHECK_FALSE(c.append_frame(out, opcode::binary, pattern(70000), &key_other));
        CHECK(out == masked05(key_other, plain(0x85, pattern(70000))));
        out.clear();
        CHECK_FALSE(c.append_close(out, 1001, "", &key_em));
        CHECK(out == masked05(key_em, hex("81 02 03 e9")));
    }

    TEST_CASE("rfc6455 encoding and close validation") {
        codec s(role::server, 13);
        bytes out;
        CHECK_FALSE(s.append_frame(out, opcode::text, txt("Hello")));
        CHECK(out == hex("81 05 48 65 6c 6c 6f"));
        out.clear();
        CHECK_FALSE(s.append_close(out, 1000));
        CHECK(out == hex("88 02 03 e8"));
        out.clear();
        CHECK_FALSE(s.append_close(out, 0));
        CHECK(out == hex("88 00"));
        out.clear();
        CHECK_FALSE(s.append_close(out, 1005));
        CHECK(out == hex("88 00"));
        out.clear();
        CHECK(s.append_close(out, 1006) == make_error_code(error::invalid_close_code));
        CHECK(s.append_close(out, 999) == make_error_code(error::invalid_close_code));
        CHECK(s.append_close(out, 0, "why") == make_error_code(error::invalid_close_code));
        CHECK(s.append_close(out, 1000, std::string(124, 'x')) ==
              make_error_code(error::reason_too_long));
        CHECK(s.append_close(out, 1000, "\xc3\x28") ==
              make_error_code(error::invalid_utf8_argument));
        CHECK(s.append_frame(out, opcode::pong, pattern(126)) ==
              make_error_code(error::control_too_big));
        CHECK(s.append_frame(out, opcode::text, txt("x"), &key_rfc) ==
              make_error_code(error::bad_masked_frame));
        CHECK(out.empty());
        CHECK_FALSE(s.append_close(out, 1000, std::string(123, 'x')));
        CHECK(out.size() == 2 + 125);

        codec c(role::client, 13);
        out.clear();
        CHECK_FALSE(c.append_frame(out, opcode::text, txt("Hello"), &key_rfc));
        CHECK(out == hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"));  // RFC 6455 §5.7
        CHECK(c.append_frame(out, opcode::text, txt("x")) ==
              make_error_code(error::bad_unmasked_frame));
    }

    // ============================================================= round trips
    TEST_CASE("round trips: encode -> decode for every version, both directions") {
        for (int version : {75, 76, 1, 2, 3, 4, 5, 6, 7, 8, 13}) {
            CAPTURE(version);
            const wire_format f = wire_format_for(version);
            for (role sender : {role::client, role::server}) {
                CAPTURE(static_cast<int>(sender));
                codec enc(sender, version);
                enc.set_hybi04_key(conn_key04);
                const mask_key keys[] = {nonce_a, nonce_b, key_rfc, key_other};
                std::size_t k = 0;
                const auto key = [&]() -> const mask_key* {
                    return sender == role::client ? &keys[k++ % 4] : nullptr;
                };
                bytes wire;
                std::vector<rec> want;
                REQUIRE_FALSE(enc.append_frame(wire, opcode::text, txt("Hello"), key()));
                want.push_back(text("Hello"));
                REQUIRE_FALSE(enc.append_frame(wire, opcode::text, txt(""), key()));
                want.push_back(text(""));
                if (has_binary(f)) {
                    REQUIRE_FALSE(enc.append_frame(wire, opcode::binary, pattern(300), key()));
                    want.push_back(binary(pattern(300)));
                }
                if (has_ping(f)) {
                    REQUIRE_FALSE(enc.append_frame(wire, opcode::ping, txt("p1"), key()));
                    want.push_back(ping("p1"));
                    // 5 fragments with a ping and a pong between them.
                    const char* parts[] = {"a", "b", "c", "d", "e"};
                    for (int i = 0; i < 5; ++i) {
                        REQUIRE_FALSE(enc.append_frame(wire,
                                                       i == 0 ? opcode::text : opcode::continuation,
                                                       i == 4, txt(parts[i]), key()));
                        if (i == 1) {
                            REQUIRE_FALSE(enc.append_frame(wire, opcode::ping, txt("p2"), key()));
                            want.push_back(ping("p2"));
                        }
                        if (i == 3) {
                            REQUIRE_FALSE(enc.append_frame(wire, opcode::pong, txt(""), key()));
                            want.push_back(pong(""));
                        }
                    }
                    want.push_back(text("abcde"));
                }
                REQUIRE_FALSE(enc.append_close(wire, 1000, "bye", key()));
                // Only draft 06 and later can carry the code and reason.
                if (has_close_codes(version))
                    want.push_back(closed(1000, "bye", hex("03 e8 62 79 65")));
                else
                    want.push_back(closed_empty());
                const role receiver = sender == role::client ? role::server : role::client;
                check_all({receiver, version, {}, true}, wire, want);
            }
        }
    }

    // ============================================================= facade plumbing
    TEST_CASE("codec limits are those of the decoder in use") {
        for (int version : {76, 3, 4, 6, 13}) {
            codec c(role::server, version, limits(7, 9));
            CHECK(c.limits().max_frame_size == 7);
            CHECK(c.limits().max_message_size == 9);
            c.set_limits(limits(100, 200));
            CHECK(c.limits().max_frame_size == 100);
            c.set_contiguous_limit(0);
            c.shrink();
            CHECK_FALSE(c.in_message());
        }
    }
}
