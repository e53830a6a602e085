#include "wscoro/protocol/proxy_protocol.hpp"

#include <algorithm>
#include <utility>

#include "wscoro/error.hpp"

// Section numbers refer to "The PROXY protocol, Versions 1 & 2" (haproxy
// doc/proxy-protocol.txt, 2020/03/05).

namespace wscoro::protocol {
namespace {

using namespace std::literals;

// §2.1: a v1 header starts with "PROXY" and exactly one space.
constexpr std::string_view v1_prefix = "PROXY ";
// §2.1: the longest line a receiver must support, CRLF included ("PROXY UNKNOWN" with two
// full IPv6 addresses and two ports); "if the CRLF sequence is not found in the first 107
// characters, the receiver should declare the line invalid".
constexpr std::size_t v1_max_line = 107;

// §2.2: the binary header's 12-byte signature.
constexpr std::array<std::uint8_t, 12> v2_signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
// §2.2: signature, version/command, family/transport and the 16-bit length.
constexpr std::size_t v2_fixed_size = 16;
constexpr std::uint8_t v2_version = 0x2;  // §2.2 byte 13, high nibble
constexpr std::uint8_t cmd_local = 0x0;   // §2.2 byte 13, low nibble
constexpr std::uint8_t cmd_proxy = 0x1;
constexpr std::uint8_t fam_unspec = 0x0;  // §2.2 byte 14, high nibble
constexpr std::uint8_t fam_inet = 0x1;
constexpr std::uint8_t fam_inet6 = 0x2;
constexpr std::uint8_t fam_unix = 0x3;
constexpr std::uint8_t proto_unspec = 0x0;  // §2.2 byte 14, low nibble
constexpr std::uint8_t proto_stream = 0x1;
constexpr std::uint8_t proto_dgram = 0x2;
// §2.2: address block sizes: 2*4 + 2*2, 2*16 + 2*2 and 2*108.
constexpr std::size_t inet_block = 12;
constexpr std::size_t inet6_block = 36;
constexpr std::size_t unix_block = 216;
constexpr std::size_t unix_path_size = 108;

// §2.2: TLV = type (1 byte) + big-endian length (2 bytes) + value.
constexpr std::size_t tlv_head_size = 3;
constexpr std::uint8_t pp2_type_authority = 0x02;  // §2.2.2
constexpr std::uint8_t pp2_type_ssl = 0x20;        // §2.2.6
constexpr std::uint8_t pp2_client_ssl = 0x01;      // §2.2.6 <client> bit
// §2.2.6: struct pp2_tlv_ssl starts with uint8_t client and uint32_t verify.
constexpr std::size_t ssl_fixed_size = 5;

constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// §2.1: "exactly 4 integers in the range [0..255] inclusive written in decimal representation
// separated by exactly one dot"; "heading zeroes are not permitted".
bool parse_ipv4(std::string_view s, std::uint8_t* out) noexcept {
    for (int i = 0; i < 4; ++i) {
        if (i > 0) {
            if (s.empty() || s.front() != '.') return false;
            s.remove_prefix(1);
        }
        std::size_t n = 0;
        unsigned value = 0;
        while (n < s.size() && n < 3 && is_digit(s[n])) {
            value = value * 10 + static_cast<unsigned>(s[n] - '0');
            ++n;
        }
        if (n == 0 || value > 255) return false;
        if (n > 1 && s[0] == '0') return false;  // a heading zero (octal confusion, §2.1)
        out[i] = static_cast<std::uint8_t>(value);
        s.remove_prefix(n);
    }
    return s.empty();
}

// Parses `part`, colon-separated groups of 1-4 hex digits, into `groups`; if `v4_tail`, the
// last group may be a dotted IPv4 address worth two groups. Returns the number of 16-bit
// groups, or -1 if `part` is malformed or holds more than `max` groups.
int parse_ipv6_groups(std::string_view part, bool v4_tail, std::uint16_t* groups,
                      int max) noexcept {
    int n = 0;
    if (part.empty()) return 0;
    for (;;) {
        const auto colon = part.find(':');
        const auto group = part.substr(0, colon);
        if (colon == std::string_view::npos && v4_tail &&
            group.find('.') != std::string_view::npos) {
            // RFC 4291 §2.2 form 3 (e.g. "::ffff:192.0.2.1"), which inet_ntop produces for
            // IPv4-mapped addresses: senders built on it emit this in TCP6 lines.
            std::uint8_t v4[4];
            if (n + 2 > max || !parse_ipv4(group, v4)) return -1;
            groups[n++] = static_cast<std::uint16_t>(v4[0] << 8 | v4[1]);
            groups[n++] = static_cast<std::uint16_t>(v4[2] << 8 | v4[3]);
            return n;
        }
        // §2.1: sets of (up to) 4 hexadecimal digits, upper or lower case, between colons.
        if (group.empty() || group.size() > 4 || n == max) return -1;
        unsigned value = 0;
        for (const char c : group) {
            const int h = hex_value(c);
            if (h < 0) return -1;
            value = value * 16 + static_cast<unsigned>(h);
        }
        groups[n++] = static_cast<std::uint16_t>(value);
        if (colon == std::string_view::npos) return n;
        part.remove_prefix(colon + 1);
    }
}

// §2.1: IPv6 text, "with the acceptance of one double colon sequence"; "the total number of
// decoded bits must exactly be 128". No zone index ("%eth0"): it is not an address.
bool parse_ipv6(std::string_view s, std::array<std::uint8_t, 16>& out) noexcept {
    std::uint16_t head[8] = {};
    std::uint16_t tail[8] = {};
    int head_count = 0;
    int tail_count = 0;
    const auto gap = s.find("::");
    if (gap == std::string_view::npos) {
        head_count = parse_ipv6_groups(s, true, head, 8);
        if (head_count != 8) return false;
    } else {
        // The "::" stands for at least one zero group, so at most 7 are written out; a
        // second "::" leaves an empty group in `tail` and is rejected there.
        head_count = parse_ipv6_groups(s.substr(0, gap), false, head, 7);
        tail_count = parse_ipv6_groups(s.substr(gap + 2), true, tail, 7);
        if (head_count < 0 || tail_count < 0 || head_count + tail_count > 7) return false;
    }
    out.fill(0);
    for (int i = 0; i < head_count; ++i) {
        out[static_cast<std::size_t>(2 * i)] = static_cast<std::uint8_t>(head[i] >> 8);
        out[static_cast<std::size_t>(2 * i + 1)] = static_cast<std::uint8_t>(head[i]);
    }
    for (int i = 0; i < tail_count; ++i) {
        const auto at = static_cast<std::size_t>(2 * (8 - tail_count + i));
        out[at] = static_cast<std::uint8_t>(tail[i] >> 8);
        out[at + 1] = static_cast<std::uint8_t>(tail[i]);
    }
    return true;
}

// §2.1: "a decimal integer in the range [0..65535] inclusive", "heading zeroes are not
// permitted" (nor is a sign: only digits).
bool parse_port(std::string_view s, std::uint16_t& out) noexcept {
    if (s.empty() || s.size() > 5) return false;
    if (s.size() > 1 && s[0] == '0') return false;
    unsigned value = 0;
    for (const char c : s) {
        if (!is_digit(c)) return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535) return false;
    out = static_cast<std::uint16_t>(value);
    return true;
}

std::uint16_t load_be16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

// §2.2: an AF_UNIX address is the 108-byte sun_path. A pathname ends at its first NUL (what
// follows is not part of it); an abstract name (leading NUL, Linux unix(7)) has no
// terminator, so only the trailing NUL padding is dropped.
std::string unix_path(const std::uint8_t* p) {
    std::size_t n = 0;
    if (p[0] != 0) {
        while (n < unix_path_size && p[n] != 0)
            ++n;
    } else {
        n = unix_path_size;
        while (n > 0 && p[n - 1] == 0)
            --n;
    }
    return std::string(reinterpret_cast<const char*>(p), n);
}

}  // namespace

std::size_t proxy_header_parser::feed(std::span<const std::byte> bytes) {
    std::size_t used = 0;
    while (used < bytes.size()) {
        switch (state_) {
            case state::done:
            case state::failed:
                return used;
            case state::v2_tlv_value:
            case state::v2_skip:
                // Bytes that are skipped or copied in bulk: up to 64 KiB of TLVs.
                used += consume_run(bytes.subspan(used));
                break;
            default:
                step(std::to_integer<std::uint8_t>(bytes[used]));
                ++used;
                break;
        }
    }
    return used;
}

void proxy_header_parser::reset() noexcept {
    *this = proxy_header_parser{};
}

void proxy_header_parser::fail(std::string_view detail) {
    state_ = state::failed;
    error_ = make_error_code(wscoro::error::bad_proxy_header);
    detail_ = detail;
}

void proxy_header_parser::step(std::uint8_t b) {
    switch (state_) {
        case state::start:
            // §2.2 (identifying the protocol version): "PROXY" means v1, the signature v2,
            // anything else "is not covered by this specification and the connection must
            // be dropped". The first byte already tells the three apart; §5 forbids falling
            // back to no header.
            if (b == static_cast<std::uint8_t>(v1_prefix[0])) {
                state_ = state::v1_line;
                step_v1(b);
            } else if (b == v2_signature[0]) {
                state_ = state::v2_fixed;
                step_v2_fixed(b);
            } else {
                fail("not a PROXY protocol header");
            }
            break;
        case state::v1_line:
            step_v1(b);
            break;
        case state::v2_fixed:
            step_v2_fixed(b);
            break;
        case state::v2_address:
            address_[address_got_++] = b;
            --block_left_;
            // §2.2: "the receiver must not start to parse an address before the whole
            // address block is received".
            if (address_got_ == address_size_) finish_v2_address();
            break;
        case state::v2_tlv_head:
            tlv_head_[tlv_head_size_++] = b;
            --block_left_;
            if (tlv_head_size_ == tlv_head_size) finish_tlv_head();
            break;
        default:
            break;  // feed() handles the other states without step()
    }
}

std::size_t proxy_header_parser::consume_run(std::span<const std::byte> bytes) {
    if (state_ == state::v2_skip) {
        const std::size_t n = std::min(bytes.size(), block_left_);
        block_left_ -= n;
        if (block_left_ == 0) state_ = state::done;
        return n;
    }
    // state::v2_tlv_value: keep the leading bytes the TLV needs, drop the rest unseen.
    const std::size_t n = std::min(bytes.size(), tlv_left_);
    std::size_t keep = 0;
    if (tlv_type_ == pp2_type_authority && !info_.authority && tlv_size_ <= max_authority_size)
        keep = tlv_size_;
    else if (tlv_type_ == pp2_type_ssl && !ssl_seen_)
        keep = 1;  // the <client> bit field (§2.2.6)
    if (tlv_value_.size() < keep) {
        const std::size_t k = std::min(n, keep - tlv_value_.size());
        tlv_value_.append(reinterpret_cast<const char*>(bytes.data()), k);
    }
    tlv_left_ -= n;
    block_left_ -= n;
    if (tlv_left_ == 0) finish_tlv_value();
    return n;
}

// --- version 1 (§2.1) ---

void proxy_header_parser::step_v1(std::uint8_t b) {
    const char c = static_cast<char>(b);
    if (line_size_ < v1_prefix.size()) {
        // §2.1: the string "PROXY" (case-sensitive, given in hex) and exactly one space.
        if (c != v1_prefix[line_size_]) return fail("bad v1 signature");
        line_[line_size_++] = c;
        return;
    }
    if (line_[line_size_ - 1] == '\r') {
        // §2.1: "the receiver must not tolerate a single CR or LF character to end the
        // line"; a CR anywhere else is taken as a broken line end, not as text.
        if (c != '\n') return fail("v1 CR not followed by LF");
        line_[line_size_++] = c;
        return finish_v1_line();
    }
    // §2.1: a lone LF does not end the line, and is no valid character of one either.
    if (c == '\n') return fail("v1 LF without CR");
    const std::size_t token = line_size_ - v1_prefix.size();  // position after "PROXY "
    if (c == '\r') {
        // Only "UNKNOWN" may end right after its keyword (§2.1: the rest may be omitted).
        if (keyword_ == v1_keyword::none) return fail("bad v1 protocol");
    } else {
        switch (keyword_) {
            case v1_keyword::none: {
                // §2.1: only "TCP4", "TCP6" and "UNKNOWN" are allowed; checked byte by byte
                // so that a wrong one fails at once.
                const std::string_view so_far(line_.data() + v1_prefix.size(), token);
                bool ok = false;
                for (const auto& [word, kw] : {std::pair{"TCP4 "sv, v1_keyword::tcp4},
                                               std::pair{"TCP6 "sv, v1_keyword::tcp6},
                                               std::pair{"UNKNOWN"sv, v1_keyword::unknown}}) {
                    if (token < word.size() && word.substr(0, token) == so_far &&
                        word[token] == c) {
                        ok = true;
                        if (token + 1 == word.size()) keyword_ = kw;
                    }
                }
                if (!ok) return fail("bad v1 protocol");
                break;
            }
            case v1_keyword::unknown:
                // §2.1: after "UNKNOWN" comes CRLF or a space; the receiver "must ignore
                // anything presented before the CRLF".
                if (token == "UNKNOWN"sv.size() && c != ' ') return fail("bad v1 protocol");
                break;
            case v1_keyword::tcp4:
                // §2.1: dotted decimal addresses and decimal ports, separated by spaces.
                if (!is_digit(c) && c != '.' && c != ' ') return fail("bad v1 character");
                break;
            case v1_keyword::tcp6:
                // §2.1: hex groups, colons (and an embedded dotted IPv4), decimal ports.
                if (hex_value(c) < 0 && c != ':' && c != '.' && c != ' ')
                    return fail("bad v1 character");
                break;
        }
    }
    line_[line_size_++] = c;
    // §2.1: the CRLF must lie within the first 107 characters: fail as soon as it cannot.
    const std::size_t still_needed = c == '\r' ? 1 : 2;
    if (line_size_ + still_needed > v1_max_line) return fail("v1 line longer than 107 bytes");
}

void proxy_header_parser::finish_v1_line() {
    // The line without "PROXY " and CRLF; the keyword was checked as it arrived.
    std::string_view rest(line_.data() + v1_prefix.size(), line_size_ - v1_prefix.size() - 2);
    info_ = proxy_info{};
    info_.version = 1;
    if (keyword_ == v1_keyword::unknown) {
        // §2.1: for UNKNOWN the receiver ignores the rest of the line and "SHOULD accept the
        // connection and use the real connection's parameters".
        state_ = state::done;
        return;
    }
    if (keyword_ == v1_keyword::none) return fail("bad v1 protocol");  // not reached
    rest.remove_prefix("TCP4 "sv.size());

    // §2.1: source address, destination address, source port, destination port, each
    // preceded by exactly one space: four non-empty fields, nothing after the last one.
    std::string_view field[4];
    for (int i = 0; i < 3; ++i) {
        const auto space = rest.find(' ');
        if (space == std::string_view::npos) return fail("v1 line lacks a field");
        field[i] = rest.substr(0, space);
        rest.remove_prefix(space + 1);
    }
    field[3] = rest;  // a further space makes it an invalid port

    // §2.1: "the advertised protocol family dictates what format to use" for both.
    if (keyword_ == v1_keyword::tcp4) {
        info_.family = proxy_family::ipv4;
        if (!parse_ipv4(field[0], info_.source.address.data()))
            return fail("bad v1 source address");
        if (!parse_ipv4(field[1], info_.destination.address.data()))
            return fail("bad v1 destination address");
    } else {
        info_.family = proxy_family::ipv6;
        if (!parse_ipv6(field[0], info_.source.address)) return fail("bad v1 source address");
        if (!parse_ipv6(field[1], info_.destination.address))
            return fail("bad v1 destination address");
    }
    if (!parse_port(field[2], info_.source.port)) return fail("bad v1 source port");
    if (!parse_port(field[3], info_.destination.port)) return fail("bad v1 destination port");
    info_.local = false;
    info_.transport = proxy_transport::stream;  // §2.1: TCP4 / TCP6
    state_ = state::done;
}

// --- version 2 (§2.2) ---

void proxy_header_parser::step_v2_fixed(std::uint8_t b) {
    const std::size_t i = fixed_size_;
    fixed_[fixed_size_++] = b;
    if (i < v2_signature.size()) {
        // §2.2: the constant 12-byte signature.
        if (b != v2_signature[i]) fail("bad v2 signature");
        return;
    }
    if (i == 12) {
        // §2.2 byte 13: the version "must always be sent as \x2 and the receiver must only
        // accept this value"; commands other than LOCAL and PROXY: "receivers must drop
        // connections presenting unexpected values here".
        if ((b >> 4) != v2_version) return fail("unsupported v2 version");
        if ((b & 0x0F) != cmd_local && (b & 0x0F) != cmd_proxy) return fail("unknown v2 command");
        return;
    }
    if (i == 13) {
        // §2.2 byte 14: other families and transports "must be rejected as invalid by
        // receivers". Not for LOCAL, whose protocol block "including the family" is ignored.
        const bool proxy = (fixed_[12] & 0x0F) == cmd_proxy;
        if (proxy && ((b >> 4) > fam_unix || (b & 0x0F) > proto_dgram))
            return fail("unknown v2 address family or transport");
        return;
    }
    if (i < v2_fixed_size - 1) return;

    // §2.2 bytes 15-16: the length of the rest of the header, big-endian ("the length of the
    // protocol header in bytes is always exactly 16 + this value").
    block_left_ = load_be16(&fixed_[14]);
    info_ = proxy_info{};
    info_.version = 2;
    const std::uint8_t command = fixed_[12] & 0x0F;
    const std::uint8_t family = fixed_[13] >> 4;
    const std::uint8_t transport = fixed_[13] & 0x0F;
    if (command == cmd_local || family == fam_unspec || transport == proto_unspec) {
        // §2.2: LOCAL: "use the real connection endpoints and discard the protocol block";
        // UNSPEC family or transport: "the receiver should ignore address information". The
        // block is skipped whole ("receivers MUST always consider this field to skip the
        // appropriate number of bytes"): without a family and a transport its layout, so
        // where TLVs would start, is not defined.
        state_ = block_left_ == 0 ? state::done : state::v2_skip;
        return;
    }
    address_size_ = family == fam_inet    ? inet_block
                    : family == fam_inet6 ? inet6_block
                                          : unix_block;
    // §2.2: the length covers the address block of the family (12, 36 or 216 bytes); a
    // shorter one cannot hold the addresses.
    if (block_left_ < address_size_) return fail("v2 length shorter than the address block");
    address_got_ = 0;
    state_ = state::v2_address;
}

void proxy_header_parser::finish_v2_address() {
    // §2.2: source address, destination address, source port, destination port, all in
    // network byte order (ports only for AF_INET / AF_INET6).
    const std::uint8_t family = fixed_[13] >> 4;
    info_.local = false;
    info_.transport =
        (fixed_[13] & 0x0F) == proto_stream ? proxy_transport::stream : proxy_transport::dgram;
    if (family == fam_inet) {
        info_.family = proxy_family::ipv4;
        std::copy_n(&address_[0], 4, info_.source.address.begin());
        std::copy_n(&address_[4], 4, info_.destination.address.begin());
        info_.source.port = load_be16(&address_[8]);
        info_.destination.port = load_be16(&address_[10]);
    } else if (family == fam_inet6) {
        info_.family = proxy_family::ipv6;
        std::copy_n(&address_[0], 16, info_.source.address.begin());
        std::copy_n(&address_[16], 16, info_.destination.address.begin());
        info_.source.port = load_be16(&address_[32]);
        info_.destination.port = load_be16(&address_[34]);
    } else {
        info_.family = proxy_family::unix_socket;
        info_.source_path = unix_path(&address_[0]);
        info_.destination_path = unix_path(&address_[unix_path_size]);
    }
    next_v2_element();
}

void proxy_header_parser::next_v2_element() {
    if (block_left_ == 0) {
        state_ = state::done;
        return;
    }
    // §2.2: bytes beyond the addresses are TLVs, each at least 3 bytes (type and length);
    // 1 or 2 bytes left cannot be one, and failing now is the earliest we know.
    if (block_left_ < tlv_head_size) return fail("v2 block ends inside a TLV header");
    tlv_head_size_ = 0;
    state_ = state::v2_tlv_head;
}

void proxy_header_parser::finish_tlv_head() {
    tlv_type_ = tlv_head_[0];
    tlv_size_ = load_be16(&tlv_head_[1]);
    tlv_left_ = tlv_size_;
    tlv_value_.clear();
    // §2.2: "following the length field is the number of bytes specified by the length"; a
    // value running past the header's own length is malformed.
    if (tlv_left_ > block_left_) return fail("v2 TLV longer than the header");
    // §2.2.6: a PP2_TYPE_SSL value starts with the 1-byte <client> and 4-byte <verify>.
    if (tlv_type_ == pp2_type_ssl && tlv_size_ < ssl_fixed_size)
        return fail("v2 PP2_TYPE_SSL TLV shorter than 5 bytes");
    if (tlv_left_ == 0)
        finish_tlv_value();
    else
        state_ = state::v2_tlv_value;
}

void proxy_header_parser::finish_tlv_value() {
    // §2.2: "a receiver may choose to skip over and ignore the TLVs it is not interested in";
    // only the first AUTHORITY (§2.2.2) and SSL (§2.2.6) TLVs are kept.
    if (tlv_type_ == pp2_type_authority && !info_.authority && tlv_size_ <= max_authority_size) {
        info_.authority = std::move(tlv_value_);
    } else if (tlv_type_ == pp2_type_ssl && !ssl_seen_) {
        ssl_seen_ = true;
        info_.ssl = (static_cast<std::uint8_t>(tlv_value_[0]) & pp2_client_ssl) != 0;
    }
    tlv_value_.clear();
    next_v2_element();
}

}  // namespace wscoro::protocol
