// SHA-256 of a byte string as lowercase hex (OpenSSL's EVP digest): used for
// metadata content addressing and for storing API tokens hashed.
#pragma once

#include "absl/strings/string_view.h"
#include <string>
#include <string_view>

namespace assessq {

std::string Sha256Hex(absl::string_view data);

// A random token of `bytes` bytes from the OS CSPRNG, as lowercase hex.
std::string RandomHex(size_t bytes);

}  // namespace assessq
