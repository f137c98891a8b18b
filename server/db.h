// A thin RAII layer over the SQLite C API: a connection with the pragmas the
// coordinator relies on (WAL, synchronous=FULL, foreign keys, busy timeout),
// and prepared statements with typed binds and columns. Every failure is an
// absl::Status carrying SQLite's message; nothing throws.
#pragma once

#include "absl/strings/string_view.h"
#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <functional>
#include <string_view>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace assessq {

class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt(Stmt&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept;
  ~Stmt();

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, int v) { return Bind(i, static_cast<int64_t>(v)); }
  Stmt& Bind(int i, double v);
  Stmt& Bind(int i, absl::string_view v);
  Stmt& Bind(int i, const char* v) { return Bind(i, absl::string_view(v)); }
  Stmt& Bind(int i, const std::string& v) { return Bind(i, absl::string_view(v)); }
  Stmt& BindBlob(int i, absl::string_view v);
  Stmt& BindNull(int i);
  template <typename T>
  Stmt& Bind(int i, const std::optional<T>& v) {
    return v ? Bind(i, *v) : BindNull(i);
  }

  // Steps once: true if a row is ready, false when done.
  absl::StatusOr<bool> Step();
  // Steps to completion (for writes).
  absl::Status Run();
  void Reset();
  // True while stepped and not yet reset (a read may be open).
  bool Busy() const { return s_ != nullptr && sqlite3_stmt_busy(s_) != 0; }

  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  double Double(int col) const { return sqlite3_column_double(s_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string Text(int col) const;

 private:
  sqlite3_stmt* s_ = nullptr;
};

class Db {
 public:
  struct Options {
    bool read_only = false;
    bool synchronous_full = true;
  };
  static absl::StatusOr<std::unique_ptr<Db>> Open(const std::string& path, Options opt);
  ~Db();

  absl::Status Exec(absl::string_view sql);
  // Prepared statements are cached per connection (looked up by the SQL text
  // without copying it); the returned statement is reset and has its
  // bindings cleared.
  absl::StatusOr<Stmt*> Prepare(absl::string_view sql);
  // One statement without parameters or rows (BEGIN, SAVEPOINT, COMMIT...),
  // prepared once: unlike Exec, not parsed again on every call.
  absl::Status Run(absl::string_view sql);
  // Resets every cached statement, ending any read they keep open; call
  // before COMMIT so a half-stepped SELECT cannot pin an old snapshot.
  void ResetAll();
  int64_t LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }
  absl::Status Error(absl::string_view what) const;
  sqlite3* raw() { return db_; }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::unique_ptr<Stmt>, SqlHash, std::equal_to<>> cache_;
};

// Runs `fn` inside BEGIN IMMEDIATE ... COMMIT, rolling back on error.
template <typename Fn>
absl::Status InTransaction(Db& db, Fn&& fn) {
  if (auto s = db.Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = fn();
  if (!s.ok()) {
    (void)db.Exec("ROLLBACK");
    return s;
  }
  return db.Exec("COMMIT");
}

}  // namespace assessq
