#include "wscoro/protocol/masking.hpp"

#include <array>
#include <cstring>

namespace wscoro::protocol {
namespace {

// RFC 6455 §5.3: j = i MOD 4; transformed-octet-i = original-octet-i XOR masking-key-octet-j,
// with i counted from `offset`. `dst` may equal `src` (in place); otherwise no overlap.
//
// Unaligned 8-byte loads and stores (memcpy) are as fast as aligned ones on the machines we
// care about, so there is no byte-wise head: 32 bytes per step (the compiler may use vector
// registers), then 8, then 4, then at most 3 single bytes. Every step is a multiple of 4
// bytes, so the key's phase never changes inside the loop.
void xor_mask(std::byte* dst, const std::byte* src, std::size_t n, const mask_key& key,
              std::uint64_t offset) noexcept {
    // The key rotated to the phase of byte 0 and repeated twice, built as bytes in memory
    // order so the word is right whatever the machine's endianness.
    std::array<std::byte, 8> mask_bytes;
    for (std::size_t j = 0; j < mask_bytes.size(); ++j)
        mask_bytes[j] = key[(offset + j) % 4];
    std::uint64_t mask;
    std::memcpy(&mask, mask_bytes.data(), sizeof mask);

    std::size_t i = 0;
    for (; n - i >= 32; i += 32) {
        std::uint64_t w[4];
        std::memcpy(w, src + i, sizeof w);
        w[0] ^= mask;
        w[1] ^= mask;
        w[2] ^= mask;
        w[3] ^= mask;
        std::memcpy(dst + i, w, sizeof w);
    }
    for (; n - i >= 8; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, src + i, sizeof w);
        w ^= mask;
        std::memcpy(dst + i, &w, sizeof w);
    }
    if (n - i >= 4) {
        std::uint32_t w, m;
        std::memcpy(&w, src + i, sizeof w);
        std::memcpy(&m, mask_bytes.data(), sizeof m);
        w ^= m;
        std::memcpy(dst + i, &w, sizeof w);
        i += 4;
    }
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
