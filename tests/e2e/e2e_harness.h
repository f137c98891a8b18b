// The end-to-end container tests' harness: a real coordinatord, real workerd
// processes and a real dockerd, all driven the way an operator would (the
// assessctl binary, -o json), each test in its own temp dir with its own
// worker names, so tests may run in parallel (ctest -j).
//
// Infrastructure problems (a child that will not start, a command that
// times out, Docker that does not answer) throw std::runtime_error carrying
// the relevant log tail; GoogleTest reports them as failures of the test,
// never as skips.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "worker/docker/docker_client.h"

namespace aqe2e {

using json = nlohmann::json;

// Built programs, from compile definitions set by tests/e2e/CMakeLists.txt.
std::string CoordinatordBin();
std::string WorkerdBin();
std::string AssessctlBin();
// ${PROJECT_SOURCE_DIR}/../shared/masader/datasets
std::string MasaderDir();

inline constexpr char kAgentImage[] = "assessq-test-agent:1";

int64_t NowMs();  // wall clock, ms

// Deadline polling: calls `pred` every `interval_ms` until it is true (returns
// true) or `timeout_ms` passes (returns false). Never a timing assertion.
bool PollUntil(const std::function<bool()>& pred, int timeout_ms, int interval_ms = 100);

// A fresh short directory under /tmp (unix socket paths are limited to 107
// bytes). On destruction every mount below it (a killed workerd leaves its
// jobs' output tmpfs mounted) is detached first, then it is removed. Set
// ASSESSQ_KEEP_TEST_DIRS=1 to keep it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void UnmountBelow(const std::string& dir);
void WriteFile(const std::string& path, const std::string& content);
std::string ReadFile(const std::string& path);
std::string Tail(const std::string& text, size_t max_bytes = 6000);
// Entries of a directory (names only; empty if it does not exist).
std::vector<std::string> ListDir(const std::string& dir);

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  bool timed_out = false;
  std::string out, err;
  std::string Describe() const;
};

// Runs a program to completion (killed past the deadline).
RunResult Run(const std::vector<std::string>& argv, int timeout_ms = 60000,
              const std::vector<std::string>& extra_env = {});

// A long-running child process: stdout and stderr appended to a log file.
// SIGKILLed and reaped on destruction if still running; dies with the test
// process (PR_SET_PDEATHSIG).
class Child {
 public:
  static std::unique_ptr<Child> Spawn(const std::vector<std::string>& argv,
                                      const std::string& log_path,
                                      const std::vector<std::string>& extra_env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_; }
  std::string Log() const;
  bool Running();                     // reaps if exited
  std::optional<int> exit_status();   // exit code, or -signal; empty while running
  void Signal(int sig);
  bool WaitExit(int timeout_ms);      // true once reaped
  void Kill();                        // SIGKILL and reap

 private:
  Child() = default;
  pid_t pid_ = -1;
  std::string log_;
  std::optional<int> status_;
};

// One coordinatord on `dir`/assessq.db, listening on unix:`dir`/c.sock, with
// an operator token and a worker token made before the first start.
class Coordinator {
 public:
  Coordinator(std::string dir, double lease_seconds = 30);
  ~Coordinator();
  void Start();    // and waits (30 s) until assessctl gets an answer
  void Kill(int sig = SIGKILL);  // and reaps it
  bool running();
  Child* child() { return child_.get(); }

  const std::string& address() const { return address_; }
  const std::string& operator_token_file() const { return op_token_; }
  const std::string& worker_token_file() const { return worker_token_; }
  std::string Log() const;

 private:
  std::string dir_, db_, address_, log_, op_token_, worker_token_;
  double lease_seconds_;
  std::unique_ptr<Child> child_;
};

struct WorkerOptions {
  int slots = 2;
  double reap_seconds = 60;
  std::vector<std::string> extra_args;
  std::vector<std::string> extra_env;  // NAME=VALUE added to workerd's environment
  std::vector<std::string> wrapper;    // a command workerd's argv is appended to (it must exec it)
};

// One workerd with its own name and state dir. Start waits until the
// coordinator lists it as connected.
class Workerd {
 public:
  Workerd(const Coordinator& c, std::string dir, std::string name, WorkerOptions opt = {});
  ~Workerd();
  void Start();
  const std::string& name() const { return name_; }
  const std::string& state_dir() const { return state_dir_; }
  std::string jobs_dir() const { return state_dir_ + "/jobs"; }
  std::string outbox_dir() const { return state_dir_ + "/outbox"; }
  Child* child() { return child_.get(); }
  std::string Log() const;

 private:
  const Coordinator& coord_;
  std::string dir_, name_, state_dir_, log_;
  WorkerOptions opt_;
  std::unique_ptr<Child> child_;
  int starts_ = 0;
};

// assessctl against a coordinator with the operator token.
class Ctl {
 public:
  explicit Ctl(const Coordinator& c) : c_(c) {}
  RunResult Run(const std::vector<std::string>& args, int timeout_ms = 120000) const;
  // Runs with -o json; throws unless it exits 0 with JSON on stdout.
  json Json(const std::vector<std::string>& args, int timeout_ms = 120000) const;

  // submit -o json; returns dataset key -> job id; throws on rejections.
  std::map<std::string, int64_t> Submit(const std::vector<std::string>& paths,
                                        const std::string& batch, const std::string& profile,
                                        const std::vector<std::string>& extra = {}) const;
  json Show(int64_t job) const;
  json Status(const std::string& batch) const;
  json Workers() const;
  // Waits until no job of the batch is queued, leased or running.
  json WaitBatchFinished(const std::string& batch, int64_t total, int timeout_ms) const;
  // Waits until the job has finished (succeeded, needs_attention or
  // cancelled); returns its `show` JSON.
  json WaitJobFinished(int64_t job, int timeout_ms) const;
  // Waits until the job is in `state`; returns its `show` JSON.
  json WaitJobState(int64_t job, const std::string& state, int timeout_ms) const;

 private:
  const Coordinator& c_;
};

// Test inputs.
// A metadata file `dir`/`key`.json with a Name and the agent's behaviour.
std::string WriteMetadata(const std::string& dir, const std::string& key,
                          const std::string& behaviour);
struct AgentLimits {
  int memory_mb = 128;
  int pids = 64;
  int timeout_s = 6;
  int grace_s = 2;
  int tmp_mb = 8;
  int home_mb = 8;
  int output_mb = 4;
  int result_kb = 256;
};
// The test agent's profile, written to `path`.
std::string WriteAgentProfile(const std::string& path, const AgentLimits& l = {});

// The Docker socket: $ASSESSQ_DOCKER_SOCKET or /var/run/docker.sock (workerd
// gets the same one through --docker-socket).
std::string DockerSocket();
// Docker: a client that answered /_ping (throws otherwise: tests fail, never
// skip, without Docker), and the containers labelled assessq.worker=NAME.
assessq::docker::DockerClient& Docker();
json ContainersOf(const std::string& worker_name);
void RemoveContainersOf(const std::string& worker_name);
// The running container of `job` (label assessq.job) of this worker, if any.
std::optional<json> RunningContainerOfJob(const std::string& worker_name, int64_t job);

// Lines of `text` that start with `prefix`.
std::vector<std::string> LinesStartingWith(const std::string& text, const std::string& prefix);

// A unique suffix for worker and batch names (pid + time), so parallel test
// processes never share a label.
std::string Unique(const std::string& base);

}  // namespace aqe2e
