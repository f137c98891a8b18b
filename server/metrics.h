// coordinatord's Prometheus metrics, served on --metrics-listen. Two kinds:
// events the engine reports through EngineObserver (attempt counters and the
// schedule-to-start histogram, updated on the engine's effects thread after
// each commit, never blocking the engine), and state read from the database at scrape
// time, on the HTTP server's thread, through the read side (Queries::Fleet):
// jobs by state, leases and the oldest one's age, workers. The model-API
// limit gauge is set by whatever decides the limit (SetModelApiLimit, or
// EngineObserver::OnModelApiLimit from the engine); the database gauge by the
// health probe. The small conversions are pure functions, unit-tested.
//
// Metric names: see kMetricNames below and README "Metrics and health".
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/metric_families.h"
#include "server/engine.h"
#include "server/engine_observer.h"
#include "server/queries.h"

namespace prometheus {
class Collectable;
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace assessq {

// Seconds from when a job became available to when it was leased (0 if the
// clocks say it was leased before it was ready).
double ScheduleToStartSeconds(int64_t ready_at_ms, int64_t leased_at_ms);
// Age in seconds of something that began at `since_ms` (0: nothing, age 0).
double AgeSeconds(int64_t since_ms, int64_t now_ms);
// The schedule-to-start histogram's bucket bounds (seconds).
std::vector<double> ScheduleToStartBuckets();
// Outcomes an attempt can end with, as the engine records them.
const std::vector<std::string>& AttemptOutcomes();

class CoordinatorMetrics final : public EngineObserver {
 public:
  // `queries` must outlive this object's collectables' last scrape.
  explicit CoordinatorMetrics(Queries* queries, Clock clock = nullptr);
  ~CoordinatorMetrics() override;

  // EngineObserver (the engine's effects thread, after commit).
  void OnLeased(int64_t job_id, int64_t ready_at_ms, int64_t leased_at_ms) override;
  void OnAttemptFinished(absl::string_view outcome,
                         std::optional<v1::FailureClass> failure_class) override;
  void OnModelApiLimit(absl::string_view provider, double limit) override {
    SetModelApiLimit(provider, limit);
  }
  // assessq_model_tokens_total{provider,model,kind}, assessq_model_requests_total
  // and assessq_model_cost_usd_total{provider,model} (priced models only); at
  // most kMaxModelLabels (provider, model) pairs, the rest as model="(other models)".
  void OnModelUsage(const v1::ModelUsage& added, std::optional<double> usd) override;
  static constexpr size_t kMaxModelLabels = 100;

  // assessq_model_api_limit{provider=...}: the fleet-wide concurrency limit
  // now applied to the provider's jobs. Thread-safe.
  void SetModelApiLimit(absl::string_view provider, double limit);
  // assessq_database_up: 1 while the health probe finds the database.
  void SetDatabaseUp(bool up);

  // What the HTTP endpoint serves.
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables() const;

 private:
  class FleetCollector;
  MetricsSources<FleetCollector> endpoint_;
  prometheus::Histogram* schedule_to_start_ = nullptr;
  prometheus::Counter* attempts_started_ = nullptr;
  prometheus::Family<prometheus::Counter>* attempts_finished_ = nullptr;
  prometheus::Family<prometheus::Counter>* failures_ = nullptr;
  prometheus::Family<prometheus::Gauge>* model_api_limit_ = nullptr;
  prometheus::Gauge* database_up_ = nullptr;
  prometheus::Family<prometheus::Counter>* model_tokens_ = nullptr;
  prometheus::Family<prometheus::Counter>* model_requests_ = nullptr;
  prometheus::Family<prometheus::Counter>* model_cost_ = nullptr;
  std::mutex model_mu_;
  std::set<std::pair<std::string, std::string>> model_labels_;  // guarded by model_mu_
};

}  // namespace assessq
