#include "common/address.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace assessq {

std::string Address::grpc_target() const {
  return is_unix ? absl::StrCat("unix:", unix_path) : host_port;
}

absl::StatusOr<Address> ParseAddress(const std::string& text) {
  Address a;
  if (absl::StartsWith(text, "unix:")) {
    std::string path = text.substr(5);
    if (path.empty()) return absl::InvalidArgumentError("address 'unix:' has no path");
    a.is_unix = true;
    a.unix_path = std::filesystem::absolute(path).lexically_normal().string();
    if (a.unix_path.size() >= 108)
      return absl::InvalidArgumentError(
          absl::StrCat("unix socket path too long (max 107 bytes): ", a.unix_path));
    return a;
  }
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return absl::InvalidArgumentError(
        absl::StrCat("address '", text, "' is neither unix:PATH nor HOST:PORT"));
  int port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 0 || port > 65535)
    return absl::InvalidArgumentError(absl::StrCat("address '", text, "' has a bad port"));
  a.host_port = text;
  return a;
}

std::string DefaultCoordinatorAddress() {
  if (const char* env = std::getenv("ASSESSQ_COORDINATOR"); env && *env) return env;
  return "unix:/tmp/assessq/coordinator.sock";
}

}  // namespace assessq
