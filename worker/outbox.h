// The worker's durable outbox: a finished attempt's report (result or
// failure, keyed by job and fencing token) is written to STATE_DIR/outbox and
// fsynced before delivery starts, and removed only once the coordinator has
// acknowledged it or refused it as stale. After a crash or restart of either
// side the pending reports are delivered again; the coordinator treats a
// repeat of an acknowledged report as a duplicate, so nothing is lost or
// stored twice. A report is fitted to the coordinator's caps before it is
// stored (FitReport), so every file is one the coordinator accepts and this
// outbox can read back; a file it cannot read is moved aside, not re-read.
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
  // Every pending report, oldest first; unreadable files are named in
  // *problems and renamed to NAME.unreadable.
  std::vector<v1::CompleteRequest> Pending(std::vector<std::string>* problems = nullptr);

 private:
  std::string Path(int64_t job_id, int64_t token) const;
  std::string dir_;
};

}  // namespace assessq
