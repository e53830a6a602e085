// libFuzzer target: encode, then decode, for every protocol version and both roles.
//
// Input: [version/role][decoder config][n] script [n split-size bytes]. The script (read byte
// by byte, see below) describes messages: text (valid UTF-8 built from the input) or binary,
// of any size up to 70 000 bytes, cut into fragments, with Pings and Pongs between the
// fragments and between messages, each client frame masked with a key from the input; then
// maybe a Close with a code and reason. They are encoded with codec::append_frame /
// append_close (and, for RFC 6455, also the free append_frame), then decoded by the codec of
// the other role in the input's chunk split. Aborts unless exactly the same messages, control
// frames and Close come back, with no error. Encodings the format cannot express are
// attempted too: they must fail and append nothing.

#include "fuzz_common.hpp"
#include "wscoro/protocol/codec.hpp"

namespace {

using namespace wscoro::protocol;
using fuzz::recorded_event;

// Valid UTF-8 of exactly `len` bytes made from the input's bytes (cycled).
std::vector<std::byte> make_text(std::span<const std::uint8_t> src, std::size_t len) {
    static constexpr std::uint32_t specials[] = {0x7F,   0x80,   0x7FF,  0x800,   0xD7FF,
                                                 0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x10FFFF,
                                                 0xFEFF, 0x0,    0x20AC, 0x1F600, 0x3FF};
    std::vector<std::byte> out;
    out.reserve(len);
    std::size_t j = 0;
    while (out.size() < len) {
        const std::uint8_t b = src.empty() ? 'a' : src[j++ % src.size()];
        std::uint32_t cp;
        switch (b >> 6) {
            case 0:
                cp = b & 0x7F;
                break;
            case 1:
                cp = 0x80 + (b & 0x3F) * 29;
                break;
            case 2:
                cp = specials[b % std::size(specials)];
                break;
            default:
                cp = 0x10000 + (b & 0x3F) * 0x4000 + (b & 7);
                break;
        }
        std::uint8_t enc[4];
        std::size_t n;
        if (cp < 0x80) {
            enc[0] = static_cast<std::uint8_t>(cp);
            n = 1;
        } else if (cp < 0x800) {
            enc[0] = static_cast<std::uint8_t>(0xC0 | cp >> 6);
            enc[1] = static_cast<std::uint8_t>(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            enc[0] = static_cast<std::uint8_t>(0xE0 | cp >> 12);
            enc[1] = static_cast<std::uint8_t>(0x80 | (cp >> 6 & 0x3F));
            enc[2] = static_cast<std::uint8_t>(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            enc[0] = static_cast<std::uint8_t>(0xF0 | cp >> 18);
            enc[1] = static_cast<std::uint8_t>(0x80 | (cp >> 12 & 0x3F));
            enc[2] = static_cast<std::uint8_t>(0x80 | (cp >> 6 & 0x3F));
            enc[3] = static_cast<std::uint8_t>(0x80 | (cp & 0x3F));
            n = 4;
        }
        if (out.size() + n > len) {
            enc[0] = 'x';
            n = 1;
        }
        for (std::size_t i = 0; i < n; ++i)
            out.push_back(static_cast<std::byte>(enc[i]));
    }
    FUZZ_CHECK(is_valid_utf8(out));
    return out;
}

std::vector<std::byte> make_binary(std::span<const std::uint8_t> src, std::size_t len) {
    std::vector<std::byte> out(len);
    for (std::size_t i = 0; i < len; ++i)
        out[i] =
            static_cast<std::byte>(src.empty() ? i * 131 : src[i % src.size()] + i / src.size());
    return out;
}

struct encoder {
    codec& c;
    bool client;
    bool free_append;  // RFC 6455: use protocol::append_frame instead of the codec's
    std::vector<std::byte>& wire;
    fuzz::reader& r;

    // The masking key of the next frame (client role), from the input.
    mask_key key() {
        mask_key k;
        for (auto& b : k)
            b = static_cast<std::byte>(r.byte());
        return k;
    }

    void frame(opcode op, bool fin, std::span<const std::byte> payload) {
        const mask_key k = key();
        const mask_key* kp = client ? &k : nullptr;
        if (free_append) {
            wscoro::protocol::append_frame(wire, op, fin, payload, kp);
            return;
        }
        const std::size_t before = wire.size();
        const std::error_code ec = c.append_frame(wire, op, fin, payload, kp);
        if (ec) {
            std::fprintf(stderr, "append_frame(op %u, fin %d, %zu bytes): %s\n",
                         static_cast<unsigned>(op), fin, payload.size(), ec.message().c_str());
            FUZZ_CHECK(!"a valid frame could not be encoded");
        }
        FUZZ_CHECK(wire.size() > before);
    }

    // Must fail and leave the wire unchanged.
    template <class F>
    void must_fail(F f) {
        const std::vector<std::byte> copy = wire;
        const std::error_code ec = f();
        FUZZ_CHECK(ec);
        FUZZ_CHECK(wire == copy);
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static constexpr int versions[] = {75, 76, 0, 1, 2, 3, 4, 5, 6, 7, 8, 13, 13, 13, 4, 6};
    const auto in = fuzz::split_input(data, size, 2);
    fuzz::reader cfg{in.config.data(), in.config.size()};
    const std::uint8_t vr = cfg.byte();
    const std::uint8_t dc = cfg.byte();
    const int version = versions[vr & 0x0F];
    const bool client = (vr & 0x10) != 0;  // the encoder's role; the decoder has the other
    const wire_format f = wire_format_for(version);
    const bool free_append = f == wire_format::rfc6455 && (vr & 0x20) != 0;
    const bool hixie = f == wire_format::hixie;
    const bool codes = has_close_codes(version);

    codec enc(client ? role::client : role::server, version);
    fuzz::decoder_params params;
    params.contiguous_limit = fuzz::pick_contiguous(dc);
    params.shrink_when_idle = (dc & 0x08) != 0;
    params.close_codes = codes;
    params.rfc6455_close_codes = f == wire_format::rfc6455;
    params.single_frame_messages = hixie;
    codec dec(client ? role::server : role::client, version, params.limits,
              params.contiguous_limit);
    // Draft 04: both ends derive the masking key from the handshake.
    hybi04_key k04{};
    FUZZ_CHECK(make_hybi04_key("x3JJHMbDL1EzLkh9GBhXDw==", "AQIDBAUGBwgJCgsMDQ4PEA==", k04));
    enc.set_hybi04_key(k04);
    dec.set_hybi04_key(k04);

    std::vector<std::byte> wire;
    std::vector<recorded_event> expected;
    fuzz::reader r{in.stream.data(), in.stream.size()};
    encoder e{enc, client, free_append, wire, r};
    std::size_t budget = 1 << 20;  // encoded bytes, to keep runs fast

    const auto control = [&](bool pong) {
        const std::size_t len = r.byte() % 126;
        const auto payload = make_binary(r.take(len), len);
        e.frame(pong ? opcode::pong : opcode::ping, true, payload);
        recorded_event ev;
        ev.kind = pong ? event_kind::pong : event_kind::ping;
        ev.type = pong ? opcode::pong : opcode::ping;
        ev.payload = payload;
        expected.push_back(std::move(ev));
    };

    bool closed = false;
    while (!r.empty() && !closed && wire.size() < budget) {
        const std::uint8_t op = r.byte();
        switch (op & 7) {
            default: {  // a data message
                const bool text = hixie || (op & 0x10) == 0;
                const std::uint8_t lb = r.byte();
                std::size_t len = lb;
                if (lb >= 0xF0 && lb < 0xFC)
                    len = r.u16() % 2000;
                else if (lb == 0xFC || lb == 0xFD)
                    len = r.u16() % 8000;
                else if (lb == 0xFE)
                    len = 65535 - r.byte() % 16;  // 16-bit length, at its top
                else if (lb == 0xFF)
                    len = 65536 + r.u16() % 4500;  // 64-bit length
                const std::size_t src_len = std::min<std::size_t>(len, r.byte());
                const auto src = r.take(src_len);
                const auto payload = text ? make_text(src, len) : make_binary(src, len);
                // Fragments (none on hixie): cut points from the input.
                const std::uint8_t fb = r.byte();
                const std::size_t nfrag = hixie ? 1 : 1 + fb % 5;
                std::vector<std::size_t> cuts = {0};
                for (std::size_t i = 1; i < nfrag; ++i)
                    cuts.push_back(std::max(cuts.back(), len * r.byte() / 255));
                cuts.push_back(len);
                for (std::size_t i = 0; i < nfrag; ++i) {
                    if (i > 0 && (fb & 0x20) != 0 && !hixie) {
                        // Control frames in the middle of the message.
                        const std::uint8_t n = r.byte() % 3;
                        for (std::uint8_t j = 0; j < n; ++j)
                            control((r.byte() & 1) != 0);
                    }
                    const std::span<const std::byte> part(payload.data() + cuts[i],
                                                          cuts[i + 1] - cuts[i]);
                    e.frame(i == 0 ? (text ? opcode::text : opcode::binary) : opcode::continuation,
                            i + 1 == nfrag, part);
                }
                recorded_event ev;
                ev.kind = event_kind::message;
                ev.type = text ? opcode::text : opcode::binary;
                ev.payload = payload;
                expected.push_back(std::move(ev));
                break;
            }
            case 5:  // a Ping or Pong between messages
                if (!hixie) control((op & 0x10) != 0);
                break;
            case 6: {  // an encoding the codec must refuse
                const std::uint8_t what = r.byte();
                const mask_key k = e.key();
                const mask_key* kp = client ? &k : nullptr;
                const std::vector<std::byte> big(126 + what % 10, std::byte{'p'});
                switch (what % 8) {
                    case 0:  // control payload above 125
                        e.must_fail([&] { return enc.append_frame(wire, opcode::ping, big, kp); });
                        break;
                    case 1:  // fragmented control frame
                        e.must_fail(
                            [&] { return enc.append_frame(wire, opcode::pong, false, {}, kp); });
                        break;
                    case 2:  // reserved opcode
                        e.must_fail([&] {
                            return enc.append_frame(wire, static_cast<opcode>(3 + what % 5), {},
                                                    kp);
                        });
                        break;
                    case 3:  // masking the wrong way round
                        if (!client) {
                            e.must_fail(
                                [&] { return enc.append_frame(wire, opcode::text, {}, &k); });
                        } else if (f == wire_format::hybi04 || f == wire_format::hybi05 ||
                                   f == wire_format::rfc6455) {
                            e.must_fail([&] { return enc.append_frame(wire, opcode::text, {}); });
                        }
                        break;
                    case 4:  // hixie: no binary, no fragments, no 0xFF in text, no pings
                        if (hixie) {
                            const std::byte ff[] = {std::byte{'a'}, std::byte{0xFF}};
                            e.must_fail(
                                [&] { return enc.append_frame(wire, opcode::binary, {}, kp); });
                            e.must_fail([&] {
                                return enc.append_frame(wire, opcode::text, false, {}, kp);
                            });
                            e.must_fail(
                                [&] { return enc.append_frame(wire, opcode::text, ff, kp); });
                            e.must_fail(
                                [&] { return enc.append_frame(wire, opcode::ping, {}, kp); });
                        }
                        break;
                    default:  // a Close the format cannot express
                        if (codes) {
                            const std::uint16_t bad[] = {999,  1004, 1005, 1006,
                                                         1015, 1016, 2999, 5000};
                            e.must_fail(
                                [&] { return enc.append_close(wire, bad[what % 8], "", kp); });
                            e.must_fail([&] { return enc.append_close(wire, 0, "why", kp); });
                            e.must_fail([&] {
                                return enc.append_close(wire, 1000, std::string(124, 'r'), kp);
                            });
                            e.must_fail(
                                [&] { return enc.append_close(wire, 1000, "\xC0\xAF", kp); });
                        }
                        break;
                }
                break;
            }
            case 7: {  // Close, then nothing more
                static constexpr std::uint16_t good[] = {0,    1000, 1001, 1002, 1003, 1005,
                                                         1007, 1008, 1009, 1010, 1011, 1012,
                                                         1013, 1014, 3000, 4999};
                const std::uint16_t code = good[r.byte() % 16];
                const std::size_t rlen = code == 0 || code == 1005 ? 0 : r.byte() % 124;
                const auto reason_bytes = make_text(r.take(rlen), rlen);
                const std::string reason(reinterpret_cast<const char*>(reason_bytes.data()),
                                         reason_bytes.size());
                const mask_key k = e.key();
                const std::error_code ec =
                    enc.append_close(wire, code, reason, client ? &k : nullptr);
                FUZZ_CHECK(!ec);
                recorded_event ev;
                ev.kind = event_kind::close;
                ev.type = opcode::close;
                if (codes && code != 0 && code != 1005) {
                    ev.close_code = code;
                    ev.close_reason = reason;
                    ev.payload.push_back(static_cast<std::byte>(code >> 8));
                    ev.payload.push_back(static_cast<std::byte>(code & 0xFF));
                    ev.payload.insert(ev.payload.end(), reason_bytes.begin(), reason_bytes.end());
                } else {
                    ev.close_code = wscoro::close_code::no_status;
                }
                expected.push_back(std::move(ev));
                closed = true;
                break;
            }
        }
    }
    // A few bytes after the Close are ignored.
    if (closed) wire.insert(wire.end(), 3, std::byte{0x81});

    const auto got = fuzz::drive(dec, wire, fuzz::splits(in.spec), params);
    if (got != expected) {
        std::fprintf(stderr, "version %d, encoder %s, %zu wire bytes\n", version,
                     client ? "client" : "server", wire.size());
        fuzz::dump("expected", expected);
        fuzz::dump("decoded", got);
        FUZZ_CHECK(!"the decoded events differ from what was encoded");
    }
    FUZZ_CHECK(!dec.in_message());
    return 0;
}
