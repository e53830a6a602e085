#pragma once
// Private: builds the OpenSSL contexts for wss:// from tls_options.

#include "wscoro/config.hpp"

#if WSCORO_HAS_TLS
#include <asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "wscoro/options.hpp"

struct ssl_st;  // OpenSSL's SSL

namespace wscoro::detail {

/// The server's TLS state: the default context and one per SNI name. Immutable once built;
/// shared by every connection.
class tls_context {
  public:
    /// Loads every certificate and key now. Throws std::system_error with a message naming
    /// the file or field at fault (a bad key, certificate, password, CA file, cipher list).
    explicit tls_context(const tls_options& options);
    ~tls_context();
    tls_context(const tls_context&) = delete;
    tls_context& operator=(const tls_context&) = delete;

    asio::ssl::context& context() noexcept { return *default_; }

  private:
    struct named {
        std::string name;
        std::unique_ptr<asio::ssl::context> context;
    };
    static int on_server_name(ssl_st* ssl, int* alert, void* arg);

    std::unique_ptr<asio::ssl::context> default_;
    std::vector<named> sni_;
};

}  // namespace wscoro::detail
#endif
