// The drivers of the real programs, shared by every test harness: one
// coordinatord on a unix socket (started, killed and restarted on the same
// database; ready when its health service says SERVING), one workerd with
// its own name and state dir (ready when the coordinator lists it as
// connected), and assessctl run the way an operator runs it (-o json).
// Infrastructure problems throw std::runtime_error with the log tail.
#pragma once

#include <grpcpp/grpcpp.h>

#include <csignal>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "assessq/v1/assessq.grpc.pb.h"
#include "common/channel.h"
#include "tests/support/process.h"

namespace aqtest {

// Absolute path of a built program (coordinatord, workerd, assessctl,
// assessq-simworker); throws when it is not built.
std::string BinPath(const std::string& name);
// The Masader metadata catalogue (${PROJECT_SOURCE_DIR}/../shared/masader/datasets).
std::string MasaderDir();
// The Docker socket: $ASSESSQ_DOCKER_SOCKET or /var/run/docker.sock (workerd
// gets the same one through --docker-socket).
std::string DockerSocket();

struct CoordinatorOptions {
  double lease_seconds = 30;
  std::string listen;                   // default: unix:<dir>/c.sock
  std::vector<std::string> extra_args;  // e.g. TLS flags
  assessq::ClientTls client_tls;        // how the harness dials it (TLS tests)
  std::string log_level = "info";
  std::string binary;                   // default: the built coordinatord (BinPath)
};

// One coordinatord on `dir`/assessq.db, started, killed and restarted on the
// same database and address.
class Coordinator {
 public:
  explicit Coordinator(std::string dir, CoordinatorOptions opt = {});
  virtual ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // `coordinatord --db DB token create --role ROLE --name NAME --out FILE`
  // (FILE: `file`, or <dir>/NAME.token); returns the token file's path.
  std::string CreateToken(const std::string& role, const std::string& name,
                          const std::string& file = "");
  // An operator token (<dir>/operator.token) and a worker token
  // (<dir>/worker.token), for the drivers below.
  void CreateStandardTokens();
  // Starts it and waits (up to 30 s) until its health service says SERVING.
  void Start();
  // Sends `sig` and waits until it exits (SIGKILL past 15 s); reaped.
  void Kill(int sig = SIGKILL);
  void Restart();  // Kill if running, then Start
  // SIGTERM; throws unless it exits cleanly within 15 s.
  void Stop();
  bool running() const;

  const std::string& address() const { return address_; }
  const std::string& db() const { return db_; }
  const std::string& log() const { return log_; }  // the log file's path
  std::string Log() const { return ReadFile(log_); }
  const std::string& dir() const { return dir_; }
  int starts() const { return starts_; }
  Child* child() { return child_.get(); }
  const std::string& operator_token_file() const { return op_token_; }
  const std::string& worker_token_file() const { return worker_token_; }

  std::shared_ptr<grpc::Channel> NewChannel() const;
  std::unique_ptr<assessq::v1::OperatorService::Stub> OperatorStub() const;

 private:
  std::string Binary() const;
  std::string dir_, db_, log_, address_, op_token_, worker_token_;
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

// A client context carrying `Bearer token` and a deadline.
std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token, int timeout_ms = 10000);
// The token stored in a token file.
std::string ReadToken(const std::string& token_file);

struct WorkerOptions {
  int slots = 2;
  double reap_seconds = 60;
  std::vector<std::string> extra_args;
  std::vector<std::string> extra_env;  // NAME=VALUE added to workerd's environment
  std::vector<std::string> wrapper;    // a command workerd's argv is appended to (it must exec it)
};

// One workerd with its own name and state dir, on the coordinator's worker
// token (CreateStandardTokens). Start waits until the coordinator lists it
// as connected.
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
  std::string Log() const { return ReadFile(log_); }

 private:
  const Coordinator& coord_;
  std::string dir_, name_, state_dir_, log_;
  WorkerOptions opt_;
  std::unique_ptr<Child> child_;
  int starts_ = 0;
};

// assessctl against a coordinator with its operator token.
class Ctl {
 public:
  using json = nlohmann::json;
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
  // Polls `show` until `done` holds; throws with the last answer past the deadline.
  json WaitJob(int64_t job, const std::function<bool(const std::string&)>& done,
               const std::string& what, int timeout_ms) const;
  const Coordinator& c_;
};

}  // namespace aqtest
