// Reads the one file the agent was asked to write, without trusting anything
// about the output directory: openat2 with RESOLVE_BENEATH, NO_SYMLINKS,
// NO_MAGICLINKS and NO_XDEV, O_NOFOLLOW|O_NONBLOCK, then fstat must show a
// regular file with exactly one link and a size under the cap. A symlink, a
// FIFO, a hard link, a device, an oversized or missing file each fails with a
// reason, and nothing else is ever opened or read.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace assessq {

// kNotFound: missing; kPermissionDenied: unsafe kind of file; kOutOfRange:
// too large; kInternal: I/O. The message says which.
absl::StatusOr<std::string> ReadOutputFile(const std::string& dir, const std::string& name,
                                           size_t max_bytes);

}  // namespace assessq
