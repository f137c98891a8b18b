// workerd's loop: holds the dispatch session to the coordinator, runs each
// leased job on the Executor in its own thread, heartbeats every running
// lease (a heartbeat refused as "lease not held" stops that job; one that
// cannot reach the coordinator does not), reports each outcome through the
// durable outbox, reaps what crashed runs left behind,
// lowers its capacity to zero while the host is short of disk or memory, and
// drains: first stop taking leases and let running jobs finish, then (on a
// second request) stop them and hand their jobs back without using an
// attempt.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "worker/api_client.h"
#include "worker/executor.h"
#include "worker/job_spec.h"
#include "worker/outbox.h"
#include "worker/worker_observer.h"

namespace assessq {

struct WorkerOptions {
  ApiClientOptions api;
  std::string state_dir;
  LocalPolicy policy;
  Profile default_profile;  // used when a batch's profile is "{}"
  int64_t reap_interval_ms = 60000;
  int64_t health_interval_ms = 5000;
  WorkerObserver* observer = nullptr;  // unset: nobody watches (metrics)
};

// The worker's state at one instant, for health and scrape-time metrics.
struct WorkerState {
  int slots = 0;          // configured
  int running = 0;        // jobs being run (slots in use)
  int capacity = 0;       // slots offered to the coordinator now
  bool draining = false;  // SIGTERM drain: no new leases, never undone
  // The coordinator drained this worker (`assessctl workers drain`); cleared
  // when it leases to it again (it only does once undrained).
  bool drained_by_coordinator = false;
  bool host_healthy = true;  // enough free disk and memory
};

class Worker {
 public:
  Worker(WorkerOptions opt, std::unique_ptr<Executor> executor);
  ~Worker();
  absl::Status Start();
  void Drain();  // stop taking leases; running jobs finish
  void Abort();  // stop running jobs and release them (no attempt used)
  // Blocks until drained (no running job) and the outbox is delivered or
  // `outbox_grace_ms` has passed.
  void Wait(int64_t outbox_grace_ms = 10000);
  int running() const;
  WorkerState state() const;

 private:
  // Keyed by lease token (the lease's fencing token): a job cancelled and leased again on this worker
  // has two entries until the old run has wound down.
  struct Running {
    int64_t job;
    std::shared_ptr<StopSignal> stop;
    bool release = false;
    v1::Usage usage;  // the job's model usage so far (sent with heartbeats)
  };
  void OnMessage(const v1::CoordinatorMessage& m);
  void RunJob(v1::Lease lease);
  void Report(const v1::CompleteRequest& r);
  void HeartbeatLoop();
  void DeliveryLoop();
  void HousekeepingLoop();
  int CapacityNow();

  WorkerOptions opt_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<ApiClient> api_;
  Outbox outbox_;

  mutable absl::Mutex mu_;
  std::map<int64_t, Running> running_ ABSL_GUARDED_BY(mu_);  // by lease token
  int64_t lease_period_ms_ ABSL_GUARDED_BY(mu_) = 30000;
  bool outbox_dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool healthy_ ABSL_GUARDED_BY(mu_) = true;
  int capacity_sent_ ABSL_GUARDED_BY(mu_) = -1;

  std::atomic<bool> draining_{false};
  std::atomic<bool> drained_by_coordinator_{false};
  std::atomic<bool> stop_threads_{false};
  std::thread heartbeat_, delivery_, housekeeping_;
};

}  // namespace assessq
