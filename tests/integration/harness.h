// The integration tests' shared harness: temp dirs, child processes (the real
// coordinatord, assessctl and assessq-simworker binaries), starting, killing
// and restarting a coordinator on a unix socket and waiting until it answers
// its health service, running assessctl with captured output and exit code,
// and polling with deadlines. Infrastructure problems throw
// std::runtime_error with the child's log tail; GoogleTest reports them as
// failures of the test that hit them.
#pragma once

#include <grpcpp/grpcpp.h>
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

#include "absl/status/statusor.h"
#include "assessq/v1/assessq.grpc.pb.h"
#include "common/channel.h"

namespace aqtest {

// Absolute path of a built program (coordinatord, assessctl, assessq-simworker).
std::string BinPath(const std::string& name);
// The Masader metadata catalogue the submit test uses.
std::string MasaderDir();

int64_t NowMs();  // wall clock, ms since the epoch (the coordinator's clock)

// A fresh directory under /tmp (short, since unix socket paths are limited to
// 107 bytes), removed with everything in it on destruction. Set
// ASSESSQ_KEEP_TEST_DIRS=1 to keep it for debugging.
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

void WriteFile(const std::string& path, const std::string& content);
std::string ReadFile(const std::string& path);
// The last `max_bytes` of a file, for failure messages.
std::string Tail(const std::string& path, size_t max_bytes = 4000);

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal, or timed out
  bool timed_out = false;
  std::string out, err;
  std::string Describe() const;  // exit code and both streams, for messages
};

// Runs a program to completion with a deadline (killed and reported as timed
// out past it). `env` entries (NAME=VALUE) are added to a copy of this
// process's environment without any ASSESSQ_* variables.
RunResult Run(const std::vector<std::string>& argv, int timeout_ms = 60000,
              const std::vector<std::string>& env = {});

// A long-running child: stdout and stderr appended to a log file, stdin from
// /dev/null, killed (SIGKILL) if the test process dies or the Child object is
// destroyed while it still runs.
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
  // Reaps the child if it has exited.
  bool Running();
  // Exit code, or -signal; empty while running.
  std::optional<int> exit_status();
  // Sends `sig` and waits (up to 10 s) until the child is reaped.
  void Kill(int sig = SIGKILL);
  // SIGTERM, then waits up to timeout_ms; SIGKILL past it. True if the child
  // exited on its own with status 0.
  bool Terminate(int timeout_ms = 15000);
  bool WaitExit(int timeout_ms);

 private:
  Child() = default;
  pid_t pid_ = -1;
  std::string log_;
  std::optional<int> status_;
};

struct CoordinatorOptions {
  double lease_seconds = 30;
  std::string listen;                   // default: unix:<dir>/c.sock
  std::vector<std::string> extra_args;  // e.g. TLS flags
  assessq::ClientTls client_tls;        // how the harness dials it (TLS tests)
  std::string log_level = "info";
};

// One coordinatord on a database file in `dir`, started, killed and
// restarted on the same database and address.
class Coordinator {
 public:
  explicit Coordinator(std::string dir, CoordinatorOptions opt = {});
  ~Coordinator();

  // `coordinatord --db DB token create --role ROLE --name NAME --out FILE`;
  // returns the token file's path.
  std::string CreateToken(const std::string& role, const std::string& name);
  // Starts it and waits (up to 30 s) until its health service says SERVING.
  void Start();
  void Kill();     // SIGKILL, reaped
  void Restart();  // Kill if running, then Start
  // SIGTERM; throws unless it exits cleanly within 15 s.
  void Stop();
  bool running() const;

  const std::string& address() const { return address_; }
  const std::string& db() const { return db_; }
  const std::string& log() const { return log_; }
  const std::string& dir() const { return dir_; }
  int starts() const { return starts_; }
  Child* child() { return child_.get(); }

  std::shared_ptr<grpc::Channel> NewChannel() const;
  std::unique_ptr<assessq::v1::OperatorService::Stub> OperatorStub() const;

 private:
  std::string dir_, db_, log_, address_;
  CoordinatorOptions opt_;
  std::unique_ptr<Child> child_;
  int starts_ = 0;
};

// grpc.health.v1.Health/Check on `channel`: the serving status
// (1 = SERVING) or the RPC's error.
absl::StatusOr<int> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                const std::string& service = "", int timeout_ms = 1000);

// `assessctl --coordinator ADDR [--token-file FILE] ARGS...`.
RunResult Assessctl(const Coordinator& c, const std::string& token_file,
                    const std::vector<std::string>& args, int timeout_ms = 60000);
// Parses stdout as JSON; throws with the whole run described if it is not.
nlohmann::json JsonOut(const RunResult& r);

// Calls `pred` every `interval_ms` until it returns true (true) or
// `timeout_ms` passes (false).
bool PollUntil(const std::function<bool()>& pred, int timeout_ms, int interval_ms = 50);

// A client context carrying `Bearer token` and a deadline.
std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token, int timeout_ms = 10000);
// The token stored in a token file.
std::string ReadToken(const std::string& token_file);

// An assessment that passes the built-in contract (schemas/
// assessment.schema.json and server/validation.cc) for a dataset whose
// metadata Name is `name`; `note` (short, any script) is appended to the
// summary so tests can tell results apart.
std::string ValidAssessment(const std::string& name, const std::string& note = "");

// A free loopback TCP port (bound, read back and released; the caller binds
// it again right away).
int FreeLoopbackPort();

}  // namespace aqtest
