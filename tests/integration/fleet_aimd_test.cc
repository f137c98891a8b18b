// Fleet-wide limits through the real coordinatord, assessctl and simulated
// workers (assessq-simworker --model-url), against a stand-in model provider
// (standin_provider.py, on loopback) that answers 429 with retry-after once
// more than `capacity` calls are in flight:
//  - AIMD: 16 slots against a capacity of 4: the coordinator cuts the
//    provider's limit (status shows the cut and why), never leases the
//    provider's jobs while a retry-after is running (checked on the event log
//    in the SQLite file), keeps the 429s far below what 16 unthrottled slots
//    cause, and raises the limit again while calls succeed;
//  - a batch's --max-running and a provider's max are never exceeded (the
//    provider's own count of calls in flight), and a batch's --start-rate
//    spaces its leases (coordinator clock, event log).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/support/sqlite_reader.h"

namespace aqtest {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// Every row of `sql` on the coordinator's database, as integers.
std::vector<std::vector<int64_t>> Rows(const std::string& db_path, const std::string& sql) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& row : SqliteReader(db_path).Rows(sql)) {
    std::vector<int64_t> ints;
    for (const auto& v : row) ints.push_back(v == "NULL" ? 0 : std::stoll(v));
    out.push_back(std::move(ints));
  }
  return out;
}

class FleetLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    coord_ = std::make_unique<Coordinator>(dir_.path());
    op_ = coord_->CreateToken("operator", "op");
    wk_ = coord_->CreateToken("worker", "wk");
    coord_->Start();
    std::string port_file = dir_.Join("provider.port");
    provider_ = Child::Spawn({"/usr/bin/python3", std::string(TEST_SOURCE_DIR) + "/standin_provider.py",
                              "--port-file", port_file},
                             dir_.Join("provider.log"));
    ASSERT_TRUE(PollUntil([&] { return fs::exists(port_file); }, 15000))
        << Tail(dir_.Join("provider.log"));
    base_ = "http://127.0.0.1:" + ReadFile(port_file);
    WriteFile(dir_.Join("profile.json"), R"({"provider": "standin"})");
  }

  void StartWorkers(int n, int slots) {
    for (int i = 0; i < n; ++i) {
      std::string name = "sim-" + std::to_string(workers_.size());
      workers_.push_back(Child::Spawn(
          {BinPath("assessq-simworker"), "--coordinator", coord_->address(), "--token-file", wk_,
           "--name", name, "--slots", std::to_string(slots), "--work-ms", "0", "--model-url",
           base_ + "/v1/messages"},
          dir_.Join(name + ".log")));
    }
  }

  json Provider(const std::string& path, const json& body = nullptr) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "--noproxy", "*", "-m", "10"};
    if (!body.is_null()) {
      argv.insert(argv.end(), {"-X", "POST", "-d", body.dump()});
    }
    argv.push_back(base_ + path);
    auto r = aqtest::Run(argv, 15000);
    if (r.exit_code != 0) throw std::runtime_error("stand-in provider: " + r.Describe());
    return json::parse(r.out);
  }

  // Copies the first `n` Masader files into a folder of their own.
  std::string Inputs(const std::string& name, int n, int skip = 0) {
    std::string in = dir_.Join(name);
    fs::create_directories(in);
    std::vector<fs::path> all;
    for (const auto& e : fs::directory_iterator(MasaderDir())) all.push_back(e.path());
    std::sort(all.begin(), all.end());
    for (int i = skip; i < skip + n; ++i) fs::copy_file(all.at(i), fs::path(in) / all[i].filename());
    return in;
  }

  void Submit(const std::string& in, const std::string& batch,
              const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"submit", in, "--batch", batch, "--profile",
                                     dir_.Join("profile.json"), "--max-attempts",
                                     "model_api=100", "-o", "json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = Assessctl(*coord_, op_, args);
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }

  json Status(const std::string& batch) {
    auto r = Assessctl(*coord_, op_, {"status", "--batch", batch, "-o", "json"});
    if (r.exit_code != 0) throw std::runtime_error(r.Describe());
    return JsonOut(r);
  }

  int64_t Succeeded(const json& st) { return st["counts"].value("succeeded", int64_t{0}); }

  TempDir dir_;
  std::unique_ptr<Coordinator> coord_;
  std::string op_, wk_, base_;
  std::unique_ptr<Child> provider_;
  std::vector<std::unique_ptr<Child>> workers_;
};

TEST_F(FleetLimitsTest, ModelApiPushbackCutsTheFleetAndItRecovers) {
  constexpr int kJobs = 120;
  Provider("/control", {{"capacity", 4}, {"hold_ms", 150}, {"retry_after", 1.0}});
  Submit(Inputs("in1", kJobs), "aimd");
  StartWorkers(2, 8);  // 16 slots against a provider that takes 4 at once

  int min_limit = 1 << 30;
  std::string cut_reason;
  bool done = PollUntil(
      [&] {
        json st = Status("aimd");
        const json& p = st["provider_limit"];
        int lim = p.value("current_limit", 0);
        if (lim > 0 && lim < min_limit) {
          min_limit = lim;
          cut_reason = p.value("reason", "");
        }
        return Succeeded(st) == kJobs;
      },
      180000, 200);
  ASSERT_TRUE(done) << Status("aimd").dump(2) << Tail(coord_->log());
  json stats = Provider("/stats");
  int ok = stats["ok"], limited = stats["limited"];
  // The stand-in really pushed back, and the coordinator cut the fleet for it.
  EXPECT_GT(limited, 0) << stats.dump();
  EXPECT_LE(min_limit, 8) << "limit never cut; last status:\n" << Status("aimd").dump(2);
  EXPECT_NE(cut_reason.find("model_api"), std::string::npos) << cut_reason;
  EXPECT_NE(cut_reason.find("HTTP 429"), std::string::npos) << cut_reason;
  // Unthrottled, 16 slots against 4 draw about three 429s per success; with
  // the fleet held to the provider's pace they stay well below one per success.
  EXPECT_LT(limited, ok) << stats.dump();
  EXPECT_EQ(ok, kJobs) << stats.dump();

  // retry-after is honoured fleet-wide: after each model_api failure the
  // coordinator leased none of the provider's jobs for the next second.
  auto fails = Rows(coord_->db(),
                    "SELECT ts, job_id FROM events WHERE kind='failed' AND detail LIKE 'model_api:%' "
                    "ORDER BY ts");
  auto leases = Rows(coord_->db(), "SELECT ts, job_id FROM events WHERE kind='leased' ORDER BY ts");
  ASSERT_FALSE(fails.empty());
  int violations = 0;
  std::string which;
  for (const auto& f : fails)
    for (const auto& l : leases)
      // (The hold starts at the failure's clock reading, the event's a
      // millisecond or two later.)
      if (l[0] > f[0] && l[0] < f[0] + 1000 - 5) {
        ++violations;
        which += " failure of job " + std::to_string(f[1]) + " at " + std::to_string(f[0]) +
                 " then job " + std::to_string(l[1]) + " leased at " + std::to_string(l[0]) + ";";
      }
  EXPECT_EQ(violations, 0) << fails.size() << " model_api failures, " << leases.size()
                           << " leases:" << which;

  // Additive increase: with the provider no longer limiting, the limit rises
  // back (to the level before the first cut, where the cut is forgotten).
  Provider("/control", {{"capacity", 1000}, {"hold_ms", 20}});
  Submit(Inputs("in2", 200, kJobs), "aimd-2");
  ASSERT_TRUE(PollUntil([&] { return Succeeded(Status("aimd-2")) == 200; }, 180000, 200))
      << Status("aimd-2").dump(2);
  json after = Status("aimd-2")["provider_limit"];
  int final_limit = after.value("current_limit", 0);
  EXPECT_TRUE(final_limit == 0 || final_limit > min_limit) << after.dump(2);

  // The human status names the provider's limit; `limits -o json` lists it.
  auto human = Assessctl(*coord_, op_, {"limits"});
  EXPECT_EQ(human.exit_code, 0) << human.Describe();
  EXPECT_NE(human.out.find("standin"), std::string::npos) << human.out;
}

TEST_F(FleetLimitsTest, MaxRunningAndStartRateHoldAcrossWorkers) {
  Provider("/control", {{"capacity", 1000}, {"hold_ms", 200}});
  StartWorkers(2, 6);
  // A batch maximum of 3 over 12 slots.
  Submit(Inputs("in1", 30), "capped", {"--max-running", "3"});
  ASSERT_TRUE(PollUntil([&] { return Succeeded(Status("capped")) == 30; }, 120000, 200));
  json stats = Provider("/stats");
  EXPECT_LE(stats["max_inflight"].get<int>(), 3) << stats.dump();
  EXPECT_GE(stats["max_inflight"].get<int>(), 2) << "the limit, not the workers, held it";
  json lim = Status("capped")["limit"];
  EXPECT_EQ(lim["max_running"], 3);
  EXPECT_EQ(lim["running"], 0);

  // A provider maximum of 2, set while nothing runs, shared by two batches.
  auto set = Assessctl(*coord_, op_,
                       {"limits", "--provider", "standin", "--max-running", "2", "-o", "json"});
  ASSERT_EQ(set.exit_code, 0) << set.Describe();
  Provider("/control", {{"capacity", 1000}, {"hold_ms", 200}});
  // (A new stand-in count: read the high-water mark relative to now.)
  Submit(Inputs("in2", 12, 30), "shared-a");
  Submit(Inputs("in3", 12, 42), "shared-b");
  int max_seen = 0;
  ASSERT_TRUE(PollUntil(
      [&] {
        for (const auto& b : {"shared-a", "shared-b"}) {
          json s = Status(b);
          max_seen = std::max<int>(max_seen, s["provider_limit"].value("running", 0));
        }
        return Succeeded(Status("shared-a")) == 12 && Succeeded(Status("shared-b")) == 12;
      },
      120000, 100));
  EXPECT_LE(max_seen, 2);
  // The event log is exact: never more than 2 of the provider's jobs leased at once.
  auto spans = Rows(coord_->db(),
                    "SELECT a.leased_at, coalesce(a.ended_at, a.leased_at) FROM attempts a "
                    "JOIN jobs j ON j.id=a.job_id JOIN batches b ON b.id=j.batch_id "
                    "WHERE b.name IN ('shared-a','shared-b')");
  ASSERT_EQ(spans.size(), 24u);
  int peak = 0;
  for (const auto& s : spans) {
    int at = 0;
    for (const auto& o : spans)
      if (o[0] <= s[0] && s[0] < o[1]) ++at;
    peak = std::max(peak, at);
  }
  EXPECT_LE(peak, 2);
  ASSERT_EQ(Assessctl(*coord_, op_, {"limits", "--provider", "standin", "--max-running", "0"})
                .exit_code,
            0);

  // A start rate of 120/min: a burst of 2, then one every 500 ms.
  Submit(Inputs("in4", 10, 54), "paced", {"--start-rate", "120"});
  ASSERT_TRUE(PollUntil([&] { return Succeeded(Status("paced")) == 10; }, 120000, 200));
  auto ts = Rows(coord_->db(),
                 "SELECT e.ts FROM events e JOIN batches b ON b.id=e.batch_id "
                 "WHERE b.name='paced' AND e.kind='leased' ORDER BY e.ts");
  ASSERT_EQ(ts.size(), 10u);
  for (size_t i = 2; i < ts.size(); ++i)
    EXPECT_GE(ts[i][0] - ts[0][0], static_cast<int64_t>(i - 1) * 500 - 5)
        << "lease " << i << " came too soon";
}

TEST_F(FleetLimitsTest, BadLimitsAreRefusedWithTheFieldNamed) {
  auto both = Assessctl(*coord_, op_, {"limits", "--batch", "x", "--provider", "y"});
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.err.find("not both"), std::string::npos) << both.Describe();
  auto none = Assessctl(*coord_, op_, {"limits", "--max-running", "3"});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("--batch or --provider"), std::string::npos) << none.Describe();
  auto missing = Assessctl(*coord_, op_, {"limits", "--batch", "nope", "--max-running", "3"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("no batch named nope"), std::string::npos) << missing.Describe();
  auto negative = Assessctl(*coord_, op_, {"limits", "--provider", "p", "--max-running", "-1"});
  EXPECT_NE(negative.exit_code, 0);
  EXPECT_NE(negative.err.find("max-running"), std::string::npos) << negative.Describe();
}

}  // namespace
}  // namespace aqtest
