#pragma once
// For tests that replace the global operator new to count allocations. Valgrind replaces
// operator new and delete itself and then sees the test's delete free its allocations
// ("mismatched free"): under `meson test --setup valgrind` (which sets
// WSCORO_UNDER_VALGRIND) such a test exits 77 (skipped) before it starts.

#include <cstdio>
#include <cstdlib>

namespace wscoro_test {
namespace {
[[maybe_unused]] const bool skip_under_valgrind = [] {
    if (std::getenv("WSCORO_UNDER_VALGRIND")) {
        std::fputs("skipped under valgrind: this test replaces the global allocator\n", stderr);
        std::_Exit(77);
    }
    return false;
}();
}  // namespace
}  // namespace wscoro_test
