// Reads a coordinator's SQLite file from a test, next to the running daemon
// (WAL lets it), to check invariants on what was stored: every row as text,
// or one integer. Throws std::runtime_error naming the SQL on any failure, so
// a broken query fails the test loudly instead of reading as "no rows".
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <vector>

namespace aqtest {

class SqliteReader {
 public:
  explicit SqliteReader(const std::string& path);
  ~SqliteReader();
  SqliteReader(const SqliteReader&) = delete;
  SqliteReader& operator=(const SqliteReader&) = delete;

  // Every row, every column as text ("NULL" for NULL); `binds` are ?1, ?2...
  std::vector<std::vector<std::string>> Rows(const std::string& sql,
                                             const std::vector<int64_t>& binds = {});
  // The first column of the first row; throws when there is none or NULL.
  int64_t Int(const std::string& sql, const std::vector<int64_t>& binds = {});

 private:
  sqlite3* db_ = nullptr;
};

// Up to `max` rows, one per line, for failure messages.
std::string DumpRows(const std::vector<std::vector<std::string>>& rows, size_t max = 20);

}  // namespace aqtest
