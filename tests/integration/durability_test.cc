// Durability: the real coordinatord (1 s leases) and simulated workers run
// ~400 jobs while the coordinator is SIGKILLed at random moments (seeded,
// printed; set ASSESSQ_DURABILITY_SEED to replay) and restarted on the same
// database and socket, and one worker is SIGKILLed mid-run and replaced.
// Once every job is terminal, the SQLite file is checked directly: one
// current job per dataset, every job succeeded, exactly one stored result per
// job from a succeeded attempt, nothing left leased or running, every result
// a worker saw acknowledged stored under its token, attempt numbers 1..n,
// and the event log agreeing with the attempts.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/support/sqlite_reader.h"

namespace aqtest {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kJobs = 400;
constexpr int kMinKills = 10;
constexpr int kMaxKills = 16;
constexpr int kDeadlineMs = 120000;

using Sqlite = SqliteReader;

std::string Dump(const std::vector<std::vector<std::string>>& rows, size_t max = 20) {
  return DumpRows(rows, max);
}

struct Ack {
  int64_t job, token;
  std::string what, worker;
};

std::vector<Ack> ReadAcks(const std::string& path, const std::string& worker) {
  std::vector<Ack> out;
  std::istringstream in(ReadFile(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream ls(line);
    Ack a{0, 0, "", worker};
    // A SIGKILLed worker may leave a torn last line; fflush per line makes
    // that unlikely, and a torn line cannot parse into three fields.
    if (ls >> a.job >> a.token >> a.what) out.push_back(a);
  }
  return out;
}

TEST(DurabilityTest, CoordinatorAndWorkerKillsLoseNothing) {
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("ASSESSQ_DURABILITY_SEED"); s && *s) seed = std::stoull(s);
  std::printf("[durability] seed %llu (replay: ASSESSQ_DURABILITY_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);

  TempDir dir;
  CoordinatorOptions opt;
  opt.lease_seconds = 1;
  Coordinator coord(dir.path(), opt);
  const std::string op = coord.CreateToken("operator", "ops");
  const std::string wk = coord.CreateToken("worker", "workers");
  coord.Start();

  const std::string in = dir.Join("in");
  fs::create_directories(in);
  std::set<std::string> keys;
  for (int i = 0; i < kJobs; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "ds-%04d", i);
    keys.insert(name);
    WriteFile(in + "/" + name + ".json", json{{"Name", std::string("dataset ") + name}}.dump());
  }
  auto sub = Assessctl(coord, op,
                       {"submit", in, "--batch", "dur", "--max-attempts", "agent=20",
                        "--max-attempts", "infra=20", "-o", "json"},
                       120000);
  ASSERT_EQ(sub.exit_code, 0) << sub.Describe();
  ASSERT_EQ(JsonOut(sub)["queued"], kJobs);

  std::vector<std::unique_ptr<Child>> workers;
  std::vector<std::pair<std::string, std::string>> acks;  // (worker, ack log)
  auto start_worker = [&](const std::string& name, int slots) {
    std::string ack = dir.Join(name + ".acks");
    acks.push_back({name, ack});
    workers.push_back(Child::Spawn(
        {BinPath("assessq-simworker"), "--coordinator", coord.address(), "--token-file", wk,
         "--name", name, "--slots", std::to_string(slots), "--work-ms", "150", "--fail-rate",
         "0.1", "--ack-log", ack},
        dir.Join(name + ".log")));
    return workers.back().get();
  };
  std::uniform_int_distribution<int> slots_dist(2, 4);
  Child* sim_a = start_worker("sim-a", slots_dist(rng));
  start_worker("sim-b", slots_dist(rng));

  auto status = [&]() -> json {
    json j;
    RunResult last;
    bool ok = PollUntil(
        [&] {
          last = Assessctl(coord, op, {"status", "--batch", "dur", "-o", "json"}, 30000);
          if (last.exit_code != 0) return false;
          j = JsonOut(last);
          return true;
        },
        30000, 100);
    if (!ok) throw std::runtime_error("status never answered: " + last.Describe());
    return j;
  };
  auto terminal = [](const json& st) {
    const auto& c = st["counts"];
    return c["succeeded"].get<int64_t>() + c["needs_attention"].get<int64_t>() +
               c["cancelled"].get<int64_t>() ==
           kJobs;
  };
  auto brief = [](const json& st) {
    const auto& c = st["counts"];
    std::ostringstream o;
    o << "queued=" << c["queued"] << " leased=" << c["leased"] << " running=" << c["running"]
      << " succeeded=" << c["succeeded"] << " needs_attention=" << c["needs_attention"];
    return o.str();
  };

  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now() - t0)
        .count();
  };
  std::uniform_int_distribution<int> pause_ms(150, 700);
  std::bernoulli_distribution coin(0.2);
  int kills = 0;
  bool worker_killed = false;
  int held_by_dead = -1;
  json st;
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    st = status();
    if (terminal(st)) break;
    ASSERT_LT(elapsed_ms(), kDeadlineMs) << "jobs not terminal after " << kDeadlineMs
                                         << " ms: " << brief(st) << "\n"
                                         << Tail(coord.log());
    // The first kMinKills kills come at once (a crash loop, faster than the
    // lease period); later ones at random moments through the rest of the run.
    if (kills >= kMaxKills || (kills >= kMinKills && !coin(rng))) continue;
    coord.Kill();
    ++kills;
    std::printf("[durability] +%5.1fs kill #%d of coordinatord (%s)\n", elapsed_ms() / 1000.0,
                kills, brief(st).c_str());
    std::fflush(stdout);
    coord.Start();
    if (kills == 4 && !worker_killed) {
      // Kill sim-a while it holds leases, then replace it.
      json ws;
      auto sim_a_in_use = [&]() -> int {
        auto r = Assessctl(coord, op, {"workers", "-o", "json"}, 30000);
        if (r.exit_code != 0) return -1;
        ws = JsonOut(r);
        for (const auto& w : ws)
          if (w["name"] == "sim-a") return w["in_use"].get<int>();
        return -1;
      };
      ASSERT_TRUE(PollUntil([&] { return sim_a_in_use() >= 2; }, 30000, 20))
          << "sim-a never held two leases: " << ws.dump();
      sim_a->Kill(SIGKILL);
      worker_killed = true;
      // Leases the dead worker still holds (a completion it sent just before
      // dying may land after the first look; by the second it has).
      sim_a_in_use();
      held_by_dead = sim_a_in_use();
      start_worker("sim-c", slots_dist(rng));
      std::printf("[durability] +%5.1fs SIGKILLed sim-a holding %d lease(s), started sim-c\n",
                  elapsed_ms() / 1000.0, held_by_dead);
      std::fflush(stdout);
    }
  }
  std::printf("[durability] all %d jobs terminal after %.1fs and %d coordinator kills: %s\n",
              kJobs, elapsed_ms() / 1000.0, kills, brief(st).c_str());
  std::fflush(stdout);
  EXPECT_GE(kills, kMinKills) << "the jobs finished before " << kMinKills
                              << " kills; slow the workers down";
  EXPECT_TRUE(worker_killed);
  EXPECT_EQ(st["counts"]["succeeded"], kJobs) << brief(st);

  // Quiesce: workers first (their ack logs are flushed per line), then the
  // coordinator, which must shut down cleanly.
  for (auto& w : workers)
    if (w->Running()) EXPECT_TRUE(w->Terminate(15000)) << Tail(w->log_path());
  ASSERT_NO_THROW(coord.Stop());

  Sqlite db(coord.db());
  EXPECT_EQ(db.Rows("PRAGMA integrity_check"), (std::vector<std::vector<std::string>>{{"ok"}}));
  const int64_t batch = db.Int("SELECT id FROM batches WHERE name='dur'");

  // One current job per submitted dataset, and no other jobs.
  auto current = db.Rows(
      "SELECT dataset_key, count(*) FROM jobs WHERE batch_id=? AND superseded_by IS NULL "
      "GROUP BY dataset_key",
      {batch});
  std::set<std::string> got;
  for (const auto& r : current) {
    got.insert(r[0]);
    EXPECT_EQ(r[1], "1") << "dataset " << r[0] << " has " << r[1] << " current jobs";
  }
  EXPECT_EQ(got, keys);
  EXPECT_EQ(db.Int("SELECT count(*) FROM jobs"), kJobs);

  // Every job succeeded (agent=20 and infra=20 leave room for every retry).
  auto states = db.Rows("SELECT state, count(*) FROM jobs GROUP BY state");
  EXPECT_EQ(states, (std::vector<std::vector<std::string>>{{"succeeded", std::to_string(kJobs)}}))
      << Dump(states) << "not succeeded:\n"
      << Dump(db.Rows("SELECT id, state, attempts, last_failure_class, last_error FROM jobs "
                      "WHERE state != 'succeeded'"));
  EXPECT_EQ(db.Int("SELECT count(*) FROM jobs WHERE current_attempt IS NOT NULL"), 0);

  // Nothing left leased or running.
  auto open_attempts =
      db.Rows("SELECT id, job_id, worker, outcome FROM attempts WHERE outcome IN "
              "('leased','running')");
  EXPECT_TRUE(open_attempts.empty()) << Dump(open_attempts);

  // Exactly one result per succeeded job, from a succeeded attempt of that job.
  EXPECT_EQ(db.Int("SELECT count(*) FROM results"), kJobs);
  auto bad_results = db.Rows(
      "SELECT r.job_id, r.attempt_id, a.job_id, a.outcome FROM results r "
      "LEFT JOIN attempts a ON a.id = r.attempt_id "
      "WHERE a.id IS NULL OR a.job_id != r.job_id OR a.outcome != 'succeeded'");
  EXPECT_TRUE(bad_results.empty()) << Dump(bad_results);
  auto missing_results = db.Rows(
      "SELECT j.id FROM jobs j LEFT JOIN results r ON r.job_id = j.id "
      "WHERE j.state = 'succeeded' AND r.job_id IS NULL");
  EXPECT_TRUE(missing_results.empty()) << Dump(missing_results);
  auto multi_success = db.Rows(
      "SELECT job_id, count(*) FROM attempts WHERE outcome = 'succeeded' GROUP BY job_id "
      "HAVING count(*) != 1");
  EXPECT_TRUE(multi_success.empty()) << Dump(multi_success);
  auto result_bodies = db.Rows(
      "SELECT r.job_id, j.dataset_name, r.result_json FROM results r JOIN jobs j ON "
      "j.id = r.job_id");
  for (const auto& r : result_bodies) {
    json j = json::parse(r[2], nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r[2];
    EXPECT_EQ(j["الاسم_الأصلي"], r[1]) << "job " << r[0] << " stored another dataset's result";
  }

  // Every acknowledged result was stored, under the acknowledged token, by
  // the worker that sent it; no job was acknowledged twice.
  std::map<int64_t, Ack> stored;
  size_t ack_lines = 0;
  for (const auto& [worker, path] : acks) {
    for (const auto& a : ReadAcks(path, worker)) {
      ++ack_lines;
      EXPECT_EQ(a.what, "stored") << worker << ": job " << a.job << " token " << a.token;
      auto [it, fresh] = stored.emplace(a.job, a);
      EXPECT_TRUE(fresh) << "job " << a.job << " acknowledged twice: token " << it->second.token
                         << " (" << it->second.worker << ") and " << a.token << " (" << worker
                         << ")";
      auto rows = db.Rows(
          "SELECT r.attempt_id, a.worker FROM results r JOIN attempts a ON a.id = r.attempt_id "
          "WHERE r.job_id = ?",
          {a.job});
      ASSERT_EQ(rows.size(), 1u) << "acknowledged job " << a.job << " has no result";
      EXPECT_EQ(rows[0][0], std::to_string(a.token))
          << "job " << a.job << ": acknowledged token " << a.token << " but stored attempt "
          << rows[0][0];
      EXPECT_EQ(rows[0][1], worker) << "job " << a.job;
    }
  }
  std::printf("[durability] %zu acknowledged results checked against the database\n",
              ack_lines);
  EXPECT_GT(ack_lines, static_cast<size_t>(kJobs / 2)) << "the ack logs are mostly missing";

  // Attempt numbers run 1..n per job in lease order (no releases here, and an
  // operator retry would not reset them), all in retry epoch 0; jobs.attempts
  // counts them.
  auto attempts = db.Rows("SELECT job_id, number, retry_epoch FROM attempts ORDER BY job_id, id");
  std::map<int64_t, int> n_by_job;
  for (const auto& a : attempts) {
    int64_t job = std::stoll(a[0]);
    int expect = ++n_by_job[job];
    EXPECT_EQ(a[1], std::to_string(expect)) << "job " << job << " attempt numbering";
    EXPECT_EQ(a[2], "0") << "job " << job;
  }
  auto count_mismatch = db.Rows(
      "SELECT j.id, j.attempts, (SELECT count(*) FROM attempts a WHERE a.job_id = j.id) n "
      "FROM jobs j WHERE j.attempts != n");
  EXPECT_TRUE(count_mismatch.empty()) << Dump(count_mismatch);

  // Outcomes: successes, agent failures (the simulated 10%), and expiries
  // (infra) from the kills; nothing else.
  auto outcomes = db.Rows(
      "SELECT outcome, coalesce(failure_class,'-'), worker, count(*) FROM attempts "
      "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3");
  std::printf("[durability] attempts by outcome/class/worker:\n%s", Dump(outcomes, 100).c_str());
  std::fflush(stdout);
  auto odd = db.Rows(
      "SELECT id, job_id, outcome, failure_class FROM attempts WHERE NOT ("
      "(outcome = 'succeeded' AND failure_class IS NULL) OR "
      "(outcome = 'failed' AND failure_class = 'agent') OR "
      "(outcome = 'expired' AND failure_class = 'infra'))");
  EXPECT_TRUE(odd.empty()) << Dump(odd);
  EXPECT_GT(db.Int("SELECT count(*) FROM attempts WHERE outcome = 'failed'"), 0)
      << "no simulated failure happened, so no retry was exercised";
  // Every lease the dead worker held ended by expiry.
  EXPECT_GE(db.Int("SELECT count(*) FROM attempts WHERE worker = 'sim-a' AND "
                   "outcome = 'expired'"),
            held_by_dead)
      << "sim-a was killed holding " << held_by_dead << " lease(s); they must have expired";
  EXPECT_GT(db.Int("SELECT count(*) FROM attempts WHERE worker = 'sim-c' AND "
                   "outcome = 'succeeded'"),
            0)
      << "the replacement worker took work";

  // The event log agrees: one 'succeeded' per job, one 'leased' per attempt,
  // one 'failed' per failed or expired attempt.
  auto ev_succ = db.Rows(
      "SELECT j.id, (SELECT count(*) FROM events e WHERE e.job_id = j.id AND "
      "e.kind = 'succeeded') c FROM jobs j WHERE c != 1");
  EXPECT_TRUE(ev_succ.empty()) << Dump(ev_succ);
  auto ev_leased = db.Rows(
      "SELECT j.id, (SELECT count(*) FROM events e WHERE e.job_id = j.id AND "
      "e.kind = 'leased') l, (SELECT count(*) FROM attempts a WHERE a.job_id = j.id) n "
      "FROM jobs j WHERE l != n");
  EXPECT_TRUE(ev_leased.empty()) << Dump(ev_leased);
  auto ev_failed = db.Rows(
      "SELECT j.id, (SELECT count(*) FROM events e WHERE e.job_id = j.id AND "
      "e.kind = 'failed') f, (SELECT count(*) FROM attempts a WHERE a.job_id = j.id AND "
      "a.outcome IN ('failed','expired')) n FROM jobs j WHERE f != n");
  EXPECT_TRUE(ev_failed.empty()) << Dump(ev_failed);
  EXPECT_EQ(db.Int("SELECT count(*) FROM events WHERE kind = 'needs_attention'"), 0);

  if (HasFailure()) std::cerr << "coordinatord log tail:\n" << Tail(coord.log(), 8000) << "\n";
}

// A submission cut short by a coordinator SIGKILL is atomic per request and
// can simply be run again: afterwards every Masader file is exactly one
// current job, whatever the moment of the kill.
TEST(DurabilityTest, SubmitInterruptedByAKillIsAtomicAndResumable) {
  const std::string masader = MasaderDir();
  ASSERT_TRUE(fs::is_directory(masader)) << masader;
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(masader)) files += e.path().extension() == ".json";
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("ASSESSQ_DURABILITY_SEED"); s && *s) seed = std::stoull(s);
  std::mt19937_64 rng(seed);
  const int delay = std::uniform_int_distribution<int>(0, 150)(rng);
  std::printf("[durability] seed %llu: killing the coordinator %d ms after the first chunk "
              "of the submit is visible\n",
              static_cast<unsigned long long>(seed), delay);
  std::fflush(stdout);

  TempDir dir;
  Coordinator coord(dir.path());
  const std::string op = coord.CreateToken("operator", "ops");
  const std::string token = ReadToken(op);
  coord.Start();
  auto first = Child::Spawn({BinPath("assessctl"), "--coordinator", coord.address(),
                             "--token-file", op, "submit", masader, "--batch", "m", "-o",
                             "json"},
                            dir.Join("first-submit.log"));
  auto stub = coord.OperatorStub();
  ASSERT_TRUE(PollUntil(
      [&] {
        if (!first->Running()) return true;
        assessq::v1::StatusRequest req;
        assessq::v1::StatusResponse resp;
        auto ctx = Ctx(token, 2000);
        return stub->Status(ctx.get(), req, &resp).ok() && resp.batches_size() > 0 &&
               resp.batches(0).total() > 0;
      },
      60000, 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  coord.Kill();
  ASSERT_TRUE(first->WaitExit(60000)) << "assessctl hung after the coordinator died";
  const int first_exit = first->exit_status().value_or(-1);
  EXPECT_TRUE(first_exit == 0 || first_exit == 1) << first_exit << "\n"
                                                  << Tail(first->log_path());
  coord.Start();

  auto again = Assessctl(coord, op, {"submit", masader, "--batch", "m", "-o", "json"}, 120000);
  ASSERT_EQ(again.exit_code, 0) << again.Describe();
  json sub = JsonOut(again);
  const int64_t created = sub["queued"].get<int64_t>();
  const int64_t skipped = sub["skipped_in_flight"].get<int64_t>();
  std::printf("[durability] first submit exit %d; the second created %lld, skipped %lld\n",
              first_exit, static_cast<long long>(created), static_cast<long long>(skipped));
  EXPECT_EQ(created + skipped, static_cast<int64_t>(files));
  // The first run went in whole chunks (500 files per request) or not at all.
  EXPECT_EQ(skipped % 500 == 0 || skipped == static_cast<int64_t>(files), true) << skipped;
  json st = JsonOut(Assessctl(coord, op, {"status", "--batch", "m", "-o", "json"}));
  EXPECT_EQ(st["total"], files);
  EXPECT_EQ(st["counts"]["queued"], files);
  coord.Stop();

  Sqlite db(coord.db());
  EXPECT_EQ(db.Int("SELECT count(*) FROM jobs"), static_cast<int64_t>(files));
  EXPECT_EQ(db.Int("SELECT count(DISTINCT dataset_key) FROM jobs WHERE superseded_by IS NULL"),
            static_cast<int64_t>(files));
  EXPECT_EQ(db.Int("SELECT count(*) FROM events WHERE kind = 'submitted'"),
            static_cast<int64_t>(files));
  EXPECT_EQ(db.Int("SELECT count(*) FROM jobs j LEFT JOIN inputs i ON i.id = j.input_id "
                   "AND i.sha256 = j.input_sha256 WHERE i.id IS NULL"),
            0)
      << "every job's input is stored";
}

}  // namespace
}  // namespace aqtest
