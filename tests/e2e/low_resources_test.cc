// A worker whose host is short of disk (its policy asks for more free space
// than there is) says Hello with capacity 0 and takes no lease; the job it
// could not take runs on a healthy worker.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "tests/e2e/e2e_fixture.h"

namespace aqe2e {
namespace {

class LowResourcesTest : public E2eTest {};

TEST_F(LowResourcesTest, ShortOfDiskTakesNoLeaseAndTheJobRunsElsewhere) {
  const std::string policy = dir_->Join("short-policy.json");
  {
    std::ofstream(policy) << R"({"allowed_images": ["assessq-*"], "min_free_disk_mb": 1073741824})";
  }
  Workerd& starved = AddWorker("starved", {.slots = 2, .extra_args = {"--policy", policy}});
  auto entry = [&](const std::string& name) {
    for (const auto& w : ctl_->Workers())
      if (w.value("name", "") == name) return w;
    return json::object();
  };
  ASSERT_TRUE(PollUntil([&] { return entry(starved.name()).value("slots", -1) == 0; }, 10000, 50))
      << entry(starved.name()).dump() << "\n" << Tail(starved.Log());
  EXPECT_TRUE(absl::StrContains(starved.Log(), "short of resources")) << Tail(starved.Log());

  WriteMetadata(inputs_, "needs-a-healthy-host", "valid");
  const int64_t job = ctl_->Submit({inputs_}, "lowres", Profile(AgentLimits{})).at("needs-a-healthy-host");
  Workerd& healthy = AddWorker("healthy", {.slots = 1});
  ASSERT_TRUE(PollUntil([&] { return ctl_->Show(job).value("state", "") == "succeeded"; }, 60000, 50))
      << ctl_->Show(job).dump(2) << "\n" << Tail(healthy.Log());
  json s = ctl_->Show(job);
  ASSERT_EQ(s["attempts"].size(), 1u) << s.dump(2);
  EXPECT_EQ(s["attempts"][0].value("worker", ""), healthy.name()) << s.dump(2);
  EXPECT_TRUE(ContainersOf(starved.name()).empty());
}

}  // namespace
}  // namespace aqe2e
