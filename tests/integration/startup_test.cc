// Start-up order (issue 13): assessctl, run while the coordinator is still
// starting, waits a bounded time for it (gRPC wait-for-ready) instead of
// failing; when nothing answers it says so, naming the address and how to
// start coordinatord; `assessctl health --wait` is what scripts wait with.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "tests/integration/harness.h"

namespace aqtest {
namespace {

// Runs `assessctl --coordinator ADDRESS args...` (output to `out`) before `c`
// starts, then starts it: the run must wait for it, exit 0 and print `want`.
void RunThenStart(Coordinator& c, std::vector<std::string> args, const std::string& out,
                  const std::string& want) {
  args.insert(args.begin(), {BinPath("assessctl"), "--coordinator", c.address()});
  auto ctl = Child::Spawn(args, out);
  c.Start();
  ASSERT_TRUE(ctl->WaitExit(30000));
  EXPECT_EQ(ctl->exit_status(), 0) << ReadFile(out);
  EXPECT_TRUE(absl::StrContains(ReadFile(out), want)) << ReadFile(out);
}

TEST(StartupTest, AssessctlWaitsForACoordinatorThatIsStarting) {
  TempDir dir;
  Coordinator c(dir.path());
  const std::string token = c.CreateToken("operator", "op");
  const std::string sock = c.address().substr(5);  // unix:PATH
  ASSERT_FALSE(std::filesystem::exists(sock));
  RunThenStart(c, {"--token-file", token, "--connect-timeout", "30", "-o", "json", "status"},
               dir.path() + "/status.out", "\"batches\"");
}

TEST(StartupTest, HealthWaitWaitsUntilServing) {
  TempDir dir;
  Coordinator c(dir.path());
  RunThenStart(c, {"health", "--wait", "30"}, dir.path() + "/health.out", "SERVING");
}

TEST(StartupTest, NothingAnsweringIsSaidClearly) {
  TempDir dir;
  Coordinator c(dir.path());  // never started
  const std::string token = c.CreateToken("operator", "op");
  RunResult r = Assessctl(c, token, {"--connect-timeout", "1", "status"}, 30000);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_TRUE(absl::StrContains(r.err, "nothing answers at " + c.address())) << r.Describe();
  EXPECT_TRUE(absl::StrContains(r.err, "coordinatord --db")) << r.Describe();

  RunResult h = aqtest::Run({BinPath("assessctl"), "--coordinator", c.address(), "health", "--wait", "1"},
                    30000);
  EXPECT_EQ(h.exit_code, 1) << h.Describe();
  EXPECT_TRUE(absl::StrContains(h.err, "nothing answers at " + c.address())) << h.Describe();
}

}  // namespace
}  // namespace aqtest
