#include "wscoro/protocol/frame.hpp"

#include <algorithm>
#include <cstring>

#include "wscoro/error.hpp"

namespace wscoro::protocol {
namespace {

constexpr std::byte fin_bit{0x80};
constexpr std::byte rsv_bits{0x70};
constexpr std::byte rsv1_bit{0x40};
constexpr std::byte opcode_bits{0x0F};
constexpr std::byte mask_bit{0x80};
constexpr std::byte length_bits{0x7F};

std::uint8_t length7(std::byte b1) noexcept {
    return std::to_integer<std::uint8_t>(b1 & length_bits);
}

// Bytes of extended payload length that follow the first two header bytes (§5.2).
std::size_t extended_length_size(std::uint8_t len7) noexcept {
    return len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
}

bool is_known_opcode(opcode op) noexcept {
    switch (op) {
        case opcode::continuation:
        case opcode::text:
        case opcode::binary:
        case opcode::close:
        case opcode::ping:
        case opcode::pong:
            return true;
    }
    return false;
}

std::error_code make(error e) noexcept {
    return make_error_code(e);
}

}  // namespace

decoder_event message_decoder::fail(std::error_code ec) noexcept {
    state_ = state::failed;
    error_ = ec;
    decoder_event ev;
    ev.kind = event_kind::error;
    ev.ec = ec;
    return ev;
}

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
    if (!is_known_opcode(op_)) return make(error::bad_opcode);
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
    // RFC 6455 §5.4: fragments of one message are a text/binary frame followed by
    // continuations; only control frames may be interleaved.
    if (op_ == opcode::continuation && !message_open_) return make(error::bad_continuation);
    if ((op_ == opcode::text || op_ == opcode::binary) && message_open_)
        return make(error::bad_data_frame);
    return {};
}

std::error_code message_decoder::check_length() noexcept {
    const std::uint8_t len7 = length7(hdr_[1]);
    std::uint64_t length = len7;
    if (len7 >= 126) {
        length = 0;
        const std::size_t n = extended_length_size(len7);
        for (std::size_t i = 0; i < n; ++i)
            length = (length << 8) | std::to_integer<std::uint64_t>(hdr_[2 + i]);
        // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
        if (len7 == 126 && length < 126) return make(error::bad_size_encoding);
        if (len7 == 127 && length <= 0xFFFF) return make(error::bad_size_encoding);
        // RFC 6455 §5.2: the most significant bit of a 64-bit length MUST be 0.
        if (length >> 63) return make(error::bad_frame_length);
    }
    // RFC 6455 §7.4.1 (1009): refuse a frame too big to process before buffering any of it.
    if (length > limits_.max_frame_size) return make(error::frame_too_big);
    if (!is_control(op_)) {
        const std::uint64_t so_far = op_ == opcode::continuation ? message_size_ : 0;
        // RFC 6455 §7.4.1 (1009): likewise for the message the frame belongs to. Written as
        // a subtraction so that huge limits cannot overflow.
        if (so_far > limits_.max_message_size || length > limits_.max_message_size - so_far)
            return make(error::message_too_big);
    }
    remaining_ = length;
    return {};
}

void message_decoder::start_frame() noexcept {
    if (masked_) std::memcpy(key_.data(), hdr_ + hdr_len_ - sizeof(mask_key), sizeof(mask_key));
    frame_offset_ = 0;
    prepared_ = 0;
    state_ = state::payload;
    if (op_ == opcode::text || op_ == opcode::binary) {
        message_type_ = op_;
        message_size_ = remaining_;
        utf8_.reset();
        // The previous assembled message (if any) was handed out before this call; its
        // capacity is kept so that steady-state traffic does not allocate.
        assembly_.clear();
        message_open_ = !fin_;
    } else if (op_ == opcode::continuation) {
        message_size_ += remaining_;
    }
}

message_decoder::header_status message_decoder::read_header(std::span<const std::byte> in,
                                                            std::size_t& pos,
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
    if (hdr_len_ < 2) {
        if (!fill(2)) return header_status::incomplete;
        masked_ = (hdr_[1] & mask_bit) != std::byte{0};
        ec = check_second_byte();
        if (!ec && extended_length_size(length7(hdr_[1])) == 0) ec = check_length();
        if (ec) return header_status::failed;
    }
    const std::size_t ext = extended_length_size(length7(hdr_[1]));
    if (hdr_len_ < 2 + ext) {
        if (!fill(2 + ext)) return header_status::incomplete;
        ec = check_length();
        if (ec) return header_status::failed;
    }
    if (!fill(2 + ext + (masked_ ? sizeof(mask_key) : 0))) return header_status::incomplete;
    start_frame();
    return header_status::complete;
}

bool message_decoder::prepare(std::span<std::byte> fresh, std::uint64_t offset) noexcept {
    if (masked_) apply_mask(fresh, key_, offset);
    // RFC 6455 §8.1: text is checked as it arrives so invalid UTF-8 fails the connection
    // without waiting for the rest of the frame or message.
    if (message_type_ == opcode::text) return utf8_.feed(fresh);
    return true;
}

decoder_event message_decoder::finish_control(std::span<std::byte> payload) noexcept {
    decoder_event ev;
    ev.type = op_;
    ev.payload = payload;
    switch (op_) {
        case opcode::ping:
            ev.kind = event_kind::ping;
            return ev;
        case opcode::pong:
            ev.kind = event_kind::pong;
            return ev;
        default:
            break;
    }
    ev.kind = event_kind::close;
    if (payload.empty()) {
        // RFC 6455 §7.1.5: a Close without a code is reported as 1005.
        ev.close_code = close_code::no_status;
    } else {
        // RFC 6455 §5.5.1: a body, if present, starts with a 2-byte code.
        if (payload.size() == 1) return fail(make(error::bad_close_size));
        ev.close_code = static_cast<std::uint16_t>(std::to_integer<unsigned>(payload[0]) << 8 |
                                                   std::to_integer<unsigned>(payload[1]));
        // RFC 6455 §7.4: reserved, unassigned and out-of-range codes never appear on the wire.
        if (!close_code::is_valid_on_wire(ev.close_code)) return fail(make(error::bad_close_code));
        const auto reason = payload.subspan(2);
        // RFC 6455 §5.5.1: the reason is UTF-8 (invalid data -> 1007, §8.1).
        if (!is_valid_utf8(reason)) return fail(make(error::bad_close_payload));
        ev.close_reason = {reinterpret_cast<const char*>(reason.data()), reason.size()};
    }
    // RFC 6455 §5.5.1: nothing after a Close is processed.
    state_ = state::closed;
    return ev;
}

decoder_event message_decoder::next(std::span<std::byte> in, std::size_t& consumed) {
    consumed = 0;
    std::size_t pos = 0;
    for (;;) {
        switch (state_) {
            case state::failed: {
                decoder_event ev;
                ev.kind = event_kind::error;
                ev.ec = error_;
                return ev;
            }
            case state::closed:
                consumed = in.size();
                return {};
            case state::header: {
                std::error_code ec;
                const header_status st = read_header(in, pos, ec);
                consumed = pos;
                if (st == header_status::failed) return fail(ec);
                if (st == header_status::incomplete) {
                    decoder_event ev;
                    ev.needed = header_missing();
                    return ev;
                }
                break;
            }
            case state::payload: {
                const std::size_t have = in.size() - pos;
                if (is_control(op_)) {
                    // Control bodies are at most 125 bytes: wait for all of them and hand
                    // them out in place.
                    if (have < remaining_) {
                        decoder_event ev;
                        ev.needed = remaining_ - have;
                        return ev;
                    }
                    const auto body = in.subspan(pos, static_cast<std::size_t>(remaining_));
                    if (masked_) apply_mask(body, key_);
                    pos += body.size();
                    consumed = pos;
                    remaining_ = 0;
                    hdr_len_ = 0;
                    state_ = state::header;
                    return finish_control(body);
                }

                const auto avail =
                    static_cast<std::size_t>(std::min<std::uint64_t>(have, remaining_));
                // Bytes up to prepared_ were unmasked and checked by an earlier call.
                const auto done =
                    static_cast<std::size_t>(std::min<std::uint64_t>(prepared_, avail));
                if (!prepare(in.subspan(pos + done, avail - done), frame_offset_ + done))
                    return fail(make(error::bad_frame_payload));

                if (avail == remaining_) {
                    const auto body = in.subspan(pos, avail);
                    pos += avail;
                    consumed = pos;
                    // A message that is exactly one frame, wholly in `in`, needs no copy.
                    const bool in_place = fin_ && op_ != opcode::continuation && frame_offset_ == 0;
                    if (!in_place) assembly_.insert(assembly_.end(), body.begin(), body.end());
                    remaining_ = 0;
                    frame_offset_ = 0;
                    prepared_ = 0;
                    hdr_len_ = 0;
                    state_ = state::header;
                    if (!fin_) break;
                    // RFC 6455 §8.1: a text message must not end inside a code point.
                    if (message_type_ == opcode::text && !utf8_.complete())
                        return fail(make(error::bad_frame_payload));
                    decoder_event ev;
                    ev.kind = event_kind::message;
                    ev.type = message_type_;
                    ev.payload = in_place ? body : std::span<std::byte>(assembly_);
                    message_open_ = false;
                    message_size_ = 0;
                    return ev;
                }

                decoder_event ev;
                if (frame_offset_ == 0 && remaining_ <= contiguous_limit_) {
                    // Leave the bytes in the caller's buffer so that the whole frame can be
                    // handed out in place once it is complete.
                    prepared_ = avail;
                    ev.needed = remaining_ - avail;
                    return ev;
                }
                assembly_.insert(assembly_.end(), in.begin() + static_cast<std::ptrdiff_t>(pos),
                                 in.begin() + static_cast<std::ptrdiff_t>(pos + avail));
                pos += avail;
                consumed = pos;
                frame_offset_ += avail;
                remaining_ -= avail;
                prepared_ = 0;
                ev.needed = remaining_;
                return ev;
            }
        }
    }
}

std::size_t encode_header(std::byte* out, opcode op, bool fin, std::uint64_t payload_size,
                          const mask_key* key, bool rsv1) noexcept {
    std::byte b0 = static_cast<std::byte>(op) & opcode_bits;
    if (fin) b0 |= fin_bit;
    if (rsv1) b0 |= rsv1_bit;
    out[0] = b0;
    const std::byte mask = key != nullptr ? mask_bit : std::byte{0};
    std::size_t n = 2;
    // RFC 6455 §5.2: the minimal length encoding.
    if (payload_size < 126) {
        out[1] = mask | static_cast<std::byte>(payload_size);
    } else {
        const std::size_t ext = payload_size <= 0xFFFF ? 2 : 8;
        out[1] = mask | static_cast<std::byte>(ext == 2 ? 126 : 127);
        for (std::size_t i = 0; i < ext; ++i)
            out[n + i] = static_cast<std::byte>(payload_size >> (8 * (ext - 1 - i)));
        n += ext;
    }
    if (key != nullptr) {
        std::memcpy(out + n, key->data(), key->size());
        n += key->size();
    }
    return n;
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
