// Tests workerd's metrics and health decisions without Docker or a
// coordinator: the outcome label of a finished run, counting the gateway's
// decisions in a network log, when the health service says SERVING, and what
// WorkerMetrics serves (counters from observer calls; scrape-time gauges
// from fake sources, with no container count when Docker does not answer).
#include "worker/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>

#include <sstream>

#include "worker/health_server.h"
#include "tests/support/metrics_text.h"

namespace assessq {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(WorkerMetricsPure, JobOutcomeLabel) {
  v1::CompleteRequest r;
  EXPECT_EQ(JobOutcomeLabel(r, true), "stopped");
  r.set_result_json("{}");
  EXPECT_EQ(JobOutcomeLabel(r, true), "succeeded");
  EXPECT_EQ(JobOutcomeLabel(r, false), "stopped");
  r.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_AGENT);
  EXPECT_EQ(JobOutcomeLabel(r, true), "failed");
  r.mutable_release()->set_reason("bye");
  EXPECT_EQ(JobOutcomeLabel(r, true), "released");
}

TEST(WorkerMetricsPure, CountGatewayDecisions) {
  auto c = CountGatewayDecisions(
      R"([{"decision":"allow","host":"a"},{"decision":"deny"},{"decision":"deny"},)"
      R"({"decision":"other"},{"host":"x"},7,{"decision":1}])");
  EXPECT_EQ(c.allowed, 1);
  EXPECT_EQ(c.denied, 2);
  for (const char* nothing : {"", "[]", "{", "{\"decision\":\"deny\"}", "null"}) {
    auto n = CountGatewayDecisions(nothing);
    EXPECT_EQ(n.allowed, 0) << nothing;
    EXPECT_EQ(n.denied, 0) << nothing;
  }
}

TEST(WorkerHealth, ServesUnlessDraining) {
  WorkerState s;
  EXPECT_TRUE(WorkerServes(s));
  s.host_healthy = false;  // short of disk: fewer leases, still serving
  s.capacity = 0;
  EXPECT_TRUE(WorkerServes(s));
  s.drained_by_coordinator = true;
  EXPECT_FALSE(WorkerServes(s));
  s.drained_by_coordinator = false;
  s.draining = true;
  EXPECT_FALSE(WorkerServes(s));
}

std::string Scrape(const WorkerMetrics& m) { return aqtest::MetricsText(m); }

TEST(WorkerMetricsTest, CountersFollowObserverCalls) {
  WorkerMetrics m;
  std::string text = Scrape(m);
  EXPECT_THAT(text, HasSubstr("assessq_worker_jobs_started_total 0"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_gateway_requests_total{decision=\"deny\"} 0"));
  EXPECT_THAT(text, Not(HasSubstr("assessq_worker_slots ")));  // no sources yet

  m.OnJobStarted(1);
  m.OnJobStarted(2);
  m.OnJobStarted(3);
  v1::CompleteRequest ok;
  ok.set_result_json("{}");
  ok.set_netlog_json(R"([{"decision":"allow"},{"decision":"allow"},{"decision":"deny"}])");
  m.OnJobFinished(ok, true);
  v1::CompleteRequest bad;
  bad.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_MODEL_API);
  bad.set_netlog_json(R"([{"decision":"deny"}])");
  m.OnJobFinished(bad, true);
  m.OnJobFinished(v1::CompleteRequest(), false);
  text = Scrape(m);
  EXPECT_THAT(text, HasSubstr("assessq_worker_jobs_started_total 3"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_jobs_finished_total{outcome=\"succeeded\"} 1"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_jobs_finished_total{outcome=\"failed\"} 1"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_jobs_finished_total{outcome=\"stopped\"} 1"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_jobs_finished_total{outcome=\"released\"} 0"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_job_failures_total{class=\"model_api\"} 1"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_job_failures_total{class=\"agent\"} 0"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_gateway_requests_total{decision=\"allow\"} 2"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_gateway_requests_total{decision=\"deny\"} 2"));
}

TEST(WorkerMetricsTest, GaugesComeFromTheSourcesAtScrapeTime) {
  WorkerMetrics m;
  WorkerState st;
  st.slots = 4;
  st.running = 1;
  st.capacity = 4;
  bool docker_ok = true;
  int64_t containers = 1;
  WorkerMetrics::Sources src;
  src.state = [&] { return st; };
  src.containers_running = [&]() -> absl::StatusOr<int64_t> {
    if (!docker_ok) return absl::UnavailableError("no docker");
    return containers;
  };
  m.SetSources(src);
  std::string text = Scrape(m);
  EXPECT_THAT(text, HasSubstr("assessq_worker_slots 4"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_slots_in_use 1"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_capacity 4"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_draining 0"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_containers_running 1"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_docker_up 1"));

  st.draining = true;
  st.capacity = 0;
  st.running = 0;
  containers = 0;
  text = Scrape(m);
  EXPECT_THAT(text, HasSubstr("assessq_worker_draining 1"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_capacity 0"));
  EXPECT_THAT(text, HasSubstr("assessq_worker_containers_running 0"));

  docker_ok = false;
  text = Scrape(m);
  EXPECT_THAT(text, HasSubstr("assessq_worker_docker_up 0"));
  EXPECT_THAT(text, Not(HasSubstr("assessq_worker_containers_running")));
}

}  // namespace
}  // namespace assessq
