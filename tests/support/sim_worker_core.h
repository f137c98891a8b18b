// SimWorkerCore: the simulated worker shared by assessq-simworker and
// lifecycle_bench. One ApiClient session; leases queued FIFO to `slots` slot
// threads; each slot heartbeats its lease (running=true), has the result
// maker fill the completion, completes it (optionally retrying like an
// outbox), then frees the slot. Hooks let a caller observe each lease's
// arrival and each freed slot (the bench's latency probes).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/api_client.h"

namespace aqtest {

struct SimWorkerHooks {
  using TimePoint = std::chrono::steady_clock::time_point;
  // Fills the completion (result or failure) for a heartbeaten lease; runs on
  // slot thread `slot` (0..slots-1). Required.
  std::function<void(int slot, const assessq::v1::Lease&, assessq::v1::CompleteRequest&)> make_result;
  // On the session thread as each lease arrives, before it is queued.
  std::function<void(const assessq::v1::Lease&, TimePoint)> on_lease;
  // A refused heartbeat: return true to work the lease anyway, false to drop
  // it (the slot is then freed). Unset: drop on kFailedPrecondition only.
  std::function<bool(const absl::Status&)> on_heartbeat_error;
  // The completion's final answer (the last one when retrying).
  std::function<void(const assessq::v1::CompleteRequest&,
                     const absl::StatusOr<assessq::v1::CompleteResponse>&)>
      on_complete;
  // A slot finished its lease at this time (after on_complete, or a drop).
  std::function<void(TimePoint)> on_slot_free;
};

struct SimWorkerOptions {
  int slots = 2;
  // Retry a completion (backoff 20 ms .. 1 s) until acknowledged, refused
  // (kFailedPrecondition / kInvalidArgument) or stopped; else one call.
  bool retry_complete = false;
  int complete_timeout_ms = 30000;
};

class SimWorkerCore {
 public:
  SimWorkerCore(std::unique_ptr<assessq::ApiClient> client, SimWorkerOptions opt,
                SimWorkerHooks hooks);
  ~SimWorkerCore() { Stop(); }

  void Start();
  // Ends the slot threads (a lease in progress finishes its current call)
  // and the session. Idempotent.
  void Stop();
  bool welcomed() const { return welcomed_; }

 private:
  void SlotLoop(int slot);
  absl::StatusOr<assessq::v1::CompleteResponse> Complete(const assessq::v1::CompleteRequest& c);

  std::unique_ptr<assessq::ApiClient> client_;
  SimWorkerOptions opt_;
  SimWorkerHooks hooks_;
  std::vector<std::thread> threads_;
  std::atomic<bool> welcomed_{false};
  std::atomic<bool> stop_{false};
  bool started_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<assessq::v1::Lease> todo_;  // guarded by mu_
};

}  // namespace aqtest
