// workerd's health endpoint and metrics with a real coordinatord, real
// workerd and a real dockerd:
//  - --health-listen: the standard gRPC health service says SERVING, then
//    NOT_SERVING once an operator drains the worker (`assessctl workers
//    drain`), SERVING again as soon as it is undrained (the coordinator
//    tells it over the session), and NOT_SERVING from the first SIGTERM (drain) until workerd
//    exits, while its running job finishes.
//  - --metrics-listen: while a job's container runs, /metrics shows one
//    container running and one slot in use; after it, none, and the job
//    counted as started and succeeded.
//  - a job in gateway mode (image assessq-net-test:1, curl through the
//    job's egress gateway to a host its rules do not allow) is counted in
//    assessq_worker_gateway_requests_total{decision="deny"}, agreeing with
//    the attempt's network log the coordinator stored.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/integration/scrape.h"

namespace aqe2e {
namespace {

constexpr int kServing = 1, kNotServing = 2;
constexpr char kNetImage[] = "assessq-net-test:1";

// grpc.health.v1.Health/Check at `target` (unix:PATH): the status, or -1.
int Health(const std::string& target) {
  auto ch = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(ch);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1000));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  auto s = stub->Check(&ctx, req, &resp);
  return s.ok() ? static_cast<int>(resp.status()) : -1;
}

// A free loopback port (bound, read back, released).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    throw std::runtime_error("cannot bind 127.0.0.1:0");
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

using WorkerHealthTest = E2eTest;

TEST_F(WorkerHealthTest, NotServingWhileDrainedByTheOperatorOrBySigterm) {
  const std::string target = "unix:" + dir_->Join("wh.sock");
  AgentLimits limits;
  limits.timeout_s = 60;
  const std::string profile = Profile(limits);
  Workerd& w = AddWorker("health", {.slots = 1, .extra_args = {"--health-listen", target}});
  ASSERT_TRUE(PollUntil([&] { return Health(target) == kServing; }, 15000))
      << Health(target) << "\n" << Tail(w.Log());

  RunResult d = ctl_->Run({"workers", "drain", w.name()});
  ASSERT_EQ(d.exit_code, 0) << d.Describe();
  EXPECT_TRUE(PollUntil([&] { return Health(target) == kNotServing; }, 15000))
      << "still " << Health(target) << " after the operator drained it\n" << Tail(w.Log());

  // Undrained: the coordinator says so over the session at once, serving
  // again before any lease arrives; then it leases to it again.
  RunResult u = ctl_->Run({"workers", "undrain", w.name()});
  ASSERT_EQ(u.exit_code, 0) << u.Describe();
  EXPECT_TRUE(PollUntil([&] { return Health(target) == kServing; }, 15000))
      << "still " << Health(target) << " after the operator undrained it\n"
      << Tail(w.Log());
  WriteMetadata(inputs_, "health-job", "sleep_ms:4000");
  const int64_t job = ctl_->Submit({inputs_}, "health", profile).at("health-job");
  ASSERT_TRUE(PollUntil([&] { return RunningContainerOfJob(w.name(), job).has_value(); }, 60000, 50))
      << Tail(w.Log());
  EXPECT_EQ(Health(target), kServing) << Tail(w.Log());

  // SIGTERM: draining while the job finishes, NOT_SERVING the whole time.
  w.child()->Signal(SIGTERM);
  EXPECT_TRUE(PollUntil([&] { return Health(target) == kNotServing; }, 15000))
      << "still " << Health(target) << " while draining\n" << Tail(w.Log());
  ASSERT_TRUE(w.child()->Running()) << "workerd exited before its job finished\n" << Tail(w.Log());
  bool serving_seen = false;
  PollUntil(
      [&] {
        if (!w.child()->Running()) return true;
        if (Health(target) == kServing) serving_seen = true;
        return false;
      },
      60000, 100);
  EXPECT_FALSE(serving_seen) << "said SERVING while draining";
  ASSERT_TRUE(w.child()->WaitExit(30000)) << Tail(w.Log());
  EXPECT_EQ(w.child()->exit_status(), 0) << Tail(w.Log());
  EXPECT_EQ(ctl_->Show(job).value("state", ""), "succeeded");
}

TEST_F(WorkerHealthTest, MetricsShowTheRunningContainerAndTheFinishedJob) {
  const int port = FreePort();
  AgentLimits limits;
  limits.timeout_s = 60;
  const std::string profile = Profile(limits);
  Workerd& w = AddWorker(
      "metrics", {.slots = 2, .extra_args = {"--metrics-listen", absl::StrCat("127.0.0.1:", port)}});
  std::string raw;
  ASSERT_TRUE(PollUntil([&] { return aqscrape::Scrape(port, &raw).has_value(); }, 15000))
      << Tail(w.Log());
  auto s = aqscrape::Parse(raw);
  EXPECT_EQ(aqscrape::Value(s, "assessq_worker_slots"), 2) << raw;
  EXPECT_EQ(aqscrape::Value(s, "assessq_worker_containers_running"), 0) << raw;
  EXPECT_EQ(aqscrape::Value(s, "assessq_worker_docker_up"), 1) << raw;
  EXPECT_EQ(aqscrape::Value(s, "assessq_worker_draining"), 0) << raw;

  WriteMetadata(inputs_, "metrics-job", "sleep_ms:3000");
  const int64_t job = ctl_->Submit({inputs_}, "wmetrics", profile).at("metrics-job");
  auto value = [&](const std::string& series) {
    auto m = aqscrape::Scrape(port, &raw);
    return m ? aqscrape::Value(*m, series) : -2;
  };
  EXPECT_TRUE(PollUntil(
      [&] {
        return value("assessq_worker_containers_running") == 1 &&
               value("assessq_worker_slots_in_use") == 1 &&
               value("assessq_worker_jobs_started_total") == 1;
      },
      60000, 50))
      << raw << "\n" << Tail(w.Log());
  ctl_->WaitJobState(job, "succeeded", 60000);
  EXPECT_TRUE(PollUntil(
      [&] {
        return value("assessq_worker_containers_running") == 0 &&
               value("assessq_worker_slots_in_use") == 0 &&
               value("assessq_worker_jobs_finished_total{outcome=\"succeeded\"}") == 1;
      },
      30000, 100))
      << raw;
  EXPECT_EQ(value("assessq_worker_jobs_finished_total{outcome=\"failed\"}"), 0) << raw;
  EXPECT_EQ(value("assessq_worker_gateway_requests_total{decision=\"deny\"}"), 0) << raw;
}

TEST_F(WorkerHealthTest, GatewayDenialsAreCounted) {
  auto img = Docker().ImageExists(kNetImage);
  ASSERT_TRUE(img.ok() && *img) << kNetImage
                                << " is missing: run scripts/build-net-image.sh (the "
                                   "assessq_net_image ctest fixture does)";
  const int port = FreePort();
  json profile = {
      {"image", kNetImage},
      {"command", {"/usr/bin/curl", "-s", "-o", "/dev/null", "http://denied.test/",
                   "http://also-denied.test/"}},
      {"network", {{"mode", "gateway"}, {"allow", {"allowed.test"}}, {"deny", json::array()}}},
      {"limits",
       {{"memory_mb", 128}, {"pids", 64}, {"timeout_s", 60}, {"grace_s", 5}, {"tmp_mb", 8},
        {"home_mb", 8}, {"output_mb", 4}, {"log_kb", 64}}},
  };
  const std::string profile_file = dir_->Join("net-profile.json");
  WriteFile(profile_file, profile.dump(2));
  Workerd& w = AddWorker(
      "gwmetrics", {.slots = 1, .extra_args = {"--metrics-listen", absl::StrCat("127.0.0.1:", port)}});
  WriteMetadata(inputs_, "gw-job", "valid");
  const int64_t job = ctl_->Submit({inputs_}, "gwmetrics", profile_file,
                                   {"--max-attempts", "agent=1", "--max-attempts", "infra=1"})
                          .at("gw-job");
  json shown;
  ASSERT_TRUE(PollUntil(
      [&] {
        shown = ctl_->Show(job);
        std::string st = shown.value("state", "");
        return st == "needs_attention" || st == "succeeded";
      },
      90000, 200))
      << shown.dump(2) << "\n" << Tail(w.Log());
  json netlog = ctl_->Json({"netlog", std::to_string(job)});
  int denied = 0;
  for (const auto& e : netlog.is_array() ? netlog : json::array())
    if (e.is_object() && e.value("decision", "") == "deny") ++denied;
  ASSERT_GE(denied, 2) << "the gateway denied nothing: " << netlog.dump(2) << "\n"
                       << shown.dump(2);
  std::string raw;
  double seen = -1;
  EXPECT_TRUE(PollUntil(
      [&] {
        auto m = aqscrape::Scrape(port, &raw);
        seen = m ? aqscrape::Value(*m, "assessq_worker_gateway_requests_total{decision=\"deny\"}")
                 : -2;
        return seen == denied;
      },
      15000, 100))
      << "metric " << seen << " vs " << denied << " denials in the netlog\n" << raw;
  EXPECT_EQ(aqscrape::Value(aqscrape::Parse(raw),
                            "assessq_worker_gateway_requests_total{decision=\"allow\"}"),
            0)
      << raw;
}

}  // namespace
}  // namespace aqe2e
