#include "wscoro/protocol/utf8.hpp"

#include <array>
#include <bit>
#include <cstring>

// An AVX2 validator for long runs of non-ASCII text (x86-64 with GCC or clang, chosen at run
// time). Elsewhere, and on CPUs without AVX2, the shift DFA below does all the work.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(WSCORO_NO_SIMD_UTF8)
#define WSCORO_UTF8_AVX2 1
#include <immintrin.h>
#else
#define WSCORO_UTF8_AVX2 0
#endif

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

#if WSCORO_UTF8_AVX2
// Validation 32 bytes at a time, after Keiser and Lemire, "Validating UTF-8 in less than one
// instruction per byte" (2021). Every error of Table 3-7 shows in a byte and the byte before
// it, except a missing or extra continuation byte of a 3- or 4-byte character, which needs
// the two or three bytes before. So each byte is classified by three nibbles: the high and
// low nibble of the byte before it and its own high nibble. Each nibble looks up, in a
// 16-entry table, the set of error kinds it is compatible with (a bit per kind); the AND of
// the three sets is the errors the pair makes. Every kind is a product of nibble ranges, so
// the AND never reports a valid pair. Two continuation bytes in a row (two_conts) are an error
// unless the byte two before is a 3- or 4-byte lead or the byte three before a 4-byte lead,
// and such a lead requires them: an XOR of the two settles both ways.
namespace simd {

constexpr std::uint8_t too_short = 1 << 0;       // lead (C0..FF) then no continuation
constexpr std::uint8_t too_long = 1 << 1;        // ASCII then a continuation
constexpr std::uint8_t overlong_3 = 1 << 2;      // E0 80..9F
constexpr std::uint8_t too_large = 1 << 3;       // F4 90..BF, F5..FF 90..BF
constexpr std::uint8_t surrogate = 1 << 4;       // ED A0..BF
constexpr std::uint8_t overlong_2 = 1 << 5;      // C0, C1 then a continuation
constexpr std::uint8_t too_large_1000 = 1 << 6;  // F5..FF 80..8F
constexpr std::uint8_t overlong_4 = 1 << 6;      // F0 80..8F (shares the bit: both need hi2 8)
constexpr std::uint8_t two_conts = 1 << 7;       // continuation then continuation
// Every low nibble of the byte before allows the kinds that do not depend on it.
constexpr std::uint8_t carry = too_short | too_long | two_conts;

// Indexed by the high nibble of the byte before.
constexpr std::array<std::uint8_t, 16> byte_1_high = {
    too_long,
    too_long,
    too_long,
    too_long,
    too_long,
    too_long,
    too_long,
    too_long,
    two_conts,
    two_conts,
    two_conts,
    two_conts,
    too_short | overlong_2,
    too_short,
    too_short | overlong_3 | surrogate,
    too_short | too_large | too_large_1000 | overlong_4};
// Indexed by the low nibble of the byte before.
constexpr std::array<std::uint8_t, 16> byte_1_low = {carry | overlong_3 | overlong_2 | overlong_4,
                                                     carry | overlong_2,
                                                     carry,
                                                     carry,
                                                     carry | too_large,
                                                     carry | too_large | too_large_1000,
                                                     carry | too_large | too_large_1000,
                                                     carry | too_large | too_large_1000,
                                                     carry | too_large | too_large_1000,
                                                     carry | too_large | too_large_1000,
                                                     carry | too_large | too_large_1000,
                                                     carry | too_large | too_large_1000,
                                                     carry | too_large | too_large_1000,
                                                     carry | too_large | too_large_1000 | surrogate,
                                                     carry | too_large | too_large_1000,
                                                     carry | too_large | too_large_1000};
// Indexed by the byte's own high nibble.
constexpr std::array<std::uint8_t, 16> byte_2_high = {
    too_short,
    too_short,
    too_short,
    too_short,
    too_short,
    too_short,
    too_short,
    too_short,
    too_long | overlong_2 | two_conts | overlong_3 | too_large_1000 | overlong_4,
    too_long | overlong_2 | two_conts | overlong_3 | too_large,
    too_long | overlong_2 | two_conts | surrogate | too_large,
    too_long | overlong_2 | two_conts | surrogate | too_large,
    too_short,
    too_short,
    too_short,
    too_short};

#define WSCORO_AVX2 __attribute__((target("avx2"), always_inline)) inline

WSCORO_AVX2 __m256i table(const std::array<std::uint8_t, 16>& t) noexcept {
    const __m128i half = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t.data()));
    return _mm256_broadcastsi128_si256(half);
}

// The input shifted by N bytes, the last N bytes of the previous block shifted in.
template <int N>
WSCORO_AVX2 __m256i prev(__m256i input, __m256i prev_input) noexcept {
    const __m256i joined = _mm256_permute2x128_si256(prev_input, input, 0x21);
    return _mm256_alignr_epi8(input, joined, 16 - N);
}

WSCORO_AVX2 __m256i high_nibbles(__m256i v) noexcept {
    return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F));
}

// Nonzero bytes where a character that starts in the block's last three bytes needs bytes
// after it (or where one of them is no valid lead at all: F5..FF, C0, C1).
WSCORO_AVX2 __m256i incomplete_end(__m256i input) noexcept {
    const __m256i max =
        _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                         -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, static_cast<char>(0xF0 - 1),
                         static_cast<char>(0xE0 - 1), static_cast<char>(0xC0 - 1));
    return _mm256_subs_epu8(input, max);
}

// Validates [p, p + 32 * k) for the largest k, starting at a character boundary. Returns
// where the scalar validator goes on, at a character boundary: the end of that range, or the
// lead byte of a character the range cuts (checked again from there). Null if invalid.
__attribute__((target("avx2"))) const unsigned char* validate_blocks(
    const unsigned char* p, const unsigned char* end) noexcept {
    const __m256i t1h = table(byte_1_high);
    const __m256i t1l = table(byte_1_low);
    const __m256i t2h = table(byte_2_high);
    const __m256i low_nibble = _mm256_set1_epi8(0x0F);
    __m256i error = _mm256_setzero_si256();
    __m256i prev_input = _mm256_setzero_si256();  // as if ASCII came before
    __m256i prev_incomplete = _mm256_setzero_si256();
    const auto* const stop = p + (end - p) / 32 * 32;
    for (; p != stop; p += 32) {
        const __m256i input = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        if (_mm256_movemask_epi8(input) == 0) {
            // All ASCII: only a character cut by the end of the previous block can be wrong.
            error = _mm256_or_si256(error, prev_incomplete);
        } else {
            const __m256i prev1 = prev<1>(input, prev_input);
            const __m256i kinds = _mm256_and_si256(
                _mm256_and_si256(_mm256_shuffle_epi8(t1h, high_nibbles(prev1)),
                                 _mm256_shuffle_epi8(t1l, _mm256_and_si256(prev1, low_nibble))),
                _mm256_shuffle_epi8(t2h, high_nibbles(input)));
            // Bit 7 where the byte two before is E0..FF or the byte three before F0..FF.
            const __m256i third =
                _mm256_subs_epu8(prev<2>(input, prev_input), _mm256_set1_epi8(0xE0 - 0x80));
            const __m256i fourth =
                _mm256_subs_epu8(prev<3>(input, prev_input), _mm256_set1_epi8(0xF0 - 0x80));
            const __m256i must_continue =
                _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8(char(0x80)));
            error = _mm256_or_si256(error, _mm256_xor_si256(kinds, must_continue));
            prev_incomplete = incomplete_end(input);
        }
        prev_input = input;
    }
    if (!_mm256_testz_si256(error, error)) return nullptr;
    // Nothing before the last three bytes can be cut (a character has at most 4 bytes, and
    // a lead byte followed by too few continuations within the range was reported). Resume
    // at the last lead byte if its character does not end within the range.
    for (std::ptrdiff_t back = 1; back <= 3; ++back) {
        const unsigned b = stop[-back];
        if (b < 0x80) break;
        if (b >= 0xC0) {
            const std::ptrdiff_t length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
            return length > back ? stop - back : stop;
        }
    }
    return stop;
}

#undef WSCORO_AVX2

bool have_avx2() noexcept {
    static const bool yes = __builtin_cpu_supports("avx2");
    return yes;
}

// Below this many bytes the scalar path is as fast.
constexpr std::ptrdiff_t min_simd_bytes = 64;

}  // namespace simd
#endif

}  // namespace

bool utf8_validator::feed(std::span<const std::byte> bytes) noexcept {
    static_assert(offset_accept == accept && offset_reject == reject);
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const auto* const end = p + bytes.size();
    std::uint64_t s = state_;
    while (s != offset_reject) {
        if (s == offset_accept) {
#if WSCORO_UTF8_AVX2
            if (end - p >= simd::min_simd_bytes && simd::have_avx2()) {
                p = simd::validate_blocks(p, end);
                if (p == nullptr) {
                    s = offset_reject;
                    break;
                }
            }
#endif
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
