#include "wscoro/protocol/http_request.hpp"

#include "wscoro/error.hpp"

namespace wscoro::protocol {
namespace {

// RFC 9112 §2.2 asks servers to skip "at least one" empty line before the request line (old
// clients send a CRLF after a POST body). A small cap keeps a stream of empty lines from
// being accepted forever without ever reaching the size limit meant for real heads.
constexpr std::size_t max_leading_empty_lines = 4;

constexpr char to_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (to_lower(a[i]) != to_lower(b[i])) return false;
    return true;
}

constexpr bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

// RFC 5234 Appendix B.1: CTL = %x00-1F / %x7F.
constexpr bool is_ctl(unsigned char c) noexcept {
    return c < 0x20 || c == 0x7f;
}

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
constexpr bool is_hex(char c) noexcept {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

constexpr bool is_tchar(char c) noexcept {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '.':
        case '^':
        case '_':
        case '`':
        case '|':
        case '~':
            return true;
        default:
            return false;
    }
}

bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back()))
        s.remove_suffix(1);
    return s;
}

constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

}  // namespace

// --- http_request ---

std::optional<std::string_view> http_request::header(std::string_view name) const noexcept {
    for (const auto& h : headers)
        if (iequals(h.name, name)) return std::string_view(h.value);
    return std::nullopt;
}

std::size_t http_request::header_count(std::string_view name) const noexcept {
    std::size_t n = 0;
    for (const auto& h : headers)
        if (iequals(h.name, name)) ++n;
    return n;
}

bool http_request::has_token(std::string_view name, std::string_view token) const noexcept {
    for (const auto& h : headers) {
        if (!iequals(h.name, name)) continue;
        // RFC 9110 §5.6.1: a list may contain empty elements and OWS around commas, and a
        // field may be repeated; all of that is the same list.
        std::string_view rest = h.value;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            const auto element = trim_ows(rest.substr(0, comma));
            if (!element.empty() && iequals(element, token)) return true;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return false;
}

std::string_view http_request::path() const noexcept {
    return std::string_view(target).substr(0, target.find('?'));
}

std::string_view http_request::query_string() const noexcept {
    const auto q = target.find('?');
    if (q == std::string::npos) return {};
    return std::string_view(target).substr(q + 1);
}

// --- http_request_parser ---

void http_request_parser::reset() {
    state_ = state::request_line;
    line_.clear();
    head_bytes_ = 0;
    empty_lines_ = 0;
    request_ = http_request{};
    error_.clear();
    detail_.clear();
}

void http_request_parser::fail(std::error_code ec, std::string_view detail) {
    state_ = state::failed;
    error_ = ec;
    detail_.assign(detail);
    line_.clear();
}

std::size_t http_request_parser::feed(std::span<const std::byte> bytes) {
    if (state_ == state::done || state_ == state::failed) return 0;
    std::size_t used = 0;
    for (const std::byte b : bytes) {
        const char c = static_cast<char>(b);
        ++used;
        ++head_bytes_;
        const bool cr_pending = !line_.empty() && line_.back() == '\r';
        if (c == '\n') {
            // RFC 9112 §2.2: CRLF ends a line, and a bare LF may be accepted as well.
            if (cr_pending) line_.pop_back();
        } else if (cr_pending) {
            // RFC 9112 §2.2: a CR not followed by LF is invalid everywhere in the head.
            fail(error::bad_http_request, "bare CR in request head");
            return used;
        }
        if (state_ == state::request_line && c != '\n' && c != '\r' &&
            line_.size() + 1 > limits_.max_request_line) {
            // RFC 9112 §3: a request-target longer than the server accepts gets 414; fail
            // before buffering more of a line we will never accept.
            fail(error::request_line_too_long, "request line too long");
            return used;
        }
        if (head_bytes_ > limits_.max_header_bytes) {
            // RFC 6585 §5: 431 when the header fields are too large.
            fail(error::headers_too_large, "request head too large");
            return used;
        }
        if (state_ == state::request_line && c != '\n' && c != '\r' && c != ' ' && !is_tchar(c) &&
            line_.find(' ') == std::string::npos) {
            // RFC 9112 §3.1: the method is a token. Judge it as the bytes arrive, so binary
            // junk (or a Flash policy request when that is off) is answered at once rather
            // than held until a line end that may never come.
            fail(error::bad_http_request, "invalid character in method");
            return used;
        }
        if (c != '\n') {
            line_.push_back(c);
            continue;
        }
        if (!on_line(line_)) return used;
        line_.clear();
        if (state_ == state::done) return used;
    }
    return used;
}

bool http_request_parser::on_line(std::string_view line) {
    if (state_ == state::request_line) {
        if (line.empty()) {
            // RFC 9112 §2.2: empty lines before the request line are skipped.
            if (++empty_lines_ > max_leading_empty_lines) {
                fail(error::bad_http_request, "too many empty lines before the request line");
                return false;
            }
            return true;
        }
        // RFC 9112 §3: request-line = method SP request-target SP HTTP-version.
        const auto sp1 = line.find(' ');
        if (sp1 == std::string_view::npos) {
            fail(error::bad_http_request, "malformed request line");
            return false;
        }
        const auto method = line.substr(0, sp1);
        // RFC 9110 §9.1: method = token.
        if (!is_token(method)) {
            fail(error::bad_http_request, "invalid method");
            return false;
        }
        const auto sp2 = line.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos) {
            fail(error::bad_http_request, "malformed request line");
            return false;
        }
        const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        // RFC 9112 §3.2: the request-target is never empty and carries no whitespace or
        // control characters (RFC 3986 §2 has no place for them).
        if (target.empty()) {
            fail(error::bad_http_request, "empty request target");
            return false;
        }
        for (std::size_t i = 0; i < target.size(); ++i) {
            const char c = target[i];
            if (is_ctl(static_cast<unsigned char>(c))) {
                fail(error::bad_http_request, "control character in request target");
                return false;
            }
            // RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG; a lone '%' is malformed.
            if (c == '%' &&
                (i + 2 >= target.size() || !is_hex(target[i + 1]) || !is_hex(target[i + 2]))) {
                fail(error::bad_http_request, "malformed percent-encoding in request target");
                return false;
            }
        }
        const auto version = line.substr(sp2 + 1);
        // RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive.
        if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !is_digit(version[5]) ||
            version[6] != '.' || !is_digit(version[7])) {
            fail(error::bad_http_request, "invalid HTTP version");
            return false;
        }
        request_.method.assign(method);
        request_.target.assign(target);
        request_.version_major = version[5] - '0';
        request_.version_minor = version[7] - '0';
        state_ = state::headers;
        return true;
    }

    // RFC 9112 §2.1: the empty line ends the head.
    if (line.empty()) {
        state_ = state::done;
        return true;
    }
    // RFC 9112 §5.2: obs-fold (a line starting with SP/HTAB) is rejected with 400; this also
    // covers whitespace between the request line and the first field (RFC 9112 §2.2).
    if (is_ows(line.front())) {
        fail(error::bad_http_request, "obsolete line folding");
        return false;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
        fail(error::bad_http_request, "header field without a colon");
        return false;
    }
    const auto name = line.substr(0, colon);
    // RFC 9110 §5.1: field-name = token, so never empty.
    if (name.empty()) {
        fail(error::bad_http_request, "empty header field name");
        return false;
    }
    // RFC 9112 §5.1: whitespace between the field name and the colon must be answered with
    // 400 (it enables request smuggling through lenient proxies).
    if (is_ows(name.back())) {
        fail(error::bad_http_request, "whitespace before colon in header field");
        return false;
    }
    if (!is_token(name)) {
        fail(error::bad_http_request, "invalid header field name");
        return false;
    }
    const auto value = trim_ows(line.substr(colon + 1));
    for (char c : value) {
        // RFC 9110 §5.5: field-value holds VCHAR, SP, HTAB and obs-text (>= 0x80); NUL, CR,
        // LF and other CTLs are invalid.
        const auto u = static_cast<unsigned char>(c);
        if (is_ctl(u) && c != '\t') {
            fail(error::bad_http_request, "control character in header field value");
            return false;
        }
    }
    if (request_.headers.size() >= limits_.max_headers) {
        // RFC 6585 §5: too many fields is "Request Header Fields Too Large" too.
        fail(error::headers_too_large, "too many header fields");
        return false;
    }
    request_.headers.push_back(http_header{std::string(name), std::string(value)});
    return true;
}

}  // namespace wscoro::protocol
