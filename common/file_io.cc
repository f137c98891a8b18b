#include "common/file_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace assessq {

absl::Status WriteAll(int fd, absl::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(std::strerror(errno));
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace assessq
