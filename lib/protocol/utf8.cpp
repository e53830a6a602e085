#include "wscoro/protocol/utf8.hpp"

#include <array>
#include <cstring>

namespace wscoro::protocol {
namespace {

// A DFA whose non-reject states are exactly the proper prefixes of the well-formed byte
// sequences of Unicode Table 3-7 (accept = at a code point boundary). Every state other than
// reject can still be completed, so reaching reject is the earliest byte at which the input
// stops being a prefix of valid UTF-8: that is what makes the validator fail-fast
// (RFC 6455 §8.1).
enum state : std::uint8_t {
    s_accept = 0,
    s_reject = 1,
    s_tail1,  // one more 80..BF
    s_tail2,  // two more 80..BF
    s_tail3,  // three more 80..BF
    s_e0,     // after E0: A0..BF, then one 80..BF (no overlong 3-byte forms)
    s_ed,     // after ED: 80..9F, then one 80..BF (no surrogates D800..DFFF)
    s_f0,     // after F0: 90..BF, then two 80..BF (no overlong 4-byte forms)
    s_f4,     // after F4: 80..8F, then two 80..BF (nothing above U+10FFFF)
    state_count
};

constexpr bool in(unsigned b, unsigned lo, unsigned hi) {
    return lo <= b && b <= hi;
}

// Table 3-7, one row per line. Bytes it does not list (C0, C1, F5..FF, and a continuation
// byte where a lead byte is due) reject.
constexpr std::uint8_t next_state(std::uint8_t s, unsigned b) {
    switch (s) {
        case s_accept:
            if (b <= 0x7F) return s_accept;         // 00..7F
            if (in(b, 0xC2, 0xDF)) return s_tail1;  // C2..DF 80..BF
            if (b == 0xE0) return s_e0;             // E0 A0..BF 80..BF
            if (in(b, 0xE1, 0xEC)) return s_tail2;  // E1..EC 80..BF 80..BF
            if (b == 0xED) return s_ed;             // ED 80..9F 80..BF
            if (in(b, 0xEE, 0xEF)) return s_tail2;  // EE..EF 80..BF 80..BF
            if (b == 0xF0) return s_f0;             // F0 90..BF 80..BF 80..BF
            if (in(b, 0xF1, 0xF3)) return s_tail3;  // F1..F3 80..BF 80..BF 80..BF
            if (b == 0xF4) return s_f4;             // F4 80..8F 80..BF 80..BF
            return s_reject;
        case s_tail1:
            return in(b, 0x80, 0xBF) ? s_accept : s_reject;
        case s_tail2:
            return in(b, 0x80, 0xBF) ? s_tail1 : s_reject;
        case s_tail3:
            return in(b, 0x80, 0xBF) ? s_tail2 : s_reject;
        case s_e0:
            return in(b, 0xA0, 0xBF) ? s_tail1 : s_reject;
        case s_ed:
            return in(b, 0x80, 0x9F) ? s_tail1 : s_reject;
        case s_f0:
            return in(b, 0x90, 0xBF) ? s_tail2 : s_reject;
        case s_f4:
            return in(b, 0x80, 0x8F) ? s_tail2 : s_reject;
        default:
            return s_reject;  // reject is absorbing
    }
}

// The same function tabulated (9 x 256 bytes, fits in L1), so a byte costs one load.
using transition_table = std::array<std::array<std::uint8_t, 256>, state_count>;
constexpr transition_table make_table() {
    transition_table t{};
    for (unsigned s = 0; s < state_count; ++s)
        for (unsigned b = 0; b < 256; ++b)
            t[s][b] = next_state(static_cast<std::uint8_t>(s), b);
    return t;
}
constexpr transition_table table = make_table();

bool is_ascii8(const unsigned char* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return (w & 0x8080808080808080u) == 0;
}

// Four words at once: one test per 32 bytes of ASCII (the compiler may use vector loads).
bool is_ascii32(const unsigned char* p) noexcept {
    std::uint64_t w[4];
    std::memcpy(w, p, sizeof w);
    return ((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080u) == 0;
}

}  // namespace

bool utf8_validator::feed(std::span<const std::byte> bytes) noexcept {
    static_assert(s_accept == accept && s_reject == reject);
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const auto* const end = p + bytes.size();
    std::uint8_t s = state_;
    while (s != s_reject && p != end) {
        // Between code points, whole words of ASCII cannot change the state: skip them.
        if (s == s_accept) {
            while (end - p >= 32 && is_ascii32(p))
                p += 32;
            while (end - p >= 8 && is_ascii8(p))
                p += 8;
        }
        // Then step through up to a word's worth of bytes before looking for ASCII again, so
        // non-ASCII text does not pay for a failed word test at every code point boundary.
        const auto* const stop = p + (end - p < 8 ? end - p : 8);
        for (; p != stop; ++p)
            s = table[s][*p];
    }
    state_ = s;
    return s != s_reject;
}

bool is_valid_utf8(std::span<const std::byte> bytes) noexcept {
    utf8_validator v;
    return v.feed(bytes) && v.complete();
}

}  // namespace wscoro::protocol
