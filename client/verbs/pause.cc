// `assessctl pause --batch B` / `resume --batch B`: no new leases for the
// batch while paused; running jobs finish.
#include <iostream>

#include "client/cli_context.h"

namespace assessq::cli {

void RegisterPause(CLI::App& app, Context& ctx, int& exit_code) {
  for (bool pause : {true, false}) {
    auto* cmd = app.add_subcommand(pause ? "pause" : "resume",
                                   pause ? "stop leasing a batch's jobs" : "lease them again");
    auto batch = std::make_shared<std::string>();
    cmd->add_option("--batch", *batch, "the batch")->required();
    cmd->callback([&ctx, &exit_code, batch, pause] {
      v1::BatchRequest req;
      req.set_batch(*batch);
      v1::Empty e;
      if (!ConnectAndCall(ctx,
                          pause ? &v1::OperatorService::Stub::PauseBatch
                                : &v1::OperatorService::Stub::ResumeBatch,
                          req, &e, exit_code))
        return;
      if (ctx.json()) PrintJson({{"batch", *batch}, {"paused", pause}});
      else std::cout << "batch " << *batch << (pause ? " paused\n" : " resumed\n");
      exit_code = kExitOk;
    });
  }
}

}  // namespace assessq::cli
