#include "wscoro/protocol/utf8.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

using wscoro::protocol::is_valid_utf8;
using wscoro::protocol::utf8_validator;
using bytes = std::vector<unsigned char>;

bool feed(utf8_validator& v, std::span<const unsigned char> s) {
    return v.feed(std::as_bytes(s));
}

std::string hex(std::span<const unsigned char> s) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (!out.empty()) out += ' ';
        out += digits[c >> 4];
        out += digits[c & 0xF];
    }
    return out;
}

bytes operator+(bytes a, const bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// --- The reference validator -----------------------------------------------------------------
//
// Written from the definition rather than from Table 3-7 (RFC 3629 §3-4, Unicode §3.9 D92):
// decode each code point, then require the shortest form, at most U+10FFFF, and no surrogate.
// A code point cut off by the end of the input is a valid prefix if some continuation bytes
// could still complete it into an allowed code point.

enum class ref_status { complete, incomplete, invalid };

bool overlaps(std::uint32_t lo, std::uint32_t hi, std::uint32_t a, std::uint32_t b) {
    return lo <= b && a <= hi;
}

ref_status reference_validate(std::span<const unsigned char> s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const unsigned b0 = s[i];
        std::size_t len;
        std::uint32_t cp;
        std::uint32_t min_cp;  // the smallest code point that needs `len` bytes
        if (b0 < 0x80) {
            ++i;
            continue;
        } else if (b0 >= 0xC0 && b0 < 0xE0) {
            len = 2, cp = b0 & 0x1F, min_cp = 0x80;
        } else if (b0 >= 0xE0 && b0 < 0xF0) {
            len = 3, cp = b0 & 0x0F, min_cp = 0x800;
        } else if (b0 >= 0xF0 && b0 < 0xF8) {
            len = 4, cp = b0 & 0x07, min_cp = 0x10000;
        } else {
            return ref_status::invalid;  // a continuation byte, or a 5/6-byte form, FE, FF
        }
        const std::size_t have = std::min(len, s.size() - i);
        for (std::size_t k = 1; k < have; ++k) {
            if ((s[i + k] & 0xC0) != 0x80) return ref_status::invalid;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (have < len) {
            // Truncated: the missing bits can make any code point in [lo, hi].
            const unsigned missing_bits = 6 * static_cast<unsigned>(len - have);
            const std::uint32_t lo = cp << missing_bits;
            const std::uint32_t hi = lo | ((std::uint32_t{1} << missing_bits) - 1);
            const bool possible =
                overlaps(lo, hi, min_cp, 0xD7FF) ||
                overlaps(lo, hi, std::max<std::uint32_t>(min_cp, 0xE000), 0x10FFFF);
            return possible ? ref_status::incomplete : ref_status::invalid;
        }
        if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return ref_status::invalid;
        i += len;
    }
    return ref_status::complete;
}

// Feeds `s` one byte at a time and compares the validator with the reference after every
// byte. Returns "" or a description of the first disagreement.
std::string compare_bytewise(std::span<const unsigned char> s) {
    utf8_validator v;
    for (std::size_t m = 1; m <= s.size(); ++m) {
        const bool fed = feed(v, s.subspan(m - 1, 1));
        const ref_status want = reference_validate(s.first(m));
        if (fed != v.valid() || v.valid() != (want != ref_status::invalid) ||
            v.complete() != (want == ref_status::complete))
            return hex(s) + " after " + std::to_string(m) + " bytes";
    }
    if (s.empty() && !v.complete()) return "empty input";
    return {};
}

// Feeds `s` in pieces ending at `cuts` (ascending, last == s.size()) and compares the result
// of every feed() and the final state with the reference.
std::string compare_pieces(std::span<const unsigned char> s, const std::vector<std::size_t>& cuts) {
    utf8_validator v;
    std::size_t from = 0;
    for (std::size_t to : cuts) {
        const bool fed = feed(v, s.subspan(from, to - from));
        if (fed != (reference_validate(s.first(to)) != ref_status::invalid))
            return hex(s) + " in pieces, feed ending at " + std::to_string(to);
        from = to;
    }
    if (v.complete() != (reference_validate(s) == ref_status::complete))
        return hex(s) + " in pieces: complete()";
    return {};
}

// Counts disagreements over many inputs and reports the first.
struct mismatch_log {
    std::size_t count = 0;
    std::string first;
    void add(std::string m) {
        if (m.empty()) return;
        if (count++ == 0) first = std::move(m);
    }
};

// --- Known vectors ---------------------------------------------------------------------------
//
// Autobahn case 6 takes its payloads from Markus Kuhn's UTF-8 decoder stress test; the
// section numbers below are Kuhn's. `fail_at` is the index of the byte at which a byte-by-byte
// feed() first returns false, worked out by hand from Table 3-7: the first byte that has no
// place in any row given the bytes before it. -1 means feed() never fails.

struct vector_case {
    const char* name;
    bytes input;
    int fail_at;
    bool complete;  // when fail_at == -1: ends on a code point boundary
};

vector_case ok(const char* name, bytes in) {
    return {name, std::move(in), -1, true};
}
vector_case truncated(const char* name, bytes in) {
    return {name, std::move(in), -1, false};
}
vector_case fails_at(int i, const char* name, bytes in) {
    return {name, std::move(in), i, false};
}

const bytes kosme = {0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5};
const bytes edited = {'e', 'd', 'i', 't', 'e', 'd'};

std::vector<vector_case> known_vectors() {
    std::vector<vector_case> v = {
        ok("empty", {}),
        ok("ASCII", {'H', 'e', 'l', 'l', 'o'}),
        ok("Hello-µ@ßöäüàá-UTF-8!!", {0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x2D, 0xC2, 0xB5, 0x40, 0xC3,
                                      0x9F, 0xC3, 0xB6, 0xC3, 0xA4, 0xC3, 0xBC, 0xC3, 0xA0, 0xC3,
                                      0xA1, 0x2D, 0x55, 0x54, 0x46, 0x2D, 0x38, 0x21, 0x21}),
        ok("κόσμε", kosme),
        // κόσμε is bytes 0..10; byte 11 is ED, and byte 12 (A0) is outside ED's 80..9F.
        fails_at(12, "κόσμε + surrogate U+D800 + edited", kosme + bytes{0xED, 0xA0, 0x80} + edited),
        // Byte 11 is F4, which allows only 80..8F next: byte 12 (90) is the first bad one.
        fails_at(12, "κόσμε + U+110000 + edited", kosme + bytes{0xF4, 0x90, 0x80, 0x80} + edited),

        // 2 Boundary code points, first and last of each length and of each Table 3-7 row.
        ok("U+0000", {0x00}),
        ok("U+007F", {0x7F}),
        ok("U+0080", {0xC2, 0x80}),
        ok("U+07FF", {0xDF, 0xBF}),
        ok("U+0800", {0xE0, 0xA0, 0x80}),
        ok("U+FFFF", {0xEF, 0xBF, 0xBF}),
        ok("U+10000", {0xF0, 0x90, 0x80, 0x80}),
        ok("U+10FFFF", {0xF4, 0x8F, 0xBF, 0xBF}),
        ok("U+D7FF", {0xED, 0x9F, 0xBF}),
        ok("U+E000", {0xEE, 0x80, 0x80}),
        ok("U+FFFD", {0xEF, 0xBF, 0xBD}),
        ok("U+1000 (E1 row)", {0xE1, 0x80, 0x80}),
        ok("U+CFFF (EC row)", {0xEC, 0xBF, 0xBF}),
        ok("U+40000 (F1 row)", {0xF1, 0x80, 0x80, 0x80}),
        ok("U+FFFFF (F3 row)", {0xF3, 0xBF, 0xBF, 0xBF}),
        ok("U+100000", {0xF4, 0x80, 0x80, 0x80}),
        fails_at(1, "U+110000", {0xF4, 0x90, 0x80, 0x80}),
        fails_at(1, "U+13FFFF", {0xF4, 0xBF, 0xBF, 0xBF}),
        fails_at(0, "U+140000 (F5 lead)", {0xF5, 0x80, 0x80, 0x80}),
        // 2.2 Last possible sequence of 4, 5, 6 bytes: F7, FB, FD are not lead bytes at all.
        fails_at(0, "U+1FFFFF in 4 bytes", {0xF7, 0xBF, 0xBF, 0xBF}),
        fails_at(0, "U+3FFFFFF in 5 bytes", {0xFB, 0xBF, 0xBF, 0xBF, 0xBF}),
        fails_at(0, "U+7FFFFFFF in 6 bytes", {0xFD, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF}),
        // 2.1 First sequence of 5 and 6 bytes.
        fails_at(0, "5-byte form", {0xF8, 0x88, 0x80, 0x80, 0x80}),
        fails_at(0, "6-byte form", {0xFC, 0x84, 0x80, 0x80, 0x80, 0x80}),

        // 3.1 Unexpected continuation bytes: no row starts with 80..BF.
        fails_at(0, "lone 80", {0x80}),
        fails_at(0, "lone BF", {0xBF}),
        fails_at(0, "80 BF", {0x80, 0xBF}),
        fails_at(0, "80 BF 80", {0x80, 0xBF, 0x80}),
        fails_at(0, "80 BF 80 BF 80 BF 80", {0x80, 0xBF, 0x80, 0xBF, 0x80, 0xBF, 0x80}),
        fails_at(3, "abc 80 def", {'a', 'b', 'c', 0x80, 'd', 'e', 'f'}),
        fails_at(2, "U+0080 then an extra continuation", {0xC2, 0x80, 0x80}),
        fails_at(3, "U+0800 then an extra continuation", {0xE0, 0xA0, 0x80, 0xBF}),
        fails_at(4, "U+10000 then an extra continuation", {0xF0, 0x90, 0x80, 0x80, 0x80}),

        // 3.2 Lonely start characters: a space where a continuation byte is due.
        fails_at(0, "C0 space", {0xC0, 0x20}),
        fails_at(1, "C2 space", {0xC2, 0x20}),
        fails_at(1, "DF space", {0xDF, 0x20}),
        fails_at(1, "E0 space", {0xE0, 0x20}),
        fails_at(1, "EF space", {0xEF, 0x20}),
        fails_at(1, "F0 space", {0xF0, 0x20}),
        fails_at(1, "F4 space", {0xF4, 0x20}),
        fails_at(0, "F8 space", {0xF8, 0x20}),
        fails_at(0, "FC space", {0xFC, 0x20}),
        fails_at(2, "E1 80 space", {0xE1, 0x80, 0x20}),
        fails_at(3, "F1 80 80 space", {0xF1, 0x80, 0x80, 0x20}),
        fails_at(1, "C2 then a lead byte", {0xC2, 0xC2, 0x80}),
        fails_at(2, "E1 80 then a lead byte", {0xE1, 0x80, 0xE1, 0x80, 0x80}),

        // 3.3 Sequences with the last continuation byte missing, at the end of the input:
        // still a valid prefix, not complete.
        truncated("C2", {0xC2}),
        truncated("DF", {0xDF}),
        truncated("E1 80", {0xE1, 0x80}),
        truncated("E0 A0", {0xE0, 0xA0}),
        truncated("ED 9F", {0xED, 0x9F}),
        truncated("EF BF", {0xEF, 0xBF}),
        truncated("F1 80 80", {0xF1, 0x80, 0x80}),
        truncated("F0 90", {0xF0, 0x90}),
        truncated("F4 8F BF", {0xF4, 0x8F, 0xBF}),
        truncated("E0", {0xE0}),
        truncated("ED", {0xED}),
        truncated("F0", {0xF0}),
        truncated("F4", {0xF4}),
        truncated("κόσμε + E1 BD", kosme + bytes{0xE1, 0xBD}),
        fails_at(0, "C0 (overlong 2-byte prefix)", {0xC0}),
        fails_at(1, "E0 80 (overlong 3-byte prefix)", {0xE0, 0x80}),
        fails_at(1, "F0 80 80 (overlong 4-byte prefix)", {0xF0, 0x80, 0x80}),
        fails_at(0, "F8 80 80 80", {0xF8, 0x80, 0x80, 0x80}),
        fails_at(0, "FC 80 80 80 80", {0xFC, 0x80, 0x80, 0x80, 0x80}),
        fails_at(0, "F7 BF BF", {0xF7, 0xBF, 0xBF}),
        // 3.4 Concatenation of the 3.3 sequences.
        fails_at(0, "3.3 concatenated",
                 {0xC0, 0xE0, 0x80, 0xF0, 0x80, 0x80, 0xF8, 0x80, 0x80, 0x80,
                  0xFC, 0x80, 0x80, 0x80, 0x80, 0xDF, 0xEF, 0xBF, 0xF7, 0xBF,
                  0xBF, 0xFB, 0xBF, 0xBF, 0xBF, 0xFD, 0xBF, 0xBF, 0xBF, 0xBF}),
        fails_at(1, "DF EF BF (3.4 without its invalid start)", {0xDF, 0xEF, 0xBF}),

        // 3.5 Impossible bytes.
        fails_at(0, "FE", {0xFE}),
        fails_at(0, "FF", {0xFF}),
        fails_at(0, "FE FE FF FF", {0xFE, 0xFE, 0xFF, 0xFF}),
        fails_at(5, "Hello FF", {'H', 'e', 'l', 'l', 'o', 0xFF}),

        // 4.1 Overlong '/': C0/C1 lead nothing; E0 needs A0..BF; F0 needs 90..BF.
        fails_at(0, "overlong / in 2 bytes", {0xC0, 0xAF}),
        fails_at(1, "overlong / in 3 bytes", {0xE0, 0x80, 0xAF}),
        fails_at(1, "overlong / in 4 bytes", {0xF0, 0x80, 0x80, 0xAF}),
        fails_at(0, "overlong / in 5 bytes", {0xF8, 0x80, 0x80, 0x80, 0xAF}),
        fails_at(0, "overlong / in 6 bytes", {0xFC, 0x80, 0x80, 0x80, 0x80, 0xAF}),
        // 4.2 Maximum overlong sequences.
        fails_at(0, "U+007F in 2 bytes", {0xC1, 0xBF}),
        fails_at(1, "U+07FF in 3 bytes", {0xE0, 0x9F, 0xBF}),
        fails_at(1, "U+FFFF in 4 bytes", {0xF0, 0x8F, 0xBF, 0xBF}),
        fails_at(0, "U+1FFFFF in 5 bytes", {0xF8, 0x87, 0xBF, 0xBF, 0xBF}),
        fails_at(0, "U+3FFFFFF in 6 bytes", {0xFC, 0x83, 0xBF, 0xBF, 0xBF, 0xBF}),
        // 4.3 Overlong NUL.
        fails_at(0, "NUL in 2 bytes", {0xC0, 0x80}),
        fails_at(1, "NUL in 3 bytes", {0xE0, 0x80, 0x80}),
        fails_at(1, "NUL in 4 bytes", {0xF0, 0x80, 0x80, 0x80}),
        fails_at(0, "NUL in 5 bytes", {0xF8, 0x80, 0x80, 0x80, 0x80}),
        fails_at(0, "NUL in 6 bytes", {0xFC, 0x80, 0x80, 0x80, 0x80, 0x80}),

        // 5.1 Single surrogates: after ED only 80..9F may follow, so byte 1 fails.
        fails_at(1, "U+D800", {0xED, 0xA0, 0x80}),
        fails_at(1, "U+DB7F", {0xED, 0xAD, 0xBF}),
        fails_at(1, "U+DB80", {0xED, 0xAE, 0x80}),
        fails_at(1, "U+DBFF", {0xED, 0xAF, 0xBF}),
        fails_at(1, "U+DC00", {0xED, 0xB0, 0x80}),
        fails_at(1, "U+DF80", {0xED, 0xBE, 0x80}),
        fails_at(1, "U+DFFF", {0xED, 0xBF, 0xBF}),
        fails_at(1, "ED A0 (surrogate prefix)", {0xED, 0xA0}),
        // 5.2 Paired surrogates (CESU-8).
        fails_at(1, "U+D800 U+DC00", {0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}),
        fails_at(1, "U+D800 U+DFFF", {0xED, 0xA0, 0x80, 0xED, 0xBF, 0xBF}),
        fails_at(1, "U+DB7F U+DC00", {0xED, 0xAD, 0xBF, 0xED, 0xB0, 0x80}),
        fails_at(1, "U+DB7F U+DFFF", {0xED, 0xAD, 0xBF, 0xED, 0xBF, 0xBF}),
        fails_at(1, "U+DB80 U+DC00", {0xED, 0xAE, 0x80, 0xED, 0xB0, 0x80}),
        fails_at(1, "U+DB80 U+DFFF", {0xED, 0xAE, 0x80, 0xED, 0xBF, 0xBF}),
        fails_at(1, "U+DBFF U+DC00", {0xED, 0xAF, 0xBF, 0xED, 0xB0, 0x80}),
        fails_at(1, "U+DBFF U+DFFF", {0xED, 0xAF, 0xBF, 0xED, 0xBF, 0xBF}),
        fails_at(4, "U+D7FF then U+DC00", {0xED, 0x9F, 0xBF, 0xED, 0xB0, 0x80}),

        // 5.3 Noncharacters are well-formed UTF-8 (Autobahn 6.22 expects them accepted).
        ok("U+FFFE", {0xEF, 0xBF, 0xBE}),
        ok("U+FDD0", {0xEF, 0xB7, 0x90}),
        ok("U+FDEF", {0xEF, 0xB7, 0xAF}),
        ok("U+1FFFE", {0xF0, 0x9F, 0xBF, 0xBE}),
        ok("U+10FFFE", {0xF4, 0x8F, 0xBF, 0xBE}),
    };
    // Autobahn 6.6: every prefix of κόσμε; complete exactly at its code point boundaries.
    static const char* const prefix_names[] = {
        "κόσμε[..1]", "κόσμε[..2]", "κόσμε[..3]", "κόσμε[..4]", "κόσμε[..5]",
        "κόσμε[..6]", "κόσμε[..7]", "κόσμε[..8]", "κόσμε[..9]", "κόσμε[..10]"};
    for (std::size_t n = 1; n < kosme.size(); ++n) {
        const bool boundary = n == 2 || n == 5 || n == 7 || n == 9;
        const auto prefix = std::span(kosme).first(n);
        v.push_back({prefix_names[n - 1], bytes(prefix.begin(), prefix.end()), -1, boundary});
    }
    return v;
}

}  // namespace

TEST_SUITE("utf8") {
    TEST_CASE("reference validator agrees with the hand-derived vectors") {
        // Guards the guard: the differential tests below are only as good as the reference.
        for (const auto& c : known_vectors()) {
            CAPTURE(c.name);
            const ref_status want = c.fail_at >= 0 ? ref_status::invalid
                                    : c.complete   ? ref_status::complete
                                                   : ref_status::incomplete;
            CHECK(reference_validate(c.input) == want);
        }
    }

    TEST_CASE("known vectors fed whole") {
        for (const auto& c : known_vectors()) {
            CAPTURE(c.name);
            utf8_validator v;
            const bool should_pass = c.fail_at < 0;
            CHECK(feed(v, c.input) == should_pass);
            CHECK(v.valid() == should_pass);
            CHECK(v.complete() == (should_pass && c.complete));
            CHECK(is_valid_utf8(std::as_bytes(std::span(c.input))) == (should_pass && c.complete));
        }
    }

    TEST_CASE("known vectors fed byte by byte fail at exactly the expected byte") {
        for (const auto& c : known_vectors()) {
            CAPTURE(c.name);
            utf8_validator v;
            int first_false = -1;
            for (std::size_t i = 0; i < c.input.size(); ++i) {
                const bool fed = feed(v, std::span(c.input).subspan(i, 1));
                CHECK(fed == v.valid());
                if (!fed && first_false < 0) first_false = static_cast<int>(i);
            }
            CHECK(first_false == c.fail_at);
            CHECK(v.complete() == (c.fail_at < 0 && c.complete));
        }
    }

    TEST_CASE("known vectors split at every boundary, in two and in three pieces") {
        for (const auto& c : known_vectors()) {
            CAPTURE(c.name);
            const std::span<const unsigned char> in(c.input);
            const std::size_t n = in.size();
            // feed() covering bytes [0, end) returns true iff the failing byte is not among them.
            auto passes_until = [&](std::size_t end) {
                return c.fail_at < 0 || static_cast<std::size_t>(c.fail_at) >= end;
            };
            for (std::size_t a = 0; a <= n; ++a) {
                CAPTURE(a);
                utf8_validator two;
                CHECK(feed(two, in.first(a)) == passes_until(a));
                CHECK(feed(two, in.subspan(a)) == passes_until(n));
                CHECK(two.complete() == (c.fail_at < 0 && c.complete));
                for (std::size_t b = a; b <= n; ++b) {
                    CAPTURE(b);
                    utf8_validator three;
                    CHECK(feed(three, in.first(a)) == passes_until(a));
                    CHECK(feed(three, in.subspan(a, b - a)) == passes_until(b));
                    CHECK(feed(three, in.subspan(b)) == passes_until(n));
                    CHECK(three.complete() == (c.fail_at < 0 && c.complete));
                }
            }
        }
    }

    TEST_CASE("differential: every 1- and 2-byte input") {
        mismatch_log log;
        for (unsigned a = 0; a < 256; ++a) {
            const bytes one = {static_cast<unsigned char>(a)};
            log.add(compare_bytewise(one));
            for (unsigned b = 0; b < 256; ++b) {
                const bytes two = {static_cast<unsigned char>(a), static_cast<unsigned char>(b)};
                log.add(compare_bytewise(two));
                log.add(compare_pieces(two, {2}));
            }
        }
        CHECK_MESSAGE(log.count == 0, log.first);
    }

    TEST_CASE("differential: every 3-byte input starting with E0, ED, EF, F0, F4") {
        mismatch_log log;
        for (unsigned a : {0xE0u, 0xEDu, 0xEFu, 0xF0u, 0xF4u}) {
            std::size_t valid_prefixes = 0;
            for (unsigned b = 0; b < 256; ++b) {
                for (unsigned c = 0; c < 256; ++c) {
                    const bytes s = {static_cast<unsigned char>(a), static_cast<unsigned char>(b),
                                     static_cast<unsigned char>(c)};
                    log.add(compare_bytewise(s));
                    log.add(compare_pieces(s, {3}));
                    log.add(compare_pieces(s, {1, 3}));
                    if (reference_validate(s) != ref_status::invalid) ++valid_prefixes;
                }
            }
            // The space is not trivially all-invalid: E0 A0..BF 80..BF gives 32*64 and so on.
            CAPTURE(a);
            CHECK(valid_prefixes >= 16 * 64);
        }
        CHECK_MESSAGE(log.count == 0, log.first);
    }

    TEST_CASE("differential: 200000 random strings, byte by byte and in random pieces") {
        std::mt19937 rng(20240601);
        mismatch_log log;
        std::size_t complete_non_ascii = 0;
        std::size_t incomplete = 0;
        for (int iter = 0; iter < 200000; ++iter) {
            const std::size_t len = rng() % 17;
            bytes s(len);
            for (auto& byte : s) {
                // Mostly continuation and lead bytes, so that multi-byte sequences (valid and
                // nearly valid) are common; sometimes anything at all.
                switch (rng() % 4) {
                    case 0:
                    case 1:
                        byte = static_cast<unsigned char>(0x80 + rng() % 0x40);
                        break;
                    case 2:
                        byte = static_cast<unsigned char>(0xC0 + rng() % 0x35);
                        break;
                    default:
                        byte = static_cast<unsigned char>(rng() % 256);
                        break;
                }
            }
            log.add(compare_bytewise(s));

            std::vector<std::size_t> cuts;
            for (std::size_t at = 0; at < len; ++at)
                if (rng() % 3 == 0) cuts.push_back(at);
            cuts.push_back(len);
            log.add(compare_pieces(s, cuts));

            const ref_status r = reference_validate(s);
            if (r == ref_status::complete &&
                std::any_of(s.begin(), s.end(), [](auto b) { return b >= 0x80; }))
                ++complete_non_ascii;
            if (r == ref_status::incomplete) ++incomplete;
        }
        CHECK_MESSAGE(log.count == 0, log.first);
        // The bias must actually produce interesting inputs, or this test proves little.
        CHECK(complete_non_ascii > 1000);
        CHECK(incomplete > 1000);
    }

    TEST_CASE("ASCII fast path: a bad byte at every offset 0..31 in a long ASCII run") {
        // Each case: what is placed at `k`, and how many bytes after it feed() first fails.
        struct bad {
            bytes at_k;
            std::size_t fails_after;
        };
        const bad bads[] = {
            {{0x80}, 0},        // continuation byte between code points
            {{0xFF}, 0},        // never a UTF-8 byte
            {{0xC0, 0xAF}, 0},  // overlong lead
            {{0xC2}, 1},        // lead byte followed by ASCII
            {{0xE1, 0x80}, 2},  // truncated 3-byte sequence followed by ASCII
            {{0xED, 0xA0, 0x80}, 1},
            {{0xF4, 0x90, 0x80, 0x80}, 1},
        };
        for (std::size_t shift = 0; shift < 8; ++shift) {
            for (std::size_t k = 0; k < 32; ++k) {
                for (const auto& b : bads) {
                    CAPTURE(shift);
                    CAPTURE(k);
                    CAPTURE(hex(b.at_k));
                    // `shift` bytes of padding so the run starts at every alignment.
                    bytes buf(shift, 'x');
                    bytes text(k, 'a');
                    text = text + b.at_k + bytes(40, 'b');
                    buf = buf + text;
                    const std::span<const unsigned char> in = std::span(buf).subspan(shift);
                    const std::size_t bad_index = k + b.fails_after;

                    utf8_validator whole;
                    CHECK_FALSE(feed(whole, in));
                    CHECK_FALSE(whole.valid());

                    utf8_validator before;  // everything before the bad byte is fine
                    CHECK(feed(before, in.first(bad_index)));
                    CHECK(before.valid());

                    utf8_validator upto;  // ... and it is the bad byte that fails
                    CHECK_FALSE(feed(upto, in.first(bad_index + 1)));
                }
            }
        }
    }

    TEST_CASE("ASCII fast path: valid multi-byte characters at every offset 0..31") {
        const bytes chars[] = {{0xC2, 0x80}, {0xE2, 0x82, 0xAC}, {0xF0, 0x9F, 0x98, 0x80}, kosme};
        for (std::size_t k = 0; k < 32; ++k) {
            for (const auto& c : chars) {
                CAPTURE(k);
                CAPTURE(hex(c));
                const bytes in = bytes(k, 'a') + c + bytes(40, 'b') + c + bytes(9, 'c');
                utf8_validator v;
                CHECK(feed(v, in));
                CHECK(v.complete());

                // Cuts inside the character(s): the word test must not run mid-sequence.
                for (std::size_t cut = k + 1; cut < k + c.size(); ++cut) {
                    CAPTURE(cut);
                    const auto prefix = std::span(in).first(cut);
                    utf8_validator split;
                    CHECK(feed(split, prefix));
                    CHECK(split.complete() == (reference_validate(prefix) == ref_status::complete));
                    CHECK(feed(split, std::span(in).subspan(cut)));
                    CHECK(split.complete());
                }
            }
        }
    }

    TEST_CASE("a pending lead byte is not forgotten across feeds of ASCII words") {
        utf8_validator v;
        CHECK(feed(v, bytes(24, 'a') + bytes{0xE2}));
        CHECK_FALSE(v.complete());
        CHECK_FALSE(feed(v, bytes(16, 'a')));

        utf8_validator w;
        CHECK(feed(w, bytes(24, 'a') + bytes{0xF0, 0x9F}));
        CHECK(feed(w, bytes{0x98}));
        CHECK_FALSE(w.complete());
        CHECK(feed(w, bytes{0x80} + bytes(16, 'a')));
        CHECK(w.complete());
    }

    TEST_CASE("invalid stays invalid until reset()") {
        utf8_validator v;
        CHECK_FALSE(v.feed("\xC0"));
        CHECK_FALSE(v.feed("plain ASCII, long enough for the fast path"));
        CHECK_FALSE(v.feed(""));
        CHECK_FALSE(v.valid());
        CHECK_FALSE(v.complete());
        v.reset();
        CHECK(v.valid());
        CHECK(v.complete());
        CHECK(v.feed("plain ASCII, long enough for the fast path"));
        CHECK(v.complete());
    }

    TEST_CASE("string_view overloads") {
        CHECK(is_valid_utf8(""));
        CHECK(is_valid_utf8("Hello"));
        CHECK(is_valid_utf8("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"));
        CHECK_FALSE(is_valid_utf8("\xCE"));          // truncated
        CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));  // surrogate
        CHECK(is_valid_utf8(std::string_view("a\0b", 3)));
        utf8_validator v;
        CHECK(v.feed("\xE2\x82"));
        CHECK_FALSE(v.complete());
        CHECK(v.feed("\xAC"));
        CHECK(v.complete());
    }

    // The validator skips ASCII 32 and 8 bytes at a time, stops at the first non-ASCII byte of
    // a word, and then runs its DFA over 16 bytes before it looks for ASCII again. These cases
    // put every kind of byte at every position relative to those words and runs.

    // For each ASCII prefix length below `shifts` and each character below: text of that
    // many ASCII bytes, then the character repeated to at least `length` bytes more; calls
    // each(text, k, bad_index, s) for every k in [prefix, text.size()] and every bad
    // sequence, with s = text with bads[bad_index] inserted at k (possibly mid-character).
    template <class Each>
    void for_each_insertion(std::size_t shifts, std::size_t length, std::span<const bytes> bads,
                            Each && each) {
        const bytes chars[] = {{0xC3, 0xA9}, {0xE2, 0x82, 0xAC}, {0xF0, 0x9F, 0x98, 0x80}};
        for (std::size_t shift = 0; shift < shifts; ++shift) {
            for (const auto& c : chars) {
                bytes text(shift, 'a');
                while (text.size() < shift + length)
                    text = text + c;
                for (std::size_t k = shift; k <= text.size(); ++k) {
                    for (std::size_t b = 0; b < bads.size(); ++b) {
                        bytes s(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(k));
                        s = s + bads[b] +
                            bytes(text.begin() + static_cast<std::ptrdiff_t>(k), text.end());
                        each(text, k, b, s);
                    }
                }
            }
        }
    }

    TEST_CASE("DFA runs: a bad byte at every position of non-ASCII text, every alignment") {
        const bytes bads[] = {{0x80},       {0xFF},       {0xC1, 0xBF}, {0xE0, 0x80},
                              {0xED, 0xBF}, {0xF4, 0x90}, {0xE2, 0x41}, {0xF0, 0x9F, 0x98, 0x41}};
        mismatch_log log;
        // ASCII, then non-ASCII text long enough for three DFA runs.
        for_each_insertion(8, 56, bads,
                           [&](const bytes&, std::size_t, std::size_t, const bytes& s) {
                               const ref_status want = reference_validate(s);
                               utf8_validator whole;
                               const bool fed = feed(whole, s);
                               if (fed != (want != ref_status::invalid) ||
                                   whole.complete() != (want == ref_status::complete))
                                   log.add(hex(s) + " fed whole");
                               // The exact failing byte: every prefix agrees with the reference.
                               log.add(compare_bytewise(s));
                               for (std::size_t cut = 1; cut < s.size(); ++cut)
                                   log.add(compare_pieces(s, {cut, s.size()}));
                           });
        CHECK_MESSAGE(log.count == 0, log.first);
    }

    TEST_CASE("differential: 1500 long mixed strings, whole, byte by byte and at every split") {
        std::mt19937 rng(20240702);
        const bytes pieces[] = {{'a'},
                                {'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'},
                                bytes(20, 'z'),
                                {0xC3, 0xA9},
                                {0xD0, 0x96},
                                {0xE2, 0x82, 0xAC},
                                {0xED, 0x9F, 0xBF},
                                {0xEF, 0xBF, 0xBD},
                                {0xF0, 0x9F, 0x98, 0x80},
                                {0xF4, 0x8F, 0xBF, 0xBF}};
        mismatch_log log;
        std::size_t invalid = 0;
        for (int iter = 0; iter < 1500; ++iter) {
            bytes s;
            const std::size_t target = rng() % 150;
            while (s.size() < target)
                s = s + pieces[rng() % std::size(pieces)];
            // Two in three strings get one byte changed to anything at all.
            if (!s.empty() && rng() % 3 != 0)
                s[rng() % s.size()] = static_cast<unsigned char>(rng() % 256);
            if (reference_validate(s) == ref_status::invalid) ++invalid;
            utf8_validator whole;
            const ref_status want = reference_validate(s);
            if (feed(whole, s) != (want != ref_status::invalid) ||
                whole.complete() != (want == ref_status::complete))
                log.add(hex(s) + " fed whole");
            log.add(compare_bytewise(s));
            for (std::size_t cut = 1; cut < s.size(); ++cut)
                log.add(compare_pieces(s, {cut, s.size()}));
            std::vector<std::size_t> cuts;
            for (std::size_t at = 1; at < s.size(); ++at)
                if (rng() % 9 == 0) cuts.push_back(at);
            cuts.push_back(s.size());
            log.add(compare_pieces(s, cuts));
        }
        CHECK_MESSAGE(log.count == 0, log.first);
        CHECK(invalid > 300);
    }

    // Long input (64 bytes and more from a character boundary) is validated 32 bytes at a time
    // where the CPU allows (AVX2, utf8.cpp), then the scalar DFA resumes at the last character
    // the blocks cut. These cases put every kind of byte pair and character across those
    // block boundaries, and errors at every position of long non-ASCII text.

    // `s` fed whole and in two pieces at `cut` (when inside), compared with the reference.
    std::string compare_whole_and_cut(std::span<const unsigned char> s, std::size_t cut) {
        const ref_status want = reference_validate(s);
        utf8_validator whole;
        const bool fed = feed(whole, s);
        if (fed != (want != ref_status::invalid) ||
            whole.complete() != (want == ref_status::complete))
            return hex(s) + " fed whole";
        if (cut > 0 && cut < s.size()) return compare_pieces(s, {cut, s.size()});
        return {};
    }

    TEST_CASE("32-byte blocks: every byte pair at every offset around a block boundary") {
        mismatch_log log;
        std::size_t invalid = 0;
        for (std::size_t at = 28; at <= 33; ++at) {
            for (unsigned a = 0; a < 256; ++a) {
                for (unsigned b = 0; b < 256; ++b) {
                    bytes s(at, 'a');
                    s.push_back(static_cast<unsigned char>(a));
                    s.push_back(static_cast<unsigned char>(b));
                    s.resize(96, 'a');
                    if (reference_validate(s) == ref_status::invalid) ++invalid;
                    log.add(compare_whole_and_cut(s, 0));
                }
            }
        }
        CHECK_MESSAGE(log.count == 0, log.first);
        CHECK(invalid > 6 * 30000);
    }

    TEST_CASE("32-byte blocks: every E0/ED/EF/F0/F4/F5 character across a block boundary") {
        // Lead, every second byte, then a few third (and fourth) bytes, starting at offsets that
        // put each of its bytes last in a block; ASCII or a character after it.
        const unsigned leads[] = {0xE0, 0xE1, 0xED, 0xEF, 0xF0, 0xF3, 0xF4, 0xF5};
        const unsigned tails[] = {0x41, 0x80, 0xBF, 0xC3};
        mismatch_log log;
        std::size_t complete = 0;
        for (std::size_t at = 28; at <= 32; ++at) {
            for (unsigned lead : leads) {
                for (unsigned b1 = 0x70; b1 < 0xD0; ++b1) {
                    for (unsigned b2 : tails) {
                        for (unsigned b3 : tails) {
                            bytes s(at, 'a');
                            s = s + bytes{static_cast<unsigned char>(lead),
                                          static_cast<unsigned char>(b1),
                                          static_cast<unsigned char>(b2),
                                          static_cast<unsigned char>(b3)};
                            while (s.size() < 100)
                                s = s + bytes{0xC3, 0xA9};
                            if (reference_validate(s) == ref_status::complete) ++complete;
                            log.add(compare_whole_and_cut(s, at + 2));
                        }
                    }
                }
            }
        }
        CHECK_MESSAGE(log.count == 0, log.first);
        CHECK(complete > 1000);
    }

    TEST_CASE("32-byte blocks: a bad byte at every position of long non-ASCII text") {
        const bytes bads[] = {{0x80},       {0xFF},       {0xC0, 0x80}, {0xE0, 0x9F, 0x80},
                              {0xED, 0xA0}, {0xF4, 0x90}, {0xF0, 0x8F}, {0xE2, 0x41},
                              {0xF5, 0x80}, {0xC2}};
        mismatch_log log;
        // ASCII, then non-ASCII text of five blocks and a few bytes.
        for_each_insertion(36, 166, bads,
                           [&](const bytes& text, std::size_t k, std::size_t b, const bytes& s) {
                               log.add(compare_whole_and_cut(s, (k * 7) % s.size()));
                               // The text cut short at k: valid exactly when k ends a character.
                               if (b == 0)
                                   log.add(compare_whole_and_cut(std::span(text).first(k), k / 2));
                           });
        CHECK_MESSAGE(log.count == 0, log.first);
    }

    TEST_CASE("differential: 4000 long mixed strings, whole and in random pieces") {
        std::mt19937 rng(20261124);
        const bytes pieces[] = {{'a'},
                                bytes(7, 'q'),
                                bytes(40, 'z'),
                                {0xC3, 0xA9},
                                {0xDF, 0xBF},
                                {0xE0, 0xA0, 0x80},
                                {0xE2, 0x82, 0xAC},
                                {0xED, 0x9F, 0xBF},
                                {0xEE, 0x80, 0x80},
                                {0xF0, 0x90, 0x80, 0x80},
                                {0xF0, 0x9F, 0x98, 0x80},
                                {0xF4, 0x8F, 0xBF, 0xBF}};
        mismatch_log log;
        std::size_t invalid = 0;
        std::size_t complete = 0;
        for (int iter = 0; iter < 4000; ++iter) {
            bytes s;
            const std::size_t target = 64 + rng() % 700;
            while (s.size() < target)
                s = s + pieces[rng() % std::size(pieces)];
            // Most strings get up to three bytes changed to anything at all.
            const unsigned changes = rng() % 4;
            for (unsigned i = 0; i < changes; ++i)
                s[rng() % s.size()] = static_cast<unsigned char>(rng() % 256);
            const ref_status want = reference_validate(s);
            if (want == ref_status::invalid) ++invalid;
            if (want == ref_status::complete) ++complete;
            log.add(compare_whole_and_cut(s, rng() % s.size()));
            std::vector<std::size_t> cuts;
            for (std::size_t at = 1; at < s.size(); ++at)
                if (rng() % 50 == 0) cuts.push_back(at);
            cuts.push_back(s.size());
            log.add(compare_pieces(s, cuts));
        }
        CHECK_MESSAGE(log.count == 0, log.first);
        CHECK(invalid > 1000);
        CHECK(complete > 500);
    }
}
