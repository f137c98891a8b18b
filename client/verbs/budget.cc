// `assessctl budget BATCH USD`: sets a batch's budget (0 removes it). The
// coordinator starts no new job of the batch once the money spent plus what
// its running jobs may still spend would pass the budget (server/budget.h);
// raising the budget lets starts resume; running jobs always finish. Prints
// the batch's spend after the change (`-o json`: the same as status's
// "spend").
#include <cmath>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/cli_context.h"
#include "client/cost_format.h"

namespace assessq::cli {

void RegisterBudget(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand("budget", "set a batch's budget in USD (0 removes it)");
  auto batch = std::make_shared<std::string>();
  auto usd = std::make_shared<double>(0);
  cmd->add_option("batch", *batch, "the batch")->required();
  cmd->add_option("usd", *usd, "the budget in USD; 0 = no budget")
      ->required()
      ->check(CLI::Range(0.0, 1e9));
  cmd->callback([&ctx, &exit_code, batch, usd] {
    v1::BudgetRequest req;
    req.set_batch(*batch);
    req.set_budget_usd(*usd);
    v1::BatchStatus b;
    if (!ConnectAndCall(ctx, &v1::OperatorService::Stub::SetBudget, req, &b, exit_code)) return;
    if (ctx.json()) {
      PrintJson({{"batch", b.name()}, {"spend", SpendJson(b.spend())}});
    } else {
      const auto& s = b.spend();
      std::cout << "batch " << Safe(b.name()) << ": budget "
                << (s.budget_usd() > 0 ? Usd(s.budget_usd()) : std::string("none")) << ", spent "
                << Safe(CostText(s.spent()))
                << (s.held_by_budget() ? "; new starts held by the budget" : "") << "\n";
    }
    exit_code = kExitOk;
  });
}

}  // namespace assessq::cli
