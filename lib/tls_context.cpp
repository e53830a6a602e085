#include "tls_context.hpp"

#if WSCORO_HAS_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <strings.h>
#include <asio/ssl/error.hpp>

#include <stdexcept>
#include <system_error>

namespace wscoro::detail {
namespace {

std::string openssl_errors() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out;
}

[[noreturn]] void fail(const std::string& what, const std::error_code& ec = {}) {
    std::string msg = "wscoro TLS: " + what;
    // OpenSSL already checks a key against the certificate while loading it; say so plainly.
    // (Asio moves OpenSSL's error into `ec`, whose value is the packed ERR code.)
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH ||
        (ec && ec.category() == asio::error::get_ssl_category() &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH))
        msg += ": the private key does not match the certificate";
    const auto details = openssl_errors();
    if (!details.empty()) msg += " (" + details + ")";
    throw std::system_error(ec ? ec : std::make_error_code(std::errc::invalid_argument), msg);
}

void load_certificate(asio::ssl::context& ctx, const tls_certificate& c, const std::string& who) {
    if (!c.cert_chain_file.empty() && !c.cert.empty())
        fail(who + ": give cert_chain_file or cert, not both");
    if (!c.private_key_file.empty() && !c.private_key.empty())
        fail(who + ": give private_key_file or private_key, not both");
    if (c.cert_chain_file.empty() && c.cert.empty()) fail(who + ": no certificate");
    if (c.private_key_file.empty() && c.private_key.empty()) fail(who + ": no private key");

    const std::string pass = c.private_key_pass;
    ctx.set_password_callback(
        [pass](std::size_t, asio::ssl::context::password_purpose) { return pass; });
    std::error_code ec;
    if (!c.cert_chain_file.empty()) {
        ctx.use_certificate_chain_file(c.cert_chain_file, ec);
        if (ec) fail(who + ": cannot load certificate chain '" + c.cert_chain_file + "'", ec);
    } else {
        ctx.use_certificate_chain(asio::buffer(c.cert), ec);
        if (ec) fail(who + ": cannot load the certificate PEM text", ec);
    }
    if (!c.private_key_file.empty()) {
        ctx.use_private_key_file(c.private_key_file, asio::ssl::context::pem, ec);
        if (ec)
            fail(who + ": cannot load private key '" + c.private_key_file +
                     "' (missing file, bad key or wrong password)",
                 ec);
    } else {
        ctx.use_private_key(asio::buffer(c.private_key), asio::ssl::context::pem, ec);
        if (ec)
            fail(who + ": cannot load the private key PEM text (bad key or wrong password)", ec);
    }
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
        fail(who + ": the private key does not match the certificate");
}

std::unique_ptr<asio::ssl::context> make_context(const tls_options& o, const tls_certificate& c,
                                                 const std::string& who) {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::single_dh_use);
    SSL_CTX* h = ctx->native_handle();
    const int min = o.min_version == tls_version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(h, min) != 1) fail(who + ": cannot set min_version");
    if (!o.cipher_list.empty() && SSL_CTX_set_cipher_list(h, o.cipher_list.c_str()) != 1)
        fail(who + ": bad cipher_list '" + o.cipher_list + "'");
    if (!o.ciphersuites.empty() && SSL_CTX_set_ciphersuites(h, o.ciphersuites.c_str()) != 1)
        fail(who + ": bad ciphersuites '" + o.ciphersuites + "'");
    if (!o.ecdh_curve.empty() && SSL_CTX_set1_groups_list(h, o.ecdh_curve.c_str()) != 1)
        fail(who + ": bad ecdh_curve '" + o.ecdh_curve + "'");
    std::error_code ec;
    if (!o.dhparam_file.empty()) {
        ctx->use_tmp_dh_file(o.dhparam_file, ec);
        if (ec) fail(who + ": cannot load dhparam_file '" + o.dhparam_file + "'", ec);
    } else {
        SSL_CTX_set_dh_auto(h, 1);
    }
    load_certificate(*ctx, c, who);
    if (o.verify_peer) {
        if (o.ca_file.empty()) fail(who + ": verify_peer needs ca_file");
        ctx->load_verify_file(o.ca_file, ec);
        if (ec) fail(who + ": cannot load ca_file '" + o.ca_file + "'", ec);
        auto mode = asio::ssl::verify_peer;
        if (o.fail_if_no_peer_cert) mode |= asio::ssl::verify_fail_if_no_peer_cert;
        ctx->set_verify_mode(mode);
    }
    return ctx;
}

}  // namespace

tls_context::tls_context(const tls_options& options) {
    default_ = make_context(options, options, "certificate");
    for (const auto& s : options.sni) {
        if (s.server_name.empty()) fail("an sni certificate has no server_name");
        sni_.push_back({s.server_name, make_context(options, s, "sni '" + s.server_name + "'")});
    }
    if (!sni_.empty()) {
        SSL_CTX_set_tlsext_servername_callback(default_->native_handle(),
                                               &tls_context::on_server_name);
        SSL_CTX_set_tlsext_servername_arg(default_->native_handle(), this);
    }
}

tls_context::~tls_context() = default;

int tls_context::on_server_name(SSL* ssl, int*, void* arg) {
    auto* self = static_cast<tls_context*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name) return SSL_TLSEXT_ERR_NOACK;  // no SNI: keep the default certificate
    for (const auto& n : self->sni_) {
        if (strcasecmp(n.name.c_str(), name) == 0) {
            SSL_set_SSL_CTX(ssl, n.context->native_handle());
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace wscoro::detail
#endif
