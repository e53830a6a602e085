// Production edges over 127.0.0.1: wss://, SNI, mutual TLS, start-up errors, secure_proxy,
// forwarding headers, the handshake hook, subprotocols, health check, Flash policy.

#include <doctest/doctest.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <ostream>

#include "server_fixture.hpp"
#include "test_certs.hpp"
#include "wscoro/connection.hpp"
#include "wscoro/protocol/handshake.hpp"

using namespace wscoro;
using namespace wscoro::test;
using protocol::event_kind;
using protocol::opcode;

namespace {

asio::awaitable<void> echo(connection ws) {
    while (auto msg = co_await ws.receive())
        co_await ws.send(*msg);
}

std::string peer_cn(SSL* ssl) {
    X509* cert = SSL_get1_peer_certificate(ssl);
    if (!cert) return {};
    char buf[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    X509_free(cert);
    return buf;
}

// The raw answer to `request`, up to the server's close.
asio::awaitable<std::string> exchange(server_fixture& f, std::string request) {
    auto c = co_await ws_client::connect_raw(f.endpoint());
    co_await c.write_raw(request);
    co_return co_await c.read_until_eof();
}

asio::awaitable<void> check_echo(server_fixture& f) {
    auto c = co_await ws_client::connect(f.endpoint());
    co_await c.send_text("still serving");
    auto r = co_await c.next();
    CHECK(r.text() == "still serving");
}

// Over a TLS connection the test opened itself: the upgrade, then one text message echoed.
asio::awaitable<void> upgrade_and_echo(std::shared_ptr<asio::ssl::context> ctx,
                                       ws_client::tls_stream ts, std::string text) {
    ws_client c(std::move(ctx), std::move(ts));
    const auto key = protocol::generate_key();
    co_await c.write_raw(protocol::client_request("localhost", "/", key));
    const auto head = co_await c.read_http_head();
    CHECK_FALSE(protocol::check_accept_response(head, key));
    co_await c.send_text(text);
    auto r = co_await c.next();
    CHECK(r.text() == text);
}

// What listen() throws with these options ("" if it does not).
std::string listen_error(const server_options& o) {
    asio::io_context io;
    server srv(io.get_executor(), o);
    try {
        srv.listen();
    } catch (const std::system_error& e) {
        return e.what();
    }
    return {};
}

std::string upgrade_request(std::string_view target, std::string_view extra = {}) {
    auto r = protocol::client_request("127.0.0.1", target, "dGhlIHNhbXBsZSBub25jZQ==");
    r.insert(r.size() - 2, extra);
    return r;
}

}  // namespace

TEST_SUITE("edges") {
    TEST_CASE("wss:// echo with PEM strings; secure() and TLS details") {
        const auto cert = make_self_signed("localhost");
        server_fixture f;
        f.options.secure = true;
        f.options.tls.cert = cert.cert_pem;
        f.options.tls.private_key = cert.key_pem;
        std::optional<handshake_info> seen;
        f.start([&](connection ws) -> asio::awaitable<void> {
            seen = ws.handshake();
            co_await echo(ws);
        });
        f.run([&]() -> asio::awaitable<void> {
            tls_client_options tls{"localhost", cert.cert_pem, {}, {}};
            auto c = co_await ws_client::connect(f.endpoint(), "/secure", {}, &tls);
            co_await c.send_text("over TLS");
            auto r = co_await c.next();
            CHECK(r.text() == "over TLS");
            const auto big = pattern(300000);
            co_await c.send_frame(opcode::binary, big);
            auto r2 = co_await c.next();
            CHECK(r2.payload == big);
            co_await c.send_close(1000);
            auto closing = co_await c.next();
            CHECK(closing.kind == event_kind::close);
        });
        REQUIRE(seen);
        CHECK(seen->secure());
        CHECK(seen->tls().version.rfind("TLSv1.", 0) == 0);
        CHECK_FALSE(seen->tls().cipher.empty());
        CHECK(seen->tls().server_name == "localhost");
    }

    TEST_CASE("certificate and encrypted key from files, with the password") {
        const auto cert = make_self_signed("localhost", "s3cret");
        server_fixture f;
        f.options.secure = true;
        f.options.tls.cert_chain_file = write_temp_file("c1.pem", cert.cert_pem);
        f.options.tls.private_key_file = write_temp_file("k1.pem", cert.key_pem);
        f.options.tls.private_key_pass = "s3cret";
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            tls_client_options tls{"localhost", cert.cert_pem, {}, {}};
            auto c = co_await ws_client::connect(f.endpoint(), "/", {}, &tls);
            co_await c.send_text("ok");
            auto r = co_await c.next();
            CHECK(r.text() == "ok");
        });
    }

    TEST_CASE("a bad key, certificate or password fails at start-up with a clear message") {
        const auto cert = make_self_signed("localhost", "right");
        const auto other = make_self_signed("other");
        struct bad {
            tls_options tls;
            std::string expect;
        };
        std::vector<bad> cases(5);
        cases[0].tls.cert = cert.cert_pem;
        cases[0].tls.private_key = cert.key_pem;
        cases[0].tls.private_key_pass = "wrong";
        cases[0].expect = "private key";
        cases[1].tls.cert = cert.cert_pem;
        cases[1].tls.private_key = other.key_pem;
        cases[1].expect = "does not match";
        cases[2].tls.cert_chain_file = "/nonexistent/cert.pem";
        cases[2].tls.private_key = other.key_pem;
        cases[2].expect = "/nonexistent/cert.pem";
        cases[3].tls.cert = "not a certificate";
        cases[3].tls.private_key = other.key_pem;
        cases[3].expect = "certificate";
        cases[4].tls.cert = other.cert_pem;
        cases[4].tls.private_key = other.key_pem;
        cases[4].tls.cipher_list = "NO-SUCH-CIPHER";
        cases[4].expect = "cipher_list";
        for (auto& b : cases) {
            CAPTURE(b.expect);
            server_options o;
            o.port = 0;
            o.secure = true;
            o.tls = b.tls;
            const auto what = listen_error(o);
            CAPTURE(what);
            CHECK(what.find(b.expect) != std::string::npos);
        }
    }

    TEST_CASE("SNI picks the certificate by name") {
        const auto def = make_self_signed("default.test");
        const auto other = make_self_signed("other.test");
        server_fixture f;
        f.options.secure = true;
        f.options.tls.cert = def.cert_pem;
        f.options.tls.private_key = def.key_pem;
        tls_options::sni_certificate s;
        s.server_name = "Other.Test";
        s.cert = other.cert_pem;
        s.private_key = other.key_pem;
        f.options.tls.sni.push_back(s);
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            tls_client_options a{"other.test", {}, {}, {}};
            auto c1 = co_await ws_client::connect(f.endpoint(), "/", {}, &a);
            CHECK(peer_cn(c1.tls_handle()) == "other.test");
            tls_client_options b{"unknown.test", {}, {}, {}};
            auto c2 = co_await ws_client::connect(f.endpoint(), "/", {}, &b);
            CHECK(peer_cn(c2.tls_handle()) == "default.test");
            tls_client_options none{};
            auto c3 = co_await ws_client::connect(f.endpoint(), "/", {}, &none);
            CHECK(peer_cn(c3.tls_handle()) == "default.test");
        });
    }

    TEST_CASE("mutual TLS: the client certificate is verified and visible") {
        const auto server_cert = make_self_signed("localhost");
        const auto client_cert = make_self_signed("alice");
        server_fixture f;
        f.options.secure = true;
        f.options.tls.cert = server_cert.cert_pem;
        f.options.tls.private_key = server_cert.key_pem;
        f.options.tls.verify_peer = true;
        f.options.tls.fail_if_no_peer_cert = true;
        f.options.tls.ca_file = write_temp_file("client-ca.pem", client_cert.cert_pem);
        std::string subject, pem;
        f.start([&](connection ws) -> asio::awaitable<void> {
            subject = ws.handshake().tls().peer_subject;
            pem = ws.handshake().tls().peer_certificate_pem;
            co_await echo(ws);
        });
        f.run([&]() -> asio::awaitable<void> {
            tls_client_options with{"localhost", {}, client_cert.cert_pem, client_cert.key_pem};
            auto c = co_await ws_client::connect(f.endpoint(), "/", {}, &with);
            co_await c.send_text("hi");
            auto r = co_await c.next();
            CHECK(r.text() == "hi");
            bool refused = false;
            try {
                tls_client_options without{"localhost", {}, {}, {}};
                auto c2 = co_await ws_client::connect(f.endpoint(), "/", {}, &without);
                co_await c2.send_text("should not work");
                auto r2 = co_await c2.next();
                refused = r2.kind != event_kind::message;
            } catch (const std::exception&) {
                refused = true;
            }
            CHECK(refused);
        });
        CHECK(subject.find("CN=alice") != std::string::npos);
        CHECK(pem == client_cert.cert_pem);
        CHECK(f.saw_error(error::tls_handshake_failed));
    }

    TEST_CASE("a TLS connection that never handshakes is dropped after the handshake timeout") {
        const auto cert = make_self_signed("localhost");
        server_fixture f;
        f.options.secure = true;
        f.options.tls.cert = cert.cert_pem;
        f.options.tls.private_key = cert.key_pem;
        f.options.timeouts.handshake = std::chrono::milliseconds(200);
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect_raw(f.endpoint());  // plain TCP, silent
            const auto got = co_await c.read_until_eof(std::chrono::seconds(5));
            CHECK(got.empty());
            const bool drained = co_await f.drained();
            CHECK(drained);
        });
        CHECK(f.saw_error(error::handshake_timeout));
    }

    TEST_CASE("secure_proxy marks connections secure without TLS") {
        server_fixture f;
        f.options.secure_proxy = true;
        bool secure = false;
        f.start([&](connection ws) -> asio::awaitable<void> {
            secure = ws.handshake().secure();
            co_await echo(ws);
        });
        f.run([&]() -> asio::awaitable<void> {
            auto c = co_await ws_client::connect(f.endpoint());
            co_await c.send_close(1000);
            (void)co_await c.next();
        });
        CHECK(secure);
    }

    TEST_CASE("X-Forwarded-For and -Proto are believed from trusted proxies only") {
        for (const bool trusted : {true, false}) {
            CAPTURE(trusted);
            server_fixture f;
            f.options.trust_forwarded_headers = true;
            f.options.trusted_proxies = trusted
                                            ? std::vector<std::string>{"10.0.0.0/8", "127.0.0.0/8"}
                                            : std::vector<std::string>{"10.0.0.0/8", "::1"};
            std::string remote, peer;
            bool secure = false;
            f.start([&](connection ws) -> asio::awaitable<void> {
                remote = ws.handshake().remote_endpoint().address().to_string();
                peer = ws.handshake().tcp_peer_endpoint().address().to_string();
                secure = ws.handshake().secure();
                co_await echo(ws);
            });
            f.run([&]() -> asio::awaitable<void> {
                auto c = co_await ws_client::connect(
                    f.endpoint(), "/",
                    "X-Forwarded-For: 198.51.100.9, 203.0.113.7, 10.1.2.3\r\n"
                    "X-Forwarded-Proto: https\r\n");
                co_await c.send_close(1000);
                (void)co_await c.next();
            });
            CHECK(peer == "127.0.0.1");
            CHECK(remote == (trusted ? "203.0.113.7" : "127.0.0.1"));
            CHECK(secure == trusted);
        }
    }

    TEST_CASE("bad trusted proxy entries fail at start-up") {
        asio::io_context io;
        server_options o;
        o.port = 0;
        o.trusted_proxies = {"10.0.0.0/33"};
        server srv(io.get_executor(), o);
        CHECK_THROWS_AS(srv.listen(), std::invalid_argument);
    }

    TEST_CASE("the handshake hook authenticates, routes and picks one subprotocol") {
        server_fixture f;
        f.options.on_handshake =
            [](const handshake_info& h) -> asio::awaitable<handshake_decision> {
            // An asynchronous check, as a real one (a token service) would be.
            asio::steady_timer t(co_await asio::this_coro::executor);
            t.expires_after(std::chrono::milliseconds(5));
            co_await t.async_wait(asio::use_awaitable);
            if (h.path() == "/boom") throw std::runtime_error("hook failed on purpose");
            if (h.path() != "/chat") co_return handshake_decision::reject(404, "no such room\n");
            if (h.query("token") != "good") {
                auto d = handshake_decision::reject(401, "who are you?\n");
                d.headers.push_back({"WWW-Authenticate", "Bearer"});
                co_return d;
            }
            for (auto p : h.subprotocols())
                if (p == "chat.v2") co_return handshake_decision::accept(std::string(p));
            if (!h.subprotocols().empty()) co_return handshake_decision::accept("made-up");
            co_return handshake_decision::accept();
        };
        std::string chosen;
        f.start([&](connection ws) -> asio::awaitable<void> {
            chosen = std::string(ws.handshake().subprotocol());
            co_await echo(ws);
        });
        f.run([&]() -> asio::awaitable<void> {
            const auto unauthorized = co_await exchange(f, upgrade_request("/chat?token=bad"));
            CHECK(unauthorized.rfind("HTTP/1.1 401 Unauthorized\r\n", 0) == 0);
            CHECK(unauthorized.find("WWW-Authenticate: Bearer\r\n") != std::string::npos);
            CHECK(unauthorized.find("who are you?") != std::string::npos);

            const auto not_found = co_await exchange(f, upgrade_request("/elsewhere"));
            CHECK(not_found.rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);

            const auto threw = co_await exchange(f, upgrade_request("/boom"));
            CHECK(threw.rfind("HTTP/1.1 500 ", 0) == 0);

            const auto invented = co_await exchange(
                f, upgrade_request("/chat?token=good", "Sec-WebSocket-Protocol: chat.v1\r\n"));
            CHECK(invented.rfind("HTTP/1.1 500 ", 0) == 0);

            auto c = co_await ws_client::connect_raw(f.endpoint());
            co_await c.write_raw(upgrade_request("/chat?token=good",
                                                 "Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n"
                                                 "Sec-WebSocket-Protocol: chat.v3\r\n"));
            const auto head = co_await c.read_http_head();
            CHECK(head.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0) == 0);
            CHECK(head.find("\r\nSec-WebSocket-Protocol: chat.v2\r\n") != std::string::npos);
            co_await c.send_text("in");
            auto r = co_await c.next();
            CHECK(r.text() == "in");
        });
        CHECK(chosen == "chat.v2");
        CHECK(f.saw_error(error::handshake_rejected));
        CHECK(f.saw_error(error::invalid_subprotocol));
        CHECK(f.saw_error(error::application_error));
    }

    TEST_CASE("health check: opt-in 200 OK, otherwise a plain GET gets 426") {
        server_fixture f;
        f.options.health_check_path = "/healthcheck";
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            const auto ok = co_await exchange(f, "GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n");
            CHECK(ok.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
            CHECK(ok.size() >= 2);
            CHECK(ok.substr(ok.size() - 2) == "OK");
            const auto other =
                co_await exchange(f, "GET /healthcheckXYZ HTTP/1.1\r\nHost: x\r\n\r\n");
            CHECK(other.rfind("HTTP/1.1 426 ", 0) == 0);
        });
        server_fixture off;
        off.start(echo);
        off.run([&]() -> asio::awaitable<void> {
            const auto r = co_await exchange(off, "GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n");
            CHECK(r.rfind("HTTP/1.1 426 ", 0) == 0);
        });
    }

    TEST_CASE("Flash policy requests get the policy and a NUL; can be customised or off") {
        const std::string request("<policy-file-request/>\0", 23);
        server_fixture f;
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            const auto r = co_await exchange(f, request);
            CHECK(r == f.options.flash_policy_xml + std::string(1, '\0'));
            CHECK(r.find("domain=\"*\" to-ports=\"*\"") != std::string::npos);
            // in pieces, with white space before "/>"
            auto c = co_await ws_client::connect_raw(f.endpoint());
            co_await c.write_raw("<policy-file");
            co_await sleep_for(std::chrono::milliseconds(20));
            co_await c.write_raw("-request  />");
            const auto r2 = co_await c.read_until_eof();
            CHECK(r2 == f.options.flash_policy_xml + std::string(1, '\0'));
            co_await check_echo(f);
        });
        server_fixture custom;
        custom.options.flash_policy_xml = "<cross-domain-policy/>";
        custom.start(echo);
        custom.run([&]() -> asio::awaitable<void> {
            const auto r = co_await exchange(custom, request);
            CHECK(r == std::string("<cross-domain-policy/>\0", 23));
        });
        server_fixture off;
        off.options.flash_policy = false;
        off.start(echo);
        off.run([&]() -> asio::awaitable<void> {
            const auto r = co_await exchange(off, request);
            CHECK(r.rfind("HTTP/1.1 400 ", 0) == 0);
        });
    }

    TEST_CASE("rethrow_handler_exceptions: the exception leaves io_context::run()") {
        asio::io_context io(1);
        server_options o;
        o.port = 0;
        o.rethrow_handler_exceptions = true;
        o.on_error = [](const error_report&) {};
        server srv(io.get_executor(), o);
        srv.serve([](connection) -> asio::awaitable<void> {
            throw std::runtime_error("em-websocket style");
            co_return;
        });
        const asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"),
                                         srv.local_endpoint().port());
        bool client_done = false;
        asio::co_spawn(
            io,
            [ep, &client_done]() -> asio::awaitable<void> {
                auto c = co_await ws_client::connect(ep);
                auto r = co_await c.next();
                if (r.kind == event_kind::close) co_await c.send_close(1011);
                client_done = true;
            },
            asio::detached);
        std::string what;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (what.empty() && std::chrono::steady_clock::now() < deadline) {
            try {
                io.run_for(std::chrono::milliseconds(50));
            } catch (const std::runtime_error& e) {
                what = e.what();
            }
            if (io.stopped()) io.restart();
        }
        CHECK(what == "em-websocket style");
    }

    TEST_CASE("PROXY protocol v1 and v2 from a trusted proxy give the real client") {
        server_fixture f;
        f.options.proxy_protocol = true;
        f.options.trusted_proxies = {"127.0.0.1"};
        std::vector<std::string> remotes;
        f.start([&](connection ws) -> asio::awaitable<void> {
            const auto& r = ws.handshake().remote_endpoint();
            remotes.push_back(r.address().to_string() + ":" + std::to_string(r.port()));
            co_await echo(ws);
        });
        f.run([&]() -> asio::awaitable<void> {
            // v1, then the upgrade request in the same write
            auto c = co_await ws_client::connect_raw(f.endpoint());
            co_await c.write_raw("PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n" +
                                 upgrade_request("/"));
            auto head = co_await c.read_http_head();
            CHECK(head.rfind("HTTP/1.1 101 ", 0) == 0);
            // v2, IPv6: signature, PROXY command, TCP over IPv6, 36 address bytes
            std::string v2("\r\n\r\n\0\r\nQUIT\n", 12);
            v2 += '\x21';
            v2 += '\x21';
            v2 += std::string("\x00\x24", 2);
            std::string src(16, '\0'), dst(16, '\0');
            src[0] = '\x20';
            src[1] = '\x01';
            src[2] = '\x0d';
            src[3] = '\xb8';
            src[15] = '\x07';
            dst[15] = '\x01';
            v2 += src + dst + std::string("\x1f\x90\x01\xbb", 4);  // ports 8080 -> 443
            auto c2 = co_await ws_client::connect_raw(f.endpoint());
            co_await c2.write_raw(v2);
            co_await sleep_for(std::chrono::milliseconds(10));
            co_await c2.write_raw(upgrade_request("/"));
            head = co_await c2.read_http_head();
            CHECK(head.rfind("HTTP/1.1 101 ", 0) == 0);
            // a trusted peer without the header is refused
            const auto refused = co_await exchange(f, upgrade_request("/"));
            CHECK(refused.rfind("HTTP/1.1 400 ", 0) == 0);
            co_await c.send_close(1000);
            co_await c2.send_close(1000);
            (void)co_await c.next();
            (void)co_await c2.next();
        });
        REQUIRE(remotes.size() == 2);
        CHECK(remotes[0] == "192.0.2.10:56324");
        CHECK(remotes[1] == "2001:db8::7:8080");
        CHECK(f.saw_error(error::bad_proxy_header));
    }

    TEST_CASE("a PROXY header is not accepted from untrusted peers") {
        server_fixture f;
        f.options.proxy_protocol = true;
        f.options.trusted_proxies = {"10.0.0.0/8"};
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            const auto r = co_await exchange(
                f, "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n" + upgrade_request("/"));
            CHECK(r.rfind("HTTP/1.1 400 ", 0) == 0);
            co_await check_echo(f);  // and a direct client needs no header
        });
    }

    TEST_CASE("PROXY header, then TLS") {
        const auto cert = make_self_signed("localhost");
        server_fixture f;
        f.options.secure = true;
        f.options.tls.cert = cert.cert_pem;
        f.options.tls.private_key = cert.key_pem;
        f.options.proxy_protocol = true;
        f.options.trusted_proxies = {"127.0.0.1"};
        std::string remote;
        f.start([&](connection ws) -> asio::awaitable<void> {
            remote = ws.handshake().remote_endpoint().address().to_string();
            co_await echo(ws);
        });
        f.run([&]() -> asio::awaitable<void> {
            // The proxy writes its header, then relays the client's TLS bytes.
            asio::ip::tcp::socket s(co_await asio::this_coro::executor);
            co_await s.async_connect(f.endpoint(), asio::use_awaitable);
            const std::string hdr = "PROXY TCP4 203.0.113.5 198.51.100.1 40000 443\r\n";
            co_await asio::async_write(s, asio::buffer(hdr), asio::use_awaitable);
            auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
            ctx->set_verify_mode(asio::ssl::verify_none);
            ws_client::tls_stream ts(std::move(s), *ctx);
            co_await ts.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
            std::string text = "through the proxy";
            co_await upgrade_and_echo(ctx, std::move(ts), std::move(text));
        });
        CHECK(remote == "203.0.113.5");
    }

    TEST_CASE("TLS tuning: min_version and key-exchange groups") {
        const auto cert = make_self_signed("localhost");
        server_fixture f;
        f.options.secure = true;
        f.options.tls.cert = cert.cert_pem;
        f.options.tls.private_key = cert.key_pem;
        f.options.tls.min_version = tls_version::tls1_3;
        f.options.tls.ecdh_curve = "X25519:P-256";
        std::string version;
        f.start([&](connection ws) -> asio::awaitable<void> {
            version = ws.handshake().tls().version;
            co_await echo(ws);
        });
        f.run([&]() -> asio::awaitable<void> {
            tls_client_options tls{"localhost", cert.cert_pem, {}, {}};
            auto c = co_await ws_client::connect(f.endpoint(), "/", {}, &tls);
            co_await c.send_text("1.3");
            auto r = co_await c.next();
            CHECK(r.text() == "1.3");
        });
        CHECK(version == "TLSv1.3");
        // a bad group list is a start-up error
        server_options o;
        o.port = 0;
        o.secure = true;
        o.tls.cert = cert.cert_pem;
        o.tls.private_key = cert.key_pem;
        o.tls.ecdh_curve = "NO-SUCH-GROUP";
        CHECK(listen_error(o).find("ecdh_curve") != std::string::npos);
    }

    TEST_CASE("TLS dhparam_file: DHE uses the file's group; a bad file is a start-up error") {
        const auto cert = make_self_signed_rsa("localhost");
        const auto dh_file = write_temp_file("ffdhe3072.pem", dh_parameters_pem("ffdhe3072"));
        // One connection whose client offers only DHE-RSA over TLS 1.2: the size in bits of
        // the server's DH key, after an echo over the connection.
        auto dhe_bits = [&](const std::string& dhparam_file) {
            server_fixture f;
            f.options.secure = true;
            f.options.tls.cert = cert.cert_pem;
            f.options.tls.private_key = cert.key_pem;
            f.options.tls.dhparam_file = dhparam_file;
            std::string cipher;
            int bits = 0;
            f.start([&](connection ws) -> asio::awaitable<void> {
                cipher = ws.handshake().tls().cipher;
                co_await echo(ws);
            });
            f.run([&]() -> asio::awaitable<void> {
                asio::ip::tcp::socket s(co_await asio::this_coro::executor);
                co_await s.async_connect(f.endpoint(), asio::use_awaitable);
                auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
                ctx->set_verify_mode(asio::ssl::verify_none);
                REQUIRE(SSL_CTX_set_max_proto_version(ctx->native_handle(), TLS1_2_VERSION) == 1);
                REQUIRE(SSL_CTX_set_cipher_list(ctx->native_handle(),
                                                "DHE-RSA-AES128-GCM-SHA256") == 1);
                ws_client::tls_stream ts(std::move(s), *ctx);
                co_await ts.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
                EVP_PKEY* server_key = nullptr;
                if (SSL_get_peer_tmp_key(ts.native_handle(), &server_key) == 1) {
                    bits = EVP_PKEY_get_bits(server_key);
                    EVP_PKEY_free(server_key);
                }
                std::string text = "over DHE";
                co_await upgrade_and_echo(ctx, std::move(ts), std::move(text));
            });
            CHECK(cipher == "DHE-RSA-AES128-GCM-SHA256");
            return bits;
        };
        CHECK(dhe_bits(dh_file) == 3072);
        // Without the file, OpenSSL picks the group by the key's strength (RSA 2048: 2048).
        CHECK(dhe_bits({}) == 2048);
        // A missing or malformed file is a start-up error that names the option.
        for (const auto& bad :
             {std::string("/nonexistent/dh.pem"), write_temp_file("not-dh.pem", "hello\n")}) {
            CAPTURE(bad);
            server_options o;
            o.port = 0;
            o.secure = true;
            o.tls.cert = cert.cert_pem;
            o.tls.private_key = cert.key_pem;
            o.tls.dhparam_file = bad;
            CHECK(listen_error(o).find("dhparam_file") != std::string::npos);
        }
    }

    TEST_CASE("secure_proxy: hixie Location headers use wss://") {
        server_fixture f;
        f.options.secure_proxy = true;
        f.start(echo);
        f.run([&]() -> asio::awaitable<void> {
            const std::string req =
                "GET /p?q=1 HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\n"
                "Upgrade: WebSocket\r\nOrigin: http://example.test\r\n"
                "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\n"
                "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n\r\n^n:ds[4U";
            auto c = co_await ws_client::connect_raw(f.endpoint());
            co_await c.write_raw(req);
            const auto head = co_await c.read_http_head();
            CHECK(head.find("\r\nSec-WebSocket-Location: wss://example.test/p?q=1\r\n") !=
                  std::string::npos);
            const std::string r75 =
                "GET /p HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\n"
                "Upgrade: WebSocket\r\nOrigin: http://example.test\r\n\r\n";
            auto c2 = co_await ws_client::connect_raw(f.endpoint());
            co_await c2.write_raw(r75);
            const auto head75 = co_await c2.read_http_head();
            CHECK(head75.find("\r\nWebSocket-Location: wss://example.test/p\r\n") !=
                  std::string::npos);
        });
    }
}
