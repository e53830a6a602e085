#pragma once
// Framing for every WebSocket protocol version in the wild, behind one `codec` type.
//
//   version         wire format   framing
//   75, 76 (0)      hixie         draft-hixie-thewebsocketprotocol-75/-76 (= hybi-00):
//                                 0x00 <UTF-8> 0xFF text frames, length-prefixed frames
//                                 (skipped), 0xFF 0x00 close
//   1, 2, 3         hybi01        draft-ietf-hybi-01..03: MORE bit, opcodes 0 cont 1 close
//                                 2 ping 3 pong 4 text 5 binary, 7/16/64-bit length, no mask
//   4               hybi04        draft-ietf-hybi-04: FIN instead of MORE; client frames start
//                                 with a 4-byte nonce and the rest of the frame is XORed with
//                                 SHA-1(nonce + connection masking key), a 20-byte mask
//   5, 6            hybi05        draft-ietf-hybi-05/06: client frames start with a 4-byte key
//                                 that XORs the rest of the frame, header included; 06 adds
//                                 close status codes
//   7, 8, 13 ...    rfc6455       RFC 6455 (message_decoder in frame.hpp)
//
// The legacy decoders keep message_decoder's caller contract exactly (see frame.hpp): the
// same `next(in, consumed)`, the same decoder_event, RFC 6455 opcode values in every event
// and API, limits checked before anything is buffered, fail-fast UTF-8, sticky errors.
//
// Part of the sans-I/O layer: no I/O, never throws (only std::bad_alloc from containers).
// Draft-04's SHA-1 comes from OpenSSL's EVP interface (libcrypto).

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include "wscoro/protocol/frame.hpp"
#include "wscoro/protocol/masking.hpp"
#include "wscoro/protocol/utf8.hpp"

namespace wscoro::protocol {

/// The framing families (see the table at the top of this file).
enum class wire_format : std::uint8_t { hixie, hybi01, hybi04, hybi05, rfc6455 };

/// The framing of a protocol version as the handshake reports it: 75 and 76 (and 0, hybi-00,
/// which is hixie-76) -> hixie; 1-3 -> hybi01; 4 -> hybi04; 5-6 -> hybi05; anything else
/// (7, 8, 13, and versions no handshake accepts) -> rfc6455. Which versions are accepted is
/// the handshake's decision, not this function's.
constexpr wire_format wire_format_for(int protocol_version) noexcept {
    if (protocol_version == 75 || protocol_version == 76 || protocol_version == 0)
        return wire_format::hixie;
    if (protocol_version >= 1 && protocol_version <= 3) return wire_format::hybi01;
    if (protocol_version == 4) return wire_format::hybi04;
    if (protocol_version == 5 || protocol_version == 6) return wire_format::hybi05;
    return wire_format::rfc6455;
}

/// True if the format has Ping/Pong frames (every hybi draft; hixie has none).
constexpr bool has_ping(wire_format f) noexcept {
    return f != wire_format::hixie;
}

/// True if the format has binary messages (every hybi draft; hixie only has text).
constexpr bool has_binary(wire_format f) noexcept {
    return f != wire_format::hixie;
}

/// True if Close frames carry a status code and reason: draft 06 and later (not 75/76).
constexpr bool has_close_codes(int protocol_version) noexcept {
    return protocol_version == 6 || wire_format_for(protocol_version) == wire_format::rfc6455;
}

/// Draft-04's per-connection masking key: SHA-1 of Sec-WebSocket-Key, Sec-WebSocket-Nonce
/// and the GUID "61AC5F19-FBBA-4540-B96F-6561F1AB40A8" (draft-ietf-hybi-04: client-to-server
/// masking, and the nonce the server sends in its handshake).
using hybi04_key = std::array<std::byte, 20>;

/// Computes the draft-04 connection masking key from the two header values exactly as
/// sent (base64 text). Returns false only if libcrypto fails (`out` is then unchanged).
bool make_hybi04_key(std::string_view sec_websocket_key, std::string_view sec_websocket_nonce,
                     hybi04_key& out) noexcept;

// ---------------------------------------------------------------------------------------
// hixie-75/76

/// Decoder for draft-hixie-75/76 framing (either role: neither direction is masked).
///
///  - `0x00 <bytes> 0xFF` is a text message; the bytes must be UTF-8, checked as they arrive
///    (invalid -> error::bad_frame_payload). There is no length: the frame fails with
///    frame_too_big (message_too_big) as soon as its size exceeds max_frame_size
///    (max_message_size). A frame still in progress is kept in the caller's buffer while it
///    is at most contiguous_limit bytes, so that it can be handed out in place.
///  - A type byte with the high bit set is followed by a length in 7-bit groups (high bit =
///    more groups follow); that many bytes are skipped without being buffered (limit:
///    max_frame_size). Type 0xFF with length 0 is the Close frame (event close, code 1005).
///  - Any other type byte (0x01-0x7F): the bytes up to the next 0xFF are discarded, as
///    draft-hixie-76 §5.3 says (not an error, unlike em-websocket); limit: max_frame_size.
/// There is no fragmentation, so in_message() is always false.
class hixie_decoder {
  public:
    explicit hixie_decoder(frame_limits limits = {},
                           std::size_t contiguous_limit = 64 * 1024) noexcept
        : limits_(limits), contiguous_limit_(contiguous_limit) {}

    /// Same contract as message_decoder::next.
    decoder_event next(std::span<std::byte> in, std::size_t& consumed);

    void set_limits(frame_limits limits) noexcept { limits_ = limits; }
    const frame_limits& limits() const noexcept { return limits_; }
    void set_contiguous_limit(std::size_t n) noexcept { contiguous_limit_ = n; }
    bool in_message() const noexcept { return false; }
    /// Releases the assembly buffer unless a text frame is being assembled.
    void shrink() noexcept {
        if (state_ != state::text) std::vector<std::byte>().swap(assembly_);
    }

  private:
    enum class state : std::uint8_t { frame_type, length, skip, text, discard, closed, failed };

    decoder_event fail(std::error_code ec) noexcept;

    frame_limits limits_;
    std::size_t contiguous_limit_;
    state state_ = state::frame_type;
    std::uint8_t type_ = 0;       // the current frame's type byte
    std::uint64_t length_ = 0;    // length: the value so far; skip: bytes left to skip
    std::uint64_t size_ = 0;      // text / discard: payload bytes consumed so far
    std::uint64_t prepared_ = 0;  // text: payload bytes left in place, already checked
    utf8_validator utf8_;
    std::vector<std::byte> assembly_;
    std::error_code error_;
};

// ---------------------------------------------------------------------------------------
// hybi drafts 01-06

/// Decoder for draft-ietf-hybi-01 to -06 framing. `draft` is the protocol version, 1-6
/// (1-3: MORE bit, no masking; 4: FIN, SHA-1 frame masking; 5-6: FIN, 4-byte key masking
/// the whole frame; 6: close codes). Values below 1 act as 1, above 6 as 6.
///
/// Role server: frames from the client carry the draft's masking prefix (04/05/06); role
/// client: frames from the server are plain. There is no MASK bit before draft 07, so an
/// unmasked frame cannot be told apart from a masked one.
///
/// Checks, each citing its draft in the implementation: RSV1-4 zero, known opcode, control
/// frames unfragmented and at most 125 bytes, 64-bit length MSB zero, continuation
/// sequencing (any number of fragments, control frames interleaved), frame and message
/// limits from the header, fail-fast UTF-8 of text, and on draft 06 the Close body (code in
/// 1000-4999, UTF-8 reason). Before draft 06 a Close body is not interpreted: the event has
/// code 1005 and the raw body as payload. Minimal length encoding is not required (the
/// drafts do not ask for it).
///
/// For draft 04 in the server role, call set_hybi04_key() before the first next().
class hybi_decoder {
  public:
    hybi_decoder(role r, int draft, frame_limits limits = {},
                 std::size_t contiguous_limit = 64 * 1024) noexcept;

    /// Same contract as message_decoder::next.
    decoder_event next(std::span<std::byte> in, std::size_t& consumed);

    void set_hybi04_key(const hybi04_key& key) noexcept { connection_key_ = key; }
    const hybi04_key& hybi04_masking_key() const noexcept { return connection_key_; }

    void set_limits(frame_limits limits) noexcept { msg_.set_limits(limits); }
    const frame_limits& limits() const noexcept { return msg_.limits(); }
    void set_contiguous_limit(std::size_t n) noexcept { msg_.set_contiguous_limit(n); }
    bool in_message() const noexcept { return msg_.in_message(); }
    /// Releases the assembly buffer unless a message or frame is being assembled.
    void shrink() noexcept { msg_.shrink(); }

  private:
    enum class masking : std::uint8_t { none, sha1_04, key_05 };

    friend class detail::message_assembly;

    // The hooks detail::message_assembly::decode calls (see frame.hpp).
    detail::header_status read_header(std::span<const std::byte> in, std::size_t& pos,
                                      std::error_code& ec) noexcept;
    std::uint64_t header_missing() const noexcept;
    void unmask_payload(std::span<std::byte> data, std::uint64_t payload_offset) const noexcept;
    void end_frame() noexcept {
        hdr_len_ = 0;
        prefix_len_ = 0;
    }
    bool close_codes() const noexcept { return close_codes_; }
    static bool valid_close_code(std::uint16_t code) noexcept;

    std::error_code check_first_byte() const noexcept;
    std::error_code check_second_byte() const noexcept;
    std::error_code check_length() noexcept;
    void unmask(std::span<std::byte> data, std::uint64_t frame_offset) const noexcept;

    bool more_bit_;     // drafts 01-03: bit 7 of byte 0 means MORE, not FIN
    bool close_codes_;  // draft 06
    masking masking_;

    // current frame: masking prefix, then the (unmasked copy of the) header
    std::byte prefix_[4]{};
    std::uint8_t prefix_len_ = 0;
    std::byte hdr_[10]{};
    std::uint8_t hdr_len_ = 0;
    hybi04_key frame_mask_{};  // draft 04: SHA-1(nonce + connection key)
    hybi04_key connection_key_{};
    bool fin_ = false;
    opcode op_ = opcode::continuation;  // RFC 6455 numbering

    detail::message_assembly msg_;
};

// ---------------------------------------------------------------------------------------
// Encoders. `op` is always an RFC 6455 opcode; each encoder translates it to its draft's
// numbering. They append one complete frame and return an error (appending nothing) when
// the frame cannot be expressed:
//   error::unsupported_by_version  the format has no such frame (hixie: binary, ping, pong,
//                                continuation)
//   error::bad_opcode            `op` is not a known opcode
//   error::bad_control_fragment  a control frame with fin == false
//   error::control_too_big       a control frame payload above 125 bytes
//   error::invalid_utf8_argument hixie text containing 0xFF (it would end the frame early)

/// hixie: text as `00 <payload> FF`, close as `FF 00` (a close payload must be empty).
std::error_code append_hixie_frame(std::vector<std::byte>& out, opcode op,
                                   std::span<const std::byte> payload);

/// Drafts 01-03: MORE set when `fin` is false; never masked.
std::error_code append_hybi01_frame(std::vector<std::byte>& out, opcode op, bool fin,
                                    std::span<const std::byte> payload);

/// Draft 04: `nonce` null writes a server frame (unmasked); otherwise a client frame: the
/// nonce, then header and payload XORed with SHA-1(nonce + connection_key).
/// error::application_error if libcrypto fails.
std::error_code append_hybi04_frame(std::vector<std::byte>& out, opcode op, bool fin,
                                    std::span<const std::byte> payload,
                                    const mask_key* nonce = nullptr,
                                    const hybi04_key* connection_key = nullptr);

/// Drafts 05/06: `key` null writes a server frame (unmasked); otherwise a client frame: the
/// key, then header and payload XORed with it.
std::error_code append_hybi05_frame(std::vector<std::byte>& out, opcode op, bool fin,
                                    std::span<const std::byte> payload,
                                    const mask_key* key = nullptr);

// ---------------------------------------------------------------------------------------

/// The framing of one connection, whatever its protocol version.
///
/// next() dispatches to message_decoder for RFC 6455 (a branch on the variant's index, no
/// virtual call, no allocation) and to the legacy decoders otherwise; it has exactly
/// message_decoder's contract. Encoding picks the version's layout; opcodes are RFC 6455's.
/// Movable; not thread-safe.
class codec {
  public:
    /// A codec for a negotiated protocol version (see wire_format_for). The version also
    /// decides draft 05 vs 06 (close codes).
    codec(role r, int protocol_version, frame_limits limits = {},
          std::size_t contiguous_limit = 64 * 1024) noexcept;
    /// A codec for a wire format; hybi05 behaves as draft 06 (with close codes), hybi01 as
    /// draft 03, hixie as 76, rfc6455 as 13.
    codec(role r, wire_format f, frame_limits limits = {},
          std::size_t contiguous_limit = 64 * 1024) noexcept;

    /// Same contract as message_decoder::next.
    decoder_event next(std::span<std::byte> in, std::size_t& consumed) {
        if (auto* d = std::get_if<message_decoder>(&decoder_)) [[likely]]
            return d->next(in, consumed);
        return next_legacy(in, consumed);
    }

    /// True for an RFC 6455 (or hybi 07-17) decoder between messages with nothing of the
    /// next frame received (message_decoder::idle); always false for the older formats.
    bool idle() const noexcept {
        const auto* d = std::get_if<message_decoder>(&decoder_);
        return d && d->idle();
    }

    /// Direct payload reads (message_decoder::direct_payload_buffer, same contract): for
    /// RFC 6455 the span of the message buffer where the current long data frame's next raw
    /// payload bytes belong, at most its remaining payload; empty when there is none, and
    /// always for the other wire formats.
    std::span<std::byte> direct_payload_buffer(std::size_t min_bytes) {
        if (auto* d = std::get_if<message_decoder>(&decoder_)) [[likely]]
            return d->direct_payload_buffer(min_bytes);
        return {};
    }

    /// Takes `n` bytes written into the span direct_payload_buffer() returned (same contract
    /// as message_decoder::commit_direct). Other wire formats never hand out a span: n == 0
    /// returns need_more, anything else is error::application_error (a caller bug), as
    /// message_decoder would report it; neither changes the decoder's state.
    decoder_event commit_direct(std::size_t n) noexcept {
        if (auto* d = std::get_if<message_decoder>(&decoder_)) [[likely]]
            return d->commit_direct(n);
        return commit_direct_legacy(n);
    }

    /// Appends one complete frame (FIN set). `key`: in the client role, the masking key (or
    /// draft-04 nonce) for formats that mask (hybi04, hybi05, rfc6455); required there
    /// (error::bad_unmasked_frame without it), ignored for formats that never mask (hixie,
    /// hybi01). In the server role it must be null (error::bad_masked_frame). Other errors
    /// as for the encoders above; on error nothing is appended.
    std::error_code append_frame(std::vector<std::byte>& out, opcode op,
                                 std::span<const std::byte> payload,
                                 const mask_key* key = nullptr) {
        return append_frame(out, op, true, payload, key);
    }
    /// The same for one fragment of a message: `op` text/binary for the first fragment,
    /// continuation for the others, `fin` on the last (hixie cannot fragment:
    /// error::unsupported_by_version).
    std::error_code append_frame(std::vector<std::byte>& out, opcode op, bool fin,
                                 std::span<const std::byte> payload, const mask_key* key = nullptr);

    /// Appends a Close frame. hixie: `FF 00`; drafts 01-05: an empty Close (code and reason
    /// are not expressible and are dropped); draft 06 and RFC 6455: the code and reason, or
    /// an empty body if `code` is 0 or 1005 (no status). Errors (formats with codes only):
    /// error::invalid_close_code if the code may not appear on the wire, or a reason is given
    /// without a code; error::reason_too_long above 123 bytes; error::invalid_utf8_argument
    /// if the reason is not UTF-8. `key` as for append_frame.
    std::error_code append_close(std::vector<std::byte>& out, std::uint16_t code,
                                 std::string_view reason = {}, const mask_key* key = nullptr);

    /// Draft 04: the connection masking key (make_hybi04_key); needed before next() in the
    /// server role and before append_frame() in the client role. Ignored by other formats.
    void set_hybi04_key(const hybi04_key& key) noexcept;

    void set_limits(frame_limits limits) noexcept;
    const frame_limits& limits() const noexcept;
    void set_contiguous_limit(std::size_t n) noexcept;
    /// True while a fragmented message has been started but not finished.
    bool in_message() const noexcept;
    /// Releases the decoder's assembly buffer if nothing is being assembled.
    void shrink() noexcept;

    wire_format format() const noexcept { return format_; }
    int protocol_version() const noexcept { return version_; }
    role get_role() const noexcept { return role_; }

  private:
    decoder_event next_legacy(std::span<std::byte> in, std::size_t& consumed);
    static decoder_event commit_direct_legacy(std::size_t n) noexcept;

    role role_;
    wire_format format_;
    int version_;
    std::variant<message_decoder, hybi_decoder, hixie_decoder> decoder_;
};

}  // namespace wscoro::protocol
