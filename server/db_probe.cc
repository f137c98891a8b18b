#include "server/db_probe.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace assessq {

absl::Status SameFile(const std::string& path, FileIdentity expected, FileIdentity now) {
  if (expected == now) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      path, " now names another file than the database this coordinator opened (inode ",
      expected.ino, " -> ", now.ino, ")"));
}

absl::StatusOr<FileIdentity> IdentityOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  return FileIdentity{st.st_dev, st.st_ino};
}

absl::StatusOr<DbProbe> DbProbe::Create(std::string path) {
  auto id = IdentityOf(path);
  if (!id.ok()) return id.status();
  return DbProbe(std::move(path), *id);
}

absl::Status DbProbe::Check() const {
  // Read-only, no create: a missing file is an error, not a new empty database.
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  absl::Status s;
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(db, 1000);
    sqlite3_stmt* st = nullptr;
    rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM schema_version", -1, &st, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) rc = SQLITE_OK;
    sqlite3_finalize(st);
  }
  if (rc != SQLITE_OK)
    s = absl::UnavailableError(absl::StrCat("database ", path_, ": ",
                                            db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
  sqlite3_close_v2(db);
  if (!s.ok()) return s;
  auto now = IdentityOf(path_);
  if (!now.ok()) return now.status();
  return SameFile(path_, id_, *now);
}

}  // namespace assessq
