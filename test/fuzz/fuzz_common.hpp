#pragma once
// Shared helpers of the libFuzzer targets in test/fuzz/: input slicing, chunk splits derived
// from the input, and a driver that runs any decoder with the message_decoder contract
// (frame.hpp) over a byte stream, checking the contract on every call.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "wscoro/error.hpp"
#include "wscoro/protocol/frame.hpp"
#include "wscoro/protocol/utf8.hpp"

// Aborts (libFuzzer then saves the input as a crash) with the failed condition.
#define FUZZ_CHECK(...)                                                                 \
    do {                                                                                \
        if (!(__VA_ARGS__)) {                                                           \
            std::fprintf(stderr, "%s:%d: contract violation: %s\n", __FILE__, __LINE__, \
                         #__VA_ARGS__);                                                 \
            std::abort();                                                               \
        }                                                                               \
    } while (0)

namespace fuzz {

/// Reads configuration bytes from the front of the input (0 once it is exhausted).
struct reader {
    const std::uint8_t* p;
    std::size_t n;

    std::uint8_t byte() noexcept {
        if (n == 0) return 0;
        --n;
        return *p++;
    }
    std::uint16_t u16() noexcept {
        const unsigned hi = byte();
        return static_cast<std::uint16_t>(hi << 8 | byte());
    }
    std::span<const std::uint8_t> take(std::size_t k) noexcept {
        k = std::min(k, n);
        std::span<const std::uint8_t> out(p, k);
        p += k;
        n -= k;
        return out;
    }
    bool empty() const noexcept { return n == 0; }
};

/// Chunk sizes for feeding a stream, taken from `spec` bytes cycled (the input decides).
/// A spec byte b < 0x80 is a small chunk of b % 17 bytes (0 = "call again with nothing
/// new"); b >= 0x80 a large one of (b - 0x80) * 37 bytes. No spec: the whole input at once.
class splits {
  public:
    explicit splits(std::span<const std::uint8_t> spec) noexcept : spec_(spec) {}

    /// The next chunk size; SIZE_MAX means "everything that is left".
    std::size_t next() noexcept {
        if (spec_.empty()) return SIZE_MAX;
        const std::uint8_t b = spec_[i_++ % spec_.size()];
        return (b < 0x80 ? b % 17u : static_cast<std::size_t>(b - 0x80) * 37u) * scale_;
    }

    /// Multiplies every chunk size (to keep long streams from taking thousands of calls).
    void scale(std::size_t k) noexcept { scale_ = k == 0 ? 1 : k; }

  private:
    std::span<const std::uint8_t> spec_;
    std::size_t i_ = 0;
    std::size_t scale_ = 1;
};

/// Splits `data` into [config | stream | split spec]: the first `config` bytes, then one byte
/// whose low 4 bits say how many bytes at the end are split-size spec.
struct layout {
    std::span<const std::uint8_t> config;
    std::span<const std::uint8_t> stream;
    std::span<const std::uint8_t> spec;
};
inline layout split_input(const std::uint8_t* data, std::size_t size, std::size_t config) {
    layout l;
    config = std::min(config, size);
    l.config = {data, config};
    data += config;
    size -= config;
    if (size == 0) return l;
    const std::size_t nspec = std::min<std::size_t>(data[0] & 0x0F, size - 1);
    ++data;
    --size;
    l.stream = {data, size - nspec};
    l.spec = {data + size - nspec, nspec};
    return l;
}

inline std::span<const std::byte> as_bytes(std::span<const std::uint8_t> s) noexcept {
    return std::as_bytes(s);
}

inline bool overlaps(const void* a, std::size_t an, const void* b, std::size_t bn) noexcept {
    const auto x = reinterpret_cast<std::uintptr_t>(a);
    const auto y = reinterpret_cast<std::uintptr_t>(b);
    return an != 0 && bn != 0 && x < y + bn && y < x + an;
}

/// An event as the caller sees it (payload copied out: ASan checks every byte of the span).
struct recorded_event {
    wscoro::protocol::event_kind kind{};
    wscoro::protocol::opcode type{};
    std::vector<std::byte> payload;
    std::uint16_t close_code = 0;
    std::string close_reason;
    std::error_code ec;

    bool operator==(const recorded_event&) const = default;
};

inline const char* kind_name(wscoro::protocol::event_kind k) {
    using wscoro::protocol::event_kind;
    switch (k) {
        case event_kind::need_more:
            return "need_more";
        case event_kind::message:
            return "message";
        case event_kind::ping:
            return "ping";
        case event_kind::pong:
            return "pong";
        case event_kind::close:
            return "close";
        case event_kind::error:
            return "error";
    }
    return "?";
}

inline void dump(const char* title, const std::vector<recorded_event>& evs) {
    std::fprintf(stderr, "%s (%zu events)\n", title, evs.size());
    for (const auto& e : evs) {
        std::fprintf(stderr, "  %s type=%u size=%zu code=%u reason=%zu ec=%s\n", kind_name(e.kind),
                     static_cast<unsigned>(e.type), e.payload.size(), e.close_code,
                     e.close_reason.size(), e.ec ? e.ec.message().c_str() : "-");
    }
}

/// What the driver knows about the decoder it runs.
struct decoder_params {
    wscoro::protocol::frame_limits limits;
    std::size_t contiguous_limit = 64 * 1024;
    bool rfc6455_close_codes = true;     // close codes must be is_valid_on_wire (RFC 6455)
    bool close_codes = true;             // the format carries close codes at all
    bool single_frame_messages = false;  // hixie: a message is one frame
    bool shrink_when_idle = false;       // call shrink() at every need_more
};

/// Feeds `stream` to `d` in the chunks `sp` gives, as a connection does (one buffer: the
/// unconsumed bytes stay in front, new bytes are appended), checking message_decoder's
/// contract on every call. Returns the events (need_more excluded), up to and including the
/// first close or error.
template <class Decoder>
std::vector<recorded_event> drive(Decoder& d, std::span<const std::byte> stream, splits sp,
                                  const decoder_params& params) {
    using namespace wscoro::protocol;
    std::vector<recorded_event> out;
    std::vector<std::byte> buf;
    std::size_t fed = 0;
    bool closed = false;
    // need_more's promise from the previous call and what was appended since.
    std::uint64_t promised = 0;
    bool check_promise = false;
    std::size_t appended = 0;

    // The most bytes the decoder may leave unconsumed after need_more: a data frame kept in
    // place (contiguous_limit) or a control frame (125). Headers are consumed as they come.
    const std::size_t hold_limit = std::max<std::size_t>(params.contiguous_limit, 125);
    // Streams longer than libFuzzer's inputs (fuzz_roundtrip's big messages): bigger chunks.
    sp.scale(stream.size() / 8192 + 1);

    for (;;) {
        // Call until need_more: every byte that can be used now is used.
        for (;;) {
            std::size_t consumed = 0xDEADBEEF;
            const decoder_event ev = d.next(std::span<std::byte>(buf), consumed);
            FUZZ_CHECK(consumed <= buf.size());
            if (check_promise) {
                check_promise = false;
                if (appended < promised) {
                    // Fewer bytes than asked for cannot complete anything.
                    FUZZ_CHECK(ev.kind == event_kind::need_more || ev.kind == event_kind::error);
                    if (ev.kind == event_kind::need_more && !closed)
                        FUZZ_CHECK(ev.needed + appended >= promised);
                }
            }

            if (ev.kind == event_kind::need_more) {
                FUZZ_CHECK(ev.payload.empty());
                FUZZ_CHECK(!ev.ec);
                if (closed) {
                    // After Close everything is consumed and ignored.
                    FUZZ_CHECK(consumed == buf.size());
                } else {
                    FUZZ_CHECK(ev.needed > 0);
                }
                buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(consumed));
                // The caller never has to hold more than the documented amount.
                if (!closed) FUZZ_CHECK(buf.size() <= hold_limit);
                // Idempotent: asking again with nothing new changes nothing.
                std::size_t again = 0xDEADBEEF;
                const decoder_event ev2 = d.next(std::span<std::byte>(buf), again);
                FUZZ_CHECK(ev2.kind == event_kind::need_more);
                FUZZ_CHECK(again == (closed ? buf.size() : 0));
                if (closed)
                    buf.clear();
                else
                    FUZZ_CHECK(ev2.needed == ev.needed);
                promised = ev.needed;
                if (params.shrink_when_idle) d.shrink();
                break;
            }

            FUZZ_CHECK(!closed);  // nothing but need_more after Close
            recorded_event r;
            r.kind = ev.kind;
            r.type = ev.type;
            r.close_code = ev.close_code;
            r.ec = ev.ec;
            // The payload is in the consumed part of the caller's buffer, or wholly outside it
            // (the decoder's own assembly buffer).
            if (overlaps(ev.payload.data(), ev.payload.size(), buf.data(), buf.size())) {
                FUZZ_CHECK(ev.payload.data() >= buf.data());
                FUZZ_CHECK(ev.payload.data() + ev.payload.size() <= buf.data() + consumed);
            }
            r.payload.assign(ev.payload.begin(), ev.payload.end());
            r.close_reason.assign(ev.close_reason);

            switch (ev.kind) {
                case event_kind::message:
                    FUZZ_CHECK(ev.type == opcode::text || ev.type == opcode::binary);
                    FUZZ_CHECK(ev.payload.size() <= params.limits.max_message_size);
                    if (params.single_frame_messages)
                        FUZZ_CHECK(ev.payload.size() <= params.limits.max_frame_size);
                    if (ev.type == opcode::text) FUZZ_CHECK(is_valid_utf8(ev.payload));
                    FUZZ_CHECK(!d.in_message());
                    FUZZ_CHECK(!ev.ec);
                    break;
                case event_kind::ping:
                case event_kind::pong:
                    FUZZ_CHECK(ev.type ==
                               (ev.kind == event_kind::ping ? opcode::ping : opcode::pong));
                    FUZZ_CHECK(ev.payload.size() <= 125);
                    FUZZ_CHECK(ev.payload.size() <= params.limits.max_frame_size);
                    FUZZ_CHECK(!ev.ec);
                    break;
                case event_kind::close:
                    FUZZ_CHECK(ev.type == opcode::close);
                    FUZZ_CHECK(ev.payload.size() <= 125);
                    FUZZ_CHECK(ev.payload.size() <= params.limits.max_frame_size);
                    FUZZ_CHECK(!ev.ec);
                    if (!params.close_codes || ev.payload.empty()) {
                        // No status (1005); before hybi-06 the body is not interpreted.
                        FUZZ_CHECK(ev.close_code == wscoro::close_code::no_status);
                        FUZZ_CHECK(ev.close_reason.empty());
                    } else {
                        FUZZ_CHECK(ev.payload.size() >= 2);
                        FUZZ_CHECK(ev.close_code == (std::to_integer<unsigned>(ev.payload[0]) << 8 |
                                                     std::to_integer<unsigned>(ev.payload[1])));
                        if (params.rfc6455_close_codes)
                            FUZZ_CHECK(wscoro::close_code::is_valid_on_wire(ev.close_code));
                        else
                            FUZZ_CHECK(ev.close_code >= 1000 && ev.close_code <= 4999);
                        FUZZ_CHECK(ev.close_reason.size() == ev.payload.size() - 2);
                        FUZZ_CHECK(ev.close_reason.data() ==
                                   reinterpret_cast<const char*>(ev.payload.data()) + 2);
                        FUZZ_CHECK(is_valid_utf8(ev.close_reason));
                    }
                    closed = true;
                    break;
                case event_kind::error:
                    FUZZ_CHECK(ev.ec);
                    FUZZ_CHECK(ev.ec.category() == wscoro::error_category());
                    FUZZ_CHECK(wscoro::close_code_for(ev.ec) != 0);
                    break;
                case event_kind::need_more:
                    break;
            }
            out.push_back(std::move(r));
            buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(consumed));

            if (ev.kind == event_kind::error) {
                // Sticky: the same error again, with or without new bytes.
                for (int i = 0; i < 2; ++i) {
                    if (i == 1)
                        buf.insert(buf.end(), stream.begin() + static_cast<std::ptrdiff_t>(fed),
                                   stream.end());
                    std::size_t c = 0xDEADBEEF;
                    const decoder_event e2 = d.next(std::span<std::byte>(buf), c);
                    FUZZ_CHECK(e2.kind == event_kind::error);
                    FUZZ_CHECK(e2.ec == ev.ec);
                    FUZZ_CHECK(c <= buf.size());
                }
                return out;
            }
        }

        if (fed == stream.size()) return out;
        std::size_t k = sp.next();
        if (k == 0) {
            // A call with nothing new was just made (the idempotence check); move on.
            k = stream.size() / 8192 + 1;
        }
        k = std::min(k, stream.size() - fed);
        buf.insert(buf.end(), stream.begin() + static_cast<std::ptrdiff_t>(fed),
                   stream.begin() + static_cast<std::ptrdiff_t>(fed + k));
        fed += k;
        appended = k;
        check_promise = true;
    }
}

/// Frame limits chosen by one configuration byte: the defaults or small ones that the
/// fuzzer's inputs can reach.
inline wscoro::protocol::frame_limits pick_limits(std::uint8_t b) noexcept {
    static constexpr std::uint64_t sizes[] = {0,
                                              1,
                                              2,
                                              5,
                                              125,
                                              126,
                                              127,
                                              300,
                                              1000,
                                              65535,
                                              65536,
                                              10 * 1024 * 1024,
                                              64 * 1024 * 1024,
                                              UINT64_MAX,
                                              UINT64_MAX - 1,
                                              4096};
    wscoro::protocol::frame_limits l;
    if ((b & 0x80) == 0) return l;  // defaults half of the time
    l.max_frame_size = sizes[b & 0x0F];
    l.max_message_size = sizes[(b >> 3) & 0x0F];
    return l;
}

/// A contiguous limit chosen by one configuration byte.
inline std::size_t pick_contiguous(std::uint8_t b) noexcept {
    static constexpr std::size_t sizes[] = {64 * 1024, 0, 1, 7, 125, 126, 1000, 4096};
    return sizes[b & 0x07];
}

/// Runs `make()`-built decoders over the stream whole and in the input's chunk split (with a
/// possibly different contiguous limit and shrink calls), and aborts unless both see the
/// same events: every split of the same bytes must decode the same way.
template <class Make>
std::vector<recorded_event> differential(Make make, std::span<const std::byte> stream,
                                         std::span<const std::uint8_t> spec,
                                         decoder_params whole_params, decoder_params split_params) {
    auto d1 = make(whole_params);
    const auto a = drive(d1, stream, splits({}), whole_params);
    auto d2 = make(split_params);
    const auto b = drive(d2, stream, splits(spec), split_params);
    if (a != b) {
        dump("whole input", a);
        dump("chunked input", b);
        FUZZ_CHECK(!"the events depend on how the input is split");
    }
    return a;
}

}  // namespace fuzz
