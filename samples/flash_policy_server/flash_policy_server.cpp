// A stand-alone Adobe Flash socket policy server (em-websocket issue #61): answers
// `<policy-file-request/>` with the cross-domain policy and a NUL, then closes. Anything
// else gets an HTTP error. Port 843 is where Flash looks first (binding it needs root).
//
//     flash_policy_server [--host 0.0.0.0] [--port 843] [--debug]

#include <fmt/format.h>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <wscoro/wscoro.hpp>

#include "../common/cli.hpp"

namespace {
constexpr std::string_view usage =
    "usage: flash_policy_server [--host ADDRESS] [--port PORT] [--debug]\n"
    "  Serves the Flash cross-domain policy (default 0.0.0.0:843).\n";
}  // namespace

int main(int argc, char** argv) {
    wscoro::server_options options;
    options.host = "0.0.0.0";
    options.port = 843;
    sample::parse_common(argc, argv, options, usage);
    options.flash_policy = true;
    // Policy requests arrive at once; nobody upgrades here, so keep connections short.
    options.timeouts.handshake = std::chrono::seconds(3);
    options.protocol_versions.clear();  // no WebSocket on this port: every upgrade gets 426
    try {
        asio::io_context io(1);
        options.single_threaded = true;
        wscoro::server server(io.get_executor(), options);
        server.serve([](wscoro::connection) -> asio::awaitable<void> { co_return; });
        fmt::print("flash policy server on port {}\n", server.local_endpoint().port());
        std::fflush(stdout);
        asio::signal_set signals(io, SIGINT, SIGTERM);
        sample::stop_on_signals(io, server, signals);
        io.run();
    } catch (const std::exception& e) {
        fmt::print(stderr, "flash_policy_server: {}\n", e.what());
        return 1;
    }
    return 0;
}
