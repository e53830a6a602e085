#include "wscoro/connection.hpp"

#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>
#include <algorithm>
#include <asio/bind_allocator.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cstring>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "connection_impl.hpp"
#include "socket_fast_path.hpp"
#if WSCORO_HAS_TLS
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#endif
#include "wscoro/protocol/handshake.hpp"
#include "wscoro/protocol/negotiate.hpp"
#include "wscoro/protocol/proxy_protocol.hpp"
#include "wscoro/protocol/utf8.hpp"

namespace wscoro::detail {

using protocol::opcode;
namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// Read buffer size. A message that arrives as one frame of up to this size (minus the
// header) is handed to the application in place, without a copy; a pipelining peer's
// frames are read 64 KiB per system call.
constexpr std::size_t read_buffer_size = 64 * 1024;

// Read buffers are recycled per thread: a connection waiting for data gives its buffer
// back (10 000 idle connections hold none), and the busy ones reuse a few, with no
// allocation and no zero-filling per read.
class read_buffer_pool {
  public:
    read_buffer get() {
        // The common cycle (a connection takes a buffer, reads, gives it back) goes through
        // one slot, without the vector's bookkeeping.
        if (hot_) return std::move(hot_);
        if (free_.empty()) {
            void* p = ::mmap(nullptr, read_buffer_size, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) throw std::bad_alloc();
            return read_buffer(static_cast<std::byte*>(p));
        }
        auto b = std::move(free_.back());
        free_.pop_back();
        return b;
    }
    void put(read_buffer b) {
        if (!hot_)
            hot_ = std::move(b);
        else if (free_.size() < max_kept)
            free_.push_back(std::move(b));
    }

  private:
    static constexpr std::size_t max_kept = 8;  // with hot_, at most 576 KiB kept per thread
    read_buffer hot_;
    std::vector<read_buffer> free_;
};
thread_local read_buffer_pool buffer_pool;
// A connection whose write queue grew beyond zero_copy_threshold keeps that capacity while
// it writes, and gives it back after this long without a write (down to the quiet size).
constexpr std::chrono::milliseconds write_capacity_linger{1000};
constexpr std::size_t quiet_write_capacity = 4096;
// The most one synchronous send() is given (see start_write).
constexpr std::size_t write_slice = 64 * 1024;
// A frame payload with at least this much still to come is read straight into the message
// buffer (when nothing else is buffered): one copy fewer for large messages.
constexpr std::size_t direct_read_min = 16 * 1024;
// Writes `bufs` (`total` bytes) from byte `done` on, in write_slice pieces, until all is
// written, the socket is full or an error (in `ec`); returns how far it got.
std::size_t write_slices(asio::ip::tcp::socket& sock, std::span<const asio::const_buffer> bufs,
                         std::size_t total, std::size_t done, std::error_code& ec) {
    while (done < total) {
        const auto asked = std::min(write_slice, total - done);
        const auto w = write_now(sock, bufs, ec, done, write_slice);
        done += w;
        if (ec || w < asked) break;  // an error, or the socket is full
    }
    return done;
}
// How long we keep reading after our last bytes, waiting for the peer's FIN, so that
// closing with unread data does not turn into a RST that could destroy our Close frame.
constexpr std::chrono::milliseconds max_linger{2000};

std::string_view opcode_name(opcode op) {
    switch (op) {
        case opcode::continuation:
            return "cont";
        case opcode::text:
            return "text";
        case opcode::binary:
            return "binary";
        case opcode::close:
            return "close";
        case opcode::ping:
            return "ping";
        case opcode::pong:
            return "pong";
    }
    return "?";
}
}  // namespace

bool is_closed_error(const std::exception_ptr& ex) {
    try {
        std::rethrow_exception(ex);
    } catch (const std::system_error& e) {
        return e.code() == error::closed;
    } catch (...) {
        return false;
    }
}

std::string describe(const std::exception_ptr& ex) {
    try {
        std::rethrow_exception(ex);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown exception";
    }
}

strand_variant make_connection_strand(const asio::any_io_executor& ex, bool single_threaded) {
    if (const auto* io = io_context_executor(ex)) {
        if (single_threaded) return *io;
        return asio::make_strand(*io);
    }
    return asio::make_strand(ex);
}

namespace {
detail::transport make_transport(asio::ip::tcp::socket socket, const connection_config& config) {
#if WSCORO_HAS_TLS
    if (config.tls)
        return detail::transport(
            std::make_unique<tls_stream>(std::move(socket), config.tls->context()));
#else
    (void)config;
#endif
    return detail::transport(std::in_place_type<asio::ip::tcp::socket>, std::move(socket));
}
}  // namespace

connection_impl::connection_impl(asio::ip::tcp::socket socket, strand_variant strand,
                                 std::shared_ptr<const connection_config> config, std::uint64_t id,
                                 asio::ip::tcp::endpoint peer, asio::ip::tcp::endpoint local)
    : max_frame_size(config->limits.max_frame_size),
      peer_(peer),
      local_(local),
      stream_(make_transport(std::move(socket), *config)),
      strand_(std::move(strand)),
      executor_(std::visit([](const auto& st) { return asio::any_io_executor(st); }, strand_)),
      config_(std::move(config)),
      id_(id),
      decoder_(protocol::role::server, 13, config_->limits,
               read_buffer_size - protocol::max_header_size),
      decoder_max_frame_(config_->limits.max_frame_size) {}

connection_impl::~connection_impl() {
    if (lot_linked && events_) events_->woke(*this);  // (an io_context destroyed mid-wait)
    // The read buffer goes back to this thread's pool (a munmap() per connection otherwise).
    if (rbuf_) buffer_pool.put(std::move(rbuf_));
}

ip_network ip_network::parse(const std::string& text) {
    const auto slash = text.find('/');
    std::error_code ec;
    const auto a = asio::ip::make_address(text.substr(0, slash), ec);
    if (ec) throw std::invalid_argument("wscoro: bad trusted proxy address '" + text + "'");
    const unsigned max = a.is_v4() ? 32 : 128;
    unsigned prefix = max;
    if (slash != std::string::npos) {
        const auto digits = text.substr(slash + 1);
        if (digits.empty() || digits.size() > 3 ||
            digits.find_first_not_of("0123456789") != std::string::npos || std::stoul(digits) > max)
            throw std::invalid_argument("wscoro: bad prefix length in '" + text + "'");
        prefix = static_cast<unsigned>(std::stoul(digits));
    }
    ip_network n;
    n.bytes = a.is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes()
                        : a.to_v6().to_bytes();
    n.prefix = a.is_v4() ? prefix + 96 : prefix;
    return n;
}

bool ip_network::contains(const asio::ip::address& a) const noexcept {
    const auto b = a.is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes()
                             : a.to_v6().to_bytes();
    const unsigned full = prefix / 8, rest = prefix % 8;
    for (unsigned i = 0; i < full; ++i)
        if (b[i] != bytes[i]) return false;
    if (rest == 0) return true;
    const auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
    return (b[full] & mask) == (bytes[full] & mask);
}

// ---------------------------------------------------------------------------------------------
// Opening handshake
// ---------------------------------------------------------------------------------------------

asio::ip::tcp::socket& connection_impl::tcp() noexcept {
#if WSCORO_HAS_TLS
    if (auto* tls = tls_or_null()) return tls->next_layer();
#endif
    return std::get<asio::ip::tcp::socket>(stream_);
}

asio::awaitable<std::error_code> connection_impl::read_more() {
    prepare_read_buffer();
    if (std::holds_alternative<asio::ip::tcp::socket>(stream_)) {
        // As receive(): a wait that costs no system call, then recv(MSG_DONTWAIT).
        auto& sock = tcp();
        std::error_code ec;
        for (bool try_read = last_read_full_;; try_read = true) {
            if (try_read) {
                rb_end_ += read_now(sock, ec);
                if (ec != asio::error::would_block && ec != asio::error::try_again) co_return ec;
            }
            auto wait = async_wait_readable(sock, use_tuple, &wait_cache_);
            std::tie(ec) = co_await std::move(wait);
            if (ec) co_return ec;
        }
    }
    auto op = std::visit(
        [&](auto& alt) {
            auto& s = stream_of(alt);
            return s.async_read_some(asio::buffer(rbuf_.get() + rb_end_, rcap_ - rb_end_),
                                     use_tuple);
        },
        stream_);
    auto [ec, n] = co_await std::move(op);
    rb_end_ += n;
    co_return ec;
}

asio::awaitable<bool> connection_impl::refuse(std::error_code ec, std::string response) {
    // Every refusal is a real answer (an HTTP status, a policy file), written before TCP is
    // closed; the close is bounded by the linger time.
    set_close_info(close_code::abnormal, {}, false, ec);
    wbuf_.assign(reinterpret_cast<const std::byte*>(response.data()), response.size());
    buffered_ = wbuf_.size();
    state_ = connection_state::closed;
    shutdown_after_flush();
    while (!socket_closed_)
        co_await wait_signal();
    co_return false;
}

asio::awaitable<bool> connection_impl::answer_flash_policy() {
    // Adobe's socket policy protocol: the client sends "<policy-file-request/>" and a NUL and
    // expects the policy XML followed by a NUL. Accept optional white space before "/>" as
    // em-websocket does, and wait (within the handshake timeout) for the whole request.
    constexpr std::string_view prefix = "<policy-file-request";
    for (;;) {
        const std::string_view have(reinterpret_cast<const char*>(rbuf_.get() + rb_begin_),
                                    rb_end_ - rb_begin_);
        const auto cmp = have.substr(0, prefix.size());
        if (cmp != prefix.substr(0, cmp.size())) break;  // not a policy request after all
        if (have.size() > prefix.size()) {
            auto rest = have.substr(prefix.size());
            while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t' ||
                                     rest.front() == '\r' || rest.front() == '\n'))
                rest.remove_prefix(1);
            if (rest.size() >= 2) {
                if (rest.substr(0, 2) != "/>") break;
                config_->log.log(log_level::debug, id_, "flash policy request answered");
                std::string reply = config_->flash_policy_xml;
                reply.push_back('\0');
                co_return co_await refuse({}, std::move(reply));
            }
            if (have.size() > 256) break;
        }
        if (auto ec = co_await read_more()) {
            force_close();
            co_return false;
        }
    }
    const auto ec = make_error_code(error::bad_http_request);
    report(ec, nullptr, "handshake rejected: " + ec.message());
    co_return co_await refuse(ec, protocol::reject_response(ec));
}

void connection_impl::collect_tls_details() {
#if WSCORO_HAS_TLS
    auto* tls = tls_or_null();
    if (!tls) return;
    SSL* ssl = tls->native_handle();
    auto details = std::make_shared<tls_details>();
    auto& d = *details;
    d.version = SSL_get_version(ssl);
    if (const char* c = SSL_get_cipher_name(ssl)) d.cipher = c;
    if (const char* n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) d.server_name = n;
    if (X509* cert = SSL_get1_peer_certificate(ssl)) {
        if (char* subject = X509_NAME_oneline(X509_get_subject_name(cert), nullptr, 0)) {
            d.peer_subject = subject;
            OPENSSL_free(subject);
        }
        if (BIO* bio = BIO_new(BIO_s_mem())) {
            if (PEM_write_bio_X509(bio, cert) == 1) {
                char* data = nullptr;
                const long len = BIO_get_mem_data(bio, &data);
                if (len > 0) d.peer_certificate_pem.assign(data, static_cast<std::size_t>(len));
            }
            BIO_free(bio);
        }
        X509_free(cert);
    }
    handshake_.tls_ = std::move(details);
#endif
}

void connection_impl::apply_forwarded_headers() {
    // Only a trusted proxy's word counts (server_options::trusted_proxies).
    if (!config_->trust_forwarded_headers ||
        !config_->is_trusted_proxy(handshake_.tcp_peer_.address()))
        return;
    // X-Forwarded-For: "client, proxy1, proxy2"; each proxy appends the address it saw, so
    // the rightmost address that is not one of our trusted proxies is the client.
    std::vector<std::string_view> hops;
    for (const auto& h : handshake_.request_.headers) {
        if (h.name.size() != 15 || strncasecmp(h.name.c_str(), "x-forwarded-for", 15) != 0)
            continue;
        std::string_view v = h.value;
        while (!v.empty()) {
            const auto comma = v.find(',');
            auto item = v.substr(0, comma);
            while (!item.empty() && item.front() == ' ')
                item.remove_prefix(1);
            while (!item.empty() && item.back() == ' ')
                item.remove_suffix(1);
            if (!item.empty()) hops.push_back(item);
            if (comma == std::string_view::npos) break;
            v.remove_prefix(comma + 1);
        }
    }
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        std::string text(*it);
        if (text.size() > 2 && text.front() == '[' && text.find(']') != std::string::npos)
            text = text.substr(1, text.find(']') - 1);  // "[::1]:port"
        std::error_code ec;
        const auto addr = asio::ip::make_address(text, ec);
        if (ec) break;  // unparsable: stop believing the chain here
        if (config_->is_trusted_proxy(addr) && std::next(it) != hops.rend()) continue;
        handshake_.remote_ = asio::ip::tcp::endpoint(addr, 0);
        break;
    }
    if (auto proto = handshake_.request_.header("X-Forwarded-Proto")) {
        auto last =
            proto->substr(proto->rfind(',') == std::string_view::npos ? 0 : proto->rfind(',') + 1);
        while (!last.empty() && last.front() == ' ')
            last.remove_prefix(1);
        if (last.size() == 5 && strncasecmp(last.data(), "https", 5) == 0)
            handshake_.secure_ = true;
    }
}

asio::awaitable<std::optional<asio::ip::tcp::endpoint>> connection_impl::read_proxy_header() {
    // With TLS behind the header, read exactly the header's bytes (TLS reads the socket
    // itself afterwards): 6 bytes tell v1 ("PROXY ") from v2; v1 then comes a byte at a time
    // up to its CRLF (at most 107 bytes), v2 as its fixed part and then its stated length.
    // Without TLS, read freely: what follows stays in the read buffer for HTTP.
    const bool exact = !std::holds_alternative<asio::ip::tcp::socket>(stream_);
    protocol::proxy_header_parser parser;
    std::size_t want = 6;
    while (!parser.done() && !parser.failed()) {
        if (rb_begin_ == rb_end_) {
            prepare_read_buffer();
            std::error_code ec;
            std::size_t n = 0;
            if (exact) {
                auto op =
                    asio::async_read(tcp(), asio::buffer(rbuf_.get() + rb_end_, want), use_tuple);
                std::tie(ec, n) = co_await std::move(op);
            } else {
                auto op = tcp().async_read_some(
                    asio::buffer(rbuf_.get() + rb_end_, rcap_ - rb_end_), use_tuple);
                std::tie(ec, n) = co_await std::move(op);
            }
            rb_end_ += n;
            if (ec) {
                if (!socket_closed_) {
                    set_close_info(close_code::abnormal, {}, false, ec);
                    force_close();
                }
                co_return std::nullopt;
            }
        }
        rb_begin_ += parser.feed(std::span(rbuf_.get() + rb_begin_, rb_end_ - rb_begin_));
        if (rb_begin_ == rb_end_) rb_begin_ = rb_end_ = 0;
        if (exact && !parser.done() && !parser.failed()) {
            const bool v1 = rbuf_[0] == std::byte{'P'} || want == 1;
            want = v1 ? 1 : (want == 6 ? 10 : 1);
        }
    }
    if (parser.failed()) {
        const auto ec = parser.error();
        report(ec, nullptr,
               fmt::format("PROXY protocol header refused: {}", parser.error_detail()));
        co_await refuse(ec, protocol::reject_response(ec));
        co_return std::nullopt;
    }
    const auto& info = parser.info();
    asio::ip::tcp::endpoint client = tcp().remote_endpoint();
    if (!info.local && info.family == protocol::proxy_family::ipv4) {
        asio::ip::address_v4::bytes_type b;
        std::copy_n(info.source.address.begin(), 4, b.begin());
        client = {asio::ip::address_v4(b), info.source.port};
    } else if (!info.local && info.family == protocol::proxy_family::ipv6) {
        asio::ip::address_v6::bytes_type b;
        std::copy_n(info.source.address.begin(), 16, b.begin());
        client = {asio::ip::address_v6(b), info.source.port};
    }
    co_return client;
}

asio::awaitable<bool> connection_impl::accept_handshake() {
    auto self = shared_from_this();  // timers and writes hold the connection, not the caller
    start_timer(config_->timeouts.handshake, make_error_code(error::handshake_timeout));
    prepare_read_buffer();
    // The server passes what accept() and the listener already know; ask the socket only for
    // what they could not tell (a wildcard listener's local address).
    std::error_code ep_ec;
    const auto peer = peer_.port() != 0 ? peer_ : tcp().remote_endpoint(ep_ec);
    const auto local = local_.port() != 0 ? local_ : tcp().local_endpoint(ep_ec);
    bool secure = config_->secure_proxy;
    std::optional<asio::ip::tcp::endpoint> proxied_client;

    // 1. A PROXY protocol header, from trusted proxies only (it names the real client).
    if (config_->proxy_protocol && config_->is_trusted_proxy(peer.address())) {
        auto result = co_await read_proxy_header();
        if (!result) co_return false;  // refused or dropped
        proxied_client = *result;
    }

#if WSCORO_HAS_TLS
    // 2. TLS, inside the same handshake deadline.
    if (auto* tls = tls_or_null()) {
        auto op = tls->async_handshake(asio::ssl::stream_base::server, use_tuple);
        auto [ec] = co_await std::move(op);
        if (ec) {
            if (!socket_closed_) {
                const auto e = make_error_code(error::tls_handshake_failed);
                set_close_info(close_code::abnormal, {}, false, e);
                report(e, nullptr, "TLS handshake failed: " + ec.message());
                force_close();
            }
            co_return false;
        }
        secure = true;
    }
#endif

    // 3. The request head. A Flash policy request is recognised by its first byte: no HTTP
    // method starts with '<'.
    protocol::http_request_parser parser(config_->http_limits);
    bool first_bytes = true;
    while (!parser.done() && !parser.failed()) {
        if (rb_begin_ == rb_end_) {
            if (const auto ec = co_await read_more()) {
                // The peer left (or the handshake timer closed the socket and reported).
                if (!socket_closed_) {
                    set_close_info(close_code::abnormal, {}, false, ec);
                    report(ec, nullptr, "opening handshake failed: " + ec.message());
                    force_close();
                }
                co_return false;
            }
        }
        if (first_bytes && config_->flash_policy && rbuf_[rb_begin_] == std::byte{'<'})
            co_return co_await answer_flash_policy();
        first_bytes = false;
        rb_begin_ += parser.feed(std::span(rbuf_.get() + rb_begin_, rb_end_ - rb_begin_));
        // The parser keeps partial lines itself, so consumed bytes are free again.
        if (rb_begin_ == rb_end_) rb_begin_ = rb_end_ = 0;
    }
    if (parser.failed()) {
        const auto ec = parser.error();
        report(ec, nullptr, "handshake rejected: " + ec.message());
        co_return co_await refuse(ec, protocol::reject_response(ec));
    }
    const auto& req = parser.request();

    // 4. A load balancer's health check (a plain GET of the configured path).
    if (!config_->health_check_path.empty() && req.method == "GET" &&
        req.path() == config_->health_check_path && !req.has_token("Upgrade", "websocket")) {
        config_->log.log(log_level::debug, id_, "health check answered");
        co_return co_await refuse({}, protocol::error_response(200, "OK"));
    }

    // 5. Which protocol version, and is this a valid upgrade request for it? hixie-76 and
    // hybi-01..03 send 8 more bytes (key3) after the head: wait for them, within the
    // handshake deadline.
    auto request = std::move(parser).take_request();
    protocol::negotiate_options nopts;
    nopts.secure = secure;
    nopts.versions = config_->protocol_versions;
    auto pending = [this] {
        return std::span<const std::byte>(rbuf_.get() + rb_begin_, rb_end_ - rb_begin_);
    };
    auto n = protocol::negotiate(request, pending(), nopts);
    while (n.kind == protocol::negotiation::need_more) {
        if (const auto ec = co_await read_more()) {
            if (!socket_closed_) {
                set_close_info(close_code::abnormal, {}, false, ec);
                report(ec, nullptr, "opening handshake failed: " + ec.message());
                force_close();
            }
            co_return false;
        }
        n = protocol::negotiate(request, pending(), nopts);
    }
    if (n.kind == protocol::negotiation::rejected) {
        report(n.ec, nullptr, "handshake rejected: " + n.ec.message());
        co_return co_await refuse(n.ec, std::move(n.response));
    }
    handshake_ = handshake_info(std::move(request), n.protocol_version, secure, peer, local);
    collect_tls_details();
    if (proxied_client) handshake_.remote_ = *proxied_client;
    apply_forwarded_headers();
    config_->log.log(log_level::debug, id_, "handshake: GET {} from {} (version {})",
                     handshake_.target(), handshake_.remote_endpoint().address().to_string(),
                     handshake_.protocol_version());

    // 6. The application's decision: auth, routing, subprotocol, extra headers.
    std::vector<protocol::http_header> extra;
    if (config_->on_handshake) {
        handshake_decision decision;
        std::exception_ptr failure;
        try {
            decision = co_await config_->on_handshake(handshake_);
        } catch (...) {
            failure = std::current_exception();
        }
        if (failure) {
            std::string what = "handshake hook threw";
            try {
                std::rethrow_exception(failure);
            } catch (const std::exception& e) {
                what += std::string(": ") + e.what();
            } catch (...) {
            }
            report(make_error_code(error::application_error), failure, what);
            co_return co_await refuse(make_error_code(error::application_error),
                                      protocol::error_response(500, "internal error\n"));
        }
        if (decision.status != 101) {
            const auto ec = make_error_code(error::handshake_rejected);
            report(ec, nullptr,
                   fmt::format("handshake rejected by the application ({})", decision.status));
            co_return co_await refuse(
                ec, protocol::error_response(decision.status, decision.body, decision.headers));
        }
        if (!decision.subprotocol.empty()) {
            // RFC 6455 §4.2.2 item 5.4: one of the client's values, never anything else.
            const auto offered = handshake_.subprotocols();
            if (std::find(offered.begin(), offered.end(), decision.subprotocol) == offered.end()) {
                const auto ec = make_error_code(error::invalid_subprotocol);
                report(ec, nullptr,
                       fmt::format("handshake hook chose subprotocol '{}', which the client "
                                   "did not offer",
                                   decision.subprotocol));
                co_return co_await refuse(ec, protocol::error_response(500, "internal error\n"));
            }
            extra.push_back({"Sec-WebSocket-Protocol", decision.subprotocol});
            handshake_.subprotocol_ = decision.subprotocol;
        }
        for (auto& h : decision.headers)
            extra.push_back(std::move(h));
    }

    // 7. Switching protocols, with the hook's fields (the answer is rebuilt with them; for
    // hybi-04 that also draws the nonce the framing uses).
    if (!extra.empty()) {
        nopts.extra = std::move(extra);
        n = protocol::negotiate(handshake_.request(), pending(), nopts);
    }
    rb_begin_ += n.consumed;  // key3
    decoder_ = protocol::codec(protocol::role::server, n.protocol_version, config_->limits,
                               read_buffer_size - protocol::max_header_size);
    decoder_max_frame_ = config_->limits.max_frame_size;
    if (n.protocol_version == 4) {
        protocol::hybi04_key key{};
        protocol::make_hybi04_key(handshake_.header("Sec-WebSocket-Key").value_or(""), n.nonce,
                                  key);
        decoder_.set_hybi04_key(key);
    }
    const auto& response = n.response;
    std::error_code wec;
    std::size_t written = 0;
    if (auto* sock = std::get_if<asio::ip::tcp::socket>(&stream_)) {
        // Usually the whole answer fits in the socket at once: no operation, no ioctl().
        const asio::const_buffer whole = asio::buffer(response);
        written = write_now(*sock, std::span(&whole, 1), wec);
    }
    if (!wec && written < response.size()) {
        auto op = std::visit(
            [&](auto& alt) {
                auto& s = stream_of(alt);
                return asio::async_write(s, asio::buffer(response) + written, use_tuple);
            },
            stream_);
        std::size_t wn = 0;
        std::tie(wec, wn) = co_await std::move(op);
    }
    if (wec) {
        // (If the handshake timer closed the socket, it has reported already.)
        if (!socket_closed_) {
            set_close_info(close_code::abnormal, {}, false, wec);
            report(wec, nullptr, "opening handshake failed: " + wec.message());
            force_close();
        }
        co_return false;
    }
    cancel_timer();
    state_ = connection_state::open;
    start_keepalive(std::chrono::steady_clock::now());
    co_return true;
}

asio::awaitable<void> connection_impl::reject_busy() {
    auto self = shared_from_this();
    const auto ec = make_error_code(error::server_busy);
    report(ec, nullptr, "connection refused: " + ec.message());
    if (!std::holds_alternative<asio::ip::tcp::socket>(stream_)) {
        set_close_info(close_code::abnormal, {}, false, ec);
        force_close();
        co_return;
    }
    start_timer(config_->timeouts.handshake, make_error_code(error::handshake_timeout));
    prepare_read_buffer();
    const std::vector<protocol::http_header> retry{{"Retry-After", "1"}};
    co_await refuse(ec, protocol::error_response(503, "server busy\n", retry));
}

void connection_impl::start_keepalive(std::chrono::steady_clock::time_point last_read) {
    const auto& t = config_->timeouts;
    if (t.idle.count() <= 0 && t.ping_interval.count() <= 0) return;
    keepalive_ = std::make_unique<asio::steady_timer>(executor_);
    last_read_ = last_read;
    arm_keepalive();
}

void connection_impl::arm_keepalive() {
    using clock = std::chrono::steady_clock;
    const auto& t = config_->timeouts;
    auto next = clock::time_point::max();
    if (t.idle.count() > 0) next = std::min(next, last_read_ + t.idle);
    if (ping_outstanding_)
        next = std::min(next, ping_deadline_);
    else if (t.ping_interval.count() > 0 && protocol::has_ping(decoder_.format()))
        next = std::min(next, last_read_ + t.ping_interval);
    if (next == clock::time_point::max()) return;
    keepalive_->expires_at(next);
    keepalive_armed_ = true;
    keepalive_->async_wait([self = shared_from_this()](std::error_code ec) {
        self->keepalive_armed_ = false;
        if (!ec) self->on_keepalive();
    });
}

void connection_impl::on_keepalive() {
    if (socket_closed_ || state_ != connection_state::open) return;
    const auto& t = config_->timeouts;
    const auto now = std::chrono::steady_clock::now();
    if (ping_outstanding_ && now >= ping_deadline_) {
        // Nothing came back, not even the Pong: the peer (or the path to it) is gone, so a
        // closing handshake would only wait for nobody. Drop TCP.
        const auto ec = make_error_code(error::pong_timeout);
        set_close_info(close_code::abnormal, {}, false, ec);
        report(ec, nullptr, ec.message());
        force_close();
        return;
    }
    if (t.idle.count() > 0 && now - last_read_ >= t.idle) {
        const auto ec = make_error_code(error::idle_timeout);
        report(ec, nullptr, ec.message());
        close_for(ec, close_code::going_away, "idle timeout");
        return;
    }
    if (!ping_outstanding_ && t.ping_interval.count() > 0 && now - last_read_ >= t.ping_interval &&
        protocol::has_ping(decoder_.format())) {
        if (!enqueue(opcode::ping, {}, false)) {
            ping_outstanding_ = true;
            ping_deadline_ = now + t.pong_timeout;
        }
    }
    arm_keepalive();
}

void connection_impl::close_for(std::error_code why, std::uint16_t code, std::string_view reason) {
    if (state_ != connection_state::open) return;
    close_reason_ = why;
    enqueue_close(code, reason);
    state_ = connection_state::closing;
    start_timer(config_->timeouts.close, make_error_code(error::close_timeout));
    notify();
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

void read_buffer_deleter::operator()(std::byte* p) const noexcept {
    ::munmap(p, read_buffer_size);
}

void connection_impl::release_read_buffer() {
    if (!rbuf_ || rb_begin_ != rb_end_) return;  // unconsumed bytes stay where they are
    buffer_pool.put(std::move(rbuf_));
    rcap_ = 0;
    rb_begin_ = rb_end_ = 0;
}

void connection_impl::prepare_read_buffer() {
    if (!rbuf_) {
        rbuf_ = buffer_pool.get();
        rcap_ = read_buffer_size;
    }
    if (rb_begin_ == rb_end_) {
        rb_begin_ = rb_end_ = 0;
    } else if (rb_begin_ > 0 && rcap_ - rb_end_ < rcap_ / 4) {
        // Keep unconsumed bytes (a partial frame the decoder may have unmasked already) but
        // make room behind them; the decoder only needs them in front and unchanged.
        std::memmove(rbuf_.get(), rbuf_.get() + rb_begin_, rb_end_ - rb_begin_);
        rb_end_ -= rb_begin_;
        rb_begin_ = 0;
    }
}

asio::awaitable<std::optional<message>> connection_impl::receive() {
    if (reader_active_ && state_ == connection_state::closing) {
        // close() is draining the connection on our behalf: just wait for the end.
        auto self = shared_from_this();
        while (state_ != connection_state::closed)
            co_await wait_signal();
        co_return std::nullopt;
    }
    if (reader_active_)
        throw std::system_error(std::make_error_code(std::errc::operation_in_progress),
                                "wscoro: receive() is already pending on this connection");
    reader_active_ = true;
    struct reset_flag {
        bool& flag;
        ~reset_flag() { flag = false; }
    } guard{reader_active_};
    // No shared_from_this() here (an atomic read-modify-write per message): whoever awaits
    // receive() holds a wscoro::connection, and the server's run_connection holds the
    // implementation for as long as the handler runs.

    for (;;) {
        const auto st = state_.load();
        if (st == connection_state::handshake) co_return std::nullopt;
        if (st == connection_state::closed) {
            // After the peer's Close the close is clean only once our Close is written too:
            // wait for that (or for the write to fail), so close_info() is final when
            // receive() ends.
            while (clean_close_pending_ && !socket_closed_)
                co_await wait_signal();
            co_return std::nullopt;
        }
        std::optional<message> m;
        const auto step = decode_step(m);
        if (step == decode_result::message) co_return m;
        if (step == decode_result::again || step == decode_result::ended) continue;

        // Everything the handler queued while it worked through the last read goes out now,
        // in one send(), before we wait (the posted flush then finds nothing to do).
        flush_now();
        prepare_read_buffer();
        std::error_code ec;
        std::size_t n = 0;
        if (std::holds_alternative<asio::ip::tcp::socket>(stream_)) {
            // Wait for readability holding no buffer unless a partial frame is kept (the
            // previous message's view is dead by contract now), then read into a pooled
            // buffer. The wait costs no system call (socket_fast_path.hpp) once a read came
            // back short, so a message costs one recv() and the reply one send(), as in a raw
            // epoll loop. A read that filled the buffer may have left bytes behind: read
            // again before waiting.
            //
            // Inside a large frame's payload with nothing else buffered, the bytes go straight
            // into the message buffer (no copy through the read buffer), never past the end
            // of the frame.
            auto& sock = tcp();
            const auto direct = rb_begin_ == rb_end_
                                    ? decoder_.direct_payload_buffer(direct_read_min)
                                    : std::span<std::byte>();
            bool try_read = last_read_full_;
            for (;;) {
                if (try_read) {
                    n = direct.empty() ? read_now(sock, ec) : recv_now(sock, direct, ec);
                    if (ec != asio::error::would_block && ec != asio::error::try_again) break;
                    ec = {};
                }
                release_read_buffer();
                trim_write_buffers_later();
                auto wait = async_wait_readable(sock, use_tuple, &wait_cache_);
                std::tie(ec) = co_await std::move(wait);
                prepare_read_buffer();
                if (ec) break;
                try_read = true;
            }
            if (!ec && !direct.empty()) {
                note_read();
                const auto ev = decoder_.commit_direct(n);
                const auto got = handle_event(ev, m);
                if (got == decode_result::message) co_return m;
                continue;
            }
        } else {
            auto op = std::visit(
                [&](auto& alt) {
                    auto& s = stream_of(alt);
                    return s.async_read_some(asio::buffer(rbuf_.get() + rb_end_, rcap_ - rb_end_),
                                             use_tuple);
                },
                stream_);
            std::tie(ec, n) = co_await std::move(op);
        }
        if (ec) {
            on_transport_error(ec);
            co_return std::nullopt;
        }
        rb_end_ += n;
        note_read();
    }
}

connection_impl::decode_result connection_impl::decode_buffered(std::optional<message>& out) {
    if (decoder_max_frame_ != max_frame_size.load(std::memory_order_relaxed)) [[unlikely]] {
        auto limits = decoder_.limits();
        limits.max_frame_size = decoder_max_frame_ = max_frame_size.load(std::memory_order_relaxed);
        decoder_.set_limits(limits);
    }
    std::size_t consumed = 0;
    const auto ev =
        decoder_.next(std::span(rbuf_.get() + rb_begin_, rb_end_ - rb_begin_), consumed);
    rb_begin_ += consumed;
    return handle_event(ev, out);
}

connection_impl::decode_result connection_impl::handle_event(const protocol::decoder_event& ev,
                                                             std::optional<message>& out) {
    switch (ev.kind) {
        case protocol::event_kind::message:
            log_frame("in", ev.type, ev.payload);
            out.emplace(ev.type == opcode::text ? message_type::text : message_type::binary,
                        ev.payload);
            return decode_result::message;
        case protocol::event_kind::ping:
            log_frame("in", opcode::ping, ev.payload);
            // RFC 6455 §5.5.2: answer with a Pong carrying the same payload (unless we
            // already sent our Close, after which we send nothing more).
            if (close_sent_) {
            } else if (buffered_.load(std::memory_order_relaxed) <= config_->write_high_water) {
                enqueue(opcode::pong, ev.payload, true);
            } else {
                // A ping flood from a peer that does not read: keep only the latest ping,
                // answered once the queue drains, so memory stays bounded.
                if (!late_pong_) late_pong_ = std::make_unique<std::array<std::byte, 125>>();
                std::copy(ev.payload.begin(), ev.payload.end(), late_pong_->begin());
                late_pong_size_ = ev.payload.size();
                late_pong_pending_ = true;
            }
            if (!deliver_control) return decode_result::again;
            out.emplace(message_type::ping, ev.payload);
            return decode_result::message;
        case protocol::event_kind::pong:
            log_frame("in", opcode::pong, ev.payload);
            if (!deliver_control) return decode_result::again;
            out.emplace(message_type::pong, ev.payload);
            return decode_result::message;
        case protocol::event_kind::close:
            log_frame("in", opcode::close, ev.payload);
            on_peer_close(ev);
            return decode_result::ended;
        case protocol::event_kind::error:
            fail_connection(ev.ec);
            return decode_result::ended;
        case protocol::event_kind::need_more:
            break;
    }
    return decode_result::need_more;
}

std::optional<message> connection_impl::try_receive() {
    // Only what is already read, and only in the open state: everything else (I/O, the end
    // of the connection, a receive() in progress) is receive()'s business.
    if (reader_active_ || !on_strand()) return std::nullopt;
    for (;;) {
        if (state_.load(std::memory_order_relaxed) != connection_state::open ||
            rb_begin_ == rb_end_)
            return std::nullopt;
        std::optional<message> m;
        const auto step = decode_step(m);
        if (step == decode_result::message) return m;
        if (step != decode_result::again) return std::nullopt;
    }
}

bool connection_impl::try_send(opcode op, byte_span payload) {
    // The conditions under which send_frame() would queue a copy and complete at once.
    if (payload.size() >= zero_copy_threshold || !on_strand() || check_can_send(op, false))
        return false;
    const auto after =
        buffered_.load(std::memory_order_relaxed) + payload.size() + protocol::max_header_size;
    if (after > config_->write_high_water ||
        (config_->slow_consumer == slow_consumer_policy::close && after > config_->max_outbound))
        return false;
    return !enqueue(op, payload, false);
}

std::error_code connection_impl::send_now(opcode op, byte_span payload) {
    if (!on_strand()) return std::make_error_code(std::errc::operation_not_permitted);
    auto* sock = std::get_if<asio::ip::tcp::socket>(&stream_);
    if (payload.size() >= zero_copy_threshold && sock &&
        decoder_.format() == protocol::wire_format::rfc6455 && wbuf_.empty() && segs_.empty() &&
        !writing_ && !shutdown_pending_) {
        // A large frame with nothing queued before it: written through, straight from the
        // caller's memory, as far as the socket takes it now. Only the rest is copied.
        if (auto e = check_can_send(op, false)) return e;
        log_frame("out", op, payload);
        std::byte header[protocol::max_header_size];
        const auto hn = protocol::encode_header(header, op, true, payload.size());
        const std::array<asio::const_buffer, 2> parts{asio::buffer(header, hn),
                                                      asio::buffer(payload.data(), payload.size())};
        const std::size_t total = hn + payload.size();
        std::error_code ec;
        const auto done = write_slices(*sock, parts, total, 0, ec);
        ++writes_;
        if (ec) {
            on_transport_error(ec);
            return make_error_code(error::closed);
        }
        if (done < hn) wbuf_.append(header + done, hn - done);
        const auto from = done > hn ? done - hn : 0;
        wbuf_.append(payload.data() + from, payload.size() - from);
        if (done < total) {
            add_buffered(total - done);
            schedule_flush();
        }
    } else if (auto e = enqueue(op, payload, false)) {
        return e;
    }
    return check_slow_consumer();
}

std::error_code connection_impl::send_now(const prepared_message& msg) {
    if (!on_strand()) return std::make_error_code(std::errc::operation_not_permitted);
    if (auto e = enqueue_prepared(msg)) return e;
    return check_slow_consumer();
}

std::error_code connection_impl::close_slow_consumer() {
    const auto e = make_error_code(error::slow_consumer);
    report(e, nullptr, e.message());
    close_for(e, close_code::policy_violation, "slow consumer");
    return e;
}

// ---------------------------------------------------------------------------------------------
// Serving with callbacks (server::serve(event_handlers))
//
// No coroutine: the read completion decodes and calls the application directly, so a message
// costs no resumption, and an idle connection holds only this object and its waiting read.
// ---------------------------------------------------------------------------------------------

template <class F>
void connection_impl::event_call(F&& f) {
    std::exception_ptr failure;
    try {
        f();
    } catch (...) {
        failure = std::current_exception();
    }
    if (!failure || is_closed_error(failure)) return;
    // As for a handler coroutine that throws: on_error, then close with 1011.
    const auto e = make_error_code(error::application_error);
    report(e, failure, "event callback threw: " + describe(failure));
    close_for(e, close_code::internal_error, {});
    if (events_) events_->rethrow(failure);
}

void connection_impl::start_events(std::shared_ptr<event_sink> sink) {
    events_ = std::move(sink);
    parks_ = events_->parks();
    reader_active_ = true;  // the callbacks are this connection's reader from now on
    connection h(shared_from_this());
    in_dispatch_ = true;
    event_call([&] { events_->open(h); });
    in_dispatch_ = false;
    try {
        // Posted: by the time it runs, the handshake's coroutine and timer have let go of
        // this object, so a connection that then waits holds no more than its wait (and can
        // be parked at once, see event_sink::waiting).
        post_event_read(std::move(h));
    } catch (...) {
        force_close();  // out of memory: drop this connection, keep the server
    }
}

void connection_impl::event_read(connection h, bool readable) {
    // On readability nothing complete is buffered (a wait begins only once the decoder
    // wants more), so the first round reads before it decodes.
    bool dispatch = !readable;
    for (;;) {
        if (dispatch) {
            // Every complete message already read goes to the callbacks; what they queue
            // goes out together after them, in one write.
            in_dispatch_ = true;
            while (state_.load(std::memory_order_relaxed) != connection_state::closed) {
                std::optional<message> m;
                const auto step = decode_step(m);
                if (step == decode_result::need_more) break;
                if (step == decode_result::message) event_call([&] { events_->message(h, *m); });
            }
            in_dispatch_ = false;
            flush_now();
        }
        dispatch = true;
        // Once closed, the closing handshake finishes on its own (shutdown_after_flush,
        // linger, timers) and force_close reports the end.
        if (state_.load(std::memory_order_relaxed) == connection_state::closed || socket_closed_)
            return;
        if (config_->slow_consumer == slow_consumer_policy::suspend &&
            buffered_.load(std::memory_order_relaxed) > config_->write_high_water) {
            read_paused_ = true;  // on_write resumes below write_low_water
            return;
        }
        auto* sock = std::get_if<asio::ip::tcp::socket>(&stream_);
        if (!sock) {
            prepare_read_buffer();
            event_read_tls(std::move(h));
            return;
        }
        // As receive(): read until a short read, then wait for readability with no buffer
        // held (socket_fast_path.hpp); a large frame's payload goes straight into the
        // message buffer.
        auto st = recv_status::would_block;
        std::size_t n = 0;
        std::span<std::byte> direct;
        if (readable || last_read_full_) {
            prepare_read_buffer();
            if (rb_begin_ == rb_end_) direct = decoder_.direct_payload_buffer(direct_read_min);
            st = recv_some(
                *sock, direct.empty() ? std::span(rbuf_.get() + rb_end_, rcap_ - rb_end_) : direct,
                n);
        }
        readable = false;
        if (st == recv_status::would_block) {
            release_read_buffer();
            trim_write_buffers_later();
            // A candidate for parking while it waits (or parked right away, when many
            // connections wait at once and this one has only just been opened).
            if (parks_ && events_->waiting(*this)) return;
#if WSCORO_SOCKET_FAST_PATH
            // On the io_context's own executor (no strand) the reusable wait calls back
            // directly; on a strand the wait's completion must go through the strand.
            if (reusable_wait_ < 0) {
                reusable_wait_ = io_context_executor(sock->get_executor()) != nullptr ? 1 : 0;
                if (reusable_wait_ == 1) read_wait_ = std::make_unique<read_wait_state>();
            }
            if (reusable_wait_ == 1) {
                auto& w = *read_wait_;
                if (w.hold) return;  // (never: one wait at a time)
                w.hold = std::move(h);
                w.op.start(*sock, wait_cache_, &connection_impl::on_read_wait, this);
                return;
            }
#endif
            auto on_readable = [h = std::move(h)](std::error_code ec) mutable {
                read_wait_done(std::move(h), ec);
            };
            async_wait_readable(*sock, std::move(on_readable), &wait_cache_);
            return;
        }
        if (st != recv_status::data) {
            on_transport_error(st == recv_status::closed
                                   ? std::error_code(asio::error::eof)
                                   : std::error_code(errno, asio::error::get_system_category()));
            return;
        }
        note_read();
        if (direct.empty()) {
            rb_end_ += n;
            continue;
        }
        std::optional<message> m;
        in_dispatch_ = true;
        if (handle_event(decoder_.commit_direct(n), m) == decode_result::message)
            event_call([&] { events_->message(h, *m); });
        in_dispatch_ = false;
    }
}

void connection_impl::read_wait_done(connection h, const std::error_code& ec) {
    auto& c = *h.impl();
    if (c.parked_) return;  // folded: the record has the socket now
    if (c.lot_linked) c.events_->woke(c);
    if (c.socket_closed_) return;
    if (ec) {
        c.on_transport_error(ec);
        return;
    }
    c.event_read(std::move(h), true);
}

#if WSCORO_SOCKET_FAST_PATH
void connection_impl::on_read_wait(void* self, const std::error_code& ec, bool destroying) {
    // The reference held for the wait becomes this call's: it may be the last one, so the
    // object (and the wait operation in it) may be gone once `h` is.
    connection h(std::move(static_cast<connection_impl*>(self)->read_wait_->hold));
    if (!destroying) read_wait_done(std::move(h), ec);  // (destroying: the io_context goes away)
}
#endif

void connection_impl::post_event_read(connection h) {
    std::visit(
        [&](const auto& ex) {
            asio::post(ex, [h = std::move(h)]() mutable {
                auto& c = *h.impl();
                c.event_read(std::move(h), false);
            });
        },
        strand_);
}

void connection_impl::event_read_tls(connection h) {
#if WSCORO_HAS_TLS
    tls_or_null()->async_read_some(asio::buffer(rbuf_.get() + rb_end_, rcap_ - rb_end_),
                                   [h = std::move(h)](std::error_code ec, std::size_t n) mutable {
                                       auto& c = *h.impl();
                                       if (c.socket_closed_) return;
                                       if (ec) {
                                           c.on_transport_error(ec);
                                           return;
                                       }
                                       c.rb_end_ += n;
                                       c.note_read();
                                       c.event_read(std::move(h), false);
                                   });
#else
    (void)h;
#endif
}

parked_connection::~parked_connection() {
    if (fd >= 0) ::close(fd);
}

bool connection_impl::parkable() const noexcept {
    // Everything a fresh object rebuilt from the record would lack: bytes of a next frame,
    // queued or unwritten frames, a closing handshake, a ping awaiting its pong, timers other
    // than the keep-alive one (the record keeps its time), and anyone else's handle (the
    // pending wait, or the caller about to wait, and an armed keep-alive timer hold the
    // references counted; the server's registry holds none).
    return parks_ && !parked_ && !socket_closed_ && state_.load() == connection_state::open &&
           !in_dispatch_ && !read_paused_ && rb_begin_ == rb_end_ && decoder_.idle() &&
           wbuf_.empty() && segs_.empty() && !writing_ && !flush_scheduled_ && !shutdown_pending_ &&
           !close_sent_ && !peer_close_received_ && !late_pong_pending_ && !trim_timer_armed_ &&
           !ping_outstanding_ && !close_reason_ &&
           std::holds_alternative<asio::ip::tcp::socket>(stream_) &&
           weak_from_this().use_count() == 1 + (keepalive_armed_ ? 1 : 0);
}

std::unique_ptr<parked_connection> connection_impl::fold() {
    auto rec = std::make_unique<parked_connection>();
    rec->handshake = handshake_.fold();
    rec->id = id_;
    rec->max_frame_size = max_frame_size.load();
    rec->deliver_control = deliver_control.load();
    rec->v6 = handshake_.local_endpoint().address().is_v6();
    rec->fd = tcp().native_handle();
    rec->last_read = last_read_;
    return rec;
}

void connection_impl::release_for_parking() noexcept {
    parked_ = true;
    if (keepalive_)
        keepalive_->cancel();  // (the lot wakes it when a ping or the idle limit is due)
    std::error_code ignored;
    (void)tcp().release(ignored);  // removes it from Asio's epoll set, aborts the wait
    config_->log.log(log_level::debug, id_, "parked");
}

void connection_impl::unfold(const parked_connection& rec, std::shared_ptr<event_sink> sink) {
    handshake_ = handshake_info::unfold(rec.handshake);
    decoder_ = protocol::codec(protocol::role::server, handshake_.protocol_version(),
                               config_->limits, read_buffer_size - protocol::max_header_size);
    decoder_max_frame_ = config_->limits.max_frame_size;
    max_frame_size = rec.max_frame_size;
    deliver_control = rec.deliver_control;
    in_lot_epoll = true;
    lot_waited = true;  // (not new: the at-once parking of a burst is for new connections)
    state_ = connection_state::open;
    events_ = std::move(sink);
    parks_ = true;
    reader_active_ = true;
    start_keepalive(rec.last_read);  // (due at once if the lot woke it for a ping)
    config_->log.log(log_level::debug, id_, "unparked");
    event_read(connection(shared_from_this()), true);
}

void connection_impl::event_end() {
    auto sink = std::move(events_);
    auto self = shared_from_this();
    const connection h(self);
    const auto info = get_close_info();
    try {
        sink->closed(h, info);
    } catch (...) {
        const auto failure = std::current_exception();
        report(make_error_code(error::application_error), failure,
               "event callback threw: " + describe(failure));
    }
    sink->finished(self);
}

void connection_impl::trim_write_buffers(std::size_t keep) {
    // The write queue keeps its capacity so that steady traffic allocates nothing; a
    // connection that falls quiet (or waits after a large message) gives it back.
    if (writing_) return;
    if (wbuf_.empty() && wbuf_.capacity() > keep) wbuf_.release();
    if (inflight_.capacity() > keep) inflight_.release();
}

void connection_impl::arm_trim_timer() {
    if (!trim_timer_) trim_timer_ = std::make_unique<asio::steady_timer>(executor_);
    if (!trim_memory_) trim_memory_ = std::make_unique<timer_handler_memory>();
    trim_timer_armed_ = true;
    writes_at_arm_ = writes_;
    trim_timer_->expires_after(write_capacity_linger);
    auto on_expiry = [self = shared_from_this()](std::error_code ec) {
        self->trim_timer_armed_ = false;
        if (ec || self->socket_closed_) return;
        if (self->writes_ == self->writes_at_arm_)
            self->trim_write_buffers(quiet_write_capacity);
        else
            self->trim_write_buffers_later();  // still busy: look again later
    };
    trim_timer_->async_wait(asio::bind_allocator(
        handler_allocator<void, timer_handler_memory>(*trim_memory_), std::move(on_expiry)));
}

std::size_t connection_impl::read_now(asio::ip::tcp::socket& sock, std::error_code& ec) {
    return recv_now(sock, std::span(rbuf_.get() + rb_end_, rcap_ - rb_end_), ec);
}

connection_impl::recv_status connection_impl::recv_some(asio::ip::tcp::socket& sock,
                                                        std::span<std::byte> into,
                                                        std::size_t& n) noexcept {
    // recv(MSG_DONTWAIT) rather than socket::read_some(): that would need the socket in
    // non-blocking mode, one more ioctl() per connection. No error_code on the way: building
    // one costs two calls into the C++ runtime per read.
    for (;;) {
        const auto r = ::recv(sock.native_handle(), into.data(), into.size(), MSG_DONTWAIT);
        if (r > 0) {
            n = static_cast<std::size_t>(r);
            // A short read emptied the socket; a full one may have left bytes behind.
            last_read_full_ = n == into.size();
            ++reads_;
            return recv_status::data;
        }
        n = 0;
        if (r == 0) return recv_status::closed;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return recv_status::would_block;
        return recv_status::failed;  // (errno says why)
    }
}

std::size_t connection_impl::recv_now(asio::ip::tcp::socket& sock, std::span<std::byte> into,
                                      std::error_code& ec) {
    std::size_t n = 0;
    switch (recv_some(sock, into, n)) {
        case recv_status::data:
            ec = {};
            break;
        case recv_status::closed:
            ec = asio::error::eof;
            break;
        case recv_status::would_block:
            ec = asio::error::would_block;
            break;
        case recv_status::failed:
            ec = std::error_code(errno, asio::error::get_system_category());
            break;
    }
    return n;
}

void connection_impl::on_peer_close(const protocol::decoder_event& ev) {
    std::string reason(ev.close_reason);
    config_->log.log(log_level::debug, id_, "close received: code {} reason '{}'", ev.close_code,
                     reason);
    if (!close_sent_) {
        // RFC 6455 §5.5.1: answer with a Close, echoing the status code received.
        enqueue_close(ev.close_code == close_code::no_status ? 0 : ev.close_code, {});
    }
    peer_close_received_ = true;
    // Clean once our answer is out (begin_linger); a failed write makes it 1006 first.
    clean_close_pending_ = true;
    pending_close_code_ = ev.close_code;
    pending_close_reason_ = std::move(reason);
    state_ = connection_state::closed;
    // RFC 6455 §7.1.1: the server closes the TCP connection first, once the Close is out.
    // Usually our answer is written at once and the socket closed right here.
    shutdown_after_flush();
    // If not, it must get out within the close timeout (a peer that sends its Close but stops
    // reading could otherwise hold the connection forever); begin_linger re-arms the timer.
    if (!socket_closed_ && !linger_started_)
        start_timer(config_->timeouts.close, make_error_code(error::close_timeout));
    notify();
}

void connection_impl::fail_connection(std::error_code ec) {
    // RFC 6455 §7.1.7 "Fail the WebSocket Connection": send a Close with the code for the
    // error (if we have not sent one yet), then close TCP without waiting for an answer.
    const std::uint16_t code = close_code_for(ec);
    std::string reason = ec.message();
    config_->log.log(log_level::debug, id_, "failing connection: {} (close {})", reason, code);
    // hixie-76 §5.3 fails a connection by closing it without the closing handshake: its
    // only close frame (FF 00) would tell the peer all went well.
    if (!close_sent_ && decoder_.format() != protocol::wire_format::hixie)
        enqueue_close(code, reason);
    cancel_timer();
    set_close_info(code, std::move(reason), false, ec);
    state_ = connection_state::closed;
    report(ec, nullptr, "protocol error from peer: " + ec.message());
    shutdown_after_flush();
    notify();
}

void connection_impl::on_transport_error(std::error_code ec) {
    // The TCP connection ended without a closing handshake: 1006 (RFC 6455 §7.1.5). If one
    // of our timers closed the socket, its reason was recorded already.
    set_close_info(close_code::abnormal, {}, false, ec);
    config_->log.log(log_level::debug, id_, "connection dropped: {}", ec.message());
    state_ = connection_state::closed;
    force_close();
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

std::error_code connection_impl::check_can_send(opcode op, bool even_if_closing) const {
    const auto st = state_.load();
    // RFC 6455 §5.5.1: no data frames after our Close; nothing at all once closed.
    if (socket_closed_ || st == connection_state::closed || st == connection_state::handshake ||
        (st == connection_state::closing && !even_if_closing) ||
        (close_sent_ && op != opcode::close))
        return make_error_code(error::closed);
    return {};
}

std::error_code connection_impl::enqueue(opcode op, byte_span payload, bool even_if_closing) {
    // (Open, no Close sent, socket open: anything may be sent, so the full check is skipped.)
    if (state_.load(std::memory_order_relaxed) != connection_state::open || close_sent_ ||
        socket_closed_) [[unlikely]] {
        if (auto e = check_can_send(op, even_if_closing)) return e;
    }
    log_frame("out", op, payload);
    if (decoder_.format() != protocol::wire_format::rfc6455) [[unlikely]] {
        // Older drafts: their own framing, or a clear error for what they cannot express.
        std::vector<std::byte> frame;
        if (const auto e = decoder_.append_frame(frame, op, payload)) return e;
        wbuf_.append(frame.data(), frame.size());
        add_buffered(frame.size());
        schedule_flush();
        return {};
    }
    // Header and payload written in place (the capacity is kept: the steady state
    // allocates nothing).
    const auto n = protocol::header_size(payload.size(), false) + payload.size();
    std::byte* at = wbuf_.extend(n);
    at += protocol::encode_header(at, op, true, payload.size());
    if (!payload.empty()) std::memcpy(at, payload.data(), payload.size());
    add_buffered(n);
    schedule_flush();
    return {};
}

void connection_impl::enqueue_close(std::uint16_t code, std::string_view reason) {
    if (decoder_.format() != protocol::wire_format::rfc6455) {
        // hixie: 0xFF 0x00; hybi-01..05: a Close without a body; hybi-06: code and reason.
        if (socket_closed_ || close_sent_ || state_ == connection_state::handshake) return;
        std::vector<std::byte> frame;
        if (decoder_.append_close(frame, code, reason.substr(0, 123))) return;
        wbuf_.append(frame.data(), frame.size());
        add_buffered(frame.size());
        close_sent_ = true;
        log_frame("out", opcode::close, {});
        schedule_flush();
        return;
    }
    std::byte body[125];
    std::size_t n = 0;
    if (code != 0) {
        // Control frames carry at most 125 bytes (§5.5): cut the reason on a UTF-8 boundary.
        reason = reason.substr(0, 123);
        while (!reason.empty() && !protocol::is_valid_utf8(reason))
            reason.remove_suffix(1);
        n = protocol::encode_close_payload(body, code, reason);
    }
    // Marked sent first: the frame may be written at once (schedule_flush), and what that
    // write's completion queues (a late pong) must see that nothing may follow it.
    const bool was_sent = std::exchange(close_sent_, true);
    if (enqueue(opcode::close, std::span(body, n), true)) close_sent_ = was_sent;
}

void connection_impl::post_flush() {
    flush_scheduled_ = true;
    // Posted through the typed executor: any_io_executor would drop the handler's allocator.
    auto flush =
        asio::bind_allocator(handler_allocator<void>(write_memory()), [self = shared_from_this()] {
            self->flush_scheduled_ = false;
            self->start_write();
        });
    std::visit([&](const auto& ex) { asio::post(ex, std::move(flush)); }, strand_);
}

void connection_impl::start_write() {
    if (writing_ || socket_closed_) return;
    if (wbuf_.empty() && segs_.empty()) {
        if (shutdown_pending_) begin_linger();
        return;
    }
    // The common case, one run of queued bytes on plain TCP, is tried first with one send()
    // and no gather list; what it leaves is written on below.
    std::size_t done_now = 0;
    auto* plain = std::get_if<asio::ip::tcp::socket>(&stream_);
    const bool simple = plain && segs_.empty() && wbuf_.size() <= write_slice;
    if (simple) {
        const auto r =
            ::send(plain->native_handle(), wbuf_.data(), wbuf_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r > 0) done_now = static_cast<std::size_t>(r);
    }
    ++writes_;
    inflight_gen_ = queued_gen_;
    if (simple && done_now == wbuf_.size()) {
        // All of it went: the write is over before it began (no swap, no completion).
        sub_buffered(done_now);
        wbuf_.clear();
        written_gen_ = inflight_gen_;
        after_write();
        return;
    }
    writing_ = true;
    std::swap(wbuf_, inflight_);
    std::swap(segs_, inflight_segs_);
    const auto mark = std::exchange(inline_mark_, 0);
    gather_.clear();
    if (inflight_segs_.empty()) {
        gather_.push_back(asio::buffer(inflight_.data(), inflight_.size()));
    } else {
        // One gather write (writev) for everything queued, inline and external alike.
        if (inflight_.size() > mark)
            inflight_segs_.push_back({nullptr, inflight_.size() - mark, mark, {}});
        for (const auto& seg : inflight_segs_)
            gather_.push_back(seg.data
                                  ? asio::const_buffer(seg.data, seg.size)
                                  : asio::const_buffer(inflight_.data() + seg.offset, seg.size));
    }
    if (auto* sock = plain) {
        // Plain TCP: write now, from here. The socket usually takes everything, and then the
        // write costs one send() and no operation, post or completion handler. What it does
        // not take goes through Asio below; an error is left to Asio to report the same way.
        std::error_code ec;
        // In slices of at most 64 KiB, as Asio's own write does: one huge sendmsg() costs
        // the kernel more than the same bytes in 64 KiB pieces (measured on 1 MiB echoes).
        const std::size_t total = asio::buffer_size(gather_);
        done_now = write_slices(*sock, gather_, total, done_now, ec);
        if (!ec && done_now == total) {
            on_write({}, done_now);
            return;
        }
        if (done_now > 0 && !inflight_segs_.empty()) {
            std::size_t skip = done_now;
            std::size_t first = 0;
            while (skip >= gather_[first].size())
                skip -= gather_[first++].size();
            gather_.erase(gather_.begin(), gather_.begin() + static_cast<std::ptrdiff_t>(first));
            gather_.front() += skip;
        }
    }
    auto done = asio::bind_allocator(
        handler_allocator<void>(write_memory()),
        [self = shared_from_this(), done_now](std::error_code ec, std::size_t n) {
            self->on_write(ec, n + done_now);
        });
    if (inflight_segs_.empty()) {
        // (A single buffer keeps the operation small enough for write_memory_.)
        std::visit(
            [&](auto& alt) {
                auto& s = stream_of(alt);
                asio::async_write(s, asio::buffer(inflight_.data(), inflight_.size()) + done_now,
                                  std::move(done));
            },
            stream_);
        return;
    }
    std::visit(
        [&](auto& alt) {
            auto& s = stream_of(alt);
            asio::async_write(s, gather_, std::move(done));
        },
        stream_);
}

void connection_impl::flush_now() {
    if (!writing_ && !shutdown_pending_ && (!wbuf_.empty() || !segs_.empty())) start_write();
}

std::uint64_t connection_impl::enqueue_external(byte_span header, byte_span external,
                                                std::shared_ptr<const void> keep) {
    wbuf_.append(header.data(), header.size());
    if (wbuf_.size() > inline_mark_) {
        segs_.push_back({nullptr, wbuf_.size() - inline_mark_, inline_mark_, {}});
        inline_mark_ = wbuf_.size();
    }
    segs_.push_back({external.data(), external.size(), 0, std::move(keep)});
    add_buffered(header.size() + external.size());
    const auto gen = ++queued_gen_;  // (before the flush: it may write at once)
    schedule_flush();
    return gen;
}

void connection_impl::on_write(std::error_code ec, std::size_t n) {
    writing_ = false;
    sub_buffered(n);
    inflight_.clear();       // keeps its capacity: no allocation per write in the steady state
    inflight_segs_.clear();  // releases shared frames; caller-owned bytes are done with
    written_gen_ = inflight_gen_;
    if (ec) {
        if (!socket_closed_) on_transport_error(ec);
        buffered_ = 0;
        wbuf_.clear();
        segs_.clear();
        inline_mark_ = 0;
        notify();
        return;
    }
    after_write();
}

void connection_impl::after_write() {
    if (late_pong_pending_ &&
        buffered_.load(std::memory_order_relaxed) <= config_->write_low_water) {
        late_pong_pending_ = false;
        enqueue(opcode::pong, std::span<const std::byte>(late_pong_->data(), late_pong_size_),
                true);
    }
    // More queued meanwhile, or the half-close that waited for the queue to drain.
    if (!wbuf_.empty() || !segs_.empty() || shutdown_pending_) start_write();
    if (read_paused_ && !socket_closed_ &&
        buffered_.load(std::memory_order_relaxed) <= config_->write_low_water) {
        // The queue drained: an event-driven connection reads again (posted: on_write may
        // run inside a flush from anywhere on the strand, callbacks must not nest).
        read_paused_ = false;
        post_event_read(connection(shared_from_this()));
    }
    notify();
}

asio::awaitable<void> connection_impl::wait_below_low_water() {
    if (buffered_.load(std::memory_order_relaxed) <= config_->write_high_water) co_return;
    while (!socket_closed_ && buffered_.load(std::memory_order_relaxed) > config_->write_low_water)
        co_await wait_signal();
}

asio::awaitable<void> connection_impl::send_frame(opcode op, std::span<const std::byte> payload,
                                                  std::error_code* ec) {
    // The common path creates no further coroutine frame: Asio recycles only a couple of
    // frames per thread, so nesting more would allocate per message.
    std::error_code e;
    if (payload.size() >= zero_copy_threshold &&
        decoder_.format() == protocol::wire_format::rfc6455 &&
        config_->slow_consumer == slow_consumer_policy::suspend) {
        // A large payload goes out from the caller's memory in the gather write, without a
        // copy; so this send completes only once it is written (or the connection is gone).
        e = check_can_send(op, false);
        if (!e) {
            log_frame("out", op, payload);
            std::byte header[protocol::max_header_size];
            const auto hn = protocol::encode_header(header, op, true, payload.size());
            const auto gen = enqueue_external(std::span<const std::byte>(header, hn), payload, {});
            auto self = shared_from_this();
            while (written_gen_ < gen && !(socket_closed_ && !writing_))
                co_await wait_signal();
            if (written_gen_ < gen) e = make_error_code(error::closed);
        }
        if (ec)
            *ec = e;
        else if (e)
            throw wscoro::system_error(e);
        co_return;
    }
    e = enqueue(op, payload, false);
    if (!e && config_->slow_consumer == slow_consumer_policy::close) {
        if (buffered_.load(std::memory_order_relaxed) > config_->max_outbound) {
            e = make_error_code(error::slow_consumer);
            report(e, nullptr, e.message());
            close_for(e, close_code::policy_violation, "slow consumer");
        }
    } else if (!e && buffered_.load(std::memory_order_relaxed) > config_->write_high_water) {
        co_await wait_below_low_water();
    }
    if (ec)
        *ec = e;
    else if (e)
        throw wscoro::system_error(e);
}

std::error_code connection_impl::enqueue_prepared(const prepared_message& msg) {
    const auto op = msg.type() == message_type::text ? opcode::text : opcode::binary;
    if (decoder_.format() != protocol::wire_format::rfc6455)
        return enqueue(op, msg.payload(), false);
    if (auto e = check_can_send(op, false)) return e;
    log_frame("out", op, msg.payload());
    const auto frame = msg.frame();
    if (frame.size() <= prepared_copy_limit) {
        // A small frame is copied as it is (no framing, no UTF-8 check): cheaper than the
        // reference, its two reference-count updates and a gather write (fanout_bench).
        wbuf_.append(frame.data(), frame.size());
        add_buffered(frame.size());
        schedule_flush();
        return {};
    }
    // The shared frame itself is queued: no copy, no re-framing.
    enqueue_external({}, frame, msg.shared_frame());
    return {};
}

asio::awaitable<void> connection_impl::send_prepared(const prepared_message& msg,
                                                     std::error_code* ec) {
    const auto e = enqueue_prepared(msg);
    if (!e && buffered_.load(std::memory_order_relaxed) > config_->write_high_water)
        co_await wait_below_low_water();
    if (ec)
        *ec = e;
    else if (e)
        throw wscoro::system_error(e);
}

// ---------------------------------------------------------------------------------------------
// Closing
// ---------------------------------------------------------------------------------------------

std::error_code connection_impl::start_close(std::uint16_t code, std::string_view reason) {
    if (!close_code::is_sendable(code)) return make_error_code(error::invalid_close_code);
    if (reason.size() > 123) return make_error_code(error::reason_too_long);
    if (!protocol::is_valid_utf8(reason)) return make_error_code(error::invalid_utf8_argument);
    if (state_ == connection_state::open) {
        config_->log.log(log_level::debug, id_, "closing: code {} reason '{}'", code, reason);
        enqueue_close(code, reason);
        state_ = connection_state::closing;
        start_timer(config_->timeouts.close, make_error_code(error::close_timeout));
        notify();
    }
    return {};
}

asio::awaitable<void> connection_impl::close(std::uint16_t code, std::string_view reason,
                                             std::error_code& ec) {
    ec = start_close(code, reason);
    if (ec) co_return;
    auto self = shared_from_this();
    if (!reader_active_) {
        // Nobody else reads: read (and drop) messages until the peer's Close arrives.
        while (state_ == connection_state::closing)
            (void)co_await receive();
    }
    while (state_ != connection_state::closed)
        co_await wait_signal();
}

asio::awaitable<void> connection_impl::finish(std::uint16_t code, std::string_view reason) {
    auto self = shared_from_this();
    if (state_ == connection_state::open || state_ == connection_state::closing) {
        std::error_code ec;
        co_await close(code, reason, ec);
    }
    while (!socket_closed_)
        co_await wait_signal();
}

void connection_impl::shutdown_after_flush() {
    shutdown_pending_ = true;
    // (A flush already posted then finds the queue written and the linger begun.)
    if (!writing_) start_write();
}

void connection_impl::begin_linger() {
    if (socket_closed_ || linger_started_) return;
    shutdown_pending_ = false;
    linger_started_ = true;
    if (clean_close_pending_) {
        // Everything queued, our Close included, is written: both Close frames are through.
        clean_close_pending_ = false;
        set_close_info(pending_close_code_, std::move(pending_close_reason_), true, {});
        notify();
    }
#if WSCORO_HAS_TLS
    if (auto* tls = tls_or_null()) {
        start_timer(std::min(config_->timeouts.close, max_linger), {});
        // TLS: send close_notify and wait for the peer's (bounded by the linger timer).
        tls->async_shutdown([self = shared_from_this()](std::error_code) { self->force_close(); });
        return;
    }
#endif
    prepare_read_buffer();
    rb_begin_ = rb_end_ = 0;
    if (peer_close_received_) {
        // The peer sent its Close, so it sends no more data: if nothing is unread, closing
        // now cannot provoke a RST, and the FIN goes out as RFC 6455 §7.1.1 wants (the
        // server closes first). Saves a shutdown(), a read and a wait per connection. The
        // read that brought the Close emptied the socket unless it filled the buffer (see
        // socket_fast_path.hpp); only then look again.
        bool drained = !last_read_full_;
        if (!drained) {
            std::error_code rec;
            (void)read_now(tcp(), rec);
            drained = rec == asio::error::would_block || rec == asio::error::try_again ||
                      rec == asio::error::eof;
        }
        if (drained) {
            force_close();
            return;
        }
    }
    start_timer(std::min(config_->timeouts.close, max_linger), {});
    // Half-close: our FIN tells the peer we are done (RFC 6455 §7.1.1: the server closes
    // first), then read until its FIN so unread bytes cannot provoke a RST.
    std::error_code ignored;
    tcp().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    if (ignored) {
        force_close();
        return;
    }
    linger_read();
}

void connection_impl::linger_read() {
    tcp().async_read_some(asio::buffer(rbuf_.get(), rcap_),
                          [self = shared_from_this()](std::error_code ec, std::size_t) {
                              if (ec || self->socket_closed_)
                                  self->force_close();
                              else
                                  self->linger_read();
                          });
}

void connection_impl::force_close() {
    if (socket_closed_) return;
    socket_closed_ = true;
    std::error_code ignored;
    tcp().close(ignored);
    cancel_timer();
    if (keepalive_) keepalive_->cancel();
    if (trim_timer_) trim_timer_->cancel();
    segs_.clear();  // never written: release shared frames, forget caller-owned bytes
    wbuf_.clear();
    inline_mark_ = 0;
    if (state_ != connection_state::closed || clean_close_pending_) {
        // (clean_close_pending_: our Close never got out, so the close was not clean.)
        clean_close_pending_ = false;
        set_close_info(close_code::abnormal, {}, false, make_error_code(error::closed));
        state_ = connection_state::closed;
    }
    config_->log.log(log_level::debug, id_, "socket closed");
    notify();
    if (lot_linked && events_) events_->woke(*this);
    if (events_ && !end_posted_) {
        // (Posted: force_close runs inside reads, writes and callbacks.)
        end_posted_ = true;
        std::visit(
            [&](const auto& ex) {
                asio::post(ex, [self = shared_from_this()] { self->event_end(); });
            },
            strand_);
    }
}

void connection_impl::start_timer(std::chrono::milliseconds after, std::error_code reason) {
    if (!timer_) timer_.emplace(executor_);
    timer_reason_ = reason;
    timer_->expires_after(after);
    timer_->async_wait([self = shared_from_this(), reason](std::error_code ec) {
        if (ec || self->timer_reason_ != reason) return;  // cancelled or re-armed
        if (reason) {
            self->config_->log.log(log_level::debug, self->id_, "{}", reason.message());
            self->set_close_info(close_code::abnormal, {}, false, reason);
            self->report(reason, nullptr, reason.message());
        }
        self->force_close();
    });
}

void connection_impl::cancel_timer() {
    if (timer_) timer_->cancel();
}

void connection_impl::set_close_info(std::uint16_t code, std::string reason, bool clean,
                                     std::error_code ec) {
    std::lock_guard lock(info_mutex_);
    if (close_info_final_) return;  // the first account of how it ended wins
    close_info_ = {code, std::move(reason), clean, ec ? ec : close_reason_};
    close_info_final_ = true;
}

wscoro::close_info connection_impl::get_close_info() const {
    std::lock_guard lock(info_mutex_);
    return close_info_;
}

asio::awaitable<void> connection_impl::wait_signal() {
    if (!signal_) {
        signal_ = std::make_unique<asio::steady_timer>(executor_);
        signal_->expires_at(asio::steady_timer::time_point::max());
    }
    (void)co_await signal_->async_wait(use_tuple);
}

void connection_impl::report(std::error_code ec, std::exception_ptr ex, std::string text) {
    error_report r;
    r.code = ec;
    r.exception = std::move(ex);
    r.message = std::move(text);
    r.connection_id = id_;
    r.handshake = state_ == connection_state::handshake ? nullptr : &handshake_;
    try {
        if (config_->on_error) {
            config_->on_error(r);
        } else {
            const auto level = ec == error::application_error ? log_level::error : log_level::debug;
            config_->log.log(level, id_, "{}", r.message);
        }
    } catch (...) {
        // on_error must not throw; if it does, keep the connection machinery intact.
        config_->log.log(log_level::error, id_, "on_error threw an exception");
    }
}

void connection_impl::log_frame_slow(const char* dir, opcode op, byte_span payload) const {
    const auto& log = config_->log;
    if (log.enabled(log_level::trace)) {
        constexpr std::size_t max_shown = 64;
        const auto shown = payload.first(std::min(payload.size(), max_shown));
        std::string excerpt;
        for (auto b : shown) {
            const auto c = static_cast<unsigned char>(b);
            excerpt += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '.';
        }
        log.log(log_level::trace, id_, "frame {}: {} len={} '{}'{}", dir, opcode_name(op),
                payload.size(), excerpt, payload.size() > max_shown ? "..." : "");
    } else {
        log.log(log_level::debug, id_, "frame {}: {} len={}", dir, opcode_name(op), payload.size());
    }
}

}  // namespace wscoro::detail

// -------------------------------------------------------------------------------------------------
// The public handle: hop to the connection's strand, then call the implementation.
// -------------------------------------------------------------------------------------------------

namespace wscoro {

namespace {
using detail::connection_impl;
using protocol::opcode;

// The public members are plain functions returning the implementation's awaitable, so a send
// or receive on the connection's own strand costs one coroutine frame. From elsewhere, the
// operation is spawned on the strand with an owned copy of the payload (the caller's bytes
// may be gone by the time the strand runs it).

asio::awaitable<void> send_owned(std::shared_ptr<connection_impl> impl, opcode op,
                                 std::vector<std::byte> payload, std::error_code* ec) {
    co_await impl->send_frame(op, payload, ec);
}

asio::awaitable<void> fail_with(std::error_code e, std::error_code* ec) {
    if (!ec) throw wscoro::system_error(e);
    *ec = e;
    co_return;
}

asio::awaitable<void> send_any(const std::shared_ptr<connection_impl>& impl, opcode op,
                               std::span<const std::byte> payload, std::error_code* ec) {
    if (!impl) return fail_with(make_error_code(error::closed), ec);
    if (impl->on_strand()) return impl->send_frame(op, payload, ec);
    std::vector<std::byte> owned(payload.begin(), payload.end());
    auto op_awaitable = send_owned(impl, op, std::move(owned), ec);
    return asio::co_spawn(impl->executor(), std::move(op_awaitable), asio::use_awaitable);
}

asio::awaitable<void> send_text(const std::shared_ptr<connection_impl>& impl, std::string_view text,
                                std::error_code* ec) {
    // A text frame must carry UTF-8 (RFC 6455 §5.6); refuse rather than have the peer fail.
    if (!protocol::is_valid_utf8(text))
        return fail_with(make_error_code(error::invalid_utf8_argument), ec);
    return send_any(impl, opcode::text, std::as_bytes(std::span(text.data(), text.size())), ec);
}

asio::awaitable<std::error_code> close_on_strand(std::shared_ptr<connection_impl> impl,
                                                 std::uint16_t code, std::string reason) {
    std::error_code ec;
    co_await impl->close(code, reason, ec);
    co_return ec;
}

asio::awaitable<std::optional<message>> receive_on_strand(std::shared_ptr<connection_impl> impl) {
    co_return co_await impl->receive();
}

asio::awaitable<std::optional<message>> nothing_to_receive() {
    co_return std::nullopt;
}

asio::awaitable<bool> send_control(const std::shared_ptr<connection_impl>& impl, opcode op,
                                   std::string_view body, bool pingable) {
    // RFC 6455 §5.5: control frame payloads are at most 125 bytes.
    if (body.size() > 125) throw wscoro::system_error(make_error_code(error::control_too_big));
    if (!pingable) co_return false;
    co_await send_any(impl, op, std::as_bytes(std::span(body.data(), body.size())), nullptr);
    co_return true;
}

opcode opcode_for(message_type t) noexcept {
    switch (t) {
        case message_type::text:
            return opcode::text;
        case message_type::binary:
            return opcode::binary;
        case message_type::ping:
            return opcode::ping;
        case message_type::pong:
            return opcode::pong;
    }
    return opcode::binary;
}

void throw_if(std::error_code ec) {
    if (ec) throw wscoro::system_error(ec);
}
}  // namespace

namespace {
asio::awaitable<void> send_prepared_owned(std::shared_ptr<connection_impl> impl,
                                          prepared_message msg, std::error_code* ec) {
    co_await impl->send_prepared(msg, ec);
}

asio::awaitable<void> send_prepared_any(const std::shared_ptr<connection_impl>& impl,
                                        const prepared_message& msg, std::error_code* ec) {
    if (!impl) return fail_with(make_error_code(error::closed), ec);
    if (impl->on_strand()) return impl->send_prepared(msg, ec);
    // Another thread or strand: hop over with a copy of the handle (the bytes are shared).
    auto op = send_prepared_owned(impl, msg, ec);
    return asio::co_spawn(impl->executor(), std::move(op), asio::use_awaitable);
}
}  // namespace

asio::awaitable<void> connection::send(const prepared_message& msg) const {
    return send_prepared_any(impl_, msg, nullptr);
}

asio::awaitable<void> connection::send(const prepared_message& msg, std::error_code& ec) const {
    ec = {};
    return send_prepared_any(impl_, msg, &ec);
}

asio::awaitable<std::optional<message>> connection::receive() const {
    if (!impl_) return nothing_to_receive();
    if (impl_->on_strand()) return impl_->receive();
    return asio::co_spawn(impl_->executor(), receive_on_strand(impl_), asio::use_awaitable);
}

asio::awaitable<void> connection::send(std::string_view text, std::error_code& ec) const {
    ec = {};
    return send_text(impl_, text, &ec);
}

asio::awaitable<void> connection::send(std::string_view text) const {
    return send_text(impl_, text, nullptr);
}

asio::awaitable<void> connection::send_binary(std::span<const std::byte> data,
                                              std::error_code& ec) const {
    ec = {};
    return send_any(impl_, opcode::binary, data, &ec);
}

asio::awaitable<void> connection::send_binary(std::span<const std::byte> data) const {
    return send_any(impl_, opcode::binary, data, nullptr);
}

asio::awaitable<void> connection::send(const message& msg) const {
    return send_any(impl_, opcode_for(msg.type()), msg.data(), nullptr);
}

std::optional<message> connection::try_receive() const {
    if (!impl_) return std::nullopt;
    return impl_->try_receive();
}

bool connection::try_send(std::string_view text) const {
    if (!impl_ || !protocol::is_valid_utf8(text)) return false;
    return impl_->try_send(opcode::text, std::as_bytes(std::span(text.data(), text.size())));
}

bool connection::try_send_binary(std::span<const std::byte> data) const {
    return impl_ && impl_->try_send(opcode::binary, data);
}

bool connection::try_send(const message& msg) const {
    return impl_ && impl_->try_send(opcode_for(msg.type()), msg.data());
}

std::error_code connection::send_now(std::string_view text) const {
    if (!impl_) return make_error_code(error::closed);
    if (!protocol::is_valid_utf8(text)) return make_error_code(error::invalid_utf8_argument);
    return impl_->send_now(opcode::text, std::as_bytes(std::span(text.data(), text.size())));
}

std::error_code connection::send_now_binary(std::span<const std::byte> data) const {
    if (!impl_) return make_error_code(error::closed);
    return impl_->send_now(opcode::binary, data);
}

std::error_code connection::send_now(const message& msg) const {
    if (!impl_) return make_error_code(error::closed);
    return impl_->send_now(opcode_for(msg.type()), msg.data());
}

std::error_code connection::send_now(const prepared_message& msg) const {
    if (!impl_) return make_error_code(error::closed);
    return impl_->send_now(msg);
}

std::error_code connection::start_close(std::uint16_t code, std::string_view reason) const {
    if (!impl_) return {};
    if (!impl_->on_strand()) return std::make_error_code(std::errc::operation_not_permitted);
    return impl_->start_close(code, reason);
}

asio::awaitable<bool> connection::ping(std::string_view body) const {
    return send_control(impl_, opcode::ping, body, pingable());
}

asio::awaitable<bool> connection::pong(std::string_view body) const {
    return send_control(impl_, opcode::pong, body, pingable());
}

asio::awaitable<void> connection::close(std::uint16_t code, std::string_view reason) const {
    if (!impl_) co_return;
    auto impl = impl_;  // this handle may be gone once we are suspended
    std::error_code ec;
    if (impl->on_strand()) {
        co_await impl->close(code, reason, ec);
    } else {
        auto op = close_on_strand(impl, code, std::string(reason));
        ec = co_await asio::co_spawn(impl->executor(), std::move(op), asio::use_awaitable);
    }
    throw_if(ec);
}

void connection::deliver_control_frames(bool on) const noexcept {
    if (impl_) impl_->deliver_control = on;
}

bool connection::pingable() const noexcept {
    return impl_ && impl_->handshake().protocol_version() >= 1 &&
           impl_->handshake().protocol_version() < 75;
}

bool connection::supports_close_codes() const noexcept {
    return impl_ && impl_->handshake().protocol_version() >= 6 &&
           impl_->handshake().protocol_version() < 75;
}

connection_state connection::state() const noexcept {
    return impl_ ? impl_->state() : connection_state::closed;
}

std::size_t connection::buffered_amount() const noexcept {
    return impl_ ? impl_->buffered_amount() : 0;
}

const handshake_info& connection::handshake() const noexcept {
    static const handshake_info none;
    return impl_ ? impl_->handshake() : none;
}

wscoro::close_info connection::close_info() const {
    return impl_ ? impl_->get_close_info() : wscoro::close_info{};
}

std::uint64_t connection::max_frame_size() const noexcept {
    return impl_ ? impl_->max_frame_size.load() : 0;
}

void connection::set_max_frame_size(std::uint64_t bytes) const noexcept {
    if (impl_) impl_->max_frame_size = bytes;
}

asio::any_io_executor connection::get_executor() const noexcept {
    return impl_ ? impl_->executor() : asio::any_io_executor();
}

std::uint64_t connection::id() const noexcept {
    return impl_ ? impl_->id() : 0;
}

}  // namespace wscoro
