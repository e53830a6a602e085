// Raw TCP echo server: the ceiling for the echo benchmarks.
//
// Single-threaded, level-triggered epoll, TCP_NODELAY, one shared 256 KiB read buffer:
// each readable event is one read() and one write() of what was read. Only a connection whose
// socket buffer is full keeps bytes of its own (and stops reading until they are written),
// so an idle connection costs no user-space memory at all.
//
//     raw_echo [--host 127.0.0.1] [--port 8080]
//
// Prints "raw_echo listening on HOST:PORT" once it accepts connections.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

int ep = -1;
int listener = -1;
std::unordered_map<int, std::string> backlog;  // fd -> bytes not yet written

void drop(int fd) {
    backlog.erase(fd);
    ::close(fd);  // also removes it from the epoll set
}

void watch(int fd, std::uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(ep, op, fd, &ev);
}

void accept_all() {
    for (;;) {
        const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) std::perror("raw_echo: accept4");
            return;
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        watch(fd, EPOLLIN, EPOLL_CTL_ADD);
    }
}

// Writes as much as possible; keeps the rest and waits for EPOLLOUT. False: connection gone.
bool write_or_keep(int fd, const char* p, std::size_t n, bool from_backlog) {
    while (n > 0) {
        const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= static_cast<std::size_t>(w);
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return false;
    }
    if (n == 0) {
        if (from_backlog) {
            backlog.erase(fd);
            watch(fd, EPOLLIN, EPOLL_CTL_MOD);
        }
        return true;
    }
    if (from_backlog) {
        auto& b = backlog[fd];
        b.erase(0, b.size() - n);
    } else {
        backlog[fd].assign(p, n);
        watch(fd, EPOLLOUT, EPOLL_CTL_MOD);  // stop reading until the echo is out
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    int port = 8080;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--host" && i + 1 < argc) {
            host = argv[++i];
        } else if (a == "--port" && i + 1 < argc) {
            port = std::atoi(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: raw_echo [--host 127.0.0.1] [--port 8080]\n");
            return 2;
        }
    }
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
        std::fprintf(stderr, "raw_echo: bad IPv4 address '%s'\n", host.c_str());
        return 2;
    }
    listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 4096) != 0) {
        std::perror("raw_echo: bind/listen");
        return 1;
    }
    socklen_t len = sizeof addr;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    ep = ::epoll_create1(EPOLL_CLOEXEC);
    watch(listener, EPOLLIN, EPOLL_CTL_ADD);
    std::printf("raw_echo listening on %s:%u\n", host.c_str(), ntohs(addr.sin_port));
    std::fflush(stdout);

    std::vector<char> buf(256 * 1024);
    std::vector<epoll_event> events(1024);
    for (;;) {
        const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            std::perror("raw_echo: epoll_wait");
            return 1;
        }
        for (int e = 0; e < n; ++e) {
            const int fd = events[static_cast<std::size_t>(e)].data.fd;
            const std::uint32_t ev = events[static_cast<std::size_t>(e)].events;
            if (fd == listener) {
                accept_all();
                continue;
            }
            if (ev & EPOLLOUT) {
                const auto it = backlog.find(fd);
                if (it != backlog.end()) {
                    const std::string& b = it->second;
                    if (!write_or_keep(fd, b.data(), b.size(), true)) drop(fd);
                }
                continue;
            }
            const ssize_t r = ::read(fd, buf.data(), buf.size());
            if (r > 0) {
                if (!write_or_keep(fd, buf.data(), static_cast<std::size_t>(r), false)) drop(fd);
            } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                drop(fd);
            }
        }
    }
}
