#pragma once
// Incremental HTTP/1.1 request-head parser (RFC 9112 §2-§5; RFC 9110 §5 for field syntax).
//
// Part of the sans-I/O layer: no I/O, never throws. It reads only the request head (request
// line + header fields + the empty line) and stops exactly after it, so bytes a client
// pipelines after the head (WebSocket frames, a hixie-76 key) are left to the caller.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace wscoro::protocol {

/// One header field as received: name in its original case, value with surrounding
/// whitespace removed (RFC 9110 §5.5).
struct http_header {
    std::string name;
    std::string value;
};

/// A parsed request head.
struct http_request {
    std::string method;  ///< e.g. "GET" (case-sensitive, RFC 9110 §9.1)
    std::string target;  ///< request-target as sent, e.g. "/chat?room=1"
    int version_major = 1;
    int version_minor = 1;
    std::vector<http_header> headers;  ///< in arrival order, repeats kept

    /// The value of the first field named `name` (ASCII case-insensitive), if any.
    std::optional<std::string_view> header(std::string_view name) const noexcept;
    /// How many fields are named `name` (ASCII case-insensitive).
    std::size_t header_count(std::string_view name) const noexcept;
    /// True if any field named `name` holds `token` in its comma-separated list, compared
    /// ASCII case-insensitively (RFC 9110 §5.6.1), e.g. has_token("Connection", "upgrade")
    /// for "Connection: keep-alive, Upgrade".
    bool has_token(std::string_view name, std::string_view token) const noexcept;
    /// The path part of the target (before '?'), not percent-decoded.
    std::string_view path() const noexcept;
    /// The query part of the target (after the first '?'), "" if none.
    std::string_view query_string() const noexcept;
};

/// Size limits of the request head. Exceeding one is an error answered with 414 or 431.
struct http_limits {
    std::size_t max_request_line = 8 * 1024;   ///< bytes in the request line (-> 414)
    std::size_t max_header_bytes = 64 * 1024;  ///< bytes in the whole head (-> 431)
    std::size_t max_headers = 128;             ///< number of header fields (-> 431)
};

/// Parses a request head fed in pieces of any size.
///
/// Usage: call `feed` with each chunk of received bytes; it returns how many bytes it used.
/// When `done()` becomes true, `request()` holds the result and any bytes after the
/// consumed count belong to the next protocol layer. On error, `error()` is set
/// (wscoro::error::bad_http_request, request_line_too_long or headers_too_large; map it to
/// a status with wscoro::http_status_for). Accepts CRLF and bare LF line ends; rejects
/// obsolete line folding, whitespace before the colon and control characters (RFC 9112 §5).
/// Up to 4 empty lines before the request line are skipped (RFC 9112 §2.2); they count
/// towards max_header_bytes. On failure the count returned includes the offending byte.
/// Not thread-safe; reusable after reset().
class http_request_parser {
  public:
    explicit http_request_parser(http_limits limits = {}) : limits_(limits) {}

    /// Consumes bytes up to and including the empty line that ends the head. Returns the
    /// number of bytes consumed (less than `bytes.size()` only once done or failed).
    std::size_t feed(std::span<const std::byte> bytes);
    std::size_t feed(std::string_view text) {
        return feed(std::as_bytes(std::span<const char>(text.data(), text.size())));
    }

    bool done() const noexcept { return state_ == state::done; }
    bool failed() const noexcept { return state_ == state::failed; }
    std::error_code error() const noexcept { return error_; }
    /// Short human-readable reason for the failure (for the HTTP error body).
    std::string_view error_detail() const noexcept { return detail_; }

    const http_request& request() const& noexcept { return request_; }
    http_request&& take_request() && noexcept { return std::move(request_); }

    void reset();

  private:
    enum class state { request_line, headers, done, failed };
    bool on_line(std::string_view line);
    void fail(std::error_code ec, std::string_view detail);

    http_limits limits_;
    state state_ = state::request_line;
    std::string line_;             // the current, incomplete line
    std::size_t head_bytes_ = 0;   // bytes consumed so far
    std::size_t empty_lines_ = 0;  // empty lines skipped before the request line
    http_request request_;
    std::error_code error_;
    std::string detail_;
};

}  // namespace wscoro::protocol
