#include "server/retry_policy.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/model.h"

namespace assessq {

absl::StatusOr<RetryPolicy> RetryPolicy::FromProto(const v1::RetryPolicy& p) {
  RetryPolicy r;
  for (const auto& [name, n] : p.max_attempts()) {
    auto cls = ClassFromName(name);
    if (!cls)
      return absl::InvalidArgumentError(
          absl::StrCat("retry policy: unknown failure class '", name,
                       "' (infra, model_api, agent, invalid_output, input)"));
    if (n == 0) continue;  // 0: keep the default
    if (n < 1 || n > 100)
      return absl::InvalidArgumentError(
          absl::StrCat("retry policy: max attempts for ", name, " must be 1..100"));
    if (*cls == v1::FAILURE_CLASS_INPUT && n != 1)
      return absl::InvalidArgumentError("retry policy: input failures are never retried");
    r.max_attempts[*cls] = n;
  }
  constexpr int64_t kWeek = 7LL * 24 * 3600 * 1000;
  if (p.backoff_base_ms() < 0 || p.backoff_max_ms() < 0 || p.backoff_base_ms() > kWeek ||
      p.backoff_max_ms() > kWeek)
    return absl::InvalidArgumentError("retry policy: backoff must be between 0 and 7 days");
  if (p.backoff_base_ms() > 0) r.backoff_base_ms = p.backoff_base_ms();
  if (p.backoff_max_ms() > 0) r.backoff_max_ms = p.backoff_max_ms();
  if (r.backoff_max_ms < r.backoff_base_ms) r.backoff_max_ms = r.backoff_base_ms;
  return r;
}

std::string RetryPolicy::ToJson() const {
  nlohmann::json j;
  for (const auto& [cls, n] : max_attempts) j["max_attempts"][std::string(ClassName(cls))] = n;
  j["backoff_base_ms"] = backoff_base_ms;
  j["backoff_max_ms"] = backoff_max_ms;
  return j.dump();
}

absl::StatusOr<RetryPolicy> RetryPolicy::FromJson(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return absl::DataLossError("stored retry policy is not a JSON object");
  v1::RetryPolicy p;
  if (j.contains("max_attempts") && j["max_attempts"].is_object())
    for (auto& [k, v] : j["max_attempts"].items())
      if (v.is_number_integer()) (*p.mutable_max_attempts())[k] = v.get<int>();
  if (j.contains("backoff_base_ms") && j["backoff_base_ms"].is_number_integer())
    p.set_backoff_base_ms(j["backoff_base_ms"].get<int64_t>());
  if (j.contains("backoff_max_ms") && j["backoff_max_ms"].is_number_integer())
    p.set_backoff_max_ms(j["backoff_max_ms"].get<int64_t>());
  return FromProto(p);
}

RetryDecision DecideRetry(const RetryPolicy& p, v1::FailureClass cls, int failures_in_class,
                          int64_t retry_after_ms, std::mt19937_64& rng, absl::string_view reason) {
  RetryDecision d;
  auto it = p.max_attempts.find(cls);
  int max = it == p.max_attempts.end() ? 1 : it->second;
  const bool budget = cls == v1::FAILURE_CLASS_AGENT && absl::StartsWith(reason, "budget:");
  if (cls == v1::FAILURE_CLASS_INPUT || budget || failures_in_class >= max) {
    d.give_up = true;
    return d;
  }
  // Exponential: base * 2^(n-1), capped; full jitter in [cap/2, cap].
  int shift = std::clamp(failures_in_class - 1, 0, 30);
  // Saturating base * 2^shift: stop doubling once past the maximum.
  int64_t cap = p.backoff_base_ms;
  for (int i = 0; i < shift && cap < p.backoff_max_ms; ++i) cap *= 2;
  cap = std::min(cap, p.backoff_max_ms);
  std::uniform_int_distribution<int64_t> dist(cap / 2, std::max<int64_t>(cap, cap / 2));
  d.delay_ms = std::max(dist(rng), retry_after_ms);
  return d;
}

}  // namespace assessq
