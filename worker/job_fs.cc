#include "worker/job_fs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/vocabulary.h"

namespace assessq {
namespace fs = std::filesystem;

namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status WriteFile(const std::string& path, const std::string& data, mode_t mode, uid_t uid,
                       gid_t gid) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return Errno(absl::StrCat("create ", path));
  if (auto s = WriteAll(fd, data); !s.ok()) {
    close(fd);
    return absl::InternalError(absl::StrCat("write ", path, ": ", s.message()));
  }
  if (fchown(fd, uid, gid) != 0 || fchmod(fd, mode) != 0) {
    close(fd);
    return Errno(absl::StrCat("chown/chmod ", path));
  }
  close(fd);
  return absl::OkStatus();
}

absl::Status MountTmpfs(const std::string& dir, int64_t mb, mode_t mode, uid_t uid, gid_t gid) {
  char buf[8];  // tmpfs takes the mode in octal
  std::snprintf(buf, sizeof buf, "%o", mode);
  std::string opts = absl::StrCat("size=", mb, "m,nr_inodes=4096,mode=", buf, ",uid=", uid, ",gid=", gid);
  if (mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts.c_str()) != 0)
    return Errno(absl::StrCat("mount tmpfs on ", dir));
  return absl::OkStatus();
}

// The file-mode credential: a regular file of mode 0600 or stricter that is
// not one of the policy's model key files under another path (a hard or
// symbolic link to it). Opened once; the checks are on what was opened.
absl::StatusOr<std::string> ReadCredential(const JobSpec& spec) {
  auto refuse = [&](absl::string_view why) {
    return InputError(absl::StrCat("credential '", spec.credential_name, "': ", why));
  };
  int fd = open(spec.credential_file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return refuse("cannot read its file");
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return refuse("its file is not a regular file");
  for (const auto& key : spec.model_key_files) {
    struct stat kst;
    if (stat(key.c_str(), &kst) == 0 && kst.st_dev == st.st_dev && kst.st_ino == st.st_ino)
      return refuse("its file is a model key file of policy.credentials (a link to it); refused");
  }
  if ((st.st_mode & 077) != 0) return refuse("its file must be mode 0600 or stricter");
  if (st.st_size > (64 << 10)) return refuse("its file is larger than 64 KiB");
  auto out = ReadExactly(fd, static_cast<size_t>(st.st_size));
  if (!out.ok()) return refuse("cannot read its file");
  return *out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobFs>> JobFs::Create(const std::string& jobs_dir,
                                                     const std::string& name,
                                                     const JobSpec& spec,
                                                     const std::string& metadata,
                                                     const std::string& netbridge) {
  std::vector<std::string> ug = absl::StrSplit(spec.user, ':');
  uint32_t uid = 0, gid = 0;
  if (ug.size() != 2 || !absl::SimpleAtoi(ug[0], &uid) || !absl::SimpleAtoi(ug[1], &gid))
    return absl::InvalidArgumentError("job user must be UID:GID");
  // The credential file is checked and read before anything is created.
  absl::StatusOr<std::string> secret;
  if (!spec.credential_file.empty()) {
    secret = ReadCredential(spec);
    if (!secret.ok()) return secret.status();
  }
  std::error_code ec;
  fs::create_directories(jobs_dir, ec);
  chmod(jobs_dir.c_str(), 0700);
  std::unique_ptr<JobFs> j(new JobFs());
  j->root_ = absl::StrCat(jobs_dir, "/", name);
  RemoveStale(j->root_);
  // Every mode below is set explicitly: workerd's umask (0077 under the
  // shipped unit) must not make them 0700, which would keep the container's
  // non-root user out of its own net directory.
  if (mkdir(j->root_.c_str(), 0711) != 0 || chmod(j->root_.c_str(), 0711) != 0)
    return Errno(absl::StrCat("mkdir ", j->root_));
  std::string input = j->root_ + "/input";
  if (mkdir(input.c_str(), 0711) != 0 || chmod(input.c_str(), 0711) != 0)
    return Errno(absl::StrCat("mkdir ", input));
  // World-readable inside a directory only root can list: the container's
  // user can read the file through its bind mount and nothing else.
  if (auto s = WriteFile(input + "/metadata.json", metadata, 0444, 0, 0); !s.ok()) return s;
  j->mounts_.push_back({input + "/metadata.json", kInputPath, true});
  if (!spec.prompt.empty()) {
    if (auto s = WriteFile(input + "/prompt.txt", spec.prompt, 0444, 0, 0); !s.ok()) return s;
    j->mounts_.push_back({input + "/prompt.txt", kPromptPath, true});
  }
  j->out_ = j->root_ + "/out";
  if (mkdir(j->out_.c_str(), 0700) != 0) return Errno(absl::StrCat("mkdir ", j->out_));
  if (auto s = MountTmpfs(j->out_, spec.limits.output_mb, 0700, uid, gid); !s.ok()) return s;
  j->mounts_.push_back({j->out_, kOutputDir, false});
  if (!spec.credential_file.empty()) {
    j->secrets_ = j->root_ + "/secrets";
    if (mkdir(j->secrets_.c_str(), 0700) != 0) return Errno(absl::StrCat("mkdir ", j->secrets_));
    if (auto s = MountTmpfs(j->secrets_, 1, 0500, uid, gid); !s.ok()) return s;
    if (auto s = WriteFile(j->secrets_ + "/" + spec.credential_name, *secret, 0400, uid, gid);
        !s.ok())
      return s;
    if (mount(nullptr, j->secrets_.c_str(), nullptr,
              MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
      return Errno("remount secrets read-only");
    j->mounts_.push_back({j->secrets_, kSecretsDir, true});
  }
  if (spec.network.mode == "gateway") {
    // Only the gateway's socket lives here; root-owned and mounted
    // read-only (connecting to a socket needs no write), so the container's
    // user can connect to it but create nothing beside it.
    std::string net = j->root_ + "/net";
    if (mkdir(net.c_str(), 0711) != 0 || chmod(net.c_str(), 0711) != 0)
      return Errno(absl::StrCat("mkdir ", net));
    j->net_socket_ = net + "/proxy.sock";
    j->mounts_.push_back({net, kNetDir, true});
    if (netbridge.empty() || access(netbridge.c_str(), X_OK) != 0)
      return InfraError(
          absl::StrCat("netbridge binary '", netbridge, "' is missing or not executable"));
    j->mounts_.push_back({netbridge, kNetbridgePath, true});
  }
  return j;
}

void JobFs::RemoveStale(const std::string& dir) {
  for (const char* sub : {"/out", "/secrets"}) {
    std::string p = dir + sub;
    umount2(p.c_str(), MNT_DETACH);
  }
  std::error_code ec;
  // Unmounted above, so this cannot descend into a live tmpfs; and
  // remove_all does not follow symlinks.
  fs::remove_all(dir, ec);
}

JobFs::~JobFs() {
  if (!root_.empty()) RemoveStale(root_);
}

}  // namespace assessq
