// SIGTERM to workerd drains it: no new leases, the running job finishes and
// is stored, workerd exits 0. A second SIGTERM stops the running container
// and hands the job back (queued again, attempt outcome "released", no
// attempt used).
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/e2e_fixture.h"

namespace aqe2e {
namespace {

class DrainTest : public E2eTest {
 protected:
  json WorkerEntry(const std::string& name) {
    for (const auto& w : ctl_->Workers())
      if (w.value("name", "") == name) return w;
    return json::object();
  }
};

TEST_F(DrainTest, FirstSigtermLetsTheRunningJobFinishAndTakesNoNewLeases) {
  const std::string profile = TimedProfile(60, 5);
  std::string a_dir = dir_->Join("a"), b_dir = dir_->Join("b");
  std::filesystem::create_directories(a_dir);
  std::filesystem::create_directories(b_dir);
  WriteMetadata(a_dir, "drain-running", "sleep_ms:3000");
  WriteMetadata(b_dir, "drain-later", "valid");
  Workerd& w = AddWorker("drain", {.slots = 2});

  const int64_t a = ctl_->Submit({a_dir}, "drain", profile).at("drain-running");
  std::optional<json> c = WaitRunningContainer(w, a);

  w.child()->Signal(SIGTERM);
  // The worker tells the coordinator it takes nothing more (capacity 0).
  ASSERT_TRUE(PollUntil([&] { return WorkerEntry(w.name()).value("slots", -1) == 0; }, 10000, 50))
      << WorkerEntry(w.name()).dump() << "\n" << Tail(w.Log());
  // A job submitted now has a free slot on paper, but must not be leased.
  const int64_t b = ctl_->Submit({b_dir}, "drain", profile).at("drain-later");

  ASSERT_TRUE(w.child()->WaitExit(60000)) << "workerd did not exit after draining\n" << Tail(w.Log());
  EXPECT_EQ(w.child()->exit_status(), 0) << Tail(w.Log());

  json sa = ctl_->Show(a);
  EXPECT_EQ(sa.value("state", ""), "succeeded") << sa.dump(2);
  ASSERT_EQ(sa["attempts"].size(), 1u) << sa.dump(2);
  EXPECT_EQ(sa["attempts"][0].value("outcome", ""), "succeeded");
  RunResult ex = ctl_->Run({"export", "--batch", "drain", "--format", "jsonl"});
  ASSERT_EQ(ex.exit_code, 0) << ex.Describe();
  json row = json::parse(ex.out.substr(0, ex.out.find('\n')), nullptr, false);
  ASSERT_FALSE(row.is_discarded()) << ex.out;
  EXPECT_EQ(row.value("job_id", int64_t{0}), a);
  EXPECT_TRUE(row["assessment"].is_object()) << row.dump(2);
  EXPECT_EQ(std::count(ex.out.begin(), ex.out.end(), '\n'), 1) << ex.out;

  json sb = ctl_->Show(b);
  EXPECT_EQ(sb.value("state", ""), "queued") << sb.dump(2);
  EXPECT_TRUE(sb["attempts"].empty()) << "the draining worker took a new lease: " << sb.dump(2);
  EXPECT_TRUE(ContainersOf(w.name()).empty());
  EXPECT_TRUE(ListDir(w.jobs_dir()).empty());
  EXPECT_TRUE(ListDir(w.outbox_dir()).empty()) << "undelivered reports left";
}

TEST_F(DrainTest, SecondSigtermStopsTheContainerAndHandsTheJobBack) {
  const std::string profile = TimedProfile(120, 5);
  Workerd& w = AddWorker("drainhard", {.slots = 1});

  // Long enough that only the second SIGTERM can end it in time.
  const int64_t job = SubmitOne("drain-hard", "sleep_ms:60000", "drainhard", profile);
  std::optional<json> c = WaitRunningContainer(w, job);
  const std::string id = c->value("Id", "");
  ctl_->WaitJobState(job, "running", 30000);

  w.child()->Signal(SIGTERM);
  ASSERT_TRUE(PollUntil([&] { return absl::StrContains(w.Log(), "draining"); }, 10000, 20))
      << Tail(w.Log());
  w.child()->Signal(SIGTERM);

  ASSERT_TRUE(w.child()->WaitExit(30000)) << "workerd did not exit after the second SIGTERM\n"
                                          << Tail(w.Log());
  EXPECT_EQ(w.child()->exit_status(), 0) << Tail(w.Log());
  auto in = Docker().InspectContainer(id);
  EXPECT_TRUE(!in.ok() && absl::IsNotFound(in.status()))
      << "the running container was not removed: "
      << (in.ok() ? (*in)["State"].dump() : in.status().ToString());

  json s = ctl_->Show(job);
  EXPECT_EQ(s.value("state", ""), "queued") << s.dump(2);
  // `show` replaces the attempt count by the attempt list; `list` has the count.
  json listed = ctl_->Json({"list", "--batch", "drainhard"});
  ASSERT_EQ(listed.size(), 1u) << listed.dump(2);
  EXPECT_EQ(listed[0].value("attempts", -1), 0)
      << "handing the job back used an attempt: " << listed.dump(2);
  ASSERT_EQ(s["attempts"].size(), 1u) << s.dump(2);
  EXPECT_EQ(s["attempts"][0].value("outcome", ""), "released") << s.dump(2);
  EXPECT_EQ(s["attempts"][0].value("failure_class", "x"), "") << s.dump(2);
  EXPECT_TRUE(ContainersOf(w.name()).empty());
  EXPECT_TRUE(ListDir(w.jobs_dir()).empty());
  EXPECT_TRUE(ListDir(w.outbox_dir()).empty()) << "the release was not delivered";
}

// `assessctl workers drain NAME` then `assessctl workers undrain NAME`: the
// worker should take leases again. The coordinator's Drain notice makes
// workerd call its own Worker::Drain() (the SIGTERM drain: draining_ = true,
// capacity 0, never undone), and undrain sends the worker nothing, so the
// worker keeps announcing 0 slots and never takes a lease again until it is
// restarted.
TEST_F(DrainTest, UndrainAfterOperatorDrainLeasesToTheWorkerAgain) {
  const std::string profile = TimedProfile(60, 5);
  WriteMetadata(inputs_, "after-undrain", "valid");
  Workerd& w = AddWorker("undrain", {.slots = 2});

  RunResult d = ctl_->Run({"workers", "drain", w.name()});
  ASSERT_EQ(d.exit_code, 0) << d.Describe();
  ASSERT_TRUE(PollUntil([&] { return WorkerEntry(w.name()).value("draining", false); }, 10000))
      << WorkerEntry(w.name()).dump();
  // Let the notice reach the worker (it logs it) before undraining.
  ASSERT_TRUE(PollUntil([&] { return absl::StrContains(w.Log(), "asks this worker to drain"); },
                        10000, 50))
      << Tail(w.Log());
  RunResult u = ctl_->Run({"workers", "undrain", w.name()});
  ASSERT_EQ(u.exit_code, 0) << u.Describe();

  const int64_t job = ctl_->Submit({inputs_}, "undrain", profile).at("after-undrain");
  json s;
  bool done = PollUntil(
      [&] {
        s = ctl_->Show(job);
        return s.value("state", "") == "succeeded";
      },
      30000, 200);
  EXPECT_TRUE(done) << "the undrained worker took no lease in 30 s; coordinator sees: "
                    << WorkerEntry(w.name()).dump() << "\n"
                    << s.dump(2);
  EXPECT_TRUE(w.child()->Running());
}

}  // namespace
}  // namespace aqe2e
