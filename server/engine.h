// The coordinator's write side: one thread owns the SQLite write connection
// and every state change. Operations are queued to it, run one after another
// each as a Txn (server/txn.h: a savepoint plus its in-memory changes), and
// committed together (group commit: one fsync for everything that arrived
// meanwhile). Replies and pushes to workers run only after the commit that
// made them true, on the effects thread. The engine thread also dispatches
// queued jobs to connected workers' free slots, expires leases whose
// heartbeats stopped, and schedules retries; so lease, fencing and retry
// decisions are serial and need no locks beyond the op queue. Its API speaks
// the domain types below; the gRPC services translate (server/engine_wire.h).
// Its SQL is the JobStore's (server/job_store.h).
#pragma once

#include "absl/strings/string_view.h"
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "assessq/v1/assessq.pb.h"
#include "common/vocabulary.h"
#include "server/commit_loop.h"
#include "server/db.h"
#include "server/engine_state.h"
#include "server/job_store.h"
#include "server/engine_observer.h"
#include "server/fleet_limits.h"
#include "server/live_logs.h"
#include "server/retry_policy.h"
#include "server/txn.h"
#include "server/usage_store.h"

namespace assessq {

using Clock = std::function<int64_t()>;  // milliseconds since the epoch
int64_t SystemNowMs();

// Checks an uploaded result; returns the list of problems (empty = valid).
struct ResultContext {
  std::string batch;
  std::string dataset_key;
  std::string dataset_name;
  std::string profile_json;
  std::string metadata;
  // The attempt's network log ("": no egress gateway); a view, valid during
  // the check only.
  std::string_view netlog_json;
};
using ResultValidator =
    std::function<std::vector<std::string>(const ResultContext&, const std::string& json)>;
std::vector<std::string> DefaultValidator(const ResultContext&, const std::string& json);
// Non-fatal observations about a valid result, stored with it.
using ResultFlagger =
    std::function<std::vector<std::string>(const ResultContext&, const std::string& json)>;
// Both at once: the problems of a result and, when it has none, its flags.
struct CheckedResult {
  std::vector<std::string> errors;
  std::vector<std::string> flags;
};
using ResultChecker =
    std::function<CheckedResult(const ResultContext&, const std::string& json)>;

using SubmitFile = NewJob;

struct SubmitArgs {
  std::string batch;
  std::string profile_json;           // empty: keep existing / default
  std::optional<RetryPolicy> policy;  // unset: keep existing / default
  bool rerun = false;
  std::optional<int> max_running;            // unset: keep existing / none
  std::optional<double> start_rate_per_min;  // unset: keep existing / none
  std::optional<double> budget_usd;          // unset: keep; 0: none
  std::string prices_json;                   // "": keep
  std::vector<SubmitFile> files;
};

enum class SubmitOutcome { kCreated, kSkippedSucceeded, kSkippedInFlight, kReplaced, kRequeued };
struct SubmitItemResult {
  std::string source_name;
  std::string dataset_key;
  SubmitOutcome outcome = SubmitOutcome::kCreated;
  int64_t job_id = 0;
};
using SubmitResult = std::vector<SubmitItemResult>;  // in the order of SubmitArgs::files

// Retry one job (`job`), or every needs_attention job of `batch`, optionally
// only those whose last failure was of `failure_class`.
struct RetryOrder {
  JobKey job;
  std::string batch;
  std::optional<v1::FailureClass> failure_class;
};
// Cancel one job (`job`), or every job of `batch` in flight.
struct CancelOrder {
  JobKey job;
  std::string batch;
};
// Set a batch's or a provider's limits (unset fields keep theirs); with
// neither named, only read them.
struct LimitsOrder {
  std::string batch;
  std::string provider;
  std::optional<int> max_running;
  std::optional<double> start_rate_per_min;
};

// A worker's report on a lease it holds (job id + fencing token).
struct HeartbeatReport {
  int64_t job_id = 0;
  int64_t token = 0;
  bool running = false;  // the container has started
  std::optional<v1::Usage> usage;  // the attempt's model usage so far (cumulative)
};
struct HeartbeatReply {
  int64_t lease_expires_at_ms = 0;
};
struct CompletionReport {

  int64_t job_id = 0;
  int64_t token = 0;
  // kSucceeded, kFailed or kReleased; unset: the report named none.
  std::optional<AttemptOutcome> outcome;
  std::string result_json;  // kSucceeded
  v1::FailureClass failure_class = v1::FAILURE_CLASS_UNSPECIFIED;  // kFailed
  std::string reason;           // kFailed, kReleased
  int64_t retry_after_ms = 0;   // kFailed
  AttemptReport attempt;  // exit code, log tail, network log, details, started at
  std::optional<v1::Usage> usage;  // the attempt's model usage, final
};
struct CompletionReply {
  v1::JobState job_state = v1::JOB_STATE_UNSPECIFIED;  // where the job went
  bool duplicate = false;  // this attempt was already recorded
  std::vector<std::string> validation_errors;
};

// What a worker is told with a lease (pushed as v1::Lease).
struct LeaseGrant {
  int64_t job_id = 0;
  int64_t token = 0;  // fencing token (= attempt id)
  int attempt_number = 0;
  std::string batch;
  std::string dataset_key;
  std::string dataset_name;
  std::string metadata;
  std::string metadata_sha256;
  std::string profile_json;
  int64_t lease_expires_at_ms = 0;
  std::vector<std::string> previous_errors;  // validation errors of the last attempt
};

struct EngineOptions {
  std::string db_path;
  int64_t lease_period_ms = 30000;
  uint64_t seed = 0;  // 0: from the OS
  Clock clock;        // unset: system clock
  // How results are checked: `checker` when set; else `validator` (unset:
  // DefaultValidator) and then `flagger` (unset: no flags).
  ResultChecker checker;
  ResultValidator validator;
  ResultFlagger flagger;
  EngineObserver* observer = nullptr;  // unset: nobody watches (metrics)
  std::shared_ptr<UsageStore> usage;   // cost SQL; unset: one without prices
};

class Engine {
 public:
  template <typename T>
  using Done = std::function<void(absl::StatusOr<T>)>;

  static absl::StatusOr<std::unique_ptr<Engine>> Open(EngineOptions opt);
  ~Engine();

  // Operators.
  void Submit(SubmitArgs args, Done<SubmitResult> done);
  void Retry(RetryOrder order, Done<int64_t> done);    // how many were requeued
  void Cancel(CancelOrder order, Done<int64_t> done);  // how many were cancelled
  void SetPaused(std::string batch, bool paused, Done<bool> done);
  void DrainWorker(std::string worker, bool drain, Done<bool> done);
  void ListWorkers(Done<std::vector<WorkerView>> done);
  // Fleet-wide limits: set a batch's or a provider's, then read them all.
  void SetLimits(LimitsOrder order, Done<std::vector<LimitView>> done);
  // A batch's budget in USD (0 removes it); starts resume when raised.
  void SetBudget(std::string batch, double budget_usd, Done<bool> done);

  // Workers.
  // `principal`: the id of the token the session authenticated with; leases
  // sent on it are bound to that token (0: not bound, for in-process tests).
  void OpenSession(std::string worker, int slots, std::shared_ptr<SessionSink> sink,
                   Done<int64_t> done, int64_t principal = 0);
  void SetCapacity(int64_t session_id, int slots);
  void CloseSession(int64_t session_id);
  // Heartbeat and Complete from `principal` (a token id; 0: not checked) are
  // refused with FAILED_PRECONDITION for a lease bound to another token.
  void Heartbeat(HeartbeatReport report, Done<HeartbeatReply> done, int64_t principal = 0);
  // `checked`: the result was already checked off the engine thread (see
  // WorkerService); otherwise the engine checks it.
  void Complete(CompletionReport report, std::string worker, Done<CompletionReply> done,
                std::optional<CheckedResult> checked = std::nullopt, int64_t principal = 0);
  const ResultChecker& checker() const { return opt_.checker; }

  // Blocking helper for tests and tools: runs an async op and waits.
  template <typename T, typename F>
  absl::StatusOr<T> Sync(F&& start) {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<absl::StatusOr<T>> out;
    start([&](absl::StatusOr<T> r) {
      std::lock_guard<std::mutex> l(mu);
      out.emplace(std::move(r));
      cv.notify_all();
    });
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return out.has_value(); });
    return std::move(*out);
  }

  int64_t lease_period_ms() const { return opt_.lease_period_ms; }
  // Running attempts' output for `logs -f` (thread-safe, memory only); the
  // engine opens each attempt's token there when it leases it and closes it
  // when the lease ends, so only the lease's holder can append.
  LiveLogs& live_logs() { return live_logs_; }
  const std::string& db_path() const { return opt_.db_path; }

 private:
  explicit Engine(EngineOptions opt);
  absl::Status Load();
  // The loop's hooks: when Step is next due, Step itself (expiry, dispatch,
  // the alive clock), and closing every session at shutdown.
  int64_t WakeAt() const;
  void Step();
  std::vector<Txn::Action> CloseSessions();

  // Queues `op` to run on the engine thread as one Txn; `done` gets its
  // result after the round commits (also when it failed and rolled back).
  template <typename T>
  void Post(std::function<absl::StatusOr<T>(Txn&)> op, Done<T> done);
  absl::Status Atomically(const std::function<absl::Status(Txn&)>& op);

  // Engine-thread helpers (inside a transaction).
  int64_t Now() const { return opt_.clock(); }
  absl::Status Event(Txn& tx, std::optional<int64_t> batch_id, std::optional<int64_t> job_id,
                     absl::string_view kind, absl::string_view detail);
  absl::StatusOr<BatchInfo*> EnsureBatch(Txn& tx, const SubmitArgs& args);
  absl::StatusOr<SubmitItemResult> SubmitFileTo(Txn& tx, const BatchInfo& batch,
                                                const SubmitFile& f, bool rerun);
  // Tells the observer a provider's limit in force, when it changed.
  void ReportProviderLimit(Txn& tx, const std::string& provider);
  absl::Status ApplyBatchLimits(Txn& tx, BatchInfo& b, std::optional<int> max_running,
                                std::optional<double> start_rate_per_min);
  absl::StatusOr<BatchInfo*> NamedBatch(const std::string& name);
  absl::StatusOr<int64_t> InsertJob(Txn& tx, int64_t batch_id, const SubmitFile& f);
  // `report`: what the worker said (null for expiry and cancel).
  absl::Status FinishAttempt(Txn& tx, int64_t attempt_id, AttemptOutcome outcome,
                             std::optional<v1::FailureClass> cls, const std::string& error,
                             const CompletionReport* report);
  // Tells the observer, after the commit, what an attempt's usage grew by.
  absl::Status ReportUsage(Txn& tx, absl::StatusOr<std::vector<UsageGrowth>> grew);
  // Failure path shared by Complete and lease expiry.
  absl::StatusOr<v1::JobState> FailJob(Txn& tx, const JobRow& job, int64_t attempt_id,
                                       v1::FailureClass cls, const std::string& error,
                                       int64_t retry_after_ms);
  absl::Status CancelJob(Txn& tx, const JobRow& job, const std::string& reason);
  absl::Status RequeueJob(Txn& tx, int64_t job_id, int64_t batch_id, bool new_epoch,
                          absl::string_view why);
  void DropLease(Txn& tx, int64_t job_id);
  // The answer to a completion whose lease is not held (any more).
  absl::StatusOr<CompletionReply> CompleteUnheld(Txn& tx, const CompletionReport& r);
  absl::StatusOr<CompletionReply> CompleteSucceeded(Txn& tx, const CompletionReport& r,
                                                   const LeaseInfo& lease,
                                                   const std::string& worker,
                                                   const std::optional<CheckedResult>& checked);
  // FAILED_PRECONDITION when `principal` may not act on `lease`.
  absl::Status CheckHolder(int64_t job_id, const LeaseInfo& lease, int64_t principal) const;
  absl::Status ExpireLeases(Txn& tx);
  absl::Status Dispatch();
  absl::Status LeaseTo(Txn& tx, int64_t job_id, const WorkerTable::Session& session);
  void NoteReady(int64_t ready_at);
  void Push(Txn& tx, const std::string& worker, const v1::CoordinatorMessage& m);

  EngineOptions opt_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<JobStore> store_;  // over db_, for reads outside a Txn
  std::unique_ptr<CommitLoop> loop_;

  // Engine-thread state.
  std::mt19937_64 rng_;
  FleetLimits limits_;
  LimitsChanges limit_changes_{limits_};
  std::map<std::string, int> reported_limits_;  // provider -> limit last reported
  LiveLogs live_logs_;
  LeaseTable leases_{live_logs_, limits_};
  BatchTable batches_;
  WorkerTable workers_;
  int64_t next_ready_at_ = 0;  // earliest future ready_at known; 0 = none
  bool dispatch_dirty_ = true;
  int64_t alive_written_ = 0;  // when engine_clock.alive_at was last written
};

template <typename T>
void Engine::Post(std::function<absl::StatusOr<T>(Txn&)> op, Done<T> done) {
  loop_->Post([this, op = std::move(op), done = std::move(done)]() mutable {
    absl::StatusOr<T> r = absl::UnknownError("not run");
    absl::Status s = Atomically([&](Txn& tx) -> absl::Status {
      r = op(tx);
      return r.status();
    });
    if (!s.ok() && r.ok()) r = s;
    // The reply, after the round commits, whatever the outcome.
    loop_->After([r = std::move(r), done = std::move(done)]() mutable {
      if (done) done(std::move(r));
    });
  });
}

}  // namespace assessq
