// Client side of the wire: dials a coordinator address (unix socket or TCP
// with optional TLS and client certificate) and attaches the bearer token to
// each call. Used by assessctl, workerd, tests and the benchmark.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace assessq {

struct ClientTls {
  std::string ca_file;    // set: use TLS, verify the server against this CA
  std::string cert_file;  // optional client certificate
  std::string key_file;
  std::string server_name_override;
};

// What both ends of the wire set alike (MakeChannel here, the coordinator's
// server in server/server.cc): the largest message either side sends or
// accepts, and the keepalive arguments (ping an idle connection every 10 s,
// even without calls, and drop it when a ping goes 5 s unanswered).
inline constexpr int kMaxMessageBytes = 64 << 20;
std::vector<std::pair<std::string, int>> SharedKeepaliveArgs();

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
