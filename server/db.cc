#include "absl/strings/string_view.h"
#include "server/db.h"

#include <mutex>

#include "absl/strings/str_cat.h"

namespace assessq {

Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    if (s_) sqlite3_finalize(s_);
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}

Stmt::~Stmt() {
  if (s_) sqlite3_finalize(s_);
}

Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, double v) {
  sqlite3_bind_double(s_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, absl::string_view v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindBlob(int i, absl::string_view v) {
  sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}

absl::StatusOr<bool> Stmt::Step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(s_);
  auto code = (rc == SQLITE_BUSY || rc == SQLITE_LOCKED || rc == SQLITE_IOERR ||
               rc == SQLITE_FULL)
                  ? absl::StatusCode::kUnavailable
                  : absl::StatusCode::kInternal;
  return absl::Status(code, absl::StrCat("sqlite: ", sqlite3_errmsg(db), " in: ",
                                         sqlite3_sql(s_)));
}

absl::Status Stmt::Run() {
  while (true) {
    auto r = Step();
    if (!r.ok()) return r.status();
    if (!*r) return absl::OkStatus();
  }
}

void Stmt::Reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(s_, col);
  int n = sqlite3_column_bytes(s_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

absl::StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& path, Options opt) {
  // Before SQLite's first use: no global memory statistics, so allocations
  // take no process-wide mutex (every connection here is used by one thread
  // at a time, SQLITE_OPEN_NOMUTEX).
  static std::once_flag configured;
  std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX |
              (opt.read_only ? SQLITE_OPEN_READONLY
                             : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
    if (raw) sqlite3_close(raw);
    return absl::UnavailableError(absl::StrCat("open database ", path, ": ", msg));
  }
  std::unique_ptr<Db> db(new Db(raw));
  sqlite3_busy_timeout(raw, 5000);
  sqlite3_extended_result_codes(raw, 1);
  if (!opt.read_only) {
    if (auto s = db->Exec("PRAGMA journal_mode=WAL"); !s.ok()) return s;
  }
  if (auto s = db->Exec(opt.synchronous_full ? "PRAGMA synchronous=FULL"
                                             : "PRAGMA synchronous=NORMAL");
      !s.ok())
    return s;
  if (auto s = db->Exec("PRAGMA foreign_keys=ON"); !s.ok()) return s;
  if (auto s = db->Exec("PRAGMA temp_store=MEMORY"); !s.ok()) return s;
  return db;
}

Db::~Db() {
  cache_.clear();
  sqlite3_close_v2(db_);
}

absl::Status Db::Error(absl::string_view what) const {
  return absl::InternalError(absl::StrCat(what, ": ", sqlite3_errmsg(db_)));
}

absl::Status Db::Exec(absl::string_view sql) {
  char* err = nullptr;
  std::string q(sql);
  int rc = sqlite3_exec(db_, q.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    auto code = (rc & 0xff) == SQLITE_BUSY ? absl::StatusCode::kUnavailable
                                           : absl::StatusCode::kInternal;
    return absl::Status(code, absl::StrCat("sqlite: ", msg, " in: ", q.substr(0, 200)));
  }
  return absl::OkStatus();
}

void Db::ResetAll() {
  for (auto& [sql, st] : cache_)
    if (st->Busy()) st->Reset();
}

absl::StatusOr<Stmt*> Db::Prepare(absl::string_view sql) {
  const std::string_view key(sql.data(), sql.size());
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    it->second->Reset();
    return it->second.get();
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s, nullptr) !=
      SQLITE_OK)
    return absl::InternalError(
        absl::StrCat("sqlite prepare: ", sqlite3_errmsg(db_), " in: ", sql));
  auto [pos, _] = cache_.emplace(std::string(key), std::make_unique<Stmt>(s));
  return pos->second.get();
}

absl::Status Db::Run(absl::string_view sql) {
  auto st = Prepare(sql);
  if (!st.ok()) return st.status();
  absl::Status s = (*st)->Run();
  (*st)->Reset();
  return s;
}

}  // namespace assessq
