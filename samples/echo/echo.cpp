// An exact echo server: text comes back as text, binary as binary, pings are answered,
// closes are answered with the same code. Used by the conformance suites and benchmarks.
//
//     echo [--host 127.0.0.1] [--port 8080] [--tls-cert FILE --tls-key FILE]
//          [--max-message-size BYTES] [--threads N] [--debug]

#include <fmt/format.h>
#include <wscoro/wscoro.hpp>

#include "../common/cli.hpp"

namespace {

asio::awaitable<void> echo(wscoro::connection ws) {
    while (auto msg = co_await ws.receive())
        co_await ws.send(*msg);
}

constexpr std::string_view usage =
    "usage: echo [--host ADDRESS] [--port PORT] [--tls-cert FILE --tls-key FILE\n"
    "            [--tls-key-pass PASSWORD]] [--max-message-size BYTES] [--threads N]\n"
    "            [--debug]\n"
    "  An exact WebSocket echo server (default 127.0.0.1:8080), over wss:// with\n"
    "  --tls-cert/--tls-key (PEM files). --max-message-size also raises the frame limit.\n"
    "  --threads N: N threads, each with its own io_context and SO_REUSEPORT acceptor.\n";

}  // namespace

int main(int argc, char** argv) {
    wscoro::server_options options;
    sample::parse_common(argc, argv, options, usage);
    return sample::run_server("echo", options, echo);
}
