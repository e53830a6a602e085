#include "wscoro/protocol/masking.hpp"

#include <algorithm>
#include <cstring>

namespace wscoro::protocol {
namespace {

// RFC 6455 §5.3: j = i MOD 4; transformed-octet-i = original-octet-i XOR masking-key-octet-j,
// with i counted from `offset`. `dst` may equal `src` (in place); otherwise no overlap.
void xor_mask(std::byte* dst, const std::byte* src, std::size_t n, const mask_key& key,
              std::uint64_t offset) noexcept {
    // Head: single bytes until dst is word-aligned, so that no word store straddles a cache line.
    const std::size_t misalign = reinterpret_cast<std::uintptr_t>(dst) % 8;
    const std::size_t head = std::min(n, misalign == 0 ? 0 : 8 - misalign);
    std::size_t i = 0;
    for (; i < head; ++i)
        dst[i] = src[i] ^ key[(offset + i) % 4];

    // The key rotated to the phase of byte i and repeated twice. Built as bytes in memory
    // order, so the word is right whatever the machine's endianness. (offset + i) may wrap:
    // harmless, since 4 divides 2^64.
    std::array<std::byte, 8> mask_bytes;
    for (std::size_t j = 0; j < mask_bytes.size(); ++j)
        mask_bytes[j] = key[(offset + i + j) % 4];
    std::uint64_t mask;
    std::memcpy(&mask, mask_bytes.data(), sizeof mask);

    for (; n - i >= 8; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, src + i, sizeof w);
        w ^= mask;
        std::memcpy(dst + i, &w, sizeof w);
    }

    // Tail: whole words leave the phase unchanged, so mask_bytes still lines up.
    for (std::size_t j = 0; i < n; ++i, ++j)
        dst[i] = src[i] ^ mask_bytes[j];
}

}  // namespace

void apply_mask(std::span<std::byte> data, const mask_key& key, std::uint64_t offset) noexcept {
    xor_mask(data.data(), data.data(), data.size(), key, offset);
}

void copy_masked(std::byte* dst, std::span<const std::byte> src, const mask_key& key,
                 std::uint64_t offset) noexcept {
    xor_mask(dst, src.data(), src.size(), key, offset);
}

}  // namespace wscoro::protocol
