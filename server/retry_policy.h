// Retry decisions: how many attempts each failure class gets and how long to
// back off before the next one (exponential with full jitter, capped, and
// never sooner than a provider's retry-after). Pure; unit-tested without I/O.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "assessq/v1/assessq.pb.h"

namespace assessq {

struct RetryPolicy {
  std::map<v1::FailureClass, int> max_attempts = {
      {v1::FAILURE_CLASS_INFRA, 5},          {v1::FAILURE_CLASS_MODEL_API, 8},
      {v1::FAILURE_CLASS_AGENT, 3},          {v1::FAILURE_CLASS_INVALID_OUTPUT, 3},
      {v1::FAILURE_CLASS_INPUT, 1}};
  int64_t backoff_base_ms = 2000;
  int64_t backoff_max_ms = 10 * 60 * 1000;

  // Overrides from the proto; rejects unknown classes and retrying `input`.
  static absl::StatusOr<RetryPolicy> FromProto(const v1::RetryPolicy& p);
  static absl::StatusOr<RetryPolicy> FromJson(const std::string& json);
  std::string ToJson() const;
};

struct RetryDecision {
  bool give_up = false;   // -> needs_attention
  int64_t delay_ms = 0;   // when not giving up
};

// `failures_in_class` counts the failed attempts of this class in the job's
// current retry epoch, including the one just finished. `reason` is the
// failure's: an agent failure whose reason is "budget: ..." (the job reached
// its model budget, worker/outcome.h) is never retried automatically.
RetryDecision DecideRetry(const RetryPolicy& p, v1::FailureClass cls, int failures_in_class,
                          int64_t retry_after_ms, std::mt19937_64& rng,
                          absl::string_view reason = "");

}  // namespace assessq
