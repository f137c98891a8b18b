// `assessctl health [--wait S]`: asks the coordinator's standard gRPC health
// service whether it serves (no token needed). With --wait it keeps asking,
// at most S seconds, until the answer is SERVING: scripts use it to wait for
// a coordinator they just started. Exit 0 when serving, 1 otherwise.
#include <chrono>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/cli_context.h"
#include "common/address.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace assessq::cli {

namespace {

using HealthStatus = grpc::health::v1::HealthCheckResponse;

std::string StatusLabel(int s) {
  switch (s) {
    case HealthStatus::SERVING: return "SERVING";
    case HealthStatus::NOT_SERVING: return "NOT_SERVING";
    case HealthStatus::SERVICE_UNKNOWN: return "SERVICE_UNKNOWN";
    default: return "UNKNOWN";
  }
}

}  // namespace

void RegisterHealth(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "health", "is the coordinator serving? (gRPC health; --wait to wait for it)");
  auto wait_s = std::make_shared<double>(0);
  cmd->add_option("--wait", *wait_s, "keep asking until SERVING, at most this many seconds")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([&ctx, &exit_code, wait_s] {
    if (ctx.coordinator.empty()) ctx.coordinator = DefaultCoordinatorAddress();
    auto ch = MakeChannel(ctx.coordinator, ctx.tls);
    if (!ch.ok()) {
      exit_code = Fail(ch.status());
      return;
    }
    auto stub = grpc::health::v1::Health::NewStub(*ch);
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(*wait_s * 1000));
    grpc::Status last;
    int status = HealthStatus::UNKNOWN;
    while (true) {
      grpc::ClientContext call;
      // Wait for the channel while there is time left: a coordinator that is
      // starting has no socket for a moment.
      auto left = until - std::chrono::steady_clock::now();
      bool waiting = left > std::chrono::milliseconds(0);
      call.set_wait_for_ready(waiting);
      call.set_deadline(std::chrono::system_clock::now() +
                        (waiting ? std::min<std::chrono::steady_clock::duration>(
                                       left, std::chrono::seconds(5))
                                 : std::chrono::steady_clock::duration(std::chrono::seconds(5))));
      grpc::health::v1::HealthCheckRequest req;
      HealthStatus resp;
      last = stub->Check(&call, req, &resp);
      status = last.ok() ? static_cast<int>(resp.status()) : HealthStatus::UNKNOWN;
      if (status == HealthStatus::SERVING || std::chrono::steady_clock::now() >= until) break;
      if (last.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // NOT_SERVING
    }
    if (ctx.json()) {
      nlohmann::json j = {{"coordinator", ctx.coordinator}, {"status", StatusLabel(status)}};
      if (!last.ok()) j["error"] = last.error_message();
      PrintJson(j);
    } else if (last.ok()) {
      std::cout << ctx.coordinator << ": " << StatusLabel(status) << "\n";
    }
    if (!last.ok()) {
      if (!ctx.json())
        std::cerr << "assessctl: coordinator unavailable: nothing answers at " << ctx.coordinator
                  << (*wait_s > 0 ? absl::StrCat(" (waited ", *wait_s, " s)") : std::string())
                  << ": " << last.error_message() << ". Start it with `coordinatord --db FILE "
                  << "--listen " << ctx.coordinator << "`.\n";
      exit_code = kExitError;
      return;
    }
    exit_code = status == HealthStatus::SERVING ? kExitOk : kExitError;
  });
}

}  // namespace assessq::cli
