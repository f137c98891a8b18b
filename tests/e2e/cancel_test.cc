// `assessctl cancel JOB` on a running job: the coordinator tells the worker
// over its session at once, and the worker kills and removes the container
// well before the job's own deadline; the job ends cancelled, with no result.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/e2e/e2e_fixture.h"

namespace aqe2e {
namespace {

class CancelTest : public E2eTest {};

TEST_F(CancelTest, CancelRemovesTheRunningContainerWithinTwoSeconds) {
  const std::string profile = TimedProfile(300, 10);  // the deadline must play no part
  Workerd& w = AddWorker("cancel", {.slots = 1});

  const int64_t job = SubmitOne("to-cancel", "hang", "cancel", profile);

  std::optional<json> c = WaitRunningContainer(w, job);
  const std::string id = c->value("Id", "");
  ctl_->WaitJobState(job, "running", 30000);

  auto t0 = std::chrono::steady_clock::now();
  RunResult r = ctl_->Run({"cancel", std::to_string(job)});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  // Gone: not running and removed (inspect says 404).
  bool gone = PollUntil([&] { return ContainerGone(id); }, 20000, 20);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "container removed " << secs << " s after `assessctl cancel` began\n";
  ASSERT_TRUE(gone) << "container still exists 20 s after cancel\n" << Tail(w.Log());
  EXPECT_LT(secs, 3.0) << "cancel took too long to reach the container";

  json s = ctl_->Show(job);
  EXPECT_EQ(s.value("state", ""), "cancelled") << s.dump(2);
  ASSERT_EQ(s["attempts"].size(), 1u) << s.dump(2);
  EXPECT_EQ(s["attempts"][0].value("outcome", ""), "cancelled") << s.dump(2);
  EXPECT_TRUE(ContainersOf(w.name()).empty());
  // The worker stays healthy and cleans its job dir.
  EXPECT_TRUE(PollUntil([&] { return ListDir(w.jobs_dir()).empty(); }, 10000))
      << ::testing::PrintToString(ListDir(w.jobs_dir()));
  EXPECT_TRUE(w.child()->Running());
  // No result was stored for it.
  RunResult ex = ctl_->Run({"export", "--batch", "cancel", "--format", "jsonl"});
  ASSERT_EQ(ex.exit_code, 0) << ex.Describe();
  EXPECT_EQ(ex.out, "") << ex.out;
}

// A job cancelled and retried at once is leased again to the same worker
// while that worker's thread for the cancelled run is still tearing its
// container down. The worker keys its running jobs by job id only
// (Worker::running_), so the old thread's final running_.erase(job) removes
// the NEW lease's entry: the new run is never heartbeated, its lease expires
// (coordinator --lease-seconds 2) although the worker is healthy and the
// container runs, and the result it then reports bears a stale token.
class CancelRetryTest : public E2eTest {
 protected:
  void SetUp() override {
    lease_seconds_ = 2;
    E2eTest::SetUp();
  }
};

TEST_F(CancelRetryTest, CancelThenImmediateRetryOnTheSameWorkerKeepsTheNewLease) {
  const std::string profile = TimedProfile(120, 10);
  Workerd& w = AddWorker("cretry", {.slots = 1});

  // Long enough to outlive several lease periods, short enough to finish.
  const int64_t job = SubmitOne("cancel-retry", "sleep_ms:8000", "cretry", profile);
  std::optional<json> c = WaitRunningContainer(w, job);
  ctl_->WaitJobState(job, "running", 30000);

  RunResult cancel = ctl_->Run({"cancel", std::to_string(job)});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.Describe();
  RunResult retry = ctl_->Run({"retry", std::to_string(job)});
  ASSERT_EQ(retry.exit_code, 0) << retry.Describe();

  // The retried run must simply succeed on its one new attempt.
  json s;
  ASSERT_TRUE(PollUntil(
      [&] {
        s = ctl_->Show(job);
        std::string st = s.value("state", "");
        return st == "succeeded" || st == "needs_attention" || st == "cancelled";
      },
      120000, 200))
      << s.dump(2);
  EXPECT_EQ(s.value("state", ""), "succeeded") << s.dump(2);
  std::vector<std::string> outcomes;
  for (const auto& a : s["attempts"]) outcomes.push_back(a.value("outcome", ""));
  EXPECT_EQ(outcomes, (std::vector<std::string>{"cancelled", "succeeded"}))
      << "the retried run's lease was lost on a healthy worker:\n"
      << s.dump(2);
}

}  // namespace
}  // namespace aqe2e
