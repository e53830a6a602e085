#include "wscoro/protocol/masking.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace {

using wscoro::protocol::apply_mask;
namespace detail = wscoro::protocol::detail;
using wscoro::protocol::copy_masked;
using wscoro::protocol::mask_key;
using bytes = std::vector<std::byte>;

bytes make_bytes(std::initializer_list<int> values) {
    bytes out;
    for (int v : values)
        out.push_back(static_cast<std::byte>(v));
    return out;
}

bytes random_bytes(std::size_t n, std::mt19937& rng) {
    bytes out(n);
    for (auto& b : out)
        b = static_cast<std::byte>(rng() & 0xFF);
    return out;
}

// RFC 6455 §5.3 written out literally, one octet at a time.
void reference_mask(std::byte* data, std::size_t n, const mask_key& key, std::uint64_t offset) {
    for (std::size_t i = 0; i < n; ++i)
        data[i] ^= key[(i + offset) % 4];
}

const mask_key key = {std::byte{0x37}, std::byte{0xfa}, std::byte{0x21}, std::byte{0x3d}};
const mask_key other_key = {std::byte{0x01}, std::byte{0x80}, std::byte{0xfe}, std::byte{0x7f}};

}  // namespace

TEST_SUITE("masking") {
    TEST_CASE("RFC 6455 §5.7 example: masked \"Hello\"") {
        bytes data = make_bytes({'H', 'e', 'l', 'l', 'o'});
        apply_mask(data, key);
        CHECK(data == make_bytes({0x7f, 0x9f, 0x4d, 0x51, 0x58}));

        bytes out(5);
        const bytes masked = data;
        copy_masked(out.data(), masked, key);
        CHECK(out == make_bytes({'H', 'e', 'l', 'l', 'o'}));
    }

    TEST_CASE("empty input is a no-op") {
        apply_mask({}, key);
        apply_mask({}, key, 3);
        copy_masked(nullptr, {}, key, 5);
        bytes one = make_bytes({0x42});
        apply_mask(std::span(one).first(0), key, 1);
        CHECK(one == make_bytes({0x42}));
    }

    TEST_CASE("masking twice is the identity") {
        std::mt19937 rng(1);
        for (std::size_t n : {1u, 7u, 8u, 9u, 63u, 64u, 65u, 1000u, 4099u}) {
            for (std::uint64_t offset : {0u, 1u, 2u, 3u, 6u}) {
                const bytes original = random_bytes(n, rng);
                bytes data = original;
                apply_mask(data, other_key, offset);
                CHECK(data != original);
                apply_mask(data, other_key, offset);
                CHECK(data == original);
            }
        }
    }

    TEST_CASE("every offset 0..7 and length 0..64 matches the octet-by-octet reference") {
        std::mt19937 rng(2);
        for (std::uint64_t offset = 0; offset < 8; ++offset) {
            for (std::size_t n = 0; n <= 64; ++n) {
                CAPTURE(offset);
                CAPTURE(n);
                const bytes original = random_bytes(n, rng);
                bytes want = original;
                reference_mask(want.data(), n, key, offset);
                bytes got = original;
                apply_mask(got, key, offset);
                CHECK(got == want);
            }
        }
    }

    TEST_CASE("offsets beyond 32 bits only count modulo 4") {
        std::mt19937 rng(3);
        const bytes original = random_bytes(100, rng);
        constexpr auto max = std::numeric_limits<std::uint64_t>::max();
        for (std::uint64_t offset :
             {std::uint64_t{1} << 32, (std::uint64_t{1} << 40) + 3, max - 4, max - 1, max}) {
            CAPTURE(offset);
            bytes want = original;
            apply_mask(want, key, offset % 4);
            bytes got = original;
            apply_mask(got, key, offset);
            CHECK(got == want);
        }
    }

    TEST_CASE("unaligned start and end addresses; bytes outside the span are untouched") {
        std::mt19937 rng(4);
        for (std::size_t shift = 0; shift < 8; ++shift) {
            for (std::size_t n = 0; n <= 70; ++n) {
                for (std::uint64_t offset = 0; offset < 4; ++offset) {
                    CAPTURE(shift);
                    CAPTURE(n);
                    CAPTURE(offset);
                    // 16 guard bytes either side, in a buffer whose start is itself 8-aligned
                    // (std::allocator gives at least alignof(max_align_t)).
                    const bytes original = random_bytes(n + 32, rng);
                    bytes want = original;
                    reference_mask(want.data() + 16 + shift, n, key, offset);
                    bytes got = original;
                    apply_mask(std::span(got).subspan(16 + shift, n), key, offset);
                    CHECK(got == want);
                }
            }
        }
    }

    TEST_CASE("unmasking in pieces with the running offset equals one call") {
        std::mt19937 rng(5);
        const bytes original = random_bytes(45, rng);
        bytes whole = original;
        apply_mask(whole, key);

        // Split at every boundary into two pieces.
        for (std::size_t cut = 0; cut <= original.size(); ++cut) {
            CAPTURE(cut);
            bytes pieces = original;
            std::span<std::byte> s(pieces);
            apply_mask(s.first(cut), key, 0);
            apply_mask(s.subspan(cut), key, cut);
            CHECK(pieces == whole);
        }
        // Split at every pair of boundaries into three pieces.
        for (std::size_t a = 0; a <= original.size(); ++a) {
            for (std::size_t b = a; b <= original.size(); ++b) {
                CAPTURE(a);
                CAPTURE(b);
                bytes pieces = original;
                std::span<std::byte> s(pieces);
                apply_mask(s.first(a), key, 0);
                apply_mask(s.subspan(a, b - a), key, a);
                apply_mask(s.subspan(b), key, b);
                CHECK(pieces == whole);
            }
        }
        // Random pieces of a long payload, as frames arrive from the socket.
        const bytes big = random_bytes(10000, rng);
        bytes want = big;
        apply_mask(want, other_key, 0);
        bytes got = big;
        std::size_t done = 0;
        while (done < got.size()) {
            const std::size_t piece = std::min<std::size_t>(rng() % 40, got.size() - done);
            apply_mask(std::span(got).subspan(done, piece), other_key, done);
            done += piece;
        }
        CHECK(got == want);
    }

    TEST_CASE("copy_masked equals a copy followed by apply_mask") {
        std::mt19937 rng(6);
        for (std::size_t src_shift = 0; src_shift < 8; ++src_shift) {
            for (std::size_t dst_shift = 0; dst_shift < 8; ++dst_shift) {
                for (std::size_t n : {0u, 1u, 5u, 8u, 13u, 31u, 64u, 67u}) {
                    for (std::uint64_t offset = 0; offset < 4; ++offset) {
                        CAPTURE(src_shift);
                        CAPTURE(dst_shift);
                        CAPTURE(n);
                        CAPTURE(offset);
                        const bytes src_buf = random_bytes(n + 16, rng);
                        const std::span<const std::byte> src =
                            std::span(src_buf).subspan(src_shift, n);

                        bytes want = random_bytes(n + 16, rng);
                        bytes got = want;
                        std::copy(src.begin(), src.end(), want.data() + dst_shift);
                        apply_mask(std::span(want).subspan(dst_shift, n), key, offset);

                        copy_masked(got.data() + dst_shift, src, key, offset);
                        CHECK(got == want);
                    }
                }
            }
        }
    }

    TEST_CASE("copy_masked leaves its source alone") {
        std::mt19937 rng(7);
        const bytes src = random_bytes(33, rng);
        const bytes before = src;
        bytes dst(src.size());
        copy_masked(dst.data(), src, key, 2);
        CHECK(src == before);
        apply_mask(dst, key, 2);
        CHECK(dst == src);
    }

    // ---------------------------------------------------------------- detail (fast path)
    TEST_CASE("mask_word: every phase gives the key rotated to that phase, twice") {
        for (const mask_key& k : {key, other_key}) {
            for (std::uint64_t offset :
                 {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{3},
                  std::uint64_t{6}, (std::uint64_t{1} << 40) + 1,
                  std::numeric_limits<std::uint64_t>::max()}) {
                CAPTURE(offset);
                const std::uint64_t w = detail::mask_word(k, offset);
                std::byte got[8];
                std::memcpy(got, &w, sizeof w);
                for (std::size_t j = 0; j < 8; ++j)
                    CHECK(got[j] == k[(offset + j) % 4]);
            }
        }
    }

    TEST_CASE("xor_mask_or: every phase, length 0..100 and alignment, in place and copying") {
        std::mt19937 rng(6);
        for (std::size_t shift = 0; shift < 16; ++shift) {
            for (std::size_t n = 0; n <= 100; ++n) {
                for (std::uint64_t offset = 0; offset < 4; ++offset) {
                    CAPTURE(shift);
                    CAPTURE(n);
                    CAPTURE(offset);
                    const bytes original = random_bytes(n + 32, rng);
                    bytes want = original;
                    reference_mask(want.data() + 16 + shift, n, key, offset);
                    bool want_high = false;
                    for (std::size_t i = 0; i < n; ++i)
                        want_high =
                            want_high || (want[16 + shift + i] & std::byte{0x80}) != std::byte{0};

                    bytes got = original;
                    std::byte* p = got.data() + 16 + shift;
                    const std::uint64_t bits =
                        detail::xor_mask_or(p, p, n, detail::mask_word(key, offset));
                    CHECK(got == want);
                    CHECK(((bits & detail::high_bits) != 0) == want_high);

                    bytes copied = original;
                    const std::uint64_t copy_bits = detail::xor_mask_or(
                        copied.data() + 16 + shift, original.data() + 16 + shift, n,
                        detail::mask_word(key, offset));
                    CHECK(copied == want);
                    CHECK(copy_bits == bits);
                }
            }
        }
    }

    TEST_CASE("xor_mask_or: one non-ASCII output byte at every position is seen") {
        // The decoder's fast path takes "no high bit in the result" for "all ASCII": a single
        // byte >= 0x80 anywhere (in the 32- and 16-byte vectors, the word, the half word or
        // the last bytes) must show, whatever the phase.
        for (std::size_t n = 1; n <= 80; ++n) {
            for (std::size_t at = 0; at < n; ++at) {
                for (std::uint64_t offset = 0; offset < 4; ++offset) {
                    for (unsigned high : {0x80u, 0xFFu, 0xC3u}) {
                        CAPTURE(n);
                        CAPTURE(at);
                        CAPTURE(offset);
                        CAPTURE(high);
                        bytes plain(n, std::byte{'a'});
                        plain[at] = static_cast<std::byte>(high);
                        bytes data = plain;
                        reference_mask(data.data(), n, other_key, offset);  // the wire bytes
                        const std::uint64_t bits = detail::xor_mask_or(
                            data.data(), data.data(), n, detail::mask_word(other_key, offset));
                        CHECK(data == plain);
                        CHECK((bits & detail::high_bits) != 0);
                    }
                }
            }
            bytes ascii(n, std::byte{0x7F});
            reference_mask(ascii.data(), n, other_key, 0);
            CHECK((detail::xor_mask_or(ascii.data(), ascii.data(), n,
                                       detail::mask_word(other_key, 0)) &
                   detail::high_bits) == 0);
        }
    }
}
