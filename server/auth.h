// API tokens: created by `coordinatord token create --role ROLE`, stored only
// as SHA-256 hashes, and checked on every RPC from the `authorization:
// Bearer` metadata. Roles: `operator` (operator service) and `worker`
// (worker service). Verified hashes are cached briefly (kAuthCacheMs) so a
// check costs no database read on the hot path; revocation takes effect
// within that time, on open worker sessions too (checked again on each
// message they send).
#pragma once

#include "absl/strings/string_view.h"
#include <grpcpp/server_context.h>

#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "server/db.h"
#include "server/engine.h"

namespace assessq {

enum class Role { kOperator, kWorker };
absl::string_view RoleName(Role r);
absl::StatusOr<Role> RoleFromName(absl::string_view name);

struct Principal {
  Role role;
  std::string name;  // the token's name (who it was issued to)
  int64_t id = 0;    // the token's row: leases are bound to the token that took them
};

// Creates a token in the database at `db_path` (migrating it first) and
// returns the plaintext, which is never stored.
absl::StatusOr<std::string> CreateToken(const std::string& db_path, Role role,
                                        const std::string& name);
absl::Status RevokeToken(const std::string& db_path, const std::string& name);

inline constexpr int64_t kAuthCacheMs = 5000;

class Authenticator {
 public:
  Authenticator(std::string db_path, Clock clock);
  // Checks the call's bearer token has `want` role. UNAUTHENTICATED when
  // missing or unknown, PERMISSION_DENIED when the role is wrong.
  absl::StatusOr<Principal> Check(const grpc::ServerContextBase* ctx, Role want);
  absl::StatusOr<Principal> CheckToken(const std::string& token, Role want);

 private:
  struct Cached {
    Principal who;
    int64_t until;
  };
  std::string path_;
  Clock clock_;
  std::mutex mu_;
  std::unique_ptr<Db> db_;  // guarded by mu_
  std::unordered_map<std::string, Cached> cache_;  // hash -> principal, guarded by mu_
};

}  // namespace assessq
