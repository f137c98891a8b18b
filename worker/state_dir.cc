#include "worker/state_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/channel.h"

namespace assessq {

bool ValidInstanceId(const std::string& id) {
  if (id.size() != 16) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

absl::StatusOr<StateDirClaim> StateDirClaim::Claim(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("state dir ", dir, ": ", ec.message()));
  chmod(dir.c_str(), 0700);
  std::string lock = dir + "/lock";
  int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return absl::InternalError(absl::StrCat("state dir lock ", lock, ": ", std::strerror(errno)));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(fd);
    if (e == EWOULDBLOCK)
      return absl::FailedPreconditionError(absl::StrCat(
          "another workerd is using the state dir ", dir,
          " (", lock, " is locked); give each workerd its own --state-dir"));
    return absl::InternalError(absl::StrCat("lock ", lock, ": ", std::strerror(e)));
  }
  std::string id_file = dir + "/instance-id";
  std::string id;
  if (auto text = ReadFileToString(id_file, 256); text.ok()) {
    id = std::string(absl::StripAsciiWhitespace(*text));
    if (!ValidInstanceId(id)) {
      close(fd);
      return absl::FailedPreconditionError(absl::StrCat(
          id_file, ": not an instance id (16 hex digits); remove it to make a new one"));
    }
  } else {
    unsigned char raw[8];
    if (getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
      close(fd);
      return absl::InternalError("getrandom failed");
    }
    id = absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(raw), sizeof raw));
    std::string tmp = id_file + ".tmp";
    int w = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    bool ok = w >= 0 && write(w, (id + "\n").data(), id.size() + 1) == static_cast<ssize_t>(id.size() + 1) &&
              fsync(w) == 0;
    if (w >= 0) close(w);
    if (!ok || rename(tmp.c_str(), id_file.c_str()) != 0) {
      close(fd);
      return absl::InternalError(absl::StrCat("write ", id_file, ": ", std::strerror(errno)));
    }
  }
  return StateDirClaim(fd, id);
}

StateDirClaim::~StateDirClaim() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace assessq
