// Load generator for echo servers: WebSocket (RFC 6455 client role) or raw TCP (--raw).
//
// Single-threaded, epoll, non-blocking sockets. Independent of wscoro on purpose: the frame
// parser, the masking and the handshake check below are its own (SHA-1 and base64 from
// libcrypto), so that a wscoro bug cannot hide behind a shared codec.
//
// Every echoed byte is compared with what was sent, every echoed message must come back as
// one message of the same type (text/binary) and size, the upgrade response must carry the
// right Sec-WebSocket-Accept, and every connection ends with a clean close handshake
// (WebSocket: Close 1000 answered with Close 1000, then the server closes TCP; raw: our
// shutdown answered with EOF). The first error stops the run (exit status 1).
//
// Scenarios:
//   pingpong  C connections, K messages in flight each (default 64 x 1, 32 B text)
//   pipeline  the same with deep pipelines (default 8 x 64, 64 B text)
//   large     big binary messages (default 1 connection, 1 in flight, 1 MiB)
//   connect   C concurrent loops of connect + upgrade + close, --count connections in all
//   idle      open upgraded connections up to each of --steps (e.g. 1000,10000); after each
//             step print a "ready" line and wait for a line on stdin (EOF: stop waiting);
//             then echo one message on every connection (liveness check) and close them all
//   soak      open C connections (default 10 000, at most --max-pending connects at a time),
//             then R rounds (--rounds, default 10; or as many as fit in --duration SEC): in
//             each round every connection sends one message and waits for its echo, and
//             --churn PCT % of them (default 10, picked at random every round) then close
//             cleanly and are replaced by new upgraded connections before the next round
//             starts. Finally every connection closes cleanly. Message sizes vary from 1 B to
//             --size (default 8 KiB, log-uniform), text or binary; in WebSocket mode a quarter
//             of the messages are sent in 2..4 fragments (empty ones included), half of those
//             with a Ping between two fragments, whose Pong must come back with its payload
// In raw mode the same traffic flows without framing; the "upgrade" is an echo of as many
// bytes as the upgrade request has, so connect and idle measure comparable work.
//
// Output: one JSON line on stdout at the end (idle: plus one "ready" line per step). Besides
// the per-scenario figures it counts connections opened and cleanly closed, and (soak) rounds,
// fragmented messages, pings, and the slowest connect + upgrade and echo seen.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

using u8 = std::uint8_t;
using u32 = std::uint32_t;
using u64 = std::uint64_t;

constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr std::size_t pool_spread = 65537;  // payload offsets vary over this many positions

enum class scenario { pingpong, pipeline, large, connect, idle, soak };

struct options {
    scenario sc = scenario::pingpong;
    std::string name = "pingpong";
    bool raw = false;
    std::string host = "127.0.0.1";
    int port = 8080;
    int connections = -1;  // -1: the scenario's default
    int inflight = -1;
    long long size = -1;
    int binary = -1;       // -1 default, 0 text, 1 binary
    bool unicode = false;  // text that is mostly not ASCII (2-, 3- and 4-byte characters)
    u64 messages = 0;
    u64 count = 10000;
    std::vector<u64> steps{10000};
    int sources = 1;
    int max_pending = 128;
    double timeout = 300;
    u64 rounds = 0;       // soak: 0 = the default (10, or unbounded with --duration)
    double duration = 0;  // soak: no new round after this many seconds of traffic (0: off)
    int churn = 10;       // soak: percentage of the connections replaced each round
};

double now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct xorshift {
    u64 s;
    u64 next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 2685821657736338717ULL;
    }
};

std::string base64(const u8* p, std::size_t n) {
    std::string out(4 * ((n + 2) / 3) + 1, '\0');
    const int len =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n));
    out.resize(len > 0 ? static_cast<std::size_t>(len) : 0);
    return out;
}

std::string expected_accept(std::string_view key) {
    std::string s(key);
    s += guid;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(s.data(), s.size(), digest, &len, EVP_sha1(), nullptr) != 1) return {};
    return base64(digest, len);
}

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

bool has_token(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        const auto comma = list.find(',');
        if (iequals(trim(list.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

// Checks a 101 response head (without the final empty line); returns an error or "".
std::string check_response(std::string_view head, std::string_view key) {
    auto eol = head.find("\r\n");
    const auto status = head.substr(0, eol);
    if (status.substr(0, 9) != "HTTP/1.1 " || status.substr(9, 3) != "101")
        return "status line is not 101: '" + std::string(status) + "'";
    int upgrade = 0, connection = 0, accept = 0;
    while (eol != std::string_view::npos) {
        head.remove_prefix(eol + 2);
        eol = head.find("\r\n");
        const auto line = head.substr(0, eol);
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) return "malformed header line";
        const auto name = line.substr(0, colon);
        const auto value = trim(line.substr(colon + 1));
        if (iequals(name, "upgrade")) {
            if (!iequals(value, "websocket")) return "Upgrade is not websocket";
            ++upgrade;
        } else if (iequals(name, "connection")) {
            if (has_token(value, "upgrade")) ++connection;
        } else if (iequals(name, "sec-websocket-accept")) {
            if (value != expected_accept(key)) return "wrong Sec-WebSocket-Accept";
            ++accept;
        } else if (iequals(name, "sec-websocket-extensions") ||
                   iequals(name, "sec-websocket-protocol")) {
            return "unrequested " + std::string(name);
        }
    }
    if (upgrade != 1) return "no Upgrade: websocket";
    if (connection < 1) return "no Connection: upgrade";
    if (accept != 1) return "no Sec-WebSocket-Accept";
    return {};
}

void mask_copy(u8* dst, const u8* src, std::size_t n, const u8 key[4]) {
    u32 k4;
    std::memcpy(&k4, key, 4);
    const u64 k8 = static_cast<u64>(k4) | (static_cast<u64>(k4) << 32);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        u64 v;
        std::memcpy(&v, src + i, 8);
        v ^= k8;
        std::memcpy(dst + i, &v, 8);
    }
    for (; i < n; ++i)
        dst[i] = static_cast<u8>(src[i] ^ key[i & 3]);
}

// A growable byte buffer without value-initialisation, with a consumed prefix.
struct bytebuf {
    u8* data = nullptr;
    std::size_t size = 0, cap = 0, off = 0;
    bytebuf() = default;
    bytebuf(const bytebuf&) = delete;
    bytebuf& operator=(const bytebuf&) = delete;
    bytebuf(bytebuf&& o) noexcept : data(o.data), size(o.size), cap(o.cap), off(o.off) {
        o.data = nullptr;
        o.size = o.cap = o.off = 0;
    }
    bytebuf& operator=(bytebuf&& o) noexcept {
        if (this != &o) {
            std::free(data);
            data = o.data;
            size = o.size;
            cap = o.cap;
            off = o.off;
            o.data = nullptr;
            o.size = o.cap = o.off = 0;
        }
        return *this;
    }
    ~bytebuf() { std::free(data); }
    u8* grow(std::size_t n) {
        if (size + n > cap) {
            std::size_t c = std::max<std::size_t>(cap * 2, 256);
            while (c < size + n)
                c *= 2;
            auto* p = static_cast<u8*>(std::realloc(data, c));
            if (p == nullptr) {
                std::fputs("loadgen: out of memory\n", stderr);
                std::exit(3);
            }
            data = p;
            cap = c;
        }
        u8* p = data + size;
        size += n;
        return p;
    }
    std::size_t pending() const { return size - off; }
    void reset() {
        size = off = 0;
        if (cap > (1u << 22)) {  // do not keep a huge buffer forever
            std::free(data);
            data = nullptr;
            cap = 0;
        }
    }
    void release() {
        std::free(data);
        data = nullptr;
        size = cap = off = 0;
    }
};

enum class cstate : u8 { unused, connecting, handshake, open, closing };

struct conn {
    int fd = -1;
    u32 gen = 0;
    cstate st = cstate::unused;
    bool pollout = false;
    bool close_sent = false, close_got = false;
    bool shut_pending = false;  // raw: shutdown(SHUT_WR) once the output is written
    std::string key;            // ws: our Sec-WebSocket-Key
    std::string head;           // ws: response head received so far
    u64 hs_got = 0;             // raw: handshake echo bytes verified
    bytebuf out;
    // frame parser (server frames are never masked)
    u8 hdr[10]{};
    u8 hdr_len = 0, hdr_need = 2;
    bool in_frame = false, fin = false;
    u8 op = 0;
    u64 frame_left = 0;
    bool msg_open = false;
    u64 msg_off = 0;
    std::string ctrl;
    u64 sent = 0, recvd = 0;  // messages
    // soak
    bool churn = false;            // closes and is replaced once this round's echo is back
    u32 pings = 0, pongs = 0;      // pings sent, matching pongs received
    double t_open = 0, t_msg = 0;  // connect started, last message sent
};

class loadgen {
  public:
    explicit loadgen(const options& o) : o_(o) {}
    int run();

  private:
    // connections
    bool open_conn(std::size_t i);
    void close_conn(conn& c);
    void set_pollout(std::size_t i, bool on);
    void flush(std::size_t i);
    void on_event(std::size_t i, u32 events);
    bool on_bytes(std::size_t i, const u8* p, std::size_t n);
    bool on_handshake_bytes(std::size_t i, const u8* p, std::size_t n, std::size_t& used);
    bool on_frame_bytes(std::size_t i, const u8* p, std::size_t n);
    bool on_raw_bytes(std::size_t i, const u8* p, std::size_t n);
    bool finish_frame(std::size_t i);
    void on_upgraded(std::size_t i);
    void on_message(std::size_t i);
    void on_closed(std::size_t i);
    void begin_close(std::size_t i);
    void send_message(std::size_t i);
    void append_frame(bytebuf& out, u8 op, const u8* p, std::size_t n, bool fin = true);
    void fail(std::size_t i, const std::string& what);
    // phases
    void start_traffic();
    void open_more();
    void step_ready();
    void on_stdin();
    void soak_open();
    void soak_round();
    void soak_check();
    // payloads: message n of connection i. Except in soak every message has the size and type
    // of the run; soak derives them from a hash of (connection, generation, n).
    // (--unicode: the pool is whole 4-byte groups of characters, so a payload starts at a
    // multiple of 4 and, its size a multiple of 4 too, ends on a character boundary.)
    const u8* payload(std::size_t id, u64 n) const {
        const u64 at = (n * 4099 + id * 977) % pool_spread;
        return pool_.data() + (o_.unicode ? at & ~u64{3} : at);
    }
    const u8* hs_payload(std::size_t id) const { return payload(id, 0xFFFFFF); }
    u64 msg_hash(std::size_t i, u64 n) const;
    std::size_t msg_size(std::size_t i, u64 n) const;
    u8 msg_type(std::size_t i, u64 n) const;
    const u8* msg_payload(std::size_t i, u64 n) const;
    void ping_body(std::size_t i, u32 k, u8 out[8]) const;
    void print_result();

    options o_;
    int ep_ = -1;
    sockaddr_in dst_{};
    std::vector<conn> conns_;
    std::vector<u8> pool_;
    std::vector<u8> pool_bin_;  // soak: binary payloads (pool_ holds the text ones)
    std::vector<u8> rbuf_;
    xorshift rng_{0x9E3779B97F4A7C15ULL};
    std::string request_tail_;  // upgrade request after the key
    std::size_t hs_len_ = 0;    // length of an upgrade request (raw handshake echo size)
    u8 type_ = 1;               // 1 text, 2 binary
    std::size_t size_ = 0;      // soak: the largest message
    unsigned size_bits_ = 0;    // soak: bits of size_ - 1 (a message has 1 .. 2^size_bits_ bytes)
    int inflight_ = 1;
    u64 total_ = 0;  // messages to echo in this phase
    u64 total_sent_ = 0, total_recv_ = 0;
    u64 opened_ = 0, pending_ = 0, upgraded_ = 0, closed_ = 0, finished_ = 0;
    u64 bytes_ = 0;  // payload bytes echoed and verified
    std::size_t step_ = 0;
    // soak
    bool in_rounds_ = false;
    u64 round_ = 0, round_left_ = 0, churn_left_ = 0, fragmented_ = 0, pings_ = 0;
    std::vector<std::size_t> perm_, reopen_;
    double max_upgrade_ = 0, max_echo_ = 0;
    bool waiting_stdin_ = false, stdin_eof_ = false, closing_all_ = false, done_ = false;
    std::string error_;
    double t0_ = 0, t_traffic_ = 0, t_traffic_end_ = 0, t_end_ = 0;
};

void loadgen::fail(std::size_t i, const std::string& what) {
    if (error_.empty()) error_ = "connection " + std::to_string(i) + ": " + what;
    done_ = true;
}

bool loadgen::open_conn(std::size_t i) {
    conn& c = conns_[i];
    const u32 gen = c.gen + 1;
    c = conn{};
    c.gen = gen;
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
        fail(i, std::string("socket: ") + std::strerror(errno));
        return false;
    }
    int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o_.sources > 1) {
        ::setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sockaddr_in src{};
        src.sin_family = AF_INET;
        src.sin_addr.s_addr =
            htonl(0x7F000001u + static_cast<u32>(opened_ % static_cast<u64>(o_.sources)));
        if (::bind(c.fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
            fail(i, std::string("bind: ") + std::strerror(errno));
            return false;
        }
    }
    ++opened_;
    ++pending_;
    c.st = cstate::connecting;
    if (o_.sc == scenario::soak) c.t_open = now();
    if (::connect(c.fd, reinterpret_cast<sockaddr*>(&dst_), sizeof dst_) != 0 &&
        errno != EINPROGRESS) {
        fail(i, std::string("connect: ") + std::strerror(errno));
        return false;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = (static_cast<u64>(c.gen) << 32) | i;
    c.pollout = true;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
        fail(i, std::string("epoll_ctl: ") + std::strerror(errno));
        return false;
    }
    return true;
}

void loadgen::close_conn(conn& c) {
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
    c.st = cstate::unused;
    c.out.release();
    std::string().swap(c.head);
    std::string().swap(c.ctrl);
}

void loadgen::set_pollout(std::size_t i, bool on) {
    conn& c = conns_[i];
    if (c.pollout == on) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u64 = (static_cast<u64>(c.gen) << 32) | i;
    ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    c.pollout = on;
}

void loadgen::flush(std::size_t i) {
    conn& c = conns_[i];
    while (c.out.pending() > 0) {
        const ssize_t n = ::send(c.fd, c.out.data + c.out.off, c.out.pending(), MSG_NOSIGNAL);
        if (n > 0) {
            c.out.off += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_pollout(i, true);
            return;
        }
        if (n < 0 && errno == EINTR) continue;
        fail(i, std::string("send: ") + std::strerror(errno));
        return;
    }
    c.out.reset();
    set_pollout(i, false);
    if (c.shut_pending) {
        c.shut_pending = false;
        if (::shutdown(c.fd, SHUT_WR) != 0)
            fail(i, std::string("shutdown: ") + std::strerror(errno));
    }
}

void loadgen::append_frame(bytebuf& out, u8 op, const u8* p, std::size_t n, bool fin) {
    u8 hdr[14];
    std::size_t h = 0;
    hdr[h++] = static_cast<u8>((fin ? 0x80 : 0) | op);
    if (n < 126) {
        hdr[h++] = static_cast<u8>(0x80 | n);
    } else if (n <= 0xFFFF) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = static_cast<u8>(n >> 8);
        hdr[h++] = static_cast<u8>(n);
    } else {
        hdr[h++] = 0x80 | 127;
        for (int s = 56; s >= 0; s -= 8)
            hdr[h++] = static_cast<u8>(static_cast<u64>(n) >> s);
    }
    const u32 key = static_cast<u32>(rng_.next() >> 17);
    std::memcpy(hdr + h, &key, 4);
    h += 4;
    u8* dst = out.grow(h + n);
    std::memcpy(dst, hdr, h);
    mask_copy(dst + h, p, n, hdr + h - 4);
}

u64 loadgen::msg_hash(std::size_t i, u64 n) const {  // splitmix64 of (generation, i, n)
    u64 z = (static_cast<u64>(conns_[i].gen) << 44) ^ (static_cast<u64>(i) << 24) ^ n;
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

std::size_t loadgen::msg_size(std::size_t i, u64 n) const {
    if (o_.sc != scenario::soak || size_ <= 1) return size_;
    // log-uniform over 1 .. size_: a random number of bits, then a random value below it
    const u64 h = msg_hash(i, n);
    const unsigned bits = static_cast<unsigned>((h >> 4) % (size_bits_ + 1));
    return static_cast<std::size_t>(std::min<u64>(size_, 1 + ((h >> 16) & ((u64{1} << bits) - 1))));
}

u8 loadgen::msg_type(std::size_t i, u64 n) const {
    if (o_.sc != scenario::soak) return type_;
    return ((msg_hash(i, n) >> 8) & 1) ? 2 : 1;
}

const u8* loadgen::msg_payload(std::size_t i, u64 n) const {
    const u8* p = payload(i, n);
    if (o_.sc == scenario::soak && msg_type(i, n) == 2) p = pool_bin_.data() + (p - pool_.data());
    return p;
}

void loadgen::ping_body(std::size_t i, u32 k, u8 out[8]) const {
    const u64 h = msg_hash(i, 0xF00000000ULL + k);
    std::memcpy(out, &h, 8);
}

void loadgen::send_message(std::size_t i) {
    conn& c = conns_[i];
    const u64 n = c.sent;
    const u8* p = msg_payload(i, n);
    const std::size_t size = msg_size(i, n);
    const u8 type = msg_type(i, n);
    ++c.sent;
    ++total_sent_;
    if (o_.sc == scenario::soak) c.t_msg = now();
    if (o_.raw) {
        std::memcpy(c.out.grow(size), p, size);
        return;
    }
    // Every scenario but soak sends each message as one frame (the workloads).
    if (o_.sc != scenario::soak) {
        append_frame(c.out, type, p, size);
        return;
    }
    const u64 h = msg_hash(i, n);
    if (((h >> 9) & 3) != 0) {
        append_frame(c.out, type, p, size);
        return;
    }
    // soak: a quarter of the messages in 2..4 fragments (some empty), half of those with a
    // Ping after one of the fragments but the last
    ++fragmented_;
    const std::size_t frags = 2 + static_cast<std::size_t>((h >> 11) % 3);
    const std::size_t ping_after =
        ((h >> 13) & 1) ? static_cast<std::size_t>((h >> 14) % (frags - 1)) : frags;
    std::size_t off = 0;
    for (std::size_t f = 0; f < frags; ++f) {
        const std::size_t end = size * (f + 1) / frags;
        append_frame(c.out, f == 0 ? type : 0, p + off, end - off, f + 1 == frags);
        off = end;
        if (f == ping_after) {
            u8 body[8];
            ping_body(i, c.pings, body);
            ++c.pings;
            ++pings_;
            append_frame(c.out, 0x9, body, sizeof body);
        }
    }
}

void loadgen::begin_close(std::size_t i) {
    conn& c = conns_[i];
    c.st = cstate::closing;
    c.close_sent = true;
    if (o_.raw) {
        c.shut_pending = true;
        flush(i);
        return;
    }
    const u8 body[2] = {0x03, 0xE8};  // 1000
    append_frame(c.out, 0x8, body, 2);
    flush(i);
}

void loadgen::on_upgraded(std::size_t i) {
    conn& c = conns_[i];
    c.st = cstate::open;
    --pending_;
    ++upgraded_;
    if (o_.sc == scenario::connect) {
        begin_close(i);
        return;
    }
    if (o_.sc == scenario::soak) {
        std::string().swap(c.head);
        max_upgrade_ = std::max(max_upgrade_, now() - c.t_open);
        if (!in_rounds_) {
            if (upgraded_ == conns_.size())
                soak_round();
            else
                soak_open();
        } else {  // a replacement
            --churn_left_;
            soak_open();
            soak_check();
        }
        return;
    }
    if (o_.sc == scenario::idle) {
        std::string().swap(c.head);
        if (upgraded_ == o_.steps[step_])
            step_ready();
        else
            open_more();
        return;
    }
    if (upgraded_ == conns_.size()) start_traffic();
}

void loadgen::start_traffic() {
    t_traffic_ = now();
    for (std::size_t i = 0; i < conns_.size() && !done_; ++i) {
        for (int k = 0; k < inflight_ && total_sent_ < total_; ++k)
            send_message(i);
        flush(i);
    }
}

void loadgen::on_message(std::size_t i) {
    conn& c = conns_[i];
    bytes_ += msg_size(i, c.recvd);
    ++c.recvd;
    ++total_recv_;
    if (o_.sc == scenario::soak) {
        max_echo_ = std::max(max_echo_, now() - c.t_msg);
        --round_left_;
        if (c.churn) begin_close(i);
        soak_check();
        return;
    }
    if (total_sent_ < total_) {
        send_message(i);
    } else if (total_recv_ == total_) {
        t_traffic_end_ = now();
        closing_all_ = true;
        for (std::size_t j = 0; j < conns_.size(); ++j)
            if (conns_[j].st == cstate::open && j != i) begin_close(j);
        begin_close(i);  // last: the caller flushes it
    }
}

void loadgen::on_closed(std::size_t i) {
    close_conn(conns_[i]);
    ++closed_;
    if (o_.sc == scenario::soak) {
        if (closing_all_) {
            if (closed_ == opened_) done_ = true;
        } else {  // churn: replace it
            reopen_.push_back(i);
            soak_open();
        }
        return;
    }
    if (o_.sc == scenario::connect) {
        ++finished_;
        if (opened_ < o_.count)
            open_conn(i);
        else if (finished_ == o_.count)
            done_ = true;
        return;
    }
    if (closed_ == conns_.size()) done_ = true;
}

void loadgen::open_more() {
    const u64 target = o_.steps[step_];
    while (!done_ && opened_ < target && pending_ < static_cast<u64>(o_.max_pending))
        open_conn(static_cast<std::size_t>(opened_));
}

// Soak: the first connections in index order, then the replacements of the churned ones; at
// most max_pending connects + upgrades outstanding.
void loadgen::soak_open() {
    const auto max_pending = static_cast<u64>(o_.max_pending);
    while (!done_ && opened_ < conns_.size() && pending_ < max_pending)
        open_conn(static_cast<std::size_t>(opened_));
    while (!done_ && !reopen_.empty() && pending_ < max_pending) {
        const std::size_t i = reopen_.back();
        reopen_.pop_back();
        open_conn(i);
    }
}

// One message on every connection, and a fresh random set of them to churn once their echo
// is back (a partial Fisher-Yates shuffle of perm_ picks exactly churn % of them).
void loadgen::soak_round() {
    if (!in_rounds_) {
        in_rounds_ = true;
        t_traffic_ = now();
    }
    ++round_;
    const std::size_t n = conns_.size();
    const std::size_t k = n * static_cast<std::size_t>(o_.churn) / 100;
    for (std::size_t j = 0; j < k; ++j) {
        std::swap(perm_[j], perm_[j + static_cast<std::size_t>(rng_.next() % (n - j))]);
        conns_[perm_[j]].churn = true;
    }
    churn_left_ = k;
    round_left_ = n;
    for (std::size_t i = 0; i < n && !done_; ++i) {
        send_message(i);
        flush(i);
    }
}

// A round ends once every echo is back and every churned connection has been replaced by an
// upgraded one; then the next round, or the final close of every connection.
void loadgen::soak_check() {
    if (done_ || closing_all_ || round_left_ > 0 || churn_left_ > 0) return;
    const u64 rounds = o_.rounds > 0 ? o_.rounds : (o_.duration > 0 ? ~0ULL : 10);
    if (round_ < rounds && (o_.duration <= 0 || now() - t_traffic_ < o_.duration)) {
        soak_round();
        return;
    }
    t_traffic_end_ = now();
    closing_all_ = true;
    for (std::size_t j = 0; j < conns_.size() && !done_; ++j)
        if (conns_[j].st == cstate::open) begin_close(j);
}

void loadgen::step_ready() {
    std::printf("{\"event\":\"ready\",\"connections\":%llu,\"elapsed_s\":%.6f}\n",
                static_cast<unsigned long long>(upgraded_), now() - t0_);
    std::fflush(stdout);
    if (stdin_eof_)
        on_stdin();
    else
        waiting_stdin_ = true;
}

void loadgen::on_stdin() {  // the runner says "go on" (a line, or EOF)
    waiting_stdin_ = false;
    if (step_ + 1 < o_.steps.size()) {
        ++step_;
        open_more();
        return;
    }
    // Liveness check: one message echoed on every idle connection, then close them all.
    inflight_ = 1;
    total_ = conns_.size();
    start_traffic();
}

bool loadgen::on_handshake_bytes(std::size_t i, const u8* p, std::size_t n, std::size_t& used) {
    conn& c = conns_[i];
    if (o_.raw) {
        used = std::min<std::size_t>(n, hs_len_ - c.hs_got);
        if (std::memcmp(p, hs_payload(i) + c.hs_got, used) != 0) {
            fail(i, "raw handshake echo differs");
            return false;
        }
        c.hs_got += used;
        if (c.hs_got == hs_len_) on_upgraded(i);
        return true;
    }
    const std::size_t old = c.head.size();
    c.head.append(reinterpret_cast<const char*>(p), n);
    const auto end = c.head.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
    if (end == std::string::npos) {
        used = n;
        if (c.head.size() > 8192) {
            fail(i, "response head too long");
            return false;
        }
        return true;
    }
    used = end + 4 - old;
    const auto err = check_response(std::string_view(c.head).substr(0, end), c.key);
    if (!err.empty()) {
        fail(i, "handshake: " + err);
        return false;
    }
    on_upgraded(i);
    return true;
}

bool loadgen::finish_frame(std::size_t i) {
    conn& c = conns_[i];
    c.in_frame = false;
    c.hdr_len = 0;
    c.hdr_need = 2;
    if (c.op & 0x8) {
        if (c.op == 0x8) {
            if (c.close_got) return fail(i, "second Close"), false;
            c.close_got = true;
            if (!c.close_sent) return fail(i, "unexpected Close from the server"), false;
            if (c.ctrl.size() < 2) return fail(i, "Close without a code"), false;
            const unsigned code = (static_cast<unsigned>(static_cast<u8>(c.ctrl[0])) << 8) |
                                  static_cast<u8>(c.ctrl[1]);
            if (code != 1000) return fail(i, "Close code " + std::to_string(code)), false;
        } else if (c.op == 0x9) {  // answer pings
            append_frame(c.out, 0xA, reinterpret_cast<const u8*>(c.ctrl.data()), c.ctrl.size());
        } else if (c.pongs < c.pings) {  // a Pong: the answer to our oldest unanswered Ping?
            u8 body[8];
            ping_body(i, c.pongs, body);
            if (c.ctrl.size() == sizeof body && std::memcmp(c.ctrl.data(), body, sizeof body) == 0)
                ++c.pongs;  // anything else is an unsolicited Pong (RFC 6455 5.5.3), ignored
        }
        c.ctrl.clear();
        return true;
    }
    if (!c.fin) {
        c.msg_open = true;
        return true;
    }
    if (c.msg_off != msg_size(i, c.recvd))
        return fail(i, "echoed message has a different size"), false;
    c.msg_open = false;
    c.msg_off = 0;
    on_message(i);
    return true;
}

bool loadgen::on_frame_bytes(std::size_t i, const u8* p, std::size_t n) {
    conn& c = conns_[i];
    while (n > 0) {
        if (c.close_got) return fail(i, "data after Close"), false;
        if (!c.in_frame) {
            while (n > 0 && c.hdr_len < c.hdr_need) {
                c.hdr[c.hdr_len++] = *p++;
                --n;
                if (c.hdr_len == 2) {
                    const u8 len7 = c.hdr[1] & 0x7F;
                    if (c.hdr[1] & 0x80) return fail(i, "masked frame from the server"), false;
                    c.hdr_need = static_cast<u8>(len7 == 126 ? 4 : len7 == 127 ? 10 : 2);
                }
            }
            if (c.hdr_len < c.hdr_need) return true;
            const u8 b0 = c.hdr[0];
            if (b0 & 0x70) return fail(i, "RSV bit set"), false;
            c.fin = (b0 & 0x80) != 0;
            c.op = b0 & 0x0F;
            u64 len = c.hdr[1] & 0x7F;
            if (len == 126)
                len = (static_cast<u64>(c.hdr[2]) << 8) | c.hdr[3];
            else if (len == 127) {
                len = 0;
                for (int k = 2; k < 10; ++k)
                    len = (len << 8) | c.hdr[k];
            }
            if (c.op & 0x8) {
                if (!c.fin || len > 125) return fail(i, "bad control frame"), false;
                if (c.op != 0x8 && c.op != 0x9 && c.op != 0xA)
                    return fail(i, "reserved opcode"), false;
            } else if (c.op == 0) {
                if (!c.msg_open) return fail(i, "continuation without a message"), false;
            } else {
                if (c.msg_open) return fail(i, "new message inside a fragmented one"), false;
                if (c.op != msg_type(i, c.recvd))
                    return fail(i, "echoed opcode " + std::to_string(c.op) + ", sent " +
                                       std::to_string(msg_type(i, c.recvd))),
                           false;
            }
            if (!(c.op & 0x8)) {
                if (c.st != cstate::open && !(c.st == cstate::closing && !c.close_got))
                    return fail(i, "data frame in the wrong state"), false;
                if (c.recvd >= c.sent) return fail(i, "echo of a message never sent"), false;
                if (c.msg_off + len > msg_size(i, c.recvd))
                    return fail(i, "echoed message too long"), false;
            }
            c.frame_left = len;
            c.in_frame = true;
            if (len == 0) {
                if (!finish_frame(i)) return false;
                continue;
            }
        }
        const std::size_t m = static_cast<std::size_t>(std::min<u64>(n, c.frame_left));
        if (c.op & 0x8) {
            c.ctrl.append(reinterpret_cast<const char*>(p), m);
        } else {
            if (std::memcmp(p, msg_payload(i, c.recvd) + c.msg_off, m) != 0)
                return fail(i, "echoed bytes differ (message " + std::to_string(c.recvd) + ")"),
                       false;
            c.msg_off += m;
        }
        p += m;
        n -= m;
        c.frame_left -= m;
        if (c.frame_left == 0 && !finish_frame(i)) return false;
    }
    return true;
}

bool loadgen::on_raw_bytes(std::size_t i, const u8* p, std::size_t n) {
    conn& c = conns_[i];
    while (n > 0) {
        if (c.recvd >= c.sent) return fail(i, "echo of bytes never sent"), false;
        const std::size_t size = msg_size(i, c.recvd);
        const std::size_t m = std::min<std::size_t>(n, size - c.msg_off);
        if (std::memcmp(p, msg_payload(i, c.recvd) + c.msg_off, m) != 0)
            return fail(i, "echoed bytes differ (message " + std::to_string(c.recvd) + ")"), false;
        c.msg_off += m;
        p += m;
        n -= m;
        if (c.msg_off == size) {
            c.msg_off = 0;
            on_message(i);
        }
    }
    return true;
}

bool loadgen::on_bytes(std::size_t i, const u8* p, std::size_t n) {
    conn& c = conns_[i];
    if (c.st == cstate::handshake) {
        std::size_t used = 0;
        if (!on_handshake_bytes(i, p, n, used)) return false;
        p += used;
        n -= used;
        if (n == 0) return true;
        if (c.st == cstate::handshake) return true;
    }
    return o_.raw ? on_raw_bytes(i, p, n) : on_frame_bytes(i, p, n);
}

void loadgen::on_event(std::size_t i, u32 events) {
    conn& c = conns_[i];
    if (c.st == cstate::connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) return fail(i, std::string("connect: ") + std::strerror(err));
        if (!(events & EPOLLOUT)) return;
        c.st = cstate::handshake;
        if (o_.raw) {
            std::memcpy(c.out.grow(hs_len_), hs_payload(i), hs_len_);
        } else {
            u8 raw_key[16];
            if (RAND_bytes(raw_key, sizeof raw_key) != 1) return fail(i, "RAND_bytes failed");
            c.key = base64(raw_key, sizeof raw_key);
            std::string req =
                "GET / HTTP/1.1\r\nHost: " + o_.host + ":" + std::to_string(o_.port) +
                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + c.key +
                request_tail_;
            std::memcpy(c.out.grow(req.size()), req.data(), req.size());
        }
        // switch from EPOLLOUT-only to EPOLLIN (+EPOLLOUT while output is pending)
        c.pollout = true;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u64 = (static_cast<u64>(c.gen) << 32) | i;
        ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
        flush(i);
        return;
    }
    if (events & EPOLLOUT) {
        flush(i);
        if (done_) return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    for (int rounds = 0; rounds < 8 && !done_; ++rounds) {
        const ssize_t n = ::recv(c.fd, rbuf_.data(), rbuf_.size(), 0);
        if (n > 0) {
            if (!on_bytes(i, rbuf_.data(), static_cast<std::size_t>(n))) return;
            if (static_cast<std::size_t>(n) < rbuf_.size()) break;
            continue;
        }
        if (n == 0) {
            if (c.st != cstate::closing) return fail(i, "unexpected EOF");
            if (!o_.raw && !c.close_got) return fail(i, "EOF before the server's Close");
            if (o_.raw && c.msg_off != 0) return fail(i, "EOF inside a message");
            if (c.recvd != c.sent) return fail(i, "EOF with echoes missing");
            if (c.pongs != c.pings) return fail(i, "EOF with Pongs missing");
            on_closed(i);
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        return fail(i, std::string("recv: ") + std::strerror(errno));
    }
    if (c.fd >= 0 && c.out.pending() > 0) flush(i);
}

void loadgen::print_result() {
    const double wall =
        t_traffic_ > 0 ? (t_traffic_end_ > 0 ? t_traffic_end_ : t_end_) - t_traffic_ : 0.0;
    const bool soak = o_.sc == scenario::soak;
    const char* type = soak ? "mixed" : type_ == 2 ? "binary" : "text";
    using ull = unsigned long long;
    std::printf(
        "{\"tool\":\"loadgen\",\"scenario\":\"%s\",\"mode\":\"%s\",\"connections\":%llu,"
        "\"inflight\":%d,\"size\":%zu,\"type\":\"%s\",\"messages\":%llu,\"bytes\":%llu,"
        "\"connects\":%llu,\"wall_s\":%.6f,\"total_s\":%.6f,\"rate_per_s\":%.1f,"
        "\"opened\":%llu,\"closed\":%llu,\"rounds\":%llu,\"fragmented\":%llu,\"pings\":%llu,"
        "\"ramp_s\":%.6f,\"max_upgrade_ms\":%.3f,\"max_echo_ms\":%.3f,\"errors\":%d,"
        "\"error\":\"",
        o_.name.c_str(), o_.raw ? "raw" : "ws",
        static_cast<ull>(o_.sc == scenario::connect || soak ? o_.connections : upgraded_),
        inflight_, size_, type, static_cast<ull>(total_recv_), static_cast<ull>(bytes_),
        static_cast<ull>(o_.sc == scenario::connect ? finished_ : upgraded_), wall, t_end_ - t0_,
        wall > 0 ? static_cast<double>(o_.sc == scenario::connect ? finished_ : total_recv_) / wall
                 : 0.0,
        static_cast<ull>(opened_), static_cast<ull>(closed_), static_cast<ull>(round_),
        static_cast<ull>(fragmented_), static_cast<ull>(pings_),
        t_traffic_ > 0 ? t_traffic_ - t0_ : 0.0, max_upgrade_ * 1e3, max_echo_ * 1e3,
        error_.empty() ? 0 : 1);
    for (char ch : error_) {
        if (ch == '"' || ch == '\\') std::putchar('\\');
        std::putchar(static_cast<unsigned char>(ch) < 0x20 ? ' ' : ch);
    }
    std::printf("\"}\n");
    std::fflush(stdout);
}

int loadgen::run() {
    // descriptors: raise the soft limit to the hard one
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    dst_.sin_family = AF_INET;
    dst_.sin_port = htons(static_cast<std::uint16_t>(o_.port));
    if (::inet_pton(AF_INET, o_.host.c_str(), &dst_.sin_addr) != 1) {
        std::fprintf(stderr, "loadgen: bad IPv4 address '%s'\n", o_.host.c_str());
        return 2;
    }
    // scenario defaults
    int conns = 64, k = 1;
    long long size = 32;
    bool binary = false;
    u64 messages = 100000;
    switch (o_.sc) {
        case scenario::pingpong:
            break;
        case scenario::pipeline:
            conns = 8, k = 64, size = 64, messages = 1000000;
            break;
        case scenario::large:
            conns = 1, size = 1 << 20, binary = true, messages = 200;
            break;
        case scenario::connect:
            conns = 16;
            break;
        case scenario::idle:
            break;
        case scenario::soak:
            conns = 10000, size = 8192;
            break;
    }
    if (o_.connections > 0) conns = o_.connections;
    if (o_.inflight > 0) k = o_.inflight;
    if (o_.size >= 0) size = o_.size;
    if (o_.binary >= 0) binary = o_.binary == 1;
    if (o_.messages > 0) messages = o_.messages;
    o_.connections = conns;
    inflight_ = k;
    size_ = static_cast<std::size_t>(size);
    type_ = binary ? 2 : 1;
    total_ = messages;
    if (o_.sc == scenario::soak) {
        inflight_ = 1;
        type_ = 1;  // pool_ holds the text payloads, pool_bin_ the binary ones
        while (size_bits_ < 63 && (u64{1} << size_bits_) < size_)
            ++size_bits_;
    }
    if (o_.unicode && (type_ != 1 || size_ % 4 != 0 || o_.sc == scenario::soak)) {
        std::fputs("loadgen: --unicode needs text messages of a multiple of 4 bytes\n", stderr);
        return 2;
    }
    if (size_ == 0 && o_.raw) {
        std::fputs("loadgen: --raw needs --size > 0\n", stderr);
        return 2;
    }
    request_tail_ = "\r\nSec-WebSocket-Version: 13\r\n\r\n";
    hs_len_ = std::string("GET / HTTP/1.1\r\nHost: " + o_.host + ":" + std::to_string(o_.port) +
                          "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ")
                  .size() +
              24 + request_tail_.size();
    // payload pool: printable ASCII for text (valid UTF-8), random bytes for binary
    pool_.resize(std::max<std::size_t>(size_, hs_len_) + pool_spread);
    xorshift prng{0x2545F4914F6CDD1DULL};
    if (o_.unicode) {
        // Groups of 4 bytes, each whole characters: one of 4 bytes (U+1F600..), a 3-byte one
        // (U+4E00..) and a space, two of 2 bytes (U+0400..), or four ASCII letters.
        static constexpr u8 groups[][4] = {{0xF0, 0x9F, 0x98, 0x80}, {0xF0, 0x9F, 0x9A, 0x80},
                                           {0xE4, 0xB8, 0x96, 0x20}, {0xE7, 0x95, 0x8C, 0x20},
                                           {0xD0, 0x9F, 0xD1, 0x80}, {0xD0, 0xB8, 0xD0, 0xB2},
                                           {0x6F, 0x6B, 0x21, 0x20}};
        for (std::size_t i = 0; i + 4 <= pool_.size(); i += 4)
            std::memcpy(&pool_[i], groups[(prng.next() >> 24) % std::size(groups)], 4);
    } else {
        for (auto& b : pool_) {
            const u64 r = prng.next() >> 24;
            b = type_ == 1 ? static_cast<u8>(0x20 + r % 95) : static_cast<u8>(r);
        }
    }
    if (o_.sc == scenario::soak) {
        pool_bin_.resize(pool_.size());
        for (auto& b : pool_bin_)
            b = static_cast<u8>(prng.next() >> 24);
    }
    rbuf_.resize(256 * 1024);
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) {
        std::perror("loadgen: epoll_create1");
        return 2;
    }
    t0_ = now();
    if (o_.sc == scenario::idle) {
        std::sort(o_.steps.begin(), o_.steps.end());
        conns_.resize(o_.steps.back());
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = ~0ULL;
        if (::epoll_ctl(ep_, EPOLL_CTL_ADD, 0, &ev) != 0) stdin_eof_ = true;  // not pollable
        open_more();
    } else if (o_.sc == scenario::soak) {
        conns_.resize(static_cast<std::size_t>(conns));
        perm_.resize(conns_.size());
        for (std::size_t i = 0; i < perm_.size(); ++i)
            perm_[i] = i;
        soak_open();
    } else if (o_.sc == scenario::connect) {
        conns_.resize(static_cast<std::size_t>(conns));
        t_traffic_ = t0_;
        for (std::size_t i = 0; i < conns_.size() && opened_ < o_.count; ++i)
            open_conn(i);
    } else {
        conns_.resize(static_cast<std::size_t>(conns));
        for (std::size_t i = 0; i < conns_.size() && !done_; ++i)
            open_conn(i);
    }
    std::vector<epoll_event> events(1024);
    const double deadline = t0_ + o_.timeout;
    while (!done_) {
        const int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 200);
        if (n < 0 && errno != EINTR) {
            error_ = std::string("epoll_wait: ") + std::strerror(errno);
            break;
        }
        for (int e = 0; e < n && !done_; ++e) {
            const u64 tag = events[static_cast<std::size_t>(e)].data.u64;
            if (tag == ~0ULL) {
                char buf[256];
                const ssize_t r = ::read(0, buf, sizeof buf);
                if (r <= 0) {
                    stdin_eof_ = true;
                    ::epoll_ctl(ep_, EPOLL_CTL_DEL, 0, nullptr);
                }
                if (waiting_stdin_ &&
                    (r <= 0 || std::memchr(buf, '\n', static_cast<std::size_t>(r))))
                    on_stdin();
                continue;
            }
            const std::size_t i = static_cast<std::size_t>(tag & 0xFFFFFFFFu);
            if (i >= conns_.size() || conns_[i].gen != static_cast<u32>(tag >> 32) ||
                conns_[i].fd < 0)
                continue;
            on_event(i, events[static_cast<std::size_t>(e)].events);
        }
        if (!done_ && !waiting_stdin_ && now() > deadline) {
            error_ = "timeout after " + std::to_string(o_.timeout) +
                     " s: " + std::to_string(total_recv_) + "/" + std::to_string(total_) +
                     " echoes, " + std::to_string(upgraded_) + " upgraded, " +
                     std::to_string(closed_) + " closed" +
                     (o_.sc == scenario::soak ? ", round " + std::to_string(round_) : "");
            break;
        }
    }
    t_end_ = now();
    print_result();
    return error_.empty() ? 0 : 1;
}

[[noreturn]] void usage(const char* why) {
    if (why != nullptr) std::fprintf(stderr, "loadgen: %s\n", why);
    std::fputs(
        "usage: loadgen --scenario pingpong|pipeline|large|connect|idle|soak [--raw]\n"
        "         [--host 127.0.0.1] [--port 8080] [--connections C] [--inflight K]\n"
        "         [--size BYTES] [--text|--binary|--unicode] [--messages M] [--count N]\n"
        "         [--steps N1,N2,...] [--sources S] [--max-pending P] [--timeout SEC]\n"
        "         [--rounds R] [--duration SEC] [--churn PCT]\n"
        "  soak: C connections (default 10000), R rounds (default 10, or as many as fit in\n"
        "  --duration) of one message of 1 B .. --size (default 8192) each, --churn % (default\n"
        "  10) of them closed and replaced every round; --inflight and --text/--binary are\n"
        "  ignored. --timeout (default 300) bounds the whole run. --unicode: text that is\n"
        "  mostly 2-, 3- and 4-byte characters (--size a multiple of 4).\n",
        stderr);
    std::exit(2);
}

u64 parse_u64(const char* s) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') usage("bad number");
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        const auto val = [&]() -> const char* {
            if (i + 1 >= argc) usage("missing value");
            return argv[++i];
        };
        if (a == "--scenario") {
            o.name = val();
            if (o.name == "pingpong")
                o.sc = scenario::pingpong;
            else if (o.name == "pipeline")
                o.sc = scenario::pipeline;
            else if (o.name == "large")
                o.sc = scenario::large;
            else if (o.name == "connect")
                o.sc = scenario::connect;
            else if (o.name == "idle")
                o.sc = scenario::idle;
            else if (o.name == "soak")
                o.sc = scenario::soak;
            else
                usage("unknown scenario");
        } else if (a == "--raw")
            o.raw = true;
        else if (a == "--host")
            o.host = val();
        else if (a == "--port")
            o.port = static_cast<int>(parse_u64(val()));
        else if (a == "--connections")
            o.connections = static_cast<int>(parse_u64(val()));
        else if (a == "--inflight")
            o.inflight = static_cast<int>(parse_u64(val()));
        else if (a == "--size")
            o.size = static_cast<long long>(parse_u64(val()));
        else if (a == "--text")
            o.binary = 0;
        else if (a == "--binary")
            o.binary = 1;
        else if (a == "--unicode") {
            o.binary = 0;
            o.unicode = true;
        } else if (a == "--messages")
            o.messages = parse_u64(val());
        else if (a == "--count")
            o.count = parse_u64(val());
        else if (a == "--sources")
            o.sources = static_cast<int>(parse_u64(val()));
        else if (a == "--max-pending")
            o.max_pending = static_cast<int>(parse_u64(val()));
        else if (a == "--timeout")
            o.timeout = static_cast<double>(parse_u64(val()));
        else if (a == "--rounds")
            o.rounds = parse_u64(val());
        else if (a == "--duration")
            o.duration = static_cast<double>(parse_u64(val()));
        else if (a == "--churn")
            o.churn = static_cast<int>(parse_u64(val()));
        else if (a == "--steps") {
            o.steps.clear();
            std::string s = val();
            std::size_t pos = 0;
            while (pos <= s.size()) {
                const auto comma = s.find(',', pos);
                const auto part =
                    s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
                o.steps.push_back(parse_u64(part.c_str()));
                if (o.steps.back() == 0) usage("steps must be > 0");
                if (comma == std::string::npos) break;
                pos = comma + 1;
            }
        } else if (a == "--help" || a == "-h")
            usage(nullptr);
        else
            usage("unknown argument");
    }
    if (o.port <= 0 || o.port > 65535) usage("bad port");
    if (o.sources < 1 || o.sources > 254) usage("--sources must be 1..254");
    if (o.max_pending < 1) usage("--max-pending must be > 0");
    if (o.sc == scenario::connect && o.count == 0) usage("--count must be > 0");
    if (o.churn > 100) usage("--churn must be 0..100");
    if (o.sc == scenario::soak && o.connections == 0) usage("--connections must be > 0");
    loadgen g(o);
    return g.run();
}
