// The whole path at size: every Masader dataset whose "Dialect" is "Modern
// Standard Arabic" (593 files, copied from ../shared/masader/datasets) goes
// through one real coordinatord and two real workerd processes (4 slots
// each), each job in its own hardened container running the test agent.
// Every job must succeed with a stored result (export: one JSONL line each),
// both workers must have taken part, and nothing may be left behind. The run
// time and throughput are printed (and recorded as test properties).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/e2e_fixture.h"

namespace aqe2e {
namespace {
namespace fs = std::filesystem;

class MsaE2eTest : public E2eTest {};

TEST_F(MsaE2eTest, AllModernStandardArabicDatasetsSucceedAcrossTwoWorkers) {
  const std::string catalogue = MasaderDir();
  ASSERT_TRUE(fs::is_directory(catalogue)) << "the Masader catalogue is missing: " << catalogue;
  int copied = 0;
  for (const auto& e : fs::directory_iterator(catalogue)) {
    if (e.path().extension() != ".json") continue;
    json md = json::parse(ReadFile(e.path().string()), nullptr, false);
    if (md.is_discarded() || !md.is_object()) continue;
    if (md.value("Dialect", json()).is_string() && md["Dialect"] == "Modern Standard Arabic") {
      fs::copy_file(e.path(), fs::path(inputs_) / e.path().filename());
      ++copied;
    }
  }
  ASSERT_EQ(copied, 593) << "the catalogue changed: " << copied
                         << " Modern Standard Arabic datasets";

  const std::string profile = TimedProfile(120, 10);
  Workerd& w1 = AddWorker("msa1", {.slots = 4});
  Workerd& w2 = AddWorker("msa2", {.slots = 4});

  const std::string batch = "msa";
  const int64_t t0 = NowMs();
  auto ids = ctl_->Submit({inputs_}, batch, profile);
  const int64_t t_submitted = NowMs();
  ASSERT_EQ(ids.size(), 593u);

  // Progress on stdout every ~15 s, for whoever watches the run.
  int64_t next_report = NowMs() + 15000;
  json status;
  bool finished = PollUntil(
      [&] {
        status = ctl_->Status(batch);
        const json& c = status["counts"];
        auto n = [&](const char* k) { return c.contains(k) ? c[k].get<int64_t>() : 0; };
        if (NowMs() >= next_report) {
          std::cout << "[" << (NowMs() - t0) / 1000 << " s] " << c.dump() << std::endl;
          next_report += 15000;
        }
        return n("queued") + n("leased") + n("running") == 0;
      },
      540000, 500);
  const int64_t t_done = NowMs();
  ASSERT_TRUE(finished) << "not finished within 9 minutes: " << status.dump(2);
  const double secs = (t_done - t0) / 1000.0;
  const double run_secs = (t_done - t_submitted) / 1000.0;
  std::cout << "593 datasets: submit " << (t_submitted - t0) / 1000.0 << " s, all finished "
            << secs << " s after submit began (" << 593 / secs << " jobs/s, "
            << 593 / secs * 60 << " jobs/min)" << std::endl;
  RecordProperty("total_seconds", std::to_string(secs));
  RecordProperty("run_seconds", std::to_string(run_secs));
  RecordProperty("jobs_per_second", std::to_string(593 / secs));

  EXPECT_EQ(status["counts"].value("succeeded", int64_t{0}), 593) << status.dump(2);

  RunResult ex = ctl_->Run({"export", "--batch", batch, "--format", "jsonl"}, 300000);
  ASSERT_EQ(ex.exit_code, 0) << ex.Describe();
  std::map<std::string, int> per_worker;
  std::set<std::string> keys;
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(ex.out, '\n', absl::SkipEmpty())) {
    ++lines;
    json row = json::parse(line, nullptr, false);
    ASSERT_FALSE(row.is_discarded()) << line;
    EXPECT_EQ(row.value("state", ""), "succeeded") << line;
    EXPECT_TRUE(row["assessment"].is_object()) << line;
    per_worker[row.value("worker", "")]++;
    keys.insert(row.value("dataset_key", ""));
  }
  EXPECT_EQ(lines, 593);
  EXPECT_EQ(keys.size(), 593u);
  for (const auto& [k, id] : ids) EXPECT_TRUE(keys.count(k)) << "no result for " << k;
  std::cout << "jobs per worker:";
  for (const auto& [w, n] : per_worker) std::cout << " " << w << "=" << n;
  std::cout << std::endl;
  EXPECT_GT(per_worker[w1.name()], 0) << "worker 1 took no job";
  EXPECT_GT(per_worker[w2.name()], 0) << "worker 2 took no job";
  EXPECT_EQ(per_worker[w1.name()] + per_worker[w2.name()], 593);

  EXPECT_TRUE(ContainersOf(w1.name()).empty());
  EXPECT_TRUE(ContainersOf(w2.name()).empty());
  EXPECT_TRUE(ListDir(w1.jobs_dir()).empty());
  EXPECT_TRUE(ListDir(w2.jobs_dir()).empty());
}

}  // namespace
}  // namespace aqe2e
