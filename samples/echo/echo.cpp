// An exact echo server: text comes back as text, binary as binary, pings are answered,
// closes are answered with the same code. Used by the conformance suites and benchmarks.
//
//     echo [--host 127.0.0.1] [--port 8080] [--tls-cert FILE --tls-key FILE]
//          [--max-message-size BYTES] [--threads N] [--coroutine] [--park-idle-after MS]
//          [--debug]
//
// It is served with event callbacks (wscoro::event_handlers): an idle connection then holds
// no coroutine frame, and a message is echoed straight from the read that brought it.
// --coroutine serves it with the equivalent handler coroutine instead.

#include <fmt/format.h>
#include <wscoro/wscoro.hpp>

#include "../common/cli.hpp"

namespace {

wscoro::event_handlers echo_events() {
    wscoro::event_handlers h;
    h.on_message = [](const wscoro::connection& ws, const wscoro::message& msg) {
        // Queued without waiting; everything echoed from one read leaves in one send(). It
        // only fails once the connection is closing, when there is nobody to echo to. A
        // client that does not read stops being read (backpressure, see event_handlers).
        (void)ws.send_now(msg);
    };
    return h;
}

asio::awaitable<void> echo(wscoro::connection ws) {
    while (auto msg = co_await ws.receive()) {
        // Echo it, then every message that came in the same read: try_receive() and
        // try_send() never suspend, so a pipelining client's burst costs no coroutine switch
        // per message. When try_send() cannot queue without waiting, send() waits (or
        // throws once the connection is gone).
        do {
            if (!ws.try_send(*msg)) co_await ws.send(*msg);
        } while ((msg = ws.try_receive()));
    }
}

constexpr std::string_view usage =
    "usage: echo [--host ADDRESS] [--port PORT] [--tls-cert FILE --tls-key FILE\n"
    "            [--tls-key-pass PASSWORD]] [--max-message-size BYTES] [--threads N]\n"
    "            [--coroutine] [--park-idle-after MS] [--debug]\n"
    "  An exact WebSocket echo server (default 127.0.0.1:8080), over wss:// with\n"
    "  --tls-cert/--tls-key (PEM files). --max-message-size also raises the frame limit.\n"
    "  --threads N: N threads, each with its own io_context and SO_REUSEPORT acceptor.\n"
    "  --coroutine: serve with a handler coroutine instead of event callbacks.\n"
    "  --park-idle-after MS: park connections silent this long (default 500, 0: never).\n";

}  // namespace

int main(int argc, char** argv) {
    wscoro::server_options options;
    // Accept a connection once its upgrade request is there: one wake-up and one empty read
    // fewer per connection (see server_options::defer_accept).
    options.defer_accept = true;
    bool coroutine = false;
    sample::parse_common(argc, argv, options, usage, {{"--coroutine", &coroutine}});
    if (coroutine) return sample::run_server("echo", options, echo);
    return sample::run_server("echo", options, echo_events());
}
