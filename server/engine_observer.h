// What the engine tells whoever watches it (the coordinator's Prometheus
// metrics, tests): events, each reported once, on the engine's effects
// thread, after the commit that made it true (so a rolled-back lease or
// attempt is never counted). Implementations must be cheap and must not block or call back
// into the engine. Every method has a no-op default so an observer overrides
// only what it needs.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "assessq/v1/assessq.pb.h"

namespace assessq {

class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  // Job `job_id` was leased at `leased_at_ms`; it had been available (queued
  // and ready) since `ready_at_ms`.
  virtual void OnLeased(int64_t job_id, int64_t ready_at_ms, int64_t leased_at_ms) {}
  // An attempt ended with `outcome` (succeeded, failed, expired, released,
  // cancelled); `failure_class` is set for failed and expired.
  virtual void OnAttemptFinished(absl::string_view outcome,
                                 std::optional<v1::FailureClass> failure_class) {}
  // The fleet-wide concurrency limit the engine now applies to a model
  // provider (AIMD); 0 = none.
  virtual void OnModelApiLimit(absl::string_view provider, double limit) {}
  // costsrv: an attempt's model usage grew by `added` (one provider and
  // model), costing `usd` by its batch's prices (unset: price unknown).
  virtual void OnModelUsage(const v1::ModelUsage& added, std::optional<double> usd) {}
};

}  // namespace assessq
