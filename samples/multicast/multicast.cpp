// A chat room: every message a client sends is broadcast to every connected client
// (em-websocket's examples/multicast.rb, without the long-dead Twitter feed).
// Open samples/multicast/index.html in a browser (several tabs) to try it.
//
//     multicast [--host 127.0.0.1] [--port 8080] [--debug]

#include <fmt/format.h>
#include <mutex>
#include <set>
#include <vector>
#include <wscoro/wscoro.hpp>

#include "../common/cli.hpp"

namespace {

// The room. Handlers run on their connections' strands, possibly on several threads, so the
// member set is guarded; messages are sent outside the lock.
class room {
  public:
    void join(const wscoro::connection& c) {
        std::lock_guard lock(mutex_);
        members_.insert(c);
    }
    void leave(const wscoro::connection& c) {
        std::lock_guard lock(mutex_);
        members_.erase(c);
    }
    std::vector<wscoro::connection> members() const {
        std::lock_guard lock(mutex_);
        return {members_.begin(), members_.end()};
    }

  private:
    mutable std::mutex mutex_;
    std::set<wscoro::connection> members_;
};

room the_room;

asio::awaitable<void> broadcast(std::string text) {
    // Framed once, shared by every member's queue: no copy per member.
    const auto msg = wscoro::prepared_message::text(text);
    for (auto& member : the_room.members()) {
        std::error_code ec;  // a member that just left is not an error for the others
        co_await member.send(msg, ec);
    }
}

asio::awaitable<void> session(wscoro::connection ws) {
    const auto name = fmt::format("guest{}", ws.id());
    the_room.join(ws);
    co_await ws.send(fmt::format("welcome, {}! {} in the room", name, the_room.members().size()));
    co_await broadcast(fmt::format("* {} joined", name));
    while (auto msg = co_await ws.receive()) {
        if (!msg->is_text()) continue;
        co_await broadcast(fmt::format("{}: {}", name, msg->text()));
    }
    the_room.leave(ws);
    co_await broadcast(fmt::format("* {} left", name));
}

constexpr std::string_view usage =
    "usage: multicast [--host ADDRESS] [--port PORT] [--debug]\n"
    "  A chat room: each message is sent to every connected client.\n"
    "  Open samples/multicast/index.html in a browser to join.\n";

}  // namespace

int main(int argc, char** argv) {
    wscoro::server_options options;
    sample::parse_common(argc, argv, options, usage);
    return sample::run_server("multicast", options, session);
}
