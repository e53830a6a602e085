#include "wscoro/protocol/frame.hpp"

#include <algorithm>
#include <cstring>

#include "wscoro/error.hpp"
#include "wscoro/protocol/message_assembly.hpp"

namespace wscoro::protocol {
namespace {

constexpr std::byte fin_bit{0x80};
constexpr std::byte rsv_bits{0x70};
constexpr std::byte opcode_bits{0x0F};
constexpr std::byte mask_bit{0x80};

using detail::extended_length_size;
using detail::header_status;
using detail::length7;

std::error_code make(error e) noexcept {
    return make_error_code(e);
}

}  // namespace

std::uint64_t message_decoder::header_missing() const noexcept {
    if (hdr_len_ < 2) return 2u - hdr_len_;
    const std::size_t total =
        2 + extended_length_size(length7(hdr_[1])) + (masked_ ? sizeof(mask_key) : 0);
    return total - hdr_len_;
}

std::error_code message_decoder::check_first_byte() const noexcept {
    // RFC 6455 §5.2: RSV1-3 MUST be 0 unless an extension defining them was negotiated
    // (none is, at this layer).
    if ((hdr_[0] & rsv_bits) != std::byte{0}) return make(error::bad_reserved_bits);
    // RFC 6455 §5.2: an unknown opcode MUST fail the connection.
    if (!detail::is_known_opcode(op_)) return make(error::bad_opcode);
    // RFC 6455 §5.5: control frames MUST NOT be fragmented.
    if (is_control(op_) && !fin_) return make(error::bad_control_fragment);
    return {};
}

std::error_code message_decoder::check_second_byte() const noexcept {
    // RFC 6455 §5.5: control frames carry at most 125 payload bytes, so never use an
    // extended length.
    if (is_control(op_) && length7(hdr_[1]) > 125) return make(error::bad_control_size);
    // RFC 6455 §5.1: a server MUST close on an unmasked client frame; a client MUST close
    // on a masked server frame.
    if (role_ == role::server && !masked_) return make(error::bad_unmasked_frame);
    if (role_ == role::client && masked_) return make(error::bad_masked_frame);
    // RFC 6455 §5.4: continuation sequencing.
    return msg_.check_sequence(op_);
}

std::error_code message_decoder::check_length() noexcept {
    const std::uint8_t len7 = length7(hdr_[1]);
    const std::uint64_t length = detail::payload_length(hdr_);
    // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
    if (len7 == 126 && length < 126) return make(error::bad_size_encoding);
    if (len7 == 127 && length <= 0xFFFF) return make(error::bad_size_encoding);
    // RFC 6455 §5.2: the most significant bit of a 64-bit length MUST be 0.
    if (length >> 63) return make(error::bad_frame_length);
    // RFC 6455 §7.4.1 (1009): the frame and message size limits.
    return msg_.check_length(op_, length);
}

header_status message_decoder::read_header(std::span<const std::byte> in, std::size_t& pos,
                                           std::error_code& ec) noexcept {
    // Copies header bytes up to `upto` in total; true once they are all there.
    const auto fill = [&](std::size_t upto) {
        const std::size_t n = std::min<std::size_t>(upto - hdr_len_, in.size() - pos);
        if (n != 0) std::memcpy(hdr_ + hdr_len_, in.data() + pos, n);
        hdr_len_ = static_cast<std::uint8_t>(hdr_len_ + n);
        pos += n;
        return hdr_len_ == upto;
    };

    // Each check runs once, as soon as the bytes it needs are there, so that a violation is
    // reported without waiting for the rest of the header.
    // The first byte's checks come first in the order below, so running them before the
    // second byte arrives reports the same error, only sooner.
    if (hdr_len_ < 1) {
        if (!fill(1)) return header_status::incomplete;
        fin_ = (hdr_[0] & fin_bit) != std::byte{0};
        op_ = static_cast<opcode>(std::to_integer<std::uint8_t>(hdr_[0] & opcode_bits));
        ec = check_first_byte();
        if (ec) return header_status::failed;
    }
    const header_status st = detail::read_length(
        hdr_, hdr_len_, fill,
        [&] {
            masked_ = (hdr_[1] & mask_bit) != std::byte{0};
            return check_second_byte();
        },
        [&] { return check_length(); }, ec);
    if (st != header_status::complete) return st;
    const std::size_t ext = extended_length_size(length7(hdr_[1]));
    if (!fill(2 + ext + (masked_ ? sizeof(mask_key) : 0))) return header_status::incomplete;
    if (masked_) std::memcpy(key_.data(), hdr_ + hdr_len_ - sizeof(mask_key), sizeof(mask_key));
    msg_.start_frame(fin_, op_);
    return header_status::complete;
}

void message_decoder::unmask_payload(std::span<std::byte> data,
                                     std::uint64_t payload_offset) const noexcept {
    // RFC 6455 §5.3: octet i of the payload is XORed with octet i mod 4 of the frame's key.
    if (masked_) apply_mask(data, key_, payload_offset);
}

bool message_decoder::valid_close_code(std::uint16_t code) noexcept {
    // RFC 6455 §7.4: reserved, unassigned and out-of-range codes never appear on the wire.
    return close_code::is_valid_on_wire(code);
}

decoder_event message_decoder::next(std::span<std::byte> in, std::size_t& consumed) {
    // Fast path for the steady state of small messages: a whole unfragmented text or binary
    // frame at the front of `in`, between messages, with nothing of it read before. Every
    // condition below is one under which read_header's checks all pass (RFC 6455 §5.2 FIN,
    // RSV1-3 clear, a known data opcode, §5.1 masking per role, §5.4 no open message, §5.2
    // minimal 7- or 16-bit length, §7.4.1 limits) and decode() would go straight from the
    // header to handing the frame out in place; anything else, including every error, takes
    // the general path, which reports it exactly as before.
    if (hdr_len_ == 0 && in.size() >= 2 && msg_.at_message_boundary()) [[likely]] {
        const auto b0 = std::to_integer<unsigned>(in[0]);
        const auto b1 = std::to_integer<unsigned>(in[1]);
        const bool masked = role_ == role::server;
        if ((b0 == 0x81 || b0 == 0x82) && (b1 & 0x80) == (masked ? 0x80u : 0u)) {
            std::size_t header = 2;
            std::size_t length = b1 & 0x7F;
            bool ok = true;
            if (length == 126) {
                // §5.2: a 16-bit length must be at least 126 (minimal encoding).
                ok = in.size() >= 4;
                if (ok) {
                    length = std::to_integer<std::size_t>(in[2]) << 8 |
                             std::to_integer<std::size_t>(in[3]);
                    ok = length >= 126;
                }
                header = 4;
            } else if (length == 127) {
                ok = false;  // 64 KiB and more: rare enough for the general path
            }
            if (masked) header += sizeof(mask_key);
            if (ok && length <= msg_.single_frame_limit() && in.size() >= header &&
                in.size() - header >= length) {
                const auto op = static_cast<opcode>(b0 & 0x0F);
                std::byte* const payload = in.data() + header;
                bool ascii = false;
                if (masked) {
                    // RFC 6455 §5.3, fused with the ASCII test of the unmasked bytes (text
                    // that is all ASCII is valid UTF-8 with no further look).
                    mask_key key;
                    std::memcpy(key.data(), payload - sizeof(mask_key), sizeof(mask_key));
                    const std::uint64_t bits =
                        detail::xor_mask_or(payload, payload, length, detail::mask_word(key, 0));
                    ascii = (bits & detail::high_bits) == 0;
                }
                return msg_.whole_message(op, in, header, length, ascii, consumed);
            }
        }
    }
    return next_slow(in, consumed);
}

// Out of line, so that the fast path in next() does not pay for the general path's stack
// frame and saved registers.
[[gnu::noinline]] decoder_event message_decoder::next_slow(std::span<std::byte> in,
                                                           std::size_t& consumed) {
    return msg_.decode(*this, in, consumed);
}

std::span<std::byte> message_decoder::direct_payload_buffer(std::size_t min_bytes) {
    return msg_.direct_payload_buffer(min_bytes);
}

decoder_event message_decoder::commit_direct(std::size_t n) noexcept {
    // The frame's key and the payload offset are this decoder's and msg_'s: unmask_payload
    // gives the right phase.
    return msg_.commit_direct(*this, n);
}

void append_frame(std::vector<std::byte>& out, opcode op, bool fin,
                  std::span<const std::byte> payload, const mask_key* key) {
    const std::size_t start = out.size();
    out.resize(start + header_size(payload.size(), key != nullptr) + payload.size());
    std::byte* p = out.data() + start;
    p += encode_header(p, op, fin, payload.size(), key);
    if (payload.empty()) return;
    if (key != nullptr)
        copy_masked(p, payload, *key);
    else
        std::memcpy(p, payload.data(), payload.size());
}

std::size_t encode_close_payload(std::byte* out, std::uint16_t code,
                                 std::string_view reason) noexcept {
    out[0] = static_cast<std::byte>(code >> 8);
    out[1] = static_cast<std::byte>(code & 0xFF);
    if (!reason.empty()) std::memcpy(out + 2, reason.data(), reason.size());
    return 2 + reason.size();
}

}  // namespace wscoro::protocol
