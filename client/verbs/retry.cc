// `assessctl retry JOB` or `retry --batch B [--class C]`: releases jobs that
// need attention back to the queue with a fresh attempt budget (like
// beanstalkd's kick). Their earlier attempts stay in the history.
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/cli_context.h"

namespace assessq::cli {

void RegisterRetry(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand("retry", "requeue needs_attention jobs (one, or by batch/class)");
  auto job = std::make_shared<std::string>();
  auto batch = std::make_shared<std::string>();
  auto cls = std::make_shared<std::string>();
  cmd->add_option("job", *job, "job id (or dataset key with --batch)");
  cmd->add_option("--batch", *batch, "the batch");
  cmd->add_option("--class", *cls, "only jobs whose last failure is of this class");
  cmd->callback([&ctx, &exit_code, job, batch, cls] {
    v1::RetryRequest req;
    if (auto s = FillJobOrBatch(*job, *batch, "retry", req); !s.ok()) {
      exit_code = Fail(s);
      return;
    }
    auto c = ParseClassFlag(job->empty() ? *cls : std::string());  // --class applies to --batch
    if (!c.ok()) {
      exit_code = Fail(c.status());
      return;
    }
    req.set_failure_class(*c);
    v1::CountResponse r;
    if (!ConnectAndCall(ctx, &v1::OperatorService::Stub::Retry, req, &r, exit_code)) return;
    exit_code = PrintCount(ctx, "requeued", r.count());
  });
}

}  // namespace assessq::cli
