#include "wscoro/protocol/handshake.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <string>

#include "wscoro/error.hpp"

namespace wscoro::protocol {
namespace {

constexpr bool is_base64_char(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

// base64 of `n` bytes; EVP_EncodeBlock writes 4 chars per 3 bytes plus a NUL.
std::string base64(const unsigned char* data, std::size_t n) {
    std::string out(4 * ((n + 2) / 3) + 1, '\0');
    const int len =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
    out.resize(len > 0 ? static_cast<std::size_t>(len) : 0);
    return out;
}

// RFC 6455 §4.2.1 item 5: "a base64-encoded value that, when decoded, is 16 bytes in length".
// 16 bytes encode to 22 significant chars plus "==" (RFC 4648 §4).
bool is_valid_sec_key(std::string_view key) noexcept {
    if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
    // EVP_DecodeBlock tolerates '=' anywhere and skips leading whitespace, so the alphabet is
    // checked first to make "exactly 22 data chars" hold.
    for (std::size_t i = 0; i < 22; ++i)
        if (!is_base64_char(key[i])) return false;
    std::array<unsigned char, 18> decoded{};
    const int n =
        EVP_DecodeBlock(decoded.data(), reinterpret_cast<const unsigned char*>(key.data()),
                        static_cast<int>(key.size()));
    // EVP_DecodeBlock counts the two padding chars as data: 18 means 16 real bytes.
    return n == 18;
}

void append_fields(std::string& out, std::span<const http_header> fields) {
    for (const auto& f : fields) {
        out += f.name;
        out += ": ";
        out += f.value;
        out += "\r\n";
    }
}

constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

}  // namespace

std::string compute_accept_key(std::string_view key) {
    std::string input;
    input.reserve(key.size() + websocket_guid.size());
    input.append(key);
    input.append(websocket_guid);
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int digest_len = 0;
    // RFC 6455 §4.2.2 item 5.4: base64(SHA-1(key + GUID)).
    // Fetched once: OpenSSL 3 otherwise looks the implementation up on every digest.
    static EVP_MD* const sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_len, sha1 ? sha1 : EVP_sha1(),
                   nullptr) != 1)
        return {};
    return base64(digest.data(), digest_len);
}

upgrade_check check_upgrade(const http_request& request) noexcept {
    const auto reject = [](error e) { return upgrade_check{make_error_code(e), 0}; };
    // RFC 6455 §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
    if (request.method != "GET") return reject(error::bad_method);
    if (request.version_major < 1 || (request.version_major == 1 && request.version_minor < 1))
        return reject(error::bad_http_version);
    // RFC 6455 §4.2.1 item 2: a |Host| header field; RFC 9112 §3.2 rejects a repeated one.
    if (request.header_count("Host") != 1) return reject(error::no_host);
    // RFC 6455 §4.2.1 item 3: |Upgrade| includes "websocket" (a list, RFC 9110 §7.8).
    if (!request.has_token("Upgrade", "websocket")) return reject(error::no_upgrade);
    // RFC 6455 §4.2.1 item 4: |Connection| includes the token "Upgrade".
    if (!request.has_token("Connection", "upgrade")) return reject(error::no_connection_upgrade);
    // RFC 6455 §4.2.1 item 5 / §11.3.1: exactly one |Sec-WebSocket-Key|.
    if (request.header_count("Sec-WebSocket-Key") != 1) return reject(error::no_sec_key);
    if (!is_valid_sec_key(*request.header("Sec-WebSocket-Key"))) return reject(error::bad_sec_key);
    // RFC 6455 §4.2.1 item 6 / §11.3.5: exactly one |Sec-WebSocket-Version| of 13; anything
    // else is answered with 426 listing the supported version (§4.4).
    if (request.header_count("Sec-WebSocket-Version") != 1 ||
        *request.header("Sec-WebSocket-Version") != "13")
        return reject(error::bad_sec_version);
    return upgrade_check{{}, 13};
}

std::string accept_response(const http_request& request, std::span<const http_header> extra) {
    std::string out =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: ";
    out += compute_accept_key(request.header("Sec-WebSocket-Key").value_or(std::string_view{}));
    out += "\r\n";
    append_fields(out, extra);
    out += "\r\n";
    return out;
}

std::string error_response(int status, std::string_view body, std::span<const http_header> extra) {
    std::string out = "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += reason_phrase(status);
    out +=
        "\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: ";
    out += std::to_string(body.size());
    // The connection is never reused after a failed handshake, so say so (RFC 9112 §9.6).
    out +=
        "\r\n"
        "Connection: close\r\n";
    append_fields(out, extra);
    out += "\r\n";
    out += body;
    return out;
}

std::string reject_response(std::error_code ec) {
    int status = http_status_for(ec);
    if (status == 0) status = 400;
    const std::string body = ec.message() + "\n";
    if (status == 426) {
        // RFC 6455 §4.4: name the versions we speak; RFC 9110 §15.5.22: 426 carries Upgrade.
        const http_header fields[] = {{"Upgrade", "websocket"}, {"Sec-WebSocket-Version", "13"}};
        return error_response(status, body, fields);
    }
    if (status == 405) {
        // RFC 9110 §15.5.6: a 405 response must carry Allow.
        const http_header fields[] = {{"Allow", "GET"}};
        return error_response(status, body, fields);
    }
    return error_response(status, body);
}

std::string_view reason_phrase(int status) noexcept {
    // RFC 9110 §15 (and RFC 6585 for 429 and 431).
    switch (status) {
        case 101:
            return "Switching Protocols";
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 413:
            return "Content Too Large";
        case 414:
            return "URI Too Long";
        case 426:
            return "Upgrade Required";
        case 429:
            return "Too Many Requests";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return {};
    }
}

// --- client side ---

std::string generate_key() {
    // RFC 6455 §4.1 item 7: a nonce of 16 randomly selected bytes, base64-encoded.
    std::array<unsigned char, 16> nonce{};
    if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) return {};
    return base64(nonce.data(), nonce.size());
}

std::string client_request(std::string_view host, std::string_view target, std::string_view key,
                           std::span<const http_header> extra) {
    std::string out = "GET ";
    out += target;
    out += " HTTP/1.1\r\nHost: ";
    out += host;
    out +=
        "\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: ";
    out += key;
    out +=
        "\r\n"
        "Sec-WebSocket-Version: 13\r\n";
    append_fields(out, extra);
    out += "\r\n";
    return out;
}

std::error_code check_accept_response(std::string_view response_head, std::string_view key) {
    const auto bad = make_error_code(error::bad_http_request);
    http_request fields;  // reused only for its case-insensitive field lookups
    bool status_seen = false;
    std::string_view rest = response_head;
    while (!rest.empty()) {
        const auto nl = rest.find('\n');
        auto line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
        // RFC 9112 §2.2: CRLF or bare LF.
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!status_seen) {
            // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
            if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || !is_digit(line[5]) ||
                line[6] != '.' || !is_digit(line[7]) || line[8] != ' ' || !is_digit(line[9]) ||
                !is_digit(line[10]) || !is_digit(line[11]) || (line.size() > 12 && line[12] != ' '))
                return bad;
            // RFC 6455 §4.1 client requirement 1: anything but 101 fails the handshake.
            if (line.substr(9, 3) != "101") return bad;
            status_seen = true;
            continue;
        }
        if (line.empty()) break;  // RFC 9112 §2.1: the empty line ends the head
        const auto colon = line.find(':');
        // RFC 9112 §5.1 / §5.2: a name, no whitespace before the colon, no obs-fold.
        if (colon == std::string_view::npos || colon == 0 || line[0] == ' ' || line[0] == '\t' ||
            line[colon - 1] == ' ' || line[colon - 1] == '\t')
            return bad;
        auto value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
            value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
            value.remove_suffix(1);
        fields.headers.push_back(
            http_header{std::string(line.substr(0, colon)), std::string(value)});
    }
    if (!status_seen) return bad;
    // RFC 6455 §4.1 client requirement 2: |Upgrade| is "websocket" (case-insensitive).
    if (!fields.has_token("Upgrade", "websocket")) return make_error_code(error::no_upgrade);
    // RFC 6455 §4.1 client requirement 3: |Connection| holds "Upgrade" (case-insensitive).
    if (!fields.has_token("Connection", "upgrade"))
        return make_error_code(error::no_connection_upgrade);
    // RFC 6455 §4.1 client requirement 4: one |Sec-WebSocket-Accept| equal, byte for byte, to
    // base64(SHA-1(key + GUID)).
    const auto expected = compute_accept_key(key);
    if (expected.empty() || fields.header_count("Sec-WebSocket-Accept") != 1 ||
        *fields.header("Sec-WebSocket-Accept") != expected)
        return make_error_code(error::bad_sec_key);
    return {};
}

}  // namespace wscoro::protocol
