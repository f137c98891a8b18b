// `assessctl workers` lists connected and known workers with slots in use and
// last contact; `assessctl workers drain NAME` stops new leases to one,
// `workers undrain NAME` lets them resume.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/cli_context.h"

namespace assessq::cli {

void RegisterWorkers(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand("workers", "workers, their slots and last contact");
  std::vector<CLI::App*> subs;
  for (bool undrain : {false, true}) {
    auto* sub = cmd->add_subcommand(undrain ? "undrain" : "drain",
                                    undrain ? "lease to a drained worker again"
                                            : "stop leasing to a worker; running jobs finish");
    subs.push_back(sub);
    auto name = std::make_shared<std::string>();
    sub->add_option("name", *name, "worker name")->required();
    sub->callback([&ctx, &exit_code, name, undrain] {
      v1::DrainRequest req;
      req.set_worker(*name);
      req.set_undrain(undrain);
      v1::Empty e;
      if (!ConnectAndCall(ctx, &v1::OperatorService::Stub::DrainWorker, req, &e, exit_code)) return;
      if (ctx.json()) PrintJson({{"worker", *name}, {"draining", !undrain}});
      else std::cout << "worker " << Safe(*name) << (undrain ? " takes leases again\n" : " is draining\n");
      exit_code = kExitOk;
    });
  }
  auto* drain = subs[0];
  auto* undrain_cmd = subs[1];
  cmd->callback([&ctx, &exit_code, drain, undrain_cmd] {
    if (drain->parsed() || undrain_cmd->parsed()) return;
    v1::WorkersResponse r;
    if (!ConnectAndCall(ctx, &v1::OperatorService::Stub::ListWorkers, v1::WorkersRequest(), &r,
                        exit_code))
      return;
    if (ctx.json()) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& w : r.workers())
        arr.push_back({{"name", w.name()}, {"slots", w.slots()}, {"in_use", w.in_use()},
                       {"connected", w.connected()}, {"draining", w.draining()},
                       {"last_seen", FormatTime(w.last_seen_ms())}});
      PrintJson(arr);
    } else {
      Table t({"WORKER", "CONNECTED", "SLOTS", "IN_USE", "DRAINING", "LAST_SEEN"});
      for (const auto& w : r.workers())
        t.Add({w.name(), w.connected() ? "yes" : "no", absl::StrCat(w.slots()),
               absl::StrCat(w.in_use()), w.draining() ? "yes" : "no",
               FormatTime(w.last_seen_ms())});
      t.Print();
    }
    exit_code = kExitOk;
  });
}

}  // namespace assessq::cli
