#include "worker/gateway/job_budget.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace assessq::gateway {

const ModelPrice* FindPrice(const std::vector<ModelPrice>& prices, const std::string& provider,
                            const std::string& model) {
  // As the coordinator's table (server/pricing.h): an exact name wins over
  // any prefix ("claude-sonnet-4-5*"), the longest prefix over shorter ones;
  // the provider's own entry over one for any provider.
  const ModelPrice* best = nullptr;
  int best_rank = -1;
  for (const auto& p : prices) {
    if (!p.provider.empty() && p.provider != provider) continue;
    int rank;
    if (p.model == model) {
      rank = 1 << 20;
    } else if (!p.model.empty() && p.model.back() == '*' &&
               model.compare(0, p.model.size() - 1, p.model, 0, p.model.size() - 1) == 0 &&
               model.size() >= p.model.size() - 1) {
      rank = static_cast<int>(p.model.size());
    } else {
      continue;
    }
    rank = rank * 2 + (p.provider.empty() ? 0 : 1);
    if (rank > best_rank) {
      best_rank = rank;
      best = &p;
    }
  }
  return best;
}

double PriceOf(const ModelPrice& p, const TokenCounts& t) {
  return (static_cast<double>(t.input) * p.input + static_cast<double>(t.output) * p.output +
          static_cast<double>(t.cache_write) * p.cache_write +
          static_cast<double>(t.cache_read) * p.cache_read) /
         1e6;
}

BudgetDecision DecideBudget(const BudgetCap& cap, const std::vector<ModelTotals>& usage) {
  BudgetDecision d;
  for (const auto& m : usage) {
    d.tokens += m.tokens.total();
    if (const ModelPrice* p = FindPrice(cap.prices, m.provider, m.model)) d.usd += PriceOf(*p, m.tokens);
    else if (m.tokens.total() > 0) d.unpriced.push_back(absl::StrCat(m.provider, "/", m.model));
  }
  if (cap.max_tokens > 0 && d.tokens >= cap.max_tokens) {
    d.allowed = false;
    d.why = absl::StrCat("the job's model budget is spent: ", d.tokens, " tokens of its ", cap.max_tokens);
  } else if (cap.max_usd > 0 && d.usd >= cap.max_usd) {
    d.allowed = false;
    d.why = absl::StrFormat("the job's model budget is spent: $%.4f of its $%.4f", d.usd, cap.max_usd);
    if (!d.unpriced.empty())
      absl::StrAppend(&d.why, " (not counting models without a price: ", absl::StrJoin(d.unpriced, ", "), ")");
  }
  return d;
}

ModelTotals& JobUsage::Entry(const std::string& model) {
  for (auto& t : totals_)
    if (t.model == model) return t;
  const bool room = totals_.size() + 1 < max_models_ || (totals_.size() + 1 == max_models_ && model == kOtherModels);
  if (!room) return Entry(kOtherModels);
  totals_.push_back(ModelTotals{provider_, model});
  return totals_.back();
}

void JobUsage::Move(const Reading& prev, const Reading& now) {
  if (prev.seen) {
    ModelTotals& t = Entry(prev.model);
    t.requests -= 1;
    t.tokens.input -= prev.tokens.input;
    t.tokens.output -= prev.tokens.output;
    t.tokens.cache_write -= prev.tokens.cache_write;
    t.tokens.cache_read -= prev.tokens.cache_read;
  }
  if (now.seen) {
    ModelTotals& t = Entry(now.model);
    t.requests += 1;
    t.tokens.input += now.tokens.input;
    t.tokens.output += now.tokens.output;
    t.tokens.cache_write += now.tokens.cache_write;
    t.tokens.cache_read += now.tokens.cache_read;
  }
}

void JobUsage::AddDuration(const std::string& model, int64_t ms) { Entry(model).duration_ms += ms; }

BudgetDecision JobMeter::Admit() {
  std::lock_guard<std::mutex> l(mu_);
  BudgetDecision d = DecideBudget(cap_, usage_.totals());
  if (!d.allowed) {
    if (!exhausted_) why_ = d.why;
    exhausted_ = true;
    ++refusals_;
  }
  return d;
}

UsageSnapshot JobMeter::Snapshot() const {
  std::lock_guard<std::mutex> l(mu_);
  UsageSnapshot s;
  s.models = usage_.totals();
  s.budget_exhausted = exhausted_;
  s.budget_refusals = refusals_;
  s.budget_why = why_;
  s.unmetered = unmetered_;
  return s;
}

void JobMeter::Move(const Reading& prev, const Reading& now) {
  std::lock_guard<std::mutex> l(mu_);
  usage_.Move(prev, now);
}

void JobMeter::End(const Reading& last, int64_t duration_ms, bool unmetered) {
  std::lock_guard<std::mutex> l(mu_);
  if (last.seen) usage_.AddDuration(last.model, duration_ms);
  if (unmetered) ++unmetered_;
}

void ResponseMeter::Apply() {
  applied_ = meter_.changes();
  Reading now{meter_.seen(), meter_.model(), meter_.counts()};
  job_.Move(prev_, now);
  prev_ = std::move(now);
}

void ResponseMeter::End(int64_t duration_ms) {
  if (ended_) return;
  ended_ = true;
  meter_.Finish();
  if (meter_.changes() != applied_ || meter_.seen() != prev_.seen) Apply();
  const bool ok_status = meter_.status() >= 200 && meter_.status() <= 299;
  job_.End(prev_, duration_ms, ok_status && !meter_.unreadable().empty() && !meter_.seen());
}

}  // namespace assessq::gateway
