#pragma once
// Levelled logging with a pluggable sink. The default sink writes through fmt to stderr:
//
//     2026-11-24T10:00:00.123Z wscoro debug [#12] frame in: text fin len=5
//
// Formatting happens only when the level is enabled, so disabled logging costs a compare.

#include <fmt/format.h>
#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>

namespace wscoro {

/// Severity, most verbose first. `trace` adds payload excerpts to frame logs.
enum class log_level : std::uint8_t { trace, debug, info, warn, error, off };

/// "trace", "debug", ...
std::string_view to_string(log_level level) noexcept;

/// Receives every enabled log line: its level, the connection id (0 for the server itself)
/// and the formatted text (no trailing newline). Called on the thread that logs; a sink
/// shared by several threads must be thread-safe (the default one is).
using log_sink = std::function<void(log_level, std::uint64_t connection_id, std::string_view)>;

/// The default sink: ISO-8601 UTC timestamp, level, connection id, text, one line to stderr.
void stderr_sink(log_level level, std::uint64_t connection_id, std::string_view text);

/// A level and a sink. Copyable; cheap to test with enabled().
class logger {
  public:
    logger() = default;
    explicit logger(log_level level, log_sink sink = stderr_sink)
        : level_(level), sink_(std::move(sink)) {}

    bool enabled(log_level level) const noexcept { return level >= level_ && sink_; }
    log_level level() const noexcept { return level_; }

    template <typename... Args>
    void log(log_level level, std::uint64_t id, fmt::format_string<Args...> f,
             Args&&... args) const {
        if (!enabled(level)) return;
        sink_(level, id, fmt::vformat(f, fmt::make_format_args(args...)));
    }

  private:
    log_level level_ = log_level::warn;
    log_sink sink_ = stderr_sink;
};

}  // namespace wscoro
