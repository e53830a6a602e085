#pragma once
// WebSocket payload masking (RFC 6455 §5.3): octet i of the payload is XORed with octet
// (i mod 4) of the 32-bit masking key. Used in place on received payloads (no copy) and
// while copying outgoing client payloads into the write buffer.
//
// Part of the sans-I/O layer: no I/O, no allocation, never throws.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace wscoro::protocol {

/// The 4-octet masking key, in wire order.
using mask_key = std::array<std::byte, 4>;

/// XORs `data` in place with `key`, as if `data` started at payload offset `offset` (so a
/// payload can be unmasked in pieces: pass the number of payload bytes already unmasked).
/// Works a machine word at a time; `data` needs no alignment.
void apply_mask(std::span<std::byte> data, const mask_key& key, std::uint64_t offset = 0) noexcept;

/// Copies `src` to `dst` (same size, not overlapping) XORed with `key` from `offset`.
void copy_masked(std::byte* dst, std::span<const std::byte> src, const mask_key& key,
                 std::uint64_t offset = 0) noexcept;

}  // namespace wscoro::protocol
