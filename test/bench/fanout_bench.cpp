// Fan-out benchmark (issue "Performance", broadcast): one server sending every message to
// 1 000 connections, two ways:
//
//   prepared  prepared_message::text(payload) once per message, then send_now(msg) on every
//             connection: framed once, queued by reference (a gather write per connection)
//   naive     send_now(text) on every connection: a UTF-8 check, a frame and a copy each
//
// Server and clients in one process: the server's io_context runs on one thread pinned to
// core 0, the clients (plain sockets, epoll, no WebSocket library) on another pinned to core 1.
// The clients check every frame's header and every payload byte. The server sends rounds (one
// message to every connection) while fewer than `window` rounds are on their way, and the
// clients report each round that every connection has received in full. Reported: the server
// thread's CPU time per round and per delivered message, medians over repetitions that
// alternate the two ways.
//
//   fanout_bench [--connections 1000] [--sizes 128,4096,16384] [--reps 3] [--window 8]

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "wscoro/connection.hpp"
#include "wscoro/events.hpp"
#include "wscoro/prepared_message.hpp"
#include "wscoro/server.hpp"

namespace {

[[noreturn]] void die(const std::string& why) {
    std::fprintf(stderr, "fanout_bench: %s\n", why.c_str());
    std::exit(1);
}

void pin(int cpu) {
    if (static_cast<int>(std::thread::hardware_concurrency()) <= cpu) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The payload of round r: printable ASCII that differs from round to round.
std::string payload(std::size_t r, std::size_t size) {
    std::string s(size, ' ');
    for (std::size_t j = 0; j < size; ++j)
        s[j] = static_cast<char>('a' + (r * 7 + j * 13 + j / 26) % 26);
    return s;
}

// One client connection: a frame parser that checks every byte against the round expected.
struct client {
    int fd = -1;
    std::size_t round = 0;  // rounds received in full
    unsigned char hdr[4]{};
    std::size_t hdr_len = 0;
    std::size_t need = 2;  // header bytes needed
    bool in_payload = false;
    std::size_t off = 0;  // payload bytes checked
};

// The run of one way at one size: `rounds` rounds to `members`, paced by `completed`.
struct run_state {
    bool prepared = false;
    std::size_t rounds = 0;
    std::size_t window = 8;
    const std::vector<std::string>* payloads = nullptr;
    std::size_t sent = 0;
    std::size_t completed = 0;
    double cpu_start = 0;
    double cpu_end = 0;
};

class bench {
  public:
    bench(std::size_t connections, std::size_t window) : n_(connections), window_(window) {}

    void start_server() {
        wscoro::server_options o;
        o.host = "127.0.0.1";
        o.port = 0;
        o.single_threaded = true;
        o.park_idle_after = std::chrono::milliseconds(0);
        o.max_connections = n_ + 16;
        srv_ = std::make_unique<wscoro::server>(io_.get_executor(), o);
        wscoro::event_handlers h;
        h.on_open = [this](const wscoro::connection& c) {
            members_.push_back(c);
            opened_.fetch_add(1);
        };
        srv_->serve(std::move(h));
        port_ = srv_->local_endpoint().port();
        server_thread_ = std::thread([this] {
            pin(0);
            io_.run();
        });
    }

    void connect_clients() {
        clients_.resize(n_);
        static constexpr char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
        const std::string request =
            "GET /room HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: " +
            std::string(key) + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
        for (auto& c : clients_) {
            c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (c.fd < 0) die("socket: " + std::string(std::strerror(errno)));
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(port_);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
                die("connect: " + std::string(std::strerror(errno)));
            timeval tv{10, 0};
            ::setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            if (::send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
                static_cast<ssize_t>(request.size()))
                die("send of the upgrade request");
            // The response, byte by byte up to its end (nothing follows it before we ask).
            std::string response;
            char ch;
            while (response.size() < 4096 && response.find("\r\n\r\n") == std::string::npos) {
                if (::recv(c.fd, &ch, 1, 0) != 1) die("no upgrade response");
                response += ch;
            }
            // RFC 6455 §1.3: the Accept for this key.
            if (response.rfind("HTTP/1.1 101", 0) != 0 ||
                response.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == std::string::npos)
                die("bad upgrade response: " + response.substr(0, 80));
            ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
        }
        for (int i = 0; i < 10000 && opened_.load() < n_; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (opened_.load() != n_) die("the server did not open every connection");
        ep_ = ::epoll_create1(EPOLL_CLOEXEC);
        for (std::size_t i = 0; i < n_; ++i) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = i;
            if (::epoll_ctl(ep_, EPOLL_CTL_ADD, clients_[i].fd, &ev) != 0) die("epoll_ctl");
        }
    }

    // Server CPU seconds for `rounds` rounds of `size` bytes, the chosen way.
    double run(bool prepared, std::size_t size, std::size_t rounds,
               const std::vector<std::string>& payloads) {
        for (auto& c : clients_)
            c.round = 0;
        got_.assign(rounds, 0);
        run_state st;
        st.prepared = prepared;
        st.rounds = rounds;
        st.window = window_;
        st.payloads = &payloads;
        std::atomic<bool> finished{false};
        asio::post(io_, [this, &st] {
            st.cpu_start = thread_cpu_seconds();
            send_rounds(st);
        });
        receive(st, rounds, size, payloads, finished);
        for (int i = 0; i < 10000 && !finished.load(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (!finished.load()) die("the server did not see the last round complete");
        return st.cpu_end - st.cpu_start;
    }

    void stop() {
        asio::post(io_, [this] {
            members_.clear();
            srv_->stop();
        });
        for (auto& c : clients_)
            ::close(c.fd);
        server_thread_.join();
        ::close(ep_);
    }

  private:
    // On the server's thread: queue rounds while fewer than `window` are on their way.
    void send_rounds(run_state& st) {
        while (st.sent < st.rounds && st.sent - st.completed < st.window) {
            const std::string& text = (*st.payloads)[st.sent];
            if (st.prepared) {
                const auto msg = wscoro::prepared_message::text(text);
                for (const auto& m : members_)
                    if (m.send_now(msg)) die("send_now(prepared) failed");
            } else {
                for (const auto& m : members_)
                    if (m.send_now(std::string_view(text))) die("send_now(text) failed");
            }
            ++st.sent;
        }
    }

    // On the server's thread: every connection has round `st.completed` in full.
    void on_round_complete(run_state& st, std::atomic<bool>& finished) {
        ++st.completed;
        if (st.completed == st.rounds) {
            st.cpu_end = thread_cpu_seconds();
            finished.store(true);
            return;
        }
        send_rounds(st);
    }

    void receive(run_state& st, std::size_t rounds, std::size_t size,
                 const std::vector<std::string>& payloads, std::atomic<bool>& finished) {
        std::vector<epoll_event> events(256);
        std::vector<unsigned char> buf(256 * 1024);
        std::size_t complete = 0;
        const double deadline = now() + 300;
        while (complete < rounds) {
            if (now() > deadline) die("timed out");
            const int k = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 1000);
            if (k < 0 && errno != EINTR) die("epoll_wait");
            for (int e = 0; e < k; ++e) {
                auto& c = clients_[events[static_cast<std::size_t>(e)].data.u64];
                for (;;) {
                    const ssize_t r = ::recv(c.fd, buf.data(), buf.size(), 0);
                    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                    if (r <= 0) die("a connection ended early");
                    const unsigned char* p = buf.data();
                    std::size_t left = static_cast<std::size_t>(r);
                    while (left > 0) {
                        if (!c.in_payload) {
                            const std::size_t m = std::min(left, c.need - c.hdr_len);
                            std::memcpy(c.hdr + c.hdr_len, p, m);
                            c.hdr_len += m;
                            p += m;
                            left -= m;
                            if (c.hdr_len < c.need) break;
                            // A final, unmasked text frame of the round's size (RFC 6455 §5.2).
                            if (c.hdr[0] != 0x81 || (c.hdr[1] & 0x80) != 0) die("bad frame header");
                            const std::size_t len7 = c.hdr[1] & 0x7F;
                            if (len7 == 126 && c.need == 2) {
                                c.need = 4;
                                continue;
                            }
                            const std::size_t len =
                                len7 < 126 ? len7 : (std::size_t{c.hdr[2]} << 8) | c.hdr[3];
                            if (len7 == 127 || len != size) die("wrong payload length");
                            c.in_payload = true;
                            c.off = 0;
                            continue;
                        }
                        if (c.round >= rounds) die("more rounds than sent");
                        const std::size_t m = std::min(left, size - c.off);
                        if (std::memcmp(p, payloads[c.round].data() + c.off, m) != 0)
                            die("wrong payload byte");
                        c.off += m;
                        p += m;
                        left -= m;
                        if (c.off < size) continue;
                        c.in_payload = false;
                        c.hdr_len = 0;
                        c.need = 2;
                        if (++got_[c.round++] == n_) {
                            ++complete;
                            asio::post(io_,
                                       [this, &st, &finished] { on_round_complete(st, finished); });
                        }
                    }
                    if (static_cast<std::size_t>(r) < buf.size()) break;
                }
            }
        }
    }

    std::size_t n_;
    std::size_t window_;
    asio::io_context io_{ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    std::unique_ptr<wscoro::server> srv_;
    std::vector<wscoro::connection> members_;  // (server thread only)
    std::atomic<std::size_t> opened_{0};
    std::uint16_t port_ = 0;
    std::thread server_thread_;
    std::vector<client> clients_;
    std::vector<std::size_t> got_;  // per round: connections that have it in full
    int ep_ = -1;
};

std::vector<std::size_t> parse_list(const char* s) {
    std::vector<std::size_t> out;
    const std::string text = s;
    std::size_t at = 0;
    while (at <= text.size()) {
        const auto comma = std::min(text.find(',', at), text.size());
        out.push_back(std::stoul(text.substr(at, comma - at)));
        at = comma + 1;
    }
    return out;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t connections = 1000;
    std::vector<std::size_t> sizes = {128, 4096, 16384};
    int reps = 3;
    std::size_t window = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view a = argv[i];
        if (a == "--connections")
            connections = std::stoul(argv[i + 1]);
        else if (a == "--sizes")
            sizes = parse_list(argv[i + 1]);
        else if (a == "--reps")
            reps = std::max(1, std::atoi(argv[i + 1]));
        else if (a == "--window")
            window = std::max<std::size_t>(1, std::stoul(argv[i + 1]));
        else
            die("usage: fanout_bench [--connections N] [--sizes B,B,...] [--reps R] [--window W]");
    }

    // Both ends of every connection live in this process.
    const rlim_t fds = 2 * connections + 64;
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < fds) {
        rl.rlim_cur = std::min(rl.rlim_max, fds);
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < fds)
        die("needs " + std::to_string(fds) + " file descriptors (ulimit -n)");

    bench b(connections, window);
    b.start_server();
    b.connect_clients();
    pin(1);
    std::printf(
        "fan-out to %zu connections, server CPU per round (one message to every "
        "connection), median of %d; window %zu rounds\n",
        connections, reps, window);
    std::printf("%8s %7s %14s %14s %14s %14s %8s\n", "size", "rounds", "prepared us", "naive us",
                "prepared ns/msg", "naive ns/msg", "naive/p");
    for (const std::size_t size : sizes) {
        // About 2 GB of deliveries at most per run, at least 50 rounds.
        const std::size_t rounds = std::max<std::size_t>(
            50, std::min<std::size_t>(2000, (std::size_t{1} << 31) / (size * connections + 1)));
        std::vector<std::string> payloads;
        for (std::size_t r = 0; r < rounds; ++r)
            payloads.push_back(payload(r, size));
        std::vector<double> prepared, naive;
        for (int rep = 0; rep < reps; ++rep) {
            prepared.push_back(b.run(true, size, rounds, payloads) / static_cast<double>(rounds));
            naive.push_back(b.run(false, size, rounds, payloads) / static_cast<double>(rounds));
        }
        const double p = median(prepared), q = median(naive);
        std::printf("%8zu %7zu %14.1f %14.1f %14.1f %14.1f %8.2f\n", size, rounds, p * 1e6, q * 1e6,
                    p * 1e9 / static_cast<double>(connections),
                    q * 1e9 / static_cast<double>(connections), q / p);
        std::fflush(stdout);
    }
    b.stop();
    return 0;
}
