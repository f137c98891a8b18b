// Tests coordinatord's metrics and health pieces without a running server:
// the pure conversions (schedule-to-start seconds, ages, buckets, the metrics
// address), the engine's observer hooks (a real engine on a temp SQLite file
// with a fake clock reports each lease with its ready time and each ended
// attempt with its outcome and class, after the commit), the scrape-time
// gauges of CoordinatorMetrics read through the real read side, and the
// database probe behind the health service (a renamed, restored and replaced
// database file).
#include "server/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>
#include <stdlib.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/metrics_http.h"
#include "common/sha256.h"
#include "server/db_probe.h"
#include "server/engine.h"
#include "server/engine_wire.h"
#include "server/queries.h"
#include "tests/support/metrics_text.h"

namespace assessq {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsPure, ScheduleToStartSeconds) {
  EXPECT_DOUBLE_EQ(ScheduleToStartSeconds(1000, 3500), 2.5);
  EXPECT_DOUBLE_EQ(ScheduleToStartSeconds(1000, 1000), 0);
  EXPECT_DOUBLE_EQ(ScheduleToStartSeconds(5000, 1000), 0);  // clock skew: never negative
}

TEST(MetricsPure, AgeSeconds) {
  EXPECT_DOUBLE_EQ(AgeSeconds(0, 123456), 0);  // nothing: age 0
  EXPECT_DOUBLE_EQ(AgeSeconds(1000, 61000), 60);
  EXPECT_DOUBLE_EQ(AgeSeconds(9000, 1000), 0);
}

TEST(MetricsPure, BucketsAscend) {
  auto b = ScheduleToStartBuckets();
  ASSERT_GE(b.size(), 5u);
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]);
  EXPECT_LE(b.front(), 0.01);
  EXPECT_GE(b.back(), 3600);
}

TEST(MetricsPure, CivetListeningPort) {
  EXPECT_EQ(*CivetListeningPort("127.0.0.1:9464"), "127.0.0.1:9464");
  EXPECT_EQ(*CivetListeningPort("0.0.0.0:0"), "0.0.0.0:0");
  EXPECT_EQ(*CivetListeningPort("localhost:80"), "127.0.0.1:80");
  EXPECT_EQ(*CivetListeningPort("[::1]:9464"), "[::1]:9464");
  for (const char* bad : {"", "9464", ":9464", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:70000",
                          "example.com:80", "[::g]:1", "unix:/tmp/x", "1.2.3:4"}) {
    auto r = CivetListeningPort(bad);
    EXPECT_FALSE(r.ok()) << bad << " -> " << *r;
    if (!r.ok()) EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  }
}

TEST(MetricsPure, SameFile) {
  EXPECT_TRUE(SameFile("db", {1, 2}, {1, 2}).ok());
  auto s = SameFile("db", {1, 2}, {1, 3});
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("db"));
}

// What an observer saw, in order.
class RecordingObserver : public EngineObserver {
 public:
  struct Lease {
    int64_t job, ready_at, leased_at;
  };
  struct End {
    std::string outcome;
    std::optional<v1::FailureClass> cls;
  };
  void OnLeased(int64_t job, int64_t ready_at, int64_t leased_at) override {
    std::lock_guard<std::mutex> l(mu_);
    leases_.push_back({job, ready_at, leased_at});
    cv_.notify_all();
  }
  void OnAttemptFinished(absl::string_view outcome, std::optional<v1::FailureClass> cls) override {
    std::lock_guard<std::mutex> l(mu_);
    ends_.push_back({std::string(outcome), cls});
  }
  bool WaitLeases(size_t n) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(10), [&] { return leases_.size() >= n; });
  }
  std::vector<Lease> leases() {
    std::lock_guard<std::mutex> l(mu_);
    return leases_;
  }
  std::vector<End> ends() {
    std::lock_guard<std::mutex> l(mu_);
    return ends_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Lease> leases_;
  std::vector<End> ends_;
};

// Forwards every observer call to both (the recording one and real metrics).
class Tee : public EngineObserver {
 public:
  Tee(EngineObserver* a, EngineObserver* b) : a_(a), b_(b) {}
  void OnLeased(int64_t j, int64_t r, int64_t l) override {
    a_->OnLeased(j, r, l);
    b_->OnLeased(j, r, l);
  }
  void OnAttemptFinished(absl::string_view o, std::optional<v1::FailureClass> c) override {
    a_->OnAttemptFinished(o, c);
    b_->OnAttemptFinished(o, c);
  }

 private:
  EngineObserver *a_, *b_;
};

class NullSink : public SessionSink {
 public:
  void Push(const v1::CoordinatorMessage& m) override {
    std::lock_guard<std::mutex> l(mu_);
    if (m.has_lease()) leases_.push_back(m.lease());
  }
  void Close(const std::string&) override {}
  std::vector<v1::Lease> leases() {
    std::lock_guard<std::mutex> l(mu_);
    return leases_;
  }

 private:
  std::mutex mu_;
  std::vector<v1::Lease> leases_;
};

std::string Scrape(const CoordinatorMetrics& m) { return aqtest::MetricsText(m); }

class EngineMetricsTest : public ::testing::Test {
 protected:
  static constexpr int64_t kStart = 1'700'000'000'000;

  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "assessq_metrics_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    db_path_ = (dir_ / "coordinator.db").string();
    now_ = kStart;
    Clock clock = [this] { return now_.load(); };
    queries_ = std::make_unique<Queries>(db_path_, clock);
    metrics_ = std::make_unique<CoordinatorMetrics>(queries_.get(), clock);
    tee_ = std::make_unique<Tee>(&rec_, metrics_.get());
    EngineOptions o;
    o.db_path = db_path_;
    o.lease_period_ms = 30000;
    o.seed = 7;
    o.clock = clock;
    o.observer = tee_.get();
    auto e = Engine::Open(std::move(o));
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(*e);
  }
  void TearDown() override {
    engine_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  int64_t SubmitOne(const std::string& key) {
    SubmitArgs a;
    a.batch = "b";
    SubmitFile f;
    f.source_name = key + ".json";
    f.dataset_key = key;
    f.dataset_name = key;
    f.content = absl::StrCat(R"({"Name": ")", key, R"("})");
    f.sha256 = Sha256Hex(f.content);
    a.files = {f};
    auto r = engine_->Sync<SubmitResult>(
        [&](Engine::Done<SubmitResult> d) { engine_->Submit(std::move(a), std::move(d)); });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->size() == 1 ? (*r)[0].job_id : -1;
  }
  absl::StatusOr<v1::CompleteResponse> Complete(v1::CompleteRequest req) {
    auto r = engine_->Sync<CompletionReply>([&](Engine::Done<CompletionReply> d) {
      engine_->Complete(FromProto(req), "w1", std::move(d));
    });
    if (!r.ok()) return r.status();
    return ToProto(*r);
  }
  void Poke() {
    (void)engine_->Sync<std::vector<WorkerView>>(
        [&](Engine::Done<std::vector<WorkerView>> d) { engine_->ListWorkers(std::move(d)); });
  }

  fs::path dir_;
  std::string db_path_;
  std::atomic<int64_t> now_;
  RecordingObserver rec_;
  std::unique_ptr<Queries> queries_;
  std::unique_ptr<CoordinatorMetrics> metrics_;
  std::unique_ptr<Tee> tee_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineMetricsTest, LeasesAndAttemptEndsReachTheObserverAndTheGauges) {
  const int64_t a = SubmitOne("alpha");
  const int64_t b = SubmitOne("beta");
  now_ += 1500;  // both wait 1.5 s for a worker
  std::string text = Scrape(*metrics_);
  EXPECT_THAT(text, HasSubstr("assessq_jobs{state=\"queued\"} 2"));
  EXPECT_THAT(text, HasSubstr("assessq_jobs_ready 2"));
  EXPECT_THAT(text, HasSubstr("assessq_queue_oldest_ready_age_seconds 1.5"));
  EXPECT_THAT(text, HasSubstr("assessq_leases_outstanding 0"));
  EXPECT_THAT(text, HasSubstr("assessq_workers_connected 0"));
  EXPECT_THAT(text, HasSubstr("assessq_attempts_started_total 0"));

  auto sink = std::make_shared<NullSink>();
  auto sid = engine_->Sync<int64_t>(
      [&](Engine::Done<int64_t> d) { engine_->OpenSession("w1", 2, sink, std::move(d)); });
  ASSERT_TRUE(sid.ok()) << sid.status();
  ASSERT_TRUE(rec_.WaitLeases(2));
  auto leases = rec_.leases();
  ASSERT_EQ(leases.size(), 2u);
  for (const auto& l : leases) {
    EXPECT_TRUE(l.job == a || l.job == b) << l.job;
    EXPECT_EQ(l.ready_at, kStart);
    EXPECT_EQ(l.leased_at, kStart + 1500);
  }
  Poke();
  now_ += 4000;
  text = Scrape(*metrics_);
  EXPECT_THAT(text, HasSubstr("assessq_jobs{state=\"leased\"} 2"));
  EXPECT_THAT(text, HasSubstr("assessq_jobs{state=\"queued\"} 0"));
  EXPECT_THAT(text, HasSubstr("assessq_leases_outstanding 2"));
  EXPECT_THAT(text, HasSubstr("assessq_lease_oldest_age_seconds 4"));
  EXPECT_THAT(text, HasSubstr("assessq_workers_connected 1"));
  EXPECT_THAT(text, HasSubstr("assessq_workers_slots 2"));
  EXPECT_THAT(text, HasSubstr("assessq_attempts_started_total 2"));
  EXPECT_THAT(text, HasSubstr("assessq_schedule_to_start_seconds_count 2"));
  EXPECT_THAT(text, HasSubstr("assessq_schedule_to_start_seconds_sum 3"));
  EXPECT_THAT(text, HasSubstr("assessq_schedule_to_start_seconds_bucket{le=\"1\"} 0"));
  EXPECT_THAT(text, HasSubstr("assessq_schedule_to_start_seconds_bucket{le=\"2.5\"} 2"));

  auto sl = sink->leases();
  ASSERT_EQ(sl.size(), 2u);
  // One fails as "agent" (and is queued again with a backoff), one is handed back.
  v1::CompleteRequest fail;
  fail.set_job_id(sl[0].job_id());
  fail.set_token(sl[0].token());
  fail.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_AGENT);
  fail.mutable_failure()->set_reason("boom");
  ASSERT_TRUE(Complete(fail).ok());
  v1::CompleteRequest rel;
  rel.set_job_id(sl[1].job_id());
  rel.set_token(sl[1].token());
  rel.mutable_release()->set_reason("bye");
  ASSERT_TRUE(Complete(rel).ok());
  // The outbox delivering the same report again is a duplicate: not counted.
  auto again = Complete(fail);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate());

  auto ends = rec_.ends();
  ASSERT_EQ(ends.size(), 2u);
  EXPECT_EQ(ends[0].outcome, "failed");
  EXPECT_EQ(ends[0].cls, v1::FAILURE_CLASS_AGENT);
  EXPECT_EQ(ends[1].outcome, "released");
  EXPECT_EQ(ends[1].cls, std::nullopt);
  text = Scrape(*metrics_);
  EXPECT_THAT(text, HasSubstr("assessq_attempts_finished_total{outcome=\"failed\"} 1"));
  EXPECT_THAT(text, HasSubstr("assessq_attempts_finished_total{outcome=\"released\"} 1"));
  EXPECT_THAT(text, HasSubstr("assessq_attempt_failures_total{class=\"agent\"} 1"));
  EXPECT_THAT(text, HasSubstr("assessq_attempt_failures_total{class=\"infra\"} 0"));
}

TEST_F(EngineMetricsTest, ModelApiLimitGaugeHasOneSeriesPerProvider) {
  metrics_->SetModelApiLimit("anthropic", 8);
  metrics_->OnModelApiLimit("anthropic", 4);  // the engine's path
  metrics_->SetModelApiLimit("stub", 0);
  std::string text = Scrape(*metrics_);
  EXPECT_THAT(text, HasSubstr("assessq_model_api_limit{provider=\"anthropic\"} 4"));
  EXPECT_THAT(text, HasSubstr("assessq_model_api_limit{provider=\"stub\"} 0"));
}

TEST_F(EngineMetricsTest, FleetGaugesAreLeftOutWhenTheDatabaseDoesNotAnswer) {
  SubmitOne("alpha");
  // A read side pointed at a file that is not there: only the error gauge.
  Queries broken((dir_ / "missing.db").string(), nullptr);
  CoordinatorMetrics m(&broken);
  std::string text = Scrape(m);
  EXPECT_THAT(text, HasSubstr("assessq_fleet_query_ok 0"));
  EXPECT_THAT(text, Not(HasSubstr("assessq_jobs{")));
  EXPECT_THAT(Scrape(*metrics_), HasSubstr("assessq_fleet_query_ok 1"));
}

TEST_F(EngineMetricsTest, DbProbeSeesRenamedRestoredAndReplacedFiles) {
  SubmitOne("alpha");
  auto probe = DbProbe::Create(db_path_);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_TRUE(probe->Check().ok()) << probe->Check();

  // Renamed away: the engine's open handle still works, a fresh one cannot open it.
  fs::rename(db_path_, db_path_ + ".away");
  auto s = probe->Check();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_EQ(SubmitOne("beta") > 0, true);  // the engine noticed nothing
  fs::rename(db_path_ + ".away", db_path_);
  EXPECT_TRUE(probe->Check().ok()) << probe->Check();

  // Replaced by another file (a copy): readable, but not the file we write.
  engine_.reset();
  fs::copy_file(db_path_, db_path_ + ".copy");
  fs::rename(db_path_ + ".copy", db_path_);
  s = probe->Check();
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;

  // Not a database at all.
  {
    std::ofstream f(db_path_, std::ios::trunc);
    f << "this is not SQLite";
  }
  auto p2 = DbProbe::Create(db_path_);
  ASSERT_TRUE(p2.ok());
  EXPECT_FALSE(p2->Check().ok());
}

}  // namespace
}  // namespace assessq
