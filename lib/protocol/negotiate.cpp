#include "wscoro/protocol/negotiate.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <limits>
#include <string>

#include "wscoro/error.hpp"
#include "wscoro/protocol/handshake.hpp"

namespace wscoro::protocol {
namespace {

constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

constexpr bool is_base64_char(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '+' || c == '/';
}

constexpr char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

// RFC 6455 §4.1 / §11.3.5: version = DIGIT | (NZDIGIT DIGIT) | ("1" DIGIT DIGIT) |
// ("2" DIGIT DIGIT), i.e. 0..255 without leading zeros. Anything else is 0 (no protocol),
// unlike Ruby's to_i in em-websocket, which reads "13abc" as 13.
int parse_version(std::string_view v) noexcept {
    if (v.empty() || v.size() > 3 || (v.size() > 1 && v[0] == '0')) return 0;
    int n = 0;
    for (char c : v) {
        if (!is_digit(c)) return 0;
        n = n * 10 + (c - '0');
    }
    return n <= 255 ? n : 0;
}

// RFC 6455 §4.2.1 item 5: base64 of 16 bytes is 22 significant chars plus "==" (RFC 4648 §4).
// The same rule as check_upgrade (handshake.cpp); hybi-04..07 define the key identically.
bool is_valid_sec_key(std::string_view key) noexcept {
    if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
    for (std::size_t i = 0; i < 22; ++i)
        if (!is_base64_char(key[i])) return false;
    std::array<unsigned char, 18> decoded{};
    // EVP_DecodeBlock counts the two padding chars as data: 18 means 16 real bytes.
    return EVP_DecodeBlock(decoded.data(), reinterpret_cast<const unsigned char*>(key.data()),
                           static_cast<int>(key.size())) == 18;
}

std::string base64(const unsigned char* data, std::size_t n) {
    std::string out(4 * ((n + 2) / 3) + 1, '\0');
    const int len =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
    out.resize(len > 0 ? static_cast<std::size_t>(len) : 0);
    return out;
}

bool has_field(std::span<const http_header> fields, std::string_view name) noexcept {
    for (const auto& f : fields)
        if (iequals(f.name, name)) return true;
    return false;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
}

negotiation reject(std::error_code ec, int version, const negotiate_options& options) {
    negotiation r;
    r.kind = negotiation::rejected;
    r.protocol_version = version;
    r.ec = ec;
    r.status = http_status_for(ec);
    if (r.status == 0) r.status = 400;
    if (r.status != 426) {
        // 400/405/505: the same bytes as the RFC 6455-only path (405 carries Allow: GET).
        r.response = reject_response(ec);
        return r;
    }
    // RFC 6455 §4.2.2 item 4 / §4.4: name the versions we would speak, newest first. Only
    // 13, 8 and 7 are ever listed (RFC 6455 §4.4's example); older clients never read it.
    // RFC 9110 §15.5.22: a 426 carries Upgrade.
    std::string list;
    for (int v : {13, 8, 7}) {
        if (!options.versions.contains(v)) continue;
        if (!list.empty()) list += ", ";
        list += std::to_string(v);
    }
    std::vector<http_header> fields = {{"Upgrade", "websocket"}};
    if (!list.empty()) fields.push_back({"Sec-WebSocket-Version", std::move(list)});
    r.response = error_response(426, ec.message() + "\n", fields);
    return r;
}

negotiation reject(error e, int version, const negotiate_options& options) {
    return reject(make_error_code(e), version, options);
}

// libcrypto failed (no random bytes, MD5 unavailable): our fault, 500 (RFC 9110 §15.6.1).
negotiation internal_failure(int version) {
    negotiation r;
    r.kind = negotiation::rejected;
    r.protocol_version = version;
    r.ec = std::make_error_code(std::errc::resource_unavailable_try_again);
    r.status = 500;
    r.response = error_response(500, "cannot compute the handshake answer\n");
    return r;
}

negotiation accept(int version, std::string response, std::size_t consumed) {
    negotiation r;
    r.kind = negotiation::accepted;
    r.protocol_version = version;
    r.status = 101;
    r.response = std::move(response);
    r.consumed = consumed;
    return r;
}

// ws[s]://<Host><request-target>, the hixie Location: the Host field as the client sent it
// (port included) and the whole target, query included (as em-websocket).
std::string location(const http_request& request, bool secure) {
    std::string out = secure ? "wss://" : "ws://";
    out += request.header("Host").value_or(std::string_view{});
    out += request.target;
    return out;
}

// hybi-04..08 and RFC 6455: Sec-WebSocket-Key -> Sec-WebSocket-Accept.
negotiation negotiate_hybi(const http_request& request, int version,
                           const negotiate_options& options) {
    // RFC 6455 §4.2.1 item 5 (hybi-04..17 alike): exactly one key, base64 of 16 bytes.
    if (request.header_count("Sec-WebSocket-Key") != 1)
        return reject(error::no_sec_key, version, options);
    const auto key = *request.header("Sec-WebSocket-Key");
    if (!is_valid_sec_key(key)) return reject(error::bad_sec_key, version, options);
    // compute_accept_key only fails if libcrypto does; never send an empty accept.
    if (compute_accept_key(key).empty()) return internal_failure(version);

    if (version != 4) return accept(version, accept_response(request, options.extra), 0);

    // hybi-04 alone: the server adds Sec-WebSocket-Nonce, base64 of 16 random bytes, which
    // keys the client's frame masking (dropped again in hybi-05).
    std::array<unsigned char, 16> raw{};
    if (options.hybi04_nonce) {
        for (std::size_t i = 0; i < raw.size(); ++i)
            raw[i] = static_cast<unsigned char>((*options.hybi04_nonce)[i]);
    } else if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
        return internal_failure(version);
    }
    std::string nonce = base64(raw.data(), raw.size());
    std::vector<http_header> fields;
    fields.reserve(options.extra.size() + 1);
    fields.push_back({"Sec-WebSocket-Nonce", nonce});
    fields.insert(fields.end(), options.extra.begin(), options.extra.end());
    auto r = accept(version, accept_response(request, fields), 0);
    r.nonce = std::move(nonce);
    return r;
}

// hixie-76 / hybi-00 and hybi-01..03: Key1 + Key2 + 8-byte key3 -> 16-byte MD5 answer.
negotiation negotiate_hixie76(const http_request& request, std::span<const std::byte> body,
                              int version, const negotiate_options& options) {
    // The resource name (origin-form, starting with '/') goes into Sec-WebSocket-Location.
    if (request.target.empty() || request.target.front() != '/')
        return reject(error::bad_http_request, version, options);
    // -76 §5.2 step 4: both keys are required (em-websocket misdetects a missing Key1 as
    // hixie-75); a repeated one is ambiguous.
    if (request.header_count("Sec-WebSocket-Key1") != 1 ||
        request.header_count("Sec-WebSocket-Key2") != 1)
        return reject(error::bad_hixie_key, version, options);
    const auto n1 = hixie76_key_number(*request.header("Sec-WebSocket-Key1"));
    const auto n2 = hixie76_key_number(*request.header("Sec-WebSocket-Key2"));
    if (!n1 || !n2) return reject(error::bad_hixie_key, version, options);
    // -76 §5.2 step 8: key3 is the 8 bytes after the head. Keys are checked first, so a bad
    // request fails at once instead of waiting for bytes.
    if (body.size() < 8) {
        negotiation r;
        r.kind = negotiation::need_more;
        r.protocol_version = version;
        return r;
    }
    const auto answer = hixie76_challenge(*n1, *n2, body.first<8>());
    if (!answer) return internal_failure(version);

    // -76 §5.2 steps 10-13; field order as em-websocket and pywebsocket send it (the -76
    // sample lists Origin first: a -76 client reads the fields in any order).
    std::string out =
        "HTTP/1.1 101 WebSocket Protocol Handshake\r\n"
        "Upgrade: WebSocket\r\n"
        "Connection: Upgrade\r\n";
    append_field(out, "Sec-WebSocket-Location", location(request, options.secure));
    append_field(out, "Sec-WebSocket-Origin", origin_of(request).value_or(std::string_view{}));
    // A -76 client that named a subprotocol fails unless the server echoes it exactly; -76
    // subprotocols are one opaque string, not a list.
    const auto protocol = request.header("Sec-WebSocket-Protocol");
    if (protocol && !protocol->empty() && !has_field(options.extra, "Sec-WebSocket-Protocol"))
        append_field(out, "Sec-WebSocket-Protocol", *protocol);
    for (const auto& f : options.extra)
        append_field(out, f.name, f.value);
    out += "\r\n";
    out.append(reinterpret_cast<const char*>(answer->data()), answer->size());
    return accept(version, std::move(out), 8);
}

// hixie-75: no key. A -75 client compares the answer's first 85 bytes (status line, Upgrade,
// Connection) byte for byte, so `extra` goes after the Origin/Location fields.
negotiation negotiate_hixie75(const http_request& request, const negotiate_options& options) {
    if (request.target.empty() || request.target.front() != '/')
        return reject(error::bad_http_request, version_hixie75, options);
    std::string out =
        "HTTP/1.1 101 Web Socket Protocol Handshake\r\n"
        "Upgrade: WebSocket\r\n"
        "Connection: Upgrade\r\n";
    append_field(out, "WebSocket-Origin", origin_of(request).value_or(std::string_view{}));
    append_field(out, "WebSocket-Location", location(request, options.secure));
    // -75 names the subprotocol field WebSocket-Protocol (em-websocket 0.5.2 wrongly echoes
    // it as Sec-WebSocket-Protocol).
    const auto protocol = request.header("WebSocket-Protocol");
    if (protocol && !protocol->empty() && !has_field(options.extra, "WebSocket-Protocol"))
        append_field(out, "WebSocket-Protocol", *protocol);
    for (const auto& f : options.extra)
        append_field(out, f.name, f.value);
    out += "\r\n";
    // Bytes after the head are already frames (em-websocket rejects them): consume none.
    return accept(version_hixie75, std::move(out), 0);
}

}  // namespace

int detect_version(const http_request& request) noexcept {
    // em-websocket handshake.rb order: Version, then Draft, then Key1 (we take Key2 too).
    for (std::string_view name : {"Sec-WebSocket-Version", "Sec-WebSocket-Draft"}) {
        const auto count = request.header_count(name);
        // RFC 6455 §11.3.5: Sec-WebSocket-Version must not appear more than once in a request.
        if (count > 1) return version_repeated;
        if (count == 1) return parse_version(*request.header(name));
    }
    if (request.header("Sec-WebSocket-Key1") || request.header("Sec-WebSocket-Key2"))
        return version_hixie76;
    // Only hybi-04+ clients send Sec-WebSocket-Key, and they all send a version too: without
    // one, no protocol fits (em-websocket answers with hixie-75, which such a client cannot
    // read). 0 gets the RFC 6455 §4.4 answer listing the versions we speak.
    if (request.header("Sec-WebSocket-Key")) return 0;
    return version_hixie75;
}

std::optional<std::string_view> origin_of(const http_request& request) noexcept {
    if (auto origin = request.header("Origin")) return origin;
    return request.header("Sec-WebSocket-Origin");
}

std::optional<std::uint32_t> hixie76_key_number(std::string_view key) noexcept {
    constexpr auto max = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t number = 0;
    std::size_t digits = 0;
    std::uint64_t spaces = 0;
    for (char c : key) {
        if (is_digit(c)) {
            // A number this large cannot divide into 32 bits by any real count of spaces.
            if (number > (max - 9) / 10) return std::nullopt;
            number = number * 10 + static_cast<std::uint64_t>(c - '0');
            ++digits;
        } else if (c == ' ') {
            ++spaces;
        }
    }
    // -76 §5.2 steps 4-7: digits read as base ten; no digit or no space is not a key, and
    // the number must be an integral multiple of the spaces.
    if (digits == 0 || spaces == 0 || number % spaces != 0) return std::nullopt;
    const std::uint64_t part = number / spaces;
    if (part > std::numeric_limits<std::uint32_t>::max()) return std::nullopt;
    return static_cast<std::uint32_t>(part);
}

std::optional<std::array<std::byte, 16>> hixie76_challenge(
    std::uint32_t number1, std::uint32_t number2, std::span<const std::byte, 8> key3) noexcept {
    std::array<unsigned char, 16> input{};
    for (int i = 0; i < 4; ++i) {
        input[i] = static_cast<unsigned char>(number1 >> (24 - 8 * i));
        input[4 + i] = static_cast<unsigned char>(number2 >> (24 - 8 * i));
    }
    for (std::size_t i = 0; i < 8; ++i)
        input[8 + i] = static_cast<unsigned char>(key3[i]);
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int digest_len = 0;
    if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_len, EVP_md5(), nullptr) !=
            1 ||
        digest_len != 16)
        return std::nullopt;
    std::array<std::byte, 16> out{};
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<std::byte>(digest[i]);
    return out;
}

negotiation negotiate(const http_request& request, std::span<const std::byte> body,
                      const negotiate_options& options) {
    const int version = detect_version(request);
    // The request-level rules of RFC 6455 §4.2.1 items 1-4, in check_upgrade's order; every
    // draft asks the same (hixie-75/76 clients send exactly these lines).
    if (request.method != "GET") return reject(error::bad_method, version, options);
    if (request.version_major < 1 || (request.version_major == 1 && request.version_minor < 1))
        return reject(error::bad_http_version, version, options);
    if (request.header_count("Host") != 1) return reject(error::no_host, version, options);
    // hixie-75/76 send "Upgrade: WebSocket"; hybi-04 onwards "websocket" (case-insensitive
    // since hybi-04), so compare case-insensitively for every version.
    if (!request.has_token("Upgrade", "websocket"))
        return reject(error::no_upgrade, version, options);
    if (!request.has_token("Connection", "upgrade"))
        return reject(error::no_connection_upgrade, version, options);

    // A repeated version field is a malformed request (em-websocket crashes on it): 400.
    // TODO(error.hpp): a dedicated error value; bad_http_request gives the right status.
    if (version == version_repeated) return reject(error::bad_http_request, version, options);
    // RFC 6455 §4.2.2 item 4: a version we do not speak (or may not) -> 426 with our list.
    if (!all_versions().contains(version) || !options.versions.contains(version))
        return reject(error::bad_sec_version, version, options);

    if (version == version_hixie75) return negotiate_hixie75(request, options);
    if (version == version_hixie76 || version <= 3)
        return negotiate_hixie76(request, body, version, options);
    return negotiate_hybi(request, version, options);
}

}  // namespace wscoro::protocol
