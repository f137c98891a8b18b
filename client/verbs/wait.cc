// `assessctl wait --batch B [--timeout S]`: blocks until every job of the
// batch is finished, drawing a progress bar (counts, rate, ETA) on a
// terminal and a line per change otherwise. Exit 0 when all succeeded, 1 when
// some need attention or were cancelled (or on timeout).
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/cli_context.h"
#include "client/progress.h"

namespace assessq::cli {

void RegisterWait(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand("wait", "wait for a batch to finish, with a progress bar");
  auto batch = std::make_shared<std::string>();
  auto timeout = std::make_shared<double>(0);
  cmd->add_option("--batch", *batch, "the batch")->required();
  cmd->add_option("--timeout", *timeout, "give up after this many seconds (0: never)");
  cmd->callback([&ctx, &exit_code, batch, timeout] {
    if (!Connected(ctx, exit_code)) return;
    const bool tty = isatty(STDERR_FILENO);
    auto start = std::chrono::steady_clock::now();
    std::string last_line;
    while (true) {
      v1::StatusRequest req;
      req.set_batch(*batch);
      v1::StatusResponse resp;
      if (!Unary(ctx, &v1::OperatorService::Stub::Status, req, &resp, exit_code, 30)) return;
      const auto& b = resp.batches(0);
      auto n = [&](const char* s) {
        auto it = b.counts().find(s);
        return it == b.counts().end() ? int64_t{0} : it->second;
      };
      int64_t ok = n("succeeded"), bad = n("needs_attention") + n("cancelled");
      int64_t done = ok + bad;
      double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::string line = absl::StrCat(
          *batch, " ", RenderBar(done, b.total(), b.throughput_per_min() / 60.0, 30),
          "  running ", n("running") + n("leased"), "  failed ", bad);
      if (tty) {
        std::cerr << "\r\033[K" << line << std::flush;
      } else if (line != last_line) {
        std::cerr << line << "\n";
      }
      last_line = line;
      if (done >= b.total()) {
        if (tty) std::cerr << "\n";
        if (ctx.json())
          PrintJson({{"batch", *batch}, {"succeeded", ok}, {"failed", bad}, {"total", b.total()}});
        else
          std::cout << *batch << ": " << ok << " succeeded, " << bad << " need attention or cancelled\n";
        exit_code = bad == 0 ? kExitOk : kExitError;
        return;
      }
      if (*timeout > 0 && elapsed > *timeout) {
        if (tty) std::cerr << "\n";
        exit_code = Fail(absl::DeadlineExceededError(
            absl::StrCat("batch ", *batch, " not finished after ", *timeout, " s")));
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
}

}  // namespace assessq::cli
