#pragma once
// A small RFC 6455 client for the integration tests, built on wscoro's own sans-I/O layer in
// the client role. It can also send arbitrary (broken) bytes, to drive every server path.

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wscoro/protocol/frame.hpp"
#include "wscoro/protocol/http_request.hpp"

namespace wscoro::test {

using namespace std::chrono_literals;

/// One event seen by the client, with owned copies of the bytes.
struct received {
    protocol::event_kind kind = protocol::event_kind::need_more;
    protocol::opcode type = protocol::opcode::text;
    std::vector<std::byte> payload;
    std::uint16_t code = 0;
    std::string reason;
    std::error_code ec;
    bool eof = false;      ///< the server closed TCP
    bool timeout = false;  ///< nothing arrived in time

    std::string text() const {
        return {reinterpret_cast<const char*>(payload.data()), payload.size()};
    }
};

/// How a test client speaks TLS (wss://).
struct tls_client_options {
    std::string server_name;  ///< SNI name to send ("" sends none)
    std::string ca_pem;       ///< verify the server against this certificate ("" verifies nothing)
    std::string cert_pem;     ///< client certificate for mutual TLS ("" for none)
    std::string key_pem;
};

class ws_client {
  public:
    using tls_stream = asio::ssl::stream<asio::ip::tcp::socket>;

    explicit ws_client(asio::ip::tcp::socket socket);
    ws_client(std::shared_ptr<asio::ssl::context> ctx, tls_stream stream);

    /// Connects and completes the opening handshake for `target` (throws on failure).
    static asio::awaitable<ws_client> connect(asio::ip::tcp::endpoint ep, std::string target = "/",
                                              std::string extra_headers = {},
                                              const tls_client_options* tls = nullptr);
    /// Connects (and does the TLS handshake if `tls`) without a WebSocket handshake, for raw
    /// HTTP / byte scripts. Throws on failure.
    static asio::awaitable<ws_client> connect_raw(asio::ip::tcp::endpoint ep,
                                                  const tls_client_options* tls = nullptr);
    /// After a TLS connect: the OpenSSL handle (nullptr for plain TCP).
    SSL* tls_handle();

    asio::awaitable<void> write_raw(std::span<const std::byte> bytes);
    asio::awaitable<void> write_raw(std::string_view bytes);
    /// Sends one masked frame.
    asio::awaitable<void> send_frame(protocol::opcode op, std::span<const std::byte> payload,
                                     bool fin = true);
    asio::awaitable<void> send_text(std::string_view text);
    asio::awaitable<void> send_close(std::uint16_t code, std::string_view reason = {});

    /// The next frame event from the server (decoded in client role), or eof/timeout.
    asio::awaitable<received> next(std::chrono::milliseconds limit = 5000ms);
    /// Reads until the server closes TCP or `limit` passes; returns everything read.
    asio::awaitable<std::string> read_until_eof(std::chrono::milliseconds limit = 5000ms);
    /// Reads an HTTP response head (up to the empty line).
    asio::awaitable<std::string> read_http_head(std::chrono::milliseconds limit = 5000ms);

    asio::ip::tcp::socket& socket();
    void set_limits(protocol::frame_limits l) { decoder_.set_limits(l); }

  private:
    asio::awaitable<std::size_t> read_some(std::chrono::milliseconds limit, bool& timed_out);

    std::shared_ptr<asio::ssl::context> tls_ctx_;
    std::variant<asio::ip::tcp::socket, tls_stream> stream_;
    protocol::message_decoder decoder_;
    std::vector<std::byte> buf_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

/// Runs `test` on `io` until it finishes or `limit` passes; rethrows its exception, fails
/// the test if it did not finish. Every test loop is bounded by this.
void run_test(asio::io_context& io, std::function<asio::awaitable<void>()> test,
              std::chrono::milliseconds limit = 20000ms);

std::span<const std::byte> bytes(std::string_view s);
std::vector<std::byte> pattern(std::size_t n, unsigned seed = 1);

}  // namespace wscoro::test
