// The coordinator is down when a job finishes: workerd keeps the report in
// its durable outbox and delivers it once the coordinator is back (same
// database and socket); the result is stored exactly once.
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/e2e_fixture.h"

namespace aqe2e {
namespace {

class OutboxTest : public E2eTest {
 protected:
  void RunScenario(int stop_signal) {
    const std::string profile = TimedProfile(60, 5);
    Workerd& w = AddWorker("outbox", {.slots = 1});

    const int64_t job = SubmitOne("outboxed", "sleep_ms:3000", "outbox", profile);
    std::optional<json> c = WaitRunningContainer(w, job);
    const std::string id = c->value("Id", "");

    // Coordinator unavailable while the job finishes.
    if (stop_signal == SIGSTOP) coord_->child()->Signal(SIGSTOP);
    else coord_->Kill(SIGKILL);

    // The job ends on the worker: container removed, report waiting in the outbox.
    ASSERT_TRUE(PollUntil([&] { return ContainerGone(id); }, 60000, 100))
        << Tail(w.Log());
    bool queued = PollUntil(
        [&] {
          for (const auto& f : ListDir(w.outbox_dir()))
            if (absl::EndsWith(f, ".pb")) return true;
          return false;
        },
        10000, 50);
    EXPECT_TRUE(queued) << "no report in the outbox: "
                        << ::testing::PrintToString(ListDir(w.outbox_dir())) << "\n"
                        << Tail(w.Log());

    // The coordinator comes back.
    if (stop_signal == SIGSTOP) coord_->child()->Signal(SIGCONT);
    else coord_->Start();

    json s = ctl_->WaitJobState(job, "succeeded", 60000);
    ASSERT_EQ(s["attempts"].size(), 1u) << s.dump(2);
    EXPECT_EQ(s["attempts"][0].value("outcome", ""), "succeeded") << s.dump(2);
    EXPECT_TRUE(PollUntil([&] { return ListDir(w.outbox_dir()).empty(); }, 30000, 100))
        << "outbox not emptied: " << ::testing::PrintToString(ListDir(w.outbox_dir()));

    RunResult ex = ctl_->Run({"export", "--batch", "outbox", "--format", "jsonl"});
    ASSERT_EQ(ex.exit_code, 0) << ex.Describe();
    EXPECT_EQ(std::count(ex.out.begin(), ex.out.end(), '\n'), 1) << "stored more than once?\n"
                                                                  << ex.out;
    json row = json::parse(ex.out.substr(0, ex.out.find('\n')), nullptr, false);
    ASSERT_FALSE(row.is_discarded()) << ex.out;
    EXPECT_TRUE(row["assessment"].is_object()) << row.dump(2);
    // One "succeeded" event: the report was not applied twice.
    int succeeded_events = 0;
    for (const auto& e : s["events"])
      if (e.value("kind", "") == "succeeded") ++succeeded_events;
    EXPECT_EQ(succeeded_events, 1) << s["events"].dump(2);
    EXPECT_TRUE(w.child()->Running()) << Tail(w.Log());
  }
};

TEST_F(OutboxTest, ResultIsDeliveredAfterCoordinatorRestartAndStoredOnce) {
  RunScenario(SIGKILL);
}

TEST_F(OutboxTest, ResultIsDeliveredAfterCoordinatorResumesAndStoredOnce) {
  RunScenario(SIGSTOP);
}

// The report is durable, not just retried: the coordinator is down when the
// job finishes, then workerd itself is SIGKILLed with the report still in
// its outbox. The coordinator comes back, workerd restarts (same name and
// state dir) and delivers the report from disk; the result is stored once.
TEST_F(OutboxTest, ReportSurvivesAWorkerCrashWhileTheCoordinatorIsDown) {
  const std::string profile = TimedProfile(60, 5);
  Workerd& w = AddWorker("outboxcrash", {.slots = 1});

  const int64_t job = SubmitOne("outboxed-crash", "sleep_ms:3000", "outboxcrash", profile);
  std::optional<json> c = WaitRunningContainer(w, job);
  const std::string id = c->value("Id", "");
  coord_->Kill(SIGKILL);
  ASSERT_TRUE(PollUntil([&] { return ContainerGone(id); }, 60000, 100))
      << Tail(w.Log());
  std::vector<std::string> pending;
  ASSERT_TRUE(PollUntil(
      [&] {
        pending.clear();
        for (const auto& f : ListDir(w.outbox_dir()))
          if (absl::EndsWith(f, ".pb")) pending.push_back(f);
        return !pending.empty();
      },
      10000, 50))
      << Tail(w.Log());
  w.child()->Kill();  // the report exists only on disk now
  ASSERT_EQ(ListDir(w.outbox_dir()), pending);

  coord_->Start();
  w.Start();
  json s = ctl_->WaitJobState(job, "succeeded", 60000);
  ASSERT_EQ(s["attempts"].size(), 1u) << s.dump(2);
  EXPECT_EQ(s["attempts"][0].value("outcome", ""), "succeeded") << s.dump(2);
  EXPECT_TRUE(PollUntil([&] { return ListDir(w.outbox_dir()).empty(); }, 30000, 100))
      << ::testing::PrintToString(ListDir(w.outbox_dir()));
  RunResult ex = ctl_->Run({"export", "--batch", "outboxcrash", "--format", "jsonl"});
  ASSERT_EQ(ex.exit_code, 0) << ex.Describe();
  EXPECT_EQ(std::count(ex.out.begin(), ex.out.end(), '\n'), 1) << ex.out;
}

}  // namespace
}  // namespace aqe2e
