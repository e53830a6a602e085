#include "wscoro/logger.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace wscoro {

std::string_view to_string(log_level level) noexcept {
    switch (level) {
        case log_level::trace:
            return "trace";
        case log_level::debug:
            return "debug";
        case log_level::info:
            return "info";
        case log_level::warn:
            return "warn";
        case log_level::error:
            return "error";
        case log_level::off:
            return "off";
    }
    return "?";
}

void stderr_sink(log_level level, std::uint64_t connection_id, std::string_view text) {
    using namespace std::chrono;
    const auto now = system_clock::now();
    const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    const std::time_t t = system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    // One fwrite per line keeps lines from different threads whole; the mutex keeps them
    // from interleaving on platforms where stderr is not locked per call.
    static std::mutex mutex;
    const auto line = fmt::format("{}.{:03}Z wscoro {} [#{}] {}\n", stamp, ms, to_string(level),
                                  connection_id, text);
    std::lock_guard lock(mutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace wscoro
