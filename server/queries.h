// The coordinator's read side: status, listings, job detail, results and
// export, answered from read-only SQLite connections (WAL snapshots) on the
// caller's thread, so operator reads never stall the write/dispatch thread.
// The statements are the JobStore's; this keeps the pool of connections and
// one snapshot per answer. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "assessq/v1/assessq.pb.h"
#include "server/db.h"
#include "server/engine.h"
#include "server/job_store.h"
#include "server/usage_store.h"

namespace assessq {

class Queries {
 public:
  Queries(std::string db_path, Clock clock);
  ~Queries();

  absl::StatusOr<v1::StatusResponse> Status(const std::string& batch);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& req);
  absl::StatusOr<v1::JobDetail> ShowJob(const v1::JobRef& ref);
  absl::StatusOr<v1::ResultResponse> GetResult(const v1::JobRef& ref);
  // Pages through the batch; `sink` returns false to stop.
  absl::Status Export(const v1::ExportRequest& req,
                      const std::function<bool(v1::ExportRecord)>& sink);
  // What checking job `job_id`'s result needs (batch, dataset, profile, metadata).
  absl::StatusOr<ResultContext> ResultContextFor(int64_t job_id);
  // Checks the database answers (for health).
  absl::Status Ping();
  // Job counts by state, leases and workers, in one snapshot.
  absl::StatusOr<FleetSnapshot> Fleet();
  // Where attempts' usage and batches' spend are read (set once, before use).
  void set_usage(std::shared_ptr<UsageStore> u) { usage_ = std::move(u); }

 private:
  class Snapshot;  // a pooled connection inside one read transaction
  absl::StatusOr<std::unique_ptr<Db>> Acquire();
  void Release(std::unique_ptr<Db> db);
  // Runs `fn` on a store over a pooled connection, in one snapshot.
  template <typename Fn>
  auto InSnapshot(Fn&& fn) -> decltype(fn(std::declval<JobStore&>()));

  std::string path_;
  Clock clock_;
  std::shared_ptr<UsageStore> usage_ = std::make_shared<UsageStore>();
  std::mutex mu_;
  std::vector<std::unique_ptr<Db>> pool_;
};

}  // namespace assessq
