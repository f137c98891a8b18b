#include "server/budget.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace assessq {

BudgetDecision DecideBudget(const BudgetInputs& in) {
  BudgetDecision d;
  d.reserve_usd = in.job_cap_usd > 0            ? in.job_cap_usd
                  : in.avg_per_finished_usd > 0 ? in.avg_per_finished_usd
                                                : 0;
  const int running = in.running > 0 ? in.running : 0;
  const double spent = std::isfinite(in.spent_usd) && in.spent_usd > 0 ? in.spent_usd : 0;
  d.committed_usd = spent + running * d.reserve_usd;
  if (!(in.budget_usd > 0)) return d;  // no budget (0, negative or NaN)
  if (d.committed_usd >= in.budget_usd) {
    d.hold = true;
    d.reason = absl::StrFormat(
        "budget: spent $%.4f + %d running x $%.4f = $%.4f reaches the budget $%.4f", spent,
        running, d.reserve_usd, d.committed_usd, in.budget_usd);
  } else if (d.committed_usd + d.reserve_usd > in.budget_usd) {
    d.hold = true;
    d.reason = absl::StrFormat(
        "budget: spent $%.4f + %d running x $%.4f = $%.4f; one more job ($%.4f) would pass the "
        "budget $%.4f",
        spent, running, d.reserve_usd, d.committed_usd, d.reserve_usd, in.budget_usd);
  }
  return d;
}

}  // namespace assessq
