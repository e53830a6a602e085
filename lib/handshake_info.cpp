#include "wscoro/handshake_info.hpp"

namespace wscoro {
namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// application/x-www-form-urlencoded decoding (WHATWG URL §5.1): '+' is a space, %XX a byte;
// a malformed escape is kept literally rather than rejected.
std::string form_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%' && i + 2 < in.size() && hex_value(in[i + 1]) >= 0 &&
                   hex_value(in[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

const tls_details& handshake_info::tls() const noexcept {
    static const tls_details none;
    return tls_ ? *tls_ : none;
}

handshake_info::handshake_info(protocol::http_request request, int protocol_version, bool secure,
                               asio::ip::tcp::endpoint remote, asio::ip::tcp::endpoint local)
    : request_(std::move(request)),
      protocol_version_(protocol_version),
      secure_(secure),
      remote_(remote),
      local_(std::move(local)),
      tcp_peer_(std::move(remote)) {
    request_.headers.shrink_to_fit();  // kept for the connection's lifetime
    std::string_view q = request_.query_string();
    while (!q.empty()) {
        const auto amp = q.find('&');
        const auto part = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
        if (part.empty()) continue;
        const auto eq = part.find('=');
        if (eq == std::string_view::npos)
            query_.emplace_back(form_decode(part), std::string());
        else
            query_.emplace_back(form_decode(part.substr(0, eq)), form_decode(part.substr(eq + 1)));
    }
}

std::optional<std::string_view> handshake_info::query(std::string_view key) const noexcept {
    for (auto it = query_.rbegin(); it != query_.rend(); ++it)
        if (it->first == key) return std::string_view(it->second);
    return std::nullopt;
}

std::vector<std::string_view> handshake_info::subprotocols() const {
    // Sec-WebSocket-Protocol is a comma-separated token list and may be repeated
    // (RFC 6455 §4.1 item 10, §11.3.4).
    std::vector<std::string_view> out;
    for (const auto& h : request_.headers) {
        if (h.name.size() != 22) continue;
        bool match = true;
        constexpr std::string_view name = "sec-websocket-protocol";
        for (std::size_t i = 0; i < name.size() && match; ++i)
            match = (h.name[i] | 0x20) == name[i] || h.name[i] == name[i];
        if (!match) continue;
        std::string_view v = h.value;
        while (!v.empty()) {
            const auto comma = v.find(',');
            auto item = v.substr(0, comma);
            while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
                item.remove_prefix(1);
            while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
                item.remove_suffix(1);
            if (!item.empty()) out.push_back(item);
            if (comma == std::string_view::npos) break;
            v.remove_prefix(comma + 1);
        }
    }
    return out;
}

std::optional<std::string_view> handshake_info::origin() const noexcept {
    if (auto o = request_.header("Origin")) return o;
    return request_.header("Sec-WebSocket-Origin");
}

}  // namespace wscoro
