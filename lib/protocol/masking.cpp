#include "wscoro/protocol/masking.hpp"

namespace wscoro::protocol {

// RFC 6455 §5.3: j = i MOD 4; transformed-octet-i = original-octet-i XOR masking-key-octet-j,
// with i counted from `offset`. The work is detail::xor_mask_or (inline in the header, so
// the decoder's fast path can fuse it with its ASCII check); the OR it returns is not needed
// here and the compiler drops it.

void apply_mask(std::span<std::byte> data, const mask_key& key, std::uint64_t offset) noexcept {
    detail::xor_mask_or(data.data(), data.data(), data.size(), detail::mask_word(key, offset));
}

void copy_masked(std::byte* dst, std::span<const std::byte> src, const mask_key& key,
                 std::uint64_t offset) noexcept {
    detail::xor_mask_or(dst, src.data(), src.size(), detail::mask_word(key, offset));
}

}  // namespace wscoro::protocol
