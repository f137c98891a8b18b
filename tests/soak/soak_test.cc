// Soak: a few thousand short jobs on two workers for several minutes, with
// the coordinator and a worker restarted along the way; checks that nothing
// is lost, duplicated or stuck, and that the memory of both daemons stays
// flat.
//
// One real coordinatord (4 s leases) and two real workerd processes run the
// offline assessor image (assessq-offline-assessor:1, one hardened container
// per job) over the real Masader catalogue (../shared/masader/datasets, 1,152
// files used in place): ASSESSQ_SOAK_JOBS jobs (default 4,000: the catalogue
// three times, then its first 544 files; about 4.5 minutes on a 2-core
// machine at the ~15 jobs/s measured there, longer when other work shares
// the CPUs), one batch per pass over the catalogue, each submitted while the
// previous one still runs (when fewer than kRefillBelow jobs are queued).
// Along the way, by
// share of jobs succeeded:
//   15%  coordinatord SIGKILLed and restarted on the same database;
//   40%  worker 2 SIGKILLed while it holds leases; they expire (4 s) and its
//        jobs run elsewhere; it is restarted (same name and state dir, so it
//        reaps the containers the crash left);
//   60%  worker 2 drained with SIGTERM (must exit 0) and restarted;
//   90%  coordinatord SIGKILLed and restarted again (so its second instance
//        runs for 75% of the soak, long enough to judge its memory).
// Worker 1 runs throughout. No job may go kStallMs without one finishing.
//
// At the end, through assessctl -o json: every job succeeded, one export line
// per job, each the submitted job; on the daemons: no container left with
// either worker's label, no job dir, no undelivered report in either outbox,
// both workers and coordinatord exit 0 on SIGTERM; on the SQLite file (as
// tests/integration/durability_test.cc): integrity, one current job per
// dataset, exactly one result per job from its one succeeded attempt and it
// is that dataset's assessment, nothing leased or running, attempt numbering,
// the event log agreeing with the attempts, and every attempt that did not
// succeed explained by a disruption (see the comment at that check).
//
// Memory: VmRSS of coordinatord and of each workerd (/proc/PID/status) every
// 2 s; each process instance is its own series (a restart starts a new one).
// After a 60 s warm-up, the first and last 30 s windows of a series are
// compared; a series with at least 60 s after its warm-up (an instance that
// lived 2 minutes) is judged. What is judged is the windows' floors (minimum
// RSS), so that memory held for a moment does not count (before cccec38,
// workerd's RSS jumped by 64 MiB whenever it read an outbox report): they must
// grow by less than kMaxGrowthMiB. Means, peaks and VmHWM are reported.
//
// The figures (start/peak/end RSS per instance, growth, slope, jobs/s,
// restarts, attempts) are printed in a block headed "soak figures" and
// written as JSON (with every sample) to soak_report.json in the working
// directory (under ctest BUILD/tests/soak; ASSESSQ_SOAK_REPORT overrides the
// path) and to the test's temp dir.
//
// Knobs (environment): ASSESSQ_SOAK_JOBS (default 4000, at least 200; a run
// shorter than about 160 s, e.g. under 2,400 jobs at 15 jobs/s, leaves no
// coordinatord instance long enough to judge, and the test fails),
// ASSESSQ_SOAK_SLOTS (slots per worker, default 4).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/support/sqlite_reader.h"

namespace aqe2e {
namespace {
namespace fs = std::filesystem;

constexpr char kOfflineImage[] = "assessq-offline-assessor:1";
constexpr double kLeaseSeconds = 4;
constexpr int kDefaultJobs = 4000;
constexpr int kDefaultSlots = 4;
constexpr int kCatalogueSize = 1152;
// The next batch goes in when fewer than this many jobs are queued, so the
// workers never run dry while a submit is on its way.
constexpr int64_t kRefillBelow = 400;
// No job may finish for this long before the test calls the run stuck.
constexpr int64_t kStallMs = 120000;

// Memory: samples, warm-up, windows, what is judged, and the bound.
constexpr int64_t kSampleEveryMs = 2000;
constexpr int64_t kWarmupMs = 60000;
constexpr int64_t kWindowMs = 30000;
constexpr int64_t kMinJudgedSpanMs = 60000;
// Seen: workerd +0.4..0.6 MiB, coordinatord +0.9..2.7 MiB over 4,000 jobs.
// The coordinator's RSS steps up once per batch submitted (a 1,152-file
// Submit message, up to ~2.5 MiB the allocator keeps) and then stays flat,
// so the bound leaves room for those steps; a leak of 2 KiB a job still
// trips it.
constexpr double kMaxGrowthMiB = 8.0;

int EnvInt(const char* name, int def, int lo, int hi) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return def;
  int n = std::atoi(v);
  if (n < lo || n > hi)
    throw std::runtime_error(absl::StrCat(name, "=", v, " is outside [", lo, ", ", hi, "]"));
  return n;
}

// ----------------------------------------------------------------- SQLite

using Sqlite = aqtest::SqliteReader;

std::string Dump(const std::vector<std::vector<std::string>>& rows, size_t max = 20) {
  return aqtest::DumpRows(rows, max);
}

// Trimmed, ASCII case folded: how the validator compares الاسم_الأصلي with
// the metadata's Name.
std::string Folded(std::string s) {
  auto sp = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!s.empty() && sp(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && sp(s[i])) ++i;
  s.erase(0, i);
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// ----------------------------------------------------------------- memory

struct RssSample {
  int64_t t_ms;
  double rss_mib;
};

// One process instance's samples.
struct RssSeries {
  std::string daemon;
  int instance = 0;
  pid_t pid = -1;
  std::vector<RssSample> samples;
  double hwm_mib = 0;  // VmHWM at the last sample: the kernel's peak RSS

  // Filled by Judge().
  bool judged = false;
  bool ok = true;
  // Means and floors (minimum) of the first and last windows after warm-up.
  double first_mean_mib = 0, last_mean_mib = 0, first_floor_mib = 0, last_floor_mib = 0;
  double growth_mib = 0, growth_pct = 0;  // of the floors: what is judged
  double mean_growth_mib = 0;
  double slope_mib_per_min = 0;
  std::string note;

  double start_mib() const { return samples.empty() ? 0 : samples.front().rss_mib; }
  double end_mib() const { return samples.empty() ? 0 : samples.back().rss_mib; }
  double peak_mib() const {
    double p = 0;
    for (const auto& s : samples) p = std::max(p, s.rss_mib);
    return p;
  }
  double span_s() const {
    return samples.size() < 2 ? 0 : (samples.back().t_ms - samples.front().t_ms) / 1000.0;
  }

  void Judge() {
    if (samples.empty()) {
      note = "no samples";
      return;
    }
    const int64_t warm_end = samples.front().t_ms + kWarmupMs;
    std::vector<RssSample> post;
    for (const auto& s : samples)
      if (s.t_ms >= warm_end) post.push_back(s);
    const int64_t post_ms = post.size() < 2 ? 0 : post.back().t_ms - post.front().t_ms;
    if (post_ms < kMinJudgedSpanMs) {
      note = absl::StrFormat("not judged: %.0f s after warm-up (< %d s)", post_ms / 1000.0,
                             kMinJudgedSpanMs / 1000);
      return;
    }
    auto window = [&](int64_t from, int64_t to, double* mean, double* floor) {
      double sum = 0, lo = 1e18;
      int n = 0;
      for (const auto& s : post)
        if (s.t_ms >= from && s.t_ms <= to) sum += s.rss_mib, lo = std::min(lo, s.rss_mib), ++n;
      *mean = n ? sum / n : 0.0;
      *floor = n ? lo : 0.0;
    };
    window(post.front().t_ms, post.front().t_ms + kWindowMs, &first_mean_mib, &first_floor_mib);
    window(post.back().t_ms - kWindowMs, post.back().t_ms, &last_mean_mib, &last_floor_mib);
    growth_mib = last_floor_mib - first_floor_mib;
    growth_pct = first_floor_mib > 0 ? 100.0 * growth_mib / first_floor_mib : 0;
    mean_growth_mib = last_mean_mib - first_mean_mib;
    // Least-squares slope over the post-warm-up samples, for the report.
    double n = post.size(), sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (const auto& s : post) {
      double x = (s.t_ms - post.front().t_ms) / 60000.0;
      sx += x, sy += s.rss_mib, sxx += x * x, sxy += x * s.rss_mib;
    }
    double den = n * sxx - sx * sx;
    slope_mib_per_min = den != 0 ? (n * sxy - sx * sy) / den : 0;
    judged = true;
    ok = growth_mib < kMaxGrowthMiB;
    note = ok ? "flat" : absl::StrFormat("GREW %.1f MiB (bound %.1f MiB)", growth_mib,
                                         kMaxGrowthMiB);
  }

  // [seconds since the first sample, MiB] pairs.
  json Points() const {
    json a = json::array();
    for (const auto& p : samples)
      a.push_back({std::round((p.t_ms - samples.front().t_ms) / 100.0) / 10.0,
                   std::round(p.rss_mib * 100) / 100});
    return a;
  }

  json ToJson() const {
    return {{"daemon", daemon},
            {"instance", instance},
            {"pid", pid},
            {"samples", samples.size()},
            {"span_s", span_s()},
            {"start_mib", start_mib()},
            {"peak_mib", peak_mib()},
            {"vm_hwm_mib", hwm_mib},
            {"end_mib", end_mib()},
            {"judged", judged},
            {"ok", ok},
            {"first_window_mean_mib", first_mean_mib},
            {"last_window_mean_mib", last_mean_mib},
            {"mean_growth_mib", mean_growth_mib},
            {"first_window_floor_mib", first_floor_mib},
            {"last_window_floor_mib", last_floor_mib},
            {"floor_growth_mib", growth_mib},
            {"floor_growth_pct", growth_pct},
            {"slope_mib_per_min", slope_mib_per_min},
            {"note", note},
            {"series", Points()}};
  }
};

// VmRSS and VmHWM of a live process, in MiB; false if it is gone.
bool ReadRss(pid_t pid, double* rss_mib, double* hwm_mib) {
  std::string status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  bool got = false;
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    long kb = 0;
    if (line.substr(0, 6) == "VmRSS:" &&
        std::sscanf(std::string(line.substr(6)).c_str(), "%ld", &kb) == 1) {
      *rss_mib = kb / 1024.0;
      got = true;
    } else if (line.substr(0, 6) == "VmHWM:" &&
               std::sscanf(std::string(line.substr(6)).c_str(), "%ld", &kb) == 1) {
      *hwm_mib = kb / 1024.0;
    }
  }
  return got;
}

class RssMonitor {
 public:
  // Samples `c` as the current instance of `daemon` (a new pid opens a new
  // series).
  void Sample(const std::string& daemon, Child* c) {
    if (c == nullptr || !c->Running()) return;
    double rss = 0, hwm = 0;
    if (!ReadRss(c->pid(), &rss, &hwm)) return;
    int& current = current_[daemon];
    if (current == 0 || series_[current - 1].pid != c->pid()) {
      RssSeries s;
      s.daemon = daemon;
      s.pid = c->pid();
      s.instance = ++instances_[daemon];
      series_.push_back(std::move(s));
      current = static_cast<int>(series_.size());
    }
    RssSeries& s = series_[current - 1];
    s.samples.push_back({NowMs(), rss});
    s.hwm_mib = std::max(s.hwm_mib, hwm);
  }
  double Current(const std::string& daemon) const {
    auto it = current_.find(daemon);
    if (it == current_.end() || it->second == 0) return 0;
    return series_[it->second - 1].end_mib();
  }
  std::vector<RssSeries>& series() { return series_; }

 private:
  std::vector<RssSeries> series_;
  std::map<std::string, int> current_;    // daemon -> 1 + index into series_
  std::map<std::string, int> instances_;  // daemon -> instances seen
};

// ------------------------------------------------------------------- test

struct Disruption {
  int64_t at_ms;
  std::string what;
  std::string detail;
};

class SoakTest : public E2eTest {
 protected:
  SoakTest() { lease_seconds_ = kLeaseSeconds; }

  json WorkerEntry(const std::string& name) {
    for (const auto& w : ctl_->Workers())
      if (w.value("name", "") == name) return w;
    return json::object();
  }
};

TEST_F(SoakTest, ThousandsOfJobsThroughRestartsLoseNothingAndMemoryStaysFlat) {
  const int total = EnvInt("ASSESSQ_SOAK_JOBS", kDefaultJobs, 200, 100000);
  const int slots = EnvInt("ASSESSQ_SOAK_SLOTS", kDefaultSlots, 1, 64);

  auto img = Docker().ImageExists(kOfflineImage);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  ASSERT_TRUE(*img) << kOfflineImage << " is missing: run scripts/build-images.sh BUILD_DIR";

  // The catalogue, in a stable order; one batch per pass over it.
  const std::string catalogue = MasaderDir();
  ASSERT_TRUE(fs::is_directory(catalogue)) << "the Masader catalogue is missing: " << catalogue;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(catalogue))
    if (e.path().extension() == ".json") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), static_cast<size_t>(kCatalogueSize))
      << "the catalogue changed: " << files.size() << " files";
  struct Batch {
    std::string name;
    std::vector<std::string> paths;  // the folder itself for a whole pass
    size_t size = 0;
    std::map<std::string, int64_t> ids;
    bool submitted = false;
  };
  std::vector<Batch> batches;
  for (int left = total, i = 1; left > 0; ++i) {
    Batch b;
    b.name = absl::StrCat("soak-", i);
    b.size = std::min<size_t>(left, files.size());
    if (b.size == files.size())
      b.paths = {catalogue};
    else
      b.paths.assign(files.begin(), files.begin() + static_cast<long>(b.size));
    left -= static_cast<int>(b.size);
    batches.push_back(std::move(b));
  }

  json profile = {
      {"name", "offline-assessor-soak"},
      {"image", kOfflineImage},
      {"command", {"/assessor", "--input", "{input}", "--output", "{output_file}", "--dataset",
                   "{dataset}"}},
      {"limits",
       {{"memory_mb", 128}, {"cpus", 0.5}, {"pids", 64}, {"timeout_s", 60}, {"grace_s", 5},
        {"tmp_mb", 8}, {"home_mb", 8}}},
  };
  const std::string profile_path = dir_->Join("offline-soak.json");
  WriteFile(profile_path, profile.dump(2));

  Workerd& w1 = AddWorker("soak1", {.slots = slots});
  Workerd& w2 = AddWorker("soak2", {.slots = slots});

  std::cout << "[soak] " << total << " jobs in " << batches.size() << " batch(es) of the "
            << kCatalogueSize << "-file Masader catalogue; workers " << w1.name() << " and "
            << w2.name() << " with " << slots << " slots each; lease " << kLeaseSeconds
            << " s; temp dir " << dir_->path() << std::endl;

  RssMonitor rss;
  std::vector<Disruption> disruptions;
  const int64_t t0 = NowMs();
  auto at_s = [&](int64_t t) { return (t - t0) / 1000.0; };
  auto note = [&](const std::string& what, const std::string& detail) {
    disruptions.push_back({NowMs(), what, detail});
    std::cout << absl::StrFormat("[soak] +%6.1fs %s: %s", at_s(NowMs()), what, detail)
              << std::endl;
  };
  auto sample_all = [&] {
    rss.Sample("coordinatord", coord_->child());
    rss.Sample("workerd-1", w1.child());
    rss.Sample("workerd-2", w2.child());
  };

  auto submit = [&](Batch& b) {
    const int64_t t = NowMs();
    b.ids = ctl_->Submit(b.paths, b.name, profile_path);
    b.submitted = true;
    note("submit", absl::StrCat(b.name, ": ", b.ids.size(), " jobs in ",
                                absl::StrFormat("%.1f", (NowMs() - t) / 1000.0), " s"));
    ASSERT_EQ(b.ids.size(), b.size) << b.name;
  };
  ASSERT_NO_FATAL_FAILURE(submit(batches[0]));
  sample_all();

  // Counts over all batches.
  struct Counts {
    int64_t queued = 0, leased = 0, running = 0, succeeded = 0, needs_attention = 0,
            cancelled = 0, total = 0;
  };
  auto counts = [&]() {
    json st = ctl_->Json({"status"});
    Counts c;
    for (const auto& b : st["batches"]) {
      const json& k = b["counts"];
      auto n = [&](const char* s) { return k.contains(s) ? k[s].get<int64_t>() : 0; };
      c.queued += n("queued");
      c.leased += n("leased");
      c.running += n("running");
      c.succeeded += n("succeeded");
      c.needs_attention += n("needs_attention");
      c.cancelled += n("cancelled");
      c.total += b.value("total", int64_t{0});
    }
    return c;
  };

  // The disruptions, by share of jobs succeeded.
  int coord_kills = 0, worker_kills = 0, worker_drains = 0;
  int64_t w2_kill_ms = 0;
  int64_t w2_held_at_kill = -1;
  struct Outage {
    int64_t kill_ms, up_ms;
  };
  std::vector<Outage> coord_outages;
  auto restart_coordinator = [&](int n) {
    Counts c = counts();
    coord_->Kill(SIGKILL);
    const int64_t t = NowMs();
    coord_->Start();
    coord_outages.push_back({t, NowMs()});
    ++coord_kills;
    note("coordinatord SIGKILL #" + std::to_string(n),
         absl::StrFormat("%d succeeded, %d leased/running; restarted on the same database, "
                         "answering after %.1f s",
                         c.succeeded, c.leased + c.running, (NowMs() - t) / 1000.0));
  };
  auto kill_worker2 = [&] {
    // Wait until it holds leases, so some must expire.
    ASSERT_TRUE(PollUntil([&] { return WorkerEntry(w2.name()).value("in_use", 0) >= 1; }, 30000,
                          50))
        << "worker 2 never held a lease: " << WorkerEntry(w2.name()).dump();
    w2.child()->Kill();
    w2_kill_ms = NowMs();
    ++worker_kills;
    // What it still holds once the coordinator has seen its session end: a
    // completion sent on the session just before dying is processed before
    // the session's end, so nothing it sent can land after this look.
    ASSERT_TRUE(PollUntil([&] { return !WorkerEntry(w2.name()).value("connected", true); },
                          30000, 20))
        << "the coordinator never saw worker 2's session end: " << WorkerEntry(w2.name()).dump();
    w2_held_at_kill = WorkerEntry(w2.name()).value("in_use", int64_t{-1});
    note("workerd-2 SIGKILL", absl::StrCat("holding ", w2_held_at_kill, " lease(s)"));
    // Its leases expire within a lease period; then it comes back.
    ASSERT_TRUE(PollUntil([&] { return WorkerEntry(w2.name()).value("in_use", 1) == 0; },
                          static_cast<int>(kLeaseSeconds * 1000 * 3 + 10000), 100))
        << "worker 2's leases never expired: " << WorkerEntry(w2.name()).dump();
    note("workerd-2 leases expired",
         absl::StrFormat("%.1f s after the kill", (NowMs() - w2_kill_ms) / 1000.0));
    const int64_t t = NowMs();
    w2.Start();
    note("workerd-2 restarted", absl::StrFormat("connected after %.1f s", (NowMs() - t) / 1000.0));
  };
  auto drain_worker2 = [&] {
    const int64_t in_use = WorkerEntry(w2.name()).value("in_use", int64_t{0});
    const int64_t t = NowMs();
    w2.child()->Signal(SIGTERM);
    ASSERT_TRUE(w2.child()->WaitExit(120000)) << "workerd-2 did not drain\n" << Tail(w2.Log());
    EXPECT_EQ(w2.child()->exit_status(), 0) << Tail(w2.Log());
    ++worker_drains;
    note("workerd-2 SIGTERM drain",
         absl::StrFormat("%d job(s) in hand; exited %d after %.1f s", in_use,
                         w2.child()->exit_status().value_or(-999), (NowMs() - t) / 1000.0));
    const int64_t t2 = NowMs();
    w2.Start();
    note("workerd-2 restarted", absl::StrFormat("connected after %.1f s", (NowMs() - t2) / 1000.0));
  };
  struct Step {
    double at_share;
    std::function<void()> run;
    bool done = false;
  };
  std::vector<Step> steps;
  steps.push_back({0.15, [&] { restart_coordinator(1); }});
  steps.push_back({0.40, [&] { kill_worker2(); }});
  steps.push_back({0.60, [&] { drain_worker2(); }});
  steps.push_back({0.90, [&] { restart_coordinator(2); }});

  // The run: poll once a second, sample memory every 2 s, submit the next
  // batch when the queue runs low, disrupt on schedule, report every 15 s.
  int64_t last_sample = NowMs(), next_report = NowMs() + 15000;
  int64_t last_progress_ms = NowMs(), last_succeeded = 0;
  const int64_t deadline = t0 + 1080000;  // inside ctest's 1200 s
  Counts c;
  while (true) {
    c = counts();
    const int64_t now = NowMs();
    if (now - last_sample >= kSampleEveryMs) {
      sample_all();
      last_sample = now;
    }
    if (c.succeeded != last_succeeded) last_progress_ms = now, last_succeeded = c.succeeded;
    bool all_submitted = std::all_of(batches.begin(), batches.end(),
                                     [](const Batch& b) { return b.submitted; });
    if (all_submitted && c.total == total && c.queued + c.leased + c.running == 0) break;
    ASSERT_LT(now - last_progress_ms, kStallMs)
        << "stuck: no job finished for " << kStallMs / 1000 << " s: queued=" << c.queued
        << " leased=" << c.leased << " running=" << c.running << " succeeded=" << c.succeeded
        << "\n" << ctl_->Json({"workers"}).dump();
    ASSERT_LT(now, deadline) << "not finished within " << (deadline - t0) / 1000 << " s";
    if (!all_submitted && c.queued < kRefillBelow)
      for (auto& b : batches)
        if (!b.submitted) {
          ASSERT_NO_FATAL_FAILURE(submit(b));
          break;
        }
    for (auto& s : steps)
      if (!s.done && c.succeeded >= static_cast<int64_t>(s.at_share * total)) {
        s.done = true;
        s.run();
        if (HasFatalFailure()) return;
        break;
      }
    if (now >= next_report) {
      std::cout << absl::StrFormat(
                       "[soak] +%6.1fs %d/%d succeeded, queued %d, leased %d, running %d, "
                       "needs_attention %d | RSS MiB coordinatord %.1f, workerd-1 %.1f, "
                       "workerd-2 %.1f",
                       at_s(now), c.succeeded, total, c.queued, c.leased, c.running,
                       c.needs_attention, rss.Current("coordinatord"), rss.Current("workerd-1"),
                       rss.Current("workerd-2"))
                << std::endl;
      next_report += 15000;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  }
  const int64_t t_done = NowMs();
  sample_all();
  const double wall_s = (t_done - t0) / 1000.0;
  note("all finished", absl::StrCat(c.succeeded, " succeeded"));
  for (const auto& s : steps) EXPECT_TRUE(s.done) << "a disruption at " << s.at_share
                                                  << " never ran";
  EXPECT_GE(coord_kills, 1);
  EXPECT_GE(worker_kills + worker_drains, 1);

  // ------------------------------------------------ checks through assessctl
  EXPECT_EQ(c.total, total);
  EXPECT_EQ(c.succeeded, total) << "needs_attention " << c.needs_attention << ", cancelled "
                                << c.cancelled;
  std::map<std::string, int> per_worker;
  for (const auto& b : batches) {
    json st = ctl_->Status(b.name);
    EXPECT_EQ(st.value("total", int64_t{0}), static_cast<int64_t>(b.size)) << st.dump();
    EXPECT_EQ(st["counts"].value("succeeded", int64_t{0}), static_cast<int64_t>(b.size))
        << st.dump(2);
    json na = ctl_->Json({"list", "--batch", b.name, "--state", "needs_attention"});
    EXPECT_TRUE(na.empty()) << na.dump(2);
    RunResult ex = ctl_->Run({"export", "--batch", b.name, "--format", "jsonl"}, 300000);
    ASSERT_EQ(ex.exit_code, 0) << ex.Describe();
    std::set<std::string> keys;
    size_t lines = 0;
    for (absl::string_view line : absl::StrSplit(ex.out, '\n', absl::SkipEmpty())) {
      ++lines;
      json row = json::parse(line, nullptr, false);
      ASSERT_FALSE(row.is_discarded()) << line;
      EXPECT_EQ(row.value("state", ""), "succeeded") << line.substr(0, 300);
      EXPECT_TRUE(row["assessment"].is_object()) << line.substr(0, 300);
      std::string key = row.value("dataset_key", "");
      EXPECT_TRUE(keys.insert(key).second) << b.name << ": " << key << " exported twice";
      auto id = b.ids.find(key);
      EXPECT_TRUE(id != b.ids.end() && id->second == row.value("job_id", int64_t{0}))
          << b.name << ": exported " << key << " is not the submitted job";
      per_worker[row.value("worker", "")]++;
    }
    EXPECT_EQ(lines, b.size) << b.name;
    EXPECT_EQ(keys.size(), b.size) << b.name;
  }
  EXPECT_GT(per_worker[w1.name()], 0);
  EXPECT_GT(per_worker[w2.name()], 0);

  // ------------------------------------------------ checks on the daemons
  // No container left with either worker's label (restarted, worker 2 reaped
  // what its SIGKILL left before taking new leases).
  json left1, left2;
  EXPECT_TRUE(PollUntil(
      [&] {
        left1 = ContainersOf(w1.name());
        left2 = ContainersOf(w2.name());
        return left1.empty() && left2.empty();
      },
      30000, 500))
      << "containers left:\n" << left1.dump(1).substr(0, 2000) << "\n"
      << left2.dump(1).substr(0, 2000);
  std::vector<std::string> outbox_litter;
  for (Workerd* w : {&w1, &w2}) {
    w->child()->Signal(SIGTERM);
    EXPECT_TRUE(w->child()->WaitExit(60000)) << w->name() << " did not exit on SIGTERM";
    EXPECT_EQ(w->child()->exit_status(), 0) << Tail(w->Log());
    auto names = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& n : v) s += " " + n;
      return s;
    };
    EXPECT_TRUE(ListDir(w->jobs_dir()).empty())
        << w->name() << " left job dirs:" << names(ListDir(w->jobs_dir()));
    // A report (.pb) left would be one never delivered. Anything else is
    // litter: a SIGKILL during Outbox::Put leaves its "N-T.pb.tmp", which no
    // later run removes (reported, not failed: see outbox_litter).
    std::vector<std::string> reports;
    for (const auto& n : ListDir(w->outbox_dir())) {
      if (n.size() > 3 && n.compare(n.size() - 3, 3, ".pb") == 0)
        reports.push_back(n);
      else
        outbox_litter.push_back(w->name() + "/outbox/" + n);
    }
    EXPECT_TRUE(reports.empty()) << w->name() << " left undelivered reports:" << names(reports);
  }
  const std::string wlog2 = w2.Log(), wlog1 = w1.Log();
  size_t refused = 0;  // reports the coordinator turned down (stale leases)
  for (const std::string* l : {&wlog1, &wlog2})
    for (size_t p = 0; (p = l->find("report refused", p)) != std::string::npos; ++p) ++refused;
  coord_->Kill(SIGTERM);
  EXPECT_EQ(coord_->child()->exit_status(), 0) << "coordinatord did not stop cleanly\n"
                                               << Tail(coord_->Log());

  // ------------------------------------------------ checks on the database
  Sqlite db(dir_->Join("assessq.db"));
  EXPECT_EQ(db.Rows("PRAGMA integrity_check"), (std::vector<std::vector<std::string>>{{"ok"}}));
  // One current job per submitted dataset, and no other jobs.
  for (const auto& b : batches) {
    const int64_t bid =
        db.Int("SELECT id FROM batches WHERE name='" + b.name + "'");  // our own names
    auto current = db.Rows(
        "SELECT dataset_key, count(*), min(id) FROM jobs WHERE batch_id=? AND "
        "superseded_by IS NULL GROUP BY dataset_key",
        {bid});
    std::set<std::string> got;
    for (const auto& r : current) {
      got.insert(r[0]);
      EXPECT_EQ(r[1], "1") << b.name << ": dataset " << r[0] << " has " << r[1]
                           << " current jobs";
      EXPECT_EQ(b.ids.count(r[0]) ? b.ids.at(r[0]) : -1, std::stoll(r[2])) << r[0];
    }
    EXPECT_EQ(got.size(), b.size) << b.name;
  }
  EXPECT_EQ(db.Int("SELECT count(*) FROM jobs"), total);
  auto states = db.Rows("SELECT state, count(*) FROM jobs GROUP BY state");
  EXPECT_EQ(states, (std::vector<std::vector<std::string>>{{"succeeded", std::to_string(total)}}))
      << Dump(states) << "not succeeded:\n"
      << Dump(db.Rows("SELECT id, state, attempts, last_failure_class, last_error FROM jobs "
                      "WHERE state != 'succeeded'"));
  EXPECT_EQ(db.Int("SELECT count(*) FROM jobs WHERE current_attempt IS NOT NULL"), 0);
  auto open_attempts = db.Rows(
      "SELECT id, job_id, worker, outcome FROM attempts WHERE outcome IN ('leased','running')");
  EXPECT_TRUE(open_attempts.empty()) << Dump(open_attempts);

  // Exactly one result per job, from that job's one succeeded attempt, and it
  // is that dataset's assessment.
  EXPECT_EQ(db.Int("SELECT count(*) FROM results"), total);
  auto bad_results = db.Rows(
      "SELECT r.job_id, r.attempt_id, a.job_id, a.outcome FROM results r "
      "LEFT JOIN attempts a ON a.id = r.attempt_id "
      "WHERE a.id IS NULL OR a.job_id != r.job_id OR a.outcome != 'succeeded'");
  EXPECT_TRUE(bad_results.empty()) << Dump(bad_results);
  auto missing_results = db.Rows(
      "SELECT j.id FROM jobs j LEFT JOIN results r ON r.job_id = j.id WHERE r.job_id IS NULL");
  EXPECT_TRUE(missing_results.empty()) << Dump(missing_results);
  auto multi_success = db.Rows(
      "SELECT j.id, (SELECT count(*) FROM attempts a WHERE a.job_id = j.id AND "
      "a.outcome = 'succeeded') n FROM jobs j WHERE n != 1");
  EXPECT_TRUE(multi_success.empty()) << Dump(multi_success);
  size_t wrong_name = 0;
  for (const auto& r : db.Rows("SELECT r.job_id, j.dataset_name, r.result_json FROM results r "
                               "JOIN jobs j ON j.id = r.job_id")) {
    json j = json::parse(r[2], nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r[2].substr(0, 300);
    if (!j.contains("الاسم_الأصلي") || !j["الاسم_الأصلي"].is_string() ||
        Folded(j["الاسم_الأصلي"].get<std::string>()) != Folded(r[1]))
      EXPECT_LT(++wrong_name, 5u) << "job " << r[0] << " stored another dataset's result";
  }
  EXPECT_EQ(wrong_name, 0u);

  // Attempts: outcomes and where they came from.
  auto outcomes = db.Rows(
      "SELECT outcome, coalesce(failure_class,'-'), worker, count(*) FROM attempts "
      "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3");
  std::cout << "[soak] attempts by outcome/class/worker:\n" << Dump(outcomes, 100);
  // Every attempt that did not succeed is explained:
  //  - expired, held by worker 2 when it was SIGKILLed;
  //  - expired, held when coordinatord was SIGKILLed, and expired one lease
  //    period after it came back: the worker did not renew it in time
  //    (workerd may take ~5 s to reconnect after a coordinator restart, more
  //    than this test's 4 s lease: its RPCs fail fast while the channel is
  //    down, so the new connection's HTTP/2 handshake waits for gRPC's 5 s
  //    backup poller; GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS=100 makes
  //    it reconnect at once);
  //  - released: handed back by the draining worker 2;
  //  - failed (infra) with "bind source path does not exist": a lease arrived
  //    while the periodic reaper ran, and the reaper removed its fresh job
  //    dir (Worker::HousekeepingLoop takes the live jobs, then Reap lists
  //    and deletes without the lock); the job was retried and succeeded.
  // Anything else fails the test.
  const int64_t lease_ms = static_cast<int64_t>(kLeaseSeconds * 1000);
  int64_t expired_by_kill = 0, expired_by_restart = 0, reaper_race = 0;
  std::vector<std::vector<std::string>> unexplained;
  for (const auto& a : db.Rows("SELECT id, job_id, worker, outcome, coalesce(failure_class,''), "
                               "leased_at, coalesce(ended_at, 0), coalesce(error,'') "
                               "FROM attempts WHERE outcome != 'succeeded' ORDER BY id")) {
    const std::string& worker = a[2];
    const std::string& outcome = a[3];
    const std::string& cls = a[4];
    const int64_t leased = std::stoll(a[5]), ended = std::stoll(a[6]);
    const std::string& error = a[7];
    if (outcome == "released" && cls.empty()) continue;
    if (outcome == "expired" && cls == "infra") {
      if (worker == w2.name() && leased <= w2_kill_ms && ended >= w2_kill_ms) {
        ++expired_by_kill;
        continue;
      }
      bool by_restart = false;
      for (const auto& o : coord_outages)
        by_restart |= leased <= o.kill_ms && ended >= o.kill_ms &&
                      ended <= o.up_ms + lease_ms + 3000;
      if (by_restart) {
        ++expired_by_restart;
        continue;
      }
    }
    if (outcome == "failed" && cls == "infra" &&
        error.find("bind source path does not exist") != std::string::npos) {
      ++reaper_race;
      continue;
    }
    unexplained.push_back(a);
  }
  EXPECT_TRUE(unexplained.empty())
      << "attempts no disruption explains (t0=" << t0 << "; columns: id, job, worker, outcome, "
      << "class, leased_at, ended_at, error):\n" << Dump(unexplained);
  EXPECT_GE(expired_by_kill, std::max<int64_t>(w2_held_at_kill, 1))
      << "worker 2 was killed holding " << w2_held_at_kill << " lease(s); they must expire";
  EXPECT_LE(reaper_race, std::max(3, total / 100))
      << "the reaper race is no longer rare";
  const int64_t expired_total = db.Int("SELECT count(*) FROM attempts WHERE outcome='expired'");
  const int64_t released = db.Int("SELECT count(*) FROM attempts WHERE outcome='released'");
  const int64_t attempts_total = db.Int("SELECT count(*) FROM attempts");

  // Attempt numbers run 1..n per job in lease order, all in retry epoch 0;
  // a released attempt (handed back by the drain) uses no number of its own,
  // so the next attempt has the same one; jobs.attempts counts the others.
  std::map<int64_t, int> used;
  for (const auto& a : db.Rows("SELECT job_id, number, retry_epoch, outcome FROM attempts "
                               "ORDER BY job_id, id")) {
    int64_t job = std::stoll(a[0]);
    int expect = used[job] + 1;
    if (a[3] != "released") used[job] = expect;
    EXPECT_EQ(a[1], std::to_string(expect)) << "job " << job << " attempt numbering";
    EXPECT_EQ(a[2], "0") << "job " << job;
  }
  auto count_mismatch = db.Rows(
      "SELECT j.id, j.attempts, (SELECT count(*) FROM attempts a WHERE a.job_id = j.id AND "
      "a.outcome != 'released') n FROM jobs j WHERE j.attempts != n");
  EXPECT_TRUE(count_mismatch.empty()) << Dump(count_mismatch);

  // The event log agrees: one 'submitted' and one 'succeeded' per job, one
  // 'leased' per attempt, one 'failed' per expired attempt, one 'requeued'
  // per released one, nothing needing attention or cancelled.
  auto ev = [&](const char* kind, const char* attempts_where) {
    return db.Rows(absl::StrCat(
        "SELECT j.id, (SELECT count(*) FROM events e WHERE e.job_id = j.id AND e.kind = '", kind,
        "') e, ", attempts_where, " n FROM jobs j WHERE e != n"));
  };
  auto ev_sub = ev("submitted", "1");
  EXPECT_TRUE(ev_sub.empty()) << Dump(ev_sub);
  auto ev_succ = ev("succeeded", "1");
  EXPECT_TRUE(ev_succ.empty()) << Dump(ev_succ);
  auto ev_leased = ev("leased", "(SELECT count(*) FROM attempts a WHERE a.job_id = j.id)");
  EXPECT_TRUE(ev_leased.empty()) << Dump(ev_leased);
  auto ev_failed = ev("failed",
                      "(SELECT count(*) FROM attempts a WHERE a.job_id = j.id AND "
                      "a.outcome IN ('failed','expired'))");
  EXPECT_TRUE(ev_failed.empty()) << Dump(ev_failed);
  auto ev_requeued = ev("requeued",
                        "(SELECT count(*) FROM attempts a WHERE a.job_id = j.id AND "
                        "a.outcome = 'released')");
  EXPECT_TRUE(ev_requeued.empty()) << Dump(ev_requeued);
  EXPECT_EQ(db.Int("SELECT count(*) FROM events WHERE kind IN ('needs_attention','cancelled')"),
            0);

  // ------------------------------------------------ memory and figures
  int judged_coord = 0, judged_w1 = 0;
  for (auto& s : rss.series()) {
    s.Judge();
    if (s.judged && s.daemon == "coordinatord") ++judged_coord;
    if (s.judged && s.daemon == "workerd-1") ++judged_w1;
  }
  std::ostringstream fig;
  fig << "\n===================== soak figures =====================\n";
  fig << absl::StrFormat("jobs          %d in %d batch(es), offline assessor, %d+%d slots\n",
                         total, batches.size(), slots, slots);
  fig << absl::StrFormat("wall          %.1f s from the first submit to the last job done\n",
                         wall_s);
  fig << absl::StrFormat("throughput    %.2f jobs/s (%.0f jobs/min)\n", total / wall_s,
                         total / wall_s * 60);
  fig << absl::StrFormat("restarts      coordinatord SIGKILL x%d; workerd-2 SIGKILL x%d "
                         "(held %d lease(s)), SIGTERM drain x%d\n",
                         coord_kills, worker_kills, w2_held_at_kill, worker_drains);
  fig << absl::StrFormat("attempts      %d total: %d succeeded, %d expired (%d held by the "
                         "killed worker, %d held across a coordinator restart), %d released, "
                         "%d failed by the reaper race; %d report(s) refused as stale\n",
                         attempts_total, total, expired_total, expired_by_kill,
                         expired_by_restart, released, reaper_race, refused);
  if (!outbox_litter.empty()) {
    fig << "outbox litter ";
    for (const auto& n : outbox_litter) fig << " " << n;
    fig << "  (temp files of reports cut short by the SIGKILL; never cleaned up)\n";
  }
  fig << "jobs/worker  ";
  for (const auto& [w, n] : per_worker) fig << " " << w << "=" << n;
  fig << "\n";
  fig << absl::StrFormat(
      "memory        VmRSS MiB every %d s per process instance; after a %d s warm-up, the "
      "first and last %d s windows (mean, floor = minimum); judged: floor growth < %.1f MiB "
      "over >= %d s\n",
      kSampleEveryMs / 1000, kWarmupMs / 1000, kWindowMs / 1000, kMaxGrowthMiB,
      kMinJudgedSpanMs / 1000);
  fig << absl::StrFormat("  %-13s %4s %4s %5s %6s %6s %6s %6s | %6s %6s | %6s %6s %6s | %7s  %s\n",
                         "daemon", "inst", "smpl", "span", "start", "peak", "VmHWM", "end",
                         "mean1", "mean2", "floor1", "floor2", "growth", "MiB/min", "verdict");
  for (const auto& s : rss.series())
    fig << absl::StrFormat(
        "  %-13s %4d %4d %5.0f %6.1f %6.1f %6.1f %6.1f | %6.1f %6.1f | %6.1f %6.1f %+6.1f | "
        "%+7.3f  %s\n",
        s.daemon, s.instance, s.samples.size(), s.span_s(), s.start_mib(), s.peak_mib(),
        s.hwm_mib, s.end_mib(), s.first_mean_mib, s.last_mean_mib, s.first_floor_mib,
        s.last_floor_mib, s.growth_mib, s.slope_mib_per_min, s.note);
  fig << "disruptions\n";
  for (const auto& d : disruptions)
    fig << absl::StrFormat("  +%6.1fs %s: %s\n", at_s(d.at_ms), d.what, d.detail);

  json report = {{"jobs", total},
                 {"batches", batches.size()},
                 {"slots_per_worker", slots},
                 {"lease_seconds", kLeaseSeconds},
                 {"wall_seconds", wall_s},
                 {"jobs_per_second", total / wall_s},
                 {"restarts",
                  {{"coordinatord_sigkill", coord_kills},
                   {"workerd_sigkill", worker_kills},
                   {"workerd_sigterm_drain", worker_drains}}},
                 {"attempts",
                  {{"total", attempts_total},
                   {"expired", expired_total},
                   {"expired_by_worker_kill", expired_by_kill},
                   {"expired_across_coordinator_restart", expired_by_restart},
                   {"failed_by_reaper_race", reaper_race},
                   {"released", released},
                   {"reports_refused", refused}}},
                 {"worker2_leases_at_kill", w2_held_at_kill},
                 {"outbox_litter", outbox_litter},
                 {"jobs_per_worker", per_worker},
                 {"memory_bound",
                  {{"sample_every_s", kSampleEveryMs / 1000},
                   {"warmup_s", kWarmupMs / 1000},
                   {"window_s", kWindowMs / 1000},
                   {"min_judged_span_s", kMinJudgedSpanMs / 1000},
                   {"max_growth_mib", kMaxGrowthMiB}}},
                 {"rss", json::array()},
                 {"disruptions", json::array()}};
  for (const auto& s : rss.series()) report["rss"].push_back(s.ToJson());
  for (const auto& d : disruptions)
    report["disruptions"].push_back({{"at_s", at_s(d.at_ms)}, {"what", d.what},
                                     {"detail", d.detail}});
  std::string report_path = (fs::current_path() / "soak_report.json").string();
  if (const char* p = std::getenv("ASSESSQ_SOAK_REPORT"); p && *p) report_path = p;
  WriteFile(report_path, report.dump(2) + "\n");
  WriteFile(dir_->Join("soak_report.json"), report.dump(2) + "\n");
  fig << "report        " << report_path << " (and " << dir_->Join("soak_report.json")
      << ", removed with the temp dir unless ASSESSQ_KEEP_TEST_DIRS=1)\n";
  fig << "========================================================\n";
  std::cout << fig.str() << std::flush;
  RecordProperty("jobs_per_second", absl::StrFormat("%.3f", total / wall_s));
  RecordProperty("wall_seconds", absl::StrFormat("%.1f", wall_s));

  EXPECT_GE(judged_coord, 1) << "no coordinatord instance ran long enough to judge its memory "
                                "(raise ASSESSQ_SOAK_JOBS)";
  EXPECT_GE(judged_w1, 1) << "workerd-1 did not run long enough to judge its memory (raise "
                             "ASSESSQ_SOAK_JOBS)";
  for (const auto& s : rss.series())
    EXPECT_TRUE(s.ok) << s.daemon << " #" << s.instance << " (pid " << s.pid
                      << ") memory grew: " << s.note;
}

}  // namespace
}  // namespace aqe2e
