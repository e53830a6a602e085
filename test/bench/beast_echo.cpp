// Boost.Beast WebSocket echo server, the peer wscoro is compared with.
//
// Written the way Beast's users write a fast one: boost::asio::awaitable coroutines on a
// single-threaded io_context, a plain tcp::socket (no tcp_stream timers), TCP_NODELAY, one
// flat_buffer per connection reused for every message, auto_fragment off, the message type
// (text/binary) preserved, read_message_max raised to 64 MiB (wscoro's default), no
// permessage-deflate (Beast's default).
//
//     beast_echo [--host 127.0.0.1] [--port 8080]
//
// Prints "beast_echo listening on HOST:PORT" once it accepts connections.

#include <sys/resource.h>

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

namespace {

net::awaitable<void> session(tcp::socket socket) {
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    websocket::stream<tcp::socket> ws(std::move(socket));
    ws.auto_fragment(false);
    ws.read_message_max(64u << 20);
    try {
        co_await ws.async_accept(net::use_awaitable);
        beast::flat_buffer buffer;
        for (;;) {
            co_await ws.async_read(buffer, net::use_awaitable);
            ws.text(ws.got_text());
            co_await ws.async_write(buffer.data(), net::use_awaitable);
            buffer.consume(buffer.size());
        }
    } catch (const boost::system::system_error&) {
        // websocket::error::closed after a clean close handshake, or the peer went away
    }
}

net::awaitable<void> listen(tcp::acceptor& acceptor) {
    for (;;) {
        try {
            tcp::socket s = co_await acceptor.async_accept(net::use_awaitable);
            net::co_spawn(acceptor.get_executor(), session(std::move(s)), net::detached);
        } catch (const boost::system::system_error& e) {
            std::fprintf(stderr, "beast_echo: accept: %s\n", e.what());
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    unsigned short port = 8080;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--host" && i + 1 < argc) {
            host = argv[++i];
        } else if (a == "--port" && i + 1 < argc) {
            port = static_cast<unsigned short>(std::atoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: beast_echo [--host 127.0.0.1] [--port 8080]\n");
            return 2;
        }
    }
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    try {
        net::io_context io(1);
        tcp::acceptor acceptor(io);
        const tcp::endpoint ep(net::ip::make_address(host), port);
        acceptor.open(ep.protocol());
        acceptor.set_option(net::socket_base::reuse_address(true));
        acceptor.bind(ep);
        acceptor.listen(4096);
        std::printf("beast_echo listening on %s:%u\n", host.c_str(),
                    static_cast<unsigned>(acceptor.local_endpoint().port()));
        std::fflush(stdout);
        net::co_spawn(io, listen(acceptor), net::detached);
        net::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
        io.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "beast_echo: %s\n", e.what());
        return 1;
    }
    return 0;
}
