// `assessctl show JOB` (or `show --batch B DATASET`): the job, every attempt
// (worker, times, outcome, failure class, error, log tail, the job's allow
// list, with --steps the agent's reported tool calls as a timeline) and its
// events. Every value from the coordinator is printed escaped
// (cli_context.h).
#include <algorithm>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli_context.h"
#include "client/cost_format.h"

namespace assessq::cli {

namespace {

// The agent's own account of its tool calls (details.agent_steps, kept by the
// worker from the agent's output): a record of what it says, not evidence;
// `netlog` shows what the gateway saw.
void PrintSteps(const v1::Attempt& a) {
  auto det = nlohmann::json::parse(a.details_json(), nullptr, false);
  const nlohmann::json* rec = det.is_object() && det.contains("agent_steps") ? &det["agent_steps"] : nullptr;
  std::cout << "\nattempt " << a.number() << " steps";
  if (rec == nullptr || !rec->is_object() || !rec->contains("steps") || !(*rec)["steps"].is_array()) {
    std::cout << ": none reported\n";
    return;
  }
  std::cout << " (reported by the " << Safe(rec->value("reported_by", std::string("agent")))
            << (rec->value("complete", false) ? "" : "; the record's start was not kept") << "):\n";
  Table t({"#", "TOOL", "TARGET", "RESULT", "DURATION"});
  int n = 0;
  for (const auto& st : (*rec)["steps"]) {
    if (!st.is_object()) continue;
    std::string result = !st.contains("ok") ? "-" : st["ok"].is_boolean() && st["ok"].get<bool>() ? "ok" : "error";
    std::string dur = st.contains("duration_ms") && st["duration_ms"].is_number_integer()
                          ? FormatDuration(st["duration_ms"].get<int64_t>())
                          : "-";
    t.Add({absl::StrCat(++n), st.value("tool", std::string("?")), st.value("target", std::string()),
           result, dur});
  }
  t.Print();
  if (rec->contains("omitted") && (*rec)["omitted"].is_number_integer())
    std::cout << "(" << (*rec)["omitted"].get<int64_t>() << " more not kept)\n";
}

}  // namespace

void RegisterShow(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand("show", "one job with its attempt history");
  auto job = std::make_shared<std::string>();
  auto batch = std::make_shared<std::string>();
  auto logs = std::make_shared<bool>(false);
  auto steps = std::make_shared<bool>(false);
  cmd->add_option("job", *job, "job id, or dataset key with --batch")->required();
  cmd->add_option("--batch", *batch, "look the dataset key up in this batch");
  cmd->add_flag("--logs", *logs, "print each attempt's log tail");
  cmd->add_flag("--steps", *steps,
                "print each attempt's tool calls as the agent reported them (a timeline)");
  cmd->callback([&ctx, &exit_code, job, batch, logs, steps] {
    auto ref = ParseJobRef(*job, *batch);
    if (!ref.ok()) {
      exit_code = Fail(ref.status());
      return;
    }
    if (auto s = ctx.Connect(); !s.ok()) {
      exit_code = Fail(s);
      return;
    }
    v1::JobDetail d;
    auto call = ctx.Call();
    auto st = ctx.stub->ShowJob(call.get(), *ref, &d);
    if (!st.ok()) {
      exit_code = Fail(st);
      return;
    }
    if (ctx.json()) {
      nlohmann::json j = JobJson(d.job());
      j["attempts"] = nlohmann::json::array();
      for (const auto& a : d.attempts()) {
        nlohmann::json aj = {{"attempt_id", a.attempt_id()},
                             {"number", a.number()},
                             {"worker", a.worker()},
                             {"leased_at", FormatTime(a.leased_at_ms())},
                             {"started_at", FormatTime(a.started_at_ms())},
                             {"ended_at", FormatTime(a.ended_at_ms())},
                             {"outcome", a.outcome()},
                             {"failure_class", ClassName(a.failure_class())},
                             {"exit_code", a.exit_code()},
                             {"error", a.error()},
                             {"log_tail", a.log_tail()},
                             {"usage", UsageJson(a.usage())},
                             {"cost", CostJson(a.cost())},
                             {"agent_reported_cost_usd",
                              a.agent_reported_cost_usd() < 0
                                  ? nlohmann::json(nullptr)
                                  : nlohmann::json(a.agent_reported_cost_usd())}};
        auto details = nlohmann::json::parse(a.details_json(), nullptr, false);
        if (!details.is_discarded()) aj["details"] = details;
        j["attempts"].push_back(aj);
      }
      j["events"] = nlohmann::json::array();
      for (const auto& e : d.events())
        j["events"].push_back({{"ts", FormatTime(e.ts_ms())}, {"kind", e.kind()},
                               {"detail", e.detail()}});
      PrintJson(j);
      exit_code = kExitOk;
      return;
    }
    const auto& j = d.job();
    std::cout << "job " << j.job_id() << "  batch " << Safe(j.batch()) << "  dataset "
              << Safe(j.dataset_key()) << " (" << Safe(j.dataset_name()) << ")\n"
              << "state " << StateName(j.state()) << "  attempts " << j.attempts();
    if (j.last_failure_class()) std::cout << "  last failure " << ClassName(j.last_failure_class());
    std::cout << "\ninput " << Safe(j.source_name()) << " sha256 " << Safe(j.input_sha256())
              << "\n\n";
    Table t({"ATTEMPT", "WORKER", "LEASED", "ENDED", "OUTCOME", "CLASS", "EXIT", "TOKENS", "COST",
             "ERROR"});
    for (const auto& a : d.attempts()) {
      std::string err = a.error();
      if (auto nl = err.find('\n'); nl != std::string::npos) err = err.substr(0, nl) + " …";
      t.Add({absl::StrCat(a.number(), " (", a.attempt_id(), ")"), a.worker(),
             FormatTime(a.leased_at_ms()), FormatTime(a.ended_at_ms()), a.outcome(),
             ClassName(a.failure_class()), absl::StrCat(a.exit_code()),
             absl::StrCat(TotalTokens(a.usage())),
             a.usage().models().empty() ? "-" : CostText(a.cost()), err});
    }
    t.Print();
    // Tokens per model as the egress gateway counted them, the cost by the
    // batch's prices, and beside it what the agent said it cost (its own
    // figure, not used for budgets).
    for (const auto& a : d.attempts()) {
      if (a.usage().models().empty() && a.agent_reported_cost_usd() < 0) continue;
      std::cout << "attempt " << a.number() << " cost: " << Safe(CostText(a.cost()))
                << " (gateway's count: " << Safe(TokensText(a.usage())) << " tokens)";
      if (a.agent_reported_cost_usd() >= 0)
        std::cout << "; the agent's own figure: " << Usd(a.agent_reported_cost_usd());
      if (a.usage().budget_exhausted()) std::cout << "; stopped at the job's budget";
      std::cout << "\n";
      for (const auto& m : a.usage().models())
        std::cout << "  " << Safe(m.provider()) << "/" << Safe(m.model()) << ": " << m.requests()
                  << " requests, in " << m.input_tokens() << ", out " << m.output_tokens()
                  << ", cache write " << m.cache_write_tokens() << ", cache read "
                  << m.cache_read_tokens() << "\n";
    }
    for (const auto& a : d.attempts()) {
      // The job's effective allow list (the worker's record): the number of
      // profile rules, and the hosts its own metadata added.
      auto det = nlohmann::json::parse(a.details_json(), nullptr, false);
      if (!det.is_object() || !det.contains("allow") || !det["allow"].is_array()) continue;
      std::vector<std::string> added;
      if (det.contains("allow_from_metadata") && det["allow_from_metadata"].is_array())
        for (const auto& h : det["allow_from_metadata"]) added.push_back(h.is_string() ? h.get<std::string>() : "?");
      std::cout << "attempt " << a.number() << " allow list: "
                << det["allow"].size() - std::min(det["allow"].size(), added.size())
                << " profile rules" << (added.empty() ? "" : "; from its metadata: ")
                << Safe(absl::StrJoin(added, ", ")) << "\n";
    }
    for (const auto& a : d.attempts()) {
      if (a.failure_class() == v1::FAILURE_CLASS_INVALID_OUTPUT) {
        std::cout << "\nattempt " << a.number() << " validation errors:\n";
        std::cout << SafeText(a.error()) << "\n";
      }
      if (*logs && !a.log_tail().empty())
        std::cout << "\nattempt " << a.number() << " log tail:\n" << SafeText(a.log_tail()) << "\n";
      if (*steps) PrintSteps(a);
    }
    exit_code = kExitOk;
  });
}

}  // namespace assessq::cli
