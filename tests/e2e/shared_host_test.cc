// Two teams on one build machine (issue 13): two workerd processes on the same
// dockerd, each with its own coordinator and state dir, never touch each
// other's containers, mounts or job directories, even with the same --name
// and the same job ids and lease tokens (each coordinator counts from 1).
// Also: two workerd processes cannot share a state dir, and a workerd started
// before its coordinator connects as soon as the coordinator is up.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/e2e_fixture.h"

namespace aqe2e {
namespace {

class SharedHostTest : public E2eTest {
 protected:
  // Every attempt of every job of `ids` on `ctl` succeeded at the first try.
  static void ExpectFirstAttemptsSucceeded(const Ctl& ctl,
                                           const std::map<std::string, int64_t>& ids,
                                           const std::string& who) {
    for (const auto& [key, id] : ids) {
      json s = ctl.Show(id);
      EXPECT_EQ(s.value("state", ""), "succeeded") << who << " " << key << ": " << s.dump(2);
      EXPECT_EQ(s["attempts"].size(), 1u) << who << " " << key << ": " << s.dump(2);
    }
  }
};

TEST_F(SharedHostTest, TwoWorkerdsOfTheSameNameNeverTouchEachOther) {
  TempDir other_dir;
  Coordinator other(other_dir.path());
  other.Start();
  Ctl other_ctl(other);
  // The same name on both: what two teams running the quick start get.
  const std::string name = Unique("e2e-shared");
  worker_names_.push_back(name);
  const std::string profile = TimedProfile(120, 5);

  workers_.push_back(std::make_unique<Workerd>(*coord_, dir_->path(), name, WorkerOptions{}));
  Workerd& a = *workers_.back();
  a.Start();
  // A's first job runs while B starts: B's start-up reap must leave it alone.
  const std::string slow_dir = dir_->Join("slow");
  std::filesystem::create_directories(slow_dir);
  WriteMetadata(slow_dir, "slow", "sleep_ms:4000");
  const int64_t slow = ctl_->Submit({slow_dir}, "slow", profile).at("slow");
  std::optional<json> c;
  ASSERT_TRUE(PollUntil([&] { return (c = RunningContainerOfJob(name, slow)).has_value(); },
                        60000, 50))
      << Tail(a.Log());
  const std::string a_container = c->value("Id", "");
  const std::string a_instance = (*c)["Labels"].value("assessq.instance", "");
  ASSERT_EQ(a_instance.size(), 16u) << c->dump(2);
  const auto a_dirs = ListDir(a.jobs_dir());
  ASSERT_EQ(a_dirs.size(), 1u);

  workers_.push_back(std::make_unique<Workerd>(other, other_dir.path(), name, WorkerOptions{}));
  Workerd& b = *workers_.back();
  b.Start();  // returns once connected: its start-up reap is done
  auto still = Docker().InspectContainer(a_container);
  ASSERT_TRUE(still.ok()) << "B's start-up reap removed A's container: "
                          << still.status().ToString();
  EXPECT_EQ(ListDir(a.jobs_dir()), a_dirs) << "A's job dir changed when B started";
  EXPECT_TRUE(absl::StrContains(ReadFile("/proc/self/mountinfo"), a.jobs_dir() + "/" + a_dirs[0]))
      << "A's output tmpfs is gone";

  // Rounds of quick jobs on both at once: the same job ids and tokens on
  // both coordinators, two slots each.
  std::set<std::string> instances_seen;
  for (int round = 0; round < 3; ++round) {
    const std::string in_a = dir_->Join(absl::StrCat("a", round));
    const std::string in_b = dir_->Join(absl::StrCat("b", round));
    std::filesystem::create_directories(in_a);
    std::filesystem::create_directories(in_b);
    for (int i = 0; i < 5; ++i) {
      WriteMetadata(in_a, absl::StrCat("d", i), "sleep_ms:300");
      WriteMetadata(in_b, absl::StrCat("d", i), "sleep_ms:300");
    }
    const std::string batch = absl::StrCat("r", round);
    auto ids_a = ctl_->Submit({in_a}, batch, profile);
    auto ids_b = other_ctl.Submit({in_b}, batch, profile);
    PollUntil(
        [&] {
          for (const auto& ct : ContainersOf(name))
            instances_seen.insert(ct["Labels"].value("assessq.instance", ""));
          return false;
        },
        1500, 100);
    ctl_->WaitBatchFinished(batch, 5, 120000);
    other_ctl.WaitBatchFinished(batch, 5, 120000);
    ExpectFirstAttemptsSucceeded(*ctl_, ids_a, "A");
    ExpectFirstAttemptsSucceeded(other_ctl, ids_b, "B");
  }
  EXPECT_EQ(ctl_->WaitJobState(slow, "succeeded", 60000).value("state", ""), "succeeded");
  EXPECT_EQ(ctl_->Show(slow)["attempts"].size(), 1u);
  // Both instances ran containers, under distinct instance labels.
  instances_seen.erase("");
  EXPECT_EQ(instances_seen.size(), 2u);
  EXPECT_TRUE(instances_seen.count(a_instance));
  b.child()->Kill();  // before its coordinator and state dir go
}

TEST_F(SharedHostTest, ASecondWorkerdOnTheSameStateDirIsRefused) {
  Workerd& a = AddWorker("statedir");
  RunResult second = aqe2e::Run({WorkerdBin(), "--coordinator", coord_->address(), "--token-file",
                          coord_->worker_token_file(), "--state-dir", a.state_dir(), "--name",
                          a.name() + "-2", "--docker-socket", DockerSocket()},
                         30000);
  EXPECT_NE(second.exit_code, 0) << second.Describe();
  EXPECT_TRUE(absl::StrContains(second.err + second.out, "another workerd is using the state dir"))
      << second.Describe();
  EXPECT_TRUE(a.child()->Running());
}

TEST_F(SharedHostTest, WorkerdStartedBeforeItsCoordinatorConnectsWhenItComes) {
  coord_->Kill(SIGTERM);
  const std::string name = Unique("e2e-early");
  worker_names_.push_back(name);
  const std::string log = dir_->Join("early.log");
  auto w = Child::Spawn({WorkerdBin(), "--coordinator", coord_->address(), "--token-file",
                         coord_->worker_token_file(), "--slots", "1", "--state-dir",
                         dir_->Join("state-early"), "--name", name, "--docker-socket",
                         DockerSocket()},
                        log);
  ASSERT_TRUE(PollUntil([&] { return absl::StrContains(ReadFile(log), "started"); }, 30000))
      << ReadFile(log);
  ASSERT_TRUE(w->Running()) << ReadFile(log);
  coord_->Start();
  WriteMetadata(inputs_, "early", "sleep_ms:10");
  const int64_t job = ctl_->Submit({inputs_}, "early", Profile()).at("early");
  json s = ctl_->WaitJobState(job, "succeeded", 60000);
  EXPECT_EQ(s["attempts"].size(), 1u) << s.dump(2);
  w->Kill();
}

}  // namespace
}  // namespace aqe2e
