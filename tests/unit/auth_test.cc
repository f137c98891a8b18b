// Tests server/auth: API tokens created into a temp SQLite database and
// checked by the Authenticator. A token grants exactly its role (the other
// role is PERMISSION_DENIED, an unknown token UNAUTHENTICATED); the database
// holds only the token's SHA-256, never the plaintext; revocation is seen at
// once by a fresh Authenticator and by a running one once its 30 s cache
// entry ages out on its (fake) clock.
#include "server/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/sha256.h"

#include "tests/support/process.h"

namespace assessq {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class AuthTest : public ::testing::Test {
 protected:
  std::string Create(Role role, const std::string& name) {
    auto t = CreateToken(db_path_, role, name);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : std::string();
  }

  Clock FakeClock() {
    return [this] { return now_.load(); };
  }

  // Every column of every tokens row, as text.
  std::vector<std::vector<std::string>> TokenRows() {
    std::vector<std::vector<std::string>> out;
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(db_path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT * FROM tokens", -1, &st, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* t = sqlite3_column_text(st, i);
        row.push_back(t ? reinterpret_cast<const char*>(t) : "");
      }
      out.push_back(row);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  std::string FileBytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  aqtest::TempDir tmp_{"assessq_auth_test"};
  fs::path dir_ = tmp_.path();
  std::string db_path_ = (dir_ / "coordinator.db").string();
  std::atomic<int64_t> now_{1'700'000'000'000};
};

TEST(RoleTest, NamesRoundTrip) {
  EXPECT_EQ(RoleName(Role::kOperator), "operator");
  EXPECT_EQ(RoleName(Role::kWorker), "worker");
  EXPECT_EQ(*RoleFromName("operator"), Role::kOperator);
  EXPECT_EQ(*RoleFromName("worker"), Role::kWorker);
  for (const char* bad : {"", "admin", "Operator", "workers"})
    EXPECT_EQ(RoleFromName(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
}

TEST_F(AuthTest, TokensGrantTheirRole) {
  const std::string op = Create(Role::kOperator, "alice");
  const std::string wk = Create(Role::kWorker, "gpu-box-1");
  EXPECT_THAT(op, StartsWith("aq1_operator_"));
  EXPECT_THAT(wk, StartsWith("aq1_worker_"));
  EXPECT_GE(op.size(), std::string("aq1_operator_").size() + 48);
  EXPECT_NE(op, wk);

  Authenticator auth(db_path_, FakeClock());
  auto a = auth.CheckToken(op, Role::kOperator);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->role, Role::kOperator);
  EXPECT_EQ(a->name, "alice");
  auto w = auth.CheckToken(wk, Role::kWorker);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->role, Role::kWorker);
  EXPECT_EQ(w->name, "gpu-box-1");
  // Checked again (now from the cache): same answer.
  EXPECT_TRUE(auth.CheckToken(op, Role::kOperator).ok());
}

TEST_F(AuthTest, WrongRoleIsPermissionDenied) {
  const std::string op = Create(Role::kOperator, "alice");
  const std::string wk = Create(Role::kWorker, "w1");
  Authenticator auth(db_path_, FakeClock());
  auto a = auth.CheckToken(wk, Role::kOperator);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("w1"));
  EXPECT_EQ(auth.CheckToken(op, Role::kWorker).status().code(),
            absl::StatusCode::kPermissionDenied);
  // Also when the principal is already cached under its right role.
  ASSERT_TRUE(auth.CheckToken(op, Role::kOperator).ok());
  EXPECT_EQ(auth.CheckToken(op, Role::kWorker).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(AuthTest, UnknownTokenIsUnauthenticated) {
  const std::string op = Create(Role::kOperator, "alice");
  Authenticator auth(db_path_, FakeClock());
  for (const std::string& t : {std::string(), std::string("nope"), op + "x", op.substr(1),
                               Sha256Hex(op)}) {
    EXPECT_EQ(auth.CheckToken(t, Role::kOperator).status().code(),
              absl::StatusCode::kUnauthenticated)
        << t;
  }
}

TEST_F(AuthTest, DatabaseStoresOnlyTheHash) {
  const std::string op = Create(Role::kOperator, "alice");
  const std::string wk = Create(Role::kWorker, "w1");
  auto rows = TokenRows();
  ASSERT_EQ(rows.size(), 2u);
  std::vector<std::string> hashes;
  for (const auto& row : rows) {
    for (const auto& col : row) {
      EXPECT_EQ(col.find(op), std::string::npos) << "plaintext operator token stored";
      EXPECT_EQ(col.find(wk), std::string::npos) << "plaintext worker token stored";
      // Not even the secret part after the prefix.
      EXPECT_EQ(col.find(op.substr(op.rfind('_') + 1)), std::string::npos);
      EXPECT_EQ(col.find(wk.substr(wk.rfind('_') + 1)), std::string::npos);
    }
    for (const auto& col : row)
      if (col == Sha256Hex(op) || col == Sha256Hex(wk)) hashes.push_back(col);
  }
  EXPECT_THAT(hashes, ::testing::UnorderedElementsAre(Sha256Hex(op), Sha256Hex(wk)));
  // Nor anywhere in the files on disk.
  for (const char* suffix : {"", "-wal", "-journal"}) {
    fs::path p = db_path_ + suffix;
    if (!fs::exists(p)) continue;
    const std::string bytes = FileBytes(p);
    EXPECT_EQ(bytes.find(op.substr(op.rfind('_') + 1)), std::string::npos) << p;
    EXPECT_EQ(bytes.find(wk.substr(wk.rfind('_') + 1)), std::string::npos) << p;
  }
}

TEST_F(AuthTest, RevokedTokenIsRefusedByAFreshAuthenticator) {
  const std::string op = Create(Role::kOperator, "alice");
  const std::string keep = Create(Role::kOperator, "bob");
  ASSERT_TRUE(Authenticator(db_path_, FakeClock()).CheckToken(op, Role::kOperator).ok());
  ASSERT_TRUE(RevokeToken(db_path_, "alice").ok());
  Authenticator fresh(db_path_, FakeClock());
  EXPECT_EQ(fresh.CheckToken(op, Role::kOperator).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(fresh.CheckToken(keep, Role::kOperator).ok());
  // Revoking again, or a name that never had a token: NOT_FOUND.
  EXPECT_EQ(RevokeToken(db_path_, "alice").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(RevokeToken(db_path_, "nobody").code(), absl::StatusCode::kNotFound);
}

TEST_F(AuthTest, RunningAuthenticatorSeesRevocationWithinTheCacheTtl) {
  const std::string op = Create(Role::kOperator, "alice");
  Authenticator auth(db_path_, FakeClock());
  ASSERT_TRUE(auth.CheckToken(op, Role::kOperator).ok());
  ASSERT_TRUE(RevokeToken(db_path_, "alice").ok());
  // Cached briefly...
  now_ += kAuthCacheMs - 1;
  EXPECT_TRUE(auth.CheckToken(op, Role::kOperator).ok());
  // ...and refused once the cache's lifetime (5 s) has passed since it was
  // verified.
  now_ += 1;
  EXPECT_EQ(auth.CheckToken(op, Role::kOperator).status().code(),
            absl::StatusCode::kUnauthenticated);
  // And it stays refused.
  now_ += 60'000;
  EXPECT_EQ(auth.CheckToken(op, Role::kOperator).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, NewTokenIsAcceptedByARunningAuthenticator) {
  Create(Role::kOperator, "alice");
  Authenticator auth(db_path_, FakeClock());
  EXPECT_EQ(auth.CheckToken("aq1_operator_deadbeef", Role::kOperator).status().code(),
            absl::StatusCode::kUnauthenticated);
  const std::string later = Create(Role::kWorker, "w9");
  auto p = auth.CheckToken(later, Role::kWorker);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "w9");
}

TEST_F(AuthTest, MissingDatabaseIsAnErrorNotAPrincipal) {
  Authenticator auth((dir_ / "does-not-exist.db").string(), FakeClock());
  auto p = auth.CheckToken("aq1_operator_x", Role::kOperator);
  EXPECT_FALSE(p.ok());
}

}  // namespace
}  // namespace assessq
