// The seed example: greets each client with the path it connected to and answers every
// message with "Pong: <message>".
//
//     greeter [--host 127.0.0.1] [--port 8080] [--debug]

#include <fmt/format.h>
#include <wscoro/wscoro.hpp>

#include "../common/cli.hpp"

namespace {

asio::awaitable<void> session(wscoro::connection ws) {
    co_await ws.send(fmt::format("Hello Client, you connected to {}", ws.handshake().path()));
    while (auto msg = co_await ws.receive())
        co_await ws.send(fmt::format("Pong: {}", msg->text()));
    const auto info = ws.close_info();
    fmt::print("closed: {} '{}' clean={}\n", info.code, info.reason, info.was_clean);
}

constexpr std::string_view usage =
    "usage: greeter [--host ADDRESS] [--port PORT] [--debug]\n"
    "  Greets with the path, then answers each message with \"Pong: <message>\".\n";

}  // namespace

int main(int argc, char** argv) {
    wscoro::server_options options;
    sample::parse_common(argc, argv, options, usage);
    return sample::run_server("greeter", options, session);
}
