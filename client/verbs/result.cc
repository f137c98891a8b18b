// `assessctl result JOB` (or `result --batch B DATASET`): the stored
// assessment JSON, pretty-printed, UTF-8 as is (DEL, C1 and bidi controls
// as \uXXXX escapes: the same JSON values). A stored text that is not JSON
// is printed escaped.
#include <iostream>

#include "client/cli_context.h"

namespace assessq::cli {

void RegisterResult(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand("result", "print a job's stored assessment");
  auto job = std::make_shared<std::string>();
  auto batch = std::make_shared<std::string>();
  cmd->add_option("job", *job, "job id, or dataset key with --batch")->required();
  cmd->add_option("--batch", *batch, "look the dataset key up in this batch");
  cmd->callback([&ctx, &exit_code, job, batch] {
    auto ref = ParseJobRef(*job, *batch);
    if (!ref.ok()) {
      exit_code = Fail(ref.status());
      return;
    }
    v1::ResultResponse r;
    if (!ConnectAndCall(ctx, &v1::OperatorService::Stub::GetResult, *ref, &r, exit_code)) return;
    auto j = nlohmann::json::parse(r.result_json(), nullptr, false);
    if (j.is_discarded()) std::cout << SafeText(r.result_json()) << "\n";
    else PrintJson(j);
    exit_code = kExitOk;
  });
}

}  // namespace assessq::cli
