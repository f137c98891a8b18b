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

absl::StatusOr<std::string> ReadExactly(int fd, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, out.data() + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return absl::InternalError(std::strerror(errno));
    if (r == 0) return absl::OutOfRangeError("the file ended early");
    got += static_cast<size_t>(r);
  }
  return out;
}

}  // namespace assessq
