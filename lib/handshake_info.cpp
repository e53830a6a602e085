#include "wscoro/handshake_info.hpp"

#include <cstring>
#include <stdexcept>

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

// The folded form: varint-prefixed strings and raw endpoints, read back in the same order.
void put_size(std::string& out, std::size_t n) {
    while (n >= 0x80) {
        out += static_cast<char>(0x80 | (n & 0x7F));
        n >>= 7;
    }
    out += static_cast<char>(n);
}

void put_string(std::string& out, std::string_view s) {
    put_size(out, s.size());
    out += s;
}

void put_endpoint(std::string& out, const asio::ip::tcp::endpoint& e) {
    // (The socket address as the system knows it: sockaddr_in or sockaddr_in6.)
    put_size(out, e.size());
    out.append(reinterpret_cast<const char*>(e.data()), e.size());
}

struct reader {
    std::string_view in;
    std::string_view take(std::size_t n) {
        if (n > in.size()) throw std::invalid_argument("wscoro: truncated folded handshake");
        const auto s = in.substr(0, n);
        in.remove_prefix(n);
        return s;
    }
    std::size_t size() {
        std::size_t n = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            const auto b = static_cast<unsigned char>(take(1)[0]);
            n |= static_cast<std::size_t>(b & 0x7F) << shift;
            if (!(b & 0x80)) return n;
        }
        throw std::invalid_argument("wscoro: bad folded handshake");
    }
    std::string string() { return std::string(take(size())); }
    asio::ip::tcp::endpoint endpoint() {
        asio::ip::tcp::endpoint e;
        const auto n = size();
        if (n > e.capacity()) throw std::invalid_argument("wscoro: bad folded endpoint");
        const auto bytes = take(n);
        std::memcpy(e.data(), bytes.data(), n);
        e.resize(n);
        return e;
    }
};

}  // namespace

std::string handshake_info::fold() const {
    std::string out;
    std::size_t n = request_.method.size() + request_.target.size() + subprotocol_.size() + 64 +
                    3 * sizeof(asio::ip::tcp::endpoint);
    for (const auto& h : request_.headers)
        n += h.name.size() + h.value.size() + 4;
    out.reserve(n);
    out += static_cast<char>(request_.version_major);
    out += static_cast<char>(request_.version_minor);
    put_size(out, static_cast<std::size_t>(protocol_version_));
    // flags: secure, and whether the TCP peer differs from the remote endpoint (a proxy)
    const bool proxied = tcp_peer_ != remote_;
    out += static_cast<char>((secure_ ? 1 : 0) | (proxied ? 2 : 0));
    put_endpoint(out, remote_);
    put_endpoint(out, local_);
    if (proxied) put_endpoint(out, tcp_peer_);
    put_string(out, request_.method);
    put_string(out, request_.target);
    put_string(out, subprotocol_);
    put_size(out, request_.headers.size());
    for (const auto& h : request_.headers) {
        put_string(out, h.name);
        put_string(out, h.value);
    }
    out.shrink_to_fit();
    return out;
}

handshake_info handshake_info::unfold(std::string_view folded) {
    reader r{folded};
    protocol::http_request req;
    req.version_major = static_cast<unsigned char>(r.take(1)[0]);
    req.version_minor = static_cast<unsigned char>(r.take(1)[0]);
    const auto version = static_cast<int>(r.size());
    const auto flags = static_cast<unsigned char>(r.take(1)[0]);
    const auto remote = r.endpoint();
    const auto local = r.endpoint();
    const auto tcp_peer = (flags & 2) ? r.endpoint() : remote;
    req.method = r.string();
    req.target = r.string();
    auto subprotocol = r.string();
    const auto headers = r.size();
    req.headers.reserve(headers);
    for (std::size_t i = 0; i < headers; ++i) {
        auto name = r.string();
        auto value = r.string();
        req.headers.push_back({std::move(name), std::move(value)});
    }
    handshake_info h(std::move(req), version, (flags & 1) != 0, remote, local);
    h.tcp_peer_ = tcp_peer;
    h.subprotocol_ = std::move(subprotocol);
    return h;
}

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
