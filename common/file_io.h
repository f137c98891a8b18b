// Writing a whole buffer to a file descriptor (retrying short writes and
// EINTR), for the worker's files that must be written completely or not at
// all (job files, outbox reports). The one syscall loop; callers add what
// the file is to the error.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace assessq {

// Internal with strerror(errno) when a write fails; the descriptor stays open.
absl::Status WriteAll(int fd, absl::string_view data);

}  // namespace assessq
