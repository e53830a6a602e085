#pragma once
// Throw-away certificates made at test time with the OpenSSL API (never committed).

#include <string>

namespace wscoro::test {

struct test_cert {
    std::string cert_pem;
    std::string key_pem;
};

/// A fresh P-256 key and a self-signed certificate for `common_name` (also its DNS
/// subjectAltName), valid from an hour ago for a day. With `password`, the key PEM is
/// encrypted (AES-256-CBC).
test_cert make_self_signed(const std::string& common_name, const std::string& password = {});

/// The same with a 2048-bit RSA key (for key exchanges that need RSA authentication, e.g.
/// TLS 1.2's DHE-RSA suites).
test_cert make_self_signed_rsa(const std::string& common_name);

/// Finite-field Diffie-Hellman parameters of a named RFC 7919 group ("ffdhe2048",
/// "ffdhe3072", ...) as a PEM "DH PARAMETERS" block.
std::string dh_parameters_pem(const std::string& group);

/// Writes `text` to a new file under the system temp directory and returns its path.
std::string write_temp_file(const std::string& name, const std::string& text);

}  // namespace wscoro::test
