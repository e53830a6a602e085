// libFuzzer target: proxy_header_parser (PROXY protocol v1 and v2).
//
// Input: [n] bytes [n split-size bytes]. The bytes are fed whole, in the input's chunk split
// and (after reset()) byte by byte; every run must end the same way ("every split of the same
// bytes gives the same result"). Checked: feed()'s contract (at most what it was given, less
// only once finished, 0 afterwards), the failure is at the offending byte, the header sizes
// of the spec (v1 at most 107 bytes ending in CRLF, v2 exactly 16 + length), and the result
// against the bytes: v1 addresses against inet_pton, v2 addresses against the raw block.

#include <arpa/inet.h>

#include <cstring>

#include "fuzz_common.hpp"
#include "wscoro/protocol/proxy_protocol.hpp"

namespace {

using namespace wscoro::protocol;

struct outcome {
    std::size_t consumed = 0;
    bool done = false;
    bool failed = false;
    std::error_code ec;
    std::string detail;
    proxy_info info;
};

bool same_endpoint(const proxy_endpoint& a, const proxy_endpoint& b) {
    return a.address == b.address && a.port == b.port;
}

bool same(const outcome& a, const outcome& b) {
    if (a.consumed != b.consumed || a.done != b.done || a.failed != b.failed || a.ec != b.ec ||
        a.detail != b.detail)
        return false;
    if (!a.done) return true;
    const auto& x = a.info;
    const auto& y = b.info;
    return x.version == y.version && x.local == y.local && x.family == y.family &&
           x.transport == y.transport && same_endpoint(x.source, y.source) &&
           same_endpoint(x.destination, y.destination) && x.source_path == y.source_path &&
           x.destination_path == y.destination_path && x.authority == y.authority && x.ssl == y.ssl;
}

outcome run(proxy_header_parser& p, std::span<const std::byte> bytes, fuzz::splits sp) {
    outcome o;
    std::size_t fed = 0;
    while (fed < bytes.size()) {
        std::size_t k = sp.next();
        if (k == 0) {
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
            FUZZ_CHECK(p.feed(bytes.subspan(fed)) == 0);
            FUZZ_CHECK(p.feed(std::string_view("PROXY UNKNOWN\r\n")) == 0);
            break;
        }
    }
    o.done = p.done();
    o.failed = p.failed();
    o.ec = p.error();
    o.detail = std::string(p.error_detail());
    if (o.done) o.info = p.info();
    return o;
}

std::uint16_t be16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

// §2.1 fields of a v1 line that parsed: compare with what inet_pton makes of them.
void check_v1(std::string_view line, const proxy_info& info) {
    FUZZ_CHECK(line.size() <= 107 && line.size() >= 8);
    FUZZ_CHECK(line.substr(0, 6) == "PROXY ");
    FUZZ_CHECK(line.substr(line.size() - 2) == "\r\n");
    FUZZ_CHECK(line.find('\n') == line.size() - 1);
    FUZZ_CHECK(line.find('\r') == line.size() - 2);
    if (line.substr(6, 7) == "UNKNOWN") {
        FUZZ_CHECK(info.local && info.family == proxy_family::unspec);
        return;
    }
    FUZZ_CHECK(!info.local);
    FUZZ_CHECK(info.transport == proxy_transport::stream);
    const bool v4 = line.substr(6, 5) == "TCP4 ";
    FUZZ_CHECK(v4 || line.substr(6, 5) == "TCP6 ");
    FUZZ_CHECK(info.family == (v4 ? proxy_family::ipv4 : proxy_family::ipv6));
    std::string rest(line.substr(11, line.size() - 13));
    std::string field[4];
    for (int i = 0; i < 3; ++i) {
        const auto sp = rest.find(' ');
        FUZZ_CHECK(sp != std::string::npos);
        field[i] = rest.substr(0, sp);
        rest.erase(0, sp + 1);
    }
    field[3] = rest;
    for (int i = 0; i < 2; ++i) {
        std::uint8_t addr[16] = {};
        if (inet_pton(v4 ? AF_INET : AF_INET6, field[i].c_str(), addr) != 1) {
            std::fprintf(stderr, "accepted address \"%s\" that inet_pton rejects\n",
                         field[i].c_str());
            FUZZ_CHECK(!"address accepted that inet_pton rejects");
        }
        const auto& ep = i == 0 ? info.source : info.destination;
        FUZZ_CHECK(std::memcmp(ep.address.data(), addr, v4 ? 4 : 16) == 0);
        if (v4)
            for (std::size_t j = 4; j < 16; ++j)
                FUZZ_CHECK(ep.address[j] == 0);
    }
    for (int i = 0; i < 2; ++i) {
        const auto& f = field[2 + i];
        FUZZ_CHECK(!f.empty() && f.size() <= 5 && (f.size() == 1 || f[0] != '0'));
        unsigned long v = 0;
        for (char c : f) {
            FUZZ_CHECK(c >= '0' && c <= '9');
            v = v * 10 + static_cast<unsigned>(c - '0');
        }
        FUZZ_CHECK(v <= 65535);
        FUZZ_CHECK((i == 0 ? info.source.port : info.destination.port) == v);
    }
}

// v1 lines that inet_pton accepts are accepted (only well-formed lines are generated here).
void check_v1_rejection(std::string_view line) {
    // Only for lines shaped "PROXY TCPx a b p q\r\n" with plain fields.
    if (line.size() > 107 || line.substr(0, 6) != "PROXY " || line.size() < 13) return;
    if (line.substr(line.size() - 2) != "\r\n") return;
    const bool v4 = line.substr(6, 5) == "TCP4 ";
    if (!v4 && line.substr(6, 5) != "TCP6 ") return;
    std::string rest(line.substr(11, line.size() - 13));
    std::string field[4];
    for (int i = 0; i < 3; ++i) {
        const auto sp = rest.find(' ');
        if (sp == std::string::npos) return;
        field[i] = rest.substr(0, sp);
        rest.erase(0, sp + 1);
    }
    field[3] = rest;
    std::uint8_t addr[16];
    for (int i = 0; i < 2; ++i) {
        if (field[i].find_first_of(std::string_view("\r\n%\0", 4)) != std::string::npos) return;
        if (inet_pton(v4 ? AF_INET : AF_INET6, field[i].c_str(), addr) != 1) return;
    }
    for (int i = 2; i < 4; ++i) {
        const auto& f = field[i];
        if (f.empty() || f.size() > 5 || (f.size() > 1 && f[0] == '0')) return;
        unsigned long v = 0;
        for (char c : f) {
            if (c < '0' || c > '9') return;
            v = v * 10 + static_cast<unsigned>(c - '0');
        }
        if (v > 65535) return;
    }
    proxy_header_parser p;
    p.feed(line);
    if (!p.done()) {
        std::fprintf(stderr, "rejected (%s) a v1 line inet_pton accepts: %.*s",
                     std::string(p.error_detail()).c_str(), static_cast<int>(line.size()),
                     line.data());
        FUZZ_CHECK(!"valid v1 line rejected");
    }
}

void check_v2(std::span<const std::uint8_t> h, const proxy_info& info) {
    FUZZ_CHECK(h.size() >= 16);
    static constexpr std::uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                             0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    FUZZ_CHECK(std::memcmp(h.data(), sig, 12) == 0);
    FUZZ_CHECK((h[12] >> 4) == 2);
    FUZZ_CHECK(h.size() == 16u + be16(&h[14]));
    const int cmd = h[12] & 0x0F;
    const int fam = h[13] >> 4;
    const int proto = h[13] & 0x0F;
    FUZZ_CHECK(cmd == 0 || cmd == 1);
    if (cmd == 0 || fam == 0 || proto == 0) {
        FUZZ_CHECK(info.local && info.family == proxy_family::unspec);
        FUZZ_CHECK(info.source.address == std::array<std::uint8_t, 16>{});
        FUZZ_CHECK(info.source.port == 0 && info.destination.port == 0);
        FUZZ_CHECK(!info.authority && !info.ssl);
        return;
    }
    FUZZ_CHECK(!info.local);
    FUZZ_CHECK(info.transport == (proto == 1 ? proxy_transport::stream : proxy_transport::dgram));
    const std::uint8_t* a = &h[16];
    std::size_t block = 0;
    if (fam == 1) {
        block = 12;
        FUZZ_CHECK(info.family == proxy_family::ipv4);
        FUZZ_CHECK(std::memcmp(info.source.address.data(), a, 4) == 0);
        FUZZ_CHECK(std::memcmp(info.destination.address.data(), a + 4, 4) == 0);
        FUZZ_CHECK(info.source.port == be16(a + 8) && info.destination.port == be16(a + 10));
    } else if (fam == 2) {
        block = 36;
        FUZZ_CHECK(info.family == proxy_family::ipv6);
        FUZZ_CHECK(std::memcmp(info.source.address.data(), a, 16) == 0);
        FUZZ_CHECK(std::memcmp(info.destination.address.data(), a + 16, 16) == 0);
        FUZZ_CHECK(info.source.port == be16(a + 32) && info.destination.port == be16(a + 34));
    } else {
        FUZZ_CHECK(fam == 3);
        block = 216;
        FUZZ_CHECK(info.family == proxy_family::unix_socket);
        FUZZ_CHECK(info.source_path.size() <= 108 && info.destination_path.size() <= 108);
        FUZZ_CHECK(std::memcmp(info.source_path.data(), a, info.source_path.size()) == 0);
        FUZZ_CHECK(
            std::memcmp(info.destination_path.data(), a + 108, info.destination_path.size()) == 0);
    }
    // TLVs: exactly cover the rest; the first AUTHORITY (<= 255 bytes) and SSL are reported.
    std::size_t at = 16 + block;
    std::optional<std::string> authority;
    std::optional<bool> ssl;
    while (at < h.size()) {
        FUZZ_CHECK(h.size() - at >= 3);
        const std::uint8_t type = h[at];
        const std::size_t len = be16(&h[at + 1]);
        FUZZ_CHECK(at + 3 + len <= h.size());
        const char* v = reinterpret_cast<const char*>(&h[at + 3]);
        if (type == 0x02 && !authority && len <= 255) authority = std::string(v, len);
        if (type == 0x20) {
            FUZZ_CHECK(len >= 5);
            if (!ssl) ssl = (h[at + 3] & 1) != 0;
        }
        at += 3 + len;
    }
    FUZZ_CHECK(info.authority == authority);
    FUZZ_CHECK(info.ssl == ssl.value_or(false));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto in = fuzz::split_input(data, size, 0);
    const auto bytes = fuzz::as_bytes(in.stream);

    proxy_header_parser p;
    const outcome whole = run(p, bytes, fuzz::splits({}));
    proxy_header_parser q;
    const outcome split = run(q, bytes, fuzz::splits(in.spec));
    FUZZ_CHECK(same(whole, split));
    q.reset();
    FUZZ_CHECK(!q.done() && !q.failed() && !q.error() && q.error_detail().empty());
    static const std::uint8_t ones[1] = {1};
    FUZZ_CHECK(same(whole, run(q, bytes, fuzz::splits(ones))));

    if (!whole.done && !whole.failed) FUZZ_CHECK(whole.consumed == bytes.size());
    if (whole.failed) {
        FUZZ_CHECK(whole.ec == wscoro::error::bad_proxy_header);
        FUZZ_CHECK(!whole.detail.empty());
        FUZZ_CHECK(whole.consumed >= 1);
        // Reported at the first byte that cannot be part of a header.
        proxy_header_parser before;
        FUZZ_CHECK(before.feed(bytes.first(whole.consumed - 1)) == whole.consumed - 1);
        FUZZ_CHECK(!before.failed() && !before.done());
    } else {
        FUZZ_CHECK(!whole.ec && whole.detail.empty());
    }
    if (whole.done) {
        const auto head = in.stream.first(whole.consumed);
        // Nothing shorter is a whole header.
        proxy_header_parser before;
        before.feed(bytes.first(whole.consumed - 1));
        FUZZ_CHECK(!before.done());
        FUZZ_CHECK(whole.info.version == 1 || whole.info.version == 2);
        if (whole.info.local) {
            FUZZ_CHECK(whole.info.family == proxy_family::unspec);
            FUZZ_CHECK(whole.info.source.address == std::array<std::uint8_t, 16>{});
            FUZZ_CHECK(whole.info.destination.address == std::array<std::uint8_t, 16>{});
        }
        if (whole.info.authority) FUZZ_CHECK(whole.info.authority->size() <= 255);
        if (whole.info.version == 1)
            check_v1(std::string_view(reinterpret_cast<const char*>(head.data()), head.size()),
                     whole.info);
        else
            check_v2(head, whole.info);
    } else if (!in.stream.empty() && in.stream[0] == 'P') {
        // A v1 line up to the first LF that inet_pton would accept must not be refused.
        const std::string_view text(reinterpret_cast<const char*>(in.stream.data()),
                                    in.stream.size());
        const auto lf = text.find('\n');
        if (whole.failed && lf != std::string_view::npos)
            check_v1_rejection(text.substr(0, lf + 1));
    }
    return 0;
}
