// `assessctl cancel JOB` or `cancel --batch B`: cancels queued and running
// jobs; workers running them are told at once over their session.
#include <iostream>

#include "client/cli_context.h"

namespace assessq::cli {

void RegisterCancel(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand("cancel", "cancel a job, or every unfinished job of a batch");
  auto job = std::make_shared<std::string>();
  auto batch = std::make_shared<std::string>();
  cmd->add_option("job", *job, "job id (or dataset key with --batch)");
  cmd->add_option("--batch", *batch, "the batch (alone: cancel all of it)");
  cmd->callback([&ctx, &exit_code, job, batch] {
    v1::CancelRequest req;
    if (auto s = FillJobOrBatch(*job, *batch, "cancel", req); !s.ok()) {
      exit_code = Fail(s);
      return;
    }
    v1::CountResponse r;
    if (!ConnectAndCall(ctx, &v1::OperatorService::Stub::Cancel, req, &r, exit_code)) return;
    exit_code = PrintCount(ctx, "cancelled", r.count());
  });
}

}  // namespace assessq::cli
