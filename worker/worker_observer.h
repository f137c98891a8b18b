// What workerd's loop tells whoever watches it (Prometheus metrics, tests):
// a job's run began, a job's run ended with this report. Called on the job's
// own thread; implementations must be cheap, thread-safe and must not call
// back into the Worker. No-op defaults, so an observer overrides only what
// it needs.
#pragma once

#include <cstdint>

#include "assessq/v1/assessq.pb.h"

namespace assessq {

class WorkerObserver {
 public:
  virtual ~WorkerObserver() = default;
  // A leased job's run begins (before its container is made).
  virtual void OnJobStarted(int64_t job_id) {}
  // A job's run ended. `report` is what goes to the coordinator (outcome,
  // failure class, network log); `reported` is false when nothing is sent
  // (the lease was cancelled or lost while it ran).
  virtual void OnJobFinished(const v1::CompleteRequest& report, bool reported) {}
};

}  // namespace assessq
