// libFuzzer target: http_request_parser (request head, RFC 9112).
//
// Input: [limits][n] bytes [n split-size bytes]. The bytes are fed whole and in the input's
// chunk split (and again after reset()); every run must end the same way, and feed()'s
// contract is checked on every call: it returns at most what it was given, less only once
// done or failed, 0 afterwards; a failure is reported at the offending byte (the bytes
// before it do not fail); a parsed request obeys the grammar the parser enforces.

#include "fuzz_common.hpp"
#include "wscoro/protocol/http_request.hpp"

namespace {

using namespace wscoro::protocol;

bool is_tchar(char c) {
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos ||
           (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}
bool is_ctl(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F;
}

struct outcome {
    std::size_t consumed = 0;
    bool done = false;
    bool failed = false;
    std::error_code ec;
    std::string detail;
    http_request request;
};

bool same(const outcome& a, const outcome& b) {
    if (a.consumed != b.consumed || a.done != b.done || a.failed != b.failed || a.ec != b.ec ||
        a.detail != b.detail)
        return false;
    if (!a.done) return true;
    const auto& x = a.request;
    const auto& y = b.request;
    if (x.method != y.method || x.target != y.target || x.version_major != y.version_major ||
        x.version_minor != y.version_minor || x.headers.size() != y.headers.size())
        return false;
    for (std::size_t i = 0; i < x.headers.size(); ++i)
        if (x.headers[i].name != y.headers[i].name || x.headers[i].value != y.headers[i].value)
            return false;
    return true;
}

outcome run(http_request_parser& p, std::span<const std::byte> bytes, fuzz::splits sp) {
    outcome o;
    std::size_t fed = 0;
    while (fed < bytes.size()) {
        std::size_t k = sp.next();
        if (k == 0) {
            // An empty feed of a running parser uses nothing; then move on by one byte.
            FUZZ_CHECK(p.feed(std::span<const std::byte>()) == 0);
            k = 1;
        }
        k = std::min(k, bytes.size() - fed);
        const std::size_t used = p.feed(bytes.subspan(fed, k));
        FUZZ_CHECK(used <= k);
        if (used < k) FUZZ_CHECK(p.done() || p.failed());
        o.consumed += used;
        fed += k;
        if (p.done() || p.failed()) {
            FUZZ_CHECK(!(p.done() && p.failed()));
            // Finished: nothing more is taken.
            FUZZ_CHECK(p.feed(bytes.subspan(fed)) == 0);
            FUZZ_CHECK(p.feed(std::string_view("GET / HTTP/1.1\r\n\r\n")) == 0);
            break;
        }
    }
    o.done = p.done();
    o.failed = p.failed();
    o.ec = p.error();
    o.detail = std::string(p.error_detail());
    if (o.done) o.request = p.request();
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto in = fuzz::split_input(data, size, 1);
    fuzz::reader cfg{in.config.data(), in.config.size()};
    const std::uint8_t lb = cfg.byte();
    http_limits limits;
    if (lb & 0x80) {
        static constexpr std::size_t lines[] = {0, 1, 5, 16, 20, 64, 100, 8192};
        static constexpr std::size_t heads[] = {0, 1, 18, 64, 100, 256, 1000, 65536};
        static constexpr std::size_t counts[] = {0, 1, 2, 3, 5, 10, 128, 1000};
        limits.max_request_line = lines[lb & 7];
        limits.max_header_bytes = heads[(lb >> 3) & 7];
        limits.max_headers = counts[(lb >> 4) & 7];
    }
    const auto bytes = fuzz::as_bytes(in.stream);

    http_request_parser whole_parser(limits);
    const outcome whole = run(whole_parser, bytes, fuzz::splits({}));
    http_request_parser split_parser(limits);
    const outcome split = run(split_parser, bytes, fuzz::splits(in.spec));
    FUZZ_CHECK(same(whole, split));
    // Reusable after reset().
    split_parser.reset();
    FUZZ_CHECK(!split_parser.done() && !split_parser.failed() && !split_parser.error());
    FUZZ_CHECK(same(whole, run(split_parser, bytes, fuzz::splits({}))));

    FUZZ_CHECK(whole.consumed <= bytes.size());
    FUZZ_CHECK(whole.consumed <= limits.max_header_bytes || !whole.done);
    if (!whole.done && !whole.failed) FUZZ_CHECK(whole.consumed == bytes.size());

    if (whole.failed) {
        using wscoro::error;
        FUZZ_CHECK(whole.ec == error::bad_http_request ||
                   whole.ec == error::request_line_too_long ||
                   whole.ec == error::headers_too_large);
        const int status = wscoro::http_status_for(whole.ec);
        FUZZ_CHECK(status == 400 || status == 414 || status == 431);
        FUZZ_CHECK(!whole.detail.empty());
        FUZZ_CHECK(whole.consumed >= 1);
        // The failure is reported at the offending byte: the bytes before it do not fail.
        http_request_parser before(limits);
        FUZZ_CHECK(before.feed(bytes.first(whole.consumed - 1)) == whole.consumed - 1);
        FUZZ_CHECK(!before.failed() && !before.done());
    } else {
        FUZZ_CHECK(!whole.ec);
        FUZZ_CHECK(whole.detail.empty());
    }

    if (whole.done) {
        // The head ends with its empty line, and the bytes before it do not complete a head.
        FUZZ_CHECK(whole.consumed >= 1 && in.stream[whole.consumed - 1] == '\n');
        http_request_parser before(limits);
        before.feed(bytes.first(whole.consumed - 1));
        FUZZ_CHECK(!before.done());

        const http_request& r = whole.request;
        FUZZ_CHECK(is_token(r.method));
        FUZZ_CHECK(!r.target.empty());
        for (char c : r.target)
            FUZZ_CHECK(!is_ctl(c) && c != ' ');
        FUZZ_CHECK(r.version_major >= 0 && r.version_major <= 9);
        FUZZ_CHECK(r.version_minor >= 0 && r.version_minor <= 9);
        FUZZ_CHECK(r.target.size() + r.method.size() + 10 <= limits.max_request_line);
        FUZZ_CHECK(r.headers.size() <= limits.max_headers);
        for (const auto& h : r.headers) {
            FUZZ_CHECK(is_token(h.name));
            for (char c : h.value)
                FUZZ_CHECK(!is_ctl(c) || c == '\t');
            if (!h.value.empty()) {
                FUZZ_CHECK(h.value.front() != ' ' && h.value.front() != '\t');
                FUZZ_CHECK(h.value.back() != ' ' && h.value.back() != '\t');
            }
            // Lookups find the field by any case of its name.
            std::string upper = h.name;
            for (char& c : upper)
                c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
            FUZZ_CHECK(r.header(upper).has_value());
            FUZZ_CHECK(r.header_count(upper) >= 1);
        }
        // path() and query_string() split the target at its first '?'.
        std::string rebuilt(r.path());
        if (r.target.find('?') != std::string::npos) {
            rebuilt += '?';
            rebuilt += r.query_string();
        }
        FUZZ_CHECK(rebuilt == r.target);
        (void)r.has_token("Connection", "upgrade");
        (void)r.has_token("Upgrade", "websocket");
        if (!r.headers.empty()) (void)r.has_token(r.headers[0].name, r.headers.back().value);
    }
    return 0;
}
