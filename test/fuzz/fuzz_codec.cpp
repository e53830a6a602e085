// libFuzzer target: codec::next for every protocol version (hixie-75/76, hybi-00..06, 07, 08,
// RFC 6455) in both roles.
//
// Input: [version/role][limits][contiguous limits][flags][n] stream [n split-size bytes].
// Byte 0: low 4 bits pick the version (table below), bit 4 the role. The stream is decoded
// whole and in the input's chunk split; both must give the same events, and every call is
// checked against message_decoder's contract (fuzz_common.hpp). For hixie and hybi-01..06 the
// events must also be what a plain whole-buffer reading of the drafts, as codec.hpp documents
// them, finds (reference_hixie, reference_hybi below; RFC 6455 has its reference in
// fuzz_frame_server.cpp).

#include <openssl/evp.h>

#include "fuzz_common.hpp"
#include "wscoro/protocol/codec.hpp"

namespace {

using namespace wscoro::protocol;
using fuzz::recorded_event;
using wscoro::error;

recorded_event error_event(error e) {
    recorded_event ev;
    ev.kind = event_kind::error;
    ev.type = opcode::text;  // decoder_event's default
    ev.ec = make_error_code(e);
    return ev;
}

// codec.hpp, hixie_decoder: 0x00 <UTF-8> 0xFF text (limits and UTF-8 checked byte by byte,
// the first failing byte decides), high-bit types with a 7-bit-group length that is skipped
// (limit max_frame_size; 0xFF with length 0 is Close), other types discarded up to 0xFF.
std::vector<recorded_event> reference_hixie(frame_limits lim, std::span<const std::uint8_t> s) {
    std::vector<recorded_event> out;
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned type = s[i++];
        if (type & 0x80) {
            unsigned __int128 len = 0;
            for (;;) {
                if (i >= n) return out;
                const unsigned b = s[i++];
                len = len * 128 + (b & 0x7F);
                if (len > lim.max_frame_size) {
                    out.push_back(error_event(error::frame_too_big));
                    return out;
                }
                if (!(b & 0x80)) break;
            }
            if (type == 0xFF && len == 0) {
                recorded_event ev;
                ev.kind = event_kind::close;
                ev.type = opcode::close;
                ev.close_code = 1005;
                out.push_back(ev);
                return out;
            }
            if (n - i < len) return out;
            i += static_cast<std::size_t>(len);
        } else if (type == 0) {
            const std::uint64_t room = std::min(lim.max_frame_size, lim.max_message_size);
            utf8_validator v;
            std::size_t k = i;
            for (; k < n && s[k] != 0xFF; ++k) {
                if (k - i >= room) {
                    out.push_back(error_event(lim.max_frame_size <= lim.max_message_size
                                                  ? error::frame_too_big
                                                  : error::message_too_big));
                    return out;
                }
                if (!v.feed(fuzz::as_bytes(s.subspan(k, 1)))) {
                    out.push_back(error_event(error::bad_frame_payload));
                    return out;
                }
            }
            if (k == n) return out;
            if (!v.complete()) {
                out.push_back(error_event(error::bad_frame_payload));
                return out;
            }
            recorded_event ev;
            ev.kind = event_kind::message;
            ev.type = opcode::text;
            const auto p = fuzz::as_bytes(s.subspan(i, k - i));
            ev.payload.assign(p.begin(), p.end());
            out.push_back(ev);
            i = k + 1;
        } else {
            std::size_t k = i;
            for (; k < n && s[k] != 0xFF; ++k) {
                if (k - i + 1 > lim.max_frame_size) {
                    out.push_back(error_event(error::frame_too_big));
                    return out;
                }
            }
            if (k == n) return out;
            i = k + 1;
        }
    }
    return out;
}

// codec.hpp, hybi_decoder: drafts 01-06. Client frames to a server carry a 4-byte prefix
// (04: nonce, the frame XORed with SHA-1(nonce + key); 05/06: key, the frame XORed with it),
// counted from the first header byte. Checks in header order: RSV1-3, opcode (0 cont, 1
// close, 2 ping, 3 pong, 4 text, 5 binary), control FIN, RSV4, control length, sequencing,
// 64-bit MSB, frame then message limit; then UTF-8 fail-fast; then the Close body (06).
std::vector<recorded_event> reference_hybi(int draft, role r, frame_limits lim,
                                           const hybi04_key& key04,
                                           std::span<const std::uint8_t> s) {
    std::vector<recorded_event> out;
    const auto fail = [&](error e) {
        out.push_back(error_event(e));
        return out;
    };
    static constexpr opcode ops[] = {opcode::continuation, opcode::close, opcode::ping,
                                     opcode::pong,         opcode::text,  opcode::binary};
    const bool more_bit = draft <= 3;
    const bool codes = draft >= 6;
    const int masking = r == role::client ? 0 : draft == 4 ? 4 : draft >= 5 ? 5 : 0;
    const std::size_t n = s.size();
    std::size_t i = 0;
    bool open = false;
    opcode message_op = opcode::text;
    std::uint64_t message_size = 0;
    std::vector<std::byte> message;
    while (i < n) {
        const std::size_t pre = masking != 0 ? 4 : 0;
        if (i + pre > n) return out;
        std::uint8_t mask[20] = {};
        std::size_t mask_len = 1;
        if (masking == 5) {
            std::memcpy(mask, &s[i], 4);
            mask_len = 4;
        } else if (masking == 4) {
            std::uint8_t in[24];
            std::memcpy(in, &s[i], 4);
            std::memcpy(in + 4, key04.data(), 20);
            unsigned len = 0;
            FUZZ_CHECK(EVP_Digest(in, sizeof in, mask, &len, EVP_sha1(), nullptr) == 1 &&
                       len == 20);
            mask_len = 20;
        }
        const std::size_t f = i + pre;  // the first header byte; frame offsets count from it
        const auto at = [&](std::size_t k) {
            return static_cast<std::uint8_t>(s[f + k] ^ mask[k % mask_len]);
        };
        if (f >= n) return out;
        const unsigned b0 = at(0);
        const bool bit7 = (b0 & 0x80) != 0;
        const bool fin = more_bit ? !bit7 : bit7;
        if (b0 & 0x70) return fail(error::bad_reserved_bits);
        if ((b0 & 0x0F) >= 6) return fail(error::bad_opcode);
        const opcode op = ops[b0 & 0x0F];
        const bool control = is_control(op);
        if (control && !fin) return fail(error::bad_control_fragment);
        if (f + 1 >= n) return out;
        const unsigned b1 = at(1);
        if (b1 & 0x80) return fail(error::bad_reserved_bits);
        const unsigned len7 = b1 & 0x7F;
        if (control && len7 > 125) return fail(error::bad_control_size);
        if (op == opcode::continuation && !open) return fail(error::bad_continuation);
        if ((op == opcode::text || op == opcode::binary) && open)
            return fail(error::bad_data_frame);
        const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        if (f + 2 + ext > n) return out;
        std::uint64_t len = len7;
        if (ext != 0) {
            len = 0;
            for (std::size_t j = 0; j < ext; ++j)
                len = len << 8 | at(2 + j);
            if (len >> 63) return fail(error::bad_frame_length);
        }
        if (len > lim.max_frame_size) return fail(error::frame_too_big);
        if (!control) {
            const std::uint64_t before = op == opcode::continuation ? message_size : 0;
            if (before + len < before || before + len > lim.max_message_size)
                return fail(error::message_too_big);
        }
        const std::size_t hdr = 2 + ext;
        const std::size_t avail =
            static_cast<std::size_t>(std::min<std::uint64_t>(len, n - f - hdr));
        std::vector<std::byte> payload(avail);
        for (std::size_t j = 0; j < avail; ++j)
            payload[j] = static_cast<std::byte>(at(hdr + j));

        if (control) {
            if (avail < len) return out;
            recorded_event ev;
            ev.payload = payload;
            ev.type = op;
            if (op != opcode::close) {
                ev.kind = op == opcode::ping ? event_kind::ping : event_kind::pong;
                out.push_back(ev);
                i = f + hdr + avail;
                continue;
            }
            ev.kind = event_kind::close;
            ev.close_code = 1005;
            if (codes && !payload.empty()) {
                if (payload.size() == 1) return fail(error::bad_close_size);
                ev.close_code =
                    static_cast<std::uint16_t>(std::to_integer<unsigned>(payload[0]) << 8 |
                                               std::to_integer<unsigned>(payload[1]));
                if (ev.close_code < 1000 || ev.close_code > 4999)
                    return fail(error::bad_close_code);
                const std::span<const std::byte> reason(payload.data() + 2, payload.size() - 2);
                if (!is_valid_utf8(reason)) return fail(error::bad_close_payload);
                ev.close_reason.assign(reinterpret_cast<const char*>(reason.data()), reason.size());
            }
            out.push_back(ev);
            return out;
        }

        if (op != opcode::continuation) {
            message_op = op;
            message_size = 0;
            message.clear();
        }
        message_size += len;
        message.insert(message.end(), payload.begin(), payload.end());
        if (message_op == opcode::text) {
            utf8_validator v;
            if (!v.feed(message)) return fail(error::bad_frame_payload);
        }
        if (avail < len) return out;
        i = f + hdr + avail;
        open = !fin;
        if (!fin) continue;
        if (message_op == opcode::text && !is_valid_utf8(message))
            return fail(error::bad_frame_payload);
        recorded_event ev;
        ev.kind = event_kind::message;
        ev.type = message_op;
        ev.payload = message;
        out.push_back(ev);
        message.clear();
        message_size = 0;
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static constexpr int versions[] = {75, 76, 0, 1, 2, 3, 4, 5, 6, 7, 8, 13, 4, 5, 6, 76};
    const auto in = fuzz::split_input(data, size, 4);
    fuzz::reader cfg{in.config.data(), in.config.size()};
    const std::uint8_t vr = cfg.byte();
    const int version = versions[vr & 0x0F];
    const role r = (vr & 0x10) != 0 ? role::client : role::server;
    const std::uint8_t limits_b = cfg.byte();
    const std::uint8_t contig_b = cfg.byte();
    const std::uint8_t flags = cfg.byte();

    fuzz::decoder_params whole;
    whole.limits = fuzz::pick_limits(limits_b);
    whole.contiguous_limit = fuzz::pick_contiguous(contig_b);
    const wire_format f = wire_format_for(version);
    whole.close_codes = has_close_codes(version);
    whole.rfc6455_close_codes = f == wire_format::rfc6455;
    whole.single_frame_messages = f == wire_format::hixie;
    fuzz::decoder_params split = whole;
    split.contiguous_limit = fuzz::pick_contiguous(contig_b >> 3);
    split.shrink_when_idle = (flags & 1) != 0;

    // Draft 04 (server role): the connection key from a fixed handshake.
    static const hybi04_key key04 = [] {
        hybi04_key k{};
        FUZZ_CHECK(make_hybi04_key("dGhlIHNhbXBsZSBub25jZQ==", "AQIDBAUGBwgJCgsMDQ4PEA==", k));
        return k;
    }();

    const auto make = [&](const fuzz::decoder_params& p) {
        codec c(r, version, p.limits, p.contiguous_limit);
        FUZZ_CHECK(c.format() == f);
        FUZZ_CHECK(c.protocol_version() == version);
        FUZZ_CHECK(c.get_role() == r);
        c.set_hybi04_key(key04);
        return c;
    };
    const auto events = fuzz::differential(make, fuzz::as_bytes(in.stream), in.spec, whole, split);
    if (f == wire_format::rfc6455) return 0;
    const auto expected = f == wire_format::hixie
                              ? reference_hixie(whole.limits, in.stream)
                              : reference_hybi(version, r, whole.limits, key04, in.stream);
    if (events != expected) {
        std::fprintf(stderr, "version %d, role %s\n", version,
                     r == role::server ? "server" : "client");
        fuzz::dump("decoder", events);
        fuzz::dump("reference (the draft read whole)", expected);
        FUZZ_CHECK(!"the decoder disagrees with the reference reading of the draft");
    }
    return 0;
}
