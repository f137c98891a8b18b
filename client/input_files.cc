// Submitted metadata files, read without leaving their folder (see
// input_files.h).
#include "client/input_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"

namespace assessq::cli {
namespace fs = std::filesystem;

namespace {

InputKind KindOf(mode_t m) {
  if (S_ISREG(m)) return InputKind::kRegular;
  if (S_ISLNK(m)) return InputKind::kSymlink;
  if (S_ISDIR(m)) return InputKind::kDirectory;
  if (S_ISFIFO(m)) return InputKind::kFifo;
  if (S_ISSOCK(m)) return InputKind::kSocket;
  if (S_ISCHR(m)) return InputKind::kCharDevice;
  if (S_ISBLK(m)) return InputKind::kBlockDevice;
  return InputKind::kOther;
}

std::string Errno(int e) { return std::strerror(e); }

// Reads an open regular file to its end, at most max_bytes.
absl::StatusOr<std::string> ReadFd(int fd, size_t max_bytes) {
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::DataLossError(absl::StrCat("read error: ", Errno(errno)));
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes)
      return absl::InvalidArgumentError(absl::StrCat("larger than ", max_bytes, " bytes"));
  }
}

// After open: still a regular file (a fifo or device swapped in meanwhile is
// refused here, before any read).
absl::Status CheckOpened(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return absl::InternalError(absl::StrCat("fstat: ", Errno(errno)));
  if (!S_ISREG(st.st_mode))
    return absl::FailedPreconditionError(
        absl::StrCat("not a regular file (", InputKindName(KindOf(st.st_mode)), "); not read"));
  return absl::OkStatus();
}

}  // namespace

const char* InputKindName(InputKind k) {
  switch (k) {
    case InputKind::kRegular: return "regular file";
    case InputKind::kSymlink: return "symbolic link";
    case InputKind::kDirectory: return "directory";
    case InputKind::kFifo: return "fifo";
    case InputKind::kSocket: return "socket";
    case InputKind::kCharDevice: return "character device";
    case InputKind::kBlockDevice: return "block device";
    case InputKind::kOther: return "special file";
    case InputKind::kMissing: return "missing";
  }
  return "?";
}

bool IsWithin(const fs::path& root, const fs::path& target) {
  auto r = root.begin(), t = target.begin();
  for (; r != root.end(); ++r, ++t) {
    if (r->empty()) continue;  // a trailing separator
    if (t == target.end() || *r != *t) return false;
  }
  return true;
}

absl::Status DecideInput(const InputFacts& f, bool follow_links) {
  if (f.entry == InputKind::kMissing) return absl::NotFoundError("no such file");
  if (f.entry != InputKind::kSymlink) {
    if (f.entry != InputKind::kRegular)
      return absl::FailedPreconditionError(
          absl::StrCat("not a regular file (", InputKindName(f.entry), "); not read"));
    return absl::OkStatus();
  }
  if (f.target == InputKind::kMissing)
    return absl::NotFoundError("symbolic link to a file that does not exist");
  if (!follow_links && !IsWithin(f.root, f.resolved))
    return absl::PermissionDeniedError(absl::StrCat(
        "symbolic link to ", f.resolved.string(), ", outside the submitted folder ",
        f.root.string(), "; not read (--follow-links reads it)"));
  if (f.target != InputKind::kRegular)
    return absl::FailedPreconditionError(absl::StrCat(
        "symbolic link to a ", InputKindName(f.target), ", not a regular file; not read"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadInputFile(const std::string& root, const std::string& path,
                                          bool follow_links, size_t max_bytes) {
  InputFacts f;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT && errno != ENOTDIR)
      return absl::UnavailableError(absl::StrCat("cannot read: ", Errno(errno)));
  } else {
    f.entry = KindOf(st.st_mode);
  }
  std::error_code ec;
  f.root = fs::canonical(root, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("folder ", root, ": ", ec.message()));
  if (f.entry == InputKind::kSymlink) {
    if (::stat(path.c_str(), &st) == 0) f.target = KindOf(st.st_mode);
    f.resolved = fs::canonical(path, ec);
    if (ec) f.target = InputKind::kMissing;
  } else if (f.entry != InputKind::kMissing) {
    f.target = f.entry;
    f.resolved = fs::canonical(path, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("cannot resolve: ", ec.message()));
  }
  if (auto s = DecideInput(f, follow_links); !s.ok()) return s;

  if (follow_links && !IsWithin(f.root, f.resolved)) {
    // Allowed to leave the folder: opened by its resolved path, still never
    // blocking on a fifo and checked to be a regular file once open.
    int fd = ::open(f.resolved.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot open: ", Errno(errno)));
    absl::Cleanup close_fd = [fd] { ::close(fd); };
    if (auto s = CheckOpened(fd); !s.ok()) return s;
    return ReadFd(fd, max_bytes);
  }

  // Inside the folder: walk from it, one component at a time, following no
  // link; anything swapped in since the check above fails here.
  fs::path rel = f.resolved.lexically_relative(f.root);
  std::vector<std::string> parts;
  for (const auto& p : rel) parts.push_back(p.string());
  if (parts.empty() || parts.back() == "." || parts.front() == "..")
    return absl::FailedPreconditionError("not a file inside the submitted folder; not read");
  int dir = ::open(f.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return absl::UnavailableError(absl::StrCat("cannot open its folder: ", Errno(errno)));
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    int next = ::openat(dir, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    ::close(dir);
    if (next < 0)
      return absl::FailedPreconditionError(absl::StrCat(
          "folder ", parts[i], " changed while being read (", Errno(e), "); not read"));
    dir = next;
  }
  int fd = ::openat(dir, parts.back().c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  int e = errno;
  ::close(dir);
  if (fd < 0) {
    if (e == ELOOP)
      return absl::FailedPreconditionError("became a symbolic link while being read; not read");
    return absl::UnavailableError(absl::StrCat("cannot open: ", Errno(e)));
  }
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  if (auto s = CheckOpened(fd); !s.ok()) return s;
  return ReadFd(fd, max_bytes);
}

}  // namespace assessq::cli
