// `assessctl logs -f JOB`: started before the job runs, it prints the
// container's output while the job is still running (streamed by workerd to
// the coordinator about once a second), every line once and in order, the
// stderr line too, and exits 0 once the job has finished.
#include <gtest/gtest.h>

#include <string>

#include "tests/e2e/e2e_fixture.h"

namespace aqe2e {
namespace {

class LogsFollowTest : public E2eTest {};

TEST_F(LogsFollowTest, FollowPrintsOutputWhileTheJobRunsAndEndsWithIt) {
  AgentLimits limits;
  limits.timeout_s = 60;
  const std::string profile = Profile(limits);
  WriteMetadata(inputs_, "ticker", "ticks:12");  // 12 lines over ~3.6 s
  auto ids = ctl_->Submit({inputs_}, Unique("follow"), profile);
  const int64_t job = ids.at("ticker");

  const std::string log = dir_->Join("follow.out");
  auto follower = Child::Spawn({AssessctlBin(), "--coordinator", coord_->address(),
                                "--token-file", coord_->operator_token_file(), "logs", "-f",
                                std::to_string(job)},
                               log);
  AddWorker("follow", {.slots = 1});

  // Live: "tick 3" is printed while the job is still running.
  ASSERT_TRUE(PollUntil([&] { return ReadFile(log).find("tick 3\n") != std::string::npos; },
                        60000, 50))
      << ReadFile(log) << Tail(coord_->Log());
  json show = ctl_->Show(job);
  EXPECT_EQ(show.value("state", ""), "running")
      << "the output arrived only after the job ended:\n" << show.dump(2);

  ASSERT_TRUE(follower->WaitExit(60000)) << "logs -f did not end with the job\n" << ReadFile(log);
  EXPECT_EQ(follower->exit_status(), 0);
  std::string out = ReadFile(log);
  size_t at = 0;
  for (int i = 0; i < 12; ++i) {
    std::string line = "tick " + std::to_string(i) + "\n";
    size_t p = out.find(line, at);
    ASSERT_NE(p, std::string::npos) << line << "missing or out of order in:\n" << out;
    EXPECT_EQ(out.find(line, p + 1), std::string::npos) << line << "printed twice:\n" << out;
    at = p;
  }
  EXPECT_NE(out.find("halfway on stderr"), std::string::npos) << out;
  EXPECT_EQ(ctl_->Show(job).value("state", ""), "succeeded");

  // After the job, logs -f prints the whole output at once and exits.
  RunResult again = ctl_->Run({"logs", "-f", std::to_string(job)}, 30000);
  EXPECT_EQ(again.exit_code, 0) << again.Describe();
  EXPECT_NE(again.out.find("tick 11\n"), std::string::npos) << again.out;
}

}  // namespace
}  // namespace aqe2e
