#pragma once
// WebSocket payload masking (RFC 6455 §5.3): octet i of the payload is XORed with octet
// (i mod 4) of the 32-bit masking key. Used in place on received payloads (no copy) and
// while copying outgoing client payloads into the write buffer.
//
// Part of the sans-I/O layer: no I/O, no allocation, never throws.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace wscoro::protocol {

/// The 4-octet masking key, in wire order.
using mask_key = std::array<std::byte, 4>;

/// XORs `data` in place with `key`, as if `data` started at payload offset `offset` (so a
/// payload can be unmasked in pieces: pass the number of payload bytes already unmasked).
/// Works 16 bytes at a time; `data` needs no alignment.
void apply_mask(std::span<std::byte> data, const mask_key& key, std::uint64_t offset = 0) noexcept;

/// Copies `src` to `dst` (same size, not overlapping) XORed with `key` from `offset`.
void copy_masked(std::byte* dst, std::span<const std::byte> src, const mask_key& key,
                 std::uint64_t offset = 0) noexcept;

namespace detail {

/// `key` as a 64-bit word whose bytes, in memory order, are key[(offset + j) % 4] for
/// j = 0..7: XORed into 8 payload bytes loaded with memcpy, it unmasks them on any
/// endianness. Rotating the loaded key replaces a byte loop with a `% 4` per byte.
inline std::uint64_t mask_word(const mask_key& key, std::uint64_t offset) noexcept {
    std::uint32_t k;
    std::memcpy(&k, key.data(), sizeof k);
    const int shift = static_cast<int>(offset % 4) * 8;
    // Memory byte j must become key byte (j + phase) % 4: towards the low end on a
    // little-endian machine, towards the high end on a big-endian one.
    if constexpr (std::endian::native == std::endian::little)
        k = std::rotr(k, shift);
    else
        k = std::rotl(k, shift);
    return std::uint64_t{k} << 32 | k;
}

/// The high bit of every byte of a 64-bit word.
inline constexpr std::uint64_t high_bits = 0x8080808080808080u;

/// XORs `n` bytes of `src` into `dst` (the same pointer for in place; otherwise no overlap)
/// with `mask` (a mask_word whose phase is that of src[0]) and returns the OR of the output
/// bytes, spread over a word: `(result & high_bits) == 0` iff the output is all ASCII, which
/// lets the decoder validate ASCII text in the same pass as it unmasks it.
///
/// Inline so that the decoder's whole-frame fast path has no call and no per-call setup;
/// 16-byte vectors (SSE2 / NEON through the compilers' vector extension), then a word, then
/// a half word, then at most 3 bytes. Every step is a multiple of 4 bytes, so the key's phase
/// never changes inside the loop.
inline std::uint64_t xor_mask_or(std::byte* dst, const std::byte* src, std::size_t n,
                                 std::uint64_t mask) noexcept {
    typedef std::uint64_t u64x2 __attribute__((vector_size(16)));
    const u64x2 mask2 = {mask, mask};
    u64x2 acc2 = {0, 0};
    std::size_t i = 0;
    for (; n - i >= 32; i += 32) {
        u64x2 a, b;
        std::memcpy(&a, src + i, sizeof a);
        std::memcpy(&b, src + i + 16, sizeof b);
        a ^= mask2;
        b ^= mask2;
        std::memcpy(dst + i, &a, sizeof a);
        std::memcpy(dst + i + 16, &b, sizeof b);
        acc2 |= a | b;
    }
    if (n - i >= 16) {
        u64x2 a;
        std::memcpy(&a, src + i, sizeof a);
        a ^= mask2;
        std::memcpy(dst + i, &a, sizeof a);
        acc2 |= a;
        i += 16;
    }
    std::uint64_t acc = acc2[0] | acc2[1];
    if (n - i >= 8) {
        std::uint64_t w;
        std::memcpy(&w, src + i, sizeof w);
        w ^= mask;
        std::memcpy(dst + i, &w, sizeof w);
        acc |= w;
        i += 8;
    }
    // The low half of `mask` in memory order is the key at the same phase again.
    std::array<std::byte, 8> mask_bytes;
    std::memcpy(mask_bytes.data(), &mask, sizeof mask);
    if (n - i >= 4) {
        std::uint32_t w, m;
        std::memcpy(&w, src + i, sizeof w);
        std::memcpy(&m, mask_bytes.data(), sizeof m);
        w ^= m;
        std::memcpy(dst + i, &w, sizeof w);
        acc |= w;
        i += 4;
    }
    for (std::size_t j = 0; i < n; ++i, ++j) {
        dst[i] = src[i] ^ mask_bytes[j];
        acc |= std::to_integer<std::uint64_t>(dst[i]);
    }
    return acc;
}

}  // namespace detail

}  // namespace wscoro::protocol
