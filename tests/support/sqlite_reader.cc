#include "tests/support/sqlite_reader.h"

#include <sstream>
#include <stdexcept>

namespace aqtest {

SqliteReader::SqliteReader(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    std::string err = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("open " + path + ": " + err);
  }
  sqlite3_busy_timeout(db_, 5000);
}

SqliteReader::~SqliteReader() { sqlite3_close(db_); }

std::vector<std::vector<std::string>> SqliteReader::Rows(const std::string& sql,
                                                         const std::vector<int64_t>& binds) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
    throw std::runtime_error("prepare: " + std::string(sqlite3_errmsg(db_)) + " in " + sql);
  for (size_t i = 0; i < binds.size(); ++i)
    sqlite3_bind_int64(st, static_cast<int>(i + 1), binds[i]);
  std::vector<std::vector<std::string>> out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      const unsigned char* t = sqlite3_column_text(st, c);
      row.push_back(t ? reinterpret_cast<const char*>(t) : "NULL");
    }
    out.push_back(std::move(row));
  }
  std::string err = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db_);
  sqlite3_finalize(st);
  if (!err.empty()) throw std::runtime_error("step: " + err + " in " + sql);
  return out;
}

int64_t SqliteReader::Int(const std::string& sql, const std::vector<int64_t>& binds) {
  auto rows = Rows(sql, binds);
  if (rows.empty() || rows[0].empty() || rows[0][0] == "NULL")
    throw std::runtime_error("no value from " + sql);
  return std::stoll(rows[0][0]);
}

std::string DumpRows(const std::vector<std::vector<std::string>>& rows, size_t max) {
  std::ostringstream o;
  for (size_t i = 0; i < rows.size() && i < max; ++i) {
    for (const auto& c : rows[i]) o << c << " | ";
    o << "\n";
  }
  if (rows.size() > max) o << "... (" << rows.size() << " rows)\n";
  return o.str();
}

}  // namespace aqtest
