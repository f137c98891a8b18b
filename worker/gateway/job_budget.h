// A job's model usage as the gateway counts it, and its budget. JobUsage
// sums each response's reading (UsageMeter) per (provider, model), at most
// kMaxModelsPerJob models (the rest under "(other models)"). DecideBudget is
// the pure decision before a model request goes upstream: refused once the
// job's tokens (input + output + cache write + cache read, every model) have
// reached max_tokens, or its money has reached max_usd. Money is counted with
// the lease's prices (USD per million tokens of each kind, matched as the
// coordinator's table does: the exact model name, else the longest key
// ending in '*' that is a prefix of it; the provider's own entry, else one
// without a provider): a model without a price counts for the token cap only, never as
// free money, and is named in the decision. The cap is checked before each
// request, so a job may pass it by the requests that were already under way
// when it was reached (one response's worth per concurrent request). 0 in a
// cap means no cap of that kind.
//
// JobMeter holds one job's usage and cap for the gateway's connections
// (thread-safe); ResponseMeter feeds one response's bytes to a UsageMeter and
// moves what it read into the job's totals as it changes, so heartbeats see
// a long streamed answer grow. Apart from JobMeter's lock, pure: unit-tested
// without I/O (tests/gateway/usage_meter_test.cc).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "worker/gateway/usage_meter.h"

namespace assessq::gateway {

inline constexpr size_t kMaxModelsPerJob = 16;
inline constexpr char kOtherModels[] = "(other models)";

// USD per million tokens of each kind.
struct ModelPrice {
  std::string provider;  // "" = any provider
  std::string model;
  double input = 0, output = 0, cache_write = 0, cache_read = 0;
};

struct BudgetCap {
  int64_t max_tokens = 0;  // 0: no token cap
  double max_usd = 0;      // 0: no money cap
  std::vector<ModelPrice> prices;
  bool active() const { return max_tokens > 0 || max_usd > 0; }
};

struct ModelTotals {
  std::string provider;
  std::string model;
  int64_t requests = 0;
  TokenCounts tokens;
  int64_t duration_ms = 0;
  bool operator==(const ModelTotals&) const = default;
};

struct BudgetDecision {
  bool allowed = true;
  std::string why;  // when refused: what was spent of which cap
  int64_t tokens = 0;
  double usd = 0;                     // of the priced models
  std::vector<std::string> unpriced;  // models without a price (token cap only)
};

const ModelPrice* FindPrice(const std::vector<ModelPrice>& prices, const std::string& provider,
                            const std::string& model);
double PriceOf(const ModelPrice& p, const TokenCounts& t);
BudgetDecision DecideBudget(const BudgetCap& cap, const std::vector<ModelTotals>& usage);

// One response's reading at some moment.
struct Reading {
  bool seen = false;
  std::string model;
  TokenCounts tokens;
};

class JobUsage {
 public:
  explicit JobUsage(std::string provider = "", size_t max_models = kMaxModelsPerJob)
      : provider_(std::move(provider)), max_models_(max_models) {}
  // One response's reading moved from `prev` to `now` (a request counts once
  // it shows a model or usage; its tokens move with its model).
  void Move(const Reading& prev, const Reading& now);
  void AddDuration(const std::string& model, int64_t ms);
  const std::vector<ModelTotals>& totals() const { return totals_; }

 private:
  ModelTotals& Entry(const std::string& model);
  std::string provider_;
  size_t max_models_;
  std::vector<ModelTotals> totals_;
};

struct UsageSnapshot {
  std::vector<ModelTotals> models;
  bool budget_exhausted = false;  // a model request was refused for the cap
  int64_t budget_refusals = 0;
  std::string budget_why;          // the first refusal's reason
  int64_t unmetered = 0;           // 2xx model answers whose usage could not be read
};

class JobMeter {
 public:
  JobMeter(std::string provider, BudgetCap cap) : usage_(std::move(provider)), cap_(std::move(cap)) {}
  // Before a model request goes upstream; a refusal is counted.
  BudgetDecision Admit();
  UsageSnapshot Snapshot() const;
  void Move(const Reading& prev, const Reading& now);
  void End(const Reading& last, int64_t duration_ms, bool unmetered);

 private:
  mutable std::mutex mu_;
  JobUsage usage_;
  BudgetCap cap_;
  bool exhausted_ = false;
  int64_t refusals_ = 0, unmetered_ = 0;
  std::string why_;
};

// One model response through the gateway.
class ResponseMeter {
 public:
  explicit ResponseMeter(JobMeter& job) : job_(job) {}
  // The response's next bytes; the job's lock is taken only when the
  // reading changed.
  void Feed(absl::string_view bytes) {
    meter_.Feed(bytes);
    if (meter_.changes() != applied_) Apply();
  }
  // The response is over (whole or cut short), after `duration_ms`.
  void End(int64_t duration_ms);
  const UsageMeter& meter() const { return meter_; }

 private:
  void Apply();
  JobMeter& job_;
  UsageMeter meter_;
  uint64_t applied_ = 0;
  Reading prev_;
  bool ended_ = false;
};

}  // namespace assessq::gateway
