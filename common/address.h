// Parses the addresses daemons listen on and clients dial: `unix:PATH`
// (the default, for one machine) or `HOST:PORT` (TCP, where TLS applies).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace assessq {

struct Address {
  bool is_unix = false;
  std::string unix_path;  // when is_unix
  std::string host_port;  // when TCP
  // The target string gRPC understands ("unix:/abs/path" or "host:port").
  std::string grpc_target() const;
};

absl::StatusOr<Address> ParseAddress(const std::string& text);

// The coordinator address used when neither flag nor environment names one.
std::string DefaultCoordinatorAddress();

}  // namespace assessq
