#pragma once
// Incremental, fail-fast UTF-8 validation (RFC 3629 §3-4, Unicode Table 3-7).
//
// Part of the sans-I/O layer: no I/O, no allocation, never throws.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace wscoro::protocol {

/// Validates UTF-8 fed in pieces of any size, split anywhere (inside a code point too).
///
/// It fails as soon as a byte makes the input invalid, whatever follows (RFC 6455 §8.1 asks
/// the endpoint to fail "as soon as" it sees invalid data; Autobahn case 6.4 checks this).
/// Overlong forms, surrogates (U+D800..U+DFFF) and code points above U+10FFFF are invalid.
/// Once invalid it stays invalid until reset(). Plain value type; not thread-safe.
class utf8_validator {
  public:
    /// Feeds more bytes. Returns false if the input so far can no longer be valid UTF-8.
    /// ASCII runs are skipped 32 and 8 bytes at a time.
    bool feed(std::span<const std::byte> bytes) noexcept;
    bool feed(std::string_view text) noexcept {
        return feed(std::as_bytes(std::span<const char>(text.data(), text.size())));
    }

    /// True if everything fed so far is valid and ends on a code point boundary.
    bool complete() const noexcept { return state_ == accept; }
    /// True unless an invalid byte has been seen.
    bool valid() const noexcept { return state_ != reject; }
    /// Starts again with empty input.
    void reset() noexcept { state_ = accept; }

  private:
    // The DFA state as utf8.cpp's shift DFA numbers it (a bit offset: state index * 6).
    static constexpr std::uint8_t accept = 0;
    static constexpr std::uint8_t reject = 6;
    std::uint8_t state_ = accept;
};

/// True if `bytes` is complete, valid UTF-8.
bool is_valid_utf8(std::span<const std::byte> bytes) noexcept;
inline bool is_valid_utf8(std::string_view text) noexcept {
    return is_valid_utf8(std::as_bytes(std::span<const char>(text.data(), text.size())));
}

}  // namespace wscoro::protocol
