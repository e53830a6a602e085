// libFuzzer target: codec::next for every protocol version (hixie-75/76, hybi-00..06, 07, 08,
// RFC 6455) in both roles.
//
// Input: [version/role][limits][contiguous limits][flags][n] stream [n split-size bytes].
// Byte 0: low 4 bits pick the version (table below), bit 4 the role. The stream is decoded
// whole and in the input's chunk split; both must give the same events, and every call is
// checked against message_decoder's contract (fuzz_common.hpp).

#include "fuzz_common.hpp"
#include "wscoro/protocol/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace wscoro::protocol;
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
    fuzz::differential(make, fuzz::as_bytes(in.stream), in.spec, whole, split);
    return 0;
}
