#pragma once
// The decoding shared by message_decoder (RFC 6455, frame.cpp) and hybi_decoder
// (draft-ietf-hybi-01..06, codec.cpp): detail::message_assembly, declared in frame.hpp, and
// the payload-length helpers of their common header layout. Only those two decoders include
// it; applications use frame.hpp and codec.hpp.
//
// Everything here is inline or a template instantiated with the decoder as `Framing`, so the
// RFC 6455 path compiles to one function as before: no virtual call, no std::function, no
// allocation beyond the assembly buffer's.
//
// Part of the sans-I/O layer: no I/O, never throws (only std::bad_alloc from the buffer).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <system_error>
#include <vector>

#include "wscoro/error.hpp"
#include "wscoro/protocol/frame.hpp"
#include "wscoro/protocol/utf8.hpp"

namespace wscoro::protocol::detail {

/// The 7-bit payload length in header byte 1 (RFC 6455 §5.2; hybi-01..06 use the same
/// layout, hybi-03 §4.2).
constexpr std::uint8_t length7(std::byte b1) noexcept {
    return std::to_integer<std::uint8_t>(b1 & std::byte{0x7F});
}

/// Bytes of extended payload length that follow the first two header bytes (§5.2): 126 is
/// followed by a 16-bit length, 127 by a 64-bit one.
constexpr std::size_t extended_length_size(std::uint8_t len7) noexcept {
    return len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
}

/// The payload length of a header whose first bytes (byte 1 and its extended length, if
/// any) are all in `hdr`: the 7-bit value, or the extension in network byte order.
inline std::uint64_t payload_length(const std::byte* hdr) noexcept {
    const std::uint8_t len7 = length7(hdr[1]);
    if (len7 < 126) return len7;
    std::uint64_t length = 0;
    const std::size_t n = extended_length_size(len7);
    for (std::size_t i = 0; i < n; ++i)
        length = (length << 8) | std::to_integer<std::uint64_t>(hdr[2 + i]);
    return length;
}

/// Reads the part of a frame header after byte 0, laid out alike in RFC 6455 §5.2 and
/// hybi-03 §4.2 (to -06): byte 1 with the 7-bit length, then the 16- or 64-bit extended
/// length. `fill(upto)` copies header bytes into `hdr` until `hdr_len` reaches `upto` and
/// says whether they are all there. Each check runs once, as soon as the bytes it needs are
/// there, so that a violation is reported without waiting for the rest of the header:
/// `on_byte1()` when byte 1 arrives, `on_length()` when the length is complete (with byte 1
/// itself for a 7-bit length). `complete` once the length is read and accepted.
template <class Fill, class OnByte1, class OnLength>
header_status read_length(const std::byte* hdr, const std::uint8_t& hdr_len, Fill&& fill,
                          OnByte1&& on_byte1, OnLength&& on_length, std::error_code& ec) {
    if (hdr_len < 2) {
        if (!fill(2)) return header_status::incomplete;
        ec = on_byte1();
        if (!ec && extended_length_size(length7(hdr[1])) == 0) ec = on_length();
        if (ec) return header_status::failed;
    }
    const std::size_t ext = extended_length_size(length7(hdr[1]));
    if (hdr_len < 2 + ext) {
        if (!fill(2 + ext)) return header_status::incomplete;
        ec = on_length();
        if (ec) return header_status::failed;
    }
    return header_status::complete;
}

/// The opcodes RFC 6455 §5.2 defines (the drafts' numbering is translated to these).
constexpr bool is_known_opcode(opcode op) noexcept {
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

inline decoder_event message_assembly::fail(std::error_code ec) noexcept {
    state_ = state::failed;
    error_ = ec;
    decoder_event ev;
    ev.kind = event_kind::error;
    ev.ec = ec;
    return ev;
}

inline std::error_code message_assembly::check_sequence(opcode op) const noexcept {
    // RFC 6455 §5.4 (hybi-03 §4.3 to -06 alike): fragments of one message are a text/binary
    // frame followed by continuations up to the final one; only control frames may be
    // interleaved.
    if (op == opcode::continuation && !message_open_)
        return make_error_code(error::bad_continuation);
    if ((op == opcode::text || op == opcode::binary) && message_open_)
        return make_error_code(error::bad_data_frame);
    return {};
}

inline std::error_code message_assembly::check_length(opcode op, std::uint64_t length) noexcept {
    // RFC 6455 §7.4.1 (1009), applied to every hybi draft too: refuse a frame too big to
    // process before buffering any of it.
    if (length > limits_.max_frame_size) return make_error_code(error::frame_too_big);
    if (!is_control(op)) {
        const std::uint64_t so_far = op == opcode::continuation ? message_size_ : 0;
        // RFC 6455 §7.4.1 (1009): likewise for the message the frame belongs to. Written as
        // a subtraction so that huge limits cannot overflow.
        if (so_far > limits_.max_message_size || length > limits_.max_message_size - so_far)
            return make_error_code(error::message_too_big);
    }
    remaining_ = length;
    return {};
}

inline void message_assembly::start_frame(bool fin, opcode op) noexcept {
    fin_ = fin;
    op_ = op;
    frame_offset_ = 0;
    prepared_ = 0;
    state_ = state::payload;
    if (op == opcode::text || op == opcode::binary) {
        message_type_ = op;
        message_size_ = remaining_;
        utf8_.reset();
        // The previous assembled message (if any) was handed out before this call; its
        // storage is kept so that steady-state traffic does not allocate.
        assembled_ = 0;
        message_open_ = !fin;
    } else if (op == opcode::continuation) {
        message_size_ += remaining_;
    }
}

inline decoder_event message_assembly::whole_message(opcode op, std::span<std::byte> in,
                                                     std::size_t header, std::size_t length,
                                                     bool ascii, std::size_t& consumed) noexcept {
    // What start_frame and the end of the payload state do for such a frame; the fields
    // decode() would set and reset again on the way (remaining_, frame_offset_, prepared_,
    // message_size_, message_open_) already have their between-messages values.
    fin_ = true;
    op_ = op;
    message_type_ = op;
    utf8_.reset();
    // The previous assembled message (if any) was handed out before this call.
    assembled_ = 0;
    const auto body = in.subspan(header, length);
    if (op == opcode::text && !ascii) {
        // RFC 6455 §8.1: text must be UTF-8. decode() would have consumed the header before
        // checking the payload, and the whole frame before finding a code point cut off at
        // its end.
        if (!utf8_.feed(body)) {
            consumed = header;
            return fail(make_error_code(error::bad_frame_payload));
        }
        if (!utf8_.complete()) {
            consumed = header + length;
            return fail(make_error_code(error::bad_frame_payload));
        }
    }
    consumed = header + length;
    decoder_event ev;
    ev.kind = event_kind::message;
    ev.type = op;
    ev.payload = body;
    return ev;
}

inline void message_assembly::append(const std::byte* data, std::size_t n) {
    if (n == 0) return;
    // resize() grows geometrically, so a message streamed in many pieces reallocates
    // O(log size) times; the storage is kept for the next message.
    if (assembly_.size() - assembled_ < n) assembly_.resize(assembled_ + n);
    std::memcpy(assembly_.data() + assembled_, data, n);
    assembled_ += n;
}

template <class Framing>
decoder_event message_assembly::end_data_frame(Framing& framing, bool in_place,
                                               std::span<std::byte> body) noexcept {
    // The frame's payload is all consumed (and, unless `in_place`, in assembly_): a header
    // comes next. A direct span handed out for it is no longer current.
    remaining_ = 0;
    frame_offset_ = 0;
    prepared_ = 0;
    direct_size_ = 0;
    framing.end_frame();
    state_ = state::header;
    decoder_event ev;
    if (!fin_) {
        ev.needed = framing.header_missing();
        return ev;
    }
    // RFC 6455 §8.1 (every hybi draft alike): a text message must not end inside a code
    // point.
    if (message_type_ == opcode::text && !utf8_.complete())
        return fail(make_error_code(error::bad_frame_payload));
    ev.kind = event_kind::message;
    ev.type = message_type_;
    ev.payload = in_place ? body : std::span<std::byte>(assembly_.data(), assembled_);
    message_open_ = false;
    message_size_ = 0;
    return ev;
}

inline std::span<std::byte> message_assembly::direct_payload_buffer(std::size_t min_bytes) {
    // Only where decode() itself would copy the payload into assembly_: a data frame being
    // streamed (not one waiting whole in the caller's buffer to be handed out in place, nor
    // a control frame), with none of its bytes left unconsumed in the caller's buffer
    // (prepared_ counts such bytes; decode() leaves no other payload bytes unconsumed).
    if (state_ != state::payload || is_control(op_) || remaining_ == 0 || prepared_ != 0 ||
        (frame_offset_ == 0 && remaining_ <= contiguous_limit_) || remaining_ < min_bytes)
        return {};
    // The message so far plus this frame's rest is within max_message_size (checked on the
    // header), but may not fit in size_t on a 32-bit target: then no direct read.
    if (remaining_ > assembly_.max_size() - assembled_) return {};
    const auto rest = static_cast<std::size_t>(remaining_);
    // Room for the whole rest of the frame at once, so that reads into it never reallocate.
    if (assembly_.size() - assembled_ < rest) assembly_.resize(assembled_ + rest);
    direct_start_ = assembled_;
    direct_size_ = rest;
    return {assembly_.data() + assembled_, rest};
}

template <class Framing>
decoder_event message_assembly::commit_direct(Framing& framing, std::size_t n) noexcept {
    if (state_ == state::failed) {
        decoder_event ev;
        ev.kind = event_kind::error;
        ev.ec = error_;
        return ev;
    }
    if (n == 0 && state_ == state::payload) {
        decoder_event ev;
        ev.needed = remaining_;
        return ev;
    }
    // The span must be the one handed out and still current: decode() moves assembled_
    // when it streams bytes, and clears direct_size_ when it ends the frame.
    if (state_ != state::payload || is_control(op_) || direct_size_ == 0 ||
        direct_start_ != assembled_ || n > direct_size_ || n > remaining_)
        return fail(make_error_code(error::application_error));
    const std::span<std::byte> fresh(assembly_.data() + assembled_, n);
    // Exactly what decode() does with streamed bytes: unmask at the frame offset's key phase,
    // and RFC 6455 §8.1 fail-fast UTF-8 for text before anything more is accepted.
    if (!prepare(framing, fresh, frame_offset_)) {
        direct_size_ = 0;
        return fail(make_error_code(error::bad_frame_payload));
    }
    assembled_ += n;
    frame_offset_ += n;
    remaining_ -= n;
    direct_start_ = assembled_;
    direct_size_ -= n;
    if (remaining_ == 0) return end_data_frame(framing, false, {});
    decoder_event ev;
    ev.needed = remaining_;
    return ev;
}

template <class Framing>
bool message_assembly::prepare(const Framing& framing, std::span<std::byte> fresh,
                               std::uint64_t offset) noexcept {
    framing.unmask_payload(fresh, offset);
    // RFC 6455 §8.1: text is checked as it arrives so invalid UTF-8 fails the connection
    // without waiting for the rest of the frame or message. Text is UTF-8 in every hybi
    // draft too, and is checked the same way.
    if (message_type_ == opcode::text) return utf8_.feed(fresh);
    return true;
}

template <class Framing>
decoder_event message_assembly::finish_control(const Framing& framing,
                                               std::span<std::byte> payload) noexcept {
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
    if (!framing.close_codes() || payload.empty()) {
        // RFC 6455 §7.1.5: a Close without a code is reported as 1005. Before hybi-06 a Close
        // body has no defined meaning: report "no status" (1005) and leave the body,
        // uninterpreted, in `payload`.
        ev.close_code = close_code::no_status;
    } else {
        // RFC 6455 §5.5.1 (hybi-06 alike): a body, if present, starts with a 2-byte code.
        if (payload.size() == 1) return fail(make_error_code(error::bad_close_size));
        ev.close_code = static_cast<std::uint16_t>(std::to_integer<unsigned>(payload[0]) << 8 |
                                                   std::to_integer<unsigned>(payload[1]));
        // Which codes may appear is the version's (RFC 6455 §7.4, hybi-06): see each
        // decoder's valid_close_code.
        if (!framing.valid_close_code(ev.close_code))
            return fail(make_error_code(error::bad_close_code));
        const auto reason = payload.subspan(2);
        // RFC 6455 §5.5.1 (hybi-06 alike): the rest of the body is a UTF-8 reason (invalid
        // data -> 1007, §8.1).
        if (!is_valid_utf8(reason)) return fail(make_error_code(error::bad_close_payload));
        ev.close_reason = {reinterpret_cast<const char*>(reason.data()), reason.size()};
    }
    // RFC 6455 §5.5.1 (hybi-03 §4.4.1 .. -06 alike): nothing after a Close is processed.
    state_ = state::closed;
    return ev;
}

template <class Framing>
inline decoder_event message_assembly::decode(Framing& framing, std::span<std::byte> in,
                                              std::size_t& consumed) {
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
                const header_status st = framing.read_header(in, pos, ec);
                consumed = pos;
                if (st == header_status::failed) return fail(ec);
                if (st == header_status::incomplete) {
                    decoder_event ev;
                    ev.needed = framing.header_missing();
                    return ev;
                }
                break;
            }
            case state::payload: {
                const std::size_t have = in.size() - pos;
                if (is_control(op_)) {
                    // Control bodies are at most 125 bytes: wait for all of them, then unmask
                    // them and hand them out in place.
                    if (have < remaining_) {
                        decoder_event ev;
                        ev.needed = remaining_ - have;
                        return ev;
                    }
                    const auto body = in.subspan(pos, static_cast<std::size_t>(remaining_));
                    framing.unmask_payload(body, 0);
                    pos += body.size();
                    consumed = pos;
                    remaining_ = 0;
                    framing.end_frame();
                    state_ = state::header;
                    return finish_control(framing, body);
                }

                const auto avail =
                    static_cast<std::size_t>(std::min<std::uint64_t>(have, remaining_));
                // Bytes up to prepared_ were unmasked and checked by an earlier call.
                const auto done =
                    static_cast<std::size_t>(std::min<std::uint64_t>(prepared_, avail));
                if (!prepare(framing, in.subspan(pos + done, avail - done), frame_offset_ + done))
                    return fail(make_error_code(error::bad_frame_payload));

                if (avail == remaining_) {
                    const auto body = in.subspan(pos, avail);
                    pos += avail;
                    consumed = pos;
                    // A message that is exactly one frame, wholly in `in`, needs no copy.
                    const bool in_place = fin_ && op_ != opcode::continuation && frame_offset_ == 0;
                    if (!in_place) append(body.data(), body.size());
                    const decoder_event ev = end_data_frame(framing, in_place, body);
                    // A non-final frame: its continuation's header follows.
                    if (!fin_) break;
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
                append(in.data() + pos, avail);
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

}  // namespace wscoro::protocol::detail
