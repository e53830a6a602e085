// Interop client: Debian's WebSocket++ 0.8.2 (libwebsocketpp-dev) against a wscoro echo
// server, in every protocol version WebSocket++ has a processor for.
//
//     websocketpp_client PORT          (connects to ws://127.0.0.1:PORT/)
//
// Prints one PASS/FAIL line per check and `N passed, M failed`; exits 0 iff none failed.
// Every wait is bounded (kStepTimeout per connection step, kConnTimeout per connection).
//
// What WebSocket++ 0.8.2 can speak as a client (processors/*.hpp):
// - hybi-13 (RFC 6455): the stock client (config::client_version = 13).
// - hybi-08 and hybi-07: the processors exist but client_handshake_request() is a stub that
//   returns error::no_protocol_support (and the connection then stalls without calling any
//   handler). Their framing and their validate_server_handshake_response() are inherited
//   unchanged from hybi13, and the drafts' handshakes differ from 13's only in the version
//   number. Below, that one stub is filled in with an explicit specialisation for our
//   config types (delegate to hybi13's request, then set Sec-WebSocket-Version: 8 / 7); the
//   rest is WebSocket++'s own hybi08/hybi07 processor and client connection, unmodified.
// - hybi-00 (= hixie-76): the processor is server-only (client_handshake_request and
//   validate_server_handshake_response are stubs), and a connection cannot carry the 8-byte
//   key3 or skip the 16-byte answer. So the handshake is written here (request built with
//   WebSocket++'s http::parser::request, response parsed with its http::parser::response,
//   challenge checked with its md5), and WebSocket++'s hybi00 processor does the framing
//   (prepare_data_frame / consume / prepare_close) over a plain Asio socket.
// - hixie-75 and hybi-01..06: WebSocket++ has no processor for them.
//
// Build (the lead's meson target uses the same flags): header-only, standalone Asio.
//     g++ -std=c++17 -O1 -DASIO_STANDALONE -pthread websocketpp_client.cpp -o websocketpp_client
// WebSocket++ 0.8.2 does not compile as C++20 (constructors declared with template-ids,
// e.g. `endpoint<connection,config>()`, are ill-formed since C++20), hence -std=c++17.

// wscoro's meson.build defines ASIO_HAS_CO_AWAIT=1 for clang; C++17 has no coroutines.
#if __cplusplus < 202002L
#undef ASIO_HAS_CO_AWAIT
#endif
#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif
#ifndef _WEBSOCKETPP_CPP11_STL_
#define _WEBSOCKETPP_CPP11_STL_
#endif

#include <websocketpp/client.hpp>
#include <websocketpp/common/md5.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>
#include <websocketpp/http/request.hpp>
#include <websocketpp/http/response.hpp>
#include <websocketpp/processors/hybi00.hpp>
#include <websocketpp/processors/hybi07.hpp>
#include <websocketpp/processors/hybi08.hpp>
#include <websocketpp/processors/hybi13.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr auto kStepTimeout = std::chrono::seconds(10);
constexpr auto kConnTimeout = std::chrono::seconds(60);

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const std::string& what, const std::string& detail = {}) {
    if (ok) {
        ++g_passed;
        std::cout << "PASS " << what << "\n";
    } else {
        ++g_failed;
        std::cout << "FAIL " << what << (detail.empty() ? "" : ": " + detail) << "\n";
    }
    std::cout.flush();
}

void info(const std::string& what) {
    std::cout << "INFO " << what << "\n";
    std::cout.flush();
}

std::string hex_prefix(const std::string& s, std::size_t n = 16) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < n; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        out += digits[c >> 4];
        out += digits[c & 15];
        out += ' ';
    }
    if (s.size() > n) out += "...";
    return out;
}

std::string describe_mismatch(const std::string& got, const std::string& want) {
    std::ostringstream o;
    o << "got " << got.size() << " bytes [" << hex_prefix(got) << "], want " << want.size()
      << " bytes [" << hex_prefix(want) << "]";
    return o.str();
}

// ---- configs: quiet logs; one per client version ----------------------------------------

struct quiet_config : websocketpp::config::asio_client {
    typedef quiet_config type;
    typedef websocketpp::config::asio_client base;
    static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
    static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
};

struct config13 : quiet_config {
    typedef config13 type;
    static const int client_version = 13;
};
struct config08 : quiet_config {
    typedef config08 type;
    static const int client_version = 8;
};
struct config07 : quiet_config {
    typedef config07 type;
    static const int client_version = 7;
};

}  // namespace

// ---- the one missing piece of WebSocket++'s hybi-07/08 client side ----------------------
// hybi-07 and -08 ask exactly what hybi-13 asks, except for the version number (and name the
// origin Sec-WebSocket-Origin, which the caller adds as an ordinary header).
namespace websocketpp {
namespace processor {

template <>
lib::error_code hybi08<config08>::client_handshake_request(
    request_type& req, uri_ptr uri, std::vector<std::string> const& subprotocols) const {
    lib::error_code ec = hybi13<config08>::client_handshake_request(req, uri, subprotocols);
    if (!ec) req.replace_header("Sec-WebSocket-Version", "8");
    return ec;
}

template <>
lib::error_code hybi07<config07>::client_handshake_request(
    request_type& req, uri_ptr uri, std::vector<std::string> const& subprotocols) const {
    lib::error_code ec = hybi13<config07>::client_handshake_request(req, uri, subprotocols);
    if (!ec) req.replace_header("Sec-WebSocket-Version", "7");
    return ec;
}

}  // namespace processor
}  // namespace websocketpp

namespace {

// ---- hybi-07/08/13: WebSocket++'s client endpoint --------------------------------------

struct item {
    enum kind { text, binary, burst, ping, close } k;
    std::string label;
    std::vector<std::string> payloads;  // burst: several; others: one
    websocketpp::close::status::value code = 0;
};

std::string utf8_sample() {
    // 2-, 3- and 4-byte sequences: "Grüße, 世界 🌍 ∑"
    return "Gr\xc3\xbc\xc3\x9f"
           "e, \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x8c\x8d \xe2\x88\x91";
}

std::string text_of(std::size_t n) {
    std::string s(n, 'x');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>('a' + i % 26);
    return s;
}

std::string utf8_of(std::size_t n_chars) {
    std::string s;
    const std::string unit = "\xe2\x82\xac";  // U+20AC
    for (std::size_t i = 0; i < n_chars; ++i)
        s += unit;
    return s;
}

std::string binary_of(std::size_t n) {
    std::string s(n, '\0');
    std::mt19937 rng(static_cast<unsigned>(n) * 2654435761u);
    for (auto& c : s)
        c = static_cast<char>(rng() & 0xff);
    return s;
}

std::string all_bytes() {
    std::string s(256, '\0');
    for (int i = 0; i < 256; ++i)
        s[static_cast<std::size_t>(i)] = static_cast<char>(i);
    return s;
}

std::vector<item> script_for(int version) {
    std::vector<item> s;
    s.push_back({item::text, "text ascii", {"Hello from WebSocket++"}});
    s.push_back({item::text, "text empty", {""}});
    s.push_back({item::text, "text utf-8", {utf8_sample()}});
    s.push_back({item::text, "text 125 bytes", {text_of(125)}});
    s.push_back({item::text, "text 126 bytes", {text_of(126)}});
    s.push_back({item::text, "text 64 KiB", {text_of(65536)}});
    s.push_back({item::text, "text 64 KiB utf-8 (3-byte chars)", {utf8_of(65536 / 3 + 1)}});
    s.push_back({item::binary, "binary 0x00..0xff", {all_bytes()}});
    s.push_back({item::binary, "binary empty", {""}});
    s.push_back({item::binary, "binary 65535 bytes", {binary_of(65535)}});
    s.push_back({item::binary, "binary 64 KiB", {binary_of(65536)}});
    s.push_back({item::binary, "binary 1 MiB", {binary_of(1 << 20)}});
    {
        item b{item::burst, "burst of 20 messages, in order", {}};
        for (int i = 0; i < 20; ++i)
            b.payloads.push_back("burst #" + std::to_string(i) + " " +
                                 text_of(static_cast<std::size_t>(i * 37)));
        s.push_back(b);
    }
    s.push_back({item::ping,
                 "ping -> pong with the same payload",
                 {"wspp-ping-" + std::to_string(version)}});
    s.push_back({item::ping, "ping with empty payload", {""}});
    s.push_back({item::text, "text after ping", {"still there"}});
    s.push_back({item::close,
                 "close 4000+v with a reason",
                 {"bye v" + std::to_string(version)},
                 static_cast<websocketpp::close::status::value>(4000 + version)});
    return s;
}

template <typename Config>
class session {
  public:
    using client_t = websocketpp::client<Config>;
    using conn_ptr = typename client_t::connection_ptr;
    using message_ptr = typename Config::message_type::ptr;

    session(int version, unsigned short port) : version_(version), port_(port) {}

    void run() {
        const std::string tag = "v" + std::to_string(version_) + ": ";
        client_.clear_access_channels(websocketpp::log::alevel::all);
        client_.clear_error_channels(websocketpp::log::elevel::all);
        client_.init_asio();
        client_.set_open_handshake_timeout(std::chrono::milliseconds(kStepTimeout).count());
        client_.set_close_handshake_timeout(std::chrono::milliseconds(kStepTimeout).count());
        client_.set_pong_timeout(std::chrono::milliseconds(kStepTimeout).count());

        websocketpp::lib::error_code ec;
        const std::string url =
            "ws://127.0.0.1:" + std::to_string(port_) + "/wspp?v=" + std::to_string(version_);
        con_ = client_.get_connection(url, ec);
        if (ec) {
            check(false, tag + "get_connection", ec.message());
            return;
        }
        // hybi-04..10 name the origin Sec-WebSocket-Origin, hybi-11+ Origin.
        con_->append_header(version_ < 11 ? "Sec-WebSocket-Origin" : "Origin",
                            "http://wspp.example");
        con_->set_open_handler([this](websocketpp::connection_hdl) { on_open(); });
        con_->set_fail_handler([this](websocketpp::connection_hdl) { on_fail(); });
        con_->set_message_handler(
            [this](websocketpp::connection_hdl, message_ptr m) { on_message(m); });
        con_->set_pong_handler(
            [this](websocketpp::connection_hdl, std::string p) { on_pong(std::move(p)); });
        con_->set_pong_timeout_handler(
            [this](websocketpp::connection_hdl, std::string) { fail_step("pong timeout"); });
        con_->set_close_handler([this](websocketpp::connection_hdl) { on_close(); });
        client_.connect(con_);

        auto& io = client_.get_io_service();
        const auto deadline = std::chrono::steady_clock::now() + kConnTimeout;
        while (!done_ && std::chrono::steady_clock::now() < deadline) {
            io.run_for(std::chrono::milliseconds(100));
            if (io.stopped()) io.restart();
            if (!done_ && step_started_ &&
                std::chrono::steady_clock::now() - step_start_ > kStepTimeout) {
                fail_step("no answer within " +
                          std::to_string(std::chrono::seconds(kStepTimeout).count()) + " s");
            }
        }
        if (!done_) check(false, tag + "connection finished in time", "overall timeout");
        // Let a pending close/TCP teardown finish (bounded), then drop everything.
        if (con_ && con_->get_state() != websocketpp::session::state::closed) {
            websocketpp::lib::error_code ignore;
            con_->terminate(ignore);
        }
        io.run_for(std::chrono::milliseconds(200));
        io.stop();
    }

  private:
    std::string tag() const { return "v" + std::to_string(version_) + ": "; }

    void start_step() {
        step_started_ = true;
        step_start_ = std::chrono::steady_clock::now();
    }

    void fail_step(const std::string& why) {
        if (done_) return;
        if (index_ < script_.size())
            check(false, tag() + script_[index_].label, why);
        else
            check(false, tag() + "(after script)", why);
        finish();
    }

    void finish() {
        done_ = true;
        step_started_ = false;
    }

    void on_fail() {
        std::string why = con_->get_ec().message();
        why += " (HTTP status " + std::to_string(con_->get_response_code()) + ")";
        check(false, tag() + "opening handshake", why);
        finish();
    }

    void on_open() {
        const auto& req = con_->get_request();
        check(req.get_header("Sec-WebSocket-Version") == std::to_string(version_),
              tag() + "request carried Sec-WebSocket-Version: " + std::to_string(version_),
              "sent '" + req.get_header("Sec-WebSocket-Version") + "'");
        check(con_->get_response_code() == websocketpp::http::status_code::switching_protocols,
              tag() + "opening handshake: 101 + Sec-WebSocket-Accept validated by WebSocket++");
        script_ = script_for(version_);
        index_ = 0;
        next();
    }

    void next() {
        if (done_) return;
        if (index_ >= script_.size()) {
            finish();
            return;
        }
        const item& it = script_[index_];
        received_.clear();
        websocketpp::lib::error_code ec;
        start_step();
        switch (it.k) {
            case item::text:
                ec = con_->send(it.payloads[0], websocketpp::frame::opcode::text);
                break;
            case item::binary:
                ec = con_->send(it.payloads[0], websocketpp::frame::opcode::binary);
                break;
            case item::burst:
                for (const auto& p : it.payloads) {
                    ec = con_->send(p, websocketpp::frame::opcode::text);
                    if (ec) break;
                }
                break;
            case item::ping:
                con_->ping(it.payloads[0], ec);
                break;
            case item::close:
                con_->close(it.code, it.payloads[0], ec);
                break;
        }
        if (ec) fail_step("send failed: " + ec.message());
    }

    void on_message(message_ptr m) {
        if (done_ || index_ >= script_.size()) {
            check(false, tag() + "unexpected message after the script",
                  std::to_string(m->get_payload().size()) + " bytes");
            return;
        }
        const item& it = script_[index_];
        if (it.k != item::text && it.k != item::binary && it.k != item::burst) {
            fail_step("unexpected data message (" + std::to_string(m->get_payload().size()) +
                      " bytes) while waiting for a control frame");
            return;
        }
        const auto want_op = it.k == item::binary ? websocketpp::frame::opcode::binary
                                                  : websocketpp::frame::opcode::text;
        if (m->get_opcode() != want_op) {
            fail_step("echo has opcode " + std::to_string(m->get_opcode()));
            return;
        }
        received_.push_back(m->get_payload());
        if (received_.size() < it.payloads.size()) return;
        bool ok = true;
        std::string detail;
        for (std::size_t i = 0; i < it.payloads.size(); ++i) {
            if (received_[i] != it.payloads[i]) {
                ok = false;
                detail = "message " + std::to_string(i) + ": " +
                         describe_mismatch(received_[i], it.payloads[i]);
                break;
            }
        }
        check(ok, tag() + it.label + " echoed exactly", detail);
        ++index_;
        next();
    }

    void on_pong(std::string payload) {
        if (done_ || index_ >= script_.size() || script_[index_].k != item::ping) {
            check(false, tag() + "unsolicited pong", hex_prefix(payload));
            return;
        }
        const item& it = script_[index_];
        check(payload == it.payloads[0], tag() + it.label,
              describe_mismatch(payload, it.payloads[0]));
        ++index_;
        next();
    }

    void on_close() {
        if (done_) return;
        if (index_ < script_.size() && script_[index_].k == item::close) {
            const item& it = script_[index_];
            const auto code = con_->get_remote_close_code();
            const auto reason = con_->get_remote_close_reason();
            // The echo server answers a Close with the peer's code and no reason (as
            // em-websocket does; RFC 6455 §5.5.1 lets the reason be dropped).
            check(code == it.code, tag() + it.label + ": server answered with the same code",
                  "got " + std::to_string(code) + ", want " + std::to_string(it.code));
            check(reason.empty(), tag() + it.label + ": close reply without reason",
                  "got '" + reason + "'");
            ++index_;
            finish();
            return;
        }
        std::ostringstream o;
        o << "connection closed early: remote code " << con_->get_remote_close_code() << " '"
          << con_->get_remote_close_reason() << "', ec " << con_->get_ec().message();
        fail_step(o.str());
    }

    int version_;
    unsigned short port_;
    client_t client_;
    conn_ptr con_;
    std::vector<item> script_;
    std::size_t index_ = 0;
    std::vector<std::string> received_;
    bool done_ = false;
    bool step_started_ = false;
    std::chrono::steady_clock::time_point step_start_{};
};

// Documents what 0.8.2 does without our hybi-07/08 fill-in (reported, not judged).
void probe_stock_client_versions() {
    using cfg = quiet_config;
    auto manager = websocketpp::lib::make_shared<cfg::con_msg_manager_type>();
    cfg::rng_type rng;
    cfg::request_type req;
    auto uri = websocketpp::lib::make_shared<websocketpp::uri>("ws://127.0.0.1:1/");
    std::vector<std::string> none;
    websocketpp::processor::hybi00<cfg> p00(false, false, manager);
    websocketpp::processor::hybi07<cfg> p07(false, false, manager, rng);
    websocketpp::processor::hybi08<cfg> p08(false, false, manager, rng);
    websocketpp::processor::hybi13<cfg> p13(false, false, manager, rng);
    auto say = [&](const char* name, websocketpp::lib::error_code ec) {
        info(std::string("stock ") + websocketpp::user_agent + " " + name +
             " client_handshake_request: " + (ec ? ec.message() : std::string("ok")));
    };
    say("hybi00", p00.client_handshake_request(req, uri, none));
    say("hybi07", p07.client_handshake_request(req, uri, none));
    say("hybi08", p08.client_handshake_request(req, uri, none));
    say("hybi13", p13.client_handshake_request(req, uri, none));
}

// ---- hybi-00 / hixie-76: WebSocket++'s hybi00 processor over a plain Asio socket --------

using asio::ip::tcp;

struct hixie76_keys {
    std::string key1, key2, key3;  // key3: 8 raw bytes
    std::string expected;          // the 16-byte answer, from WebSocket++'s md5
};

std::string be32(std::uint32_t n) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i)
        s[static_cast<std::size_t>(i)] = static_cast<char>((n >> (24 - 8 * i)) & 0xff);
    return s;
}

// -76 §4.1 steps 15-26: a key is number*spaces with 1-12 random non-digit characters and
// `spaces` spaces inserted (never first or last).
std::string make_key(std::mt19937& rng, std::uint32_t number, unsigned spaces) {
    std::string key = std::to_string(static_cast<unsigned long long>(number) * spaces);
    std::uniform_int_distribution<int> count(1, 12);
    const std::string noise = "!\"#$%&'()*+,-./:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abc~";
    for (int i = count(rng); i > 0; --i) {
        std::uniform_int_distribution<std::size_t> pos(0, key.size());
        std::uniform_int_distribution<std::size_t> ch(0, noise.size() - 1);
        key.insert(pos(rng), 1, noise[ch(rng)]);
    }
    for (unsigned i = 0; i < spaces; ++i) {
        std::uniform_int_distribution<std::size_t> pos(1, key.size() - 1);
        key.insert(pos(rng), 1, ' ');
    }
    return key;
}

hixie76_keys spec_sample_keys() {
    // draft-hixie-thewebsocketprotocol-76 §1.3 (= hybi-00 §1.3): the sample handshake.
    // Key1 4146546015 / 5 spaces = 829309203, Key2 1299853100 / 5 spaces = 259970620.
    hixie76_keys k;
    k.key1 = "4 @1  46546xW%0l 1 5";
    k.key2 = "12998 5 Y3 1  .P00";
    k.key3 = "^n:ds[4U";
    k.expected = "8jKS'y:G*Co,Wxa-";
    check(websocketpp::md5::md5_hash_string(be32(829309203u) + be32(259970620u) + k.key3) ==
              k.expected,
          "v0: WebSocket++ md5 reproduces the -76 sample answer 8jKS'y:G*Co,Wxa-");
    return k;
}

hixie76_keys random_keys(std::mt19937& rng) {
    hixie76_keys k;
    std::uniform_int_distribution<unsigned> sp(1, 12);
    const unsigned s1 = sp(rng), s2 = sp(rng);
    std::uniform_int_distribution<std::uint32_t> n1d(0, 4294967295u / s1), n2d(0, 4294967295u / s2);
    const std::uint32_t n1 = n1d(rng), n2 = n2d(rng);
    k.key1 = make_key(rng, n1, s1);
    k.key2 = make_key(rng, n2, s2);
    k.key3.resize(8);
    for (auto& c : k.key3)
        c = static_cast<char>(rng() & 0xff);
    k.expected = websocketpp::md5::md5_hash_string(be32(n1) + be32(n2) + k.key3);
    return k;
}

// A blocking-looking socket whose every operation is bounded by kStepTimeout.
class timed_socket {
  public:
    explicit timed_socket(asio::io_context& io) : io_(io), sock_(io) {}

    bool connect(unsigned short port, std::string& err) {
        asio::error_code result = asio::error::would_block;
        sock_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                            [&](asio::error_code ec) { result = ec; });
        if (!wait([&] { return result != asio::error::would_block; })) {
            err = "connect timed out";
            return false;
        }
        if (result) err = result.message();
        return !result;
    }

    bool write(const std::string& data, std::string& err) {
        asio::error_code result = asio::error::would_block;
        asio::async_write(sock_, asio::buffer(data),
                          [&](asio::error_code ec, std::size_t) { result = ec; });
        if (!wait([&] { return result != asio::error::would_block; })) {
            err = "write timed out";
            return false;
        }
        if (result) err = result.message();
        return !result;
    }

    // Appends what arrives to `out`. Returns false on timeout; sets eof on a clean EOF.
    bool read_some(std::string& out, bool& eof, std::string& err) {
        char buf[65536];
        asio::error_code result = asio::error::would_block;
        std::size_t n = 0;
        sock_.async_read_some(asio::buffer(buf), [&](asio::error_code ec, std::size_t got) {
            result = ec;
            n = got;
        });
        if (!wait([&] { return result != asio::error::would_block; })) {
            err = "read timed out";
            return false;
        }
        out.append(buf, n);
        eof = result == asio::error::eof;
        if (result && !eof) {
            err = result.message();
            return false;
        }
        return true;
    }

    void close() {
        asio::error_code ignore;
        sock_.close(ignore);
    }

  private:
    template <typename Pred>
    bool wait(Pred done) {
        const auto deadline = std::chrono::steady_clock::now() + kStepTimeout;
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) {
                asio::error_code ignore;
                sock_.cancel(ignore);
                io_.restart();
                io_.run_for(std::chrono::milliseconds(100));  // let the cancelled op finish
                return false;
            }
            if (io_.stopped()) io_.restart();
            io_.run_one_for(std::chrono::milliseconds(50));
        }
        return true;
    }

    asio::io_context& io_;
    tcp::socket sock_;
};

using cfg00 = quiet_config;
using msg_manager = cfg00::con_msg_manager_type;
using message00 = cfg00::message_type;

class hybi00_session {
  public:
    hybi00_session(unsigned short port, std::string label)
        : port_(port),
          label_(std::move(label)),
          sock_(io_),
          manager_(websocketpp::lib::make_shared<msg_manager>()),
          proc_(false, false, manager_) {}

    // The opening handshake; true if the connection is open.
    bool open(const hixie76_keys& keys, const std::string& path, const std::string& origin,
              const std::string& protocol) {
        std::string err;
        if (!sock_.connect(port_, err)) {
            check(false, label_ + "TCP connect", err);
            return false;
        }
        websocketpp::http::parser::request req;
        req.set_method("GET");
        req.set_uri(path);
        req.set_version("HTTP/1.1");
        const std::string host = "127.0.0.1:" + std::to_string(port_);
        req.append_header("Host", host);
        req.append_header("Upgrade", "WebSocket");
        req.append_header("Connection", "Upgrade");
        req.append_header("Sec-WebSocket-Key1", keys.key1);
        req.append_header("Sec-WebSocket-Key2", keys.key2);
        if (!protocol.empty()) req.append_header("Sec-WebSocket-Protocol", protocol);
        req.append_header("Origin", origin);
        // -76: key3 follows the head as 8 raw bytes (no Content-Length).
        if (!sock_.write(req.raw_head() + keys.key3, err)) {
            check(false, label_ + "send handshake", err);
            return false;
        }

        websocketpp::http::parser::response res;
        std::string pending;
        std::size_t head_len = 0;
        bool eof = false;
        try {
            while (!res.headers_ready()) {
                std::string chunk;
                if (!sock_.read_some(chunk, eof, err) || (eof && chunk.empty())) {
                    check(false, label_ + "read handshake response", eof ? "EOF" : err);
                    return false;
                }
                head_len += res.consume(chunk.data(), chunk.size());
                pending += chunk;
            }
        } catch (const websocketpp::http::exception& e) {
            check(false, label_ + "parse handshake response (WebSocket++ http parser)", e.what());
            return false;
        }
        buffer_ = pending.substr(head_len);
        while (buffer_.size() < 16) {
            if (!sock_.read_some(buffer_, eof, err) || eof) {
                check(false, label_ + "read 16-byte challenge answer", eof ? "EOF" : err);
                return false;
            }
        }
        const std::string answer = buffer_.substr(0, 16);
        buffer_.erase(0, 16);

        bool ok = res.get_status_code() == websocketpp::http::status_code::switching_protocols;
        check(ok, label_ + "status 101",
              std::to_string(res.get_status_code()) + " " + res.get_status_msg());
        check(res.get_status_msg() == "WebSocket Protocol Handshake",
              label_ + "reason phrase 'WebSocket Protocol Handshake'", res.get_status_msg());
        check(res.get_header("Upgrade") == "WebSocket", label_ + "Upgrade: WebSocket",
              res.get_header("Upgrade"));
        check(res.get_header("Connection") == "Upgrade", label_ + "Connection: Upgrade",
              res.get_header("Connection"));
        check(res.get_header("Sec-WebSocket-Location") == "ws://" + host + path,
              label_ + "Sec-WebSocket-Location", res.get_header("Sec-WebSocket-Location"));
        check(res.get_header("Sec-WebSocket-Origin") == origin, label_ + "Sec-WebSocket-Origin",
              res.get_header("Sec-WebSocket-Origin"));
        if (!protocol.empty())
            check(res.get_header("Sec-WebSocket-Protocol") == protocol,
                  label_ + "Sec-WebSocket-Protocol echoed",
                  res.get_header("Sec-WebSocket-Protocol"));
        const bool challenge_ok = answer == keys.expected;
        check(challenge_ok, label_ + "16-byte challenge answer (WebSocket++ md5)",
              describe_mismatch(answer, keys.expected));
        return ok && challenge_ok;
    }

    // Sends the messages as hybi00 frames (all in one write when burst) and checks the echoes.
    void echo(const std::string& what, const std::vector<std::string>& messages) {
        std::string wire;
        for (const auto& m : messages) {
            auto in = manager_->get_message(websocketpp::frame::opcode::text, m.size());
            in->set_payload(m);
            auto out = manager_->get_message();
            const auto ec = proc_.prepare_data_frame(in, out);
            if (ec) {
                check(false, label_ + what, "prepare_data_frame: " + ec.message());
                return;
            }
            wire += out->get_header() + out->get_payload();
        }
        std::string err;
        if (!sock_.write(wire, err)) {
            check(false, label_ + what, err);
            return;
        }
        std::vector<std::string> got;
        while (got.size() < messages.size()) {
            if (!drain(got, err)) {
                check(false, label_ + what, err);
                return;
            }
            if (!got.empty() && got.size() < messages.size() && buffer_.empty()) {
                bool eof = false;
                if (!sock_.read_some(buffer_, eof, err) || eof) {
                    check(false, label_ + what,
                          eof ? "EOF after " + std::to_string(got.size()) + " echoes" : err);
                    return;
                }
            }
        }
        for (std::size_t i = 0; i < messages.size(); ++i) {
            if (got[i] != messages[i]) {
                check(
                    false, label_ + what + " echoed exactly",
                    "message " + std::to_string(i) + ": " + describe_mismatch(got[i], messages[i]));
                return;
            }
        }
        check(true, label_ + what + " echoed exactly");
    }

    // Client-initiated close: WebSocket++'s hybi00 close frame (FF 00); expect FF 00, then EOF.
    void close() {
        auto out = manager_->get_message();
        const auto pec = proc_.prepare_close(websocketpp::close::status::normal, "", out);
        std::string err;
        if (pec || !sock_.write(out->get_header() + out->get_payload(), err)) {
            check(false, label_ + "send close (FF 00)", pec ? pec.message() : err);
            return;
        }
        bool eof = false;
        while (!eof && buffer_.size() < 2) {
            if (!sock_.read_some(buffer_, eof, err)) {
                check(false, label_ + "close answered with FF 00", err);
                return;
            }
        }
        check(buffer_.substr(0, 2) == std::string("\xff\x00", 2),
              label_ + "close answered with FF 00", hex_prefix(buffer_));
        buffer_.erase(0, std::min<std::size_t>(2, buffer_.size()));
        while (!eof) {
            if (!sock_.read_some(buffer_, eof, err)) {
                check(false, label_ + "server closes TCP after FF 00", err);
                return;
            }
        }
        check(buffer_.empty(), label_ + "server closes TCP after FF 00, nothing else sent",
              hex_prefix(buffer_));
        sock_.close();
    }

    // The hybi00 processor cannot frame binary data (hixie-76 has no binary frames).
    void probe_binary() {
        auto in = manager_->get_message(websocketpp::frame::opcode::binary, 4);
        in->set_payload("\x01\x02\x03\x04");
        auto out = manager_->get_message();
        const auto ec = proc_.prepare_data_frame(in, out);
        info(label_ + "WebSocket++ hybi00 binary / ping: " + (ec ? ec.message() : "accepted?") +
             " (hixie-76 has neither)");
    }

  private:
    // Feeds buffered bytes to the hybi00 processor, appending complete messages to `got`.
    bool drain(std::vector<std::string>& got, std::string& err) {
        if (buffer_.empty()) {
            bool eof = false;
            if (!sock_.read_some(buffer_, eof, err)) return false;
            if (eof && buffer_.empty()) {
                err = "EOF";
                return false;
            }
        }
        while (!buffer_.empty()) {
            websocketpp::lib::error_code ec;
            const std::size_t used =
                proc_.consume(reinterpret_cast<std::uint8_t*>(&buffer_[0]), buffer_.size(), ec);
            if (ec) {
                err = "hybi00 consume: " + ec.message() + " at [" + hex_prefix(buffer_) + "]";
                return false;
            }
            buffer_.erase(0, used);
            if (proc_.ready()) got.push_back(proc_.get_message()->get_payload());
            if (used == 0) break;
        }
        return true;
    }

    unsigned short port_;
    std::string label_;
    asio::io_context io_;
    timed_socket sock_;
    msg_manager::ptr manager_;
    websocketpp::processor::hybi00<cfg00> proc_;
    std::string buffer_;
};

void run_hybi00(unsigned short port) {
    const std::string origin = "http://example.com";
    {
        hybi00_session s(port, "v0 (hybi-00/hixie-76, spec sample keys): ");
        if (s.open(spec_sample_keys(), "/demo", origin, "sample")) {
            s.echo("text ascii", {"Hello from WebSocket++ hybi00"});
            s.close();
        }
    }
    std::mt19937 rng(76);
    {
        hybi00_session s(port, "v0 (hybi-00/hixie-76, random keys): ");
        if (s.open(random_keys(rng), "/wspp?v=0", "http://wspp.example", "")) {
            s.echo("text empty", {""});
            s.echo("text utf-8", {utf8_sample()});
            s.echo("text 64 KiB", {text_of(65536)});
            s.echo("text 64 KiB utf-8", {utf8_of(65536 / 3 + 1)});
            std::vector<std::string> burst;
            for (int i = 0; i < 20; ++i)
                burst.push_back("burst #" + std::to_string(i) + " " +
                                text_of(static_cast<std::size_t>(i * 37)));
            s.echo("burst of 20 frames in one write, in order", burst);
            s.probe_binary();
            s.close();
        }
    }
    for (int i = 0; i < 3; ++i) {
        hybi00_session s(port, "v0 (random keys #" + std::to_string(i + 2) + "): ");
        if (s.open(random_keys(rng), "/", "null", "")) {
            s.echo("text", {"round " + std::to_string(i)});
            s.close();
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: websocketpp_client PORT\n";
        return 2;
    }
    const long port_l = std::strtol(argv[1], nullptr, 10);
    if (port_l <= 0 || port_l > 65535) {
        std::cerr << "websocketpp_client: bad port '" << argv[1] << "'\n";
        return 2;
    }
    const auto port = static_cast<unsigned short>(port_l);
    std::cout << websocketpp::user_agent << " against ws://127.0.0.1:" << port << "/\n";
    probe_stock_client_versions();
    try {
        {
            session<config13> s(13, port);
            s.run();
        }
        {
            session<config08> s(8, port);
            s.run();
        }
        {
            session<config07> s(7, port);
            s.run();
        }
        run_hybi00(port);
    } catch (const std::exception& e) {
        check(false, "no exception", e.what());
    }
    std::cout << g_passed << " passed, " << g_failed << " failed\n";
    return g_failed == 0 ? 0 : 1;
}
