#pragma once
// Tiny command-line and signal helpers shared by the samples.

#include <fmt/format.h>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>

#include <wscoro/server.hpp>

namespace sample {

/// A sample's own on/off flag, e.g. {"--coroutine", &coroutine}.
struct switch_flag {
    std::string_view name;
    bool* value;
};

/// Parses `--host H --port P --debug` (and `--help`) into `options`, and the sample's own
/// `switches`; exits on bad input.
inline void parse_common(int argc, char** argv, wscoro::server_options& options,
                         std::string_view usage, std::initializer_list<switch_flag> switches = {}) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        bool matched = false;
        for (const auto& sw : switches)
            if (arg == sw.name) *sw.value = matched = true;
        if (matched) continue;
        const auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) {
                fmt::print(stderr, "{} needs a value\n{}", arg, usage);
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--host") {
            options.host = std::string(value());
        } else if (arg == "--port") {
            const auto v = value();
            unsigned port = 0;
            const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), port);
            if (ec != std::errc() || p != v.data() + v.size() || port > 65535) {
                fmt::print(stderr, "bad port '{}'\n{}", v, usage);
                std::exit(2);
            }
            options.port = static_cast<std::uint16_t>(port);
        } else if (arg == "--tls-cert") {
            options.secure = true;
            options.tls.cert_chain_file = std::string(value());
        } else if (arg == "--tls-key") {
            options.secure = true;
            options.tls.private_key_file = std::string(value());
        } else if (arg == "--tls-key-pass") {
            options.tls.private_key_pass = std::string(value());
        } else if (arg == "--max-message-size") {
            const auto v = value();
            std::uint64_t n = 0;
            const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc() || p != v.data() + v.size() || n == 0) {
                fmt::print(stderr, "bad size '{}'\n{}", v, usage);
                std::exit(2);
            }
            options.max_message_size = n;
            options.max_frame_size = n;
        } else if (arg == "--threads") {
            const auto v = value();
            unsigned n = 0;
            const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc() || p != v.data() + v.size() || n == 0 || n > 256) {
                fmt::print(stderr, "bad thread count '{}'\n{}", v, usage);
                std::exit(2);
            }
            options.threads = n;
        } else if (arg == "--park-idle-after") {
            const auto v = value();
            unsigned ms = 0;
            const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
            if (ec != std::errc() || p != v.data() + v.size()) {
                fmt::print(stderr, "bad milliseconds '{}'\n{}", v, usage);
                std::exit(2);
            }
            options.park_idle_after = std::chrono::milliseconds(ms);
        } else if (arg == "--debug") {
            options.debug = true;
        } else if (arg == "--help" || arg == "-h") {
            fmt::print("{}", usage);
            std::exit(0);
        } else {
            fmt::print(stderr, "unknown argument '{}'\n{}", arg, usage);
            std::exit(2);
        }
    }
}

/// The samples' main loop: one io_context on this thread, the server on it, a banner, and a
/// graceful stop (1001 to every client) on SIGINT or SIGTERM. Returns the exit status.
/// `handler`: a wscoro::handler (coroutine) or wscoro::event_handlers (callbacks).
template <class Handler>
int run_server(std::string_view name, wscoro::server_options options, Handler handler) {
    try {
        // Only this thread runs `io`, so Asio's per-socket reactor locks can go
        // (UNSAFE_IO; posting from other threads stays safe). See the README, "Options".
        asio::io_context io(ASIO_CONCURRENCY_HINT_UNSAFE_IO);
        options.single_threaded = true;  // only this thread runs `io`
        wscoro::server server(io.get_executor(), options);
        server.serve(std::move(handler));
        const auto ep = server.local_endpoint();
        // (fmt, not "[" + s + "]": g++ 12 -O2 warns -Wrestrict on that, GCC bug 105329)
        const auto host = ep.address().is_v6() ? fmt::format("[{}]", ep.address().to_string())
                                               : ep.address().to_string();
        fmt::print("{} listening on {}://{}:{}/{}\n", name, options.secure ? "wss" : "ws", host,
                   ep.port(),
                   options.threads > 1 ? fmt::format(" ({} threads)", options.threads) : "");
        std::fflush(stdout);
        asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&server](std::error_code ec, int) {
            if (!ec) server.stop();
        });
        io.run();
    } catch (const std::exception& e) {
        fmt::print(stderr, "{}: {}\n", name, e.what());
        return 1;
    }
    return 0;
}

}  // namespace sample
