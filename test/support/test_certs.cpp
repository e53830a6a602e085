#include "test_certs.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace wscoro::test {
namespace {
std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(n));
}
}  // namespace

namespace {
test_cert self_signed(EVP_PKEY* key, const std::string& common_name, const std::string& password) {
    static long serial = 1;
    X509* x = X509_new();
    if (!key || !x) throw std::runtime_error("OpenSSL key/cert allocation failed");
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
    const std::string san = "DNS:" + common_name + ",IP:127.0.0.1";
    if (X509_EXTENSION* ext =
            X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str())) {
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(x, key, EVP_sha256());

    test_cert out;
    BIO* cb = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(cb, x);
    out.cert_pem = bio_text(cb);
    BIO_free(cb);
    BIO* kb = BIO_new(BIO_s_mem());
    if (password.empty())
        PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
    else
        PEM_write_bio_PrivateKey(kb, key, EVP_aes_256_cbc(),
                                 reinterpret_cast<const unsigned char*>(password.data()),
                                 static_cast<int>(password.size()), nullptr, nullptr);
    out.key_pem = bio_text(kb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(key);
    return out;
}
}  // namespace

test_cert make_self_signed(const std::string& common_name, const std::string& password) {
    return self_signed(EVP_EC_gen("P-256"), common_name, password);
}

test_cert make_self_signed_rsa(const std::string& common_name) {
    return self_signed(EVP_RSA_gen(2048), common_name, {});
}

std::string dh_parameters_pem(const std::string& group) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "DH", nullptr);
    std::string name = group;
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, name.data(), 0),
        OSSL_PARAM_END};
    EVP_PKEY* dh = nullptr;
    const bool ok = ctx && EVP_PKEY_paramgen_init(ctx) == 1 &&
                    EVP_PKEY_CTX_set_params(ctx, params) == 1 && EVP_PKEY_paramgen(ctx, &dh) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) throw std::runtime_error("OpenSSL: cannot make DH parameters for " + group);
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_Parameters(b, dh);
    auto text = bio_text(b);
    BIO_free(b);
    EVP_PKEY_free(dh);
    return text;
}

std::string write_temp_file(const std::string& name, const std::string& text) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("wscoro-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto path = dir / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
}

}  // namespace wscoro::test
