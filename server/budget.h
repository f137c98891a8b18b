// A batch's budget (assessctl submit --budget / assessctl budget): whether
// the coordinator may start one more job of the batch. Pure, decided the same
// way by the dispatcher (server/engine.cc, beside the fleet limits) and by
// status (held_by_budget).
//
// What counts: every attempt's money so far (spent, running attempts
// included), plus what each running job may still spend: its profile's cap
// (limits.budget.max_usd) — or, for a job without a money cap, the batch's
// average per finished dataset once one has finished, and nothing before that
// (so the first jobs of an uncapped batch start until the money is spent).
// A start is refused once spent + running × reserve reaches the budget, or
// when the new job's reserve would take it past the budget. Tokens of a
// model without a price count nothing (status shows them as price unknown).
// Jobs already running are never stopped by this.
#pragma once

#include <string>

namespace assessq {

struct BudgetInputs {
  double budget_usd = 0;          // 0: no budget
  double spent_usd = 0;           // every attempt of the batch so far (priced)
  int running = 0;                // jobs holding a lease now
  double job_cap_usd = 0;         // the profile's limits.budget.max_usd; 0: none
  double avg_per_finished_usd = -1;  // -1: no dataset finished yet
};

struct BudgetDecision {
  bool hold = false;       // start nothing more now
  double reserve_usd = 0;  // counted per running (and per new) job
  double committed_usd = 0;  // spent + running × reserve
  std::string reason;      // why it holds (empty when it does not)
};

BudgetDecision DecideBudget(const BudgetInputs& in);

}  // namespace assessq
