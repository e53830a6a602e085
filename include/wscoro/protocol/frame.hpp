#pragma once
// RFC 6455 framing (§5): a message decoder for either role and frame encoding helpers.
//
// Part of the sans-I/O layer: no I/O, never throws, resumable at any byte boundary.
// Every limit is checked from the frame header, before a payload byte is buffered.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "wscoro/protocol/masking.hpp"
#include "wscoro/protocol/utf8.hpp"

namespace wscoro::protocol {

/// Frame opcodes (RFC 6455 §5.2). 0x3-0x7 and 0xB-0xF are reserved.
enum class opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

/// Control frames have the high bit of the opcode set (RFC 6455 §5.5).
constexpr bool is_control(opcode op) noexcept {
    return (static_cast<unsigned>(op) & 0x8u) != 0;
}

/// Which end of the connection this codec is. A server requires masked frames from its
/// peer and sends unmasked ones; a client the reverse (RFC 6455 §5.1).
enum class role : std::uint8_t { server, client };

/// Size limits checked on every received frame header.
struct frame_limits {
    std::uint64_t max_frame_size = 10 * 1024 * 1024;    ///< one frame's payload (-> 1009)
    std::uint64_t max_message_size = 64 * 1024 * 1024;  ///< sum of a message's frames (-> 1009)
};

/// What `message_decoder::next` found.
enum class event_kind : std::uint8_t {
    need_more,  ///< every byte that can be used now was used; feed more
    message,    ///< a complete text or binary message
    ping,       ///< a Ping frame (the caller answers it with a Pong)
    pong,       ///< a Pong frame
    close,      ///< a valid Close frame; the decoder ignores anything after it
    error,      ///< the peer broke the protocol; `ec` says how (close with close_code_for(ec))
};

/// One result of `message_decoder::next`.
///
/// `payload` points either into the caller's input buffer (a whole message that arrived as
/// one frame is handed out in place, unmasked, with no copy) or into the decoder's own
/// assembly buffer. Either way it stays valid until the next call to `next` and until the
/// caller moves or overwrites the consumed input bytes.
struct decoder_event {
    event_kind kind = event_kind::need_more;
    opcode type = opcode::text;     ///< message: text or binary; otherwise the frame opcode
    std::span<std::byte> payload;   ///< message data / ping or pong body / whole close body
    std::uint16_t close_code = 0;   ///< close: the code, or 1005 (no_status) if none
    std::string_view close_reason;  ///< close: the UTF-8 reason (may be empty)
    std::error_code ec;             ///< error: what was wrong
    std::uint64_t needed = 0;       ///< need_more: at least this many more bytes are wanted
};

namespace detail {

/// An allocator that default-initialises (for std::byte: leaves uninitialised) what
/// resize() adds, so that growing the assembly buffer to take a frame's payload does not
/// first zero memory the payload overwrites anyway (a 1 MiB memset per large message).
template <class T>
struct default_init_allocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = default_init_allocator<U>;
    };
    default_init_allocator() noexcept = default;
    template <class U>
    default_init_allocator(const default_init_allocator<U>&) noexcept {}
    template <class U>
    void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
        ::new (static_cast<void*>(p)) U;
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};

/// How far a decoder's read_header got.
enum class header_status : std::uint8_t { incomplete, complete, failed };

/// What message_decoder (RFC 6455) and hybi_decoder (drafts 01-06, codec.hpp) share: the
/// decoder's state, the size limits, the current frame's payload, the message it belongs to
/// (type, size, UTF-8 state, assembly buffer) and the decoding loop itself. The member
/// templates and the inline functions are defined in message_assembly.hpp.
///
/// Each decoder keeps only its header parsing and its masking scheme, and passes itself as
/// `Framing` to decode(), which calls back (resolved at compile time and inlined):
///   header_status read_header(std::span<const std::byte> in, std::size_t& pos,
///                             std::error_code& ec)
///       reads and checks the next frame header from in[pos...], advancing pos; it calls
///       check_sequence() and check_length() as the bytes they need arrive and
///       start_frame() once the header is complete;
///   std::uint64_t header_missing() const  bytes the incomplete header still needs;
///   void unmask_payload(std::span<std::byte> data, std::uint64_t payload_offset) const
///       unmasks payload bytes in place, `data` starting `payload_offset` into the payload;
///   void end_frame()                      the frame is consumed: a header comes next;
///   bool close_codes() const              Close bodies carry a code and a reason;
///   bool valid_close_code(std::uint16_t) const  a received Close code may be on the wire.
class message_assembly {
  public:
    message_assembly(frame_limits limits, std::size_t contiguous_limit) noexcept
        : limits_(limits),
          single_frame_limit_(single_frame_limit(limits)),
          contiguous_limit_(contiguous_limit) {}

    /// message_decoder::next's contract, with `framing`'s header format and masking. Forced
    /// inline into each decoder's next(), so that the RFC 6455 path stays one function.
    template <class Framing>
    [[gnu::always_inline]] decoder_event decode(Framing& framing, std::span<std::byte> in,
                                                std::size_t& consumed);

    /// message_decoder::direct_payload_buffer's contract (see there). Grows the assembly
    /// buffer to hold the rest of the frame; std::bad_alloc is the only exception.
    std::span<std::byte> direct_payload_buffer(std::size_t min_bytes);
    /// message_decoder::commit_direct's contract, with `framing`'s masking.
    template <class Framing>
    decoder_event commit_direct(Framing& framing, std::size_t n) noexcept;

    /// For read_header: whether a data frame of opcode `op` may come now.
    std::error_code check_sequence(opcode op) const noexcept;
    /// For read_header: checks a frame's payload length against the limits, before any of it
    /// is buffered, and keeps it for start_frame.
    std::error_code check_length(opcode op, std::uint64_t length) noexcept;
    /// For read_header, once the header is complete: the payload (of the length passed to
    /// check_length) comes next.
    void start_frame(bool fin, opcode op) noexcept;

    /// For a decoder's whole-frame fast path: true between frames (none of a header read,
    /// as far as this class knows) and between messages, so a FIN text/binary frame may come.
    bool at_message_boundary() const noexcept { return state_ == state::header && !message_open_; }
    /// For the fast path: the largest payload a single-frame message may have (the smaller
    /// of the two limits, kept so the fast path compares once).
    std::uint64_t single_frame_limit() const noexcept { return single_frame_limit_; }
    /// For the fast path, at a message boundary: `in` starts with a whole single-frame text or
    /// binary message (FIN set, RSV clear, length within single_frame_limit(), all checked by
    /// the caller) whose `length` payload bytes at in[header...] are already unmasked.
    /// `ascii`: the caller saw that they are all ASCII (valid UTF-8, nothing to check).
    /// Validates text, updates the state and returns the event and `consumed` exactly as
    /// decode() would for the same bytes. Defined in message_assembly.hpp.
    decoder_event whole_message(opcode op, std::span<std::byte> in, std::size_t header,
                                std::size_t length, bool ascii, std::size_t& consumed) noexcept;

    void set_limits(frame_limits limits) noexcept {
        limits_ = limits;
        single_frame_limit_ = single_frame_limit(limits);
    }
    const frame_limits& limits() const noexcept { return limits_; }
    void set_contiguous_limit(std::size_t n) noexcept { contiguous_limit_ = n; }
    bool in_message() const noexcept { return message_open_; }
    void shrink() noexcept {
        // A single long frame is streamed into assembly_ without opening a message.
        if (!message_open_ && state_ != state::payload) {
            buffer().swap(assembly_);
            assembled_ = 0;
            direct_size_ = 0;
        }
    }

  private:
    enum class state : std::uint8_t { header, payload, closed, failed };

    static constexpr std::uint64_t single_frame_limit(const frame_limits& l) noexcept {
        return l.max_frame_size < l.max_message_size ? l.max_frame_size : l.max_message_size;
    }

    using buffer = std::vector<std::byte, default_init_allocator<std::byte>>;

    decoder_event fail(std::error_code ec) noexcept;
    void append(const std::byte* data, std::size_t n);
    template <class Framing>
    decoder_event end_data_frame(Framing& framing, bool in_place,
                                 std::span<std::byte> body) noexcept;
    template <class Framing>
    bool prepare(const Framing& framing, std::span<std::byte> fresh, std::uint64_t offset) noexcept;
    template <class Framing>
    decoder_event finish_control(const Framing& framing, std::span<std::byte> payload) noexcept;

    frame_limits limits_;
    std::uint64_t single_frame_limit_;
    std::size_t contiguous_limit_;
    state state_ = state::header;

    // current frame (from start_frame on)
    bool fin_ = false;
    opcode op_ = opcode::continuation;
    std::uint64_t remaining_ = 0;     // payload bytes of this frame not consumed yet
    std::uint64_t frame_offset_ = 0;  // payload bytes of this frame consumed so far
    std::uint64_t prepared_ = 0;      // bytes after the consumed point already unmasked/checked

    // current message
    bool message_open_ = false;  // a data frame with FIN clear has been received
    opcode message_type_ = opcode::text;
    std::uint64_t message_size_ = 0;
    utf8_validator utf8_;
    // The message's bytes are assembly_[0, assembled_). The vector's size is only its usable
    // storage (never shrunk between messages, and grown without zeroing): direct reads are
    // written past assembled_ before they are counted.
    buffer assembly_;
    std::size_t assembled_ = 0;
    // The span direct_payload_buffer() last handed out: it starts at assembly_[direct_start_]
    // and holds direct_size_ bytes (0: none), so commit_direct can tell a misuse.
    std::size_t direct_start_ = 0;
    std::size_t direct_size_ = 0;
    std::error_code error_;
};

}  // namespace detail

/// Decodes a stream of frames into messages and control events.
///
/// Contract with the caller (the connection owns one read buffer):
///  - `next(in, consumed)` looks at `in` (all received bytes not consumed yet, in order),
///    sets `consumed` to how many leading bytes it used, and returns one event.
///  - Bytes not consumed must be passed again, unchanged and in front, on the next call
///    (the decoder may already have unmasked and UTF-8-checked them in place; it remembers
///    how far). The caller may move them within its buffer.
///  - A data frame whose remaining payload is at most `contiguous_limit` bytes is not
///    consumed until all of it is in `in`, so that a message arriving as one frame can be
///    handed out in place; text is still UTF-8-checked as bytes arrive (fail-fast, §8.1).
///    Longer frames are streamed into the assembly buffer as they arrive. The caller's
///    buffer must therefore be able to hold `contiguous_limit` + 14 bytes. Control frames
///    (at most 125 bytes) are always waited for whole.
///  - While a longer frame is streamed, the caller may instead receive its payload straight
///    into the assembly buffer (direct_payload_buffer / commit_direct), saving a copy.
///  - After `error` the decoder stays failed and returns the same error; after `close` it
///    consumes and ignores everything (RFC 6455 §5.5.1: no data after Close).
///
/// Validation (each branch cites its section in the implementation): RSV bits, opcode,
/// masking per role, control frame FIN and size, minimal length encoding, 64-bit length MSB,
/// continuation sequencing, frame and message size limits, fail-fast UTF-8 of text across
/// frames, Close payload size / code / reason UTF-8.
///
/// No allocation in the steady state: the assembly buffer keeps its capacity between
/// messages. Not thread-safe.
class message_decoder {
  public:
    explicit message_decoder(role r, frame_limits limits = {},
                             std::size_t contiguous_limit = 64 * 1024) noexcept
        : role_(r), msg_(limits, contiguous_limit) {}

    /// See the contract above. A whole single-frame text or binary message at the front of
    /// `in` (the steady state of small messages) takes a fast path that gives the same
    /// events, `consumed` values and state as the general, resumable one.
    decoder_event next(std::span<std::byte> in, std::size_t& consumed);

    /// Changes the limits; applies from the next frame header.
    void set_limits(frame_limits limits) noexcept { msg_.set_limits(limits); }
    const frame_limits& limits() const noexcept { return msg_.limits(); }
    void set_contiguous_limit(std::size_t n) noexcept { msg_.set_contiguous_limit(n); }

    /// True while a fragmented message has been started but not finished.
    bool in_message() const noexcept { return msg_.in_message(); }
    /// True between messages with nothing of the next frame received: a new decoder with
    /// the same role and limits would decode what comes next identically.
    bool idle() const noexcept { return hdr_len_ == 0 && msg_.at_message_boundary(); }
    /// Releases the assembly buffer's memory (e.g. for an idle connection). Does nothing
    /// while a message or a frame is being assembled.
    void shrink() noexcept { msg_.shrink(); }

    /// Direct payload reads: lets the caller receive a long data frame's payload straight
    /// into the message (assembly) buffer instead of into its read buffer, saving the copy
    /// next() would make from one to the other.
    ///
    /// Returns a non-empty span only when the decoder is inside a text, binary or
    /// continuation frame's payload that it streams into the assembly buffer (the frame is
    /// longer than contiguous_limit, or part of it was already streamed), at least
    /// `min_bytes` (and at least 1) of that payload are still to come, and every byte given
    /// to next() has been consumed (the last call returned need_more having consumed all of
    /// its input; no payload bytes are waiting in the caller's buffer). Received bytes the
    /// caller has not passed to next() at all are invisible here: it must hold none (read
    /// into the span only with an empty read buffer). The span is where the
    /// next raw (still masked) payload bytes belong; its size is exactly the frame's
    /// remaining payload, so a read into it can never take bytes of the next frame. Empty
    /// otherwise: then read into your own buffer and call next() as usual. A frame waiting
    /// whole in the caller's buffer (at most contiguous_limit bytes, to be handed out in
    /// place) and control frames never go direct.
    ///
    /// The first call for a frame grows the assembly buffer to hold the rest of the frame
    /// (bounded by max_message_size, which the header was checked against); the capacity is
    /// kept, so the steady state does not allocate. std::bad_alloc is the only exception.
    /// The span stays valid until the next call to next() or commit_direct(); calling
    /// direct_payload_buffer() again before either returns the same span.
    std::span<std::byte> direct_payload_buffer(std::size_t min_bytes);

    /// Takes the `n` bytes written at the start of the span the last direct_payload_buffer()
    /// returned (n at most its size): unmasks them in place with the frame's key at the
    /// right phase, validates text as UTF-8 (fail-fast and incremental across calls, frames
    /// and next(), exactly as next() does), counts them as payload consumed, and returns the
    /// event next() would have returned having consumed exactly those bytes: need_more
    /// (`needed`: the rest of the frame, or the next header's 2 bytes after a non-final
    /// frame), the completed message (payload in the assembly buffer, valid as for next())
    /// when they end the final frame, or error::bad_frame_payload (1007) for invalid UTF-8,
    /// sticky as every error. n == 0 changes nothing and returns need_more.
    ///
    /// Mixing is allowed: next() may take the rest of a frame that was partly read directly,
    /// and the next frame's header always comes through next(). Calling commit_direct
    /// without a span to commit to (none handed out, or next() ran since, or n larger than
    /// the span) is a caller bug: the decoder fails with error::application_error (1011).
    decoder_event commit_direct(std::size_t n) noexcept;

  private:
    friend class detail::message_assembly;

    // The general path: detail::message_assembly::decode, resumable at any byte.
    decoder_event next_slow(std::span<std::byte> in, std::size_t& consumed);

    // The hooks detail::message_assembly::decode calls (see there).
    detail::header_status read_header(std::span<const std::byte> in, std::size_t& pos,
                                      std::error_code& ec) noexcept;
    std::uint64_t header_missing() const noexcept;
    void unmask_payload(std::span<std::byte> data, std::uint64_t payload_offset) const noexcept;
    void end_frame() noexcept { hdr_len_ = 0; }
    static constexpr bool close_codes() noexcept { return true; }
    static bool valid_close_code(std::uint16_t code) noexcept;

    std::error_code check_first_byte() const noexcept;
    std::error_code check_second_byte() const noexcept;
    std::error_code check_length() noexcept;

    role role_;

    // current frame header
    std::byte hdr_[14]{};
    std::uint8_t hdr_len_ = 0;
    bool fin_ = false;
    opcode op_ = opcode::continuation;
    bool masked_ = false;
    mask_key key_{};

    detail::message_assembly msg_;
};

/// Largest frame header: 2 + 8 (64-bit length) + 4 (masking key).
inline constexpr std::size_t max_header_size = 14;

/// Size of the header for a payload of `payload_size` bytes.
constexpr std::size_t header_size(std::uint64_t payload_size, bool masked) noexcept {
    return 2 + (payload_size < 126 ? 0 : payload_size <= 0xFFFF ? 2 : 8) + (masked ? 4 : 0);
}

/// Writes a frame header to `out` (room for max_header_size bytes) using the minimal length
/// encoding (§5.2). `key` non-null sets the MASK bit and appends the key; the payload must
/// then be masked with it (copy_masked). `rsv1` is for extensions. Returns bytes written.
/// (Inline: a server writes one per message.)
inline std::size_t encode_header(std::byte* out, opcode op, bool fin, std::uint64_t payload_size,
                                 const mask_key* key = nullptr, bool rsv1 = false) noexcept {
    // Byte 0: FIN 0x80, RSV1 0x40, opcode in the low 4 bits. Byte 1: MASK 0x80, length.
    auto b0 = static_cast<std::byte>(op) & std::byte{0x0F};
    if (fin) b0 |= std::byte{0x80};
    if (rsv1) b0 |= std::byte{0x40};
    out[0] = b0;
    const std::byte mask = key != nullptr ? std::byte{0x80} : std::byte{0};
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

/// Appends a whole frame (header + payload, masked if `key`) to `out`.
void append_frame(std::vector<std::byte>& out, opcode op, bool fin,
                  std::span<const std::byte> payload, const mask_key* key = nullptr);

/// Writes the body of a Close frame: the code in network byte order, then the reason
/// (RFC 6455 §5.5.1). `out` needs 2 + reason.size() bytes. Returns bytes written.
std::size_t encode_close_payload(std::byte* out, std::uint16_t code,
                                 std::string_view reason) noexcept;

}  // namespace wscoro::protocol
