// Whole-buffer reads and writes on a file descriptor (retrying short reads
// and writes and EINTR), for the worker's files that must be read or
// written completely (credentials, job files, outbox reports). The one
// syscall loop each; callers add what the file is to the error.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace assessq {

// Internal with strerror(errno) when a write fails; the descriptor stays open.
absl::Status WriteAll(int fd, absl::string_view data);
// Exactly `n` bytes; OutOfRange if the file ends first, Internal on a read error.
absl::StatusOr<std::string> ReadExactly(int fd, size_t n);

}  // namespace assessq
