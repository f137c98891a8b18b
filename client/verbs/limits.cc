// `assessctl limits [--batch B | --provider P] [--max-running N]
// [--start-rate R]`: sets the fleet-wide start limits the coordinator applies
// to every worker at once (0 removes a limit), then prints every limit in
// force: configured maximums and start rates, jobs running, the AIMD limit a
// model provider is held to after rate-limit failures, and why. Without
// --batch/--provider it only prints them.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli_context.h"

namespace assessq::cli {

void RegisterLimits(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "limits", "show or set fleet-wide limits (jobs running, start rate) per batch or provider");
  struct Opts {
    std::string batch, provider;
    std::optional<int> max_running;
    std::optional<double> start_rate;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--batch", o->batch, "set this batch's limits");
  cmd->add_option("--provider", o->provider,
                  "set this model provider's limits (the profile's network.model)");
  cmd->add_option("--max-running", o->max_running, "jobs running at once; 0 = no limit")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--start-rate", o->start_rate, "job starts per minute; 0 = no limit")
      ->check(CLI::Range(0.0, 1e6));
  cmd->callback([&ctx, &exit_code, o] {
    if (!o->batch.empty() && !o->provider.empty()) {
      exit_code = Fail(absl::InvalidArgumentError("give --batch or --provider, not both"));
      return;
    }
    if ((o->max_running || o->start_rate) && o->batch.empty() && o->provider.empty()) {
      exit_code = Fail(absl::InvalidArgumentError(
          "--max-running/--start-rate need --batch or --provider"));
      return;
    }
    v1::LimitsRequest req;
    req.set_batch(o->batch);
    req.set_provider(o->provider);
    if (o->max_running) req.set_max_running(*o->max_running);
    if (o->start_rate) req.set_start_rate_per_min(*o->start_rate);
    v1::LimitsResponse resp;
    if (!ConnectAndCall(ctx, &v1::OperatorService::Stub::SetLimits, req, &resp, exit_code)) return;
    if (ctx.json()) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& l : resp.limits()) arr.push_back(LimitJson(l));
      PrintJson({{"limits", arr}});
    } else {
      Table t({"SCOPE", "NAME", "PROVIDER", "RUNNING", "LIMIT", "MAX", "STARTS/MIN", "WHY"});
      for (const auto& l : resp.limits())
        t.Add({l.scope(), l.name(), l.provider(), absl::StrCat(l.running()),
               l.current_limit() > 0 ? absl::StrCat(l.current_limit()) : "-",
               l.max_running() > 0 ? absl::StrCat(l.max_running()) : "-",
               l.start_rate_per_min() > 0 ? absl::StrFormat("%g", l.start_rate_per_min()) : "-",
               l.reason()});
      t.Print();
    }
    exit_code = kExitOk;
  });
}

}  // namespace assessq::cli
