// libFuzzer target: negotiate() for every protocol version, on requests parsed by
// http_request_parser.
//
// Input: [versions hi][versions lo][flags][n] request head + body [n split-size bytes (unused
// here but kept for a uniform layout)]. The head is parsed; what follows it is the body
// (hixie-76 key3 and frames). Checked: the outcome's fields agree with each other and with
// the documentation, the response is a well-formed HTTP message (no field injection, right
// Content-Length), need_more turns into accepted once 8 body bytes are there, the RFC 6455
// path agrees with check_upgrade, and the 101 answer passes the client-side
// check_accept_response.

#include "fuzz_common.hpp"
#include "wscoro/protocol/handshake.hpp"
#include "wscoro/protocol/negotiate.hpp"

namespace {

using namespace wscoro::protocol;

// The response head (up to and including the empty line) must be CRLF-separated lines with
// no other CR or LF, a status line, then "name: value" fields. Returns the head's size.
std::size_t check_head(const std::string& resp, int status) {
    const auto end = resp.find("\r\n\r\n");
    FUZZ_CHECK(end != std::string::npos);
    const std::string_view head(resp.data(), end + 2);
    const std::string status_line = "HTTP/1.1 " + std::to_string(status) + " ";
    FUZZ_CHECK(head.substr(0, status_line.size()) == status_line);
    std::size_t at = 0;
    bool first = true;
    while (at < head.size()) {
        const auto crlf = head.find("\r\n", at);
        FUZZ_CHECK(crlf != std::string_view::npos);
        const auto line = head.substr(at, crlf - at);
        FUZZ_CHECK(line.find('\r') == std::string_view::npos);
        FUZZ_CHECK(line.find('\n') == std::string_view::npos);
        if (!first) {
            const auto colon = line.find(": ");
            FUZZ_CHECK(colon != std::string_view::npos && colon > 0);
            for (char c : line.substr(0, colon))
                FUZZ_CHECK(c > 0x20 && c < 0x7F && c != ':');
            for (char c : line.substr(colon + 2))
                FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 || c == '\t');
        }
        first = false;
        at = crlf + 2;
    }
    return end + 4;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto in = fuzz::split_input(data, size, 3);
    fuzz::reader cfg{in.config.data(), in.config.size()};
    const std::uint16_t vmask = cfg.u16();
    const std::uint8_t flags = cfg.byte();

    negotiate_options opt;
    opt.secure = (flags & 1) != 0;
    if ((flags & 2) != 0) {
        // A subset of the versions (all of them when the mask is 0).
        static constexpr int all[] = {75, 76, 1, 2, 3, 4, 5, 6, 7, 8, 13};
        if (vmask != 0) {
            opt.versions.clear();
            for (int i = 0; i < 11; ++i)
                if (vmask & (1u << i)) opt.versions.insert(all[i]);
        }
    }
    if ((flags & 4) != 0) opt.extra.push_back({"Sec-WebSocket-Protocol", "chat"});
    if ((flags & 8) != 0) opt.extra.push_back({"X-Extra", "1"});
    std::array<std::byte, 16> nonce{};
    for (std::size_t i = 0; i < nonce.size(); ++i)
        nonce[i] = static_cast<std::byte>(i * 37 + vmask);
    opt.hybi04_nonce = nonce;

    http_request_parser parser;
    const auto stream = fuzz::as_bytes(in.stream);
    const std::size_t used = parser.feed(stream);
    if (!parser.done()) return 0;
    const http_request& req = parser.request();
    const auto body = stream.subspan(used);

    const negotiation r = negotiate(req, body, opt);
    const int detected = detect_version(req);
    FUZZ_CHECK(r.protocol_version == detected);
    FUZZ_CHECK(r.consumed <= body.size());

    switch (r.kind) {
        case negotiation::need_more: {
            FUZZ_CHECK(r.status == 0 && !r.ec && r.response.empty() && r.consumed == 0);
            FUZZ_CHECK(r.nonce.empty());
            FUZZ_CHECK(detected == 76 || (detected >= 1 && detected <= 3));
            FUZZ_CHECK(body.size() < 8);
            // With key3 complete the same request is answered.
            std::vector<std::byte> more(body.begin(), body.end());
            more.resize(8, std::byte{0x5A});
            const negotiation r2 = negotiate(req, more, opt);
            FUZZ_CHECK(r2.kind == negotiation::accepted);
            FUZZ_CHECK(r2.consumed == 8);
            break;
        }
        case negotiation::accepted: {
            FUZZ_CHECK(r.status == 101 && !r.ec);
            FUZZ_CHECK(opt.versions.contains(r.protocol_version));
            FUZZ_CHECK(all_versions().contains(r.protocol_version));
            const std::size_t head = check_head(r.response, 101);
            const bool hixie76 = r.protocol_version == 76 || r.protocol_version <= 3;
            FUZZ_CHECK(r.consumed == (hixie76 ? 8u : 0u));
            FUZZ_CHECK(r.response.size() == head + (hixie76 ? 16u : 0u));
            if (hixie76) {
                // The challenge answer depends only on the keys and key3.
                const auto n1 = hixie76_key_number(*req.header("Sec-WebSocket-Key1"));
                const auto n2 = hixie76_key_number(*req.header("Sec-WebSocket-Key2"));
                FUZZ_CHECK(n1 && n2);
                const auto answer = hixie76_challenge(*n1, *n2, body.first<8>());
                FUZZ_CHECK(answer);
                FUZZ_CHECK(std::memcmp(r.response.data() + head, answer->data(), 16) == 0);
                // Fewer than 8 body bytes: need_more.
                FUZZ_CHECK(negotiate(req, body.first(7), opt).kind == negotiation::need_more);
            } else {
                // The body is not used: without it the answer is the same.
                const negotiation r2 = negotiate(req, {}, opt);
                FUZZ_CHECK(r2.kind == negotiation::accepted && r2.response == r.response);
            }
            if (r.protocol_version == 4) {
                FUZZ_CHECK(r.nonce.size() == 24);
                FUZZ_CHECK(r.response.find("Sec-WebSocket-Nonce: " + r.nonce + "\r\n") !=
                           std::string::npos);
            } else {
                FUZZ_CHECK(r.nonce.empty());
            }
            if (r.protocol_version >= 4 && r.protocol_version <= 13) {
                // The client side accepts our answer.
                const auto key = req.header("Sec-WebSocket-Key");
                FUZZ_CHECK(key.has_value());
                FUZZ_CHECK(
                    !check_accept_response(std::string_view(r.response).substr(0, head), *key));
            }
            for (const auto& f : opt.extra)
                FUZZ_CHECK(r.response.find("\r\n" + f.name + ": " + f.value + "\r\n") !=
                           std::string::npos);
            break;
        }
        case negotiation::rejected: {
            FUZZ_CHECK(r.consumed == 0 && r.nonce.empty());
            FUZZ_CHECK(r.ec);
            if (r.status == 500) {
                FUZZ_CHECK(r.ec == std::errc::resource_unavailable_try_again);
            } else {
                FUZZ_CHECK(r.ec.category() == wscoro::error_category());
                FUZZ_CHECK(wscoro::http_status_for(r.ec) == r.status);
            }
            FUZZ_CHECK(r.status == 400 || r.status == 405 || r.status == 426 || r.status == 500 ||
                       r.status == 505);
            const std::size_t head = check_head(r.response, r.status);
            const std::string cl =
                "\r\nContent-Length: " + std::to_string(r.response.size() - head) + "\r\n";
            FUZZ_CHECK(r.response.find(cl) != std::string::npos && r.response.find(cl) < head);
            if (r.status == 426) FUZZ_CHECK(r.response.find("\r\nUpgrade: websocket\r\n") < head);
            if (r.status == 405) FUZZ_CHECK(r.response.find("\r\nAllow: GET\r\n") < head);
            // The body does not change a rejection.
            FUZZ_CHECK(negotiate(req, {}, opt).response == r.response);
            break;
        }
    }

    // RFC 6455 only: negotiate agrees with check_upgrade. (A request naming version 13 in
    // Sec-WebSocket-Draft instead is em-websocket's quirk, which negotiate follows and the
    // strict check_upgrade does not: see test_negotiate and crashes/negotiate-1.bin.)
    if (detected == 13 && opt.versions.contains(13) && req.header("Sec-WebSocket-Version")) {
        const upgrade_check c = check_upgrade(req);
        FUZZ_CHECK((r.kind == negotiation::accepted) == !c.ec);
        if (c.ec) {
            FUZZ_CHECK(r.ec == c.ec);
            FUZZ_CHECK(r.response == reject_response(c.ec) || r.status == 426);
        } else {
            FUZZ_CHECK(c.protocol_version == 13);
            FUZZ_CHECK(r.response == accept_response(req, opt.extra));
        }
    } else if (detected == 13 && opt.versions.contains(13) && r.kind == negotiation::accepted) {
        // The Draft-field path: everything check_upgrade asks but the Version field holds.
        const upgrade_check c = check_upgrade(req);
        FUZZ_CHECK(c.ec == wscoro::error::bad_sec_version);
        FUZZ_CHECK(!req.header("Sec-WebSocket-Version"));
    }
    return 0;
}
