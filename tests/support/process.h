// The test harness's base, shared by the integration, end-to-end, gateway,
// real-agent and deploy tests and the benchmarks: a temp dir, file helpers,
// running a program to completion with a deadline, a long-running child
// process, and polling for an observable condition with a deadline (the one
// way tests wait: never a fixed sleep). Infrastructure problems throw
// std::runtime_error; GoogleTest reports them as failures of the test.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace aqtest {

int64_t NowMs();  // wall clock, ms since the epoch (the coordinator's clock)

// Calls `pred` every `interval_ms` until it returns true (true) or
// `timeout_ms` passes (false). Never a timing assertion.
bool PollUntil(const std::function<bool()>& pred, int timeout_ms, int interval_ms = 50);

// A fresh short directory under /tmp (unix socket paths are limited to 107
// bytes), named /tmp/PREFIX-XXXXXX. On destruction every mount below it (a
// killed workerd leaves its jobs' output tmpfs mounted) is detached, then it
// is removed with everything in it. Set ASSESSQ_KEEP_TEST_DIRS=1 to keep it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "aqt");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Detaches every mount at or below `dir`, deepest first.
void UnmountBelow(const std::string& dir);
// Throws when the file cannot be written.
void WriteFile(const std::string& path, const std::string& content);
// The whole file; "" when it cannot be read.
std::string ReadFile(const std::string& path);
// The last `max_bytes` of `text` (of the file at `path`), for failure messages.
std::string TailText(const std::string& text, size_t max_bytes);
std::string TailFile(const std::string& path, size_t max_bytes);
// Entries of a directory (names only, sorted; empty if it does not exist).
std::vector<std::string> ListDir(const std::string& dir);
// Every line of the file that parses as JSON (a JSON-lines log).
std::vector<nlohmann::json> JsonLines(const std::string& path);

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal, or timed out
  bool timed_out = false;
  std::string out, err;
  std::string Describe() const;  // exit code and both streams, for messages
};

// Runs a program to completion with a deadline (killed and reported as timed
// out past it). `env` entries (NAME=VALUE) are added to a copy of this
// process's environment without any ASSESSQ_* variables (so a developer's
// settings never steer the children).
RunResult Run(const std::vector<std::string>& argv, int timeout_ms = 60000,
              const std::vector<std::string>& env = {});

// A long-running child: stdout and stderr appended to a log file, stdin from
// /dev/null, killed (SIGKILL) if the test process dies (PR_SET_PDEATHSIG) or
// the Child object is destroyed while it still runs.
class Child {
 public:
  static std::unique_ptr<Child> Spawn(const std::vector<std::string>& argv,
                                      const std::string& log_path,
                                      const std::vector<std::string>& env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_; }
  std::string Log() const;  // the log file's content
  // Reaps the child if it has exited.
  bool Running();
  // Exit code, or -signal; empty while running.
  std::optional<int> exit_status();
  // Sends `sig` if it still runs.
  void Signal(int sig);
  // Sends `sig` (SIGKILL: after a SIGCONT, in case it is stopped) and waits
  // (up to 10 s, then SIGKILL) until the child is reaped.
  void Kill(int sig = SIGKILL);
  // SIGTERM, then waits up to timeout_ms; SIGKILL past it. True if the child
  // exited on its own with status 0.
  bool Terminate(int timeout_ms = 15000);
  // True once reaped.
  bool WaitExit(int timeout_ms);

 private:
  Child() = default;
  pid_t pid_ = -1;
  std::string log_;
  std::optional<int> status_;
};

// A free loopback TCP port (bound, read back and released; the caller binds
// it again right away).
int FreeLoopbackPort();

}  // namespace aqtest
