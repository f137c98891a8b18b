// `assessctl list [--batch B] [--state S] [--class C]`: jobs, filtered, as a
// table or `-o json`. Pages through the coordinator's listing.
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/cli_context.h"

namespace assessq::cli {

void RegisterList(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand("list", "list jobs by batch, state or failure class");
  struct Opts {
    std::string batch, state, cls;
    int limit = 0;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--batch", o->batch, "only this batch");
  cmd->add_option("--state", o->state,
                  "queued, leased, running, succeeded, needs_attention, cancelled");
  cmd->add_option("--class", o->cls, "last failure class: infra, model_api, agent, "
                                     "invalid_output, input");
  cmd->add_option("--limit", o->limit, "at most this many jobs (default: all)");
  cmd->callback([&ctx, &exit_code, o] {
    v1::ListJobsRequest req;
    req.set_batch(o->batch);
    auto state = ParseStateFlag(o->state);
    auto cls = ParseClassFlag(o->cls);
    for (const absl::Status& s : {state.status(), cls.status()})
      if (!s.ok()) {
        exit_code = Fail(s);
        return;
      }
    req.set_state(*state);
    req.set_failure_class(*cls);
    if (!Connected(ctx, exit_code)) return;
    std::vector<v1::JobSummary> jobs;
    while (true) {
      req.set_limit(1000);
      v1::ListJobsResponse resp;
      if (!Unary(ctx, &v1::OperatorService::Stub::ListJobs, req, &resp, exit_code)) return;
      for (auto& j : *resp.mutable_jobs()) jobs.push_back(std::move(j));
      if (resp.jobs_size() < 1000 || (o->limit > 0 && static_cast<int>(jobs.size()) >= o->limit))
        break;
      req.set_after_job_id(jobs.back().job_id());
    }
    if (o->limit > 0 && static_cast<int>(jobs.size()) > o->limit) jobs.resize(o->limit);
    if (ctx.json()) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& j : jobs) arr.push_back(JobJson(j));
      PrintJson(arr);
    } else {
      Table t({"JOB", "BATCH", "DATASET", "STATE", "ATTEMPTS", "LAST_FAILURE", "WORKER"});
      for (const auto& j : jobs)
        t.Add({absl::StrCat(j.job_id()), j.batch(), j.dataset_key(), StateName(j.state()),
               absl::StrCat(j.attempts()), ClassName(j.last_failure_class()), j.worker()});
      t.Print();
    }
    exit_code = kExitOk;
  });
}

}  // namespace assessq::cli
