// Every protocol version wscoro speaks, over real sockets on 127.0.0.1: hixie-75, hixie-76
// (= hybi-00), hybi-01/02/03, hybi-04, hybi-05, hybi-06, hybi-07, hybi-08 and 13 (RFC 6455).
//
// Shaped like em-websocket's spec/integration/draft{75,76,03,05,06,13}_spec.rb: the exact
// request each generation of clients sends and the exact answer, messages both ways, the
// version's control frames, both closing directions, limits and bad data. Where em-websocket
// is known to be wrong (3+ fragment messages dropped on 05/06, onclose always 1006 on hixie,
// send_binary crashing on hixie, pipelined frames lost) these tests pin the correct behaviour.
//
// The client side is a raw TCP socket with wscoro's own sans-I/O codec in the client role
// (ws_client decodes RFC 6455 only). Handshake answers are checked against known answers
// (the hixie-76 and RFC 6455 samples) and against MD5 computed here with OpenSSL.

#include <doctest/doctest.h>
#include <openssl/evp.h>

#include <array>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cstring>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "server_fixture.hpp"
#include "wscoro/connection.hpp"
#include "wscoro/protocol/codec.hpp"
#include "wscoro/protocol/negotiate.hpp"

using namespace wscoro;
using namespace wscoro::test;
using protocol::event_kind;
using protocol::opcode;

namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

constexpr int every_version[] = {75, 76, 1, 2, 3, 4, 5, 6, 7, 8, 13};

bool is_hixie(int v) {
    return v == 75 || v == 76;
}
bool has_key3(int v) {
    return v == 76 || (v >= 1 && v <= 3);
}
bool has_codes(int v) {
    return v >= 6 && v < 75;
}

// draft-hixie-thewebsocketprotocol-76 §1.3 sample (used for 76).
constexpr std::string_view key1_76 = "4 @1  46546xW%0l 1 5";
constexpr std::string_view key2_76 = "12998 5 Y3 1  .P00";
constexpr std::string_view key3_76 = "^n:ds[4U";
constexpr std::string_view answer_76 = "8jKS'y:G*Co,Wxa-";
// em-websocket reference §2.2 example (used for hybi-01..03).
constexpr std::string_view key1_03 = "x3 7 0 3701Q";
constexpr std::string_view key2_03 = "x3 8 2 7 1 605Q";
constexpr std::string_view key3_03 = "ABCDEFGH";
constexpr unsigned char answer_03[16] = {0xb3, 0x4c, 0xf1, 0xa7, 0xb0, 0x55, 0xc7, 0x83,
                                         0x75, 0xcf, 0xb3, 0x74, 0x49, 0x9a, 0xe7, 0xf6};
// RFC 6455 §1.3 sample (used for 04..13).
constexpr std::string_view sec_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view sec_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// -76 §5.2 steps 4-7, written out here independently of the library.
std::uint32_t key_number(std::string_view key) {
    std::uint64_t digits = 0;
    std::uint64_t spaces = 0;
    for (char ch : key) {
        if (ch >= '0' && ch <= '9')
            digits = digits * 10 + static_cast<std::uint64_t>(ch - '0');
        else if (ch == ' ')
            ++spaces;
    }
    REQUIRE(spaces > 0);
    REQUIRE(digits % spaces == 0);
    return static_cast<std::uint32_t>(digits / spaces);
}

// MD5(be32(n1) || be32(n2) || key3) with OpenSSL directly.
std::string md5_challenge(std::string_view key1, std::string_view key2, std::string_view key3) {
    const std::uint32_t n[2] = {key_number(key1), key_number(key2)};
    unsigned char in[16];
    for (int k = 0; k < 2; ++k)
        for (int i = 0; i < 4; ++i)
            in[k * 4 + i] = static_cast<unsigned char>(n[k] >> (24 - 8 * i));
    REQUIRE(key3.size() == 8);
    std::memcpy(in + 8, key3.data(), 8);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    REQUIRE(EVP_Digest(in, sizeof in, out, &len, EVP_md5(), nullptr) == 1);
    return std::string(reinterpret_cast<const char*>(out), len);
}

// The 16 bytes a -76 / hybi-01..03 server must answer, cross-checked three ways.
std::string expected_challenge(int v) {
    const bool sample = v == 76;
    const auto k1 = sample ? key1_76 : key1_03;
    const auto k2 = sample ? key2_76 : key2_03;
    const auto k3 = sample ? key3_76 : key3_03;
    const std::string ours = md5_challenge(k1, k2, k3);
    if (sample)
        CHECK(ours == answer_76);
    else
        CHECK(ours == std::string(reinterpret_cast<const char*>(answer_03), 16));
    std::array<std::byte, 8> key3{};
    std::memcpy(key3.data(), k3.data(), 8);
    const auto lib = protocol::hixie76_challenge(key_number(k1), key_number(k2), key3);
    REQUIRE(lib);
    CHECK(std::string(reinterpret_cast<const char*>(lib->data()), lib->size()) == ours);
    return ours;
}

struct request_bytes {
    std::string head;
    std::string key3;  // hixie-76 / hybi-01..03: the 8 bytes after the head
};

// The request each generation of clients sends, byte for byte.
request_bytes request_for(int v) {
    if (v == 75)  // draft-hixie-75 §4.1 (Chrome 4, Safari 5.0)
        return {
            "GET /demo?a=1 HTTP/1.1\r\n"
            "Upgrade: WebSocket\r\n"
            "Connection: Upgrade\r\n"
            "Host: example.com\r\n"
            "Origin: http://example.com\r\n"
            "WebSocket-Protocol: sample\r\n"
            "\r\n",
            ""};
    if (has_key3(v)) {  // draft-hixie-76 §1.3; hybi-01..03 add Sec-WebSocket-Draft
        const bool sample = v == 76;
        std::string h =
            "GET /demo HTTP/1.1\r\n"
            "Host: example.com\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key2: ";
        h += sample ? key2_76 : key2_03;
        h += "\r\nSec-WebSocket-Protocol: sample\r\n"
             "Upgrade: WebSocket\r\n"
             "Sec-WebSocket-Key1: ";
        h += sample ? key1_76 : key1_03;
        h += "\r\nOrigin: http://example.com\r\n";
        if (!sample) h += "Sec-WebSocket-Draft: " + std::to_string(v) + "\r\n";
        h += "\r\n";
        return {h, std::string(sample ? key3_76 : key3_03)};
    }
    // hybi-04..10 name the origin Sec-WebSocket-Origin; hybi-11+ / RFC 6455 say Origin.
    std::string h =
        "GET /chat HTTP/1.1\r\n"
        "Host: server.example.com\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: ";
    h += sec_key;
    h += "\r\n";
    h += v == 13 ? "Origin: " : "Sec-WebSocket-Origin: ";
    h += "http://example.com\r\n";
    h += "Sec-WebSocket-Version: " + std::to_string(v) + "\r\n\r\n";
    return {h, ""};
}

// The exact 101 head (hybi-04 adds a random Sec-WebSocket-Nonce, checked separately).
std::string expected_head(int v) {
    if (v == 75)
        return "HTTP/1.1 101 Web Socket Protocol Handshake\r\n"
               "Upgrade: WebSocket\r\n"
               "Connection: Upgrade\r\n"
               "WebSocket-Origin: http://example.com\r\n"
               "WebSocket-Location: ws://example.com/demo?a=1\r\n"
               "WebSocket-Protocol: sample\r\n"
               "\r\n";
    if (has_key3(v))
        return "HTTP/1.1 101 WebSocket Protocol Handshake\r\n"
               "Upgrade: WebSocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Location: ws://example.com/demo\r\n"
               "Sec-WebSocket-Origin: http://example.com\r\n"
               "Sec-WebSocket-Protocol: sample\r\n"
               "\r\n";
    std::string h =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: ";
    h += sec_accept;
    h += "\r\n";
    if (v != 4) h += "\r\n";
    return h;
}

std::string str(const std::vector<std::byte>& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// The exact Close frame a server of version v sends: hixie FF 00; a Close without body on
// 01..05 (opcode 1; FIN set from 04); code + reason on 06 (opcode 1) and 07+ (opcode 8).
std::string server_close_bytes(int v, std::uint16_t code, std::string_view reason) {
    if (is_hixie(v)) return std::string("\xFF\x00", 2);
    std::string body;
    if (has_codes(v) && code != 0) {
        body += static_cast<char>(code >> 8);
        body += static_cast<char>(code & 0xFF);
        body += reason;
    }
    std::string out;
    out += static_cast<char>(v <= 3 ? 0x01 : v <= 6 ? 0x81 : 0x88);
    out += static_cast<char>(body.size());
    return out + body;
}

// A client of one protocol version: a raw socket, and wscoro's codec in the client role.
class draft_client {
  public:
    draft_client(asio::ip::tcp::socket s, int v)
        : sock_(std::move(s)),
          codec_(protocol::role::client, v, protocol::frame_limits{1u << 30, 1u << 30}),
          version_(v) {
        buf_.resize(256 * 1024);
    }

    static asio::awaitable<draft_client> open(asio::ip::tcp::endpoint ep, int v) {
        asio::ip::tcp::socket s(co_await asio::this_coro::executor);
        co_await s.async_connect(ep, asio::use_awaitable);
        s.set_option(asio::ip::tcp::no_delay(true));
        co_return draft_client(std::move(s), v);
    }

    int version() const { return version_; }
    protocol::wire_format format() const { return codec_.format(); }
    void set_hybi04_key(const protocol::hybi04_key& k) { codec_.set_hybi04_key(k); }

    asio::awaitable<void> write(std::span<const std::byte> data) {
        co_await asio::async_write(sock_, asio::buffer(data.data(), data.size()),
                                   asio::use_awaitable);
    }
    asio::awaitable<void> write(std::string_view s) { co_await write(bytes(s)); }

    // One frame in this version's client framing (masked where the version masks).
    std::vector<std::byte> frame(opcode op, std::span<const std::byte> payload, bool fin = true) {
        std::vector<std::byte> out;
        const auto key = next_key();
        const auto ec = codec_.append_frame(out, op, fin, payload, &key);
        REQUIRE_MESSAGE(!ec, ec.message());
        return out;
    }
    std::vector<std::byte> text_frame(std::string_view text, bool fin = true,
                                      opcode op = opcode::text) {
        return frame(op, bytes(text), fin);
    }
    // hixie: FF 00; hybi-01..05: a Close without body; 06+: code and reason (0: no body).
    std::vector<std::byte> close_frame(std::uint16_t code = 0, std::string_view reason = {}) {
        std::vector<std::byte> out;
        const auto key = next_key();
        const auto ec = codec_.append_close(out, code, reason, &key);
        REQUIRE_MESSAGE(!ec, ec.message());
        return out;
    }
    // Where the first header byte of a frame is: after the 4-byte key / nonce on 04..06.
    std::size_t header_offset() const {
        return format() == protocol::wire_format::hybi04 ||
                       format() == protocol::wire_format::hybi05
                   ? 4
                   : 0;
    }

    // The next event decoded from the server's frames, or eof / timeout.
    asio::awaitable<received> next(std::chrono::milliseconds limit = 3000ms) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            std::size_t consumed = 0;
            auto ev = codec_.next(std::span(buf_.data() + begin_, end_ - begin_), consumed);
            begin_ += consumed;
            if (ev.kind != event_kind::need_more) {
                received r;
                r.kind = ev.kind;
                r.type = ev.type;
                r.payload.assign(ev.payload.begin(), ev.payload.end());
                r.code = ev.close_code;
                r.reason = std::string(ev.close_reason);
                r.ec = ev.ec;
                co_return r;
            }
            bool timed_out = false;
            const auto n = co_await read_some(deadline, timed_out);
            if (n == 0) {
                received r;
                r.timeout = timed_out;
                r.eof = !timed_out;
                if (r.eof) close();
                co_return r;
            }
        }
    }

    // Reads up to and including the empty line; later bytes stay buffered.
    asio::awaitable<std::string> read_head(std::chrono::milliseconds limit = 3000ms) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            std::string_view have(reinterpret_cast<const char*>(buf_.data() + begin_),
                                  end_ - begin_);
            if (auto pos = have.find("\r\n\r\n"); pos != std::string_view::npos) {
                std::string head(have.substr(0, pos + 4));
                begin_ += pos + 4;
                co_return head;
            }
            bool timed_out = false;
            if (co_await read_some(deadline, timed_out) == 0) co_return std::string(have);
        }
    }

    // Exactly n bytes (fewer if the server closes or the time runs out).
    asio::awaitable<std::string> read_exact(std::size_t n,
                                            std::chrono::milliseconds limit = 3000ms) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (end_ - begin_ < n) {
            bool timed_out = false;
            if (co_await read_some(deadline, timed_out) == 0) break;
        }
        const auto k = std::min(n, end_ - begin_);
        std::string out(reinterpret_cast<const char*>(buf_.data() + begin_), k);
        begin_ += k;
        co_return out;
    }

    // Everything until the server closes TCP (or the time runs out: `timed_out`).
    asio::awaitable<std::string> read_until_eof(bool& timed_out,
                                                std::chrono::milliseconds limit = 3000ms) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        timed_out = false;
        while (co_await read_some(deadline, timed_out) != 0) {
        }
        std::string out(reinterpret_cast<const char*>(buf_.data() + begin_), end_ - begin_);
        begin_ = end_ = 0;
        co_return out;
    }

    // Waits `d`; returns how many bytes arrived meanwhile (they stay buffered).
    asio::awaitable<std::size_t> bytes_within(std::chrono::milliseconds d) {
        const auto before = end_ - begin_;
        const auto deadline = std::chrono::steady_clock::now() + d;
        bool timed_out = false;
        while (!timed_out && co_await read_some(deadline, timed_out) != 0) {
        }
        co_return end_ - begin_ - before;
    }

    void close() {
        std::error_code ignored;
        sock_.close(ignored);
    }

  private:
    protocol::mask_key next_key() {
        ++counter_;
        return {std::byte{0x5a}, static_cast<std::byte>(counter_ * 37),
                static_cast<std::byte>(0xc3 ^ counter_), std::byte{0x17}};
    }

    // One read, bounded by `deadline`. 0 on eof, error or timeout (then `timed_out`).
    asio::awaitable<std::size_t> read_some(std::chrono::steady_clock::time_point deadline,
                                           bool& timed_out) {
        using namespace asio::experimental::awaitable_operators;
        if (std::chrono::steady_clock::now() >= deadline || !sock_.is_open()) {
            timed_out = sock_.is_open();
            co_return 0;
        }
        if (begin_ == end_) begin_ = end_ = 0;
        if (end_ == buf_.size()) {
            // Unconsumed bytes may be moved, never changed (codec contract).
            std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
            if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
        }
        asio::steady_timer timer(co_await asio::this_coro::executor);
        timer.expires_at(deadline);
        auto read =
            sock_.async_read_some(asio::buffer(buf_.data() + end_, buf_.size() - end_), use_tuple);
        auto wait = timer.async_wait(use_tuple);
        auto result = co_await (std::move(read) || std::move(wait));
        if (result.index() == 1) {
            timed_out = true;
            co_return 0;
        }
        auto [ec, n] = std::get<0>(result);
        if (ec) co_return 0;
        end_ += n;
        co_return n;
    }

    asio::ip::tcp::socket sock_;
    protocol::codec codec_;
    int version_;
    std::vector<std::byte> buf_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    unsigned counter_ = 0;
};

// Connects, sends the version's request (key3 in a second TCP write after a pause if
// `split_key3`) and checks the answer byte for byte (the 16 challenge bytes included).
asio::awaitable<draft_client> connect_draft(asio::ip::tcp::endpoint ep, int v,
                                            bool split_key3 = false) {
    auto c = co_await draft_client::open(ep, v);
    const auto req = request_for(v);
    if (split_key3 && !req.key3.empty()) {
        co_await c.write(req.head);
        {
            const auto early = co_await c.bytes_within(150ms);
            CHECK_MESSAGE(early == 0, "the server answered before key3 arrived");
        }
        co_await c.write(req.key3);
    } else {
        const std::string all = req.head + req.key3;
        co_await c.write(all);
    }
    const auto head = co_await c.read_head();
    const auto expected = expected_head(v);
    if (v == 4) {
        // hybi-04: Accept, then Sec-WebSocket-Nonce (base64 of 16 bytes), which keys the
        // client's masking together with Sec-WebSocket-Key.
        REQUIRE(head.substr(0, expected.size()) == expected);
        const std::string_view rest = std::string_view(head).substr(expected.size());
        const std::string_view field = "Sec-WebSocket-Nonce: ";
        REQUIRE(rest.substr(0, field.size()) == field);
        const auto nonce = rest.substr(field.size(), 24);
        CHECK(rest.substr(field.size() + 24) == "\r\n\r\n");
        CHECK(nonce.size() == 24);
        CHECK(nonce.substr(22) == "==");
        protocol::hybi04_key k{};
        REQUIRE(protocol::make_hybi04_key(sec_key, nonce, k));
        c.set_hybi04_key(k);
    } else {
        CHECK(head == expected);
    }
    if (has_key3(v)) {
        const auto challenge = co_await c.read_exact(16);
        CHECK(challenge == expected_challenge(v));
    }
    co_return c;
}

// The server side of every test: an exact echo that records what the connection reports,
// plus a few commands (text messages) that drive the server API.
struct observed {
    int version = -1;
    std::optional<std::string> origin;
    bool pingable = false;
    bool close_codes = false;
    std::optional<bool> ping_result;
    std::error_code binary_error;
    std::optional<wscoro::close_info> info;
    int messages = 0;

    handler make() {
        return [this](connection ws) -> asio::awaitable<void> {
            version = ws.handshake().protocol_version();
            if (auto o = ws.handshake().origin()) origin = std::string(*o);
            pingable = ws.pingable();
            close_codes = ws.supports_close_codes();
            while (auto m = co_await ws.receive()) {
                ++messages;
                const std::string_view t = m->text();
                if (m->is_text() && t == "cmd:ping") {
                    const bool ok = co_await ws.ping("srv");
                    ping_result = ok;
                    const std::string_view reply = ok ? "pinged" : "no ping";
                    co_await ws.send(reply);
                } else if (m->is_text() && t == "cmd:binary") {
                    const std::array<std::byte, 3> data = {std::byte{0x01}, std::byte{0x00},
                                                           std::byte{0xFF}};
                    try {
                        co_await ws.send_binary(data);
                    } catch (const wscoro::system_error& e) {
                        binary_error = e.code();
                    }
                    co_await ws.send("after binary");
                } else if (m->is_text() && t == "cmd:close") {
                    co_await ws.close(4001, "server bye");
                    break;
                } else {
                    co_await ws.send(*m);
                }
            }
            info = ws.close_info();
        };
    }
};

asio::awaitable<void> expect_text(draft_client& c, std::string_view text) {
    auto r = co_await c.next();
    REQUIRE(r.kind == event_kind::message);
    CHECK(r.type == opcode::text);
    CHECK(r.text() == text);
}

asio::awaitable<void> expect_binary(draft_client& c, const std::vector<std::byte>& data) {
    auto r = co_await c.next();
    REQUIRE(r.kind == event_kind::message);
    CHECK(r.type == opcode::binary);
    CHECK(r.payload == data);
}

// The server's Close (any body), then the server closes TCP.
asio::awaitable<received> expect_close_and_eof(draft_client& c) {
    auto r = co_await c.next();
    REQUIRE(r.kind == event_kind::close);
    {
        auto eof = co_await c.next();
        CHECK(eof.eof);
    }
    co_return r;
}

// The client closes (1000 where codes exist) and expects the answer and the TCP close.
asio::awaitable<void> client_close(draft_client& c) {
    const auto fr = c.close_frame(has_codes(c.version()) ? 1000 : 0);
    co_await c.write(fr);
    auto r = co_await expect_close_and_eof(c);
    CHECK(r.code == (has_codes(c.version()) ? 1000 : 1005));
}

// How the server fails the connection on each version: 06+ a Close with `code`; older ones
// at least close TCP (a close frame without code before it is allowed).
asio::awaitable<void> expect_failure(draft_client& c, std::uint16_t code) {
    auto r = co_await c.next();
    if (has_codes(c.version())) {
        REQUIRE(r.kind == event_kind::close);
        CHECK(r.code == code);
    } else if (r.kind == event_kind::close) {
        CHECK(r.code == close_code::no_status);  // hixie FF 00 / hybi-01..05 empty Close
    } else {
        CHECK(r.eof);
        co_return;
    }
    auto eof = co_await c.next();
    CHECK(eof.eof);
}

void check_failed(const observed& obs, std::uint16_t code) {
    REQUIRE(obs.info);
    CHECK(obs.info->code == code);
    CHECK_FALSE(obs.info->was_clean);
    CHECK(obs.info->error);
}

std::string version_name(int v) {
    if (v == 75 || v == 76) return "hixie-" + std::to_string(v);
    if (v == 13) return "RFC 6455";
    return "hybi-0" + std::to_string(v);
}

}  // namespace

TEST_SUITE("drafts") {
    TEST_CASE("opening handshake: each version's exact request gets its exact answer") {
        for (int v : every_version) {
            const auto name = version_name(v);
            CAPTURE(name);
            server_fixture f;
            observed obs;
            f.start(obs.make());
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await connect_draft(f.endpoint(), v);
                co_await client_close(c);
                {
                    const bool drained = co_await f.drained();
                    CHECK(drained);
                }
            });
            CHECK(obs.version == v);
            CHECK(obs.origin == std::optional<std::string>("http://example.com"));
            // em-websocket: pingable? from 01, supports_close_codes? from 06.
            CHECK(obs.pingable == !is_hixie(v));
            CHECK(obs.close_codes == has_codes(v));
            CHECK(f.errors.empty());
        }
    }

    TEST_CASE("hixie-76 and hybi-01..03: key3 in a later TCP write is waited for") {
        for (int v : {76, 1, 2, 3}) {
            const auto name = version_name(v);
            CAPTURE(name);
            server_fixture f;
            observed obs;
            f.start(obs.make());
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await connect_draft(f.endpoint(), v, true);
                const auto fr = c.text_frame("after split");
                co_await c.write(fr);
                co_await expect_text(c, "after split");
                co_await client_close(c);
            });
            CHECK(obs.version == v);
        }
    }

    TEST_CASE("frames pipelined behind the request are not lost (em-websocket drops them)") {
        for (int v : every_version) {
            if (v == 4) continue;  // the masking key depends on the server's nonce
            const auto name = version_name(v);
            CAPTURE(name);
            server_fixture f;
            observed obs;
            f.start(obs.make());
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await draft_client::open(f.endpoint(), v);
                const auto req = request_for(v);
                const auto fr = c.text_frame("early bird");
                std::string all = req.head + req.key3;
                all += str(fr);
                co_await c.write(all);
                const auto head = co_await c.read_head();
                CHECK(head == expected_head(v));
                if (has_key3(v)) {
                    const auto challenge = co_await c.read_exact(16);
                    CHECK(challenge == expected_challenge(v));
                }
                co_await expect_text(c, "early bird");
                co_await client_close(c);
            });
        }
    }

    TEST_CASE("text both ways, and two messages in one TCP write") {
        for (int v : every_version) {
            const auto name = version_name(v);
            CAPTURE(name);
            server_fixture f;
            observed obs;
            f.start(obs.make());
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await connect_draft(f.endpoint(), v);
                {
                    const auto fr = c.text_frame("h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC");
                    co_await c.write(fr);
                }
                co_await expect_text(c, "h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC");
                {
                    // em-websocket draft75_spec: "should call onmessage for each message"
                    auto two = c.text_frame("one");
                    const auto second = c.text_frame("two");
                    two.insert(two.end(), second.begin(), second.end());
                    co_await c.write(two);
                }
                co_await expect_text(c, "one");
                co_await expect_text(c, "two");
                {
                    // an empty message, and a NUL inside text (draft76_spec)
                    const std::string nul("a\0b", 3);
                    auto fr = c.text_frame("");
                    const auto fr2 = c.text_frame(nul);
                    fr.insert(fr.end(), fr2.begin(), fr2.end());
                    co_await c.write(fr);
                    co_await expect_text(c, "");
                    co_await expect_text(c, nul);
                }
                {
                    // 16- and 64-bit length classes on the hybi drafts; a long hixie frame
                    const std::string big(70000, 'x');
                    const auto fr = c.text_frame(big);
                    co_await c.write(fr);
                    co_await expect_text(c, big);
                }
                co_await client_close(c);
            });
            REQUIRE(obs.info);
            CHECK(obs.info->was_clean);
        }
    }

    TEST_CASE("fragmented messages in 2 and 5 fragments (01+; em-websocket drops 3+ on 05/06)") {
        for (int v : every_version) {
            if (is_hixie(v)) continue;
            const auto name = version_name(v);
            CAPTURE(name);
            server_fixture f;
            observed obs;
            f.start(obs.make());
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await connect_draft(f.endpoint(), v);
                {
                    // two fragments in one TCP write
                    auto fr = c.text_frame("Hel", false);
                    const auto last = c.text_frame("lo", true, opcode::continuation);
                    fr.insert(fr.end(), last.begin(), last.end());
                    co_await c.write(fr);
                }
                co_await expect_text(c, "Hello");
                {
                    // five fragments, one TCP write each
                    const char* parts[] = {"a", "bb", "ccc", "dddd", "e"};
                    for (int i = 0; i < 5; ++i) {
                        const auto fr = c.text_frame(parts[i], i == 4,
                                                     i == 0 ? opcode::text : opcode::continuation);
                        co_await c.write(fr);
                    }
                }
                co_await expect_text(c, "abbcccdddde");
                {
                    // five binary fragments in one write, a UTF-8 char split across text
                    // fragments, and a ping between fragments (draft03_spec)
                    const auto data = pattern(500);
                    std::vector<std::byte> all;
                    for (int i = 0; i < 5; ++i) {
                        const auto part = std::span(data).subspan(i * 100, 100);
                        const auto fr =
                            c.frame(i == 0 ? opcode::binary : opcode::continuation, part, i == 4);
                        all.insert(all.end(), fr.begin(), fr.end());
                    }
                    const auto a = c.text_frame("\xE2\x82", false);
                    const auto p = c.frame(opcode::ping, bytes("mid"));
                    const auto b = c.text_frame("\xAC!", true, opcode::continuation);
                    all.insert(all.end(), a.begin(), a.end());
                    all.insert(all.end(), p.begin(), p.end());
                    all.insert(all.end(), b.begin(), b.end());
                    co_await c.write(all);
                    co_await expect_binary(c, data);
                    auto pong = co_await c.next();
                    CHECK(pong.kind == event_kind::pong);
                    CHECK(pong.text() == "mid");
                    co_await expect_text(c, "\xE2\x82\xAC!");
                }
                co_await client_close(c);
            });
            REQUIRE(obs.info);
            CHECK(obs.info->was_clean);
        }
    }

    TEST_CASE("binary both ways (01+) and send_binary on hixie throws unsupported_by_version") {
        for (int v : every_version) {
            const auto name = version_name(v);
            CAPTURE(name);
            server_fixture f;
            observed obs;
            f.start(obs.make());
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await connect_draft(f.endpoint(), v);
                if (!is_hixie(v)) {
                    for (std::size_t n : {3u, 256u, 70000u}) {  // 7-, 16-, 64-bit lengths
                        const auto data = pattern(n, static_cast<unsigned>(n));
                        const auto fr = c.frame(opcode::binary, data);
                        co_await c.write(fr);
                        co_await expect_binary(c, data);
                    }
                }
                {
                    const auto fr = c.text_frame("cmd:binary");
                    co_await c.write(fr);
                }
                if (!is_hixie(v)) {
                    const std::vector<std::byte> sent = {std::byte{0x01}, std::byte{0x00},
                                                         std::byte{0xFF}};
                    co_await expect_binary(c, sent);
                }
                co_await expect_text(c, "after binary");
                {
                    // still usable
                    const auto fr = c.text_frame("still here");
                    co_await c.write(fr);
                }
                co_await expect_text(c, "still here");
                co_await client_close(c);
            });
            if (is_hixie(v))
                CHECK(obs.binary_error == error::unsupported_by_version);
            else
                CHECK_FALSE(obs.binary_error);
            REQUIRE(obs.info);
            CHECK(obs.info->was_clean);
        }
    }

    TEST_CASE("hixie: length-prefixed frames are skipped and the next text frame arrives") {
        for (int v : {75, 76}) {
            const auto name = version_name(v);
            CAPTURE(name);
            server_fixture f;
            observed obs;
            f.start(obs.make());
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await connect_draft(f.endpoint(), v);
                {
                    // 80 03 "abc", then 82 with a two-group length (0x81 0x01 = 129), then
                    // text, all in one TCP write (em-websocket stalls until the next read).
                    std::string w(
                        "\x80\x03"
                        "abc",
                        5);
                    w += std::string("\x82\x81\x01", 3) + std::string(129, 'z');
                    w += std::string(
                        "\x00"
                        "next\xFF",
                        6);
                    co_await c.write(w);
                }
                co_await expect_text(c, "next");
                {
                    // a skipped frame split over two writes
                    const std::string a(
                        "\x80\x05"
                        "12",
                        4);
                    co_await c.write(a);
                    const std::string b(
                        "345\x00"
                        "after\xFF",
                        10);
                    co_await c.write(b);
                }
                co_await expect_text(c, "after");
                {
                    // a text frame split inside a UTF-8 character
                    const std::string a(
                        "\x00"
                        "\xE2\x82",
                        3);
                    co_await c.write(a);
                    const std::string b(
                        "\xAC"
                        "\xFF",
                        2);
                    co_await c.write(b);
                }
                co_await expect_text(c, "\xE2\x82\xAC");
                co_await client_close(c);
            });
            REQUIRE(obs.info);
            CHECK(obs.info->was_clean);
        }
    }

    TEST_CASE("ping and pong (01+); server ping() returns false on hixie") {
        for (int v : every_version) {
            const auto name = version_name(v);
            CAPTURE(name);
            server_fixture f;
            observed obs;
            f.start(obs.make());
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await connect_draft(f.endpoint(), v);
                if (!is_hixie(v)) {
                    const auto fr = c.frame(opcode::ping, bytes("abc"));
                    co_await c.write(fr);
                    auto r = co_await c.next();
                    CHECK(r.kind == event_kind::pong);
                    CHECK(r.text() == "abc");
                }
                {
                    const auto fr = c.text_frame("cmd:ping");
                    co_await c.write(fr);
                }
                if (is_hixie(v)) {
                    co_await expect_text(c, "no ping");
                } else {
                    auto r = co_await c.next();
                    CHECK(r.kind == event_kind::ping);
                    CHECK(r.text() == "srv");
                    const auto fr = c.frame(opcode::pong, bytes("srv"));
                    co_await c.write(fr);
                    co_await expect_text(c, "pinged");
                }
                co_await client_close(c);
            });
            REQUIRE(obs.ping_result);
            CHECK(*obs.ping_result == !is_hixie(v));
            REQUIRE(obs.info);
            CHECK(obs.info->was_clean);
        }
    }

    TEST_CASE("client closes: answered, TCP closed by the server, close_info per version") {
        for (int v : every_version) {
            // 06+: once with a code and reason, once without a body
            for (int with_code = 0; with_code < (has_codes(v) ? 2 : 1); ++with_code) {
                const auto name = version_name(v);
                CAPTURE(name);
                CAPTURE(with_code);
                server_fixture f;
                observed obs;
                f.start(obs.make());
                f.run([&]() -> asio::awaitable<void> {
                    auto c = co_await connect_draft(f.endpoint(), v);
                    auto fr = with_code ? c.close_frame(4001, "bye") : c.close_frame();
                    if (is_hixie(v)) CHECK(str(fr) == std::string("\xFF\x00", 2));
                    // A data frame behind the Close, in the same write, is ignored
                    // (draft76_spec "data after close", draft03_spec).
                    const auto late = c.text_frame("after close");
                    fr.insert(fr.end(), late.begin(), late.end());
                    co_await c.write(fr);
                    // The answer, byte for byte (the code echoed without the reason), then
                    // the server closes TCP.
                    bool timed_out = false;
                    const auto answer = co_await c.read_until_eof(timed_out);
                    CHECK_FALSE(timed_out);
                    CHECK(answer == server_close_bytes(v, with_code ? 4001 : 0, {}));
                    c.close();
                    const bool drained = co_await f.drained();
                    CHECK(drained);
                });
                REQUIRE(obs.info);
                CHECK(obs.info->code == (with_code ? 4001 : 1005));
                CHECK(obs.info->reason == (with_code ? "bye" : ""));
                CHECK(obs.info->was_clean);
                CHECK_FALSE(obs.info->error);
                CHECK(obs.messages == 0);
            }
        }
    }

    TEST_CASE(
        "server closes: the client sees the version's Close and its answer completes close()") {
        for (int v : every_version) {
            const auto name = version_name(v);
            CAPTURE(name);
            server_fixture f;
            observed obs;
            f.start(obs.make());
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await connect_draft(f.endpoint(), v);
                {
                    const auto fr = c.text_frame("cmd:close");
                    co_await c.write(fr);
                }
                {
                    const auto expected = server_close_bytes(v, 4001, "server bye");
                    const auto got = co_await c.read_exact(expected.size());
                    CHECK(got == expected);
                }
                // No data frames after the server's Close.
                {
                    const auto fr = c.text_frame("ignored");
                    co_await c.write(fr);
                }
                const auto answer = c.close_frame(has_codes(v) ? 4001 : 0);
                co_await c.write(answer);
                auto eof = co_await c.next();
                CHECK(eof.eof);
                const bool drained = co_await f.drained();
                CHECK(drained);
            });
            REQUIRE(obs.info);
            CHECK(obs.info->code == (has_codes(v) ? 4001 : 1005));
            CHECK(obs.info->was_clean);
            CHECK_FALSE(obs.info->error);
        }
    }

    TEST_CASE("a frame above max_frame_size fails the connection with 1009") {
        for (int v : every_version) {
            // hixie: a text frame, and a length-prefixed one
            for (int prefixed = 0; prefixed < (is_hixie(v) ? 2 : 1); ++prefixed) {
                const auto name = version_name(v);
                CAPTURE(name);
                CAPTURE(prefixed);
                server_fixture f;
                f.options.max_frame_size = 64;
                observed obs;
                f.start(obs.make());
                f.run([&]() -> asio::awaitable<void> {
                    auto c = co_await connect_draft(f.endpoint(), v);
                    {
                        const std::string at_limit(64, 'k');
                        const auto fr = c.text_frame(at_limit);
                        co_await c.write(fr);
                        co_await expect_text(c, at_limit);
                    }
                    if (prefixed) {
                        const std::string w =
                            std::string("\x80\x81\x00", 3) + std::string(128, 'q');
                        co_await c.write(w);
                    } else {
                        const auto fr = c.text_frame(std::string(100, 'k'));
                        co_await c.write(fr);
                    }
                    co_await expect_failure(c, close_code::message_too_big);
                    const bool drained = co_await f.drained();
                    CHECK(drained);
                });
                check_failed(obs, close_code::message_too_big);
                CHECK(f.saw_error(error::frame_too_big));
            }
        }
    }

    TEST_CASE("invalid UTF-8 text fails the connection with 1007") {
        for (int v : every_version) {
            const auto name = version_name(v);
            CAPTURE(name);
            server_fixture f;
            observed obs;
            f.start(obs.make());
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await connect_draft(f.endpoint(), v);
                const auto fr = c.text_frame("ok \xC3\x28 not");
                co_await c.write(fr);
                co_await expect_failure(c, close_code::invalid_payload);
                const bool drained = co_await f.drained();
                CHECK(drained);
            });
            check_failed(obs, close_code::invalid_payload);
            CHECK(f.saw_error(error::bad_frame_payload));
        }
    }

    TEST_CASE("an unknown opcode fails the connection with 1002 (01+)") {
        for (int v : every_version) {
            if (is_hixie(v)) continue;
            const auto name = version_name(v);
            CAPTURE(name);
            server_fixture f;
            observed obs;
            f.start(obs.make());
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await connect_draft(f.endpoint(), v);
                // A text frame with its opcode turned into a reserved one: 04 -> 06 on 01..06
                // (through the XOR mask on 04..06, which commutes), 1 -> 3 on 07+.
                auto fr = c.text_frame("x");
                fr[c.header_offset()] ^= std::byte{0x02};
                co_await c.write(fr);
                co_await expect_failure(c, close_code::protocol_error);
                const bool drained = co_await f.drained();
                CHECK(drained);
            });
            check_failed(obs, close_code::protocol_error);
            CHECK(f.saw_error(error::bad_opcode));
        }
    }

    TEST_CASE("protocol_versions {13}: older requests get 426 listing 13, RFC 6455 still works") {
        server_fixture f;
        f.options.protocol_versions = {13};
        observed obs;
        f.start(obs.make());
        f.run([&]() -> asio::awaitable<void> {
            for (int v : {76, 75, 3, 8}) {
                const auto name = version_name(v);
                CAPTURE(name);
                auto c = co_await draft_client::open(f.endpoint(), v);
                // hixie-76: only the head; the answer must not wait for key3
                const auto req = request_for(v);
                co_await c.write(req.head);
                bool timed_out = false;
                const auto answer = co_await c.read_until_eof(timed_out);
                CHECK_FALSE(timed_out);
                CHECK(answer.rfind("HTTP/1.1 426 ", 0) == 0);
                CHECK(answer.find("\r\nSec-WebSocket-Version: 13\r\n") != std::string::npos);
                CHECK(answer.find("\r\nUpgrade: websocket\r\n") != std::string::npos);
                c.close();
            }
            auto c = co_await connect_draft(f.endpoint(), 13);
            const auto fr = c.text_frame("modern");
            co_await c.write(fr);
            co_await expect_text(c, "modern");
            co_await client_close(c);
        });
        CHECK(obs.version == 13);
        CHECK(f.saw_error(error::bad_sec_version));
    }
}
