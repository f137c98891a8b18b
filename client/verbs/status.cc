// `assessctl status [--batch NAME] [--watch]`: per batch, counts by state and
// by failure class, throughput and ETA, with a progress bar. `-o json` prints
// {"batches":[{"name":..,"counts":{state:n},..}]} (with --batch, the one
// batch object itself, whose "counts" maps state names to numbers).
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli_context.h"
#include "client/cost_format.h"
#include "client/progress.h"

namespace assessq::cli {
namespace {

nlohmann::json BatchJson(const v1::BatchStatus& b) {
  nlohmann::json counts = nlohmann::json::object(), fails = nlohmann::json::object();
  for (const auto& [k, v] : b.counts()) counts[k] = v;
  for (const auto& [k, v] : b.failure_counts()) fails[k] = v;
  return {{"name", b.name()},
          {"total", b.total()},
          {"counts", counts},
          {"failed_attempts_by_class", fails},
          {"throughput_per_min", b.throughput_per_min()},
          {"eta_seconds", b.eta_seconds()},
          {"paused", b.paused()},
          {"denied_requests", b.denied_requests()},
          {"created_at", FormatTime(b.created_at_ms())},
          {"limit", LimitJson(b.limit())},
          {"spend", SpendJson(b.spend())}};
}

const v1::LimitStatus* ProviderOf(const v1::StatusResponse& r, const v1::BatchStatus& b) {
  for (const auto& p : r.providers())
    if (p.name() == b.limit().provider()) return &p;
  return nullptr;
}

int64_t Count(const v1::BatchStatus& b, const char* state) {
  auto it = b.counts().find(state);
  return it == b.counts().end() ? 0 : it->second;
}

void PrintHuman(const v1::StatusResponse& r, const v1::WorkersResponse* workers) {
  if (r.batches().empty()) {
    std::cout << "no batches\n";
    return;
  }
  Table t({"BATCH", "TOTAL", "QUEUED", "LEASED", "RUNNING", "SUCCEEDED", "NEEDS_ATTN",
           "CANCELLED", "RATE/MIN", "ETA"});
  for (const auto& b : r.batches()) {
    t.Add({b.name() + (b.paused() ? " (paused)" : ""), absl::StrCat(b.total()),
           absl::StrCat(Count(b, "queued")), absl::StrCat(Count(b, "leased")),
           absl::StrCat(Count(b, "running")), absl::StrCat(Count(b, "succeeded")),
           absl::StrCat(Count(b, "needs_attention")), absl::StrCat(Count(b, "cancelled")),
           absl::StrFormat("%.1f", b.throughput_per_min()),
           b.eta_seconds() < 0 ? "-" : FormatDuration(b.eta_seconds() * 1000)});
  }
  t.Print();
  for (const auto& b : r.batches()) {
    int64_t finished = Count(b, "succeeded") + Count(b, "needs_attention") +
                       Count(b, "cancelled");
    std::cout << Safe(b.name()) << "  "
              << RenderBar(finished, b.total(), b.throughput_per_min() / 60.0, 30);
    if (b.denied_requests() > 0) std::cout << "  denied requests: " << b.denied_requests();
    if (!b.failure_counts().empty()) {
      std::cout << "  failed attempts:";
      for (const auto& [k, v] : b.failure_counts()) std::cout << " " << Safe(k) << "=" << v;
    }
    std::cout << "\n";
    if (b.limit().current_limit() > 0 || b.limit().start_rate_per_min() > 0)
      std::cout << "  " << DescribeLimit(b.limit()) << "\n";
    // Cost: the gateway's count priced by the batch's prices.
    const v1::BatchSpend& sp = b.spend();
    if (!sp.usage().models().empty() || sp.budget_usd() > 0) {
      std::cout << "  spent " << Safe(CostText(sp.spent())) << " for " << TotalTokens(sp.usage())
                << " tokens; per finished dataset " << Usd(sp.avg_per_finished_usd())
                << "; projected " << Usd(sp.projected_usd()) << "; budget "
                << (sp.budget_usd() > 0 ? Usd(sp.budget_usd()) : std::string("none"));
      if (sp.held_by_budget()) std::cout << " (HELD: no new starts until the budget is raised)";
      if (sp.agent_reported_usd() > 0)
        std::cout << "; the agent's own figures: " << Usd(sp.agent_reported_usd());
      std::cout << "\n";
    }
  }
  // Model providers the batches use: the fleet-wide limit and why.
  for (const auto& p : r.providers())
    if (p.current_limit() > 0 || p.hold_until_ms() > 0 || p.start_rate_per_min() > 0 ||
        p.running() > 0)
      std::cout << DescribeLimit(p) << "\n";
  if (workers) {
    int slots = 0, in_use = 0;
    for (const auto& w : workers->workers())
      if (w.connected()) {
        slots += w.slots();
        in_use += w.in_use();
      }
    std::cout << "workers: " << in_use << "/" << slots << " slots in use";
    for (const auto& w : workers->workers()) {
      if (!w.connected()) continue;
      std::cout << "  " << Safe(w.name()) << " " << w.in_use() << "/" << w.slots()
                << (w.draining() ? " (draining)" : "");
    }
    std::cout << "\n";
  }
}

}  // namespace

void RegisterStatus(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand("status", "counts, throughput and ETA per batch");
  auto batch = std::make_shared<std::string>();
  auto watch = std::make_shared<bool>(false);
  auto interval = std::make_shared<double>(2.0);
  cmd->add_option("--batch", *batch, "one batch (default: all)");
  cmd->add_flag("--watch", *watch, "redraw until every batch is finished");
  cmd->add_option("--interval", *interval, "seconds between redraws with --watch");
  cmd->callback([&ctx, &exit_code, batch, watch, interval] {
    if (auto s = ctx.Connect(); !s.ok()) {
      exit_code = Fail(s);
      return;
    }
    bool tty = isatty(STDOUT_FILENO);
    while (true) {
      v1::StatusRequest req;
      req.set_batch(*batch);
      v1::StatusResponse resp;
      auto call = ctx.Call(30);
      auto st = ctx.stub->Status(call.get(), req, &resp);
      if (!st.ok()) {
        exit_code = Fail(st);
        return;
      }
      if (ctx.json()) {
        nlohmann::json providers = nlohmann::json::array();
        for (const auto& p : resp.providers()) providers.push_back(LimitJson(p));
        if (!batch->empty() && resp.batches_size() == 1) {
          nlohmann::json b = BatchJson(resp.batches(0));
          if (auto* p = ProviderOf(resp, resp.batches(0))) b["provider_limit"] = LimitJson(*p);
          PrintJson(b);
        } else {
          nlohmann::json arr = nlohmann::json::array();
          for (const auto& b : resp.batches()) arr.push_back(BatchJson(b));
          PrintJson({{"batches", arr}, {"providers", providers}});
        }
      } else {
        // Workers and their slots: shown with --watch (one more call).
        v1::WorkersResponse workers;
        bool have_workers = false;
        if (*watch) {
          auto wcall = ctx.Call(30);
          have_workers = ctx.stub->ListWorkers(wcall.get(), v1::WorkersRequest{}, &workers).ok();
        }
        if (*watch && tty) std::cout << "\033[H\033[2J";
        PrintHuman(resp, have_workers ? &workers : nullptr);
      }
      std::cout.flush();
      bool active = false;
      for (const auto& b : resp.batches())
        active |= Count(b, "queued") + Count(b, "leased") + Count(b, "running") > 0;
      if (!*watch || !active) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(*interval * 1000)));
    }
    exit_code = kExitOk;
  });
}

}  // namespace assessq::cli
