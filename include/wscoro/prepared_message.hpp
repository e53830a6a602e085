#pragma once
// A message framed once and shared by reference, for broadcasting.

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "wscoro/message.hpp"

namespace wscoro {

/// A complete server-to-client RFC 6455 frame, built once and reference-counted.
///
///     auto msg = wscoro::prepared_message::text(fmt::format("{}: {}", who, what));
///     for (auto& member : room) co_await member.send(msg);
///
/// Sending it to a connection queues a reference to the shared bytes: no copy and no
/// re-framing per connection, however many connections. (A frame of at most 512 bytes is
/// copied as it is instead, which costs less than sharing it; still no re-framing and no
/// second UTF-8 check.) Connections speaking an older protocol version frame its payload
/// their own way. Immutable and cheap to copy; safe to share between threads.
class prepared_message {
  public:
    /// A text message. Throws wscoro::system_error (error::invalid_utf8_argument) if `text`
    /// is not valid UTF-8.
    static prepared_message text(std::string_view text);
    /// A binary message.
    static prepared_message binary(std::span<const std::byte> data);

    message_type type() const noexcept { return type_; }
    /// The payload (without the frame header).
    std::span<const std::byte> payload() const noexcept {
        return std::span<const std::byte>(*frame_).subspan(header_size_);
    }
    /// The whole RFC 6455 frame as sent by a server (unmasked, FIN set).
    std::span<const std::byte> frame() const noexcept { return *frame_; }
    /// The shared bytes, kept alive by each connection until written.
    const std::shared_ptr<const std::vector<std::byte>>& shared_frame() const noexcept {
        return frame_;
    }

  private:
    prepared_message(message_type type, std::span<const std::byte> payload);

    std::shared_ptr<const std::vector<std::byte>> frame_;
    std::size_t header_size_ = 0;
    message_type type_ = message_type::text;
};

}  // namespace wscoro
