// The coordinator's write side: one thread owns the SQLite write connection
// and every state change. Operations are queued to it, run one after another
// each in its own savepoint, and committed together (group commit: one fsync
// for everything that arrived meanwhile). Replies and pushes to workers run
// only after the commit that made them true. The same thread dispatches
// queued jobs to connected workers' free slots, expires leases whose
// heartbeats stopped, and schedules retries; so lease, fencing and retry
// decisions are serial and need no locks beyond the op queue.
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
#include "server/db.h"
#include "server/engine_observer.h"
#include "server/fleet_limits.h"
#include "server/live_logs.h"
#include "server/retry_policy.h"
#include "server/usage_store.h"  // costsrv: cost hooks

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

// Where the engine pushes messages for one worker session. Push must not
// block; it is called on the engine thread.
class SessionSink {
 public:
  virtual ~SessionSink() = default;
  virtual void Push(const v1::CoordinatorMessage& m) = 0;
  virtual void Close(const std::string& reason) = 0;
};

struct SubmitFile {
  std::string source_name;
  std::string dataset_key;
  std::string dataset_name;
  std::string content;
  std::string sha256;
};

struct SubmitArgs {
  std::string batch;
  std::string profile_json;           // empty: keep existing / default
  std::optional<RetryPolicy> policy;  // unset: keep existing / default
  bool rerun = false;
  std::optional<int> max_running;            // unset: keep existing / none
  std::optional<double> start_rate_per_min;  // unset: keep existing / none
  std::optional<double> budget_usd;          // costsrv: unset: keep; 0: none
  std::string prices_json;                   // costsrv: "": keep
  std::vector<SubmitFile> files;
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
  std::shared_ptr<UsageStore> usage;   // costsrv: unset: one without prices
};

class Engine {
 public:
  template <typename T>
  using Done = std::function<void(absl::StatusOr<T>)>;

  static absl::StatusOr<std::unique_ptr<Engine>> Open(EngineOptions opt);
  ~Engine();

  // Operators.
  void Submit(SubmitArgs args, Done<v1::SubmitResponse> done);
  void Retry(v1::RetryRequest req, Done<int64_t> done);
  void Cancel(v1::CancelRequest req, Done<int64_t> done);
  void SetPaused(std::string batch, bool paused, Done<bool> done);
  void DrainWorker(std::string worker, bool drain, Done<bool> done);
  void ListWorkers(Done<v1::WorkersResponse> done);
  // Fleet-wide limits: set a batch's or a provider's (unset fields keep
  // theirs), or with neither field set just read them all.
  void SetLimits(v1::LimitsRequest req, Done<v1::LimitsResponse> done);
  // costsrv: a batch's budget in USD (0 removes it); starts resume when raised.
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
  void Heartbeat(v1::HeartbeatRequest req, Done<v1::HeartbeatResponse> done,
                 int64_t principal = 0);
  // `checked`: the result was already checked off the engine thread (see
  // WorkerService); otherwise the engine checks it.
  void Complete(v1::CompleteRequest req, std::string worker, Done<v1::CompleteResponse> done,
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
  struct BatchInfo {
    int64_t id;
    std::string name;
    std::string profile_json;
    RetryPolicy policy;
    bool paused;
    LimitConfig limits;
  };
  struct LeaseInfo {
    int64_t token;
    std::string worker;
    int64_t expires_at;
    bool running;
    int64_t batch_id = 0;
    int64_t leased_at = 0;  // 0: recovered at start-up
    int64_t principal = 0;  // token id the lease is bound to (0: none)
  };
  struct Session {
    int64_t id;
    std::string worker;
    int slots;
    std::shared_ptr<SessionSink> sink;
    int64_t principal = 0;
  };
  struct WorkerMem {
    int slots = 0;
    bool connected = false;
    bool draining = false;
    int64_t last_seen = 0;
    int64_t session_id = 0;
  };
  struct JobRow {
    int64_t id;
    int64_t batch_id;
    std::string dataset_key;
    std::string dataset_name;
    std::string input_sha256;
    std::string state;
    int64_t retry_epoch;
    std::optional<int64_t> current_attempt;
    std::string worker;
    bool superseded = false;
    int64_t attempts = 0;  // attempts so far (all epochs)
    int64_t input_id = 0;  // inputs.id
    int64_t ready_at = 0;
  };

  explicit Engine(EngineOptions opt);
  absl::Status Load();
  void Loop();

  // Queues `fn` to run on the engine thread inside a savepoint; `done` gets
  // its result after the commit.
  template <typename T>
  void Post(std::function<absl::StatusOr<T>()> fn, Done<T> done);
  void PostRaw(std::function<void()> fn);
  // Runs `fn` in a savepoint; on error rolls back its SQL, drops the effects
  // it scheduled and runs its undo actions, so memory matches the database.
  absl::Status Atomically(const std::function<absl::Status()>& fn);
  void OnRollback(std::function<void()> fn) { undo_.push_back(std::move(fn)); }
  void AfterCommit(std::function<void()> fn) { after_commit_.push_back(std::move(fn)); }

  // Engine-thread helpers (inside a transaction).
  int64_t Now() const { return opt_.clock(); }
  absl::Status Event(std::optional<int64_t> batch_id, std::optional<int64_t> job_id,
                     absl::string_view kind, absl::string_view detail);
  absl::StatusOr<BatchInfo*> EnsureBatch(const SubmitArgs& args);
  // Tells the observer a provider's limit in force, when it changed.
  void ReportProviderLimit(const std::string& provider);
  absl::Status ApplyBatchLimits(BatchInfo& b, std::optional<int> max_running,
                                std::optional<double> start_rate_per_min);
  absl::StatusOr<std::optional<JobRow>> LoadJob(int64_t id);
  absl::StatusOr<std::optional<JobRow>> FindJob(const v1::JobRef& ref);
  // The job's metadata file as submitted.
  absl::StatusOr<std::string> ReadInput(const JobRow& job);
  absl::StatusOr<int64_t> InsertJob(int64_t batch_id, const SubmitFile& f);
  absl::Status FinishAttempt(int64_t attempt_id, absl::string_view outcome,
                             std::optional<v1::FailureClass> cls, const std::string& error,
                             const v1::CompleteRequest* report);
  // Failure path shared by Complete, lease expiry and cancel-free paths.
  absl::StatusOr<v1::JobState> FailJob(const JobRow& job, int64_t attempt_id,
                                       v1::FailureClass cls, const std::string& error,
                                       int64_t retry_after_ms);
  absl::Status CancelJob(const JobRow& job, const std::string& reason);
  absl::Status RequeueJob(int64_t job_id, int64_t batch_id, bool new_epoch,
                          absl::string_view why);
  void DropLease(int64_t job_id);
  // FAILED_PRECONDITION when `principal` may not act on `lease`.
  absl::Status CheckHolder(int64_t job_id, const LeaseInfo& lease, int64_t principal) const;
  absl::Status ExpireLeases();
  absl::Status Dispatch();
  absl::Status LeaseTo(int64_t job_id, Session& session, int64_t now);
  void NoteReady(int64_t ready_at);
  // costsrv: reports what usage grew to the observer after the commit.
  absl::Status ReportUsage(absl::StatusOr<std::vector<UsageGrowth>> grew);
  BatchInfo* BatchById(int64_t id);
  int InUse(const std::string& worker) const;

  void CheckpointLoop();
  void EffectsLoop();

  EngineOptions opt_;
  std::unique_ptr<Db> db_;
  std::thread thread_;
  // WAL checkpoints run here, on their own connection, so the engine thread
  // never stalls on one (they used to cost it 2-17 ms about once a second).
  std::thread checkpointer_;
  std::condition_variable checkpoint_cv_;  // its own, so it never takes the loop's wake-up
  // After-commit effects (gRPC replies, pushes to workers) run here, in commit
  // order, so the engine thread goes straight on to the next group commit.
  std::thread effects_thread_;
  std::mutex effects_mu_;
  std::condition_variable effects_cv_;
  std::deque<std::vector<std::function<void()>>> effects_q_;  // guarded by effects_mu_
  bool effects_stop_ = false;                                  // guarded by effects_mu_

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> pending_;  // guarded by mu_
  bool stop_ = false;                           // guarded by mu_

  // Engine-thread state.
  std::vector<std::function<void()>> after_commit_;
  std::vector<std::function<void()>> undo_;
  std::mt19937_64 rng_;
  std::map<int64_t, BatchInfo> batches_;
  FleetLimits limits_;
  std::map<std::string, int> reported_limits_;  // provider -> limit last reported
  LiveLogs live_logs_;
  std::unordered_map<int64_t, LeaseInfo> leases_;   // job id -> lease
  std::unordered_map<std::string, int> in_use_;     // worker -> leases held (leases_ by worker)
  std::set<std::pair<int64_t, int64_t>> expiries_;  // (expires_at, job id)
  std::map<int64_t, Session> sessions_;
  std::map<std::string, WorkerMem> workers_;
  int64_t next_session_id_ = 1;
  int64_t next_ready_at_ = 0;  // earliest future ready_at known; 0 = none
  bool dispatch_dirty_ = true;
  int64_t alive_written_ = 0;  // when engine_clock.alive_at was last written
};

}  // namespace assessq
