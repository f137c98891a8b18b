// Fleet-wide start limits and the model-API AIMD (see fleet_limits.h).
#include "server/fleet_limits.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace assessq {

std::string FleetLimits::ProviderOf(const std::string& profile_json) {
  auto p = nlohmann::json::parse(profile_json, nullptr, false);
  if (p.is_object()) {
    auto net = p.find("network");
    if (net != p.end() && net->is_object()) {
      auto m = net->find("model");
      if (m != net->end() && m->is_string() && !m->get<std::string>().empty())
        return m->get<std::string>();
    }
    auto pr = p.find("provider");
    if (pr != p.end() && pr->is_string() && !pr->get<std::string>().empty())
      return pr->get<std::string>();
  }
  return "default";
}

// ------------------------------------------------------------------ buckets

double FleetLimits::Bucket::Capacity(double rate) const { return std::max(1.0, rate / 60.0); }

void FleetLimits::Bucket::Refill(double rate, int64_t now) {
  double cap = Capacity(rate);
  if (tokens < 0) {
    tokens = cap;
  } else if (now > at_ms) {
    tokens = std::min(cap, tokens + (now - at_ms) * rate / 60000.0);
  }
  at_ms = std::max(at_ms, now);
}

int64_t FleetLimits::Bucket::NextTokenAt(double rate, int64_t now) const {
  double missing = 1.0 - std::max(0.0, tokens);
  if (missing <= 0) return now;
  return now + static_cast<int64_t>(std::ceil(missing * 60000.0 / rate));
}

// ---------------------------------------------------------- configuration

void FleetLimits::ConfigureBatch(int64_t batch_id, const std::string& name,
                                 const std::string& provider, LimitConfig config) {
  Batch& b = batches_[batch_id];
  b.name = name;
  if (b.provider != provider && !b.provider.empty()) {
    // Running jobs move with the batch to its new provider.
    providers_[b.provider].running -= b.running;
    providers_[provider].running += b.running;
  }
  b.provider = provider;
  b.config = config;
  ProviderFor(provider);
}

void FleetLimits::ConfigureProvider(const std::string& provider, LimitConfig config) {
  Provider& p = ProviderFor(provider);
  p.config = config;
  if (p.aimd && config.max_running > 0 && *p.aimd >= config.max_running) p.aimd.reset();
}

std::optional<LimitConfig> FleetLimits::BatchConfig(int64_t batch_id) const {
  auto it = batches_.find(batch_id);
  if (it == batches_.end()) return std::nullopt;
  return it->second.config;
}

LimitConfig FleetLimits::ProviderConfig(const std::string& provider) const {
  auto it = providers_.find(provider);
  return it == providers_.end() ? LimitConfig{} : it->second.config;
}

int FleetLimits::Effective(const Provider& p) const {
  if (p.aimd) return std::max(1, static_cast<int>(std::floor(*p.aimd)));
  return p.config.max_running;
}

int FleetLimits::ProviderLimit(const std::string& provider) const {
  auto it = providers_.find(provider);
  return it == providers_.end() ? 0 : Effective(it->second);
}

// ------------------------------------------------------------------ starts

FleetLimits::Allowance FleetLimits::Allow(int64_t batch_id, int64_t now) {
  Allowance a;
  auto bit = batches_.find(batch_id);
  if (bit == batches_.end()) return a;
  Batch& b = bit->second;
  Provider& p = ProviderFor(b.provider);
  auto take = [&](int n) { a.starts = std::min(a.starts, std::max(0, n)); };
  auto wait_until = [&](int64_t t) {
    a.retry_at_ms = a.retry_at_ms == 0 ? t : std::min(a.retry_at_ms, t);
  };
  if (p.hold_until_ms > now) {
    a.starts = 0;
    a.retry_at_ms = p.hold_until_ms;
    return a;
  }
  if (b.config.max_running > 0) take(b.config.max_running - b.running);
  if (int lim = Effective(p); lim > 0) take(lim - p.running);
  if (a.starts == 0) {
    a.retry_at_ms = 0;  // a slot frees only when a job ends; that wakes dispatch
    return a;
  }
  if (b.config.start_rate_per_min > 0) {
    b.bucket.Refill(b.config.start_rate_per_min, now);
    take(static_cast<int>(std::floor(b.bucket.tokens)));
    if (b.bucket.tokens < 1) wait_until(b.bucket.NextTokenAt(b.config.start_rate_per_min, now));
  }
  if (p.config.start_rate_per_min > 0) {
    p.bucket.Refill(p.config.start_rate_per_min, now);
    take(static_cast<int>(std::floor(p.bucket.tokens)));
    if (p.bucket.tokens < 1) wait_until(p.bucket.NextTokenAt(p.config.start_rate_per_min, now));
  }
  if (a.starts > 0) a.retry_at_ms = 0;
  return a;
}

void FleetLimits::OnStart(int64_t batch_id, int64_t now, bool recovered) {
  auto bit = batches_.find(batch_id);
  if (bit == batches_.end()) return;
  Batch& b = bit->second;
  Provider& p = ProviderFor(b.provider);
  ++b.running;
  ++p.running;
  if (recovered) return;
  if (b.config.start_rate_per_min > 0) {
    b.bucket.Refill(b.config.start_rate_per_min, now);
    b.bucket.tokens -= 1;
  }
  if (p.config.start_rate_per_min > 0) {
    p.bucket.Refill(p.config.start_rate_per_min, now);
    p.bucket.tokens -= 1;
  }
}

void FleetLimits::UndoStart(int64_t batch_id, bool recovered) {
  auto bit = batches_.find(batch_id);
  if (bit == batches_.end()) return;
  Batch& b = bit->second;
  Provider& p = ProviderFor(b.provider);
  --b.running;
  --p.running;
  if (recovered) return;
  if (b.config.start_rate_per_min > 0) b.bucket.tokens += 1;
  if (p.config.start_rate_per_min > 0) p.bucket.tokens += 1;
}

void FleetLimits::OnEnd(int64_t batch_id) {
  auto bit = batches_.find(batch_id);
  if (bit == batches_.end()) return;
  Batch& b = bit->second;
  Provider& p = ProviderFor(b.provider);
  b.running = std::max(0, b.running - 1);
  p.running = std::max(0, p.running - 1);
}

// --------------------------------------------------------------------- AIMD

void FleetLimits::OnSuccess(int64_t batch_id) {
  auto bit = batches_.find(batch_id);
  if (bit == batches_.end()) return;
  Provider& p = ProviderFor(bit->second.provider);
  if (!p.aimd) return;
  *p.aimd += 1.0 / std::max(1.0, *p.aimd);
  int ceiling = p.config.max_running > 0 ? p.config.max_running : p.uncut_level;
  if (*p.aimd >= ceiling) p.aimd.reset();
}

int64_t FleetLimits::CapRetryAfter(int64_t retry_after_ms) {
  return std::clamp<int64_t>(retry_after_ms, 0, kMaxRetryAfterMs);
}

void FleetLimits::OnModelApiFailure(int64_t batch_id, int64_t leased_at, int64_t retry_after_ms,
                                    int64_t now, const std::string& detail, int64_t job_id) {
  auto bit = batches_.find(batch_id);
  if (bit == batches_.end()) return;
  Provider& p = ProviderFor(bit->second.provider);
  retry_after_ms = CapRetryAfter(retry_after_ms);
  bool repeat = false;  // this job already cut the provider within the window
  if (job_id != 0) {
    for (auto it = p.job_acted_ms.begin(); it != p.job_acted_ms.end();)
      it = now - it->second >= kJobWindowMs ? p.job_acted_ms.erase(it) : std::next(it);
    repeat = p.job_acted_ms.count(job_id) > 0;
    if (!repeat) p.job_acted_ms[job_id] = now;
  }
  if (retry_after_ms > 0)
    p.hold_until_ms = std::max(p.hold_until_ms,
                               now + (repeat ? std::min(retry_after_ms, kRepeatHoldMs) : retry_after_ms));
  if (repeat) return;
  // Already in flight when we last cut: that cut was for this congestion.
  if (p.cuts > 0 && leased_at < p.last_cut_ms) return;
  int running = std::max(1, p.running);
  double base = running;
  if (int lim = Effective(p); lim > 0) base = std::min<double>(lim, running);
  if (!p.aimd) p.uncut_level = std::max(running, p.config.max_running);
  p.aimd = std::max(1.0, std::floor(base * kDecrease));
  p.last_cut_ms = now;
  ++p.cuts;
  p.last_cause = detail;
}

std::string FleetLimits::ProviderOfBatch(int64_t batch_id) const {
  auto bit = batches_.find(batch_id);
  return bit == batches_.end() ? "default" : bit->second.provider;
}

FleetLimits::ProviderMemento FleetLimits::Save(int64_t batch_id) const {
  return ProviderState(ProviderOfBatch(batch_id));
}

FleetLimits::ProviderMemento FleetLimits::ProviderState(const std::string& name) const {
  auto pit = providers_.find(name);
  return ProviderMemento{name, pit == providers_.end() ? Provider{} : pit->second};
}

void FleetLimits::Restore(const ProviderMemento& m) { providers_[m.name] = m.state; }

// --------------------------------------------------------------------- view

std::string FleetLimits::Reason(const Provider& p, int64_t now) const {
  std::string r;
  if (p.aimd) {
    int ceiling = p.config.max_running > 0 ? p.config.max_running : p.uncut_level;
    r = absl::StrFormat(
        "cut to %d after a model_api failure (%s); raising by 1 every %d successes toward %d",
        Effective(p), p.last_cause, Effective(p), ceiling);
  } else if (p.config.max_running > 0) {
    r = absl::StrCat("configured maximum ", p.config.max_running);
  } else {
    r = "no limit";
  }
  if (p.hold_until_ms > now)
    absl::StrAppend(&r, "; no new starts for ", (p.hold_until_ms - now + 999) / 1000,
                    " s (retry-after)");
  if (p.config.start_rate_per_min > 0)
    absl::StrAppend(&r, "; start rate ", p.config.start_rate_per_min, "/min");
  return r;
}

std::vector<LimitView> FleetLimits::View(int64_t now) const {
  std::vector<LimitView> out;
  for (const auto& [name, p] : providers_) {
    LimitView v;
    v.scope = "provider";
    v.name = name;
    v.provider = name;
    v.config = p.config;
    v.running = p.running;
    v.effective_limit = Effective(p);
    v.hold_until_ms = p.hold_until_ms > now ? p.hold_until_ms : 0;
    v.reason = Reason(p, now);
    out.push_back(std::move(v));
  }
  for (const auto& [id, b] : batches_) {
    LimitView v;
    v.scope = "batch";
    v.name = b.name;
    v.provider = b.provider;
    v.config = b.config;
    v.running = b.running;
    v.effective_limit = b.config.max_running;
    std::string r = b.config.max_running > 0
                        ? absl::StrCat("configured maximum ", b.config.max_running)
                        : "no limit";
    if (b.config.start_rate_per_min > 0)
      absl::StrAppend(&r, "; start rate ", b.config.start_rate_per_min, "/min");
    v.reason = r;
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace assessq
