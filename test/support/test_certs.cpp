#include "test_certs.hpp"

#include <openssl/evp.h>
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

test_cert make_self_signed(const std::string& common_name, const std::string& password) {
    static long serial = 1;
    EVP_PKEY* key = EVP_EC_gen("P-256");
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

std::string write_temp_file(const std::string& name, const std::string& text) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("wscoro-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto path = dir / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
}

}  // namespace wscoro::test
