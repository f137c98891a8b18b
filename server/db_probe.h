// The health probe of the coordinator's database: is the file the engine
// writes still there, readable and the same file? Each Check() opens its own
// fresh read-only SQLite connection to the path (the engine's and the read
// pool's long-open handles keep working on a file that was deleted, renamed
// or made unreadable, so they cannot tell), reads schema_version, and checks
// the path still names the file (device, inode) it named when the probe was
// made. Used by the coordinator's health thread, never the engine thread.
// The identity comparison is pure; Check() is the I/O.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace assessq {

struct FileIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileIdentity&) const = default;
};

// OK when `now` is `expected`; FailedPrecondition naming `path` otherwise.
absl::Status SameFile(const std::string& path, FileIdentity expected, FileIdentity now);

// The identity of the file at `path` (stat follows links, as SQLite does).
absl::StatusOr<FileIdentity> IdentityOf(const std::string& path);

class DbProbe {
 public:
  // Records the identity of the database file as it is now.
  static absl::StatusOr<DbProbe> Create(std::string path);
  // OK while the database answers on a fresh connection and is the same file.
  absl::Status Check() const;
  const std::string& path() const { return path_; }

 private:
  DbProbe(std::string path, FileIdentity id) : path_(std::move(path)), id_(id) {}
  std::string path_;
  FileIdentity id_;
};

}  // namespace assessq
