// The coordinator's SQL: every statement and row type of batches, jobs,
// inputs, attempts, results, events, workers and the fleet limits, for the
// engine's write connection and for the read side's snapshots (Queries) alike.
// A JobStore is a view over one connection; it holds no state and decides
// nothing: callers pass the time and the values, and the engine's
// transaction (server/txn.h) decides when its writes commit.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "assessq/v1/assessq.pb.h"
#include "server/db.h"
#include "server/fleet_limits.h"

namespace assessq {

class UsageStore;

// A job named by id, or by batch and dataset key (its current submission).
struct JobKey {
  int64_t job_id = 0;
  std::string batch;
  std::string dataset_key;
  // True when it names a job at all (else the caller means a whole batch).
  bool given() const { return job_id > 0 || !dataset_key.empty(); }
};

struct JobRow {
  int64_t id = 0, batch_id = 0;
  std::string dataset_key, dataset_name;
  int64_t input_id = 0;  // inputs.id
  std::string input_sha256;
  std::string state;
  std::optional<int64_t> current_attempt;
  std::string worker;  // of the current attempt ("" when none)
  int64_t attempts = 0;  // attempts so far (all epochs)
  int64_t retry_epoch = 0;
  bool superseded = false;
  int64_t ready_at = 0;
};

struct BatchRow {
  int64_t id = 0;
  std::string name, profile_json, retry_policy_json;
  bool paused = false;
  LimitConfig limits;
};

// A lease held when the coordinator stopped (jobs leased or running).
struct HeldLeaseRow {
  int64_t job_id = 0;
  int64_t attempt_id = 0;  // the fencing token
  std::string worker;
  bool running = false;
  int64_t batch_id = 0;
  int64_t principal = 0;         // worker token id the lease is bound to (0: none)
  int64_t lease_expires_at = 0;  // 0: stored without one (before schema v4)
};

struct WorkerRow {
  std::string name;
  int slots = 0;
  bool draining = false;
  int64_t last_seen = 0;
};

// What a worker reported with an attempt's end (absent for expiry, cancel).
struct AttemptReport {
  int exit_code = 0;
  std::string log_tail;
  std::string netlog_json;
  std::string details_json;
  int64_t started_at_ms = 0;  // 0: not reported
};

// An attempt as recorded: for telling a re-sent completion from a stale one.
struct RecordedAttempt {
  int64_t job_id = 0;
  std::string outcome;
  std::string failure_class;  // "" when none
};

// The fields a new job is made of.
struct NewJob {
  std::string source_name;
  std::string dataset_key;
  std::string dataset_name;
  std::string content;
  std::string sha256;
};

// The fleet at one instant, for the coordinator's scrape-time gauges
// (server/metrics.cc). Superseded jobs are left out.
struct FleetSnapshot {
  std::map<std::string, int64_t> jobs_by_state;  // every state, zeros included
  int64_t queued_ready = 0;        // queued with ready_at <= now
  int64_t oldest_ready_at_ms = 0;  // earliest ready_at of those; 0: none
  int64_t oldest_lease_at_ms = 0;  // leased_at of the oldest outstanding lease; 0: none
  int64_t workers_connected = 0;
  int64_t workers_draining = 0;    // of the connected ones
  int64_t worker_slots = 0;        // declared by the connected ones
};

class JobStore {
 public:
  // `usage`: the read side's cost figures (server/usage_store.h); unset:
  // none are filled in.
  explicit JobStore(Db& db, UsageStore* usage = nullptr) : db_(db), usage_(usage) {}

  // ------------------------------------------------- loading at start-up
  absl::StatusOr<std::vector<BatchRow>> Batches();
  absl::StatusOr<std::vector<std::pair<std::string, LimitConfig>>> ProviderLimits();
  absl::StatusOr<std::vector<HeldLeaseRow>> HeldLeases();
  absl::StatusOr<std::vector<WorkerRow>> Workers();
  absl::Status MarkAllWorkersDisconnected();
  // When the engine last said it was alive (see Engine::Load); unset: never.
  absl::StatusOr<std::optional<int64_t>> AliveAt();
  absl::Status SetAliveAt(int64_t now);

  // ------------------------------------------------------------- events
  absl::Status AddEvent(int64_t now, std::optional<int64_t> batch_id,
                        std::optional<int64_t> job_id, absl::string_view kind,
                        absl::string_view detail);

  // -------------------------------------------------------------- jobs
  absl::StatusOr<std::optional<JobRow>> LoadJob(int64_t id);
  // The job `key` names (by id, or the current job of batch + dataset key).
  absl::StatusOr<std::optional<int64_t>> FindJobId(const JobKey& key);
  absl::StatusOr<std::optional<JobRow>> FindJob(const JobKey& key);
  // The current (not superseded) job of a dataset in a batch.
  absl::StatusOr<std::optional<int64_t>> CurrentJob(int64_t batch_id,
                                                    absl::string_view dataset_key);
  // The job's metadata file as submitted.
  absl::StatusOr<std::string> ReadInput(int64_t input_id);
  // Inserts the input and a queued job (ready now); returns the job id.
  absl::StatusOr<int64_t> InsertJob(int64_t batch_id, const NewJob& f, int64_t now);
  // `old` is replaced by `by`, in two steps: marked, then linked.
  absl::Status MarkSuperseded(int64_t old_job, int64_t by);
  absl::Status RequeueJob(int64_t job_id, bool new_epoch, int64_t now);
  absl::Status SetJobFailed(int64_t job_id, absl::string_view state, int64_t ready_at,
                            absl::string_view failure_class, absl::string_view error,
                            int64_t now);
  // Succeeded or cancelled: no attempt current any more.
  absl::Status SetJobEnded(int64_t job_id, absl::string_view state, int64_t now);
  // A released attempt does not count as one.
  absl::Status UncountAttempt(int64_t job_id);
  absl::Status MarkJobRunning(int64_t job_id, int64_t attempt_id, int64_t now,
                              int64_t lease_expires_at);
  absl::Status RenewLease(int64_t job_id, int64_t lease_expires_at);
  // Jobs a batch-wide retry or cancel acts on.
  absl::StatusOr<std::vector<int64_t>> JobsNeedingAttention(
      int64_t batch_id, std::optional<absl::string_view> failure_class);
  absl::StatusOr<std::vector<int64_t>> JobsInFlight(int64_t batch_id);
  // Up to `limit` queued jobs ready at `now`, oldest first, leaving out
  // `blocked` batches: (job id, batch id).
  absl::StatusOr<std::vector<std::pair<int64_t, int64_t>>> ReadyJobs(
      int64_t now, const std::vector<int64_t>& blocked, int limit);
  // The earliest ready_at of a queued job after `now`.
  absl::StatusOr<std::optional<int64_t>> NextReadyAt(int64_t now);

  // ----------------------------------------------------------- attempts
  // Inserts the attempt and marks the job leased; returns the attempt id.
  absl::StatusOr<int64_t> LeaseJob(const JobRow& job, int number, const std::string& worker,
                                   int64_t now, int64_t lease_expires_at, int64_t principal);
  absl::Status FinishAttempt(int64_t attempt_id, absl::string_view outcome,
                             std::optional<absl::string_view> failure_class,
                             absl::string_view error, int64_t now, const AttemptReport* report);
  absl::StatusOr<std::optional<RecordedAttempt>> Attempt(int64_t attempt_id);
  // Failures of the job's current retry epoch in `failure_class`.
  absl::StatusOr<int> CountFailures(const JobRow& job, absl::string_view failure_class);
  // The validation errors of the job's last invalid_output attempt before
  // `before_attempt` ("" when none).
  absl::StatusOr<std::string> PreviousErrors(int64_t job_id, int64_t before_attempt);

  // ------------------------------------------------------------ results
  absl::Status InsertResult(int64_t job_id, int64_t attempt_id, absl::string_view result_json,
                            absl::string_view flags_json, int64_t now);

  // ------------------------------------------------------------ batches
  absl::StatusOr<int64_t> InsertBatch(absl::string_view name, absl::string_view profile_json,
                                      absl::string_view retry_policy_json, int64_t now);
  absl::Status UpdateBatchProfile(int64_t id, absl::string_view profile_json,
                                  absl::string_view retry_policy_json);
  absl::Status SetBatchPaused(int64_t id, bool paused);
  absl::Status SetBatchLimits(int64_t id, const LimitConfig& c);
  absl::Status SetProviderLimits(absl::string_view provider, const LimitConfig& c);

  // ------------------------------------------------------------ workers
  absl::Status WorkerConnected(absl::string_view name, int slots, int64_t now);
  absl::Status WorkerDisconnected(absl::string_view name, int64_t now);
  absl::Status SetWorkerDraining(absl::string_view name, bool draining);

  // ---------------------------------------------- the read side (Queries)
  // Each answers from the connection's current snapshot.
  absl::Status Ping();
  absl::StatusOr<v1::StatusResponse> Status(const std::string& batch, int64_t now);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& req);
  absl::StatusOr<v1::JobDetail> ShowJob(const JobKey& key);
  absl::StatusOr<v1::ResultResponse> GetResult(const JobKey& key);
  absl::Status Export(const v1::ExportRequest& req,
                      const std::function<bool(v1::ExportRecord)>& sink);
  // What checking a job's result needs: batch, dataset key and name,
  // profile, metadata.
  struct CheckInputs {
    std::string batch, dataset_key, dataset_name, profile_json, metadata;
  };
  absl::StatusOr<CheckInputs> ResultInputs(int64_t job_id);
  absl::StatusOr<FleetSnapshot> Fleet(int64_t now);

 private:
  // The job's id, or NOT_FOUND naming what was asked for.
  absl::StatusOr<int64_t> ResolveJob(const JobKey& key);
  Db& db_;
  UsageStore* usage_;
};

}  // namespace assessq
