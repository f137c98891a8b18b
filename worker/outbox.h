// The worker's durable outbox: a finished attempt's report (result or
// failure, keyed by job and lease token) is written to STATE_DIR/outbox and
// fsynced before delivery starts, and removed only once the coordinator has
// acknowledged it or refused it for good (its lease is gone, or the report
// itself is refused). After a crash or restart of either side the pending
// reports are delivered again; the coordinator treats a repeat of an
// acknowledged report as a duplicate, so nothing is lost or stored twice. A
// report is fitted to the coordinator's caps before it is stored
// (FitReport), so every file is one the coordinator accepts and this outbox
// can read back; a file it cannot read is moved aside, not re-read.
//
// What a refusal does to a report is DispositionFor (pure, table-tested with
// every class in tests/unit/call_failure_test.cc): a report refused for the
// worker's bearer token (revoked, unknown, wrong role) is parked in
// STATE_DIR/outbox/parked and the round goes on with the next report, so one
// refused credential never holds the reports behind it; parked reports go
// back in the queue when workerd starts again (Init), which is how a worker
// gets a new token.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "assessq/v1/assessq.pb.h"
#include "common/call_failure.h"

namespace assessq {

// What delivery does with one report after one attempt to send it.
enum class Disposition {
  kRemove,        // acknowledged, or refused for good: delete it
  kPark,          // refused for the worker's credentials: set aside, go on
  kKeepAndGoOn,   // the coordinator failed on this one: keep it, send the next
  kKeepAndStop,   // the coordinator is unreachable: keep it, end the round
};
Disposition DispositionFor(CallFailure f);

// What one delivery round did.
struct DeliveryRound {
  int delivered = 0;  // acknowledged
  int dropped = 0;    // refused for good (stale lease, refused report)
  int parked = 0;     // refused for the worker's credentials
  int kept = 0;       // to send again later
  bool stopped = false;  // ended early: the coordinator is unreachable
};

class Outbox {
 public:
  using SendFn = std::function<absl::StatusOr<v1::CompleteResponse>(const v1::CompleteRequest&)>;

  explicit Outbox(std::string dir) : dir_(std::move(dir)) {}
  // Creates the directory, removes half-written files and puts parked
  // reports back in the queue.
  absl::Status Init();
  absl::Status Put(const v1::CompleteRequest& r);
  absl::Status Remove(int64_t job_id, int64_t lease_token);
  // Every pending report, oldest first; unreadable files are named in
  // *problems and renamed to NAME.unreadable.
  std::vector<v1::CompleteRequest> Pending(std::vector<std::string>* problems = nullptr);
  // File names of the parked reports.
  std::vector<std::string> Parked() const;
  // Sends every pending report, oldest first, and applies DispositionFor to
  // each answer.
  DeliveryRound Deliver(const SendFn& send);

 private:
  std::string Path(int64_t job_id, int64_t lease_token) const;
  std::string ParkedDir() const { return dir_ + "/parked"; }
  absl::Status Park(int64_t job_id, int64_t lease_token);
  std::string dir_;
};

}  // namespace assessq
