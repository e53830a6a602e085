#include <doctest/doctest.h>
#include <ostream>

#include "wscoro/handshake_info.hpp"

namespace wscoro::detail {
// The private fold()/unfold() (parked connections keep their handshake folded).
struct handshake_info_access {
    static std::string fold(const handshake_info& h) { return h.fold(); }
    static handshake_info unfold(std::string_view s) { return handshake_info::unfold(s); }
    static void set_peer(handshake_info& h, asio::ip::tcp::endpoint e) { h.tcp_peer_ = e; }
    static void set_subprotocol(handshake_info& h, std::string s) { h.subprotocol_ = s; }
};
}  // namespace wscoro::detail

namespace {
wscoro::protocol::http_request make_request(std::string target) {
    wscoro::protocol::http_request r;
    r.method = "GET";
    r.target = std::move(target);
    r.headers = {
        {"Host", "example.test"}, {"origin", "http://a.test"}, {"X-Two", "1"}, {"x-two", "2"}};
    return r;
}
}  // namespace

TEST_SUITE("handshake_info") {
    TEST_CASE("path, query string and decoded parameters") {
        const wscoro::handshake_info h(make_request("/a%20b/c?x=1&y=hello+world&z&x=%41%zz&=v"), 13,
                                       false, {}, {});
        CHECK(h.path() == "/a%20b/c");  // not decoded, as em-websocket
        CHECK(h.query_string() == "x=1&y=hello+world&z&x=%41%zz&=v");
        CHECK(h.target() == "/a%20b/c?x=1&y=hello+world&z&x=%41%zz&=v");
        REQUIRE(h.query_params().size() == 5);
        CHECK(h.query_params()[1].second == "hello world");
        CHECK(h.query_params()[2].first == "z");
        CHECK(h.query_params()[2].second == "");
        CHECK(h.query("x") == "A%zz");  // last one wins; a bad escape stays literal
        CHECK(h.query("") == "v");
        CHECK_FALSE(h.query("nope").has_value());
        CHECK(h.protocol_version() == 13);
        CHECK_FALSE(h.secure());
    }

    TEST_CASE("no query") {
        const wscoro::handshake_info h(make_request("/"), 13, true, {}, {});
        CHECK(h.path() == "/");
        CHECK(h.query_string() == "");
        CHECK(h.query_params().empty());
        CHECK(h.secure());
    }

    TEST_CASE("origin and headers are case-insensitive, repeats kept") {
        const wscoro::handshake_info h(make_request("/"), 13, false, {}, {});
        CHECK(h.origin() == "http://a.test");
        CHECK(h.header("HOST") == "example.test");
        CHECK(h.header("x-TWO") == "1");
        CHECK(h.headers().size() == 4);
        auto r = make_request("/");
        r.headers = {{"Sec-WebSocket-Origin", "http://old.test"}};
        const wscoro::handshake_info old(std::move(r), 8, false, {}, {});
        CHECK(old.origin() == "http://old.test");
    }

    TEST_CASE("fold and unfold give back every field (IPv4 and IPv6, proxied or not)") {
        using access = wscoro::detail::handshake_info_access;
        using asio::ip::make_address;
        using asio::ip::tcp;
        for (bool v6 : {false, true}) {
            for (bool proxied : {false, true}) {
                CAPTURE(v6);
                CAPTURE(proxied);
                auto req = make_request("/chat/room?x=1&name=a%20b&flag");
                req.headers.push_back({"Sec-WebSocket-Protocol", "chat, superchat"});
                req.headers.push_back({"X-Long", std::string(300, 'v')});  // multi-byte length
                req.headers.push_back({"X-Empty", ""});
                req.version_minor = 1;
                const tcp::endpoint remote(make_address(v6 ? "2001:db8::7" : "192.0.2.7"), 50123);
                const tcp::endpoint local(make_address(v6 ? "::1" : "127.0.0.1"), 8080);
                wscoro::handshake_info h(req, 13, v6, remote, local);
                if (proxied) access::set_peer(h, tcp::endpoint(make_address("10.1.2.3"), 4444));
                access::set_subprotocol(h, "superchat");
                const auto folded = access::fold(h);
                const auto back = access::unfold(folded);
                CHECK(back.target() == h.target());
                CHECK(back.path() == "/chat/room");
                CHECK(back.query_string() == h.query_string());
                CHECK(back.query_params() == h.query_params());
                CHECK(back.query("name") == std::optional<std::string_view>("a b"));
                CHECK(back.request().method == "GET");
                CHECK(back.request().version_major == 1);
                CHECK(back.request().version_minor == 1);
                REQUIRE(back.headers().size() == h.headers().size());
                for (std::size_t i = 0; i < h.headers().size(); ++i) {
                    CHECK(back.headers()[i].name == h.headers()[i].name);
                    CHECK(back.headers()[i].value == h.headers()[i].value);
                }
                CHECK(back.origin() == h.origin());
                CHECK(back.subprotocols() == h.subprotocols());
                CHECK(back.subprotocol() == "superchat");
                CHECK(back.secure() == v6);
                CHECK(back.protocol_version() == 13);
                CHECK(back.remote_endpoint() == remote);
                CHECK(back.local_endpoint() == local);
                CHECK(back.tcp_peer_endpoint() == h.tcp_peer_endpoint());
                // Compact: the strings and endpoints, a few bytes of framing.
                CHECK(folded.size() < 400 + 300);
                // A truncated record is refused, never read past its end.
                for (std::size_t cut :
                     {std::size_t{0}, std::size_t{3}, folded.size() / 2, folded.size() - 1}) {
                    CHECK_THROWS_AS(access::unfold(std::string_view(folded).substr(0, cut)),
                                    std::invalid_argument);
                }
            }
        }
    }
}
