#pragma once
// A wscoro::server on 127.0.0.1 (port 0) run on the test thread's io_context, recording
// every on_error report.

#include <asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "ws_client.hpp"
#include "wscoro/server.hpp"

namespace wscoro::test {

struct recorded_error {
    std::error_code code;
    std::string message;
    bool had_exception = false;
};

struct server_fixture {
    asio::io_context io{1};
    server_options options;
    std::unique_ptr<server> srv;
    std::vector<recorded_error> errors;

    server_fixture() {
        options.port = 0;
        options.timeouts.close = std::chrono::seconds(5);
        options.timeouts.handshake = std::chrono::seconds(5);
    }

    /// Starts serving with `h`: a handler coroutine or event_handlers.
    template <class Handler>
    void start(Handler h) {
        options.on_error = [this](const error_report& r) {
            errors.push_back({r.code, r.message, r.exception != nullptr});
        };
        srv = std::make_unique<server>(io.get_executor(), options);
        srv->serve(std::move(h));
    }

    asio::ip::tcp::endpoint endpoint() const {
        return {srv->local_endpoint().address(), srv->local_endpoint().port()};
    }

    bool saw_error(std::error_code ec) const {
        for (auto& e : errors)
            if (e.code == ec) return true;
        return false;
    }

    /// Waits (bounded) until the server has no connection left.
    asio::awaitable<bool> drained(std::chrono::milliseconds limit = std::chrono::seconds(5));

    void run(std::function<asio::awaitable<void>()> test,
             std::chrono::milliseconds limit = std::chrono::seconds(30)) {
        run_test(io, std::move(test), limit);
    }
};

asio::awaitable<void> sleep_for(std::chrono::milliseconds d);

inline asio::awaitable<bool> server_fixture::drained(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (srv->connection_count() != 0) {
        if (std::chrono::steady_clock::now() > deadline) co_return false;
        co_await sleep_for(std::chrono::milliseconds(5));
    }
    co_return true;
}

}  // namespace wscoro::test
