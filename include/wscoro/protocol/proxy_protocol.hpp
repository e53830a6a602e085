#pragma once
// Incremental parser of the HAProxy PROXY protocol header, versions 1 (text) and 2 (binary),
// as specified in "The PROXY protocol, Versions 1 & 2" (haproxy doc/proxy-protocol.txt,
// revision 2020/03/05; section numbers below refer to it).
//
// Part of the sans-I/O layer: no I/O, never throws (except std::bad_alloc). The server runs it
// on a connection from a trusted proxy before the HTTP upgrade request: it reads exactly the
// header and leaves the bytes after it (the request) to the caller. A connection that does
// not start with a header is an error, never a pass-through: section 5 forbids guessing
// whether the header is present, since that would let any client spoof its address.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace wscoro::protocol {

/// The address family announced by the header (§2.1 TCP4/TCP6; §2.2 byte 14, high nibble).
enum class proxy_family : std::uint8_t {
    unspec,       ///< no usable address: v1 UNKNOWN, v2 LOCAL, AF_UNSPEC or UNSPEC transport
    ipv4,         ///< AF_INET
    ipv6,         ///< AF_INET6
    unix_socket,  ///< AF_UNIX (addresses in `proxy_info::source_path` / `destination_path`)
};

/// The transport announced by the header (§2.2 byte 14, low nibble; v1 is always TCP).
enum class proxy_transport : std::uint8_t {
    unspec,  ///< unknown or not given
    stream,  ///< SOCK_STREAM (TCP, UNIX stream)
    dgram,   ///< SOCK_DGRAM (UDP, UNIX datagram)
};

/// One IP endpoint of the proxied connection.
struct proxy_endpoint {
    /// The address in network byte order: an IPv4 address fills bytes 0-3 (the rest stay 0),
    /// an IPv6 address all 16.
    std::array<std::uint8_t, 16> address{};
    std::uint16_t port = 0;  ///< in host byte order
};

/// What a complete header says about the connection.
struct proxy_info {
    int version = 0;  ///< 1 (text header) or 2 (binary header); 0 until done

    /// True when the header carries no address to use and the server must keep the real
    /// peer's: v1 UNKNOWN (§2.1), v2 LOCAL (§2.2 command 0x0), v2 PROXY with AF_UNSPEC or an
    /// UNSPEC transport (§2.2: "the receiver should ignore address information"). Then
    /// `family` is unspec and the endpoints are zero.
    bool local = true;
    proxy_family family = proxy_family::unspec;
    proxy_transport transport = proxy_transport::unspec;

    /// The original client (ipv4 / ipv6 only).
    proxy_endpoint source;
    /// The address the client connected to, on the proxy (ipv4 / ipv6 only).
    proxy_endpoint destination;

    /// AF_UNIX socket paths (unix_socket only, §2.2: 108 bytes each on the wire). A path that
    /// starts with a non-NUL byte ends at its first NUL; an abstract one (leading NUL, Linux
    /// unix(7)) keeps its leading NUL and loses only the trailing NUL padding.
    std::string source_path;
    std::string destination_path;  ///< see source_path

    /// PP2_TYPE_AUTHORITY (§2.2.2): the host name the client asked for (TLS SNI), bytes as
    /// sent (the spec says UTF-8; not validated). Set from the first such TLV of at most
    /// `max_authority_size` bytes; longer ones are skipped, since no DNS name is that long.
    std::optional<std::string> authority;

    /// PP2_TYPE_SSL (§2.2.6) with the PP2_CLIENT_SSL bit: the client connected to the proxy
    /// over SSL/TLS. From the first PP2_TYPE_SSL TLV.
    bool ssl = false;
};

/// Parses one PROXY protocol header (v1 or v2, told apart by the first byte) fed in pieces of
/// any size; every split of the same bytes gives the same result.
///
/// Usage: call `feed` with each chunk of received bytes; it returns how many it used. When
/// `done()` becomes true, `info()` holds the result and any bytes after the consumed count
/// belong to the next layer (the HTTP request). Every failure is wscoro::error::bad_proxy_header
/// and is reported at the first byte that cannot be part of a valid header (the count
/// returned then includes that byte), as §2.1 recommends ("abort the connection as soon as
/// possible"); `error_detail()` says what was wrong.
///
/// Memory: v1 lines are held up to 107 bytes (§2.1). For v2 the 16-byte fixed part, the
/// address block (at most 216 bytes) and an authority of at most `max_authority_size` bytes
/// are kept; every other byte of the up to 65535-byte block is consumed as it arrives.
/// A PP2_TYPE_CRC32C checksum is not verified (§2.2.3 requires it only of receivers that
/// support it). Not thread-safe; reusable after reset().
class proxy_header_parser {
  public:
    /// The longest PP2_TYPE_AUTHORITY value kept (the DNS limit on a name, RFC 1035 §2.3.4).
    static constexpr std::size_t max_authority_size = 255;

    /// Consumes bytes up to the end of the header. Returns the number of bytes consumed
    /// (less than `bytes.size()` only once done or failed; 0 once done or failed).
    std::size_t feed(std::span<const std::byte> bytes);
    /// The same, for text (convenient for v1 headers and tests).
    std::size_t feed(std::string_view text) {
        return feed(std::as_bytes(std::span<const char>(text.data(), text.size())));
    }

    /// True once a complete, valid header has been consumed.
    bool done() const noexcept { return state_ == state::done; }
    /// True once the input was found not to be a valid header.
    bool failed() const noexcept { return state_ == state::failed; }
    /// wscoro::error::bad_proxy_header after a failure, else empty.
    std::error_code error() const noexcept { return error_; }
    /// A short human-readable reason for the failure (for logs), "" if none.
    std::string_view error_detail() const noexcept { return detail_; }
    /// The parsed header; meaningful once done().
    const proxy_info& info() const noexcept { return info_; }

    /// Forgets everything, ready for a new connection.
    void reset() noexcept;

  private:
    enum class state {
        start,         // nothing received yet
        v1_line,       // inside the v1 text line (its "PROXY " prefix included)
        v2_fixed,      // inside the 16-byte v2 fixed part (signature, ver/cmd, fam, len)
        v2_address,    // inside the v2 address block
        v2_tlv_head,   // inside the 3-byte type/length of a TLV
        v2_tlv_value,  // inside a TLV's value
        v2_skip,       // inside a v2 block whose content is ignored
        done,
        failed,
    };
    enum class v1_keyword { none, tcp4, tcp6, unknown };

    void step(std::uint8_t b);
    std::size_t consume_run(std::span<const std::byte> bytes);
    void step_v1(std::uint8_t b);
    void finish_v1_line();
    void step_v2_fixed(std::uint8_t b);
    void finish_v2_address();
    void finish_tlv_head();
    void finish_tlv_value();
    void next_v2_element();
    void fail(std::string_view detail);

    state state_ = state::start;
    std::error_code error_;
    std::string_view detail_;  // always a string literal
    proxy_info info_;

    // v1: the line so far, CRLF included (§2.1: at most 107 bytes).
    std::array<char, 107> line_{};
    std::size_t line_size_ = 0;
    v1_keyword keyword_ = v1_keyword::none;

    // v2: the fixed part, then the address block, then TLVs.
    std::array<std::uint8_t, 16> fixed_{};
    std::size_t fixed_size_ = 0;
    std::size_t block_left_ = 0;  // bytes of the block (after the fixed part) still to come
    std::array<std::uint8_t, 216> address_{};
    std::size_t address_size_ = 0;  // size of the address block for the family
    std::size_t address_got_ = 0;
    std::array<std::uint8_t, 3> tlv_head_{};
    std::size_t tlv_head_size_ = 0;
    std::uint8_t tlv_type_ = 0;
    std::size_t tlv_size_ = 0;  // value size of the current TLV
    std::size_t tlv_left_ = 0;  // value bytes of the current TLV still to come
    std::string tlv_value_;     // the stored part of the current TLV's value
    bool ssl_seen_ = false;     // a PP2_TYPE_SSL TLV was seen (the first one counts)
};

}  // namespace wscoro::protocol
