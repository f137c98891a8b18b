// Client side of the wire: dials a coordinator address (unix socket or TCP
// with optional TLS and client certificate) and attaches the bearer token to
// each call. Used by assessctl, workerd, tests and the benchmark.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace assessq {

struct ClientTls {
  std::string ca_file;    // set: use TLS, verify the server against this CA
  std::string cert_file;  // optional client certificate
  std::string key_file;
  std::string server_name_override;
};

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const std::string& address, const ClientTls& tls = {});

// Reads a bearer token (the caller's credential) from `file`, or from
// ASSESSQ_TOKEN / ASSESSQ_TOKEN_FILE.
absl::StatusOr<std::string> LoadToken(const std::string& file);

// Attaches `authorization: Bearer <bearer_token>` to the call.
void AddAuth(grpc::ClientContext& ctx, const std::string& bearer_token);

absl::StatusOr<std::string> ReadFileToString(const std::string& path,
                                             size_t max_bytes = 64 << 20);

}  // namespace assessq
