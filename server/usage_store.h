// What attempts used and cost, stored in SQLite, and batches' budgets and
// prices: the SQL behind cost, kept out of the engine. The engine calls the
// write side on its thread inside its transaction (usage from heartbeats and
// completion, a batch's budget and prices, the dispatcher's budget check, the
// lease's job cap); the read side (Queries) fills attempts' usage and cost
// and a batch's spend. Usage is cumulative per attempt and model: each count
// is stored as the largest value reported, so a repeated or late report never
// adds twice and never lowers it. Money is computed when read, from the
// batch's prices (its own, else the coordinator's). Thread-safe (the parsed
// price tables are cached behind a mutex; the held set is engine-thread only).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "assessq/v1/assessq.pb.h"
#include "server/budget.h"
#include "server/db.h"
#include "server/pricing.h"

namespace assessq {

// What one report added, for the metrics (usd unset: price unknown).
struct UsageGrowth {
  v1::ModelUsage added;
  std::optional<double> usd;
};

class UsageStore {
 public:
  explicit UsageStore(PriceTable defaults = {}) : defaults_(std::move(defaults)) {}

  // ---- engine side (the write connection, inside its transaction)
  // Stores attempt `attempt_id`'s usage so far; returns what grew.
  absl::StatusOr<std::vector<UsageGrowth>> Record(Db& db, int64_t attempt_id,
                                                  const v1::Usage& usage);
  // The completion's final usage (null: none reported) and the agent's own
  // figure (from the details and the log tail).
  absl::StatusOr<std::vector<UsageGrowth>> RecordCompletion(Db& db, int64_t attempt_id,
                                                            const v1::Usage* usage,
                                                            const std::string& details_json,
                                                            const std::string& log_tail);
  // A submit's budget (unset: keep) and prices ("": keep), with an event each.
  absl::Status ApplySubmit(Db& db, int64_t batch_id, std::optional<double> budget_usd,
                           const std::string& prices_json, int64_t now_ms);
  absl::Status SetBudget(Db& db, int64_t batch_id, double budget_usd, int64_t now_ms);
  // Dispatch: call once per round, then MayStart per candidate; MayStart
  // writes a budget_hold / budget_resumed event when the batch's state changes.
  absl::Status BeginRound(Db& db, int64_t now_ms);
  absl::StatusOr<bool> MayStart(Db& db, int64_t batch_id, int running, int64_t now_ms);
  // The lease's job cap (profile limits.budget) with the batch's prices:
  // what the job's earlier attempts left of it (RemainingCap).
  absl::Status FillLease(Db& db, int64_t batch_id, int64_t job_id,
                         const std::string& profile_json, v1::Lease* lease);

  // ---- read side (any connection)
  // Every attempt's usage, cost and agent figure.
  absl::Status FillAttempts(Db& db, v1::JobDetail* d);
  absl::Status FillBatchSpend(Db& db, int64_t batch_id, int64_t total_jobs, v1::BatchSpend* s);
  // The prices in force for a batch (its own, else the coordinator's).
  absl::StatusOr<std::shared_ptr<const PriceTable>> PricesFor(Db& db, int64_t batch_id);

 private:
  struct Spend {
    double spent_usd = 0;
    v1::Usage usage;  // summed per model
    v1::Cost cost;
    double avg_per_finished_usd = -1;
    int64_t finished = 0;
    int running = 0;
    double job_cap_usd = 0;
    double budget_usd = 0;
  };
  absl::StatusOr<Spend> BatchSpend(Db& db, int64_t batch_id);
  absl::Status Event(Db& db, int64_t batch_id, int64_t now_ms, const char* kind,
                     const std::string& detail);

  PriceTable defaults_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const PriceTable>> parsed_;  // guarded by mu_
  // Engine thread only.
  std::map<int64_t, double> round_budgets_;     // batch -> budget (> 0) this round
  std::map<int64_t, BudgetInputs> round_cache_;  // batch -> spend read this round
  std::set<int64_t> held_;                       // batches whose start was refused
};

}  // namespace assessq
