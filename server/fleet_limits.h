// Fleet-wide start limits, decided by the coordinator for every worker at
// once: a maximum of jobs running per batch and per model provider, a start
// rate (jobs per minute) for each, and additive-increase / multiplicative-
// decrease of each provider's concurrency driven by `model_api` failures
// (429/529 with retry-after). Pure bookkeeping with the time passed in, no
// I/O and no locks: the engine thread owns one instance and asks it, per
// candidate job, whether one more may start now (and if not, when to ask
// again); tests drive it with a fake clock.
//
// Semantics:
//  - 0 means "no limit" for max_running and start_rate_per_min.
//  - A start rate is a token bucket holding one second's worth of starts
//    (at least one), so 120/min starts at most 2 at once, then 2 per second.
//  - A model_api failure cuts the provider's limit to half of what was
//    running (at least 1) and holds every new start for the provider until
//    its retry-after passes. One cut per window: a failure of an attempt that
//    started before the last cut was already in flight when we cut, so it
//    only extends the hold. Each success then raises the limit by 1/limit
//    (about +1 per window), until it is back at the configured maximum (or,
//    with none configured, at the level that was running at the first cut),
//    where the cut is forgotten.
//  - A retry-after reported by a worker is capped (kMaxRetryAfterMs) before
//    it holds anything, and one job cuts a provider's limit at most once per
//    kJobWindowMs: a later failure of the same job in that window (its
//    retries, a hostile agent provoking 429s again and again) does not cut,
//    and holds new starts for at most kRepeatHoldMs (its own retry still
//    waits the whole retry-after).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace assessq {

struct LimitConfig {
  int max_running = 0;            // 0: unlimited
  double start_rate_per_min = 0;  // 0: unlimited
  bool operator==(const LimitConfig&) const = default;
};

// What status shows for one batch or provider.
struct LimitView {
  std::string scope;  // "batch" or "provider"
  std::string name;
  std::string provider;  // for a batch: its provider
  LimitConfig config;
  int running = 0;
  int effective_limit = 0;  // 0: none
  int64_t hold_until_ms = 0;
  std::string reason;
};

class FleetLimits {
 public:
  static constexpr int kUnlimited = std::numeric_limits<int>::max();
  static constexpr double kDecrease = 0.5;
  static constexpr int64_t kMaxRetryAfterMs = 10 * 60 * 1000;
  static constexpr int64_t kJobWindowMs = 10 * 60 * 1000;
  static constexpr int64_t kRepeatHoldMs = 60 * 1000;
  // A worker's retry-after, within [0, kMaxRetryAfterMs].
  static int64_t CapRetryAfter(int64_t retry_after_ms);

  // The provider a batch's jobs use: the profile's network.model (gateway
  // mode), else its top-level "provider", else "default".
  static std::string ProviderOf(const std::string& profile_json);

  void ConfigureBatch(int64_t batch_id, const std::string& name, const std::string& provider,
                      LimitConfig config);
  void ConfigureProvider(const std::string& provider, LimitConfig config);
  std::optional<LimitConfig> BatchConfig(int64_t batch_id) const;
  LimitConfig ProviderConfig(const std::string& provider) const;

  struct Allowance {
    int starts = kUnlimited;  // how many more may start now
    int64_t retry_at_ms = 0;  // when starts is 0 for a timed reason: ask again then
  };
  Allowance Allow(int64_t batch_id, int64_t now_ms);

  // A job of the batch started (a lease was granted), or one that already
  // held a lease was recovered at start-up (no start-rate token is taken).
  void OnStart(int64_t batch_id, int64_t now_ms, bool recovered = false);
  // Reverses OnStart (the lease was rolled back).
  void UndoStart(int64_t batch_id, bool recovered = false);
  // A job of the batch stopped holding a lease, whatever the outcome.
  void OnEnd(int64_t batch_id);
  void OnSuccess(int64_t batch_id);
  // A model_api failure of an attempt of job `job_id` (0: not known) leased
  // at `leased_at_ms`; `retry_after_ms` is capped here.
  void OnModelApiFailure(int64_t batch_id, int64_t leased_at_ms, int64_t retry_after_ms,
                         int64_t now_ms, const std::string& detail, int64_t job_id = 0);

  // For rolling back the AIMD state of the batch's provider.
  struct ProviderMemento;
  ProviderMemento Save(int64_t batch_id) const;
  ProviderMemento ProviderState(const std::string& provider) const;
  void Restore(const ProviderMemento& m);

  std::vector<LimitView> View(int64_t now_ms) const;
  int ProviderLimit(const std::string& provider) const;  // effective; 0 = none
  // The provider a configured batch was given ("default" if unknown).
  std::string ProviderOfBatch(int64_t batch_id) const;

 private:
  struct Bucket {
    double tokens = -1;  // -1: full (not used yet)
    int64_t at_ms = 0;
    void Refill(double rate_per_min, int64_t now_ms);
    double Capacity(double rate_per_min) const;
    int64_t NextTokenAt(double rate_per_min, int64_t now_ms) const;
  };
  struct Provider {
    LimitConfig config;
    int running = 0;
    Bucket bucket;
    std::optional<double> aimd;  // set while a cut is in force
    int uncut_level = 0;         // what ran before the first cut
    int64_t last_cut_ms = 0;
    int64_t hold_until_ms = 0;
    int cuts = 0;
    std::string last_cause;
    std::map<int64_t, int64_t> job_acted_ms;  // job -> when its failure cut the limit
  };
  struct Batch {
    std::string name;
    std::string provider;
    LimitConfig config;
    int running = 0;
    Bucket bucket;
  };

 public:
  struct ProviderMemento {
    std::string name;
    Provider state;
  };

 private:
  Provider& ProviderFor(const std::string& name) { return providers_[name]; }
  int Effective(const Provider& p) const;
  std::string Reason(const Provider& p, int64_t now_ms) const;

  std::map<int64_t, Batch> batches_;
  std::map<std::string, Provider> providers_;
};

}  // namespace assessq
