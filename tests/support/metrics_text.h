// The Prometheus text a metrics object would serve, for unit tests of the
// coordinator's and the worker's metrics (anything with collectables(), a
// list of weak pointers to prometheus::Collectable).
#pragma once

#include <prometheus/text_serializer.h>

#include <sstream>
#include <string>
#include <vector>

namespace aqtest {

template <typename Metrics>
std::string MetricsText(const Metrics& m) {
  std::vector<prometheus::MetricFamily> all;
  for (const auto& w : m.collectables())
    if (auto c = w.lock())
      for (auto& f : c->Collect()) all.push_back(std::move(f));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, all);
  return out.str();
}

}  // namespace aqtest
