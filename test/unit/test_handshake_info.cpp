#include <doctest/doctest.h>
#include <ostream>

#include "wscoro/handshake_info.hpp"

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
}
