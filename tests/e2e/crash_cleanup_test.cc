// workerd dies (SIGKILL) while a job's container runs. Restarted with the
// same --name and --state-dir, it removes what the crashed run left (the
// container and the job dir with its tmpfs) before taking work; the job's
// lease, no longer renewed, expires (coordinator --lease-seconds 2) and the
// job runs again, on the restarted worker.
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/e2e_fixture.h"

namespace aqe2e {
namespace {

class CrashCleanupTest : public E2eTest {
 protected:
  void SetUp() override {
    lease_seconds_ = 2;
    E2eTest::SetUp();
  }
};

TEST_F(CrashCleanupTest, RestartReapsTheOldContainerAndTheJobRunsAgain) {
  const std::string profile = TimedProfile(300, 10);
  Workerd& w = AddWorker("crash", {.slots = 1});

  const int64_t job = SubmitOne("crashy", "hang", "crash", profile);
  std::optional<json> c = WaitRunningContainer(w, job);
  const std::string old_id = c->value("Id", "");
  const std::string old_token = (*c)["Labels"].value("assessq.token", "");
  const std::string old_dir = absl::StrCat(job, "-", old_token);
  ASSERT_FALSE(old_token.empty()) << c->dump(2);
  ASSERT_EQ(ListDir(w.jobs_dir()), std::vector<std::string>{old_dir});

  w.child()->Kill();  // SIGKILL: nothing gets cleaned up
  // What the crash left: the container still runs, the job dir is there.
  auto still = Docker().InspectContainer(old_id);
  ASSERT_TRUE(still.ok()) << still.status().ToString();
  EXPECT_TRUE((*still)["State"].value("Running", false));

  w.Start();  // same name, same state dir; returns once "started" and connected
  // Start-up reaped before taking any lease.
  auto gone = Docker().InspectContainer(old_id);
  EXPECT_TRUE(!gone.ok() && absl::IsNotFound(gone.status()))
      << "the crashed run's container is still there after the restart: "
      << (gone.ok() ? (*gone)["State"].dump() : gone.status().ToString());
  for (const auto& d : ListDir(w.jobs_dir()))
    EXPECT_NE(d, old_dir) << "the crashed run's job dir is still there";
  EXPECT_FALSE(absl::StrContains(ReadFile("/proc/self/mountinfo"), w.jobs_dir() + "/" + old_dir))
      << "the crashed run's output tmpfs is still mounted";

  // The lease expires (2 s) and the job runs again, on the restarted worker,
  // in a new container with a new lease token.
  std::optional<json> again;
  ASSERT_TRUE(PollUntil(
      [&] {
        again = RunningContainerOfJob(w.name(), job);
        return again && (*again)["Labels"].value("assessq.token", "") != old_token;
      },
      60000, 100))
      << "the job did not run again\n" << ctl_->Show(job).dump(2) << "\n" << Tail(w.Log());
  EXPECT_NE(again->value("Id", ""), old_id);

  json s = ctl_->WaitJobState(job, "running", 30000);
  ASSERT_GE(s["attempts"].size(), 2u) << s.dump(2);
  const json& first = s["attempts"][0];
  EXPECT_EQ(first.value("outcome", ""), "expired") << first.dump(2);
  EXPECT_EQ(first.value("failure_class", ""), "infra") << first.dump(2);
  const json& last = s["attempts"][s["attempts"].size() - 1];
  EXPECT_EQ(last.value("worker", ""), w.name());
  EXPECT_EQ(std::to_string(last.value("attempt_id", int64_t{0})),
            (*again)["Labels"].value("assessq.token", ""));

  // Exactly one container of this worker exists now: the new one.
  json all = ContainersOf(w.name());
  EXPECT_EQ(all.size(), 1u) << all.dump(2);

  ASSERT_EQ(ctl_->Run({"cancel", std::to_string(job)}).exit_code, 0);
  EXPECT_TRUE(PollUntil([&] { return ContainersOf(w.name()).empty(); }, 20000));
}

}  // namespace
}  // namespace aqe2e
