// assessq-test-agent: the stand-in agent of the container tests, built fully
// static for a FROM scratch image. It reads /input/metadata.json and behaves
// as the metadata's "X-Test-Behaviour" field says (default: write a valid
// assessment), so one batch can mix well-behaved jobs with hostile ones:
// exit1, hang, hang_ignore_term, invalid_json, symlink_shadow, hardlink,
// fifo, huge, forkbomb, read_host, escalate, oom, sleep_ms:N, no_output,
// probe_syscalls (the kernel surface the seccomp profile closes, and the
// ordinary work it must leave open), probe_unit (the output filesystem's cap
// and the gateway socket, for the deployed unit's test).
// done_linger (a final Claude Code result line, the output, then it lingers
// with a background child), done_linger_no_output.
// Probes print "LEAK ..." / "ESCALATED ..." when a protection is missing and
// "PROBE-DONE" at the end, so a test can read the log tail; probe_syscalls
// and probe_unit print "PROBE name=ok" or "PROBE name=ERRNO" per attempt.
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/valid_assessment.h"

namespace {

std::string ReadAll(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A schema-valid assessment (see schemas/assessment.schema.json).
std::string ValidAssessment(const nlohmann::json& md, const std::string& key) {
  return aqtest::ValidAssessmentJson(
             {.name = md.value("Name", key),
              .summary = "تقييم تجريبي لمجموعة البيانات أعده وكيل الاختبار اعتمادا على البيانات "
                         "الوصفية وحدها.",
              .strength = "وصف واضح للبيانات ومصدرها",
              .weakness = "لم تحمل عينات فعلية في هذا الاختبار",
              .use = "اختبار خط المعالجة",
              .score = 65,
              .matches = true,
              .breakdown = {70, 60, 70, 60, 60, 60, 65}})
      .dump();
}

bool WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  return static_cast<bool>(out);
}

void Probe(const char* what, bool succeeded) {
  std::printf("%s %s\n", succeeded ? "LEAK" : "denied", what);
}

// "PROBE name=ok" when rc >= 0, else "PROBE name=ENAME" (errno saved by the
// caller). A descriptor that rc names is closed.
const char* ErrnoName(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOENT: return "ENOENT";
    case EFAULT: return "EFAULT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EROFS: return "EROFS";
    case ENODEV: return "ENODEV";
    case EBUSY: return "EBUSY";
    case EDQUOT: return "EDQUOT";
    default: return nullptr;
  }
}
void Report(const char* name, long rc, int err) {
  if (rc >= 0) {
    std::printf("PROBE %s=ok\n", name);
    return;
  }
  const char* n = ErrnoName(err);
  if (n) std::printf("PROBE %s=%s\n", name, n);
  else std::printf("PROBE %s=errno%d\n", name, err);
}
// The result of EXPR, with the errno it set (read after the call).
#define REPORT(name, expr)     \
  do {                         \
    errno = 0;                 \
    long rc_ = (expr);         \
    Report(name, rc_, errno);  \
  } while (0)
// The same for a call that returns a descriptor, closed again.
#define REPORT_FD(name, expr)                     \
  do {                                            \
    errno = 0;                                    \
    long fd_ = (expr);                            \
    int e_ = errno;                               \
    if (fd_ >= 0) close(static_cast<int>(fd_));   \
    Report(name, fd_, e_);                        \
  } while (0)

// clone3 with `flags`: the child exits at once and is reaped.
void Clone3Probe(const char* name, uint64_t flags) {
  clone_args ca{};
  ca.flags = flags;
  ca.exit_signal = SIGCHLD;
  long rc = syscall(SYS_clone3, &ca, sizeof ca);
  int e = errno;
  if (rc == 0) _exit(0);
  if (rc > 0) waitpid(static_cast<pid_t>(rc), nullptr, 0);
  Report(name, rc, e);
}

// Runs `f` in a child (a probe that may succeed in ways the agent must not
// keep, or be killed); "killed-SIG" when a signal ends the child.
template <typename F>
void InChild(const char* name, F f) {
  pid_t p = fork();
  if (p == 0) {
    long rc = f();
    _exit(rc >= 0 ? 0 : (errno & 0x7f) + 1);
  }
  int st = 0;
  if (p < 0 || waitpid(p, &st, 0) != p) {
    Report(name, -1, errno);
    return;
  }
  if (WIFSIGNALED(st)) {
    std::printf("PROBE %s=killed-%d\n", name, WTERMSIG(st));
    return;
  }
  int code = WEXITSTATUS(st);
  Report(name, code == 0 ? 0 : -1, code - 1);
}

// Everything the seccomp profile must refuse, then the ordinary work it must
// allow. The refusals expect EPERM (clone3: ENOSYS).
void ProbeSyscalls() {
  errno = 0;
  {
    io_uring_params params{};
    REPORT_FD("io_uring_setup", syscall(__NR_io_uring_setup, 4, &params));
  }
  REPORT("io_uring_enter", syscall(__NR_io_uring_enter, -1, 0, 0, 0, nullptr, 0));
  REPORT("io_uring_register", syscall(__NR_io_uring_register, -1, 0, nullptr, 0));
  REPORT_FD("socket_vsock", socket(40 /* AF_VSOCK */, SOCK_STREAM, 0));
  // The family in the upper half of the register: the kernel reads an int.
  REPORT_FD("socket_vsock_highbits", syscall(SYS_socket, (1L << 32) | 40L, SOCK_STREAM, 0));
  {
    int sv[2];
    long rc = socketpair(40, SOCK_STREAM, 0, sv);
    int e = errno;
    if (rc == 0) close(sv[0]), close(sv[1]);
    Report("socketpair_vsock", rc, e);
  }
  REPORT_FD("socket_alg", socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0));
  REPORT_FD("socket_netlink_uevent", socket(AF_NETLINK, SOCK_RAW, 15 /* NETLINK_KOBJECT_UEVENT */));
  REPORT_FD("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */));
  {
    unsigned char attr[128] = {};
    unsigned int* a = reinterpret_cast<unsigned int*>(attr);
    a[0] = 2;  // BPF_MAP_TYPE_ARRAY
    a[1] = 4;  // key size
    a[2] = 4;  // value size
    a[3] = 1;  // max entries
    REPORT_FD("bpf", syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr));
  }
  {
    unsigned char attr[128] = {};
    unsigned int* a = reinterpret_cast<unsigned int*>(attr);
    a[0] = 1;    // PERF_TYPE_SOFTWARE
    a[1] = 128;  // size
    REPORT_FD("perf_event_open", syscall(SYS_perf_event_open, attr, 0, -1, -1, 0));
  }
  REPORT("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0));
  REPORT("add_key", syscall(SYS_add_key, "user", "assessq-probe", "x", 1, -3));
  REPORT("request_key", syscall(SYS_request_key, "user", "assessq-probe", nullptr, 0));
  InChild("unshare_user", [] { return static_cast<long>(unshare(CLONE_NEWUSER)); });
  InChild("unshare_net", [] { return static_cast<long>(unshare(CLONE_NEWNET)); });
  REPORT("setns", syscall(SYS_setns, 0, 0));
  InChild("clone_newuser", [] {
    long rc = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (rc == 0) _exit(0);
    if (rc > 0) waitpid(static_cast<pid_t>(rc), nullptr, 0);
    return rc;
  });
  Clone3Probe("clone3_newuser", CLONE_NEWUSER);
  REPORT("mount", mount("none", "/tmp", "tmpfs", 0, nullptr));
  REPORT("umount2", umount2("/tmp", MNT_DETACH));
  REPORT("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
  REPORT("chroot", chroot("/tmp"));
  InChild("ptrace_traceme", [] { return ptrace(PTRACE_TRACEME, 0, nullptr, nullptr); });
  {
    char src[8] = "abc", dst[8] = {};
    iovec local{dst, 4}, remote{src, 4};
    REPORT("process_vm_readv", process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
  }
  REPORT("kexec_load", syscall(SYS_kexec_load, 0, 0, nullptr, 0));
  REPORT("init_module", syscall(SYS_init_module, nullptr, 0, ""));
  REPORT("finit_module", syscall(SYS_finit_module, -1, "", 0));
  REPORT("delete_module", syscall(SYS_delete_module, "assessq_probe", 0));
#if defined(__x86_64__)
  // socket(AF_VSOCK) through the 32-bit system call ABI (int 0x80, i386
  // number 359): a filter for x86-64 only must not let it through.
  InChild("i386_socket_vsock", [] {
    long rc;
    asm volatile("int $0x80" : "=a"(rc) : "a"(359), "b"(40), "c"(1), "d"(0) : "memory");
    if (rc < 0 && rc > -4096) {
      errno = static_cast<int>(-rc);
      return -1L;
    }
    return rc;
  });
#endif

  // Ordinary work.
  {
    int ok = 0;
    std::thread t([&] { ok = 1; });
    t.join();
    Report("thread", ok ? 0 : -1, EINVAL);
  }
  InChild("fork", [] { return 0L; });
  {
    // fork + exec of this binary (exits 2: no such input)
    pid_t p = fork();
    if (p == 0) {
      execl("/proc/self/exe", "agent", "--input", "/nonexistent", static_cast<char*>(nullptr));
      _exit(120);
    }
    int st = 0;
    waitpid(p, &st, 0);
    Report("fork_exec", WIFEXITED(st) && WEXITSTATUS(st) == 2 ? 0 : -1, EINVAL);
  }
  {
    // posix_spawn: glibc tries clone3 first and falls back to clone on ENOSYS.
    pid_t p = -1;
    char a0[] = "agent", a1[] = "--input", a2[] = "/nonexistent";
    char* args[] = {a0, a1, a2, nullptr};
    int rc = posix_spawn(&p, "/proc/self/exe", nullptr, nullptr, args, environ);
    int st = 0;
    if (rc == 0) waitpid(p, &st, 0);
    Report("posix_spawn", rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2 ? 0 : -1, rc ? rc : EINVAL);
  }
  Clone3Probe("clone3_plain", 0);
  {
    std::string p = "/tmp/probe-file";
    REPORT("files", (WriteFile(p, "data") && ReadAll(p) == "data" &&
                     rename(p.c_str(), "/tmp/probe-2") == 0 && unlink("/tmp/probe-2") == 0 &&
                     mkfifo("/tmp/probe-fifo", 0600) == 0 && unlink("/tmp/probe-fifo") == 0)
                        ? 0
                        : -1);
    struct statx sx;
    REPORT("statx", statx(AT_FDCWD, "/tmp", 0, STATX_BASIC_STATS, &sx));
  }
  {
    int sv[2];
    long rc = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int e = errno;
    if (rc == 0) {
      rc = write(sv[0], "x", 1) == 1 && read(sv[1], &e, 1) == 1 ? 0 : -1;
      close(sv[0]), close(sv[1]);
    }
    Report("socketpair_unix", rc, e);
  }
  {
    // AF_UNIX listener and client on a path.
    int l = socket(AF_UNIX, SOCK_STREAM, 0), c = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "/tmp/probe.sock");
    unlink(a.sun_path);
    long rc = (l >= 0 && c >= 0 && bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
               listen(l, 1) == 0 && connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0)
                  ? 0
                  : -1;
    int e = errno;
    if (l >= 0) close(l);
    if (c >= 0) close(c);
    unlink(a.sun_path);
    Report("socket_unix", rc, e);
  }
  {
    // AF_INET on the container's own loopback: listen, connect, send.
    int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    long rc = (l >= 0 && c >= 0 && bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
               listen(l, 1) == 0 && getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) == 0 &&
               connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && send(c, "x", 1, 0) == 1)
                  ? 0
                  : -1;
    int e = errno;
    if (l >= 0) close(l);
    if (c >= 0) close(c);
    Report("socket_inet", rc, e);
  }
  REPORT_FD("socket_inet6", socket(AF_INET6, SOCK_STREAM, 0));
  REPORT_FD("socket_netlink", socket(AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */));
  REPORT_FD("eventfd", eventfd(0, EFD_CLOEXEC));
  REPORT_FD("memfd_create", syscall(SYS_memfd_create, "probe", 0));
  {
    char b[8];
    REPORT("getrandom", syscall(SYS_getrandom, b, sizeof b, 0));
  }
  {
    // A JIT's executable mapping.
    void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int e = errno;
    if (m != MAP_FAILED) munmap(m, 4096);
    Report("mmap_exec", m == MAP_FAILED ? -1 : 0, e);
  }
  std::printf("PROBE-DONE\n");
}

// The deployed unit's concerns: the output directory is the size-capped
// tmpfs (a write past the cap fails with ENOSPC), and the gateway socket is
// reachable by the agent's (non-root) user.
void ProbeUnit(const std::string& dir) {
  struct statfs sf {};
  if (statfs(dir.c_str(), &sf) == 0)
    std::printf("PROBE output_fs=%s size=%lld\n", sf.f_type == 0x01021994 ? "tmpfs" : "other",
                static_cast<long long>(sf.f_blocks) * sf.f_bsize);
  std::string fill = dir + "/fill";
  int fd = open(fill.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  long long total = 0;
  int err = 0;
  if (fd < 0) {
    err = errno;
  } else {
    std::string chunk(64 << 10, 'F');
    for (int i = 0; i < 4096; ++i) {  // at most 256 MiB
      ssize_t n = write(fd, chunk.data(), chunk.size());
      if (n < 0) {
        err = errno;
        break;
      }
      total += n;
    }
    close(fd);
  }
  unlink(fill.c_str());
  if (err) std::printf("PROBE fill_output=%s bytes=%lld\n", ErrnoName(err) ? ErrnoName(err) : "other", total);
  else std::printf("PROBE fill_output=ok bytes=%lld\n", total);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "/run/assessq/net/proxy.sock");
  long rc = s >= 0 ? connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) : -1;
  int e = errno;
  if (s >= 0) close(s);
  Report("gateway_connect", rc, e);
  std::printf("PROBE-DONE\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string input = "/input/metadata.json", output = "/output/assessment.json", key = "x";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "--input") input = argv[i + 1];
    else if (f == "--output") output = argv[i + 1];
    else if (f == "--dataset") key = argv[i + 1];
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto md = nlohmann::json::parse(ReadAll(input), nullptr, false);
  if (md.is_discarded() || !md.is_object()) {
    std::fprintf(stderr, "test-agent: cannot parse %s\n", input.c_str());
    return 2;
  }
  std::string b = md.value("X-Test-Behaviour", "valid");
  std::printf("test-agent: dataset %s behaviour %s uid %d\n", key.c_str(), b.c_str(), getuid());
  std::string dir = output.substr(0, output.rfind('/'));

  if (b == "valid") return WriteFile(output, ValidAssessment(md, key)) ? 0 : 1;
  if (b.rfind("sleep_ms:", 0) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(b.c_str() + 9)));
    return WriteFile(output, ValidAssessment(md, key)) ? 0 : 1;
  }
  if (b.rfind("ticks:", 0) == 0) {
    // Output over time, for `assessctl logs -f`: "tick I" every 300 ms.
    int n = std::atoi(b.c_str() + 6);
    for (int i = 0; i < n; ++i) {
      std::printf("tick %d\n", i);
      if (i == n / 2) std::fprintf(stderr, "halfway on stderr\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    return WriteFile(output, ValidAssessment(md, key)) ? 0 : 1;
  }
  if (b == "done_linger" || b == "done_linger_no_output") {
    // Claude Code when a Bash command it moved to the background outlives
    // its final turn: the result event is printed (and, for done_linger, the
    // output written), but the process waits on for its background child.
    if (b == "done_linger" && !WriteFile(output, ValidAssessment(md, key))) return 1;
    if (fork() == 0) {
      for (;;) pause();
    }
    std::printf("{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"test-agent\"}\n");
    std::printf("{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,"
                "\"num_turns\":1,\"result\":\"done\",\"session_id\":\"test-agent\"}\n");
    for (;;) pause();
  }
  if (b == "exit1") return 1;
  if (b == "no_output") return 0;
  if (b == "hang") {
    for (;;) pause();  // SIGTERM's default action ends it
  }
  if (b == "hang_ignore_term") {
    signal(SIGTERM, SIG_IGN);
    for (;;) pause();
  }
  if (b == "invalid_json") return WriteFile(output, "{\"الاسم\": not json") ? 0 : 1;
  if (b == "schema_invalid") return WriteFile(output, "{\"score\": 101}") ? 0 : 1;
  if (b == "symlink_shadow") {
    if (symlink("/etc/shadow", output.c_str()) != 0) std::perror("symlink");
    return 0;
  }
  if (b == "hardlink") {
    std::string other = dir + "/other.json";
    WriteFile(other, ValidAssessment(md, key));
    if (link(other.c_str(), output.c_str()) != 0) std::perror("link");
    return 0;
  }
  if (b == "fifo") {
    if (mkfifo(output.c_str(), 0644) != 0) std::perror("mkfifo");
    return 0;
  }
  if (b == "huge") {
    // 2 GB, in 1 MiB writes; the output filesystem's cap stops it early.
    int fd = open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::string chunk(1 << 20, 'A');
    long long total = 0;
    for (int i = 0; i < 2048 && fd >= 0; ++i) {
      ssize_t n = write(fd, chunk.data(), chunk.size());
      if (n <= 0) break;
      total += n;
    }
    std::printf("wrote %lld bytes\n", total);
    if (fd >= 0) close(fd);
    return 0;
  }
  if (b == "forkbomb") {
    int made = 0;
    for (int i = 0; i < 100000; ++i) {
      pid_t p = fork();
      if (p == 0) {
        pause();
        _exit(0);
      }
      if (p < 0) break;
      ++made;
    }
    std::printf("forked %d processes before the limit\n", made);
    return 3;
  }
  if (b == "read_host") {
    // PID 1 is the container's own init (private PID namespace), so its root
    // is a leak only if it is not our own root.
    struct stat own{}, pid1{};
    bool pid1_foreign = stat("/", &own) == 0 && stat("/proc/1/root/", &pid1) == 0 &&
                        (own.st_dev != pid1.st_dev || own.st_ino != pid1.st_ino);
    Probe("/proc/1/root is the host's root", pid1_foreign);
    for (const char* p : {"/etc/shadow", "/var/run/docker.sock", "/run/docker.sock", "/host",
                          "/proc/sysrq-trigger"}) {
      int fd = open(p, O_RDONLY | O_NONBLOCK);
      Probe(p, fd >= 0 && std::strcmp(p, "/proc/sysrq-trigger") != 0);
      if (fd >= 0) close(fd);
    }
    int w = open("/proc/sysrq-trigger", O_WRONLY);
    Probe("write /proc/sysrq-trigger", w >= 0);
    if (w >= 0) close(w);
    std::printf("PROBE-DONE\n");
    return WriteFile(output, ValidAssessment(md, key)) ? 0 : 1;
  }
  if (b == "escalate") {
    Probe("setuid(0)", setuid(0) == 0);
    Probe("setgid(0)", setgid(0) == 0);
    Probe("mount tmpfs", mount("none", "/tmp", "tmpfs", 0, nullptr) == 0);
    Probe("chroot", chroot("/tmp") == 0);
    int fd = open("/escalate-test", O_WRONLY | O_CREAT, 0644);
    Probe("write to root filesystem", fd >= 0);
    std::string status = ReadAll("/proc/self/status");
    auto pos = status.find("CapEff:");
    std::string capeff = pos == std::string::npos ? "" : status.substr(pos + 7, 20);
    bool caps = capeff.find_first_not_of("0\t \n") != std::string::npos &&
                capeff.find_first_not_of("0\t \n") < capeff.find('\n');
    Probe("effective capabilities", caps);
    pos = status.find("NoNewPrivs:");
    Probe("NoNewPrivs off", pos == std::string::npos || status.substr(pos + 11, 3).find('1') == std::string::npos);
    std::printf("PROBE-DONE\n");
    return WriteFile(output, ValidAssessment(md, key)) ? 0 : 1;
  }
  if (b == "probe_syscalls") {
    ProbeSyscalls();
    return WriteFile(output, ValidAssessment(md, key)) ? 0 : 1;
  }
  if (b == "probe_unit") {
    ProbeUnit(dir);
    return WriteFile(output, ValidAssessment(md, key)) ? 0 : 1;
  }
  if (b == "oom") {
    std::vector<char*> blocks;
    for (int i = 0; i < 100000; ++i) {
      char* p = static_cast<char*>(std::malloc(16 << 20));
      if (!p) break;
      std::memset(p, 1, 16 << 20);
      blocks.push_back(p);
    }
    return 4;
  }
  std::fprintf(stderr, "test-agent: unknown behaviour %s\n", b.c_str());
  return 2;
}
