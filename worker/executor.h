// The job runner behind an interface: the worker loop hands an Executor one
// leased job and gets back its outcome, so a Kubernetes or microVM backend
// can replace Docker without touching leasing, heartbeats or the outbox.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "assessq/v1/assessq.pb.h"
#include "worker/job_spec.h"

namespace assessq {

struct JobRequest {
  int64_t job_id = 0;
  int64_t lease_token = 0;  // the lease's fencing token (the attempt id)
  std::string batch;
  std::string dataset_key;
  std::string dataset_name;
  std::string metadata;
  JobSpec spec;
  // Called (on the executor's thread) with output as the job writes it, in
  // order, about once a second; `skipped` counts bytes not delivered (more
  // than one poll could carry). Unset: nobody follows.
  std::function<void(const std::string& chunk, int64_t skipped)> on_output;
  // The job's cap on its model usage (the lease's, else the profile's
  // limits.budget without prices); no field set: no cap.
  v1::JobBudget budget;
  // Called (on the executor's thread) about once a second with the job's
  // model usage so far, as the egress gateway counted it. Unset: nobody asks.
  std::function<void(const v1::Usage& usage)> on_usage;
};

struct JobOutcome {
  enum Kind { kSucceeded, kFailed, kCancelled } kind = kFailed;
  std::string result_json;                   // kSucceeded
  v1::FailureClass failure_class = v1::FAILURE_CLASS_UNSPECIFIED;  // kFailed
  std::string reason;
  int exit_code = 0;
  std::string log_tail;
  std::string details_json;  // image id, durations, OOM, verified settings
  std::string netlog_json;   // the gateway's log of this attempt ("" without one)
  int64_t retry_after_ms = 0;  // model_api: the provider's retry-after
  v1::Usage usage;             // the gateway's count of the job's model usage
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
};

// Set from another thread to stop a running job (cancel from the
// coordinator, lost lease, or a hard drain).
class StopSignal {
 public:
  void Stop(std::string reason) {
    std::lock_guard<std::mutex> l(mu_);
    if (stopped_) return;
    stopped_ = true;
    reason_ = std::move(reason);
    cv_.notify_all();
  }
  bool stopped() const { return stopped_.load(); }
  std::string reason() {
    std::lock_guard<std::mutex> l(mu_);
    return reason_;
  }
  // Sleeps up to `ms`; returns true if stopped meanwhile.
  bool WaitFor(int64_t ms) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::milliseconds(ms), [&] { return stopped_.load(); });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopped_{false};
  std::string reason_;
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Checks the backend answers (at start-up and for health).
  virtual absl::Status Check() = 0;
  // Runs the job to an outcome; never throws.
  virtual JobOutcome Run(const JobRequest& req, StopSignal& stop) = 0;
  // Removes whatever earlier runs of this worker left behind that belongs to
  // no live lease. `is_live(job)` is asked for each leftover after it was
  // found, so a lease that arrives while reaping (registered before its
  // files and container exist) is never taken for a leftover.
  virtual absl::Status Reap(const std::function<bool(int64_t job)>& is_live) = 0;
};

}  // namespace assessq
