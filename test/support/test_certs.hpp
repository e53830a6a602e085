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

/// Writes `text` to a new file under the system temp directory and returns its path.
std::string write_temp_file(const std::string& name, const std::string& text);

}  // namespace wscoro::test
