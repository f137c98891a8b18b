// Registering a Prometheus metric in one call, as both daemons' metrics
// (server/metrics.cc, worker/metrics.cc) do: a family by name and help text,
// or a family's one unlabelled member (thin over prometheus-cpp's builders);
// and what a daemon's endpoint serves (MetricsSources).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace assessq {

prometheus::Family<prometheus::Counter>& CounterFamily(prometheus::Registry& registry,
                                                       const std::string& name,
                                                       const std::string& help);
prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& registry,
                                                   const std::string& name,
                                                   const std::string& help);

// What a daemon's /metrics serves: a registry of the metrics it updates as
// things happen, and a collector (`Scraped`) that computes the rest at
// scrape time.
template <typename Scraped>
class MetricsSources {
 public:
  explicit MetricsSources(std::shared_ptr<Scraped> scraped)
      : registry_(std::make_shared<prometheus::Registry>()), scraped_(std::move(scraped)) {}
  prometheus::Registry& registry() { return *registry_; }
  Scraped& scraped() { return *scraped_; }
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables() const {
    return {registry_, scraped_};
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<Scraped> scraped_;
};

// A family with a single member and no labels.
prometheus::Counter& SingleCounter(prometheus::Registry& registry, const std::string& name,
                                   const std::string& help);
prometheus::Gauge& SingleGauge(prometheus::Registry& registry, const std::string& name,
                               const std::string& help);

}  // namespace assessq
