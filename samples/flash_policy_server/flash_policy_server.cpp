// A stand-alone Adobe Flash socket policy server (em-websocket issue #61): answers
// `<policy-file-request/>` with the cross-domain policy and a NUL, then closes. Anything
// else gets an HTTP error. Port 843 is where Flash looks first (binding it needs root).
//
//     flash_policy_server [--host 0.0.0.0] [--port 843] [--debug]

#include <fmt/format.h>
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
    return sample::run_server("flash_policy_server", options,
                              [](wscoro::connection) -> asio::awaitable<void> { co_return; });
}
