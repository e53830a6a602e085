#include "wscoro/prepared_message.hpp"

#include "wscoro/error.hpp"
#include "wscoro/protocol/frame.hpp"
#include "wscoro/protocol/utf8.hpp"

namespace wscoro {

prepared_message::prepared_message(message_type type, std::span<const std::byte> payload)
    : type_(type) {
    auto frame = std::make_shared<std::vector<std::byte>>();
    const auto op = type == message_type::text ? protocol::opcode::text : protocol::opcode::binary;
    protocol::append_frame(*frame, op, true, payload);
    header_size_ = frame->size() - payload.size();
    frame_ = std::move(frame);
}

prepared_message prepared_message::text(std::string_view text) {
    // RFC 6455 §5.6: text frames carry UTF-8.
    if (!protocol::is_valid_utf8(text))
        throw wscoro::system_error(make_error_code(error::invalid_utf8_argument));
    return prepared_message(message_type::text,
                            std::as_bytes(std::span<const char>(text.data(), text.size())));
}

prepared_message prepared_message::binary(std::span<const std::byte> data) {
    return prepared_message(message_type::binary, data);
}

}  // namespace wscoro
