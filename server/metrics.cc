#include "server/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <mutex>

#include "common/metric_families.h"
#include "server/model.h"

namespace assessq {

double ScheduleToStartSeconds(int64_t ready_at_ms, int64_t leased_at_ms) {
  return std::max<int64_t>(0, leased_at_ms - ready_at_ms) / 1000.0;
}

double AgeSeconds(int64_t since_ms, int64_t now_ms) {
  if (since_ms <= 0) return 0;
  return std::max<int64_t>(0, now_ms - since_ms) / 1000.0;
}

std::vector<double> ScheduleToStartBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600};
}

const std::vector<std::string>& AttemptOutcomes() {
  static const auto* o =
      new std::vector<std::string>{"succeeded", "failed", "expired", "released", "cancelled"};
  return *o;
}

// State read at scrape time: its own registry of gauges, refreshed from one
// database snapshot on each Collect (the HTTP thread). When the database does
// not answer, only assessq_fleet_query_ok 0 is served, never stale numbers.
class CoordinatorMetrics::FleetCollector final : public prometheus::Collectable {
 public:
  FleetCollector(Queries* queries, Clock clock)
      : queries_(queries), clock_(std::move(clock)),
        registry_(std::make_shared<prometheus::Registry>()),
        error_registry_(std::make_shared<prometheus::Registry>()) {
    auto& jobs = GaugeFamily(*registry_, "assessq_jobs",
                             "Jobs by state (queue depth), superseded jobs left out");
    for (int s = v1::JOB_STATE_QUEUED; s <= v1::JOB_STATE_CANCELLED; ++s) {
      std::string name(StateName(static_cast<v1::JobState>(s)));
      jobs_by_state_.push_back({name, &jobs.Add({{"state", name}})});
    }
    auto gauge = [&](const char* name, const char* help) {
      return &SingleGauge(*registry_, name, help);
    };
    queued_ready_ = gauge("assessq_jobs_ready",
                          "Queued jobs available now (not waiting for a retry backoff)");
    oldest_ready_ = gauge("assessq_queue_oldest_ready_age_seconds",
                          "How long the longest-waiting available job has waited; 0 when none");
    leases_ = gauge("assessq_leases_outstanding", "Leases held by workers (jobs leased or running)");
    oldest_lease_ = gauge("assessq_lease_oldest_age_seconds",
                          "Age of the oldest outstanding lease (since it was granted); 0 when none");
    workers_ = gauge("assessq_workers_connected", "Workers with an open session");
    draining_ = gauge("assessq_workers_draining", "Connected workers drained by an operator");
    slots_ = gauge("assessq_workers_slots", "Slots the connected workers declare");
    ok_ = gauge("assessq_fleet_query_ok", "1 if the scrape-time database query answered");
    error_ok_ = &SingleGauge(*error_registry_, "assessq_fleet_query_ok",
                             "1 if the scrape-time database query answered");
    ok_->Set(1);
    error_ok_->Set(0);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::lock_guard<std::mutex> l(mu_);
    auto f = queries_->Fleet();
    if (!f.ok()) return error_registry_->Collect();
    const int64_t now = clock_();
    int64_t leases = 0;
    for (const auto& [name, g] : jobs_by_state_) {
      auto it = f->jobs_by_state.find(name);
      int64_t n = it == f->jobs_by_state.end() ? 0 : it->second;
      g->Set(static_cast<double>(n));
      if (name == "leased" || name == "running") leases += n;
    }
    queued_ready_->Set(static_cast<double>(f->queued_ready));
    oldest_ready_->Set(AgeSeconds(f->oldest_ready_at_ms, now));
    leases_->Set(static_cast<double>(leases));
    oldest_lease_->Set(AgeSeconds(f->oldest_lease_at_ms, now));
    workers_->Set(static_cast<double>(f->workers_connected));
    draining_->Set(static_cast<double>(f->workers_draining));
    slots_->Set(static_cast<double>(f->worker_slots));
    return registry_->Collect();
  }

 private:
  Queries* queries_;
  Clock clock_;
  std::shared_ptr<prometheus::Registry> registry_, error_registry_;
  std::vector<std::pair<std::string, prometheus::Gauge*>> jobs_by_state_;
  prometheus::Gauge *queued_ready_, *oldest_ready_, *leases_, *oldest_lease_, *workers_,
      *draining_, *slots_, *ok_, *error_ok_;
  mutable std::mutex mu_;  // one scrape at a time
};

CoordinatorMetrics::CoordinatorMetrics(Queries* queries, Clock clock)
    : endpoint_(std::make_shared<FleetCollector>(queries, clock ? std::move(clock) : SystemNowMs)) {
  schedule_to_start_ =
      &prometheus::BuildHistogram()
           .Name("assessq_schedule_to_start_seconds")
           .Help("From when a job became available (queued and ready) to when it was leased")
           .Register(endpoint_.registry())
           .Add({}, ScheduleToStartBuckets());
  attempts_started_ = &SingleCounter(endpoint_.registry(), "assessq_attempts_started_total",
                                     "Attempts started (leases granted)");
  attempts_finished_ =
      &CounterFamily(endpoint_.registry(), "assessq_attempts_finished_total", "Attempts ended, by outcome");
  for (const auto& o : AttemptOutcomes()) attempts_finished_->Add({{"outcome", o}});
  failures_ = &CounterFamily(endpoint_.registry(), "assessq_attempt_failures_total",
                             "Failed (and expired) attempts, by failure class");
  for (int c = v1::FailureClass_MIN; c <= v1::FailureClass_MAX; ++c) {
    if (!v1::FailureClass_IsValid(c) || c == v1::FAILURE_CLASS_UNSPECIFIED) continue;
    failures_->Add({{"class", std::string(ClassName(static_cast<v1::FailureClass>(c)))}});
  }
  model_api_limit_ = &GaugeFamily(
      endpoint_.registry(), "assessq_model_api_limit",
      "Fleet-wide concurrency limit applied to a model provider's jobs (0: none)");
  database_up_ = &SingleGauge(
      endpoint_.registry(), "assessq_database_up",
      "1 while the health probe finds the database (fresh connection, same file)");
  database_up_->Set(1);
  model_tokens_ = &CounterFamily(endpoint_.registry(), "assessq_model_tokens_total",
                                 "Model tokens the egress gateways counted, by provider, model "
                                 "and kind (input, output, cache_write, cache_read)");
  model_requests_ =
      &CounterFamily(endpoint_.registry(), "assessq_model_requests_total",
                     "Model requests the egress gateways counted, by provider and model");
  model_cost_ = &CounterFamily(endpoint_.registry(), "assessq_model_cost_usd_total",
                               "USD the counted tokens cost by the batches' prices, by provider "
                               "and model (models without a price are not counted here)");
}

CoordinatorMetrics::~CoordinatorMetrics() = default;

void CoordinatorMetrics::OnLeased(int64_t, int64_t ready_at_ms, int64_t leased_at_ms) {
  attempts_started_->Increment();
  schedule_to_start_->Observe(ScheduleToStartSeconds(ready_at_ms, leased_at_ms));
}

void CoordinatorMetrics::OnAttemptFinished(absl::string_view outcome,
                                           std::optional<v1::FailureClass> failure_class) {
  attempts_finished_->Add({{"outcome", std::string(outcome)}}).Increment();
  if (failure_class && *failure_class != v1::FAILURE_CLASS_UNSPECIFIED)
    failures_->Add({{"class", std::string(ClassName(*failure_class))}}).Increment();
}

void CoordinatorMetrics::SetModelApiLimit(absl::string_view provider, double limit) {
  model_api_limit_->Add({{"provider", std::string(provider)}}).Set(limit);
}

void CoordinatorMetrics::OnModelUsage(const v1::ModelUsage& added, std::optional<double> usd) {
  // Names come from the agent's traffic: a bounded set of label values
  // (the text format escapes them; server/pricing.h already cut them).
  auto label = [](std::string v) {  // no control character in a label value
    for (char& c : v)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    return v;
  };
  std::pair<std::string, std::string> key{label(added.provider()), label(added.model())};
  {
    std::lock_guard<std::mutex> l(model_mu_);
    if (!model_labels_.count(key)) {
      if (model_labels_.size() >= kMaxModelLabels) key.second = "(other models)";
      model_labels_.insert(key);
    }
  }
  const auto& [provider, model] = key;
  const std::pair<const char*, int64_t> kinds[] = {
      {"input", added.input_tokens()},
      {"output", added.output_tokens()},
      {"cache_write", added.cache_write_tokens()},
      {"cache_read", added.cache_read_tokens()}};
  for (const auto& [kind, n] : kinds)
    if (n > 0)
      model_tokens_->Add({{"provider", provider}, {"model", model}, {"kind", kind}})
          .Increment(static_cast<double>(n));
  if (added.requests() > 0)
    model_requests_->Add({{"provider", provider}, {"model", model}})
        .Increment(static_cast<double>(added.requests()));
  if (usd && *usd > 0) model_cost_->Add({{"provider", provider}, {"model", model}}).Increment(*usd);
}

void CoordinatorMetrics::SetDatabaseUp(bool up) { database_up_->Set(up ? 1 : 0); }

std::vector<std::weak_ptr<prometheus::Collectable>> CoordinatorMetrics::collectables() const {
  return endpoint_.collectables();
}

}  // namespace assessq
