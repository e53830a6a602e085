#include "wscoro/protocol/utf8.hpp"

#include <array>
#include <bit>
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

// The same function tabulated as a shift DFA: state s is kept as the bit offset 6 * s, and
// rows[b] holds, at bits [6s, 6s + 6), the offset of the state byte b leads to from s. A step
// is then `rows[b] >> s`: the table load depends only on the byte, so the chain carried from
// byte to byte is a single shift (about 1 cycle), where a table indexed by state and byte
// costs a dependent load (4-5 cycles) per byte. 9 states x 6 bits fit in 64; 2 KiB of table.
constexpr unsigned bits_per_state = 6;
static_assert(state_count * bits_per_state <= 64);
using row_table = std::array<std::uint64_t, 256>;
constexpr row_table make_rows() {
    row_table t{};
    for (unsigned b = 0; b < 256; ++b)
        for (unsigned s = 0; s < state_count; ++s)
            t[b] |= std::uint64_t{next_state(static_cast<std::uint8_t>(s), b)} * bits_per_state
                    << (s * bits_per_state);
    return t;
}
constexpr row_table rows = make_rows();

constexpr std::uint64_t offset_accept = s_accept * bits_per_state;
constexpr std::uint64_t offset_reject = s_reject * bits_per_state;

// One DFA step; `s` may carry bits of other rows above its low 6, which the shift count mask
// drops (and which a shift by 64 or more would make undefined).
std::uint64_t step(std::uint64_t s, unsigned char b) noexcept {
    return rows[b] >> (s & 63);
}

std::uint64_t load8(const unsigned char* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
}

constexpr std::uint64_t high_bits = 0x8080808080808080u;

// The index, in memory order, of the first byte whose high bit is set in `m` (non-zero, only
// high bits set).
unsigned first_high_byte(std::uint64_t m) noexcept {
    if constexpr (std::endian::native == std::endian::little)
        return static_cast<unsigned>(std::countr_zero(m)) / 8;
    else
        return static_cast<unsigned>(std::countl_zero(m)) / 8;
}

}  // namespace

bool utf8_validator::feed(std::span<const std::byte> bytes) noexcept {
    static_assert(offset_accept == accept && offset_reject == reject);
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const auto* const end = p + bytes.size();
    std::uint64_t s = state_;
    while (s != offset_reject) {
        if (s == offset_accept) {
            // Between code points ASCII cannot change the state: skip it 32 bytes at a time,
            // then a word at a time, stopping right at the first non-ASCII byte of a word.
            while (end - p >= 32 &&
                   ((load8(p) | load8(p + 8) | load8(p + 16) | load8(p + 24)) & high_bits) == 0)
                p += 32;
            while (end - p >= 8) {
                const std::uint64_t m = load8(p) & high_bits;
                if (m != 0) {
                    p += first_high_byte(m);
                    break;
                }
                p += 8;
            }
        }
        if (p == end) break;
        // Then up to 16 bytes through the DFA before looking for ASCII again, so that
        // non-ASCII text does not pay for a word test at every code point boundary. Reject
        // is absorbing, so it is enough to look for it once per run.
        const auto* const stop = p + (end - p < 16 ? end - p : 16);
        for (; p != stop; ++p)
            s = step(s, *p);
        s &= 63;
    }
    state_ = static_cast<std::uint8_t>(s);
    return s != offset_reject;
}

bool is_valid_utf8(std::span<const std::byte> bytes) noexcept {
    utf8_validator v;
    return v.feed(bytes) && v.complete();
}

}  // namespace wscoro::protocol
