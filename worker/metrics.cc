#include "worker/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "common/metric_families.h"
#include "common/vocabulary.h"

namespace assessq {
std::string JobOutcomeLabel(const v1::CompleteRequest& r, bool reported) {
  auto o = OutcomeOfReport(r);
  if (!reported || !o) return "stopped";
  return std::string(OutcomeName(*o));
}

GatewayCounts CountGatewayDecisions(absl::string_view netlog_json) {
  GatewayCounts c;
  if (netlog_json.empty()) return c;
  auto j = nlohmann::json::parse(netlog_json.begin(), netlog_json.end(), nullptr, false);
  if (!j.is_array()) return c;
  for (const auto& e : j) {
    if (!e.is_object()) continue;
    auto d = e.find("decision");
    if (d == e.end() || !d->is_string()) continue;
    if (*d == "allow") ++c.allowed;
    else if (*d == "deny") ++c.denied;
  }
  return c;
}

// Gauges read at scrape time from the Sources, in their own registry.
class WorkerMetrics::StateCollector final : public prometheus::Collectable {
 public:
  StateCollector()
      : registry_(std::make_shared<prometheus::Registry>()),
        docker_registry_(std::make_shared<prometheus::Registry>()) {
    slots_ =
        &SingleGauge(*registry_, "assessq_worker_slots", "Jobs this worker runs at once (--slots)");
    in_use_ = &SingleGauge(*registry_, "assessq_worker_slots_in_use", "Jobs running now");
    capacity_ = &SingleGauge(*registry_, "assessq_worker_capacity",
                             "Slots offered to the coordinator now (0 while draining or short of "
                             "disk or memory)");
    draining_ = &SingleGauge(*registry_, "assessq_worker_draining",
                             "1 while draining (SIGTERM or drained by the coordinator)");
    healthy_ = &SingleGauge(*registry_, "assessq_worker_host_healthy",
                            "1 while the host has the free disk and memory the policy asks for");
    containers_ = &SingleGauge(*docker_registry_, "assessq_worker_containers_running",
                               "Containers of this worker that Docker reports running");
    docker_up_ = &SingleGauge(*docker_registry_, "assessq_worker_docker_up",
                              "1 if Docker answered the container count at this scrape");
  }
  void SetSources(Sources s) {
    std::lock_guard<std::mutex> l(mu_);
    sources_ = std::move(s);
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<prometheus::MetricFamily> out;
    if (sources_.state) {
      WorkerState s = sources_.state();
      slots_->Set(s.slots);
      in_use_->Set(s.running);
      capacity_->Set(s.capacity);
      draining_->Set(s.draining || s.drained_by_coordinator ? 1 : 0);
      healthy_->Set(s.host_healthy ? 1 : 0);
      out = registry_->Collect();
    }
    if (sources_.containers_running) {
      auto n = sources_.containers_running();
      docker_up_->Set(n.ok() ? 1 : 0);
      if (n.ok()) containers_->Set(static_cast<double>(*n));
      for (auto& f : docker_registry_->Collect()) {
        // Never a stale count: without an answer only docker_up 0 is served.
        if (!n.ok() && f.name == "assessq_worker_containers_running") continue;
        out.push_back(std::move(f));
      }
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  Sources sources_;
  std::shared_ptr<prometheus::Registry> registry_, docker_registry_;
  prometheus::Gauge *slots_, *in_use_, *capacity_, *draining_, *healthy_, *containers_, *docker_up_;
};

WorkerMetrics::WorkerMetrics()
    : endpoint_(std::make_shared<StateCollector>()) {
  started_ = &SingleCounter(endpoint_.registry(), "assessq_worker_jobs_started_total",
                            "Leased jobs whose run began");
  finished_ = &CounterFamily(endpoint_.registry(), "assessq_worker_jobs_finished_total",
                             "Job runs ended, by outcome (succeeded, failed, released, stopped)");
  for (const char* o : {"succeeded", "failed", "released", "stopped"})
    finished_->Add({{"outcome", o}});
  failures_ = &CounterFamily(endpoint_.registry(), "assessq_worker_job_failures_total",
                             "Failed job runs, by failure class");
  for (v1::FailureClass c : FailureClasses()) failures_->Add({{"class", std::string(ClassName(c))}});
  auto& gw = CounterFamily(endpoint_.registry(), "assessq_worker_gateway_requests_total",
                           "Requests through the jobs' egress gateways, by decision (counted "
                           "from each attempt's network log when it ends)");
  gw_allowed_ = &gw.Add({{"decision", "allow"}});
  gw_denied_ = &gw.Add({{"decision", "deny"}});
}

WorkerMetrics::~WorkerMetrics() = default;

void WorkerMetrics::SetSources(Sources s) { endpoint_.scraped().SetSources(std::move(s)); }

void WorkerMetrics::OnJobStarted(int64_t) { started_->Increment(); }

void WorkerMetrics::OnJobFinished(const v1::CompleteRequest& r, bool reported) {
  finished_->Add({{"outcome", JobOutcomeLabel(r, reported)}}).Increment();
  if (reported && r.has_failure())
    failures_->Add({{"class", std::string(ClassName(r.failure().failure_class()))}}).Increment();
  GatewayCounts g = CountGatewayDecisions(r.netlog_json());
  if (g.allowed) gw_allowed_->Increment(static_cast<double>(g.allowed));
  if (g.denied) gw_denied_->Increment(static_cast<double>(g.denied));
}

std::vector<std::weak_ptr<prometheus::Collectable>> WorkerMetrics::collectables() const {
  return endpoint_.collectables();
}

}  // namespace assessq
