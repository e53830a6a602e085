#include "wscoro/protocol/codec.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>

#include "wscoro/error.hpp"
#include "wscoro/protocol/message_assembly.hpp"

namespace wscoro::protocol {
namespace {

constexpr std::byte high_bit{0x80};
constexpr std::byte rsv_bits{0x70};  // RSV1-3 of byte 0 in every hybi draft
constexpr std::byte opcode_bits{0x0F};
constexpr std::byte length_bits{0x7F};
constexpr std::byte hixie_end{0xFF};

// draft-ietf-hybi-04: the GUID hashed with the handshake's key and nonce.
constexpr std::string_view hybi04_guid = "61AC5F19-FBBA-4540-B96F-6561F1AB40A8";

using detail::extended_length_size;
using detail::header_status;
using detail::length7;

std::error_code make(error e) noexcept {
    return make_error_code(e);
}

std::span<const std::byte> bytes_of(std::string_view s) noexcept {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// SHA-1 of the concatenated parts (libcrypto EVP). False if libcrypto fails.
bool sha1(std::initializer_list<std::span<const std::byte>> parts, hybi04_key& out) noexcept {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (ctx == nullptr) return false;
    bool ok = EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr) == 1;
    for (const auto part : parts)
        ok = ok && EVP_DigestUpdate(ctx, part.data(), part.size()) == 1;
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int digest_len = 0;
    ok = ok && EVP_DigestFinal_ex(ctx, digest.data(), &digest_len) == 1 && digest_len == out.size();
    EVP_MD_CTX_free(ctx);
    if (ok) std::memcpy(out.data(), digest.data(), out.size());
    return ok;
}

// draft-ietf-hybi-04: octet i of the frame (counted from the first header byte) is XORed
// with octet i mod 20 of the frame's SHA-1 mask.
void xor_mask20(std::span<std::byte> data, const hybi04_key& mask, std::uint64_t offset) noexcept {
    std::size_t phase = static_cast<std::size_t>(offset % mask.size());
    for (std::byte& b : data) {
        b ^= mask[phase];
        if (++phase == mask.size()) phase = 0;
    }
}

// Drafts 01-06 number the opcodes 0 continuation, 1 close, 2 ping, 3 pong, 4 text,
// 5 binary; 6-F are reserved (hybi-03 §4.2; unchanged up to -06).
bool from_draft_opcode(std::uint8_t v, opcode& op) noexcept {
    static constexpr opcode table[] = {opcode::continuation, opcode::close, opcode::ping,
                                       opcode::pong,         opcode::text,  opcode::binary};
    if (v >= std::size(table)) return false;
    op = table[v];
    return true;
}

std::uint8_t to_draft_opcode(opcode op) noexcept {
    switch (op) {
        case opcode::continuation:
            return 0;
        case opcode::close:
            return 1;
        case opcode::ping:
            return 2;
        case opcode::pong:
            return 3;
        case opcode::text:
            return 4;
        case opcode::binary:
            return 5;
    }
    return 0xFF;
}

// What every hybi draft and RFC 6455 allow in an outgoing frame.
std::error_code check_outgoing(opcode op, bool fin, std::size_t size) noexcept {
    if (!detail::is_known_opcode(op)) return make(error::bad_opcode);
    if (is_control(op)) {
        // hybi-03 §4.4 .. RFC 6455 §5.5: control frames are never fragmented and never use
        // an extended length.
        if (!fin) return make(error::bad_control_fragment);
        if (size > 125) return make(error::control_too_big);
    }
    return {};
}

std::size_t hybi_header_size(std::uint64_t n) noexcept {
    return 2 + (n < 126 ? 0 : n <= 0xFFFF ? 2 : 8);
}

// Byte 0 as given, then the 7-bit length with RSV4 clear and its 16/64-bit extension
// (hybi-03 §4.2; the same layout up to -06). Returns the bytes written.
std::size_t write_hybi_header(std::byte* p, std::byte b0, std::uint64_t n) noexcept {
    p[0] = b0;
    if (n < 126) {
        p[1] = static_cast<std::byte>(n);
        return 2;
    }
    const std::size_t ext = n <= 0xFFFF ? 2 : 8;
    p[1] = static_cast<std::byte>(ext == 2 ? 126 : 127);
    for (std::size_t i = 0; i < ext; ++i)
        p[2 + i] = static_cast<std::byte>(n >> (8 * (ext - 1 - i)));
    return 2 + ext;
}

// Drafts 04-06: bit 7 of byte 0 is FIN.
std::byte fin_first_byte(opcode op, bool fin) noexcept {
    return static_cast<std::byte>(to_draft_opcode(op)) | (fin ? high_bit : std::byte{0});
}

decoder_event error_event(std::error_code ec) noexcept {
    decoder_event ev;
    ev.kind = event_kind::error;
    ev.ec = ec;
    return ev;
}

}  // namespace

bool make_hybi04_key(std::string_view sec_websocket_key, std::string_view sec_websocket_nonce,
                     hybi04_key& out) noexcept {
    hybi04_key key;
    if (!sha1({bytes_of(sec_websocket_key), bytes_of(sec_websocket_nonce), bytes_of(hybi04_guid)},
              key))
        return false;
    out = key;
    return true;
}

// =======================================================================================
// hixie-75/76

decoder_event hixie_decoder::fail(std::error_code ec) noexcept {
    state_ = state::failed;
    error_ = ec;
    return error_event(ec);
}

decoder_event hixie_decoder::next(std::span<std::byte> in, std::size_t& consumed) {
    consumed = 0;
    std::size_t pos = 0;
    const auto need = [&](std::uint64_t n) {
        consumed = pos;
        decoder_event ev;
        ev.needed = n;
        return ev;
    };
    for (;;) {
        switch (state_) {
            case state::failed:
                return error_event(error_);
            case state::closed:
                // hixie-76 §5.3: any data after the 0xFF 0x00 closing frame is discarded.
                consumed = in.size();
                return {};
            case state::frame_type: {
                if (pos == in.size()) return need(1);
                type_ = std::to_integer<std::uint8_t>(in[pos++]);
                if ((type_ & 0x80) != 0) {
                    // hixie-76 §5.3: a type byte with the high-order bit set is followed by
                    // a length.
                    length_ = 0;
                    state_ = state::length;
                } else if (type_ == 0x00) {
                    // hixie-76 §5.3: 0x00 starts a UTF-8 text frame ending at 0xFF. The
                    // previous message was handed out before this call.
                    size_ = 0;
                    prepared_ = 0;
                    utf8_.reset();
                    assembly_.clear();
                    state_ = state::text;
                } else {
                    // hixie-76 §5.3: other types without the high bit are read up to 0xFF
                    // and discarded (em-websocket fails instead; the draft does not).
                    size_ = 0;
                    state_ = state::discard;
                }
                break;
            }
            case state::length: {
                if (pos == in.size()) return need(1);
                const std::byte b = in[pos++];
                // hixie-76 §5.3: length = length * 128 + (b & 0x7F), while b's high bit is
                // set. Nothing of the frame is ever buffered, but a frame above the limit is
                // refused (as em-websocket does) and this also keeps the value from wrapping.
                const std::uint64_t v = std::to_integer<std::uint64_t>(b & length_bits);
                const std::uint64_t max = limits_.max_frame_size;
                if (v > max || length_ > (max - v) / 128) {
                    consumed = pos;
                    return fail(make(error::frame_too_big));
                }
                length_ = length_ * 128 + v;
                if ((b & high_bit) != std::byte{0}) break;
                if (type_ == 0xFF && length_ == 0) {
                    // hixie-76 §5.3: type 0xFF with length 0 is the closing handshake. Only
                    // that type: em-websocket's "any type with length 0" is not the draft.
                    state_ = state::closed;
                    consumed = pos;
                    decoder_event ev;
                    ev.kind = event_kind::close;
                    ev.type = opcode::close;
                    ev.close_code = close_code::no_status;
                    return ev;
                }
                state_ = length_ == 0 ? state::frame_type : state::skip;
                break;
            }
            case state::skip: {
                // hixie-76 §5.3: "Read /length/ bytes. Discard the read bytes." As they come,
                // so a long frame neither stalls nor costs memory.
                const auto n = std::min<std::uint64_t>(in.size() - pos, length_);
                pos += static_cast<std::size_t>(n);
                length_ -= n;
                if (length_ != 0) return need(length_);
                state_ = state::frame_type;
                break;
            }
            case state::discard: {
                const std::size_t rest = in.size() - pos;
                const void* end = rest != 0 ? std::memchr(in.data() + pos, 0xFF, rest) : nullptr;
                const std::size_t seg =
                    end != nullptr ? static_cast<std::size_t>(static_cast<const std::byte*>(end) -
                                                              (in.data() + pos))
                                   : rest;
                // Not buffered, but bounded like any frame. (set_limits may have lowered the
                // limit below what was already discarded.)
                const std::uint64_t room =
                    limits_.max_frame_size > size_ ? limits_.max_frame_size - size_ : 0;
                if (seg > room) {
                    consumed = pos;
                    return fail(make(error::frame_too_big));
                }
                size_ += seg;
                pos += seg;
                if (end == nullptr) return need(1);
                ++pos;  // the 0xFF
                state_ = state::frame_type;
                break;
            }
            case state::text: {
                // in[pos, pos + prepared_) is payload left in place by earlier calls, already
                // checked; nothing of it is 0xFF. size_ > 0 means the frame is being streamed
                // into assembly_ instead (then prepared_ == 0).
                std::byte* const fresh = in.data() + pos + prepared_;
                const std::size_t rest = in.size() - pos - static_cast<std::size_t>(prepared_);
                const void* end = rest != 0 ? std::memchr(fresh, 0xFF, rest) : nullptr;
                const std::size_t seg =
                    end != nullptr
                        ? static_cast<std::size_t>(static_cast<const std::byte*>(end) - fresh)
                        : rest;

                // The frame has no length, so the limits are checked as bytes arrive:
                // whichever comes first, the first invalid UTF-8 byte or the first byte
                // above a limit, decides the error, however the input is split.
                // (set_limits may have lowered a limit below what has already arrived.)
                const std::uint64_t so_far = size_ + prepared_;
                const std::uint64_t frame_room =
                    limits_.max_frame_size > so_far ? limits_.max_frame_size - so_far : 0;
                const std::uint64_t message_room =
                    limits_.max_message_size > so_far ? limits_.max_message_size - so_far : 0;
                const std::uint64_t room = std::min(frame_room, message_room);
                const auto checked = static_cast<std::size_t>(std::min<std::uint64_t>(seg, room));
                // hixie-76 §5.3: the text is UTF-8; checked fail-fast (RFC 6455 §8.1 spirit).
                if (!utf8_.feed(std::span<const std::byte>(fresh, checked))) {
                    consumed = pos;
                    return fail(make(error::bad_frame_payload));
                }
                if (seg > room) {
                    consumed = pos;
                    return fail(make(frame_room <= message_room ? error::frame_too_big
                                                                : error::message_too_big));
                }

                if (end != nullptr) {
                    // hixie-76 §5.3: the frame is read as UTF-8, so it must not end mid code point.
                    if (!utf8_.complete()) {
                        consumed = pos;
                        return fail(make(error::bad_frame_payload));
                    }
                    decoder_event ev;
                    ev.kind = event_kind::message;
                    ev.type = opcode::text;
                    if (size_ == 0) {
                        // The whole frame is in `in`: hand it out in place.
                        ev.payload = in.subspan(pos, static_cast<std::size_t>(prepared_) + seg);
                    } else {
                        assembly_.insert(assembly_.end(), fresh, fresh + seg);
                        ev.payload = assembly_;
                    }
                    pos += static_cast<std::size_t>(prepared_) + seg + 1;
                    consumed = pos;
                    prepared_ = 0;
                    size_ = 0;
                    state_ = state::frame_type;
                    return ev;
                }

                if (size_ == 0 && prepared_ + seg <= contiguous_limit_) {
                    // Keep the frame in the caller's buffer so that it can be handed out in
                    // place once its 0xFF arrives.
                    prepared_ += seg;
                    return need(1);
                }
                // Too long to keep in place: stream it into the assembly buffer.
                const std::size_t n = static_cast<std::size_t>(prepared_) + seg;
                assembly_.insert(assembly_.end(), in.begin() + static_cast<std::ptrdiff_t>(pos),
                                 in.begin() + static_cast<std::ptrdiff_t>(pos + n));
                pos += n;
                size_ += n;
                prepared_ = 0;
                return need(1);
            }
        }
    }
}

// =======================================================================================
// hybi drafts 01-06

hybi_decoder::hybi_decoder(role r, int draft, frame_limits limits,
                           std::size_t contiguous_limit) noexcept
    : more_bit_(draft <= 3),
      close_codes_(draft >= 6),
      // Only client-to-server frames are masked (hybi-04 .. -06); 01-03 mask nothing.
      masking_(r == role::client ? masking::none
               : draft == 4      ? masking::sha1_04
               : draft >= 5      ? masking::key_05
                                 : masking::none),
      msg_(limits, contiguous_limit) {}

std::uint64_t hybi_decoder::header_missing() const noexcept {
    const std::size_t prefix = masking_ == masking::none ? 0 : sizeof prefix_;
    if (prefix_len_ < prefix) return prefix - prefix_len_ + 2u;
    if (hdr_len_ < 2) return 2u - hdr_len_;
    return 2 + extended_length_size(length7(hdr_[1])) - hdr_len_;
}

void hybi_decoder::unmask(std::span<std::byte> data, std::uint64_t frame_offset) const noexcept {
    switch (masking_) {
        case masking::none:
            return;
        case masking::key_05: {
            // hybi-05/06: the key masks everything after it, header included, octet i of
            // the frame with key octet i mod 4.
            mask_key key;
            std::memcpy(key.data(), prefix_, key.size());
            apply_mask(data, key, frame_offset);
            return;
        }
        case masking::sha1_04:
            xor_mask20(data, frame_mask_, frame_offset);
            return;
    }
}

void hybi_decoder::unmask_payload(std::span<std::byte> data,
                                  std::uint64_t payload_offset) const noexcept {
    // The mask runs on from the header: payload octet j is frame octet hdr_len_ + j.
    unmask(data, hdr_len_ + payload_offset);
}

bool hybi_decoder::valid_close_code(std::uint16_t code) noexcept {
    // hybi-06: codes below 1000 are not used and 1000-4999 are assigned ranges (1004
    // "frame too large" is a real code in 06, so RFC 6455's reserved list is not applied).
    return code >= 1000 && code <= 4999;
}

std::error_code hybi_decoder::check_first_byte() const noexcept {
    // hybi-03 §4.2 (unchanged to -06): RSV1-3 MUST be 0 without a negotiated extension.
    if ((hdr_[0] & rsv_bits) != std::byte{0}) return make(error::bad_reserved_bits);
    opcode op;
    // hybi-03 §4.2: opcodes 6-F are reserved; a frame using one cannot be processed.
    if (!from_draft_opcode(std::to_integer<std::uint8_t>(hdr_[0] & opcode_bits), op))
        return make(error::bad_opcode);
    // hybi-03 §4.4 (to -06): control frames MUST NOT be fragmented.
    if (is_control(op) && !fin_) return make(error::bad_control_fragment);
    return {};
}

std::error_code hybi_decoder::check_second_byte() const noexcept {
    // hybi-03 §4.2 (to -06): bit 7 of byte 1 is RSV4 (MASK only from draft 07) and MUST be 0.
    if ((hdr_[1] & high_bit) != std::byte{0}) return make(error::bad_reserved_bits);
    // hybi-03 §4.4 (to -06): control frames carry at most 125 bytes (no extended length).
    if (is_control(op_) && length7(hdr_[1]) > 125) return make(error::bad_control_size);
    // hybi-03 §4.3 (to -06): continuation sequencing.
    return msg_.check_sequence(op_);
}

std::error_code hybi_decoder::check_length() noexcept {
    // Minimal length encoding is not required (the drafts do not ask for it).
    const std::uint64_t length = detail::payload_length(hdr_);
    // hybi-03 §4.2 (to -06): the most significant bit of a 64-bit length MUST be 0.
    // All 64 bits are used (em-websocket read only 32 of them).
    if (length >> 63) return make(error::bad_frame_length);
    // RFC 6455 §7.4.1 (1009) applied to every draft: the frame and message size limits.
    return msg_.check_length(op_, length);
}

header_status hybi_decoder::read_header(std::span<const std::byte> in, std::size_t& pos,
                                        std::error_code& ec) noexcept {
    const std::size_t prefix = masking_ == masking::none ? 0 : sizeof prefix_;
    if (prefix_len_ < prefix) {
        const std::size_t n = std::min<std::size_t>(prefix - prefix_len_, in.size() - pos);
        if (n != 0) std::memcpy(prefix_ + prefix_len_, in.data() + pos, n);
        prefix_len_ = static_cast<std::uint8_t>(prefix_len_ + n);
        pos += n;
        if (prefix_len_ < prefix) return header_status::incomplete;
        // hybi-04: the frame's mask is SHA-1 of the 4-byte nonce followed by the
        // connection's masking key.
        if (masking_ == masking::sha1_04 && !sha1({std::span<const std::byte>(prefix_),
                                                   std::span<const std::byte>(connection_key_)},
                                                  frame_mask_)) {
            // libcrypto failed: our fault, not the peer's (1011).
            ec = make(error::application_error);
            return header_status::failed;
        }
    }

    // Copies header bytes up to `upto` in total, unmasked; true once they are all there.
    const auto fill = [&](std::size_t upto) {
        const std::size_t n = std::min<std::size_t>(upto - hdr_len_, in.size() - pos);
        if (n != 0) {
            std::memcpy(hdr_ + hdr_len_, in.data() + pos, n);
            unmask(std::span<std::byte>(hdr_ + hdr_len_, n), hdr_len_);
        }
        hdr_len_ = static_cast<std::uint8_t>(hdr_len_ + n);
        pos += n;
        return hdr_len_ == upto;
    };

    // Each check runs as soon as its bytes are there, in the same order whatever the split.
    if (hdr_len_ < 1) {
        if (!fill(1)) return header_status::incomplete;
        const bool bit7 = (hdr_[0] & high_bit) != std::byte{0};
        // hybi-01..03 §4.2: bit 7 is MORE (more frames follow); hybi-04 made it FIN.
        fin_ = more_bit_ ? !bit7 : bit7;
        ec = check_first_byte();
        if (ec) return header_status::failed;
        from_draft_opcode(std::to_integer<std::uint8_t>(hdr_[0] & opcode_bits), op_);
    }
    const header_status st = detail::read_length(
        hdr_, hdr_len_, fill, [&] { return check_second_byte(); }, [&] { return check_length(); },
        ec);
    if (st != header_status::complete) return st;
    msg_.start_frame(fin_, op_);
    return header_status::complete;
}

decoder_event hybi_decoder::next(std::span<std::byte> in, std::size_t& consumed) {
    return msg_.decode(*this, in, consumed);
}

// =======================================================================================
// Encoders

std::error_code append_hixie_frame(std::vector<std::byte>& out, opcode op,
                                   std::span<const std::byte> payload) {
    if (op == opcode::close) {
        // hixie-76 §5.3: the closing frame is exactly 0xFF 0x00; it has no body.
        if (!payload.empty()) return make(error::bad_opcode);
        out.push_back(std::byte{0xFF});
        out.push_back(std::byte{0x00});
        return {};
    }
    // hixie-75/76 define text frames only (binary, ping and pong do not exist).
    if (op != opcode::text) return make(error::unsupported_by_version);
    // A 0xFF would end the frame early (and is never part of valid UTF-8).
    if (!payload.empty() && std::memchr(payload.data(), 0xFF, payload.size()) != nullptr)
        return make(error::invalid_utf8_argument);
    out.reserve(out.size() + payload.size() + 2);
    out.push_back(std::byte{0x00});
    out.insert(out.end(), payload.begin(), payload.end());
    out.push_back(hixie_end);
    return {};
}

std::error_code append_hybi01_frame(std::vector<std::byte>& out, opcode op, bool fin,
                                    std::span<const std::byte> payload) {
    if (auto ec = check_outgoing(op, fin, payload.size())) return ec;
    const std::size_t start = out.size();
    out.resize(start + hybi_header_size(payload.size()) + payload.size());
    std::byte* p = out.data() + start;
    // hybi-01..03 §4.2: MORE (bit 7) set on every frame but the last.
    const std::byte b0 =
        static_cast<std::byte>(to_draft_opcode(op)) | (fin ? std::byte{0} : high_bit);
    p += write_hybi_header(p, b0, payload.size());
    if (!payload.empty()) std::memcpy(p, payload.data(), payload.size());
    return {};
}

std::error_code append_hybi04_frame(std::vector<std::byte>& out, opcode op, bool fin,
                                    std::span<const std::byte> payload, const mask_key* nonce,
                                    const hybi04_key* connection_key) {
    if (auto ec = check_outgoing(op, fin, payload.size())) return ec;
    hybi04_key frame_mask{};
    if (nonce != nullptr) {
        // Cannot mask without the connection's key.
        if (connection_key == nullptr) return make(error::bad_unmasked_frame);
        // hybi-04: the frame mask is SHA-1(nonce + connection masking key).
        if (!sha1({std::span<const std::byte>(*nonce), std::span<const std::byte>(*connection_key)},
                  frame_mask))
            return make(error::application_error);
    }
    const std::size_t prefix = nonce != nullptr ? nonce->size() : 0;
    const std::size_t start = out.size();
    out.resize(start + prefix + hybi_header_size(payload.size()) + payload.size());
    std::byte* p = out.data() + start;
    if (nonce != nullptr) std::memcpy(p, nonce->data(), prefix);
    std::byte* frame = p + prefix;
    const std::size_t h = write_hybi_header(frame, fin_first_byte(op, fin), payload.size());
    if (!payload.empty()) std::memcpy(frame + h, payload.data(), payload.size());
    // hybi-04: everything after the nonce, header included, is masked.
    if (nonce != nullptr)
        xor_mask20(std::span<std::byte>(frame, h + payload.size()), frame_mask, 0);
    return {};
}

std::error_code append_hybi05_frame(std::vector<std::byte>& out, opcode op, bool fin,
                                    std::span<const std::byte> payload, const mask_key* key) {
    if (auto ec = check_outgoing(op, fin, payload.size())) return ec;
    const std::size_t prefix = key != nullptr ? key->size() : 0;
    const std::size_t start = out.size();
    out.resize(start + prefix + hybi_header_size(payload.size()) + payload.size());
    std::byte* p = out.data() + start;
    if (key != nullptr) std::memcpy(p, key->data(), prefix);
    std::byte* frame = p + prefix;
    const std::size_t h = write_hybi_header(frame, fin_first_byte(op, fin), payload.size());
    if (key == nullptr) {
        if (!payload.empty()) std::memcpy(frame + h, payload.data(), payload.size());
        return {};
    }
    // hybi-05/06: the key masks the header and the payload, octet i with key octet i mod 4.
    apply_mask(std::span<std::byte>(frame, h), *key, 0);
    if (!payload.empty()) copy_masked(frame + h, payload, *key, h);
    return {};
}

// =======================================================================================
// codec

namespace {

using decoder_variant = std::variant<message_decoder, hybi_decoder, hixie_decoder>;

decoder_variant make_decoder(role r, wire_format f, int version, frame_limits limits,
                             std::size_t contiguous_limit) noexcept {
    switch (f) {
        case wire_format::rfc6455:
            return decoder_variant(std::in_place_type<message_decoder>, r, limits,
                                   contiguous_limit);
        case wire_format::hixie:
            return decoder_variant(std::in_place_type<hixie_decoder>, limits, contiguous_limit);
        case wire_format::hybi01:
        case wire_format::hybi04:
        case wire_format::hybi05:
            break;
    }
    return decoder_variant(std::in_place_type<hybi_decoder>, r, version, limits, contiguous_limit);
}

// The version a codec built from a bare wire format behaves as.
int representative_version(wire_format f) noexcept {
    switch (f) {
        case wire_format::hixie:
            return 76;
        case wire_format::hybi01:
            return 3;
        case wire_format::hybi04:
            return 4;
        case wire_format::hybi05:
            return 6;
        case wire_format::rfc6455:
            break;
    }
    return 13;
}

}  // namespace

codec::codec(role r, int protocol_version, frame_limits limits,
             std::size_t contiguous_limit) noexcept
    : role_(r),
      format_(wire_format_for(protocol_version)),
      version_(protocol_version),
      decoder_(make_decoder(r, format_, protocol_version, limits, contiguous_limit)) {}

codec::codec(role r, wire_format f, frame_limits limits, std::size_t contiguous_limit) noexcept
    : codec(r, representative_version(f), limits, contiguous_limit) {}

decoder_event codec::next_legacy(std::span<std::byte> in, std::size_t& consumed) {
    if (auto* d = std::get_if<hybi_decoder>(&decoder_)) return d->next(in, consumed);
    return std::get_if<hixie_decoder>(&decoder_)->next(in, consumed);
}

decoder_event codec::commit_direct_legacy(std::size_t n) noexcept {
    // hixie and hybi-01..06 never offer a direct span, so there is nothing to commit to. The
    // legacy decoders' state is left alone: their stream is not affected by the misuse.
    decoder_event ev;
    if (n == 0) {
        ev.needed = 1;
        return ev;
    }
    ev.kind = event_kind::error;
    ev.ec = make(error::application_error);
    return ev;
}

std::error_code codec::append_frame(std::vector<std::byte>& out, opcode op, bool fin,
                                    std::span<const std::byte> payload, const mask_key* key) {
    const bool masks = format_ == wire_format::hybi04 || format_ == wire_format::hybi05 ||
                       format_ == wire_format::rfc6455;
    // RFC 6455 §5.1 (and hybi-04..06): servers never mask, clients always do.
    if (role_ == role::server && key != nullptr) return make(error::bad_masked_frame);
    if (role_ == role::client && masks && key == nullptr) return make(error::bad_unmasked_frame);
    switch (format_) {
        case wire_format::hixie:
            // hixie has no fragmentation.
            if (!fin) return make(error::unsupported_by_version);
            return append_hixie_frame(out, op, payload);
        case wire_format::hybi01:
            return append_hybi01_frame(out, op, fin, payload);
        case wire_format::hybi04:
            return append_hybi04_frame(out, op, fin, payload, key,
                                       &std::get_if<hybi_decoder>(&decoder_)->hybi04_masking_key());
        case wire_format::hybi05:
            return append_hybi05_frame(out, op, fin, payload, key);
        case wire_format::rfc6455:
            break;
    }
    if (auto ec = check_outgoing(op, fin, payload.size())) return ec;
    protocol::append_frame(out, op, fin, payload, key);
    return {};
}

std::error_code codec::append_close(std::vector<std::byte>& out, std::uint16_t code,
                                    std::string_view reason, const mask_key* key) {
    // hixie-76 and hybi-01..05 have no status codes: their Close carries nothing.
    if (!has_close_codes(version_)) return append_frame(out, opcode::close, {}, key);
    if (code == 0 || code == close_code::no_status) {
        // RFC 6455 §5.5.1: a reason can only follow a code.
        if (!reason.empty()) return make(error::invalid_close_code);
        return append_frame(out, opcode::close, {}, key);
    }
    // RFC 6455 §7.4: only these codes may appear on the wire.
    if (!close_code::is_valid_on_wire(code)) return make(error::invalid_close_code);
    // RFC 6455 §5.5: a control payload is at most 125 bytes, 2 of them the code.
    if (reason.size() > 123) return make(error::reason_too_long);
    // RFC 6455 §5.5.1 (hybi-06 likewise): the reason is UTF-8.
    if (!is_valid_utf8(reason)) return make(error::invalid_utf8_argument);
    std::byte body[125];
    const std::size_t n = encode_close_payload(body, code, reason);
    return append_frame(out, opcode::close, std::span<const std::byte>(body, n), key);
}

void codec::set_hybi04_key(const hybi04_key& key) noexcept {
    if (auto* d = std::get_if<hybi_decoder>(&decoder_)) d->set_hybi04_key(key);
}

void codec::set_limits(frame_limits limits) noexcept {
    std::visit([&](auto& d) { d.set_limits(limits); }, decoder_);
}

const frame_limits& codec::limits() const noexcept {
    return std::visit([](const auto& d) -> const frame_limits& { return d.limits(); }, decoder_);
}

void codec::set_contiguous_limit(std::size_t n) noexcept {
    std::visit([&](auto& d) { d.set_contiguous_limit(n); }, decoder_);
}

bool codec::in_message() const noexcept {
    return std::visit([](const auto& d) { return d.in_message(); }, decoder_);
}

void codec::shrink() noexcept {
    std::visit([](auto& d) { d.shrink(); }, decoder_);
}

}  // namespace wscoro::protocol
