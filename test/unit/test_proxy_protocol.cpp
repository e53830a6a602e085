// Tests of the PROXY protocol header parser against "The PROXY protocol, Versions 1 & 2"
// (haproxy doc/proxy-protocol.txt, 2020/03/05): the v1 lines quoted in §2.1 and v2 headers
// assembled by hand from the layout of §2.2.

#include "wscoro/protocol/proxy_protocol.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>  // doctest prints std::error_code through it
#include <string>
#include <string_view>
#include <vector>

#include "split_feed.hpp"
#include "wscoro/error.hpp"

using namespace std::literals;
using wscoro::error;
using wscoro::protocol::proxy_family;
using wscoro::protocol::proxy_header_parser;
using wscoro::protocol::proxy_info;
using wscoro::protocol::proxy_transport;

namespace {

using address = std::array<std::uint8_t, 16>;

// Everything observable about one parse, so that different ways of feeding the same bytes
// can be compared.
struct outcome : wscoro_test::parse_status {
    proxy_info info;
};

// Feeds `input` in pieces ending at each offset of `cuts` (ascending) and then the rest.
outcome feed_pieces(std::string_view input, const std::vector<std::size_t>& cuts) {
    proxy_header_parser parser;
    outcome out;
    wscoro_test::feed_pieces_to(parser, out, input, cuts, "PROXY UNKNOWN\r\n"sv);
    out.info = parser.info();
    return out;
}

void check_same(const outcome& a, const outcome& b) {
    wscoro_test::check_same_status(a, b);
    CHECK(a.info.version == b.info.version);
    CHECK(a.info.local == b.info.local);
    CHECK(a.info.family == b.info.family);
    CHECK(a.info.transport == b.info.transport);
    CHECK(a.info.source.address == b.info.source.address);
    CHECK(a.info.source.port == b.info.source.port);
    CHECK(a.info.destination.address == b.info.destination.address);
    CHECK(a.info.destination.port == b.info.destination.port);
    CHECK(a.info.source_path == b.info.source_path);
    CHECK(a.info.destination_path == b.info.destination_path);
    CHECK(a.info.authority == b.info.authority);
    CHECK(a.info.ssl == b.info.ssl);
}

// Parses `input` whole, split in two at every byte boundary, and byte by byte; every way must
// give the same outcome, which is returned. Long inputs are split at a stride only, to keep
// the quadratic cost bounded.
outcome parse(std::string_view input) {
    const std::size_t stride = input.size() > 4096 ? 127 : 1;
    return wscoro_test::check_every_split(
        input.size(), stride,
        [&](const std::vector<std::size_t>& cuts) { return feed_pieces(input, cuts); }, check_same);
}

// What a client pipelines after the header: it must be left unconsumed.
constexpr std::string_view http_request = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";

// Parses a complete, valid `header` alone and followed by an HTTP request; both must end
// exactly after the header. Every proper prefix must be incomplete (neither done nor failed).
proxy_info parse_ok(std::string_view header) {
    const auto alone = parse(header);
    CHECK(alone.done);
    CHECK_FALSE(alone.failed);
    CHECK_FALSE(alone.ec);
    CHECK(alone.detail.empty());
    CHECK(alone.consumed == header.size());

    const auto pipelined = parse(std::string(header) + std::string(http_request));
    CHECK(pipelined.done);
    CHECK(pipelined.consumed == header.size());
    check_same(alone, pipelined);

    const std::size_t stride = header.size() > 4096 ? 127 : 1;
    for (std::size_t n = 0; n < header.size(); n += stride) {
        proxy_header_parser p;
        CHECK(p.feed(header.substr(0, n)) == n);
        if (p.done() || p.failed()) {
            FAIL_CHECK("a prefix of ", n, " bytes already finished");
            break;
        }
    }
    return alone.info;
}

// `input` must fail at its byte number `at` (1-based): the count consumed includes the
// offending byte and nothing after it.
void check_fails(std::string_view input, std::size_t at) {
    INFO("input: ", std::string(input));
    const auto o = parse(std::string(input) + std::string(http_request));
    CHECK(o.failed);
    CHECK_FALSE(o.done);
    CHECK(o.ec == error::bad_proxy_header);
    CHECK_FALSE(o.detail.empty());
    CHECK(o.consumed == at);
}

// A v1 line that must fail only once its CRLF has arrived (its characters are all allowed).
void check_fails_at_end(std::string_view line) {
    check_fails(line, line.size());
}

// `input` is a valid start of a header that is not complete yet.
void check_incomplete(std::string_view input) {
    INFO("input: ", std::string(input));
    const auto o = parse(input);
    CHECK_FALSE(o.done);
    CHECK_FALSE(o.failed);
    CHECK_FALSE(o.ec);
    CHECK(o.consumed == input.size());
}

std::string bytes(std::initializer_list<int> list) {
    std::string s;
    for (const int b : list)
        s += static_cast<char>(b);
    return s;
}

// §2.2: the 12-byte signature.
const std::string v2_sig =
    bytes({0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A});

// §2.2: signature, version/command byte, family/transport byte, big-endian length `len`,
// then `body` (which need not be `len` bytes long, for malformed headers).
std::string v2_raw(int ver_cmd, int fam, std::size_t len, std::string_view body) {
    return v2_sig +
           bytes({ver_cmd, fam, static_cast<int>(len >> 8), static_cast<int>(len & 0xFF)}) +
           std::string(body);
}

// The same with the length of `body`.
std::string v2(int ver_cmd, int fam, std::string_view body) {
    return v2_raw(ver_cmd, fam, body.size(), body);
}

// §2.2: one TLV: type, big-endian length, value.
std::string tlv(int type, std::string_view value) {
    return bytes(
               {type, static_cast<int>(value.size() >> 8), static_cast<int>(value.size() & 0xFF)}) +
           std::string(value);
}

// An AF_INET address block (§2.2): 192.0.2.1:56294 -> 198.51.100.7:443.
const std::string inet_block = bytes({192, 0, 2, 1, 198, 51, 100, 7, 0xDB, 0xE6, 0x01, 0xBB});
const address inet_src = {192, 0, 2, 1};
const address inet_dst = {198, 51, 100, 7};

void check_inet_block(const proxy_info& info) {
    CHECK(info.version == 2);
    CHECK_FALSE(info.local);
    CHECK(info.family == proxy_family::ipv4);
    CHECK(info.source.address == inet_src);
    CHECK(info.source.port == 56294);
    CHECK(info.destination.address == inet_dst);
    CHECK(info.destination.port == 443);
}

// A v1 TCP4 line with the given fields.
std::string tcp4(std::string_view src, std::string_view dst, std::string_view sport,
                 std::string_view dport) {
    return "PROXY TCP4 " + std::string(src) + " " + std::string(dst) + " " + std::string(sport) +
           " " + std::string(dport) + "\r\n";
}

std::string tcp6(std::string_view src, std::string_view dst, std::string_view sport = "1",
                 std::string_view dport = "2") {
    return "PROXY TCP6 " + std::string(src) + " " + std::string(dst) + " " + std::string(sport) +
           " " + std::string(dport) + "\r\n";
}

void check_local(const proxy_info& info, int version) {
    CHECK(info.version == version);
    CHECK(info.local);
    CHECK(info.family == proxy_family::unspec);
    CHECK(info.source.address == address{});
    CHECK(info.destination.address == address{});
    CHECK(info.source.port == 0);
    CHECK(info.destination.port == 0);
}

}  // namespace

TEST_SUITE("proxy_protocol") {
    // --- version 1 (§2.1) ---

    TEST_CASE("v1: the example of section 2.1, followed by its HTTP request") {
        constexpr auto input =
            "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
            "GET / HTTP/1.1\r\n"
            "Host: 192.168.0.11\r\n"
            "\r\n"sv;
        const auto o = parse(input);
        CHECK(o.done);
        CHECK_FALSE(o.ec);
        CHECK(o.consumed == 47);  // the PROXY line with its CRLF, counted by hand
        CHECK(o.info.version == 1);
        CHECK_FALSE(o.info.local);
        CHECK(o.info.family == proxy_family::ipv4);
        CHECK(o.info.transport == proxy_transport::stream);
        CHECK(o.info.source.address == address{192, 168, 0, 1});
        CHECK(o.info.destination.address == address{192, 168, 0, 11});
        CHECK(o.info.source.port == 56324);
        CHECK(o.info.destination.port == 443);
        CHECK_FALSE(o.info.authority);
        CHECK_FALSE(o.info.ssl);
        parse_ok(input.substr(0, 47));
    }

    TEST_CASE("v1: the longest lines of section 2.1") {
        const auto v4 = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"sv;
        REQUIRE(v4.size() == 56);  // as §2.1 counts it
        auto info = parse_ok(v4);
        CHECK(info.family == proxy_family::ipv4);
        CHECK(info.source.address == address{255, 255, 255, 255});
        CHECK(info.destination.address == address{255, 255, 255, 255});
        CHECK(info.source.port == 65535);
        CHECK(info.destination.port == 65535);

        const auto ffff = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"s;
        const auto v6 = "PROXY TCP6 " + ffff + " " + ffff + " 65535 65535\r\n";
        REQUIRE(v6.size() == 104);
        info = parse_ok(v6);
        address all_ones;
        all_ones.fill(0xFF);
        CHECK(info.family == proxy_family::ipv6);
        CHECK(info.source.address == all_ones);
        CHECK(info.destination.address == all_ones);
        CHECK(info.destination.port == 65535);

        const auto unknown = "PROXY UNKNOWN\r\n"sv;
        REQUIRE(unknown.size() == 15);
        check_local(parse_ok(unknown), 1);

        const auto worst = "PROXY UNKNOWN " + ffff + " " + ffff + " 65535 65535\r\n";
        REQUIRE(worst.size() == 107);
        check_local(parse_ok(worst), 1);
    }

    TEST_CASE("v1: smallest values") {
        const auto info = parse_ok(tcp4("0.0.0.0", "10.0.0.255", "0", "1"));
        CHECK(info.source.address == address{});
        CHECK(info.destination.address == address{10, 0, 0, 255});
        CHECK(info.source.port == 0);
        CHECK(info.destination.port == 1);
    }

    TEST_CASE("v1: IPv6 text forms") {
        auto info = parse_ok(tcp6("2001:db8::1", "2001:DB8:0:0:0:0:0:2", "80", "8080"));
        CHECK(info.family == proxy_family::ipv6);
        CHECK(info.transport == proxy_transport::stream);
        CHECK(info.source.address ==
              address{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01});
        CHECK(info.destination.address ==
              address{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02});
        CHECK(info.source.port == 80);
        CHECK(info.destination.port == 8080);

        // "::" alone, and an IPv4-mapped address in dotted form (RFC 4291 §2.2 form 3).
        info = parse_ok(tcp6("::", "::ffff:192.0.2.1"));
        CHECK(info.source.address == address{});
        CHECK(info.destination.address ==
              address{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1});

        // "::" for one group at either end, leading zeros inside a group, mixed case.
        info = parse_ok(tcp6("1:2:3:4:5:6:7::", "::0a:B:c:D:e:F:00ff"));
        CHECK(info.source.address == address{0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0});
        CHECK(info.destination.address ==
              address{0, 0, 0, 0x0a, 0, 0x0b, 0, 0x0c, 0, 0x0d, 0, 0x0e, 0, 0x0f, 0, 0xff});

        // Eight groups ending in dotted IPv4, and "::" in the middle.
        info = parse_ok(tcp6("1:2:3:4:5:6:1.2.3.4", "fe80::a:b"));
        CHECK(info.source.address == address{0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4});
        CHECK(info.destination.address ==
              address{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0x0b});
    }

    TEST_CASE("v1: UNKNOWN ignores the rest of its line") {
        check_local(parse_ok("PROXY UNKNOWN 192.0.2.1 whatever\r\n"), 1);
        check_local(parse_ok("PROXY UNKNOWN \r\n"), 1);
        // "the receiver must ignore anything presented before the CRLF"
        check_local(parse_ok("PROXY UNKNOWN " + bytes({0x00, 0xff, 0x7f}) + "\r\n"), 1);
    }

    TEST_CASE("v1: signature bytes and unknown protocols fail at the first wrong byte") {
        const auto good = tcp4("1.2.3.4", "5.6.7.8", "1", "2");
        for (std::size_t i = 0; i < 6; ++i) {
            INFO("byte ", i);
            auto bad = good;
            bad[i] = static_cast<char>(bad[i] ^ 0x20);  // "proxy", "pROXY", ... "PROXY\0"
            check_fails(bad, i + 1);
        }
        check_fails("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", 7);
        check_fails("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 7);
        check_fails("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", 8);  // 'U' could start UNKNOWN
        check_fails("PROXY XCP4 1.2.3.4 5.6.7.8 1 2\r\n", 7);
        check_fails("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 10);
        check_fails("PROXY TCP4\r\n", 11);  // "TCP4" needs its fields
        check_fails("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", 11);
        check_fails("PROXY \r\n", 7);
        check_fails("PROXY UNKNOW\r\n", 13);
        check_fails("PROXY UNKNOWNX\r\n", 14);
        check_fails("PROXY\r\n", 6);
    }

    TEST_CASE("v1: line ends") {
        // A bare LF, a bare CR, and CR CR LF: §2.1 wants exactly CRLF.
        const auto lf = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"sv;
        check_fails(lf, lf.size());
        const auto cr = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"sv;
        check_fails(cr, cr.size());
        const auto crcr = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"sv;
        check_fails(crcr, crcr.size() - 1);
        check_fails("PROXY UNKNOWN x\ry\r\n", 17);
        check_fails("PROXY UNKNOWN x\ny\r\n", 16);
        check_fails("PROXY UNKNOWN\n", 14);
        // No CRLF yet: wait for more.
        check_incomplete("PROXY TCP4 1.2.3.4 5.6.7.8 1 2");
        check_incomplete("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r");
        check_incomplete("PROXY UNKNOWN");
    }

    TEST_CASE("v1: the line must end within 107 bytes") {
        // 107 bytes with CRLF is the limit (§2.1); at 108 the 106th byte should have been CR.
        const auto fits = "PROXY UNKNOWN " + std::string(91, 'x') + "\r\n";
        REQUIRE(fits.size() == 107);
        check_local(parse_ok(fits), 1);
        const auto too_long = "PROXY UNKNOWN " + std::string(92, 'x') + "\r\n";
        REQUIRE(too_long.size() == 108);
        check_fails(too_long, 106);
        check_fails("PROXY UNKNOWN " + std::string(300, 'x'), 106);
        // The same for a TCP6 line made only of allowed characters.
        const auto zeros = "0000:0000:0000:0000:0000:0000:0000:0000"s;
        const auto tcp6_long = "PROXY TCP6 " + zeros + " " + zeros + " " + zeros + "\r\n";
        check_fails(tcp6_long, 106);
    }

    TEST_CASE("v1: field separators") {
        check_fails_at_end("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n");
        check_fails_at_end("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n");
        check_fails_at_end("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n");
        check_fails_at_end("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n");
        check_fails_at_end("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n");
        check_fails_at_end("PROXY TCP4 1.2.3.4\r\n");
        check_fails_at_end("PROXY TCP4 \r\n");
        check_fails_at_end("PROXY TCP6 ::1 ::2 1 2 \r\n");
        check_fails_at_end("PROXY TCP6 ::1 ::2 1\r\n");
    }

    TEST_CASE("v1: bad IPv4 addresses") {
        for (const auto bad : {"256.0.0.1"sv, "1.2.3.256"sv, "01.2.3.4"sv, "1.2.3.04"sv,
                               "1.2.3.00"sv, "1.2.3"sv, "1.2.3.4.5"sv, "1..2.3"sv, "1.2.3."sv,
                               ".1.2.3"sv, "1.2.3.1000"sv, "1234.1.1.1"sv, "."sv, "1"sv}) {
            INFO("address: ", std::string(bad));
            check_fails_at_end(tcp4(bad, "5.6.7.8", "1", "2"));
            check_fails_at_end(tcp4("5.6.7.8", bad, "1", "2"));
        }
        // An IPv6 or textual address in a TCP4 line fails at its first impossible character.
        check_fails(tcp4("::1", "5.6.7.8", "1", "2"), 12);
        check_fails(tcp4("1.2.3.4", "a.b.c.d", "1", "2"), 20);
    }

    TEST_CASE("v1: bad IPv6 addresses") {
        for (const auto bad : {"1.2.3.4"sv,
                               "1:2:3:4:5:6:7"sv,
                               "1:2:3:4:5:6:7:8:9"sv,
                               "1::2::3"sv,
                               ":::"sv,
                               "::::"sv,
                               "12345::"sv,
                               "1:::2"sv,
                               ":1::"sv,
                               "::1:"sv,
                               ":1:2:3:4:5:6:7"sv,
                               "1:2:3:4:5:6:7:"sv,
                               "1.2.3.4::"sv,
                               "::1.2.3"sv,
                               "::1.2.3.4:5"sv,
                               "1:2:3:4:5:6:7:1.2.3.4"sv,
                               "1:2:3:4:5:6::1.2.3.4"sv,
                               "::256.1.1.1"sv,
                               "::01.1.1.1"sv,
                               "1:2:3:4:5:6:7:8::"sv,
                               "::1:2:3:4:5:6:7:8"sv,
                               ":"sv,
                               "."sv}) {
            INFO("address: ", std::string(bad));
            check_fails_at_end(tcp6(bad, "::2"));
            check_fails_at_end(tcp6("::2", bad));
        }
        // Characters no IPv6 address has fail at once: a non-hex letter, a zone index.
        check_fails(tcp6("g::", "::1"), 12);
        check_fails(tcp6("fe80::1%eth0", "::1"), 19);
    }

    TEST_CASE("v1: ports") {
        for (const auto bad : {"65536"sv, "99999"sv, "123456"sv, "080"sv, "00"sv, "0000001"sv}) {
            INFO("port: ", std::string(bad));
            check_fails_at_end(tcp4("1.2.3.4", "5.6.7.8", bad, "2"));
            check_fails_at_end(tcp4("1.2.3.4", "5.6.7.8", "2", bad));
            check_fails_at_end(tcp6("::1", "::2", bad, "2"));
        }
        // A sign or a hex digit is no valid character of a TCP4 port.
        const auto plus = tcp4("1.2.3.4", "5.6.7.8", "+80", "2");
        check_fails(plus, plus.find('+') + 1);
        const auto minus = tcp4("1.2.3.4", "5.6.7.8", "1", "-1");
        check_fails(minus, minus.find('-') + 1);
        const auto hex = tcp4("1.2.3.4", "5.6.7.8", "0x50", "2");
        check_fails(hex, hex.find('x') + 1);
        // In a TCP6 line hex digits are allowed characters: "0x50" still fails at its 'x',
        // but "ab" only at the end of the line.
        const auto hex6 = tcp6("::1", "::2", "0x50", "2");
        check_fails(hex6, hex6.find('x') + 1);
        check_fails_at_end(tcp6("::1", "::2", "ab", "2"));
    }

    TEST_CASE("neither signature fails at the first byte") {
        check_fails("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1);
        check_fails(bytes({0x16, 0x03, 0x01, 0x02, 0x00}), 1);  // a TLS ClientHello
        check_fails(bytes({0x00}), 1);
        check_fails("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 1);
        // An HTTP request after a stray CRLF fails where it leaves the v2 signature.
        check_fails("\r\nGET / HTTP/1.1\r\n\r\n", 3);
        check_incomplete("");
    }

    // --- version 2 (§2.2) ---

    TEST_CASE("v2: TCP over IPv4, byte for byte") {
        const auto header = bytes({0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  // signature
                                   0x21,                                // version 2, PROXY
                                   0x11,                                // AF_INET, STREAM
                                   0x00, 0x0C,                          // 12 bytes follow
                                   192,  0,    2,    1,                 // source address
                                   198,  51,   100,  7,                 // destination address
                                   0xDB, 0xE6,                          // source port 56294
                                   0x01, 0xBB});                        // destination port 443
        REQUIRE(header.size() == 28);
        const auto info = parse_ok(header);
        check_inet_block(info);
        CHECK(info.transport == proxy_transport::stream);
        CHECK_FALSE(info.authority);
        CHECK_FALSE(info.ssl);
        CHECK(info.source_path.empty());
    }

    TEST_CASE("v2: TCP and UDP over IPv6, UDP over IPv4") {
        const auto src = bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01});
        const auto dst =
            bytes({0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55});
        const auto ports = bytes({0x00, 0x50, 0xFF, 0xFF});
        for (const int fam : {0x21, 0x22}) {
            INFO("family byte ", fam);
            const auto header = v2_raw(0x21, fam, 36, src + dst + ports);
            REQUIRE(header.size() == 16 + 36);
            const auto info = parse_ok(header);
            CHECK(info.version == 2);
            CHECK_FALSE(info.local);
            CHECK(info.family == proxy_family::ipv6);
            CHECK(info.transport ==
                  (fam == 0x21 ? proxy_transport::stream : proxy_transport::dgram));
            CHECK(info.source.address ==
                  address{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01});
            CHECK(info.destination.address == address{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x11,
                                                      0x22, 0xff, 0xfe, 0x33, 0x44, 0x55});
            CHECK(info.source.port == 80);
            CHECK(info.destination.port == 65535);
        }
        const auto udp4 = parse_ok(v2_raw(0x21, 0x12, 12, inet_block));
        check_inet_block(udp4);
        CHECK(udp4.transport == proxy_transport::dgram);
    }

    TEST_CASE("v2: UNIX stream and datagram") {
        // 108-byte sun_path each: a pathname (with bytes after its NUL) and an abstract name.
        auto src = "/run/haproxy.sock"s + bytes({0}) + "junk";
        src.resize(108, '\0');
        auto dst = bytes({0}) + "wscoro";
        dst.resize(108, '\0');
        for (const int fam : {0x31, 0x32}) {
            INFO("family byte ", fam);
            const auto info = parse_ok(v2_raw(0x21, fam, 216, src + dst));
            CHECK_FALSE(info.local);
            CHECK(info.family == proxy_family::unix_socket);
            CHECK(info.transport ==
                  (fam == 0x31 ? proxy_transport::stream : proxy_transport::dgram));
            CHECK(info.source_path == "/run/haproxy.sock");
            CHECK(info.destination_path == "\0wscoro"sv);
            CHECK(info.source.address == address{});
        }
        // A full 108-byte path without terminator.
        const std::string full(108, 'p');
        const auto info = parse_ok(v2(0x21, 0x31, full + full));
        CHECK(info.source_path == full);
    }

    TEST_CASE("v2: LOCAL keeps the real peer and skips whatever block it has") {
        check_local(parse_ok(v2_raw(0x20, 0x00, 0, "")), 2);
        // A health check may still describe its addresses; they are ignored.
        check_local(parse_ok(v2(0x20, 0x11, inet_block)), 2);
        // "discard the protocol block including the family which is ignored"
        check_local(parse_ok(v2(0x20, 0xFF, "abcde")), 2);
        check_local(parse_ok(v2(0x20, 0x00, inet_block + tlv(0x02, "ignored.example"))), 2);
        const auto info = parse_ok(v2(0x20, 0x11, inet_block + tlv(0x02, "ignored.example")));
        CHECK_FALSE(info.authority);
    }

    TEST_CASE("v2: PROXY with an UNSPEC family or transport ignores the addresses") {
        check_local(parse_ok(v2_raw(0x21, 0x00, 0, "")), 2);
        check_local(parse_ok(v2(0x21, 0x00, "xyz")), 2);
        check_local(parse_ok(v2(0x21, 0x01, "")), 2);
        check_local(parse_ok(v2(0x21, 0x10, inet_block)), 2);
        check_local(parse_ok(v2(0x21, 0x30, "")), 2);
    }

    TEST_CASE("v2: signature bytes fail at the first wrong byte") {
        const auto good = v2(0x21, 0x11, inet_block);
        for (std::size_t i = 0; i < 12; ++i) {
            INFO("byte ", i);
            auto bad = good;
            bad[i] = static_cast<char>(bad[i] ^ 0x20);
            check_fails(bad, i + 1);
            bad[i] = static_cast<char>(good[i] ^ 0x01);
            check_fails(bad, i + 1);
        }
        check_fails(v2_sig.substr(0, 5) + "X", 6);
        check_incomplete(v2_sig);
    }

    TEST_CASE("v2: version and command") {
        // §2.2: the version must be 2; commands other than 0 and 1 must be dropped.
        for (const int ver_cmd : {0x01, 0x11, 0x31, 0xF1, 0x10, 0x30, 0x22, 0x23, 0x2F, 0x12}) {
            INFO("byte 13 = ", ver_cmd);
            check_fails(v2(ver_cmd, 0x11, inet_block), 13);
        }
    }

    TEST_CASE("v2: address family and transport") {
        // §2.2: families above AF_UNIX and transports above DGRAM must be rejected.
        for (const int fam : {0x41, 0x51, 0xF1, 0x13, 0x1F, 0x03, 0x43, 0xFF}) {
            INFO("byte 14 = ", fam);
            check_fails(v2(0x21, fam, inet_block), 14);
        }
    }

    TEST_CASE("v2: length shorter than the family's address block") {
        check_fails(v2_raw(0x21, 0x11, 11, inet_block), 16);
        check_fails(v2_raw(0x21, 0x12, 0, ""), 16);
        check_fails(v2_raw(0x21, 0x21, 35, std::string(36, '\0')), 16);
        check_fails(v2_raw(0x21, 0x22, 12, std::string(36, '\0')), 16);
        check_fails(v2_raw(0x21, 0x31, 215, std::string(216, '\0')), 16);
        check_fails(v2_raw(0x21, 0x32, 36, std::string(216, '\0')), 16);
    }

    TEST_CASE("v2: a block shorter than its length is incomplete") {
        const auto full = v2(0x21, 0x11, inet_block + tlv(0x04, "abc"));
        check_incomplete(full.substr(0, full.size() - 1));
        check_incomplete(v2_raw(0x21, 0x11, 12, ""));
        check_incomplete(v2_raw(0x20, 0x00, 1000, std::string(999, 'z')));
        check_incomplete(v2_sig + bytes({0x21, 0x11, 0x00}));
    }

    TEST_CASE("v2: TLVs are skipped, AUTHORITY and SSL are read") {
        const auto ssl_value = bytes({0x01, 0, 0, 0, 0}) + tlv(0x21, "TLSv1.3");
        const auto block = inet_block + tlv(0x04, bytes({0, 0, 0})) + tlv(0x02, "example.com") +
                           tlv(0x20, ssl_value) + tlv(0xE0, "") + tlv(0x05, std::string(128, 'u'));
        const auto info = parse_ok(v2(0x21, 0x11, block));
        check_inet_block(info);
        REQUIRE(info.authority);
        CHECK(*info.authority == "example.com");
        CHECK(info.ssl);

        // The same over IPv6, SSL first; a client field without PP2_CLIENT_SSL.
        const auto v6 = std::string(32, '\x11') + bytes({0, 1, 0, 2}) +
                        tlv(0x20, bytes({0x06, 0, 0, 0, 1})) + tlv(0x02, "b.example");
        const auto info6 = parse_ok(v2(0x21, 0x21, v6));
        CHECK(info6.family == proxy_family::ipv6);
        CHECK(info6.source.port == 1);
        CHECK(info6.destination.port == 2);
        CHECK(*info6.authority == "b.example");
        CHECK_FALSE(info6.ssl);

        // A TLV filling the block exactly, an empty authority.
        const auto empty = parse_ok(v2(0x21, 0x11, inet_block + tlv(0x02, "")));
        REQUIRE(empty.authority);
        CHECK(empty.authority->empty());
    }

    TEST_CASE("v2: first AUTHORITY and SSL win; oversized AUTHORITY is not kept") {
        auto info = parse_ok(v2(0x21, 0x11,
                                inet_block + tlv(0x02, "a.example") + tlv(0x02, "b.example") +
                                    tlv(0x20, bytes({0x07, 0, 0, 0, 0})) +
                                    tlv(0x20, bytes({0x00, 0, 0, 0, 0}))));
        CHECK(*info.authority == "a.example");
        CHECK(info.ssl);

        const std::string longest(255, 'h');
        info = parse_ok(v2(0x21, 0x11, inet_block + tlv(0x02, longest)));
        REQUIRE(info.authority);
        CHECK(*info.authority == longest);
        info = parse_ok(v2(0x21, 0x11, inet_block + tlv(0x02, longest + "h")));
        CHECK_FALSE(info.authority);
        info = parse_ok(
            v2(0x21, 0x11, inet_block + tlv(0x02, longest + "h") + tlv(0x02, "c.example")));
        CHECK(*info.authority == "c.example");
    }

    TEST_CASE("v2: malformed TLVs") {
        // A value running past the announced length fails once its length is known.
        check_fails(v2_raw(0x21, 0x11, 12 + 3 + 4, inet_block + tlv(0x04, "abcde")), 16 + 12 + 3);
        check_fails(v2_raw(0x21, 0x11, 12 + 3 + 4 + 3 + 1,
                           inet_block + tlv(0x04, "abcd") + tlv(0x02, "xy")),
                    16 + 12 + 3 + 4 + 3);
        // 1 or 2 bytes left cannot be a TLV: fail when the element before them ends.
        check_fails(v2_raw(0x21, 0x11, 13, inet_block + bytes({0x04})), 16 + 12);
        check_fails(v2_raw(0x21, 0x11, 14, inet_block + bytes({0x04, 0x00})), 16 + 12);
        check_fails(
            v2_raw(0x21, 0x11, 12 + 3 + 2, inet_block + tlv(0x04, "") + bytes({0x04, 0x00})),
            16 + 12 + 3);
        check_fails(v2_raw(0x21, 0x21, 37, std::string(36, '\0') + bytes({0x01})), 16 + 36);
        // §2.2.6: a PP2_TYPE_SSL value has at least <client> and <verify>.
        check_fails(v2(0x21, 0x11, inet_block + tlv(0x20, bytes({0x01, 0, 0, 0}))), 16 + 12 + 3);
        check_fails(v2(0x21, 0x11, inet_block + tlv(0x20, "")), 16 + 12 + 3);
    }

    TEST_CASE("v2: the largest header, consumed without being stored") {
        // §2.2: a 16-bit length allows 65535 bytes after the fixed part.
        const auto block = inet_block + tlv(0x04, std::string(65535 - 12 - 3, '\xAA'));
        const auto header = v2(0x21, 0x11, block);
        REQUIRE(header.size() == 16 + 65535);
        REQUIRE(header.substr(14, 2) == bytes({0xFF, 0xFF}));
        check_inet_block(parse_ok(header));
        // Also when the last TLV is an authority that is too long to keep.
        const auto big_authority =
            inet_block + tlv(0x04, "") + tlv(0x02, std::string(65535 - 12 - 3 - 3, 'a'));
        const auto info = parse_ok(v2(0x21, 0x11, big_authority));
        CHECK_FALSE(info.authority);
        check_local(parse_ok(v2(0x20, 0x00, std::string(65535, '\0'))), 2);
    }

    TEST_CASE("reset() makes a parser reusable") {
        proxy_header_parser p;
        const auto v2_header = v2(0x21, 0x11, inet_block + tlv(0x02, "example.com"));
        CHECK(p.feed(v2_header) == v2_header.size());
        REQUIRE(p.done());
        REQUIRE(p.info().authority);
        p.reset();
        CHECK_FALSE(p.done());
        CHECK_FALSE(p.info().authority);
        CHECK(p.feed("GET"sv) == 1);
        CHECK(p.failed());
        p.reset();
        CHECK_FALSE(p.failed());
        CHECK_FALSE(p.error());
        CHECK(p.error_detail().empty());
        const auto line = "PROXY TCP4 10.1.2.3 10.4.5.6 1000 2000\r\n"sv;
        CHECK(p.feed(line) == line.size());
        REQUIRE(p.done());
        CHECK(p.info().version == 1);
        CHECK(p.info().source.address == address{10, 1, 2, 3});
        CHECK(p.info().destination.port == 2000);
        CHECK_FALSE(p.info().authority);
    }
}
