// libFuzzer target: RFC 6455 message_decoder in the server role (masked client frames).
//
// Input: [limits][contiguous limits][flags][n] stream [n split-size bytes] (fuzz_common.hpp).
// The stream is decoded whole and in the input's chunk split; both runs check the decoder's
// contract on every call and must produce the same events, and those must be what a plain,
// whole-buffer reading of RFC 6455 §5 (reference() below) finds in the stream.

#include "fuzz_common.hpp"

#ifndef FUZZ_ROLE
#define FUZZ_ROLE server
#endif

namespace {

using namespace wscoro::protocol;
using fuzz::recorded_event;
using wscoro::error;

// RFC 6455 §5, read from a whole buffer: the events a correct decoder reports for `s`, up to
// the first error or Close; a frame cut off by the end of `s` reports nothing (except a
// UTF-8 error in the part that is there: §8.1 fail-fast). Where one frame breaks several
// rules, the first one in the order the decoder documents (its header bytes in order, then
// the payload) is reported.
std::vector<recorded_event> reference(role r, frame_limits lim, std::span<const std::uint8_t> s) {
    std::vector<recorded_event> out;
    const auto fail = [&](error e) {
        recorded_event ev;
        ev.kind = event_kind::error;
        ev.type = opcode::text;  // decoder_event's default
        ev.ec = make_error_code(e);
        out.push_back(ev);
        return out;
    };
    const std::size_t n = s.size();
    std::size_t i = 0;
    bool open = false;        // a fragmented message is open
    unsigned message_op = 1;  // its opcode
    std::uint64_t message_size = 0;
    std::vector<std::byte> message;
    while (i < n) {
        const unsigned b0 = s[i];
        const bool fin = (b0 & 0x80) != 0;
        const unsigned op = b0 & 0x0F;
        if ((b0 & 0x70) != 0) return fail(error::bad_reserved_bits);  // §5.2 RSV1-3
        if (op != 0 && op != 1 && op != 2 && op != 8 && op != 9 && op != 10)
            return fail(error::bad_opcode);  // §5.2
        const bool control = (op & 8) != 0;
        if (control && !fin) return fail(error::bad_control_fragment);  // §5.5
        if (i + 1 >= n) return out;
        const unsigned b1 = s[i + 1];
        const bool masked = (b1 & 0x80) != 0;
        const unsigned len7 = b1 & 0x7F;
        if (control && len7 > 125) return fail(error::bad_control_size);           // §5.5
        if (r == role::server && !masked) return fail(error::bad_unmasked_frame);  // §5.1
        if (r == role::client && masked) return fail(error::bad_masked_frame);
        if (op == 0 && !open) return fail(error::bad_continuation);  // §5.4
        if ((op == 1 || op == 2) && open) return fail(error::bad_data_frame);
        const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        if (i + 2 + ext > n) return out;
        std::uint64_t len = len7;
        if (ext != 0) {
            len = 0;
            for (std::size_t j = 0; j < ext; ++j)
                len = len << 8 | s[i + 2 + j];
            if (ext == 2 && len < 126) return fail(error::bad_size_encoding);  // §5.2 minimal
            if (ext == 8 && len <= 0xFFFF) return fail(error::bad_size_encoding);
            if (len >> 63) return fail(error::bad_frame_length);  // §5.2 MSB
        }
        if (len > lim.max_frame_size) return fail(error::frame_too_big);  // §7.4.1 1009
        if (!control) {
            const std::uint64_t before = op == 0 ? message_size : 0;
            if (before + len < before || before + len > lim.max_message_size)
                return fail(error::message_too_big);
        }
        const std::size_t hdr = 2 + ext + (masked ? 4 : 0);
        if (i + hdr > n) return out;
        const std::size_t avail =
            static_cast<std::size_t>(std::min<std::uint64_t>(len, n - i - hdr));
        std::vector<std::byte> payload(avail);
        for (std::size_t j = 0; j < avail; ++j)  // §5.3
            payload[j] =
                static_cast<std::byte>(s[i + hdr + j] ^ (masked ? s[i + 2 + ext + j % 4] : 0));

        if (control) {
            if (avail < len) return out;
            recorded_event ev;
            ev.payload = payload;
            if (op == 9 || op == 10) {
                ev.kind = op == 9 ? event_kind::ping : event_kind::pong;
                ev.type = static_cast<opcode>(op);
                out.push_back(ev);
                i += hdr + avail;
                continue;
            }
            // §5.5.1 Close: empty, or a code (§7.4) and a UTF-8 reason.
            ev.kind = event_kind::close;
            ev.type = opcode::close;
            if (payload.empty()) {
                ev.close_code = 1005;
            } else {
                if (payload.size() == 1) return fail(error::bad_close_size);
                ev.close_code =
                    static_cast<std::uint16_t>(std::to_integer<unsigned>(payload[0]) << 8 |
                                               std::to_integer<unsigned>(payload[1]));
                const unsigned c = ev.close_code;
                if (!((c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
                      (c >= 3000 && c <= 4999)))
                    return fail(error::bad_close_code);
                const std::span<const std::byte> reason(payload.data() + 2, payload.size() - 2);
                if (!is_valid_utf8(reason)) return fail(error::bad_close_payload);
                ev.close_reason.assign(reinterpret_cast<const char*>(reason.data()), reason.size());
            }
            out.push_back(ev);
            return out;  // §5.5.1: nothing after Close
        }

        if (op != 0) {
            message_op = op;
            message_size = 0;
            message.clear();
        }
        message_size += len;
        message.insert(message.end(), payload.begin(), payload.end());
        if (message_op == 1) {  // §8.1: fail as soon as the text cannot be UTF-8
            utf8_validator v;
            if (!v.feed(message)) return fail(error::bad_frame_payload);
        }
        if (avail < len) return out;
        i += hdr + avail;
        open = !fin;
        if (!fin) continue;
        if (message_op == 1 && !is_valid_utf8(message)) return fail(error::bad_frame_payload);
        recorded_event ev;
        ev.kind = event_kind::message;
        ev.type = static_cast<opcode>(message_op);
        ev.payload = message;
        out.push_back(ev);
        message.clear();
        message_size = 0;
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto in = fuzz::split_input(data, size, 3);
    fuzz::reader cfg{in.config.data(), in.config.size()};
    const std::uint8_t limits_b = cfg.byte();
    const std::uint8_t contig_b = cfg.byte();
    const std::uint8_t flags = cfg.byte();

    fuzz::decoder_params whole;
    whole.limits = fuzz::pick_limits(limits_b);
    whole.contiguous_limit = fuzz::pick_contiguous(contig_b);
    fuzz::decoder_params split = whole;
    split.contiguous_limit = fuzz::pick_contiguous(contig_b >> 3);
    split.shrink_when_idle = (flags & 1) != 0;

    const auto make = [](const fuzz::decoder_params& p) {
        return message_decoder(role::FUZZ_ROLE, p.limits, p.contiguous_limit);
    };
    const auto events = fuzz::differential(make, fuzz::as_bytes(in.stream), in.spec, whole, split);
    const auto expected = reference(role::FUZZ_ROLE, whole.limits, in.stream);
    if (events != expected) {
        fuzz::dump("decoder", events);
        fuzz::dump("reference (RFC 6455 read whole)", expected);
        FUZZ_CHECK(!"the decoder disagrees with the reference reading of RFC 6455");
    }
    return 0;
}
