// libFuzzer target: RFC 6455 message_decoder in the server role (masked client frames).
//
// Input: [limits][contiguous limits][flags][n] stream [n split-size bytes] (fuzz_common.hpp).
// The stream is decoded whole and in the input's chunk split; both runs check the decoder's
// contract on every call and must produce the same events.

#include "fuzz_common.hpp"

#ifndef FUZZ_ROLE
#define FUZZ_ROLE server
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace wscoro::protocol;
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
    fuzz::differential(make, fuzz::as_bytes(in.stream), in.spec, whole, split);
    return 0;
}
