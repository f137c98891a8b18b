// A job ends when the agent is done (profile "done_when": "claude_result"):
// a real workerd runs the stand-in agent, which prints Claude Code's final
// result line, writes its output, and then lingers with a background child as
// `claude -p` did when a Bash command outlived its turn. With done_when the
// worker stops it limits.done_grace_s after the result and the attempt
// succeeds; the same agent under the default (the agent's exit) runs into its
// deadline, and so does one that printed the result without writing the
// output (the output file must be in place too).
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "tests/e2e/e2e_fixture.h"

namespace aqe2e {
namespace {

class DoneWhenTest : public E2eTest {
 protected:
  std::string DoneProfile(const std::string& file, int timeout_s, bool done_when) {
    AgentLimits l;
    l.timeout_s = timeout_s;
    std::string path = Profile(l, file);
    json p = json::parse(ReadFile(path));
    if (done_when) {
      p["done_when"] = "claude_result";
      p["limits"]["done_grace_s"] = 1;
    }
    WriteFile(path, p.dump(2));
    return path;
  }
};

TEST_F(DoneWhenTest, TheAgentsResultEndsTheJobOnlyWithTheOutputInPlace) {
  std::string in_done = dir_->Join("in-done"), in_rest = dir_->Join("in-rest");
  std::filesystem::create_directories(in_done);
  std::filesystem::create_directories(in_rest);
  WriteMetadata(in_done, "dw-linger", "done_linger");
  WriteMetadata(in_rest, "dw-no-output", "done_linger_no_output");
  std::string in_exit = dir_->Join("in-exit");
  std::filesystem::create_directories(in_exit);
  WriteMetadata(in_exit, "dw-linger-exit", "done_linger");

  AddWorker("done", {.slots = 3});
  const std::vector<std::string> once = {"--max-attempts", "agent=1", "--max-attempts", "infra=1"};
  // A generous deadline for the one that must end early, short ones for the
  // two that must not.
  auto done = ctl_->Submit({in_done}, "dw-done", DoneProfile("p-done.json", 90, true), once);
  auto rest = ctl_->Submit({in_rest}, "dw-rest", DoneProfile("p-rest.json", 8, true), once);
  auto exit = ctl_->Submit({in_exit}, "dw-exit", DoneProfile("p-exit.json", 8, false), once);
  const int64_t t0 = NowMs();
  ctl_->WaitBatchFinished("dw-done", 1, 60000);
  const int64_t done_ms = NowMs() - t0;
  ctl_->WaitBatchFinished("dw-rest", 1, 60000);
  ctl_->WaitBatchFinished("dw-exit", 1, 60000);

  json s = ctl_->Show(done.at("dw-linger"));
  ASSERT_EQ(s.value("state", ""), "succeeded") << s.dump(2);
  ASSERT_EQ(s["attempts"].size(), 1u);
  const json& a = s["attempts"][0];
  EXPECT_EQ(a["details"].value("stopped_after_done_s", -1), 1) << a.dump(2);
  EXPECT_EQ(a["details"].value("exit_code_after_stop", 0), 137) << a.dump(2);  // the worker's SIGKILL
  EXPECT_LT(done_ms, 30000) << "the job was not ended early";
  EXPECT_GE(a["details"].value("duration_ms", int64_t{0}), 1000) << "stopped before the grace period";
  std::cout << "done_when: the lingering agent's job ended after " << done_ms << " ms (container "
            << a["details"].value("duration_ms", int64_t{0}) << " ms)\n";

  // The result line alone is not enough: no output, no early stop.
  json r = ctl_->Show(rest.at("dw-no-output"));
  EXPECT_EQ(r.value("state", ""), "needs_attention") << r.dump(2);
  ASSERT_EQ(r["attempts"].size(), 1u);
  EXPECT_TRUE(absl::StrContains(r["attempts"][0].value("error", ""), "timeout")) << r.dump(2);
  EXPECT_FALSE(r["attempts"][0]["details"].contains("stopped_after_done_s")) << r.dump(2);

  // Without done_when the same agent holds its job to the deadline.
  json e = ctl_->Show(exit.at("dw-linger-exit"));
  EXPECT_EQ(e.value("state", ""), "needs_attention") << e.dump(2);
  ASSERT_EQ(e["attempts"].size(), 1u);
  EXPECT_TRUE(absl::StrContains(e["attempts"][0].value("error", ""), "timeout")) << e.dump(2);
}

}  // namespace
}  // namespace aqe2e
