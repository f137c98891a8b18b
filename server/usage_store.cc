#include "server/usage_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "server/job_store.h"

namespace assessq {

namespace {

constexpr char kUsageCols[] =
    "requests, input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, duration_ms";

void ReadCounts(const Stmt& st, int from, v1::ModelUsage* m) {
  m->set_requests(st.Int(from));
  m->set_input_tokens(st.Int(from + 1));
  m->set_output_tokens(st.Int(from + 2));
  m->set_cache_write_tokens(st.Int(from + 3));
  m->set_cache_read_tokens(st.Int(from + 4));
  m->set_duration_ms(st.Int(from + 5));
}

int64_t Grow(int64_t old_v, int64_t new_v) { return new_v > old_v ? new_v - old_v : 0; }

// Steps `st` (columns: provider, model, then kUsageCols) to its end, one
// model per row into `out`.
absl::Status ReadModels(Stmt& st, v1::Usage* out) {
  while (true) {
    ASSIGN_OR_RETURN(row, st.Step());
    if (!row) return absl::OkStatus();
    v1::ModelUsage* m = out->add_models();
    m->set_provider(st.Text(0));
    m->set_model(st.Text(1));
    ReadCounts(st, 2, m);
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<const PriceTable>> UsageStore::PricesFor(Db& db,
                                                                        int64_t batch_id) {
  ASSIGN_OR_RETURN(st, db.Prepare("SELECT prices_json FROM batches WHERE id=?"));
  st->Bind(1, batch_id);
  ASSIGN_OR_RETURN(row, st->Step());
  std::string text = row ? st->Text(0) : std::string();
  st->Reset();
  std::lock_guard<std::mutex> l(mu_);
  auto it = parsed_.find(text);
  if (it != parsed_.end()) return it->second;
  std::shared_ptr<const PriceTable> t;
  if (text.empty()) {
    t = std::make_shared<PriceTable>(defaults_);
  } else {
    auto p = PriceTable::Parse(text, absl::StrCat("batch ", batch_id, " prices_json"));
    if (!p.ok()) return p.status();  // checked at submit: only a damaged row gets here
    t = std::make_shared<PriceTable>(std::move(*p));
  }
  if (parsed_.size() > 64) parsed_.clear();
  parsed_[text] = t;
  return t;
}

absl::StatusOr<std::vector<UsageGrowth>> UsageStore::Record(Db& db, int64_t attempt_id,
                                                            const v1::Usage& reported) {
  std::vector<UsageGrowth> grew;
  const v1::Usage usage = SanitizeUsage(reported);
  if (usage.models().empty() && !usage.budget_exhausted()) return grew;
  ASSIGN_OR_RETURN(b, db.Prepare("SELECT j.batch_id FROM attempts a JOIN jobs j ON j.id=a.job_id "
                                 "WHERE a.id=?"));
  b->Bind(1, attempt_id);
  ASSIGN_OR_RETURN(brow, b->Step());
  if (!brow) return absl::NotFoundError(absl::StrCat("no attempt ", attempt_id));
  const int64_t batch_id = b->Int(0);
  b->Reset();
  ASSIGN_OR_RETURN(prices, PricesFor(db, batch_id));
  ASSIGN_OR_RETURN(get, db.Prepare(absl::StrCat("SELECT ", kUsageCols,
                                                " FROM attempt_usage WHERE attempt_id=? AND "
                                                "provider=? AND model=?")));
  ASSIGN_OR_RETURN(put, db.Prepare(
                            "INSERT INTO attempt_usage(attempt_id, provider, model, requests, "
                            "input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, "
                            "duration_ms) VALUES(?,?,?,?,?,?,?,?,?) "
                            "ON CONFLICT(attempt_id, provider, model) DO UPDATE SET "
                            "requests=max(requests, excluded.requests), "
                            "input_tokens=max(input_tokens, excluded.input_tokens), "
                            "output_tokens=max(output_tokens, excluded.output_tokens), "
                            "cache_write_tokens=max(cache_write_tokens, excluded.cache_write_tokens), "
                            "cache_read_tokens=max(cache_read_tokens, excluded.cache_read_tokens), "
                            "duration_ms=max(duration_ms, excluded.duration_ms)"));
  for (const auto& m : usage.models()) {
    get->Bind(1, attempt_id).Bind(2, m.provider()).Bind(3, m.model());
    ASSIGN_OR_RETURN(have, get->Step());
    v1::ModelUsage old;
    if (have) ReadCounts(*get, 0, &old);
    get->Reset();
    UsageGrowth g;
    g.added.set_provider(m.provider());
    g.added.set_model(m.model());
    g.added.set_requests(Grow(old.requests(), m.requests()));
    g.added.set_input_tokens(Grow(old.input_tokens(), m.input_tokens()));
    g.added.set_output_tokens(Grow(old.output_tokens(), m.output_tokens()));
    g.added.set_cache_write_tokens(Grow(old.cache_write_tokens(), m.cache_write_tokens()));
    g.added.set_cache_read_tokens(Grow(old.cache_read_tokens(), m.cache_read_tokens()));
    g.added.set_duration_ms(Grow(old.duration_ms(), m.duration_ms()));
    if (have && g.added.requests() == 0 && TokensOf(g.added) == 0 && g.added.duration_ms() == 0)
      continue;  // nothing new
    put->Bind(1, attempt_id).Bind(2, m.provider()).Bind(3, m.model()).Bind(4, m.requests())
        .Bind(5, m.input_tokens()).Bind(6, m.output_tokens()).Bind(7, m.cache_write_tokens())
        .Bind(8, m.cache_read_tokens()).Bind(9, m.duration_ms());
    RETURN_IF_ERROR(put->Run());
    put->Reset();  // bound again for the next model
    if (const v1::ModelPrice* p = prices->Find(m.provider(), m.model()))
      g.usd = CostOfModel(g.added, *p);
    grew.push_back(std::move(g));
  }
  if (usage.budget_exhausted()) {
    ASSIGN_OR_RETURN(x, db.Prepare("UPDATE attempts SET budget_exhausted=1 WHERE id=?"));
    x->Bind(1, attempt_id);
    RETURN_IF_ERROR(x->Run());
  }
  return grew;
}

absl::StatusOr<std::vector<UsageGrowth>> UsageStore::RecordCompletion(
    Db& db, int64_t attempt_id, const v1::Usage* usage, const std::string& details_json,
    const std::string& log_tail) {
  std::vector<UsageGrowth> grew;
  if (usage) {
    ASSIGN_OR_RETURN(g, Record(db, attempt_id, *usage));
    grew = std::move(g);
  }
  if (auto agent = AgentReportedCostUsd(details_json, log_tail)) {
    ASSIGN_OR_RETURN(st, db.Prepare("UPDATE attempts SET agent_cost_usd=? WHERE id=?"));
    st->Bind(1, *agent).Bind(2, attempt_id);
    RETURN_IF_ERROR(st->Run());
  }
  return grew;
}

absl::Status UsageStore::Event(Db& db, int64_t batch_id, int64_t now_ms, const char* kind,
                               const std::string& detail) {
  return JobStore(db).AddEvent(now_ms, batch_id, std::nullopt, kind, detail);
}

absl::Status UsageStore::ApplySubmit(Db& db, int64_t batch_id, std::optional<double> budget_usd,
                                     const std::string& prices_json, int64_t now_ms) {
  if (budget_usd) RETURN_IF_ERROR(SetBudget(db, batch_id, *budget_usd, now_ms));
  if (prices_json.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(st, db.Prepare("UPDATE batches SET prices_json=? WHERE id=? AND prices_json<>?"));
  st->Bind(1, prices_json).Bind(2, batch_id).Bind(3, prices_json);
  RETURN_IF_ERROR(st->Run());
  if (db.Changes() > 0) RETURN_IF_ERROR(Event(db, batch_id, now_ms, "prices", "the batch's own prices"));
  return absl::OkStatus();
}

absl::Status UsageStore::SetBudget(Db& db, int64_t batch_id, double budget_usd, int64_t now_ms) {
  if (!std::isfinite(budget_usd) || budget_usd < 0)
    return absl::InvalidArgumentError("budget_usd must be 0 (none) or a positive number of USD");
  ASSIGN_OR_RETURN(st, db.Prepare("UPDATE batches SET budget_usd=? WHERE id=? AND budget_usd<>?"));
  st->Bind(1, budget_usd).Bind(2, batch_id).Bind(3, budget_usd);
  RETURN_IF_ERROR(st->Run());
  if (db.Changes() > 0)
    RETURN_IF_ERROR(Event(db, batch_id, now_ms, "budget",
                          budget_usd > 0 ? absl::StrFormat("budget $%.4f", budget_usd)
                                         : std::string("budget removed")));
  return absl::OkStatus();
}

absl::StatusOr<UsageStore::Spend> UsageStore::BatchSpend(Db& db, int64_t batch_id) {
  Spend s;
  ASSIGN_OR_RETURN(prices, PricesFor(db, batch_id));
  ASSIGN_OR_RETURN(u, db.Prepare(
                          "SELECT u.provider, u.model, sum(u.requests), sum(u.input_tokens), "
                          "sum(u.output_tokens), sum(u.cache_write_tokens), "
                          "sum(u.cache_read_tokens), sum(u.duration_ms) FROM attempt_usage u "
                          "JOIN attempts a ON a.id=u.attempt_id JOIN jobs j ON j.id=a.job_id "
                          "WHERE j.batch_id=? GROUP BY u.provider, u.model "
                          "ORDER BY u.provider, u.model"));
  u->Bind(1, batch_id);
  RETURN_IF_ERROR(ReadModels(*u, &s.usage));
  s.cost = CostOf(s.usage, *prices);
  s.spent_usd = s.cost.usd();
  ASSIGN_OR_RETURN(c, db.Prepare(
                          "SELECT coalesce(sum(state IN ('succeeded','needs_attention')),0), "
                          "coalesce(sum(state IN ('leased','running')),0) FROM jobs "
                          "WHERE batch_id=? AND superseded_by IS NULL"));
  c->Bind(1, batch_id);
  ASSIGN_OR_RETURN(crow, c->Step());
  if (crow) {
    s.finished = c->Int(0);
    s.running = static_cast<int>(c->Int(1));
  }
  c->Reset();
  s.avg_per_finished_usd = s.finished > 0 ? s.spent_usd / static_cast<double>(s.finished) : -1;
  ASSIGN_OR_RETURN(b, db.Prepare("SELECT budget_usd, profile_json FROM batches WHERE id=?"));
  b->Bind(1, batch_id);
  ASSIGN_OR_RETURN(brow, b->Step());
  if (brow) {
    s.budget_usd = b->Double(0);
    auto cap = JobCapFromProfile(b->Text(1));
    if (cap.ok()) s.job_cap_usd = cap->max_usd;
  }
  b->Reset();
  return s;
}

absl::Status UsageStore::BeginRound(Db& db, int64_t now_ms) {
  round_budgets_.clear();
  round_cache_.clear();
  ASSIGN_OR_RETURN(st, db.Prepare("SELECT id, budget_usd FROM batches WHERE budget_usd>0"));
  while (true) {
    ASSIGN_OR_RETURN(row, st->Step());
    if (!row) break;
    round_budgets_[st->Int(0)] = st->Double(1);
  }
  // A held batch whose budget was removed starts again.
  for (auto it = held_.begin(); it != held_.end();) {
    if (round_budgets_.count(*it)) {
      ++it;
      continue;
    }
    RETURN_IF_ERROR(Event(db, *it, now_ms, "budget_resumed", "budget removed"));
    it = held_.erase(it);
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> UsageStore::MayStart(Db& db, int64_t batch_id, int running, int64_t now_ms) {
  auto budget = round_budgets_.find(batch_id);
  if (budget == round_budgets_.end()) return true;
  auto cached = round_cache_.find(batch_id);
  if (cached == round_cache_.end()) {
    ASSIGN_OR_RETURN(s, BatchSpend(db, batch_id));
    BudgetInputs in;
    in.budget_usd = budget->second;
    in.spent_usd = s.spent_usd;
    in.job_cap_usd = s.job_cap_usd;
    in.avg_per_finished_usd = s.avg_per_finished_usd;
    cached = round_cache_.emplace(batch_id, in).first;
  }
  BudgetInputs in = cached->second;
  in.running = running;
  BudgetDecision d = DecideBudget(in);
  const bool was_held = held_.count(batch_id) > 0;
  if (d.hold && !was_held) {
    held_.insert(batch_id);
    RETURN_IF_ERROR(Event(db, batch_id, now_ms, "budget_hold", absl::StrCat(d.reason, "; no new starts")));
    spdlog::warn("batch {}: {}; no new starts until the budget is raised", batch_id, d.reason);
  } else if (!d.hold && was_held) {
    held_.erase(batch_id);
    RETURN_IF_ERROR(Event(db, batch_id, now_ms, "budget_resumed",
                          absl::StrFormat("committed $%.4f of $%.4f", d.committed_usd,
                                          in.budget_usd)));
    spdlog::info("batch {}: budget allows starts again", batch_id);
  }
  return !d.hold;
}

absl::Status UsageStore::FillLease(Db& db, int64_t batch_id, int64_t job_id,
                                   const std::string& profile_json, v1::Lease* lease) {
  ASSIGN_OR_RETURN(cap, JobCapFromProfile(profile_json));
  if (!cap.any()) return absl::OkStatus();
  ASSIGN_OR_RETURN(prices, PricesFor(db, batch_id));
  // Every earlier attempt of the job since an operator last retried it (a
  // retry or a rerun gives the job its whole cap again), per model.
  ASSIGN_OR_RETURN(u, db.Prepare(absl::StrCat(
                          "SELECT u.provider, u.model, ", kUsageCols,
                          " FROM attempt_usage u JOIN attempts a ON a.id = u.attempt_id"
                          " JOIN jobs j ON j.id = a.job_id"
                          " WHERE a.job_id=? AND a.retry_epoch = j.retry_epoch")));
  u->Bind(1, job_id);
  v1::Usage used;
  RETURN_IF_ERROR(ReadModels(*u, &used));
  if (auto b = LeaseBudget(RemainingCap(cap, used, *prices), *prices))
    *lease->mutable_budget() = std::move(*b);
  return absl::OkStatus();
}

absl::Status UsageStore::FillAttempts(Db& db, v1::JobDetail* d) {
  if (d->attempts().empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(b, db.Prepare("SELECT batch_id FROM jobs WHERE id=?"));
  b->Bind(1, d->job().job_id());
  ASSIGN_OR_RETURN(brow, b->Step());
  const int64_t batch_id = brow ? b->Int(0) : 0;
  b->Reset();
  ASSIGN_OR_RETURN(prices, PricesFor(db, batch_id));
  ASSIGN_OR_RETURN(u, db.Prepare(absl::StrCat("SELECT provider, model, ", kUsageCols,
                                              " FROM attempt_usage WHERE attempt_id=? "
                                              "ORDER BY provider, model")));
  ASSIGN_OR_RETURN(a, db.Prepare("SELECT budget_exhausted, agent_cost_usd FROM attempts WHERE id=?"));
  for (auto& at : *d->mutable_attempts()) {
    u->Bind(1, at.attempt_id());
    v1::Usage* usage = at.mutable_usage();
    RETURN_IF_ERROR(ReadModels(*u, usage));
    u->Reset();
    a->Bind(1, at.attempt_id());
    ASSIGN_OR_RETURN(arow, a->Step());
    at.set_agent_reported_cost_usd(-1);
    if (arow) {
      usage->set_budget_exhausted(a->Int(0) != 0);
      if (!a->IsNull(1)) at.set_agent_reported_cost_usd(a->Double(1));
    }
    a->Reset();
    *at.mutable_cost() = CostOf(*usage, *prices);
  }
  return absl::OkStatus();
}

absl::Status UsageStore::FillBatchSpend(Db& db, int64_t batch_id, int64_t total_jobs,
                                        v1::BatchSpend* out) {
  ASSIGN_OR_RETURN(s, BatchSpend(db, batch_id));
  *out->mutable_spent() = s.cost;
  *out->mutable_usage() = s.usage;
  out->set_avg_per_finished_usd(s.avg_per_finished_usd);
  out->set_projected_usd(s.avg_per_finished_usd >= 0
                             ? s.avg_per_finished_usd * static_cast<double>(total_jobs)
                             : -1);
  out->set_budget_usd(s.budget_usd);
  BudgetInputs in{s.budget_usd, s.spent_usd, s.running, s.job_cap_usd, s.avg_per_finished_usd};
  out->set_held_by_budget(DecideBudget(in).hold);
  ASSIGN_OR_RETURN(ag, db.Prepare(
                           "SELECT coalesce(sum(a.agent_cost_usd),0) FROM attempts a JOIN jobs j "
                           "ON j.id=a.job_id WHERE j.batch_id=? AND a.agent_cost_usd IS NOT NULL"));
  ag->Bind(1, batch_id);
  ASSIGN_OR_RETURN(agrow, ag->Step());
  out->set_agent_reported_usd(agrow ? ag->Double(0) : 0);
  ag->Reset();
  return absl::OkStatus();
}

}  // namespace assessq
