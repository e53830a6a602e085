#include "wscoro/protocol/http_request.hpp"

#include <doctest/doctest.h>

#include <ostream>  // doctest prints std::error_code through it
#include <string>
#include <string_view>
#include <vector>

#include "rfc6455_sample.hpp"
#include "split_feed.hpp"
#include "wscoro/error.hpp"

using namespace std::literals;
using wscoro::error;
using wscoro::protocol::http_header;
using wscoro::protocol::http_limits;
using wscoro::protocol::http_request;
using wscoro::protocol::http_request_parser;

namespace {

// Everything observable about one parse, so that different ways of feeding the same bytes
// can be compared.
struct outcome : wscoro_test::parse_status {
    http_request request;
};

// Feeds `input` in pieces ending at each offset of `cuts` (ascending) and then the rest.
outcome feed_pieces(std::string_view input, const std::vector<std::size_t>& cuts,
                    http_limits limits) {
    http_request_parser parser(limits);
    outcome out;
    wscoro_test::feed_pieces_to(parser, out, input, cuts, "GET / HTTP/1.1\r\n\r\n"sv);
    out.request = parser.request();
    return out;
}

void check_same(const outcome& a, const outcome& b) {
    wscoro_test::check_same_status(a, b);
    CHECK(a.request.method == b.request.method);
    CHECK(a.request.target == b.request.target);
    CHECK(a.request.version_major == b.request.version_major);
    CHECK(a.request.version_minor == b.request.version_minor);
    REQUIRE(a.request.headers.size() == b.request.headers.size());
    for (std::size_t i = 0; i < a.request.headers.size(); ++i) {
        CHECK(a.request.headers[i].name == b.request.headers[i].name);
        CHECK(a.request.headers[i].value == b.request.headers[i].value);
    }
}

// Parses `input` whole, split in two at every byte boundary, and byte by byte; every way must
// give the same outcome, which is returned. Very long inputs are split at a stride only, to keep
// the quadratic cost bounded.
outcome parse(std::string_view input, http_limits limits = {}) {
    const std::size_t stride = input.size() > 16 * 1024 ? 127 : 1;
    return wscoro_test::check_every_split(
        input.size(), stride,
        [&](const std::vector<std::size_t>& cuts) { return feed_pieces(input, cuts, limits); },
        check_same);
}

void check_ok(const outcome& o) {
    CHECK(o.done);
    CHECK_FALSE(o.failed);
    CHECK_FALSE(o.ec);
    CHECK(o.detail.empty());
}

void check_fails(std::string_view input, error expected, http_limits limits = {}) {
    INFO("input: ", std::string(input));
    const auto o = parse(input, limits);
    CHECK(o.failed);
    CHECK_FALSE(o.done);
    CHECK(o.ec == expected);
    CHECK_FALSE(o.detail.empty());
}

constexpr std::string_view rfc6455_sample = wscoro_test::rfc6455_request;

http_request make_request(std::vector<http_header> headers) {
    http_request r;
    // (Moved in, not assigned from literals: GCC 12 at -O3 warns falsely (-Wrestrict) about
    // string::operator=(const char*) here.)
    r.method = std::string("GET");
    r.target = std::string("/");
    r.headers = std::move(headers);
    return r;
}

}  // namespace

TEST_SUITE("http_request") {
    TEST_CASE("parses the RFC 6455 section 1.2 sample request") {
        const auto o = parse(rfc6455_sample);
        check_ok(o);
        CHECK(o.consumed == rfc6455_sample.size());
        CHECK(o.request.method == "GET");
        CHECK(o.request.target == "/chat");
        CHECK(o.request.version_major == 1);
        CHECK(o.request.version_minor == 1);
        REQUIRE(o.request.headers.size() == 7);
        CHECK(o.request.headers[0].name == "Host");
        CHECK(o.request.headers[0].value == "server.example.com");
        CHECK(o.request.headers[3].name == "Sec-WebSocket-Key");
        CHECK(o.request.headers[3].value == "dGhlIHNhbXBsZSBub25jZQ==");
        CHECK(o.request.headers[5].name == "Sec-WebSocket-Protocol");
        CHECK(o.request.headers[5].value == "chat, superchat");
        CHECK(o.request.headers[6].name == "Sec-WebSocket-Version");
        CHECK(o.request.headers[6].value == "13");
    }

    TEST_CASE("accepts bare LF line ends, also mixed with CRLF") {
        std::string lf;
        for (char c : rfc6455_sample)
            if (c != '\r') lf += c;
        const auto crlf_result = parse(rfc6455_sample);
        const auto lf_result = parse(lf);
        check_ok(lf_result);
        CHECK(lf_result.consumed == lf.size());
        CHECK(lf_result.request.target == crlf_result.request.target);
        REQUIRE(lf_result.request.headers.size() == crlf_result.request.headers.size());
        for (std::size_t i = 0; i < lf_result.request.headers.size(); ++i) {
            CHECK(lf_result.request.headers[i].name == crlf_result.request.headers[i].name);
            CHECK(lf_result.request.headers[i].value == crlf_result.request.headers[i].value);
        }
        const auto mixed = parse("GET / HTTP/1.1\nHost: a\r\nX: y\n\r\n"sv);
        check_ok(mixed);
        REQUIRE(mixed.request.headers.size() == 2);
        CHECK(mixed.request.headers[1].value == "y");
    }

    TEST_CASE("skips up to four empty lines before the request line") {
        constexpr auto input = "\r\n\n\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"sv;
        const auto o = parse(input);
        check_ok(o);
        CHECK(o.request.method == "GET");
        CHECK(o.consumed == input.size());
        check_fails("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"sv,
                    error::bad_http_request);
        check_fails("\n\n\n\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"sv, error::bad_http_request);
    }

    TEST_CASE("trims OWS around field values and keeps empty values") {
        const auto o = parse(
            "GET / HTTP/1.1\r\n"
            "Host:a\r\n"
            "X-Spaced: \t  two  words \t \r\n"
            "X-Empty:\r\n"
            "X-Blank:   \t\r\n"
            "\r\n"sv);
        check_ok(o);
        REQUIRE(o.request.headers.size() == 4);
        CHECK(o.request.headers[0].value == "a");
        CHECK(o.request.headers[1].value == "two  words");
        CHECK(o.request.headers[2].name == "X-Empty");
        CHECK(o.request.headers[2].value == "");
        CHECK(o.request.headers[3].value == "");
    }

    TEST_CASE("allows HTAB and obs-text inside field values and targets") {
        const auto o = parse("GET /caf\xc3\xa9 HTTP/1.1\r\nX: a\tb \xff\x80 caf\xc3\xa9\r\n\r\n"sv);
        check_ok(o);
        CHECK(o.request.target == "/caf\xc3\xa9");
        REQUIRE(o.request.headers.size() == 1);
        CHECK(o.request.headers[0].value == "a\tb \xff\x80 caf\xc3\xa9");
    }

    TEST_CASE("leaves pipelined bytes after the head unconsumed") {
        constexpr auto head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"sv;
        const std::string input =
            std::string(head) + "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"s;
        const auto o = parse(input);
        check_ok(o);
        CHECK(o.consumed == head.size());

        constexpr auto lf_head = "GET / HTTP/1.1\nHost: a\n\n"sv;
        const auto lf = parse(std::string(lf_head) + "GET /next HTTP/1.1\n\n");
        check_ok(lf);
        CHECK(lf.consumed == lf_head.size());
        CHECK(lf.request.target == "/");
    }

    TEST_CASE("consumes everything while the head is incomplete") {
        http_request_parser parser;
        CHECK(parser.feed("GET /chat HTTP/1.1\r\nHost: a\r\n"sv) == 29);
        CHECK_FALSE(parser.done());
        CHECK_FALSE(parser.failed());
        CHECK(parser.feed(""sv) == 0);
        CHECK(parser.feed("\r"sv) == 1);
        CHECK_FALSE(parser.done());
        CHECK(parser.feed("\nrest"sv) == 1);
        CHECK(parser.done());
    }

    TEST_CASE("parses methods and HTTP versions") {
        const auto v10 = parse("GET / HTTP/1.0\r\n\r\n"sv);
        check_ok(v10);
        CHECK(v10.request.version_major == 1);
        CHECK(v10.request.version_minor == 0);
        const auto v29 = parse("GET / HTTP/2.9\r\n\r\n"sv);
        check_ok(v29);
        CHECK(v29.request.version_major == 2);
        CHECK(v29.request.version_minor == 9);
        // RFC 9110 §5.6.2: every tchar may appear in a method.
        const auto odd = parse("!#$%&'*+-.^_`|~09azAZ * HTTP/1.1\r\n\r\n"sv);
        check_ok(odd);
        CHECK(odd.request.method == "!#$%&'*+-.^_`|~09azAZ");
        CHECK(odd.request.target == "*");
        const auto absolute = parse("M-SEARCH http://h:1/p?q HTTP/1.1\r\n\r\n"sv);
        check_ok(absolute);
        CHECK(absolute.request.method == "M-SEARCH");
        CHECK(absolute.request.target == "http://h:1/p?q");
    }

    TEST_CASE("splits the target into path and query at the first question mark") {
        struct row {
            std::string_view target, path, query;
        };
        const row rows[] = {
            {"/chat", "/chat", ""},
            {"/chat?room=1", "/chat", "room=1"},
            {"/chat?room=1?x=2", "/chat", "room=1?x=2"},
            {"/chat?", "/chat", ""},
            {"?a", "", "a"},
            {"/%3F?b=%3F", "/%3F", "b=%3F"},
        };
        for (const auto& r : rows) {
            INFO("target ", std::string(r.target));
            const auto o = parse("GET " + std::string(r.target) + " HTTP/1.1\r\n\r\n");
            check_ok(o);
            CHECK(o.request.target == r.target);
            CHECK(o.request.path() == r.path);
            CHECK(o.request.query_string() == r.query);
        }
    }

    TEST_CASE("rejects malformed request lines with 400") {
        const std::string_view lines[] = {
            "GET"sv,                  // no spaces at all
            "GET /"sv,                // no version
            "GET / "sv,               // empty version
            " / HTTP/1.1"sv,          // empty method
            "G(T / HTTP/1.1"sv,       // non-tchar in method
            "G\x80T / HTTP/1.1"sv,    // non-ASCII in method
            "G\0T / HTTP/1.1"sv,      // NUL in method
            "GET\t/ HTTP/1.1"sv,      // HTAB is not a separator
            "GET  / HTTP/1.1"sv,      // two spaces: empty target
            "GET /  HTTP/1.1"sv,      // two spaces before the version
            "GET /a\x01 HTTP/1.1"sv,  // CTL in target
            "GET /a\x7f HTTP/1.1"sv,  // DEL in target
            "GET /a\0b HTTP/1.1"sv,   // NUL in target
            "GET /a\tb HTTP/1.1"sv,   // HTAB in target
            "GET / HTTP/1.1 "sv,      // trailing space
            "GET / HTTP/1.1 x"sv,     // extra word
            "GET / http/1.1"sv,       // HTTP-name is case-sensitive
            "GET / HTTP/1"sv,         // no minor version
            "GET / HTTP/1."sv,        // empty minor version
            "GET / HTTP/10.1"sv,      // two-digit major
            "GET / HTTP/1.10"sv,      // two-digit minor
            "GET / HTTP/x.1"sv,       // non-digit
            "GET / HTTP/1,1"sv,       // wrong separator
            "GET / HTTP-1.1"sv,       // wrong separator
            "GET / HTTP/1.\0"sv,      // NUL in version
        };
        for (const auto line : lines) {
            check_fails(std::string(line) + "\r\nHost: a\r\n\r\n", error::bad_http_request);
        }
    }

    TEST_CASE("rejects malformed header fields with 400") {
        const std::string_view fields[] = {
            "Host\r\n"sv,                 // no colon
            ": value\r\n"sv,              // empty name
            "Host : a\r\n"sv,             // SP before colon (RFC 9112 §5.1)
            "Host\t: a\r\n"sv,            // HTAB before colon
            "Host: a\r\n folded\r\n"sv,   // obs-fold with SP (RFC 9112 §5.2)
            "Host: a\r\n\tfolded\r\n"sv,  // obs-fold with HTAB
            " Host: a\r\n"sv,             // whitespace before the first field
            "Ho st: a\r\n"sv,             // SP inside the name
            "Ho(st: a\r\n"sv,             // non-tchar in the name
            "H\x80st: a\r\n"sv,           // non-ASCII in the name
            "H\0st: a\r\n"sv,             // NUL in the name
            "X: a\0b\r\n"sv,              // NUL in the value
            "X: a\x01\r\n"sv,             // CTL in the value
            "X: \x1b[0m\r\n"sv,           // ESC in the value
            "X: a\x7f\r\n"sv,             // DEL in the value
            "Host: a\r\nX: \x0b\r\n"sv,   // VT in a later value
        };
        for (const auto field : fields) {
            check_fails("GET / HTTP/1.1\r\n" + std::string(field) + "\r\n",
                        error::bad_http_request);
        }
    }

    TEST_CASE("rejects a CR that is not followed by LF") {
        const std::string_view inputs[] = {
            "\rGET / HTTP/1.1\r\n\r\n"sv,          "\r\rGET / HTTP/1.1\r\n\r\n"sv,
            "GET /\r HTTP/1.1\r\n\r\n"sv,          "GET / HTTP/1.1\r\r\n\r\n"sv,
            "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"sv, "GET / HTTP/1.1\r\nX: a\r\r\n\r\n"sv,
            "GET / HTTP/1.1\r\nX\r: a\r\n\r\n"sv,  "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"sv,
            "GET / HTTP/1.1\r\nHost: a\r\n\rX"sv,
        };
        for (const auto input : inputs)
            check_fails(input, error::bad_http_request);
    }

    TEST_CASE("request line limit: exactly max_request_line bytes pass, one more is 414") {
        http_limits limits;
        limits.max_request_line = 32;
        // "GET " + target + " HTTP/1.1" is 13 bytes plus the target.
        const std::string at_limit = "GET /" + std::string(18, 'a') + " HTTP/1.1";
        const std::string over = "GET /" + std::string(19, 'a') + " HTTP/1.1";
        REQUIRE(at_limit.size() == 32);
        for (const auto* eol : {"\r\n", "\n"}) {
            INFO("line end ", eol[0] == '\r' ? "CRLF" : "LF");
            const auto ok = parse(at_limit + eol + "Host: a" + eol + eol, limits);
            check_ok(ok);
            CHECK(ok.request.target == "/" + std::string(18, 'a'));
            check_fails(over + eol + "Host: a" + eol + eol, error::request_line_too_long, limits);
        }
        // Detected as soon as the line is too long, before any line end arrives.
        http_request_parser parser(limits);
        CHECK(parser.feed(std::string_view(over).substr(0, 32)) == 32);
        CHECK_FALSE(parser.failed());
        // The offending byte is the last one consumed.
        CHECK(parser.feed(std::string_view(over).substr(32)) == 1);
        CHECK(parser.failed());
        CHECK(parser.error() == error::request_line_too_long);
        CHECK(wscoro::http_status_for(parser.error()) == 414);
        // A line without a single space is still judged by its length first.
        check_fails(std::string(40, 'A'), error::request_line_too_long, limits);
        // Header lines may be longer than the request line limit.
        const auto long_field =
            parse("GET / HTTP/1.1\r\nX: " + std::string(100, 'v') + "\r\n\r\n", limits);
        check_ok(long_field);
    }

    TEST_CASE("head size limit: exactly max_header_bytes pass, one more is 431") {
        http_limits limits;
        limits.max_header_bytes = 64;
        const std::string prefix = "GET / HTTP/1.1\r\nX: ";
        const std::string suffix = "\r\n\r\n";
        const std::size_t fill = 64 - prefix.size() - suffix.size();
        const std::string at_limit = prefix + std::string(fill, 'v') + suffix;
        const std::string over = prefix + std::string(fill + 1, 'v') + suffix;
        REQUIRE(at_limit.size() == 64);
        const auto ok = parse(at_limit, limits);
        check_ok(ok);
        CHECK(ok.consumed == 64);
        check_fails(over, error::headers_too_large, limits);
        // Bytes after the head do not count against it.
        check_ok(parse(at_limit + "trailing", limits));
        // Leading empty lines count: they are part of what was read for the head.
        check_fails("\r\n" + at_limit, error::headers_too_large, limits);
        // Detected while the oversized field is still arriving, without a line end.
        http_request_parser parser(limits);
        CHECK(parser.feed(std::string_view(prefix)) == prefix.size());
        parser.feed(std::string(100, 'v'));
        CHECK(parser.failed());
        CHECK(parser.error() == error::headers_too_large);
        CHECK(wscoro::http_status_for(parser.error()) == 431);
    }

    TEST_CASE("header count limit: max_headers fields pass, one more is 431") {
        http_limits limits;
        limits.max_headers = 3;
        const std::string three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n";
        const auto ok = parse(three + "\r\n", limits);
        check_ok(ok);
        CHECK(ok.request.headers.size() == 3);
        check_fails(three + "D: 4\r\n\r\n", error::headers_too_large, limits);
    }

    TEST_CASE("default limits are 8 KiB per request line, 64 KiB per head, 128 fields") {
        const std::string line = "GET /" + std::string(8192 - 14, 'a') + " HTTP/1.1";
        REQUIRE(line.size() == 8192);
        check_ok(parse(line + "\r\n\r\n"));
        check_fails("GET /" + std::string(8192 - 13, 'a') + " HTTP/1.1\r\n\r\n",
                    error::request_line_too_long);

        const std::string prefix = "GET / HTTP/1.1\r\nX: ";
        const std::size_t fill = 64 * 1024 - prefix.size() - 4;
        check_ok(parse(prefix + std::string(fill, 'v') + "\r\n\r\n"));
        check_fails(prefix + std::string(fill + 1, 'v') + "\r\n\r\n", error::headers_too_large);

        std::string many = "GET / HTTP/1.1\r\n";
        for (int i = 0; i < 128; ++i)
            many += "X: " + std::to_string(i) + "\r\n";
        check_ok(parse(many + "\r\n"));
        check_fails(many + "Y: 1\r\n\r\n", error::headers_too_large);
    }

    TEST_CASE("reset makes the parser reusable after success and failure") {
        http_request_parser parser;
        parser.feed("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"sv);
        REQUIRE(parser.done());
        parser.reset();
        CHECK_FALSE(parser.done());
        CHECK(parser.request().headers.empty());
        parser.feed("GET /a\x01 HTTP/1.1\r\n"sv);
        REQUIRE(parser.failed());
        parser.reset();
        CHECK_FALSE(parser.failed());
        CHECK_FALSE(parser.error());
        CHECK(parser.error_detail().empty());
        CHECK(parser.feed("POST /b HTTP/1.0\r\nX: y\r\n\r\n"sv) == 26);
        CHECK(parser.done());
        CHECK(parser.request().method == "POST");
        CHECK(parser.request().target == "/b");
        CHECK(parser.request().version_minor == 0);
        REQUIRE(parser.request().headers.size() == 1);
        CHECK(parser.request().headers[0].name == "X");
    }

    TEST_CASE("reset also resets the empty-line and size counters") {
        http_limits limits;
        limits.max_header_bytes = 40;
        http_request_parser parser(limits);
        const auto head = "\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"sv;
        REQUIRE(head.size() <= 40);
        CHECK(parser.feed(head) == head.size());
        REQUIRE(parser.done());
        parser.reset();
        CHECK(parser.feed(head) == head.size());
        CHECK(parser.done());
    }

    TEST_CASE("take_request moves the request out") {
        http_request_parser parser;
        parser.feed("GET /t HTTP/1.1\r\nHost: h\r\n\r\n"sv);
        REQUIRE(parser.done());
        const http_request r = std::move(parser).take_request();
        CHECK(r.target == "/t");
        REQUIRE(r.headers.size() == 1);
        CHECK(r.headers[0].value == "h");
    }

    TEST_CASE("header lookups are ASCII case-insensitive") {
        const auto o =
            parse("GET / HTTP/1.1\r\nhOsT: first\r\nUPGRADE: WebSocket\r\nhost: second\r\n\r\n"sv);
        check_ok(o);
        const auto& r = o.request;
        CHECK(r.headers[0].name == "hOsT");  // original case is kept
        REQUIRE(r.header("Host").has_value());
        CHECK(*r.header("Host") == "first");
        CHECK(*r.header("HOST") == "first");
        CHECK(r.header_count("host") == 2);
        CHECK(r.header_count("Upgrade") == 1);
        CHECK(r.header_count("Hos") == 0);
        CHECK_FALSE(r.header("Hostx").has_value());
        CHECK_FALSE(r.header("").has_value());
        CHECK(r.has_token("upgrade", "websocket"));
        CHECK(r.has_token("Upgrade", "WEBSOCKET"));
    }

    TEST_CASE("has_token splits lists, trims OWS, skips empty elements, spans repeats") {
        struct row {
            std::vector<http_header> headers;
            std::string_view token;
            bool expected;
        };
        const std::vector<row> rows = {
            {{{"Connection", "Upgrade"}}, "upgrade", true},
            {{{"Connection", "keep-alive, Upgrade"}}, "upgrade", true},
            {{{"Connection", "keep-alive,Upgrade"}}, "upgrade", true},
            {{{"Connection", "Upgrade , keep-alive"}}, "upgrade", true},
            {{{"Connection", ", ,\t upgrade\t, ,"}}, "upgrade", true},
            {{{"Connection", "keep-alive"}, {"Connection", "Upgrade"}}, "upgrade", true},
            {{{"connection", "keep-alive"}, {"CONNECTION", "x, UPGRADE"}}, "upgrade", true},
            {{{"Connection", "keep-alive"}}, "upgrade", false},
            {{{"Connection", "upgraded"}}, "upgrade", false},
            {{{"Connection", "xupgrade"}}, "upgrade", false},
            {{{"Connection", "up grade"}}, "upgrade", false},
            {{{"Connection", "upgrade;q=1"}}, "upgrade", false},
            {{{"Connection", ""}}, "upgrade", false},
            {{{"Connection", ", ,"}}, "", false},
            {{{"Upgrade", "upgrade"}}, "upgrade", false},  // wrong field
            {{}, "upgrade", false},
        };
        for (const auto& r : rows) {
            const auto request = make_request(r.headers);
            INFO("first value: ", r.headers.empty() ? "(none)" : r.headers[0].value);
            CHECK(request.has_token("Connection", r.token) == r.expected);
        }
    }
}

TEST_SUITE("http_request") {
    TEST_CASE("malformed percent-encoding in the target is a 400 (RFC 3986 §2.1)") {
        for (std::string_view target : {"/%", "/a%2", "/a%zz", "/%g0?x", "/ok?%"}) {
            CAPTURE(target);
            wscoro::protocol::http_request_parser p;
            const std::string req = "GET " + std::string(target) + " HTTP/1.1\r\nHost: a\r\n\r\n";
            p.feed(req);
            CHECK(p.failed());
            CHECK(p.error() == wscoro::error::bad_http_request);
        }
        for (std::string_view target : {"/a%20b", "/%41%7a?q=%2F"}) {
            CAPTURE(target);
            wscoro::protocol::http_request_parser p;
            const std::string req = "GET " + std::string(target) + " HTTP/1.1\r\nHost: a\r\n\r\n";
            p.feed(req);
            CHECK(p.done());
            CHECK(p.request().target == target);
        }
    }
}
