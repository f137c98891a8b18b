// coordinatord's Prometheus endpoint, end to end: the real coordinatord with
// --metrics-listen on a free loopback port, jobs submitted with the real
// assessctl and driven by a worker speaking the real worker API (leases,
// a heartbeat, a success, an agent failure), and /metrics scraped over HTTP
// with libcurl after each step: the queue-depth gauges (jobs by state, ready
// jobs, leases outstanding, workers connected) and the attempt counters and
// schedule-to-start histogram follow the jobs. Also: a bad or busy metrics
// address stops coordinatord at start with a message, never silently.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/scrape.h"
#include "worker/api_client.h"

namespace aqtest {
namespace {

namespace fs = std::filesystem;
using aqscrape::Series;
using aqscrape::Value;

// A worker that records the leases pushed to it.
class LeaseCollector {
 public:
  LeaseCollector(const Coordinator& c, const std::string& token_file, const std::string& name,
                 int slots) {
    assessq::ApiClientOptions o;
    o.address = c.address();
    o.bearer_token = ReadToken(token_file);
    o.worker_name = name;
    o.slots = slots;
    auto api = assessq::ApiClient::Create(o);
    if (!api.ok()) throw std::runtime_error(api.status().ToString());
    api_ = std::move(*api);
    api_->Start([this](const assessq::v1::CoordinatorMessage& m) {
      std::lock_guard<std::mutex> l(mu_);
      if (m.has_lease()) leases_.push_back(m.lease());
      if (m.has_welcome()) lease_period_ms_ = m.welcome().lease_period_ms();
    });
  }
  ~LeaseCollector() { Stop(); }
  void Stop() {
    if (api_) api_->Stop();
  }
  std::vector<assessq::v1::Lease> leases() {
    std::lock_guard<std::mutex> l(mu_);
    return leases_;
  }
  int64_t lease_period_ms() {
    std::lock_guard<std::mutex> l(mu_);
    return lease_period_ms_;
  }
  assessq::ApiClient& api() { return *api_; }

 private:
  std::unique_ptr<assessq::ApiClient> api_;
  std::mutex mu_;
  std::vector<assessq::v1::Lease> leases_;
  int64_t lease_period_ms_ = 0;
};

// Scrapes until `pred` holds (true) or 15 s pass (false); `last` keeps the
// last scrape for the failure message.
bool ScrapeUntil(int port, const std::function<bool(const Series&)>& pred, std::string* last) {
  return PollUntil(
      [&] {
        auto s = aqscrape::Scrape(port, last);
        return s && pred(*s);
      },
      15000, 50);
}

std::string Jobs(const std::string& state) { return "assessq_jobs{state=\"" + state + "\"}"; }

TEST(MetricsTest, QueueDepthAndAttemptCountersFollowTheJobs) {
  TempDir dir;
  const int port = FreeLoopbackPort();
  CoordinatorOptions opt;
  opt.extra_args = {"--metrics-listen", "127.0.0.1:" + std::to_string(port)};
  Coordinator coord(dir.path(), opt);
  const std::string op = coord.CreateToken("operator", "ops");
  const std::string wk = coord.CreateToken("worker", "workers");
  coord.Start();

  std::string raw;
  auto s = aqscrape::Scrape(port, &raw);
  ASSERT_TRUE(s.has_value()) << "nothing serves /metrics on port " << port << "\n"
                             << Tail(coord.log());
  EXPECT_EQ(Value(*s, Jobs("queued")), 0) << raw;
  EXPECT_EQ(Value(*s, "assessq_attempts_started_total"), 0) << raw;
  EXPECT_EQ(Value(*s, "assessq_workers_connected"), 0) << raw;
  EXPECT_EQ(Value(*s, "assessq_database_up"), 1) << raw;
  EXPECT_EQ(Value(*s, "assessq_fleet_query_ok"), 1) << raw;
  EXPECT_EQ(Value(*s, "assessq_attempt_failures_total{class=\"agent\"}"), 0) << raw;

  const std::string in = dir.Join("in");
  fs::create_directories(in);
  for (const char* k : {"alpha", "beta", "gamma"})
    WriteFile(in + "/" + k + ".json", nlohmann::json{{"Name", std::string("dataset ") + k}}.dump());
  auto sub = Assessctl(coord, op,
                       {"submit", in, "--batch", "mt", "--max-attempts", "agent=1", "-o", "json"});
  ASSERT_EQ(sub.exit_code, 0) << sub.Describe();
  ASSERT_TRUE(ScrapeUntil(port, [](const Series& m) {
    return Value(m, Jobs("queued")) == 3 && Value(m, "assessq_jobs_ready") == 3;
  }, &raw)) << raw;

  // A worker with two slots takes two of the three.
  LeaseCollector w(coord, wk, "metrics-worker", 2);
  ASSERT_TRUE(PollUntil([&] { return w.leases().size() == 2; }, 15000)) << Tail(coord.log());
  ASSERT_TRUE(ScrapeUntil(port, [](const Series& m) {
    return Value(m, Jobs("leased")) == 2 && Value(m, Jobs("queued")) == 1 &&
           Value(m, "assessq_leases_outstanding") == 2 &&
           Value(m, "assessq_workers_connected") == 1 && Value(m, "assessq_workers_slots") == 2 &&
           Value(m, "assessq_attempts_started_total") == 2 &&
           Value(m, "assessq_schedule_to_start_seconds_count") == 2 &&
           Value(m, "assessq_schedule_to_start_seconds_bucket{le=\"+Inf\"}") == 2;
  }, &raw)) << raw;
  s = aqscrape::Scrape(port, &raw);
  ASSERT_TRUE(s);
  EXPECT_GE(Value(*s, "assessq_lease_oldest_age_seconds"), 0) << raw;
  EXPECT_LT(Value(*s, "assessq_lease_oldest_age_seconds"), 60) << raw;

  auto leases = w.leases();
  // The first says its container started: running.
  assessq::v1::HeartbeatRequest hb;
  hb.set_job_id(leases[0].job_id());
  hb.set_token(leases[0].token());
  hb.set_running(true);
  ASSERT_TRUE(w.api().Heartbeat(hb).ok());
  ASSERT_TRUE(ScrapeUntil(port, [](const Series& m) {
    return Value(m, Jobs("running")) == 1 && Value(m, Jobs("leased")) == 1;
  }, &raw)) << raw;

  // It succeeds; the freed slot takes the third job.
  assessq::v1::CompleteRequest ok;
  ok.set_job_id(leases[0].job_id());
  ok.set_token(leases[0].token());
  ok.set_result_json(ValidAssessment(leases[0].dataset_name()));
  auto r = w.api().Complete(ok);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->validation_errors().empty()) << r->DebugString();
  ASSERT_TRUE(PollUntil([&] { return w.leases().size() == 3; }, 15000)) << Tail(coord.log());
  ASSERT_TRUE(ScrapeUntil(port, [](const Series& m) {
    return Value(m, Jobs("succeeded")) == 1 && Value(m, Jobs("queued")) == 0 &&
           Value(m, Jobs("leased")) == 2 &&
           Value(m, "assessq_attempts_finished_total{outcome=\"succeeded\"}") == 1 &&
           Value(m, "assessq_attempts_started_total") == 3;
  }, &raw)) << raw;

  // The second fails as "agent" with one attempt allowed: needs attention.
  leases = w.leases();
  assessq::v1::CompleteRequest bad;
  bad.set_job_id(leases[1].job_id());
  bad.set_token(leases[1].token());
  bad.mutable_failure()->set_failure_class(assessq::v1::FAILURE_CLASS_AGENT);
  bad.mutable_failure()->set_reason("simulated");
  ASSERT_TRUE(w.api().Complete(bad).ok());
  ok.set_job_id(leases[2].job_id());
  ok.set_token(leases[2].token());
  ok.set_result_json(ValidAssessment(leases[2].dataset_name()));
  ASSERT_TRUE(w.api().Complete(ok).ok());
  ASSERT_TRUE(ScrapeUntil(port, [](const Series& m) {
    return Value(m, Jobs("succeeded")) == 2 && Value(m, Jobs("needs_attention")) == 1 &&
           Value(m, Jobs("leased")) == 0 && Value(m, Jobs("running")) == 0 &&
           Value(m, "assessq_leases_outstanding") == 0 &&
           Value(m, "assessq_lease_oldest_age_seconds") == 0 &&
           Value(m, "assessq_attempts_finished_total{outcome=\"succeeded\"}") == 2 &&
           Value(m, "assessq_attempts_finished_total{outcome=\"failed\"}") == 1 &&
           Value(m, "assessq_attempt_failures_total{class=\"agent\"}") == 1 &&
           Value(m, "assessq_attempt_failures_total{class=\"infra\"}") == 0 &&
           Value(m, "assessq_schedule_to_start_seconds_count") == 3;
  }, &raw)) << raw;

  w.Stop();
  ASSERT_TRUE(ScrapeUntil(port, [](const Series& m) {
    return Value(m, "assessq_workers_connected") == 0;
  }, &raw)) << raw;
}

TEST(MetricsTest, BadOrBusyMetricsAddressStopsTheStart) {
  TempDir dir;
  auto bad = aqtest::Run({BinPath("coordinatord"), "--db", dir.Join("a.db"), "--listen",
                  "unix:" + dir.Join("c.sock"), "--metrics-listen", "metrics.example:9464"},
                 30000);
  EXPECT_NE(bad.exit_code, 0) << bad.Describe();
  EXPECT_NE(bad.err.find("metrics address"), std::string::npos) << bad.Describe();

  // A port someone else listens on.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  auto busy = aqtest::Run({BinPath("coordinatord"), "--db", dir.Join("a.db"), "--listen",
                   "unix:" + dir.Join("c.sock"), "--metrics-listen",
                   "127.0.0.1:" + std::to_string(ntohs(a.sin_port))},
                  30000);
  close(fd);
  EXPECT_NE(busy.exit_code, 0) << busy.Describe();
  EXPECT_NE(busy.err.find("cannot serve metrics"), std::string::npos) << busy.Describe();
}

}  // namespace
}  // namespace aqtest
