#include "absl/strings/string_view.h"
#include "server/auth.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "server/migrations.h"

namespace assessq {

absl::string_view RoleName(Role r) { return r == Role::kOperator ? "operator" : "worker"; }

absl::StatusOr<Role> RoleFromName(absl::string_view name) {
  if (name == "operator") return Role::kOperator;
  if (name == "worker") return Role::kWorker;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role '", name, "' (operator or worker)"));
}

absl::StatusOr<std::string> CreateToken(const std::string& db_path, Role role,
                                        const std::string& name) {
  auto db = Db::Open(db_path, {});
  if (!db.ok()) return db.status();
  if (auto s = Migrate(**db); !s.ok()) return s;
  std::string token = absl::StrCat("aq1_", RoleName(role), "_", RandomHex(24));
  auto st = (*db)->Prepare(
      "INSERT INTO tokens(name, role, hash, created_at) VALUES(?,?,?,?)");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, name).Bind(2, RoleName(role)).Bind(3, Sha256Hex(token)).Bind(4, SystemNowMs());
  if (auto s = (*st)->Run(); !s.ok()) return s;
  return token;
}

absl::Status RevokeToken(const std::string& db_path, const std::string& name) {
  auto db = Db::Open(db_path, {});
  if (!db.ok()) return db.status();
  auto st = (*db)->Prepare("UPDATE tokens SET revoked=1 WHERE name=? AND revoked=0");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, name);
  if (auto s = (*st)->Run(); !s.ok()) return s;
  if ((*db)->Changes() == 0)
    return absl::NotFoundError(absl::StrCat("no active token named '", name, "'"));
  return absl::OkStatus();
}

Authenticator::Authenticator(std::string db_path, Clock clock)
    : path_(std::move(db_path)), clock_(clock ? std::move(clock) : Clock(SystemNowMs)) {}

absl::StatusOr<Principal> Authenticator::Check(const grpc::ServerContextBase* ctx, Role want) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end())
    return absl::UnauthenticatedError("missing authorization metadata (Bearer token)");
  absl::string_view v(it->second.data(), it->second.size());
  if (!absl::StartsWith(v, "Bearer "))
    return absl::UnauthenticatedError("authorization must be 'Bearer <token>'");
  return CheckToken(std::string(v.substr(7)), want);
}

absl::StatusOr<Principal> Authenticator::CheckToken(const std::string& token, Role want) {
  const std::string hash = Sha256Hex(token);
  const int64_t now = clock_();
  std::lock_guard<std::mutex> l(mu_);
  std::optional<Principal> who;
  if (auto c = cache_.find(hash); c != cache_.end() && c->second.until > now) {
    who = c->second.who;
  } else {
    if (!db_) {
      auto db = Db::Open(path_, {.read_only = true, .synchronous_full = false});
      if (!db.ok()) return db.status();
      db_ = std::move(*db);
    }
    auto st = db_->Prepare("SELECT role, name, id FROM tokens WHERE hash=? AND revoked=0");
    if (!st.ok()) return st.status();
    (*st)->Bind(1, hash);
    auto row = (*st)->Step();
    if (!row.ok()) return row.status();
    if (!*row) {
      (*st)->Reset();
      cache_.erase(hash);
      return absl::UnauthenticatedError("unknown or revoked token");
    }
    auto role = RoleFromName((*st)->Text(0));
    if (!role.ok()) return role.status();
    who = Principal{*role, (*st)->Text(1), (*st)->Int(2)};
    (*st)->Reset();
    if (cache_.size() > 10000) cache_.clear();
    cache_[hash] = Cached{*who, now + kAuthCacheMs};
  }
  if (who->role != want)
    return absl::PermissionDeniedError(absl::StrCat(
        "token '", who->name, "' has role ", RoleName(who->role), "; this call needs ",
        RoleName(want)));
  return *who;
}

}  // namespace assessq
