// `assessctl workers` lists connected and known workers with slots in use and
// last contact; `assessctl workers drain NAME` stops new leases to one.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/cli_context.h"

namespace assessq::cli {

void RegisterWorkers(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand("workers", "workers, their slots and last contact");
  auto* drain = cmd->add_subcommand("drain", "stop leasing to a worker; running jobs finish");
  auto name = std::make_shared<std::string>();
  drain->add_option("name", *name, "worker name")->required();
  drain->callback([&ctx, &exit_code, name] {
    if (auto s = ctx.Connect(); !s.ok()) {
      exit_code = Fail(s);
      return;
    }
    v1::DrainRequest req;
    req.set_worker(*name);
    v1::Empty e;
    auto call = ctx.Call();
    auto st = ctx.stub->DrainWorker(call.get(), req, &e);
    if (!st.ok()) {
      exit_code = Fail(st);
      return;
    }
    if (ctx.json()) PrintJson({{"drained", *name}});
    else std::cout << "worker " << *name << " is draining\n";
    exit_code = kExitOk;
  });
  cmd->callback([&ctx, &exit_code, drain] {
    if (drain->parsed()) return;
    if (auto s = ctx.Connect(); !s.ok()) {
      exit_code = Fail(s);
      return;
    }
    v1::WorkersResponse r;
    auto call = ctx.Call();
    auto st = ctx.stub->ListWorkers(call.get(), v1::WorkersRequest(), &r);
    if (!st.ok()) {
      exit_code = Fail(st);
      return;
    }
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
