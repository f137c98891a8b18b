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
    if (!o->state.empty()) {
      v1::JobState s;
      if (!v1::JobState_Parse("JOB_STATE_" + absl::AsciiStrToUpper(o->state), &s)) {
        exit_code = Fail(absl::InvalidArgumentError(absl::StrCat("unknown state '", o->state, "'")));
        return;
      }
      req.set_state(s);
    }
    if (!o->cls.empty()) {
      v1::FailureClass c;
      if (!v1::FailureClass_Parse("FAILURE_CLASS_" + absl::AsciiStrToUpper(o->cls), &c)) {
        exit_code = Fail(absl::InvalidArgumentError(absl::StrCat("unknown class '", o->cls, "'")));
        return;
      }
      req.set_failure_class(c);
    }
    if (auto s = ctx.Connect(); !s.ok()) {
      exit_code = Fail(s);
      return;
    }
    std::vector<v1::JobSummary> jobs;
    while (true) {
      req.set_limit(1000);
      v1::ListJobsResponse resp;
      auto call = ctx.Call(60);
      auto st = ctx.stub->ListJobs(call.get(), req, &resp);
      if (!st.ok()) {
        exit_code = Fail(st);
        return;
      }
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
