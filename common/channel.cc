#include "common/channel.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/address.h"

namespace assessq {

absl::StatusOr<std::string> ReadFileToString(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  // In chunks: the result holds what the file has, not a max_bytes buffer
  // (a folder of small files must not cost max_bytes each).
  std::string out;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > max_bytes)
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": larger than ", max_bytes, " bytes"));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return out;
}

std::vector<std::pair<std::string, int>> SharedKeepaliveArgs() {
  return {{GRPC_ARG_KEEPALIVE_TIME_MS, 10000},
          {GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000},
          {GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1}};
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& address,
                                                           const ClientTls& tls) {
  auto addr = ParseAddress(address);
  if (!addr.ok()) return addr.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  for (const auto& [name, value] : SharedKeepaliveArgs()) args.SetInt(name, value);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!tls.ca_file.empty()) {
    grpc::SslCredentialsOptions o;
    auto ca = ReadFileToString(tls.ca_file);
    if (!ca.ok()) return ca.status();
    o.pem_root_certs = *ca;
    if (!tls.cert_file.empty()) {
      auto cert = ReadFileToString(tls.cert_file);
      if (!cert.ok()) return cert.status();
      auto key = ReadFileToString(tls.key_file);
      if (!key.ok()) return key.status();
      o.pem_cert_chain = *cert;
      o.pem_private_key = *key;
    }
    if (!tls.server_name_override.empty())
      args.SetSslTargetNameOverride(tls.server_name_override);
    creds = grpc::SslCredentials(o);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(addr->grpc_target(), creds, args);
}

absl::StatusOr<std::string> LoadToken(const std::string& file) {
  std::string path = file;
  if (path.empty()) {
    if (const char* t = std::getenv("ASSESSQ_TOKEN"); t && *t) return std::string(t);
    if (const char* f = std::getenv("ASSESSQ_TOKEN_FILE"); f && *f) path = f;
  }
  if (path.empty())
    return absl::FailedPreconditionError(
        "no token: pass --token-file, or set ASSESSQ_TOKEN or ASSESSQ_TOKEN_FILE");
  auto s = ReadFileToString(path, 4096);
  if (!s.ok()) return s.status();
  std::string t(absl::StripAsciiWhitespace(*s));
  if (t.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": empty token file"));
  return t;
}

void AddAuth(grpc::ClientContext& ctx, const std::string& bearer_token) {
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", bearer_token));
}

}  // namespace assessq
