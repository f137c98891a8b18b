// workerd's Prometheus metrics, served on --metrics-listen. Events come from
// the worker loop through WorkerObserver (jobs started, finished by outcome,
// failures by class, and the egress gateway's allowed and denied requests,
// counted from each attempt's network log when it ends); state is read at
// scrape time on the HTTP thread: the worker's slots, slots in use, offered
// capacity and draining flag (Worker::state), and the containers of this
// worker Docker says are running. The conversions are pure functions,
// unit-tested.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/metric_families.h"
#include "worker/worker_loop.h"
#include "worker/worker_observer.h"

namespace prometheus {
class Collectable;
class Registry;
class Counter;
template <typename T>
class Family;
}  // namespace prometheus

namespace assessq {

// How a job's run ended, as the jobs-finished counter labels it:
// succeeded, failed, released (handed back), or stopped (nothing reported:
// the lease was cancelled or lost).
std::string JobOutcomeLabel(const v1::CompleteRequest& report, bool reported);

struct GatewayCounts {
  int64_t allowed = 0;
  int64_t denied = 0;
};
// Counts the decisions in a gateway network log (a JSON array of entries
// with "decision": "allow" | "deny"); "" or malformed JSON counts nothing.
GatewayCounts CountGatewayDecisions(absl::string_view netlog_json);

class WorkerMetrics final : public WorkerObserver {
 public:
  // Scrape-time sources; either may be unset (its gauges are then left out).
  struct Sources {
    std::function<WorkerState()> state;
    // Containers of this worker that are running now.
    std::function<absl::StatusOr<int64_t>()> containers_running;
  };
  WorkerMetrics();
  ~WorkerMetrics() override;
  // Set before the endpoint starts serving.
  void SetSources(Sources s);

  void OnJobStarted(int64_t job_id) override;
  void OnJobFinished(const v1::CompleteRequest& report, bool reported) override;

  std::vector<std::weak_ptr<prometheus::Collectable>> collectables() const;

 private:
  class StateCollector;
  MetricsSources<StateCollector> endpoint_;
  prometheus::Counter* started_ = nullptr;
  prometheus::Family<prometheus::Counter>* finished_ = nullptr;
  prometheus::Family<prometheus::Counter>* failures_ = nullptr;
  prometheus::Counter* gw_allowed_ = nullptr;
  prometheus::Counter* gw_denied_ = nullptr;
};

}  // namespace assessq
