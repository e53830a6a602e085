// libFuzzer target: differential test of utf8_validator / is_valid_utf8 against a reference
// written straight from RFC 3629 (decode the code point, then range-check it), sharing no
// code or table with lib/protocol/utf8.cpp.
//
// Input: [n] text [n split-size bytes]. The text is fed to utf8_validator in the input's
// chunk split; after every chunk valid() must say whether the bytes so far are still a
// prefix of some valid UTF-8 string (fail-fast), and at the end complete() whether they are
// valid UTF-8.

#include "fuzz_common.hpp"

namespace {

// RFC 3629 §3-4: the scalar values an encoding of `len` bytes may carry (no overlong forms,
// no surrogates, nothing above U+10FFFF). True if some value in [lo, hi] is one of them.
bool range_has_valid(int len, std::uint32_t lo, std::uint32_t hi) {
    std::uint32_t min = 0;
    std::uint32_t max = 0;
    switch (len) {
        case 2:
            min = 0x80;
            max = 0x7FF;
            break;
        case 3:
            min = 0x800;
            max = 0xFFFF;
            break;
        case 4:
            min = 0x10000;
            max = 0x10FFFF;
            break;
        default:
            return false;
    }
    lo = std::max(lo, min);
    hi = std::min(hi, max);
    if (lo > hi) return false;
    // Exclude the surrogates U+D800..U+DFFF.
    return lo < 0xD800 || hi > 0xDFFF;
}

struct reference_result {
    std::size_t first_bad;  // index of the first byte that makes the input invalid, or size
    bool complete;          // valid and ends on a code point boundary
};

// `boundary` (if given, n + 1 entries) is set where a code point starts or the text ends
// after a whole one.
reference_result reference(const std::uint8_t* s, std::size_t n,
                           std::vector<bool>* boundary = nullptr) {
    std::size_t i = 0;
    while (i < n) {
        if (boundary) (*boundary)[i] = true;
        const std::uint8_t b = s[i];
        if (b < 0x80) {
            ++i;
            continue;
        }
        int len;
        std::uint32_t cp;
        if ((b & 0xE0) == 0xC0) {
            len = 2;
            cp = b & 0x1F;
        } else if ((b & 0xF0) == 0xE0) {
            len = 3;
            cp = b & 0x0F;
        } else if ((b & 0xF8) == 0xF0) {
            len = 4;
            cp = b & 0x07;
        } else {
            return {i, false};  // a continuation byte or F8..FF where a code point starts
        }
        // Byte by byte: after `have` bytes, the value lies in [cp << r, (cp << r) | (2^r - 1)]
        // with r = 6 * (len - have) bits still unknown; invalid once no valid value is left.
        for (int have = 1; have <= len; ++have) {
            if (have > 1) {
                if (i + have - 1 >= n) return {n, false};  // input ends inside the code point
                const std::uint8_t c = s[i + have - 1];
                if ((c & 0xC0) != 0x80) return {i + have - 1, false};
                cp = cp << 6 | (c & 0x3F);
            }
            const int rest = 6 * (len - have);
            const std::uint32_t lo = cp << rest;
            const std::uint32_t hi = lo | ((std::uint32_t{1} << rest) - 1);
            if (!range_has_valid(len, lo, hi)) return {i + have - 1, false};
        }
        i += static_cast<std::size_t>(len);
    }
    if (boundary) (*boundary)[n] = true;
    return {n, true};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace wscoro::protocol;
    const auto in = fuzz::split_input(data, size, 0);
    const std::uint8_t* s = in.stream.data();
    const std::size_t n = in.stream.size();
    std::vector<bool> boundary(n + 1);
    const reference_result ref = reference(s, n, &boundary);

    // The whole text at once.
    FUZZ_CHECK(is_valid_utf8(fuzz::as_bytes(in.stream)) == ref.complete);
    FUZZ_CHECK(is_valid_utf8(std::string_view(reinterpret_cast<const char*>(s), n)) ==
               ref.complete);

    // In chunks: valid() flips to false exactly at the chunk holding ref.first_bad.
    utf8_validator v;
    FUZZ_CHECK(v.valid() && v.complete());
    fuzz::splits sp(in.spec);
    std::size_t fed = 0;
    do {
        std::size_t k = std::min(sp.next(), n - fed);
        if (k == 0) {
            // Nothing new changes nothing; then move on by one byte.
            const bool was = v.valid();
            FUZZ_CHECK(v.feed(std::span<const std::byte>()) == was);
            k = std::min<std::size_t>(1, n - fed);
        }
        const bool ok = v.feed(fuzz::as_bytes(in.stream.subspan(fed, k)));
        fed += k;
        FUZZ_CHECK(ok == v.valid());
        const bool expect_valid = ref.first_bad >= fed;
        if (v.valid() != expect_valid) {
            std::fprintf(stderr,
                         "fed %zu bytes, validator valid=%d, reference first bad byte %zu\n", fed,
                         v.valid(), ref.first_bad);
            FUZZ_CHECK(v.valid() == expect_valid);
        }
        if (!v.valid()) FUZZ_CHECK(!v.complete());
        // A valid prefix is complete iff it ends on a code point boundary.
        if (v.valid()) FUZZ_CHECK(v.complete() == static_cast<bool>(boundary[fed]));
    } while (fed < n);
    FUZZ_CHECK(v.complete() == ref.complete);

    // reset() starts again.
    v.reset();
    FUZZ_CHECK(v.valid() && v.complete());
    FUZZ_CHECK(v.feed(fuzz::as_bytes(in.stream)) == (ref.first_bad >= n));
    return 0;
}
