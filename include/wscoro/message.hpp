#pragma once
// A received WebSocket message: a view, valid until the next receive() on its connection.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wscoro {

/// What a received message is. `ping` and `pong` only appear when the connection was asked
/// to deliver control frames (connection::deliver_control_frames).
enum class message_type : std::uint8_t { text, binary, ping, pong };

/// A complete message handed out by connection::receive().
///
/// It does not own its bytes: they live in the connection's read or assembly buffer and stay
/// valid until the next call to receive() on the same connection (or until the connection is
/// destroyed). Use str() or to_bytes() for an owning copy. Text messages are valid UTF-8
/// (checked before delivery, RFC 6455 §8.1). Cheap to copy (pointer + size + type).
class message {
  public:
    message() = default;
    message(message_type type, std::span<const std::byte> data) noexcept
        : data_(data), type_(type) {}

    message_type type() const noexcept { return type_; }
    bool is_text() const noexcept { return type_ == message_type::text; }
    bool is_binary() const noexcept { return type_ == message_type::binary; }

    /// The payload as characters (any type; for text it is UTF-8).
    std::string_view text() const noexcept {
        return {reinterpret_cast<const char*>(data_.data()), data_.size()};
    }
    /// The payload as bytes.
    std::span<const std::byte> data() const noexcept { return data_; }
    std::size_t size() const noexcept { return data_.size(); }
    bool empty() const noexcept { return data_.empty(); }

    /// Owning copies of the payload.
    std::string str() const { return std::string(text()); }
    std::vector<std::byte> to_bytes() const { return {data_.begin(), data_.end()}; }

  private:
    std::span<const std::byte> data_;
    message_type type_ = message_type::text;
};

/// How a connection ended, as em-websocket's onclose hash `{code, reason, was_clean}`, plus
/// the error when the connection did not close cleanly.
struct close_info {
    /// The code of the peer's Close frame; 1005 if it had none; 1006 if the connection
    /// ended without a Close exchange (TCP dropped, timeout); or, when we failed the
    /// connection because the peer broke the protocol, the code we sent (1002, 1007, 1009).
    std::uint16_t code = 1006;
    std::string reason;      ///< the peer's close reason (or the one we sent when failing)
    bool was_clean = false;  ///< true iff both Close frames were exchanged (RFC 6455 §7.1.4)
    std::error_code error;   ///< why it was not clean: a wscoro::error or a transport error
};

}  // namespace wscoro
