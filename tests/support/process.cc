#include "tests/support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace aqtest {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void Throw(const std::string& what) { throw std::runtime_error(what); }

// A copy of this process's environment without ASSESSQ_*, plus `extra`.
std::vector<std::string> ChildEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    if (kv.rfind("ASSESSQ_", 0) == 0) continue;
    env.push_back(kv);
  }
  for (const auto& kv : extra) env.push_back(kv);
  return env;
}

struct CArgs {
  std::vector<std::string> store;
  std::vector<char*> ptrs;
  explicit CArgs(const std::vector<std::string>& v) : store(v) {
    for (auto& s : store) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
  char** get() { return ptrs.data(); }
};

// fork + execve with stdin from /dev/null and stdout/stderr on `out_fd` and
// `err_fd`. Only async-signal-safe calls between fork and exec (the test
// process has gRPC threads).
pid_t SpawnFds(const std::vector<std::string>& argv, int out_fd, int err_fd,
               const std::vector<std::string>& env) {
  if (argv.empty()) Throw("spawn: empty argv");
  CArgs args(argv);
  CArgs envp(ChildEnv(env));
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) Throw(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, nullptr);
    int in = open("/dev/null", O_RDONLY);
    if (in < 0) _exit(126);
    dup2(in, 0);
    dup2(out_fd, 1);  // out_fd, err_fd > 2: stdin/out/err are open in the parent
    dup2(err_fd, 2);
    for (int fd = 3; fd < 1024; ++fd) close(fd);
    execve(args.get()[0], args.get(), envp.get());
    _exit(127);
  }
  return pid;
}

// Waits for `pid` up to timeout_ms; the raw wait status, or empty.
std::optional<int> WaitPid(pid_t pid, int timeout_ms) {
  std::optional<int> status;
  PollUntil(
      [&] {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) status = st;
        return r == pid || (r < 0 && errno != EINTR);
      },
      timeout_ms, 5);
  return status;
}

int DecodeStatus(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return -1000;
}

std::string Slurp(int fd) {
  std::string s;
  lseek(fd, 0, SEEK_SET);
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  close(fd);
  return s;
}

}  // namespace

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool PollUntil(const std::function<bool()>& pred, int timeout_ms, int interval_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));  // the poll interval
  }
}

// ------------------------------------------------------------------ files

TempDir::TempDir(const std::string& prefix) {
  std::string t = "/tmp/" + prefix + "-XXXXXX";
  if (!mkdtemp(t.data())) Throw(std::string("mkdtemp: ") + std::strerror(errno));
  path_ = t;
}

TempDir::~TempDir() {
  const char* keep = std::getenv("ASSESSQ_KEEP_TEST_DIRS");
  if (keep && *keep && std::string(keep) != "0") {
    std::fprintf(stderr, "[harness] keeping %s\n", path_.c_str());
    return;
  }
  UnmountBelow(path_);
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void UnmountBelow(const std::string& dir) {
  // /proc/self/mountinfo field 5 is the mount point (octal escapes for
  // spaces; our paths have none).
  std::vector<std::string> points;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string f, point;
    for (int i = 0; i < 5 && fields >> f; ++i) point = f;
    if (point == dir || point.rfind(dir + "/", 0) == 0) points.push_back(point);
  }
  std::sort(points.begin(), points.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& p : points) umount2(p.c_str(), MNT_DETACH);
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) Throw(path + ": cannot write");
  f << content;
  if (!f.flush()) Throw(path + ": write failed");
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string TailText(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  return "..." + text.substr(text.size() - max_bytes);
}

std::string TailFile(const std::string& path, size_t max_bytes) {
  return TailText(ReadFile(path), max_bytes);
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec))
    out.push_back(it->path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<nlohmann::json> JsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(ReadFile(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

// ------------------------------------------------------------------ running

std::string RunResult::Describe() const {
  std::ostringstream o;
  o << "exit " << exit_code << (timed_out ? " (TIMED OUT)" : "") << "\n--- stdout ---\n"
    << TailText(out, 6000) << "\n--- stderr ---\n"
    << TailText(err, 6000) << "\n";
  return o.str();
}

RunResult Run(const std::vector<std::string>& argv, int timeout_ms,
              const std::vector<std::string>& env) {
  // Unlinked temp files: nothing to clean up, and no pipe to fill up.
  char out_tmpl[] = "/tmp/aqt-out-XXXXXX";
  char err_tmpl[] = "/tmp/aqt-err-XXXXXX";
  int out_fd = mkostemp(out_tmpl, O_CLOEXEC);
  int err_fd = mkostemp(err_tmpl, O_CLOEXEC);
  if (out_fd < 0 || err_fd < 0) Throw(std::string("mkstemp: ") + std::strerror(errno));
  unlink(out_tmpl);
  unlink(err_tmpl);
  RunResult r;
  pid_t pid;
  try {
    pid = SpawnFds(argv, out_fd, err_fd, env);
  } catch (...) {
    close(out_fd);
    close(err_fd);
    throw;
  }
  auto st = WaitPid(pid, timeout_ms);
  if (!st) {
    kill(pid, SIGKILL);
    st = WaitPid(pid, 10000);
    r.timed_out = true;
    r.exit_code = -1;
  } else {
    r.exit_code = WIFEXITED(*st) ? WEXITSTATUS(*st) : -1;
  }
  r.out = Slurp(out_fd);
  r.err = Slurp(err_fd);
  return r;
}

std::unique_ptr<Child> Child::Spawn(const std::vector<std::string>& argv,
                                    const std::string& log_path,
                                    const std::vector<std::string>& env) {
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) Throw("cannot open " + log_path + ": " + std::strerror(errno));
  std::unique_ptr<Child> c(new Child());
  c->log_ = log_path;
  try {
    c->pid_ = SpawnFds(argv, log_fd, log_fd, env);
  } catch (...) {
    close(log_fd);
    throw;
  }
  close(log_fd);
  return c;
}

Child::~Child() {
  if (Running()) Kill(SIGKILL);
}

std::string Child::Log() const { return ReadFile(log_); }

bool Child::Running() {
  if (status_ || pid_ <= 0) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = DecodeStatus(st);
    return false;
  }
  return r == 0;
}

std::optional<int> Child::exit_status() {
  Running();
  return status_;
}

void Child::Signal(int sig) {
  if (Running()) ::kill(pid_, sig);
}

bool Child::WaitExit(int timeout_ms) {
  if (!Running()) return true;
  auto st = WaitPid(pid_, timeout_ms);
  if (!st) return false;
  status_ = DecodeStatus(*st);
  return true;
}

void Child::Kill(int sig) {
  if (!Running()) return;
  if (sig == SIGKILL) ::kill(pid_, SIGCONT);  // in case it was stopped
  ::kill(pid_, sig);
  if (!WaitExit(10000)) {
    ::kill(pid_, SIGKILL);
    WaitExit(10000);
  }
}

bool Child::Terminate(int timeout_ms) {
  if (!Running()) return status_ == 0;
  ::kill(pid_, SIGTERM);
  if (WaitExit(timeout_ms)) return status_ == 0;
  Kill(SIGKILL);
  return false;
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Throw("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    Throw("bind 127.0.0.1:0 failed");
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

}  // namespace aqtest
