#pragma once
// Version negotiation and the opening handshake for every WebSocket protocol in the wild:
// hixie-75, hixie-76 (= hybi-00), hybi-01..03, hybi-04..08 and RFC 6455 (hybi-13..17).
//
// Part of the sans-I/O layer: no I/O, never throws (except std::bad_alloc). Hashing and
// random bytes come from OpenSSL's EVP interface (libcrypto).
//
// Usage, after http_request_parser is done:
//
//     auto r = negotiate(parser.request(), bytes_after_head, options);
//     switch (r.kind) {
//         case negotiation::need_more: /* read more bytes, call again with all of them */
//         case negotiation::accepted:  /* write r.response; drop r.consumed body bytes; the
//                                         rest are frames of r.protocol_version */
//         case negotiation::rejected:  /* write r.response, then close */
//     }
//
// Protocol numbers are those em-websocket uses: 75 (hixie-75), 76 (hixie-76 / hybi-00),
// 1..3 (hybi-01..03, named by Sec-WebSocket-Draft), 4..8 (hybi-04..07, and 08..12 which all
// send 8) and 13 (hybi-13..17 = RFC 6455).

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "wscoro/protocol/http_request.hpp"

namespace wscoro::protocol {

/// draft-hixie-thewebsocketprotocol-75 (no key, no challenge).
inline constexpr int version_hixie75 = 75;
/// draft-hixie-thewebsocketprotocol-76 = draft-ietf-hybi-thewebsocketprotocol-00 (key1, key2,
/// 8-byte key3 after the head, MD5 challenge).
inline constexpr int version_hixie76 = 76;
/// RFC 6455 (drafts hybi-13..17 send 13 as well).
inline constexpr int version_rfc6455 = 13;
/// What detect_version returns when the request names its version twice (repeated
/// Sec-WebSocket-Version or Sec-WebSocket-Draft). Such a request is answered with 400.
inline constexpr int version_repeated = -1;

/// The GUID draft hybi-04 appends to Sec-WebSocket-Key and Sec-WebSocket-Nonce before
/// hashing them into its masking key (hybi-04 only; hybi-05 dropped the nonce).
inline constexpr std::string_view hybi04_masking_guid = "61AC5F19-FBBA-4540-B96F-6561F1AB40A8";

/// Every version negotiate() speaks, the default of negotiate_options::versions.
inline const std::set<int>& all_versions() noexcept {
    static const std::set<int> versions = {75, 76, 1, 2, 3, 4, 5, 6, 7, 8, 13};
    return versions;
}

/// The protocol version a request asks for, in em-websocket's order:
/// 1. `Sec-WebSocket-Version` if present;
/// 2. else `Sec-WebSocket-Draft` (hybi-02/03 clients send 2);
/// 3. else 76 if `Sec-WebSocket-Key1` or `Sec-WebSocket-Key2` is present (em-websocket looks
///    at Key1 only, so a request that lost Key1 is taken for hixie-75; we take it for 76 and
///    answer 400 for the missing key);
/// 4. else 0 if `Sec-WebSocket-Key` is present (a hybi-04+ key without the version every
///    such client sends; em-websocket would answer it as hixie-75);
/// 5. else 75.
/// A version field's value must be a plain decimal number as RFC 6455 §4.1 defines it
/// (`0`..`255`, no sign, no leading zero, no surrounding text): anything else, e.g. "13abc"
/// or "", gives 0, which no protocol uses. A repeated version field gives version_repeated.
/// The value is not checked against what negotiate() supports.
int detect_version(const http_request& request) noexcept;

/// The client's origin: `Origin` (hixie-75/76, hybi-00..03, hybi-11 onwards), else
/// `Sec-WebSocket-Origin` (hybi-04..10), else nullopt. Informational; nothing checks it.
std::optional<std::string_view> origin_of(const http_request& request) noexcept;

/// The number hixie-76 encodes in Sec-WebSocket-Key1/Key2 (-76 §5.2 steps 4-7): its digits
/// read as one decimal number, divided by its count of U+0020 SPACE characters. nullopt if
/// there is no digit or no space, if the number is not a multiple of the spaces, or if the
/// quotient does not fit in 32 bits.
std::optional<std::uint32_t> hixie76_key_number(std::string_view key) noexcept;

/// The 16-byte hixie-76 answer: MD5(be32(number1) || be32(number2) || key3) (-76 §5.2
/// steps 8-9). nullopt only if libcrypto fails (e.g. MD5 disabled in FIPS mode).
std::optional<std::array<std::byte, 16>> hixie76_challenge(
    std::uint32_t number1, std::uint32_t number2, std::span<const std::byte, 8> key3) noexcept;

/// What negotiate() may do.
struct negotiate_options {
    /// The client reached us over TLS (or through a TLS proxy): hixie Location fields name
    /// `wss://` instead of `ws://`.
    bool secure = false;
    /// The versions to accept. Others are answered with 426 Upgrade Required.
    std::set<int> versions = all_versions();
    /// Fields appended to a 101 response, in order (e.g. the chosen Sec-WebSocket-Protocol).
    /// Never added to an error response. On hixie-75, -76 and hybi-01..03, the client's
    /// subprotocol field (WebSocket-Protocol on 75, Sec-WebSocket-Protocol on the others) is
    /// echoed as those drafts require unless `extra` already holds a field of that name.
    std::vector<http_header> extra;
    /// Tests only: the 16 bytes to send as hybi-04's Sec-WebSocket-Nonce instead of fresh
    /// random ones.
    std::optional<std::array<std::byte, 16>> hybi04_nonce;
};

/// The outcome of negotiate().
struct negotiation {
    enum outcome {
        need_more,  ///< the 8-byte key3 is incomplete: read more, call again with all bytes
        accepted,   ///< write `response`, then speak `protocol_version`
        rejected,   ///< write `response`, then close
    };
    outcome kind = need_more;
    /// accepted: the version spoken (75, 76, 1..8 or 13). Otherwise what detect_version said.
    int protocol_version = 0;
    /// HTTP status of `response`: 101 when accepted, 400/405/426/500/505 when rejected, 0 for
    /// need_more.
    int status = 0;
    /// Why the request was rejected (a wscoro::error with http_status_for(ec) == status,
    /// except std::errc::resource_unavailable_try_again with status 500 when libcrypto fails).
    std::error_code ec;
    /// The exact bytes to write: the 101 response (with the 16 challenge bytes after the head
    /// for 76 and 1..3) or the complete error response. Empty for need_more.
    std::string response;
    /// accepted: how many bytes of `body` the handshake used (8 for key3, else 0). Bytes after
    /// them are frames.
    std::size_t consumed = 0;
    /// hybi-04 only: the Sec-WebSocket-Nonce value sent (base64 of 16 bytes), which the
    /// framing layer needs with Sec-WebSocket-Key and hybi04_masking_guid. Empty otherwise.
    std::string nonce;
};

/// Checks an upgrade request of any version and builds the answer.
///
/// `body` is every byte received after the request head so far. Checks, in order (the first
/// rule broken gives the answer):
/// - GET (405 with `Allow: GET`), HTTP/1.1 or later (505), exactly one Host (400);
/// - `Upgrade` holds the token `websocket` and `Connection` the token `upgrade`, both ASCII
///   case-insensitively (426);
/// - the version (detect_version): repeated field 400; unknown or not in `options.versions`
///   426. Every 426 carries `Upgrade: websocket` and `Sec-WebSocket-Version` listing the
///   allowed ones among 13, 8, 7 (RFC 6455 §4.4); the field is left out if there is none;
/// - 4..8 and 13: exactly one Sec-WebSocket-Key that is base64 of 16 bytes (400). The 101
///   carries Sec-WebSocket-Accept (and on 4 a fresh Sec-WebSocket-Nonce), then `extra`.
/// - 76 and 1..3: a request-target starting with '/' (400), exactly one Sec-WebSocket-Key1
///   and Key2 (400), each valid for hixie76_key_number (400); then need_more until `body`
///   holds 8 bytes. The 101 names Sec-WebSocket-Location and Sec-WebSocket-Origin and ends
///   with the 16 challenge bytes; consumed is 8.
/// - 75: a request-target starting with '/' (400). The 101 names WebSocket-Origin and
///   WebSocket-Location. Bytes after the head are frames (consumed 0), not an error.
/// Error responses are built like reject_response (handshake.hpp): text/plain body with the
/// error's message, `Connection: close`.
negotiation negotiate(const http_request& request, std::span<const std::byte> body,
                      const negotiate_options& options = {});

}  // namespace wscoro::protocol
