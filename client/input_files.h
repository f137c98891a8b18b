// Reading the metadata files `assessctl submit` was given, without reading
// outside them: a file found in a submitted folder (or named on the command
// line: its folder is then the one it is in) is read only if it is a regular
// file there. A symbolic link is read only if what it points to is a regular
// file inside the same submitted folder; one that leaves the folder is
// refused, naming where it points, unless --follow-links. Fifos, sockets,
// devices and directories are refused without being opened. The file is
// opened from the folder one path component at a time with O_NOFOLLOW (and
// O_NONBLOCK), and checked again with fstat, so a link or fifo swapped in
// after the check is refused, never followed or waited on. DecideInput is
// the pure decision (unit-tested); ReadInputFile does the syscalls.
#pragma once

#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace assessq::cli {

enum class InputKind { kRegular, kSymlink, kDirectory, kFifo, kSocket, kCharDevice,
                       kBlockDevice, kOther, kMissing };
const char* InputKindName(InputKind k);

// Whether `target` (absolute, no links, no . or ..) is `root` or below it.
bool IsWithin(const std::filesystem::path& root, const std::filesystem::path& target);

struct InputFacts {
  InputKind entry = InputKind::kMissing;   // the entry itself (lstat)
  InputKind target = InputKind::kMissing;  // what it resolves to (stat)
  std::filesystem::path root;              // the submitted folder, resolved
  std::filesystem::path resolved;          // the entry, links resolved
};

// OK when the file may be read; otherwise why not (without the file's
// name, which the caller puts first).
absl::Status DecideInput(const InputFacts& f, bool follow_links);

// The content of `path`, found in the submitted folder `root`, under the
// rules above; at most `max_bytes` ("larger than N bytes" past it).
absl::StatusOr<std::string> ReadInputFile(const std::string& root, const std::string& path,
                                          bool follow_links, size_t max_bytes);

}  // namespace assessq::cli
