// The worker's durable outbox: a finished attempt's report (result or
// failure, keyed by job and fencing token) is written to STATE_DIR/outbox and
// fsynced before delivery starts, and removed only once the coordinator has
// acknowledged it or refused it as stale. After a crash or restart of either
// side the pending reports are delivered again; the coordinator treats a
// repeat of an acknowledged report as a duplicate, so nothing is lost or
// stored twice.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "assessq/v1/assessq.pb.h"

namespace assessq {

class Outbox {
 public:
  explicit Outbox(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Init();
  absl::Status Put(const v1::CompleteRequest& r);
  absl::Status Remove(int64_t job_id, int64_t token);
  // Every pending report, oldest first; unreadable files are skipped and named.
  std::vector<v1::CompleteRequest> Pending(std::vector<std::string>* problems = nullptr);

 private:
  std::string Path(int64_t job_id, int64_t token) const;
  std::string dir_;
};

}  // namespace assessq
