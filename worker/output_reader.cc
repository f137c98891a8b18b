#include "worker/output_reader.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace assessq {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

long OpenAt2(int dirfd, const char* path, int flags, uint64_t resolve) {
  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = static_cast<uint64_t>(flags);
  how.resolve = resolve;
  return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

}  // namespace

absl::StatusOr<std::string> ReadOutputFile(const std::string& dir, const std::string& name,
                                           size_t max_bytes) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    return absl::InvalidArgumentError("output file name must be a plain name");
  Fd d;
  d.fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (d.fd < 0)
    return absl::InternalError(absl::StrCat("open output dir: ", std::strerror(errno)));
  Fd f;
  f.fd = static_cast<int>(OpenAt2(d.fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                                  RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
                                      RESOLVE_NO_XDEV));
  if (f.fd < 0) {
    int e = errno;
    if (e == ENOENT) return absl::NotFoundError(absl::StrCat("no output file '", name, "'"));
    if (e == ELOOP || e == EXDEV)
      return absl::PermissionDeniedError(
          absl::StrCat("output '", name, "' is a symbolic link or crosses a mount; refused"));
    if (e == ENOSYS)
      return absl::InternalError("openat2 is not available on this kernel (needs Linux 5.6)");
    return absl::PermissionDeniedError(
        absl::StrCat("cannot open output '", name, "' safely: ", std::strerror(e)));
  }
  struct stat st;
  if (fstat(f.fd, &st) != 0)
    return absl::InternalError(absl::StrCat("fstat output: ", std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    return absl::PermissionDeniedError(
        absl::StrCat("output '", name, "' is not a regular file (mode ",
                     absl::Hex(st.st_mode & S_IFMT), "); refused"));
  if (st.st_nlink != 1)
    return absl::PermissionDeniedError(absl::StrCat(
        "output '", name, "' has ", st.st_nlink, " links (a hard link); refused"));
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    return absl::OutOfRangeError(absl::StrCat("output '", name, "' is ", st.st_size,
                                              " bytes; the cap is ", max_bytes));
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = read(f.fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat("read output: ", std::strerror(errno)));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  // A file that grew after fstat is read only up to the cap checked above.
  return out;
}

}  // namespace assessq
