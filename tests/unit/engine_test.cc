// Tests server/engine: the coordinator's write side over a real SQLite file
// in a temp dir, with a fake clock and fake worker sessions, driven through
// Engine::Sync. Covers submission outcomes (created, skipped, replaced,
// requeued, rerun), dispatch to exactly the free slots, completion with
// fencing tokens (duplicates, stale and wrong tokens), heartbeats, lease
// expiry, retries per failure class up to needs_attention, the Retry and
// Cancel operations, releases, paused batches, drained workers, validation
// failures feeding previous_errors into the next lease, and state and leases
// surviving a restart. State is checked through the engine's replies, the
// messages pushed to sessions and a separate SQLite connection.
#include "server/engine.h"
#include "server/engine_wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "server/intake.h"

namespace assessq {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Records what the engine pushes to one worker session.
class FakeSink : public SessionSink {
 public:
  void Push(const v1::CoordinatorMessage& m) override {
    std::lock_guard<std::mutex> l(mu_);
    msgs_.push_back(m);
    cv_.notify_all();
  }
  void Close(const std::string& reason) override {
    std::lock_guard<std::mutex> l(mu_);
    closes_.push_back(reason);
    cv_.notify_all();
  }
  // Waits until at least `n` messages have arrived. A timeout (10 s, far
  // beyond anything the engine needs) means they never came: a failure.
  [[nodiscard]] bool WaitForMessages(size_t n) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(10), [&] { return msgs_.size() >= n; });
  }
  [[nodiscard]] bool WaitForClose() {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(10), [&] { return !closes_.empty(); });
  }
  size_t Count() {
    std::lock_guard<std::mutex> l(mu_);
    return msgs_.size();
  }
  v1::CoordinatorMessage At(size_t i) {
    std::lock_guard<std::mutex> l(mu_);
    return i < msgs_.size() ? msgs_[i] : v1::CoordinatorMessage();
  }
  std::vector<v1::Lease> Leases() {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<v1::Lease> out;
    for (const auto& m : msgs_)
      if (m.has_lease()) out.push_back(m.lease());
    return out;
  }
  std::vector<std::string> Closes() {
    std::lock_guard<std::mutex> l(mu_);
    return closes_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::CoordinatorMessage> msgs_;
  std::vector<std::string> closes_;
};

SubmitFile File(const std::string& key, const std::string& version = "v1") {
  SubmitFile f;
  f.source_name = "datasets/" + key + ".json";
  f.dataset_key = key;
  f.dataset_name = key + " corpus";
  f.content = absl::StrCat(R"({"Name": ")", key, R"( corpus", "Version": ")", version, "\"}");
  f.sha256 = Sha256Hex(f.content);
  return f;
}

class EngineTest : public ::testing::Test {
 protected:
  static constexpr int64_t kStart = 1'700'000'000'000;
  static constexpr int64_t kLease = 30'000;
  static constexpr int64_t kTenMinutes = 600'000;  // the default backoff cap

  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "assessq_engine_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    db_path_ = (dir_ / "coordinator.db").string();
    now_.store(kStart);
    StartEngine();
  }

  void TearDown() override {
    engine_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void StartEngine() {
    EngineOptions o;
    o.db_path = db_path_;
    o.lease_period_ms = kLease;
    o.seed = 42;
    o.clock = [this] { return now_.load(); };
    o.validator = validator_;
    auto e = Engine::Open(std::move(o));
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(*e);
  }

  void RestartEngine() {
    engine_.reset();
    StartEngine();
  }

  void Advance(int64_t ms) { now_ += ms; }

  // ------------------------------------------------------------ operations

  v1::SubmitResponse Submit(const std::string& batch, std::vector<SubmitFile> files,
                            bool rerun = false, std::optional<RetryPolicy> policy = {},
                            std::string profile = "") {
    SubmitArgs a;
    a.batch = batch;
    a.files = std::move(files);
    a.rerun = rerun;
    a.policy = std::move(policy);
    a.profile_json = std::move(profile);
    auto r = engine_->Sync<SubmitResult>(
        [&](Engine::Done<SubmitResult> d) { engine_->Submit(std::move(a), std::move(d)); });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? ToProto(*r) : v1::SubmitResponse();
  }

  int64_t SubmitOne(const std::string& batch, const std::string& key,
                    std::optional<RetryPolicy> policy = {}) {
    auto r = Submit(batch, {File(key)}, false, std::move(policy));
    EXPECT_EQ(r.items_size(), 1);
    if (r.items_size() != 1) return -1;
    EXPECT_EQ(r.items(0).outcome(), v1::SubmitItem::OUTCOME_CREATED);
    return r.items(0).job_id();
  }

  int64_t Connect(const std::string& worker, int slots, std::shared_ptr<FakeSink> sink) {
    auto r = engine_->Sync<int64_t>([&](Engine::Done<int64_t> d) {
      engine_->OpenSession(worker, slots, sink, std::move(d));
    });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : -1;
  }

  absl::StatusOr<v1::CompleteResponse> Complete(v1::CompleteRequest req,
                                                const std::string& worker = "w1") {
    auto r = engine_->Sync<CompletionReply>([&](Engine::Done<CompletionReply> d) {
      engine_->Complete(FromProto(req), worker, std::move(d));
    });
    if (!r.ok()) return r.status();
    return ToProto(*r);
  }
  absl::StatusOr<v1::CompleteResponse> Succeed(int64_t job, int64_t token,
                                               const std::string& json = R"({"ok": true})") {
    v1::CompleteRequest req;
    req.set_job_id(job);
    req.set_token(token);
    req.set_result_json(json);
    req.set_exit_code(0);
    req.set_log_tail("done");
    return Complete(req);
  }
  absl::StatusOr<v1::CompleteResponse> Fail(int64_t job, int64_t token, v1::FailureClass cls,
                                            const std::string& reason = "boom",
                                            int64_t retry_after_ms = 0) {
    v1::CompleteRequest req;
    req.set_job_id(job);
    req.set_token(token);
    req.mutable_failure()->set_failure_class(cls);
    req.mutable_failure()->set_reason(reason);
    req.mutable_failure()->set_retry_after_ms(retry_after_ms);
    req.set_exit_code(1);
    return Complete(req);
  }
  absl::StatusOr<v1::CompleteResponse> Release(int64_t job, int64_t token) {
    v1::CompleteRequest req;
    req.set_job_id(job);
    req.set_token(token);
    req.mutable_release()->set_reason("low on disk");
    return Complete(req);
  }
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(int64_t job, int64_t token,
                                                  bool running = false) {
    v1::HeartbeatRequest req;
    req.set_job_id(job);
    req.set_token(token);
    req.set_running(running);
    auto r = engine_->Sync<HeartbeatReply>(
        [&](Engine::Done<HeartbeatReply> d) { engine_->Heartbeat(FromProto(req), std::move(d)); });
    if (!r.ok()) return r.status();
    return ToProto(*r);
  }
  absl::StatusOr<int64_t> RetryOp(const v1::RetryRequest& req) {
    return engine_->Sync<int64_t>(
        [&](Engine::Done<int64_t> d) { engine_->Retry(FromProto(req), std::move(d)); });
  }
  absl::StatusOr<int64_t> CancelOp(const v1::CancelRequest& req) {
    return engine_->Sync<int64_t>(
        [&](Engine::Done<int64_t> d) { engine_->Cancel(FromProto(req), std::move(d)); });
  }
  absl::StatusOr<bool> SetPaused(const std::string& batch, bool paused) {
    return engine_->Sync<bool>(
        [&](Engine::Done<bool> d) { engine_->SetPaused(batch, paused, std::move(d)); });
  }
  absl::StatusOr<bool> Drain(const std::string& worker) {
    return engine_->Sync<bool>(
        [&](Engine::Done<bool> d) { engine_->DrainWorker(worker, true, std::move(d)); });
  }
  v1::WorkersResponse Workers() {
    auto r = engine_->Sync<std::vector<WorkerView>>(
        [&](Engine::Done<std::vector<WorkerView>> d) { engine_->ListWorkers(std::move(d)); });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? ToProto(*r) : v1::WorkersResponse();
  }
  // Any op runs a loop iteration: expiry and dispatch follow the op batch.
  void Poke() { (void)Workers(); }
  // Two iterations: every push of the first has happened when the second's
  // reply arrives; with the clock still, nothing new is dispatched after it.
  void Settle() {
    Poke();
    Poke();
  }

  v1::Lease WaitLease(FakeSink& sink, size_t nth_message) {
    EXPECT_TRUE(sink.WaitForMessages(nth_message)) << "message " << nth_message << " never came";
    v1::CoordinatorMessage m = sink.At(nth_message - 1);
    EXPECT_TRUE(m.has_lease()) << m.DebugString();
    return m.lease();
  }

  // ---------------------------------------------------------- inspection

  // Runs `sql` on a separate connection; NULL reads as "NULL".
  std::vector<std::vector<std::string>> Rows(const std::string& sql) {
    std::vector<std::vector<std::string>> out;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(db_path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "open " << db_path_ << ": " << sqlite3_errmsg(db);
      sqlite3_close(db);
      return out;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
      sqlite3_close(db);
      return out;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* t = sqlite3_column_text(st, i);
        row.push_back(t ? std::string(reinterpret_cast<const char*>(t),
                                      sqlite3_column_bytes(st, i))
                        : "NULL");
      }
      out.push_back(std::move(row));
    }
    EXPECT_EQ(rc, SQLITE_DONE) << sql << ": " << sqlite3_errmsg(db);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }
  std::string Str(const std::string& sql) {
    auto r = Rows(sql);
    return r.empty() || r[0].empty() ? "<no row>" : r[0][0];
  }
  int64_t Int(const std::string& sql) { return std::stoll(Str(sql)); }
  std::string JobState(int64_t job) {
    return Str(absl::StrCat("SELECT state FROM jobs WHERE id=", job));
  }
  int64_t JobInt(int64_t job, const std::string& col) {
    return Int(absl::StrCat("SELECT ", col, " FROM jobs WHERE id=", job));
  }
  std::string AttemptOutcome(int64_t token) {
    return Str(absl::StrCat("SELECT outcome || '/' || coalesce(failure_class,'-') "
                            "FROM attempts WHERE id=", token));
  }
  int64_t Results(int64_t job) {
    return Int(absl::StrCat("SELECT count(*) FROM results WHERE job_id=", job));
  }

  fs::path dir_;
  std::string db_path_;
  std::atomic<int64_t> now_{kStart};
  ResultValidator validator_;  // unset: the default
  std::unique_ptr<Engine> engine_;
};

// ---------------------------------------------------------------- submit

TEST_F(EngineTest, SubmitCreatesQueuedJobs) {
  auto r = Submit("b1", {File("alpha"), File("beta"), File("gamma")});
  ASSERT_EQ(r.items_size(), 3);
  std::set<int64_t> ids;
  const char* keys[] = {"alpha", "beta", "gamma"};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r.items(i).outcome(), v1::SubmitItem::OUTCOME_CREATED);
    EXPECT_EQ(r.items(i).dataset_key(), keys[i]);
    EXPECT_EQ(r.items(i).source_name(), absl::StrCat("datasets/", keys[i], ".json"));
    EXPECT_GT(r.items(i).job_id(), 0);
    ids.insert(r.items(i).job_id());
  }
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(Int("SELECT count(*) FROM jobs WHERE state='queued'"), 3);
  EXPECT_EQ(Str("SELECT name FROM batches"), "b1");
  EXPECT_EQ(Int("SELECT count(*) FROM inputs"), 3);
  const int64_t id = r.items(0).job_id();
  auto row = Rows(absl::StrCat(
      "SELECT dataset_key, dataset_name, source_name, input_sha256, ready_at, attempts "
      "FROM jobs WHERE id=", id));
  ASSERT_EQ(row.size(), 1u);
  EXPECT_THAT(row[0], ElementsAre("alpha", "alpha corpus", "datasets/alpha.json",
                                  File("alpha").sha256, absl::StrCat(kStart), "0"));
  EXPECT_EQ(Str(absl::StrCat("SELECT content FROM inputs WHERE sha256='", File("alpha").sha256,
                             "'")),
            File("alpha").content);
}

TEST_F(EngineTest, ResubmitOfSameContentInFlightIsSkipped) {
  const int64_t id = SubmitOne("b", "alpha");
  auto again = Submit("b", {File("alpha")});
  ASSERT_EQ(again.items_size(), 1);
  EXPECT_EQ(again.items(0).outcome(), v1::SubmitItem::OUTCOME_SKIPPED_IN_FLIGHT);
  EXPECT_EQ(again.items(0).job_id(), id);

  // Leased is in flight too, and the lease is left alone.
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  v1::Lease l = WaitLease(*sink, 1);
  EXPECT_EQ(l.job_id(), id);
  auto third = Submit("b", {File("alpha")});
  EXPECT_EQ(third.items(0).outcome(), v1::SubmitItem::OUTCOME_SKIPPED_IN_FLIGHT);
  Settle();
  EXPECT_EQ(sink->Count(), 1u);
  EXPECT_EQ(JobState(id), "leased");
  EXPECT_EQ(Int("SELECT count(*) FROM jobs"), 1);
}

TEST_F(EngineTest, ResubmitOfSucceededJobIsSkipped) {
  const int64_t id = SubmitOne("b", "alpha");
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  v1::Lease l = WaitLease(*sink, 1);
  ASSERT_TRUE(Succeed(l.job_id(), l.token()).ok());
  auto again = Submit("b", {File("alpha")});
  ASSERT_EQ(again.items_size(), 1);
  EXPECT_EQ(again.items(0).outcome(), v1::SubmitItem::OUTCOME_SKIPPED_SUCCEEDED);
  EXPECT_EQ(again.items(0).job_id(), id);
  Settle();
  EXPECT_EQ(sink->Count(), 1u);
  EXPECT_EQ(Int("SELECT count(*) FROM jobs"), 1);
}

TEST_F(EngineTest, SameKeyInAnotherBatchIsAnotherJob) {
  const int64_t a = SubmitOne("b1", "alpha");
  const int64_t b = SubmitOne("b2", "alpha");
  EXPECT_NE(a, b);
  EXPECT_EQ(Int("SELECT count(*) FROM batches"), 2);
  // Each job keeps its own copy of the input (no global index on sha256 to
  // maintain on every submit).
  EXPECT_EQ(Int("SELECT count(*) FROM inputs"), 2);
  EXPECT_EQ(Int("SELECT count(DISTINCT i.sha256) FROM jobs j JOIN inputs i ON i.id=j.input_id"), 1);
}

TEST_F(EngineTest, ChangedContentReplacesQueuedJobAndCancelsIt) {
  const int64_t old_id = SubmitOne("b", "alpha");
  auto r = Submit("b", {File("alpha", "v2")});
  ASSERT_EQ(r.items_size(), 1);
  EXPECT_EQ(r.items(0).outcome(), v1::SubmitItem::OUTCOME_REPLACED);
  const int64_t new_id = r.items(0).job_id();
  EXPECT_NE(new_id, old_id);
  EXPECT_EQ(JobState(old_id), "cancelled");
  EXPECT_EQ(JobInt(old_id, "superseded_by"), new_id);
  EXPECT_EQ(JobState(new_id), "queued");
  EXPECT_EQ(Str(absl::StrCat("SELECT superseded_by FROM jobs WHERE id=", new_id)), "NULL");
  EXPECT_EQ(Str(absl::StrCat("SELECT input_sha256 FROM jobs WHERE id=", new_id)),
            File("alpha", "v2").sha256);
  // The new job is now the dataset's job.
  auto again = Submit("b", {File("alpha", "v2")});
  EXPECT_EQ(again.items(0).outcome(), v1::SubmitItem::OUTCOME_SKIPPED_IN_FLIGHT);
  EXPECT_EQ(again.items(0).job_id(), new_id);
}

TEST_F(EngineTest, ChangedContentCancelsLeasedJobAndTellsItsWorker) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t old_id = SubmitOne("b", "alpha");
  v1::Lease l = WaitLease(*sink, 1);
  ASSERT_EQ(l.job_id(), old_id);

  auto r = Submit("b", {File("alpha", "v2")});
  ASSERT_EQ(r.items(0).outcome(), v1::SubmitItem::OUTCOME_REPLACED);
  const int64_t new_id = r.items(0).job_id();
  ASSERT_TRUE(sink->WaitForMessages(3));
  v1::CoordinatorMessage cancel = sink->At(1);
  ASSERT_TRUE(cancel.has_cancel()) << cancel.DebugString();
  EXPECT_EQ(cancel.cancel().job_id(), old_id);
  EXPECT_EQ(cancel.cancel().token(), l.token());
  EXPECT_THAT(cancel.cancel().reason(), HasSubstr("changed input"));
  // The freed slot goes to the replacement.
  v1::CoordinatorMessage next = sink->At(2);
  ASSERT_TRUE(next.has_lease());
  EXPECT_EQ(next.lease().job_id(), new_id);
  EXPECT_EQ(JobState(old_id), "cancelled");
  EXPECT_EQ(AttemptOutcome(l.token()), "cancelled/-");
  // The old lease is dead.
  auto late = Succeed(old_id, l.token());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Results(old_id), 0);
}

TEST_F(EngineTest, RerunReplacesEvenUnchangedContent) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t first = SubmitOne("b", "alpha");
  v1::Lease l = WaitLease(*sink, 1);
  ASSERT_TRUE(Succeed(first, l.token()).ok());

  auto r = Submit("b", {File("alpha")}, /*rerun=*/true);
  ASSERT_EQ(r.items(0).outcome(), v1::SubmitItem::OUTCOME_REPLACED);
  const int64_t second = r.items(0).job_id();
  EXPECT_NE(second, first);
  // The succeeded job keeps its state and result; it is only superseded.
  EXPECT_EQ(JobState(first), "succeeded");
  EXPECT_EQ(Results(first), 1);
  EXPECT_EQ(JobInt(first, "superseded_by"), second);
  v1::Lease l2 = WaitLease(*sink, 2);
  EXPECT_EQ(l2.job_id(), second);
  EXPECT_EQ(l2.attempt_number(), 1);

  // A rerun of an in-flight job cancels it.
  auto r3 = Submit("b", {File("alpha")}, /*rerun=*/true);
  ASSERT_EQ(r3.items(0).outcome(), v1::SubmitItem::OUTCOME_REPLACED);
  EXPECT_EQ(JobState(second), "cancelled");
  ASSERT_TRUE(sink->WaitForMessages(3));
  ASSERT_TRUE(sink->At(2).has_cancel());
  EXPECT_THAT(sink->At(2).cancel().reason(), HasSubstr("rerun"));
}

TEST_F(EngineTest, ResubmitOfJobNeedingAttentionRequeuesIt) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  v1::Lease l = WaitLease(*sink, 1);
  auto f = Fail(id, l.token(), v1::FAILURE_CLASS_INPUT, "bad metadata");
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->job_state(), v1::JOB_STATE_NEEDS_ATTENTION);

  auto r = Submit("b", {File("alpha")});
  ASSERT_EQ(r.items(0).outcome(), v1::SubmitItem::OUTCOME_REQUEUED);
  EXPECT_EQ(r.items(0).job_id(), id);
  v1::Lease l2 = WaitLease(*sink, 2);
  EXPECT_EQ(l2.job_id(), id);
  EXPECT_EQ(JobInt(id, "retry_epoch"), 1);
}

// -------------------------------------------------------------- dispatch

TEST_F(EngineTest, SessionGetsExactlyItsSlotsInSubmissionOrder) {
  auto r = Submit("b", {File("j1"), File("j2"), File("j3"), File("j4"), File("j5")});
  ASSERT_EQ(r.items_size(), 5);
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 2, sink);
  ASSERT_TRUE(sink->WaitForMessages(2));
  Settle();
  auto leases = sink->Leases();
  ASSERT_EQ(sink->Count(), 2u);
  ASSERT_EQ(leases.size(), 2u);
  EXPECT_EQ(leases[0].job_id(), r.items(0).job_id());
  EXPECT_EQ(leases[1].job_id(), r.items(1).job_id());
  EXPECT_EQ(Int("SELECT count(*) FROM jobs WHERE state='leased'"), 2);
  EXPECT_EQ(Int("SELECT count(*) FROM jobs WHERE state='queued'"), 3);

  auto w = Workers();
  ASSERT_EQ(w.workers_size(), 1);
  EXPECT_EQ(w.workers(0).name(), "w1");
  EXPECT_EQ(w.workers(0).slots(), 2);
  EXPECT_EQ(w.workers(0).in_use(), 2);
  EXPECT_TRUE(w.workers(0).connected());
  EXPECT_FALSE(w.workers(0).draining());

  // A finished job frees exactly one slot.
  ASSERT_TRUE(Succeed(leases[0].job_id(), leases[0].token()).ok());
  v1::Lease third = WaitLease(*sink, 3);
  EXPECT_EQ(third.job_id(), r.items(2).job_id());
  Settle();
  EXPECT_EQ(sink->Count(), 3u);
}

TEST_F(EngineTest, JobsAreSpreadOverWorkersSlots) {
  auto s1 = std::make_shared<FakeSink>();
  auto s2 = std::make_shared<FakeSink>();
  Connect("w1", 2, s1);
  Connect("w2", 2, s2);
  Submit("b", {File("j1"), File("j2"), File("j3"), File("j4"), File("j5"), File("j6")});
  ASSERT_TRUE(s1->WaitForMessages(2));
  ASSERT_TRUE(s2->WaitForMessages(2));
  Settle();
  EXPECT_EQ(s1->Count(), 2u);
  EXPECT_EQ(s2->Count(), 2u);
  EXPECT_EQ(Int("SELECT count(*) FROM jobs WHERE state='leased' AND worker='w1'"), 2);
  EXPECT_EQ(Int("SELECT count(*) FROM jobs WHERE state='leased' AND worker='w2'"), 2);
  EXPECT_EQ(Int("SELECT count(*) FROM jobs WHERE state='queued'"), 2);
}

TEST_F(EngineTest, CapacityChangesAreHonoured) {
  Submit("b", {File("j1"), File("j2"), File("j3"), File("j4")});
  auto sink = std::make_shared<FakeSink>();
  const int64_t session = Connect("w1", 1, sink);
  ASSERT_TRUE(sink->WaitForMessages(1));
  engine_->SetCapacity(session, 3);
  ASSERT_TRUE(sink->WaitForMessages(3));
  Settle();
  EXPECT_EQ(sink->Count(), 3u);
  EXPECT_EQ(Int("SELECT count(*) FROM jobs WHERE state='leased'"), 3);
}

TEST_F(EngineTest, LeaseCarriesTheJob) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  auto r = Submit("b", {File("alpha")}, false, std::nullopt, R"({"model": "m1"})");
  const int64_t id = r.items(0).job_id();
  v1::Lease l = WaitLease(*sink, 1);
  EXPECT_EQ(l.job_id(), id);
  EXPECT_EQ(l.attempt_number(), 1);
  EXPECT_EQ(l.batch(), "b");
  EXPECT_EQ(l.dataset_key(), "alpha");
  EXPECT_EQ(l.dataset_name(), "alpha corpus");
  EXPECT_EQ(l.metadata(), File("alpha").content);
  EXPECT_EQ(l.metadata_sha256(), File("alpha").sha256);
  EXPECT_EQ(l.profile_json(), R"({"model": "m1"})");
  EXPECT_EQ(l.lease_expires_at_ms(), kStart + kLease);
  EXPECT_EQ(l.previous_errors_size(), 0);
  // The token is the attempt's id (the fencing token).
  EXPECT_EQ(JobInt(id, "current_attempt"), l.token());
  EXPECT_EQ(AttemptOutcome(l.token()), "leased/-");
  EXPECT_EQ(Str(absl::StrCat("SELECT worker FROM jobs WHERE id=", id)), "w1");
  EXPECT_EQ(JobInt(id, "attempts"), 1);
}

// ------------------------------------------------------------- completion

TEST_F(EngineTest, CompleteStoresResultOnceAndRepeatsAreDuplicates) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  v1::Lease l = WaitLease(*sink, 1);
  auto c = Succeed(id, l.token(), R"({"score": 1})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->job_state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_FALSE(c->duplicate());
  EXPECT_EQ(JobState(id), "succeeded");
  EXPECT_EQ(Results(id), 1);
  EXPECT_EQ(Str(absl::StrCat("SELECT result_json FROM results WHERE job_id=", id)),
            R"({"score": 1})");
  EXPECT_EQ(JobInt(id, "(SELECT attempt_id FROM results WHERE job_id=jobs.id)"), l.token());
  EXPECT_EQ(AttemptOutcome(l.token()), "succeeded/-");

  // The outbox sends it again (even with a different body): recorded once.
  auto again = Succeed(id, l.token(), R"({"score": 2})");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate());
  EXPECT_EQ(again->job_state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(Results(id), 1);
  EXPECT_EQ(Str(absl::StrCat("SELECT result_json FROM results WHERE job_id=", id)),
            R"({"score": 1})");
  // A different outcome with the spent token is not a duplicate.
  auto fail = Fail(id, l.token(), v1::FAILURE_CLASS_AGENT);
  EXPECT_EQ(fail.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(JobState(id), "succeeded");
}

TEST_F(EngineTest, StaleOrWrongTokensAreRefusedAndChangeNothing) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 2, sink);
  auto r = Submit("b", {File("alpha"), File("beta")});
  const int64_t a = r.items(0).job_id(), b = r.items(1).job_id();
  ASSERT_TRUE(sink->WaitForMessages(2));
  auto leases = sink->Leases();
  ASSERT_EQ(leases.size(), 2u);
  const int64_t ta = leases[0].job_id() == a ? leases[0].token() : leases[1].token();
  const int64_t tb = leases[0].job_id() == b ? leases[0].token() : leases[1].token();
  const std::string before = Str(
      "SELECT group_concat(id || state || coalesce(current_attempt,'') || updated_at, ';') "
      "FROM jobs");
  const std::string attempts_before =
      Str("SELECT group_concat(id || outcome || coalesce(ended_at,''), ';') FROM attempts");

  // A token that was never issued.
  auto c1 = Succeed(a, ta + tb + 1000);
  EXPECT_EQ(c1.status().code(), absl::StatusCode::kFailedPrecondition);
  // Another job's live token.
  auto c2 = Succeed(a, tb);
  EXPECT_EQ(c2.status().code(), absl::StatusCode::kFailedPrecondition);
  auto c3 = Fail(b, ta, v1::FAILURE_CLASS_AGENT);
  EXPECT_EQ(c3.status().code(), absl::StatusCode::kFailedPrecondition);
  auto c4 = Release(a, 0);
  EXPECT_EQ(c4.status().code(), absl::StatusCode::kFailedPrecondition);
  auto h1 = Heartbeat(a, tb, true);
  EXPECT_EQ(h1.status().code(), absl::StatusCode::kFailedPrecondition);
  auto h2 = Heartbeat(a, ta + tb + 1000, true);
  EXPECT_EQ(h2.status().code(), absl::StatusCode::kFailedPrecondition);
  auto h3 = Heartbeat(9999, ta);
  EXPECT_EQ(h3.status().code(), absl::StatusCode::kFailedPrecondition);

  EXPECT_EQ(Str("SELECT group_concat(id || state || coalesce(current_attempt,'') || updated_at, "
                "';') FROM jobs"),
            before);
  EXPECT_EQ(Str("SELECT group_concat(id || outcome || coalesce(ended_at,''), ';') FROM attempts"),
            attempts_before);
  EXPECT_EQ(Int("SELECT count(*) FROM results"), 0);
  // The wrong heartbeats did not renew a's lease: it still expires on time,
  // while b, renewed with its own token, lives on.
  Advance(kLease - 1);
  auto hb = Heartbeat(b, tb);
  ASSERT_TRUE(hb.ok()) << hb.status();
  Advance(1);
  Poke();
  EXPECT_EQ(AttemptOutcome(ta), "expired/infra");
  EXPECT_EQ(AttemptOutcome(tb), "leased/-");
  // The right token still works.
  auto ok = Succeed(b, tb);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->job_state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(EngineTest, CompleteNeedsAnOutcomeAndAFailureClass) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  v1::Lease l = WaitLease(*sink, 1);
  v1::CompleteRequest none;
  none.set_job_id(id);
  none.set_token(l.token());
  EXPECT_EQ(Complete(none).status().code(), absl::StatusCode::kInvalidArgument);
  auto unclassified = Fail(id, l.token(), v1::FAILURE_CLASS_UNSPECIFIED);
  EXPECT_EQ(unclassified.status().code(), absl::StatusCode::kInvalidArgument);
  // The refused failure was rolled back: the attempt is still live.
  EXPECT_EQ(AttemptOutcome(l.token()), "leased/-");
  EXPECT_EQ(JobState(id), "leased");
  ASSERT_TRUE(Succeed(id, l.token()).ok());
}

TEST_F(EngineTest, HeartbeatMarksRunningAndRenewsTheLease) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  v1::Lease l = WaitLease(*sink, 1);
  Advance(1000);
  auto h = Heartbeat(id, l.token(), /*running=*/true);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->lease_expires_at_ms(), kStart + 1000 + kLease);
  EXPECT_FALSE(h->cancel_requested());
  EXPECT_EQ(JobState(id), "running");
  EXPECT_EQ(AttemptOutcome(l.token()), "running/-");
  EXPECT_EQ(Str(absl::StrCat("SELECT started_at FROM attempts WHERE id=", l.token())),
            absl::StrCat(kStart + 1000));
  // Renewed every 20 s, the lease outlives its first period many times over.
  for (int i = 0; i < 5; ++i) {
    Advance(20'000);
    auto r = Heartbeat(id, l.token(), true);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->lease_expires_at_ms(), now_.load() + kLease);
    Poke();
    EXPECT_EQ(JobState(id), "running");
  }
  auto c = Succeed(id, l.token());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->job_state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(EngineTest, ExpiredLeaseIsAnInfraFailureAndTheJobIsRequeued) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  v1::Lease l = WaitLease(*sink, 1);
  Advance(kLease - 1);
  Poke();
  EXPECT_EQ(JobState(id), "leased");  // not yet

  Advance(2);
  Poke();
  EXPECT_EQ(AttemptOutcome(l.token()), "expired/infra");
  EXPECT_THAT(Str(absl::StrCat("SELECT error FROM attempts WHERE id=", l.token())),
              HasSubstr("lease expired"));
  EXPECT_EQ(JobState(id), "queued");
  EXPECT_EQ(Str(absl::StrCat("SELECT last_failure_class FROM jobs WHERE id=", id)), "infra");
  EXPECT_EQ(Str(absl::StrCat("SELECT current_attempt FROM jobs WHERE id=", id)), "NULL");
  // Backed off: not ready before 1 s (half the 2 s base) has passed.
  const int64_t ready_at = JobInt(id, "ready_at");
  EXPECT_GE(ready_at, now_.load() + 1000);
  EXPECT_LE(ready_at, now_.load() + 2000);

  // The worker that lost the lease can neither finish nor renew it.
  auto late = Succeed(id, l.token());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(late.status().message()), HasSubstr("expired"));
  EXPECT_EQ(Heartbeat(id, l.token()).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Results(id), 0);
  EXPECT_EQ(JobState(id), "queued");

  Settle();
  EXPECT_EQ(sink->Count(), 1u);  // not before its backoff
  now_.store(ready_at);
  Poke();
  v1::Lease l2 = WaitLease(*sink, 2);
  EXPECT_EQ(l2.job_id(), id);
  EXPECT_EQ(l2.attempt_number(), 2);
  EXPECT_NE(l2.token(), l.token());
  // With the job leased again, the old token is still dead.
  EXPECT_EQ(Heartbeat(id, l.token()).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Succeed(id, l.token()).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(AttemptOutcome(l2.token()), "leased/-");
  ASSERT_TRUE(Succeed(id, l2.token()).ok());
  EXPECT_EQ(Str(absl::StrCat("SELECT attempt_id FROM results WHERE job_id=", id)),
            absl::StrCat(l2.token()));
}

TEST_F(EngineTest, RepeatedLeaseExpiryEndsInNeedsAttention) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  for (int i = 1; i <= 5; ++i) {  // infra allows 5 attempts
    v1::Lease l = WaitLease(*sink, i);
    ASSERT_EQ(l.attempt_number(), i);
    Advance(kLease + 1);
    Poke();
    EXPECT_EQ(AttemptOutcome(l.token()), "expired/infra");
    if (i < 5) {
      EXPECT_EQ(JobState(id), "queued");
      Advance(kTenMinutes);
      Poke();
    }
  }
  EXPECT_EQ(JobState(id), "needs_attention");
  Advance(kTenMinutes);
  Settle();
  EXPECT_EQ(sink->Count(), 5u);
}

// --------------------------------------------------------------- retries

TEST_F(EngineTest, AgentFailuresAreRetriedUntilTheLimitThenNeedAttention) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  std::vector<int64_t> tokens;
  for (int i = 1; i <= 3; ++i) {  // agent allows 3 attempts by default
    v1::Lease l = WaitLease(*sink, i);
    ASSERT_EQ(l.job_id(), id);
    ASSERT_EQ(l.attempt_number(), i);
    tokens.push_back(l.token());
    auto f = Fail(id, l.token(), v1::FAILURE_CLASS_AGENT, absl::StrCat("exit 1 #", i));
    ASSERT_TRUE(f.ok()) << f.status();
    if (i < 3) {
      EXPECT_EQ(f->job_state(), v1::JOB_STATE_QUEUED);
      EXPECT_EQ(JobState(id), "queued");
      Settle();
      EXPECT_EQ(sink->Count(), static_cast<size_t>(i)) << "retried before its backoff";
      Advance(kTenMinutes);
      Poke();
    } else {
      EXPECT_EQ(f->job_state(), v1::JOB_STATE_NEEDS_ATTENTION);
    }
  }
  EXPECT_EQ(JobState(id), "needs_attention");
  EXPECT_EQ(Str(absl::StrCat("SELECT last_failure_class || ':' || last_error FROM jobs WHERE id=",
                             id)),
            "agent:exit 1 #3");
  for (int64_t t : tokens) EXPECT_EQ(AttemptOutcome(t), "failed/agent");
  EXPECT_EQ(Int(absl::StrCat("SELECT count(*) FROM events WHERE kind='needs_attention' AND "
                             "job_id=", id)),
            1);
  Advance(10 * kTenMinutes);
  Settle();
  EXPECT_EQ(sink->Count(), 3u);
}

TEST_F(EngineTest, RetryAfterDelaysTheNextAttempt) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  v1::Lease l = WaitLease(*sink, 1);
  auto f = Fail(id, l.token(), v1::FAILURE_CLASS_MODEL_API, "429", /*retry_after_ms=*/90'000);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(JobInt(id, "ready_at"), kStart + 90'000);
  Advance(89'999);
  Settle();
  EXPECT_EQ(sink->Count(), 1u);
  Advance(1);
  Poke();
  EXPECT_EQ(WaitLease(*sink, 2).job_id(), id);
}

TEST_F(EngineTest, InputFailuresAreNeverRetried) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  RetryPolicy generous;
  for (auto& [cls, n] : generous.max_attempts) n = (cls == v1::FAILURE_CLASS_INPUT ? 1 : 50);
  const int64_t id = SubmitOne("b", "alpha", generous);
  v1::Lease l = WaitLease(*sink, 1);
  auto f = Fail(id, l.token(), v1::FAILURE_CLASS_INPUT, "metadata has no Link");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->job_state(), v1::JOB_STATE_NEEDS_ATTENTION);
  EXPECT_EQ(JobState(id), "needs_attention");
  EXPECT_EQ(AttemptOutcome(l.token()), "failed/input");
  Advance(10 * kTenMinutes);
  Settle();
  EXPECT_EQ(sink->Count(), 1u);
}

TEST_F(EngineTest, RetryRequeuesJobsNeedingAttentionByBatchAndClass) {
  RetryPolicy pol;
  pol.max_attempts[v1::FAILURE_CLASS_AGENT] = 2;
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 2, sink);
  auto r = Submit("b", {File("in"), File("ag")}, false, pol);
  const int64_t in = r.items(0).job_id(), ag = r.items(1).job_id();
  ASSERT_TRUE(sink->WaitForMessages(2));
  auto leases = sink->Leases();
  ASSERT_EQ(leases.size(), 2u);
  ASSERT_EQ(leases[0].job_id(), in);
  ASSERT_EQ(leases[1].job_id(), ag);
  ASSERT_EQ(Fail(in, leases[0].token(), v1::FAILURE_CLASS_INPUT)->job_state(),
            v1::JOB_STATE_NEEDS_ATTENTION);
  ASSERT_EQ(Fail(ag, leases[1].token(), v1::FAILURE_CLASS_AGENT)->job_state(),
            v1::JOB_STATE_QUEUED);
  Advance(kTenMinutes);
  Poke();
  v1::Lease l3 = WaitLease(*sink, 3);
  ASSERT_EQ(l3.job_id(), ag);
  ASSERT_EQ(Fail(ag, l3.token(), v1::FAILURE_CLASS_AGENT)->job_state(),
            v1::JOB_STATE_NEEDS_ATTENTION);

  // Unknown batch or job.
  v1::RetryRequest bad;
  bad.set_batch("nope");
  EXPECT_EQ(RetryOp(bad).status().code(), absl::StatusCode::kNotFound);
  v1::RetryRequest missing;
  missing.mutable_job()->set_job_id(99999);
  EXPECT_EQ(RetryOp(missing).status().code(), absl::StatusCode::kNotFound);

  // By class: only the agent failure.
  v1::RetryRequest by_class;
  by_class.set_batch("b");
  by_class.set_failure_class(v1::FAILURE_CLASS_AGENT);
  auto n = RetryOp(by_class);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  // Requeued, and with a free slot leased again in the same commit.
  EXPECT_THAT(JobState(ag), ::testing::AnyOf("queued", "leased"));
  EXPECT_EQ(JobState(in), "needs_attention");
  EXPECT_EQ(JobInt(ag, "retry_epoch"), 1);
  v1::Lease l4 = WaitLease(*sink, 4);
  ASSERT_EQ(l4.job_id(), ag);
  // A fresh epoch: one more agent failure is retried, not given up.
  ASSERT_EQ(Fail(ag, l4.token(), v1::FAILURE_CLASS_AGENT)->job_state(), v1::JOB_STATE_QUEUED);

  v1::RetryRequest queued_one;
  queued_one.mutable_job()->set_job_id(ag);
  EXPECT_EQ(RetryOp(queued_one).status().code(), absl::StatusCode::kFailedPrecondition);

  // The whole batch: the input failure (ag is queued, not needing attention).
  v1::RetryRequest all;
  all.set_batch("b");
  auto m = RetryOp(all);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, 1);
  EXPECT_THAT(JobState(in), ::testing::AnyOf("queued", "leased"));
  v1::Lease l5 = WaitLease(*sink, 5);
  EXPECT_EQ(l5.job_id(), in);
  EXPECT_EQ(JobInt(in, "retry_epoch"), 1);
  EXPECT_EQ(*RetryOp(all), 0);
}

TEST_F(EngineTest, RetryOfOneJobByKey) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  v1::Lease l = WaitLease(*sink, 1);
  ASSERT_TRUE(Fail(id, l.token(), v1::FAILURE_CLASS_INPUT).ok());
  v1::RetryRequest req;
  req.mutable_job()->set_batch("b");
  req.mutable_job()->set_dataset_key("alpha");
  auto n = RetryOp(req);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  v1::Lease l2 = WaitLease(*sink, 2);
  EXPECT_EQ(l2.job_id(), id);
  EXPECT_EQ(l2.attempt_number(), 2);
}

// A job replaced by a changed file is superseded: no longer the dataset's
// job, hidden from status, listings and export (the read side filters
// superseded_by IS NULL). Engine::Retry with a job_id did not check
// superseded_by (Retry's single-job branch, now in engine_operators.cc), so
// retrying the old id put a second, invisible job for the same dataset in
// flight, running the outdated input. Regression test for that bug (fixed).
TEST_F(EngineTest, RetryOfASupersededJobIsRefused) {
  const int64_t old_id = SubmitOne("b", "alpha");
  auto r = Submit("b", {File("alpha", "v2")});
  ASSERT_EQ(r.items(0).outcome(), v1::SubmitItem::OUTCOME_REPLACED);
  const int64_t new_id = r.items(0).job_id();
  ASSERT_EQ(JobState(old_id), "cancelled");

  v1::RetryRequest req;
  req.mutable_job()->set_job_id(old_id);
  auto n = RetryOp(req);
  EXPECT_FALSE(n.ok() && *n > 0) << "retried superseded job " << old_id;
  EXPECT_EQ(JobState(old_id), "cancelled");
  EXPECT_EQ(Int("SELECT count(*) FROM jobs WHERE dataset_key='alpha' AND "
                "state IN ('queued','leased','running')"),
            1);
  EXPECT_EQ(JobState(new_id), "queued");
}

// Failure reasons are stored cut to 4000 bytes in jobs.last_error and to 500
// bytes in the "failed" event's detail (engine.cc, FailJob: error.substr(0,
// 4000) and error.substr(0, 500)). Cutting at a byte count splits a
// multi-byte character, and queries.cc hands these columns out as proto3
// strings (JobSummary.last_error, Event.detail), which must be valid UTF-8,
// so listing or showing such a job fails on the client. Arabic error text is
// ordinary here. Regression test for that bug (fixed).
TEST_F(EngineTest, TruncatedFailureReasonsStayValidUtf8) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  v1::Lease l = WaitLease(*sink, 1);
  std::string reason = "x";  // one ASCII byte, then two-byte letters
  for (int i = 0; i < 3000; ++i) reason += "ب";
  ASSERT_TRUE(IsValidUtf8(reason));
  auto f = Fail(id, l.token(), v1::FAILURE_CLASS_AGENT, reason);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(Str(absl::StrCat("SELECT error FROM attempts WHERE id=", l.token())), reason);
  const std::string last_error = Str(absl::StrCat("SELECT last_error FROM jobs WHERE id=", id));
  EXPECT_LE(last_error.size(), 4000u);
  EXPECT_TRUE(IsValidUtf8(last_error)) << "jobs.last_error ends in a split character";
  const std::string detail = Str(absl::StrCat(
      "SELECT detail FROM events WHERE kind='failed' AND job_id=", id));
  EXPECT_TRUE(IsValidUtf8(detail)) << "events.detail ends in a split character";
}

// ---------------------------------------------------------------- cancel

TEST_F(EngineTest, CancelOfLeasedJobTellsTheHoldingSession) {
  auto s1 = std::make_shared<FakeSink>();
  auto s2 = std::make_shared<FakeSink>();
  Connect("w1", 1, s1);
  const int64_t a = SubmitOne("b", "alpha");
  v1::Lease la = WaitLease(*s1, 1);
  Connect("w2", 1, s2);
  const int64_t b = SubmitOne("b", "beta");
  v1::Lease lb = WaitLease(*s2, 1);
  ASSERT_EQ(lb.job_id(), b);

  v1::CancelRequest req;
  req.mutable_job()->set_job_id(a);
  auto n = CancelOp(req);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  ASSERT_TRUE(s1->WaitForMessages(2));
  v1::CoordinatorMessage m = s1->At(1);
  ASSERT_TRUE(m.has_cancel()) << m.DebugString();
  EXPECT_EQ(m.cancel().job_id(), a);
  EXPECT_EQ(m.cancel().token(), la.token());
  EXPECT_THAT(m.cancel().reason(), HasSubstr("cancelled by operator"));
  Settle();
  EXPECT_EQ(s2->Count(), 1u);  // the other worker hears nothing
  EXPECT_EQ(JobState(a), "cancelled");
  EXPECT_EQ(AttemptOutcome(la.token()), "cancelled/-");
  EXPECT_EQ(Succeed(a, la.token()).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Heartbeat(a, la.token()).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Results(a), 0);
  // Already cancelled.
  EXPECT_EQ(CancelOp(req).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(EngineTest, CancelOfABatchCancelsEveryJobInFlight) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  auto r = Submit("b", {File("j1"), File("j2"), File("j3")});
  v1::Lease l = WaitLease(*sink, 1);
  ASSERT_TRUE(Succeed(l.job_id(), l.token()).ok());
  v1::Lease l2 = WaitLease(*sink, 2);
  const int64_t other = SubmitOne("other", "x");

  v1::CancelRequest req;
  req.set_batch("b");
  auto n = CancelOp(req);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);  // the leased one and the queued one, not the succeeded one
  ASSERT_TRUE(sink->WaitForMessages(3));
  ASSERT_TRUE(sink->At(2).has_cancel());
  EXPECT_EQ(sink->At(2).cancel().token(), l2.token());
  EXPECT_EQ(JobState(r.items(0).job_id()), "succeeded");
  EXPECT_EQ(JobState(r.items(1).job_id()), "cancelled");
  EXPECT_EQ(JobState(r.items(2).job_id()), "cancelled");
  // The freed slot goes to the other batch.
  v1::Lease lo = WaitLease(*sink, 4);
  EXPECT_EQ(lo.job_id(), other);
  v1::CancelRequest none;
  none.set_batch("nope");
  EXPECT_EQ(CancelOp(none).status().code(), absl::StatusCode::kNotFound);
}

// --------------------------------------------------------------- release

TEST_F(EngineTest, ReleaseRequeuesWithoutUsingAnAttempt) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  std::set<int64_t> tokens;
  for (int i = 1; i <= 6; ++i) {  // more releases than any class allows failures
    v1::Lease l = WaitLease(*sink, i);
    ASSERT_EQ(l.job_id(), id);
    EXPECT_EQ(l.attempt_number(), 1) << "release " << i << " used an attempt";
    tokens.insert(l.token());
    auto r = Release(id, l.token());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->job_state(), v1::JOB_STATE_QUEUED);
    EXPECT_EQ(AttemptOutcome(l.token()), "released/-");
    // Releasing again is an outbox repeat.
    auto dup = Release(id, l.token());
    ASSERT_TRUE(dup.ok()) << dup.status();
    EXPECT_TRUE(dup->duplicate());
  }
  EXPECT_EQ(tokens.size(), 6u);
  v1::Lease l = WaitLease(*sink, 7);
  EXPECT_EQ(JobInt(id, "attempts"), 1);
  EXPECT_EQ(JobInt(id, "retry_epoch"), 0);
  // Releases are not failures: the first agent failure is still retried.
  auto f = Fail(id, l.token(), v1::FAILURE_CLASS_AGENT);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->job_state(), v1::JOB_STATE_QUEUED);
}

// ------------------------------------------------------- pause and drain

TEST_F(EngineTest, PausedBatchGetsNoLeasesUntilResumed) {
  auto p = Submit("paused", {File("p1"), File("p2")});
  auto o = Submit("open", {File("o1")});
  auto paused = SetPaused("paused", true);
  ASSERT_TRUE(paused.ok()) << paused.status();
  EXPECT_EQ(Int("SELECT paused FROM batches WHERE name='paused'"), 1);

  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 3, sink);
  v1::Lease l = WaitLease(*sink, 1);
  EXPECT_EQ(l.job_id(), o.items(0).job_id());
  Advance(kTenMinutes);
  Settle();
  EXPECT_EQ(sink->Count(), 1u);
  EXPECT_EQ(JobState(p.items(0).job_id()), "queued");

  ASSERT_TRUE(SetPaused("paused", false).ok());
  ASSERT_TRUE(sink->WaitForMessages(3));
  std::set<int64_t> got;
  for (const auto& x : sink->Leases()) got.insert(x.job_id());
  EXPECT_EQ(got, (std::set<int64_t>{o.items(0).job_id(), p.items(0).job_id(),
                                    p.items(1).job_id()}));
  EXPECT_EQ(SetPaused("nope", true).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EngineTest, DrainedWorkerIsToldAndGetsNoMoreLeases) {
  auto r = Submit("b", {File("j1"), File("j2"), File("j3")});
  auto s1 = std::make_shared<FakeSink>();
  Connect("w1", 1, s1);
  v1::Lease l = WaitLease(*s1, 1);
  auto d = Drain("w1");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(s1->WaitForMessages(2));
  ASSERT_TRUE(s1->At(1).has_drain()) << s1->At(1).DebugString();
  EXPECT_EQ(Int("SELECT draining FROM workers WHERE name='w1'"), 1);

  // Its running job may finish; the freed slot stays empty.
  ASSERT_TRUE(Succeed(l.job_id(), l.token()).ok());
  Advance(kTenMinutes);
  Settle();
  EXPECT_EQ(s1->Count(), 2u);
  EXPECT_EQ(JobState(r.items(1).job_id()), "queued");
  auto w = Workers();
  ASSERT_EQ(w.workers_size(), 1);
  EXPECT_TRUE(w.workers(0).draining());
  EXPECT_EQ(w.workers(0).in_use(), 0);

  // Other workers still get work.
  auto s2 = std::make_shared<FakeSink>();
  Connect("w2", 2, s2);
  ASSERT_TRUE(s2->WaitForMessages(2));
  EXPECT_EQ(Drain("nobody").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EngineTest, ReconnectReplacesTheOldSession) {
  auto old_sink = std::make_shared<FakeSink>();
  Connect("w1", 1, old_sink);
  const int64_t id = SubmitOne("b", "alpha");
  v1::Lease l = WaitLease(*old_sink, 1);
  auto new_sink = std::make_shared<FakeSink>();
  Connect("w1", 2, new_sink);
  ASSERT_TRUE(old_sink->WaitForClose());
  EXPECT_THAT(old_sink->Closes()[0], HasSubstr("replaced"));
  // The held lease counts against the new session's slots and stays valid.
  SubmitOne("b", "beta");
  SubmitOne("b", "gamma");
  ASSERT_TRUE(new_sink->WaitForMessages(1));
  Settle();
  EXPECT_EQ(new_sink->Count(), 1u);
  ASSERT_TRUE(Heartbeat(id, l.token()).ok());
  // Cancels go to the session the worker has now.
  v1::CancelRequest req;
  req.mutable_job()->set_job_id(id);
  ASSERT_TRUE(CancelOp(req).ok());
  ASSERT_TRUE(new_sink->WaitForMessages(2));
  bool saw_cancel = false;
  for (size_t i = 0; i < new_sink->Count(); ++i)
    if (new_sink->At(i).has_cancel() && new_sink->At(i).cancel().job_id() == id) saw_cancel = true;
  EXPECT_TRUE(saw_cancel);
  EXPECT_EQ(old_sink->Count(), 1u);
}

// --------------------------------------------------------------- restart

TEST_F(EngineTest, RestartKeepsStateAndLeases) {
  RetryPolicy pol;
  pol.max_attempts[v1::FAILURE_CLASS_AGENT] = 1;
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  auto r = Submit("b", {File("alpha"), File("beta")}, false, pol, R"({"p": 1})");
  const int64_t a = r.items(0).job_id(), b = r.items(1).job_id();
  v1::Lease l = WaitLease(*sink, 1);
  ASSERT_EQ(l.job_id(), a);
  ASSERT_TRUE(Heartbeat(a, l.token(), true).ok());

  Advance(20'000);
  engine_.reset();
  ASSERT_TRUE(sink->WaitForClose());
  StartEngine();
  ASSERT_NE(engine_, nullptr);

  // Past the lease's original expiry, but recovered leases get a fresh period.
  Advance(20'000);
  Poke();
  EXPECT_EQ(JobState(a), "running");
  auto h = Heartbeat(a, l.token(), true);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->lease_expires_at_ms(), now_.load() + kLease);
  // Everything else is remembered: jobs, batch, its profile and policy.
  auto again = Submit("b", {File("alpha"), File("beta")});
  EXPECT_EQ(again.items(0).outcome(), v1::SubmitItem::OUTCOME_SKIPPED_IN_FLIGHT);
  EXPECT_EQ(again.items(1).outcome(), v1::SubmitItem::OUTCOME_SKIPPED_IN_FLIGHT);
  EXPECT_EQ(again.items(1).job_id(), b);
  auto w = Workers();
  ASSERT_EQ(w.workers_size(), 1);
  EXPECT_FALSE(w.workers(0).connected());
  EXPECT_EQ(w.workers(0).in_use(), 1);

  auto c = Succeed(a, l.token());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->job_state(), v1::JOB_STATE_SUCCEEDED);

  auto sink2 = std::make_shared<FakeSink>();
  Connect("w1", 1, sink2);
  v1::Lease lb = WaitLease(*sink2, 1);
  EXPECT_EQ(lb.job_id(), b);
  EXPECT_EQ(lb.profile_json(), R"({"p": 1})");
  // The batch's policy (agent: 1 attempt) survived.
  auto f = Fail(b, lb.token(), v1::FAILURE_CLASS_AGENT);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->job_state(), v1::JOB_STATE_NEEDS_ATTENTION);
}

TEST_F(EngineTest, RecoveredLeaseExpiresIfNobodyRenewsIt) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  v1::Lease l = WaitLease(*sink, 1);
  RestartEngine();
  Advance(kLease - 1);
  Poke();
  EXPECT_EQ(JobState(id), "leased");
  Advance(2);
  Poke();
  EXPECT_EQ(AttemptOutcome(l.token()), "expired/infra");
  EXPECT_EQ(JobState(id), "queued");
  EXPECT_EQ(Succeed(id, l.token()).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(EngineTest, PauseSurvivesRestart) {
  Submit("b", {File("alpha")});
  ASSERT_TRUE(SetPaused("b", true).ok());
  RestartEngine();
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  Settle();
  EXPECT_EQ(sink->Count(), 0u);
  ASSERT_TRUE(SetPaused("b", false).ok());
  EXPECT_TRUE(sink->WaitForMessages(1));
}

// ------------------------------------------------------------ validation

TEST_F(EngineTest, InvalidResultIsRetriedWithThePreviousErrors) {
  struct Seen {
    std::mutex mu;
    std::vector<ResultContext> ctx;
  };
  auto seen = std::make_shared<Seen>();
  validator_ = [seen](const ResultContext& ctx, const std::string& json) {
    {
      std::lock_guard<std::mutex> l(seen->mu);
      seen->ctx.push_back(ctx);
    }
    if (json.find("\"good\"") != std::string::npos) return std::vector<std::string>{};
    return std::vector<std::string>{"/Name: missing", "/Score: must be a number"};
  };
  RestartEngine();

  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  auto r = Submit("b", {File("alpha")}, false, std::nullopt, R"({"m": 2})");
  const int64_t id = r.items(0).job_id();
  v1::Lease l1 = WaitLease(*sink, 1);
  EXPECT_EQ(l1.previous_errors_size(), 0);

  auto bad = Succeed(id, l1.token(), R"({"bad": 1})");
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->job_state(), v1::JOB_STATE_QUEUED);
  EXPECT_THAT(bad->validation_errors(), ElementsAre("/Name: missing", "/Score: must be a number"));
  EXPECT_EQ(AttemptOutcome(l1.token()), "failed/invalid_output");
  EXPECT_EQ(Results(id), 0);
  EXPECT_EQ(Str(absl::StrCat("SELECT last_failure_class FROM jobs WHERE id=", id)),
            "invalid_output");
  {
    std::lock_guard<std::mutex> lock(seen->mu);
    ASSERT_EQ(seen->ctx.size(), 1u);
    EXPECT_EQ(seen->ctx[0].batch, "b");
    EXPECT_EQ(seen->ctx[0].dataset_key, "alpha");
    EXPECT_EQ(seen->ctx[0].dataset_name, "alpha corpus");
    EXPECT_EQ(seen->ctx[0].profile_json, R"({"m": 2})");
    EXPECT_EQ(seen->ctx[0].metadata, File("alpha").content);
  }
  // The outbox repeating the upload is a duplicate, not a second failure.
  auto dup = Succeed(id, l1.token(), R"({"bad": 1})");
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_TRUE(dup->duplicate());
  EXPECT_EQ(Int(absl::StrCat("SELECT count(*) FROM attempts WHERE job_id=", id)), 1);

  Advance(kTenMinutes);
  Poke();
  v1::Lease l2 = WaitLease(*sink, 2);
  EXPECT_EQ(l2.job_id(), id);
  EXPECT_EQ(l2.attempt_number(), 2);
  EXPECT_THAT(l2.previous_errors(), ElementsAre("/Name: missing", "/Score: must be a number"));
  auto good = Succeed(id, l2.token(), R"({"good": true})");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->job_state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(good->validation_errors_size(), 0);
  EXPECT_EQ(Results(id), 1);
}

TEST_F(EngineTest, TheCheckerSeesTheAttemptsNetworkLog) {
  // The trust flags from evidence (server/net_evidence) need the network log
  // the worker reported with the result.
  auto seen = std::make_shared<std::vector<std::string>>();
  validator_ = [seen](const ResultContext& ctx, const std::string&) {
    seen->push_back(std::string(ctx.netlog_json));  // a view: valid during the call only
    return std::vector<std::string>{};
  };
  RestartEngine();
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  v1::Lease l = WaitLease(*sink, 1);
  v1::CompleteRequest req;
  req.set_job_id(id);
  req.set_token(l.token());
  req.set_result_json(R"({"ok": true})");
  req.set_netlog_json(R"([{"host": "hf.co", "decision": "allow", "bytes_down": 10}])");
  auto c = Complete(req);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(seen->size(), 1u);
  EXPECT_EQ((*seen)[0], req.netlog_json());
}

TEST_F(EngineTest, InvalidResultsEndInNeedsAttention) {
  auto sink = std::make_shared<FakeSink>();
  Connect("w1", 1, sink);
  const int64_t id = SubmitOne("b", "alpha");
  for (int i = 1; i <= 3; ++i) {  // invalid_output allows 3 attempts
    v1::Lease l = WaitLease(*sink, i);
    auto c = Succeed(id, l.token(), "[1, 2]");  // the default validator wants an object
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_THAT(c->validation_errors(), ElementsAre(HasSubstr("not a JSON object")));
    EXPECT_EQ(c->job_state(), i < 3 ? v1::JOB_STATE_QUEUED : v1::JOB_STATE_NEEDS_ATTENTION);
    Advance(kTenMinutes);
    Poke();
  }
  Settle();
  EXPECT_EQ(sink->Count(), 3u);
  EXPECT_EQ(JobState(id), "needs_attention");
}

}  // namespace
}  // namespace assessq
