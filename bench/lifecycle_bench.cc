// lifecycle_bench: a load driver for coordinatord (not a timed unit test).
//
// It starts a real coordinatord on a unix socket with a fresh SQLite database
// in a temporary directory, creates an operator and a worker token, and runs:
//   (a) full lifecycle throughput: M jobs submitted in chunks while N
//       simulated workers (each its own ApiClient, S slots) heartbeat
//       (running=true) and complete every lease with a ~4 KiB assessment;
//       lease latency = "Complete returned (slot freed) -> next Lease received";
//   (b) dispatch latency with idle workers: one job at a time,
//       Submit-RPC start -> Lease received;
//   (c) the same-size workload on beanstalkd with its binlog (put 4 KiB /
//       reserve / delete over its text protocol), as a yardstick;
//   (d) queue-depth flatness: throughput with 1,000 vs 100,000 (--big: also
//       1,000,000) jobs queued, kept near that depth while workers drain.
// Loopback and unix sockets only; every loop is bounded; child processes are
// the test support's (tests/support): killed when done, and dying with us on
// failure or a signal (PR_SET_PDEATHSIG).
#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "assessq/v1/assessq.grpc.pb.h"
#include "common/channel.h"
#include "common/logging.h"
#include "tests/support/drivers.h"
#include "tests/support/process.h"
#include "tests/support/sim_worker_core.h"
#include "worker/api_client.h"

#ifndef ASSESSQ_BIN_DIR
#define ASSESSQ_BIN_DIR ""
#endif

using namespace assessq;
using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

namespace {

double Seconds(TimePoint a, TimePoint b) {
  return std::chrono::duration<double>(b - a).count();
}
double Millis(TimePoint a, TimePoint b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

[[noreturn]] void Die(const std::string& msg);

// ------------------------------------------------------------ child processes
// (tests/support: aqtest::Child dies with us through PR_SET_PDEATHSIG and is
// killed when its object goes.)

void Die(const std::string& msg) {
  std::fprintf(stderr, "lifecycle_bench: %s\n", msg.c_str());
  std::fflush(stdout);
  std::_Exit(1);  // the children die with us
}

// The command name and utime+stime (seconds) of a /proc/.../stat file; empty
// name and 0 when it cannot be read.
std::pair<std::string, double> StatCpu(const std::string& stat_path) {
  std::ifstream f(stat_path);
  std::string st((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto lp = st.find('('), rp = st.rfind(')');
  if (lp == std::string::npos || rp == std::string::npos) return {"", 0};
  std::istringstream in(st.substr(rp + 2));
  std::string field;
  unsigned long long ut = 0, stt = 0;
  // Fields after the command: state(3) ... utime(14) stime(15).
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) ut = std::stoull(field);
    if (i == 15) stt = std::stoull(field);
  }
  return {st.substr(lp + 1, rp - lp - 1),
          static_cast<double>(ut + stt) / static_cast<double>(::sysconf(_SC_CLK_TCK))};
}

// utime+stime of a process, in seconds.
double ProcessCpuSeconds(pid_t pid) {
  return StatCpu("/proc/" + std::to_string(pid) + "/stat").second;
}

// CPU seconds per thread of a process: tid -> (name, seconds).
std::map<int, std::pair<std::string, double>> ThreadCpu(pid_t pid) {
  std::map<int, std::pair<std::string, double>> out;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    auto cpu = StatCpu((e.path() / "stat").string());
    if (!cpu.first.empty()) out[std::atoi(e.path().filename().c_str())] = cpu;
  }
  return out;
}

// The busiest thread between two snapshots (the engine's single writer
// thread, under load) and its CPU seconds.
std::pair<std::string, double> BusiestThread(
    const std::map<int, std::pair<std::string, double>>& a,
    const std::map<int, std::pair<std::string, double>>& b) {
  std::pair<std::string, double> best{"", 0};
  for (const auto& [tid, v] : b) {
    auto it = a.find(tid);
    double d = v.second - (it == a.end() ? 0 : it->second.second);
    if (d > best.second) best = {v.first + "/" + std::to_string(tid), d};
  }
  return best;
}

// Busy CPU seconds of the whole machine (all CPUs), from /proc/stat.
double MachineBusySeconds() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  unsigned long long v[8] = {0};
  f >> cpu;
  for (auto& x : v) f >> x;
  // user nice system idle iowait irq softirq steal
  unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return static_cast<double>(busy) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double LoadAvg1() {
  std::ifstream f("/proc/loadavg");
  double l = 0;
  f >> l;
  return l;
}

double SelfCpuSeconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// ------------------------------------------------------------------ statistics

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double idx = p / 100.0 * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(idx);
  size_t hi = std::min(lo + 1, v.size() - 1);
  double frac = idx - static_cast<double>(lo);
  return v[lo] * (1 - frac) + v[hi] * frac;
}

std::string Fmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Fmt(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// ------------------------------------------------------------------- payloads

// A metadata file of roughly `pad` extra bytes; "Name" is unique per job.
std::string MakeMetadata(const std::string& name, bool small) {
  nlohmann::json j;
  j["Name"] = name;
  if (!small) {
    j["Link"] = "https://example.org/datasets/" + name;
    j["License"] = "CC BY 4.0";
    j["Year"] = 2021;
    j["Language"] = "ar";
    j["Dialect"] = "Modern Standard Arabic";
    j["Domain"] = "news articles";
    j["Form"] = "text";
    j["Collection Style"] = "crawling";
    j["Description"] =
        "A benchmark dataset of Arabic news sentences collected for classification and "
        "named-entity recognition experiments.";
    j["Volume"] = 12000;
    j["Unit"] = "sentences";
    j["Ethical Risks"] = "Low";
    j["Provider"] = "Bench University";
    j["Access"] = "Free";
    j["Tasks"] = "text classification, named entity recognition";
  }
  return j.dump();
}

// A schema-valid assessment (schemas/assessment.schema.json and the rules of
// server/validation.cc) of about `target` bytes, so it passes the default
// validator and the schema validator alike.
class ResultMaker {
 public:
  explicit ResultMaker(size_t target) {
    const std::string sentence =
        "مجموعة بيانات عربية موثقة جيدا ومناسبة لتصنيف النصوص والتعرف على الكيانات. ";
    nlohmann::json j = Base("X");
    size_t base = j.dump().size();
    std::string summary;
    while (base + summary.size() + sentence.size() < target &&
           summary.size() + sentence.size() < 7000)  // الملخص: at most 4000 characters
      summary += sentence;
    summary_ = summary;
    // A template split at the name, so each result costs a concatenation
    // (the benchmark's own CPU competes with coordinatord on this machine).
    const std::string marker = "@@NAME@@";
    std::string t = Slow(marker);
    size_t pos = 0;
    while (true) {
      size_t q = t.find(marker, pos);
      parts_.push_back(t.substr(pos, q == std::string::npos ? std::string::npos : q - pos));
      if (q == std::string::npos) break;
      pos = q + marker.size();
    }
  }
  std::string Make(const std::string& original_name) const {
    for (char ch : original_name)
      if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20)
        return Slow(original_name);
    std::string out = parts_[0];
    for (size_t i = 1; i < parts_.size(); ++i) out += original_name + parts_[i];
    return out;
  }

 private:
  static nlohmann::json Base(const std::string& name) {
    nlohmann::json j;
    j["الاسم"] = name;
    j["الاسم_الأصلي"] = name;
    j["درجة_الجودة"] = 82;
    j["تقدير_الجودة"] = "ممتاز";
    j["الملخص"] = "";
    j["فحص_البيانات"] = {
        {"الطريقة_المستخدمة", "datasets_lib"},
        {"عدد_العينات_المفحوصة", 50},
        {"معاينة_العينات", {"جملة أولى من العينة", "جملة ثانية من العينة"}},
        {"مشاكل_مكتشفة", {"بعض الجمل مكررة"}},
        {"البيانات_تطابق_الوصف", true}};
    j["نقاط_القوة"] = {"توثيق واضح وشامل", "ترخيص مفتوح يسمح بإعادة الاستخدام"};
    j["نقاط_الضعف"] = {"تغطية محدودة للهجات"};
    j["الاستخدامات_الموصى_بها"] = {"تصنيف النصوص", "التعرف على الكيانات المسماة"};
    j["تفصيل_الجودة"] = {{"سهولة_الوصول", 90}, {"التوثيق", 85},
                         {"السلامة_الأخلاقية", 80}, {"الترخيص", 90},
                         {"قابلية_إعادة_الإنتاج", 75}, {"المراجعة_العلمية", 70},
                         {"جودة_البيانات", 80}};
    j["المصادر_المفتوحة"] = {"https://example.org/datasets/" + name};
    j["تم_تحميل_البيانات"] = true;
    return j;
  }
  std::string Slow(const std::string& original_name) const {
    nlohmann::json j = Base(original_name);
    j["الملخص"] = summary_;
    return j.dump();
  }
  std::string summary_;
  std::vector<std::string> parts_;
};

// ---------------------------------------------------------------- coordinator

struct Coordinator {
  std::string address, op_token, worker_token;
  pid_t pid = -1;
  std::unique_ptr<aqtest::Coordinator> proc;  // the test support's driver
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::OperatorService::Stub> op;

  void Start(const std::string& binary, const std::string& parent, const std::string& tag) {
    const std::string dir = parent + "/" + tag;
    std::filesystem::create_directories(dir);
    proc = std::make_unique<aqtest::Coordinator>(
        dir, aqtest::CoordinatorOptions{.lease_seconds = 60, .log_level = "warn", .binary = binary});
    try {
      proc->CreateStandardTokens();
      proc->Start();  // ready when its health service says SERVING (30 s at most)
      op_token = aqtest::ReadToken(proc->operator_token_file());
      worker_token = aqtest::ReadToken(proc->worker_token_file());
    } catch (const std::exception& e) {
      Die(std::string("coordinatord: ") + e.what());
    }
    address = proc->address();
    pid = proc->child()->pid();
    channel = proc->NewChannel();
    op = v1::OperatorService::NewStub(channel);
  }

  void Stop() {
    op.reset();
    channel.reset();
    if (proc && proc->child()) proc->child()->Terminate(5000);  // SIGTERM, then SIGKILL
    pid = -1;
  }

  // Submits `n` jobs named PREFIX-i (i from `first`); returns how many were created.
  int64_t Submit(const std::string& batch, const std::string& prefix, int64_t first, int64_t n,
                 bool small_metadata) {
    v1::SubmitRequest req;
    req.set_batch(batch);
    for (int64_t i = first; i < first + n; ++i) {
      auto* f = req.add_files();
      std::string name = Fmt("%s-%08lld", prefix.c_str(), static_cast<long long>(i));
      f->set_source_name(name + ".json");
      f->set_content(MakeMetadata(name, small_metadata));
    }
    grpc::ClientContext ctx;
    AddAuth(ctx, op_token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    v1::SubmitResponse resp;
    auto s = op->Submit(&ctx, req, &resp);
    if (!s.ok()) Die("Submit failed: " + s.error_message());
    int64_t created = 0;
    for (const auto& it : resp.items()) {
      if (it.outcome() == v1::SubmitItem::OUTCOME_CREATED) ++created;
      else Die("Submit: " + it.source_name() + " not created: " + it.error());
    }
    return created;
  }
};

// ---------------------------------------------------------- simulated workers

// Shared by every simulated worker of one run.
struct RunStats {
  std::atomic<int64_t> completed{0};
  std::atomic<int64_t> errors{0};
  std::atomic<int64_t> not_succeeded{0};
  std::vector<TimePoint> completion_times;  // indexed by completion order
  std::mutex mu;
  std::vector<double> lease_latency_ms;     // guarded by mu
  std::condition_variable cv;               // notified on every completion
  std::string first_error;                  // guarded by mu
  // Called on every lease as it arrives (dispatch-latency probe).
  std::function<void(const v1::Lease&, TimePoint)> on_lease;  // set before workers start
  std::mutex on_lease_mu;

  explicit RunStats(size_t capacity) { completion_times.resize(capacity); }

  void NoteCompletion(TimePoint t) {
    int64_t i = completed.fetch_add(1);
    if (static_cast<size_t>(i) < completion_times.size()) completion_times[i] = t;
    cv.notify_all();
  }
  void NoteError(const std::string& e) {
    errors.fetch_add(1);
    std::lock_guard<std::mutex> l(mu);
    if (first_error.empty()) first_error = e;
  }
};

// A simulated worker (tests/support/sim_worker_core.h) whose hooks measure
// lease latency: each lease is matched to the oldest freed slot (FIFO).
class SimWorker {
 public:
  SimWorker(const Coordinator& c, std::string name, int slots, RunStats* stats,
            const ResultMaker* results)
      : stats_(stats), initial_(slots) {
    auto cl = ApiClient::Create({c.address, c.worker_token, {}, name, slots});
    if (!cl.ok()) Die(std::string(cl.status().message()));
    aqtest::SimWorkerHooks hooks;
    hooks.make_result = [results](int, const v1::Lease& lease, v1::CompleteRequest& c) {
      c.set_result_json(results->Make(lease.dataset_name()));
      c.set_exit_code(0);
    };
    hooks.on_lease = [this](const v1::Lease& lease, TimePoint now) { OnLease(lease, now); };
    hooks.on_heartbeat_error = [this](const absl::Status& s) {
      stats_->NoteError("Heartbeat: " + std::string(s.message()));
      return false;  // the slot frees and the lease counts, so the run still ends (and fails)
    };
    hooks.on_complete = [this](const v1::CompleteRequest&,
                               const absl::StatusOr<v1::CompleteResponse>& r) {
      if (!r.ok()) {
        stats_->NoteError("Complete: " + std::string(r.status().message()));
      } else if (r->job_state() != v1::JOB_STATE_SUCCEEDED) {
        stats_->not_succeeded.fetch_add(1);
        if (r->validation_errors_size() > 0)
          stats_->NoteError("result refused: " + r->validation_errors(0));
      }
    };
    hooks.on_slot_free = [this](TimePoint t) {
      FreeSlot(t);
      stats_->NoteCompletion(t);
    };
    core_ = std::make_unique<aqtest::SimWorkerCore>(std::move(*cl),
                                                    aqtest::SimWorkerOptions{.slots = slots},
                                                    std::move(hooks));
  }

  void Start() { core_->Start(); }
  bool welcomed() const { return core_->welcomed(); }
  void Stop() { core_->Stop(); }

 private:
  void OnLease(const v1::Lease& lease, TimePoint now) {
    {
      std::lock_guard<std::mutex> l(stats_->on_lease_mu);
      if (stats_->on_lease) stats_->on_lease(lease, now);
    }
    std::lock_guard<std::mutex> l(mu_);
    // The first `slots` leases fill empty slots and are not latency samples.
    if (initial_ > 0) {
      --initial_;
    } else if (!freed_.empty()) {
      double ms = Millis(freed_.front(), now);
      freed_.pop_front();
      std::lock_guard<std::mutex> sl(stats_->mu);
      stats_->lease_latency_ms.push_back(ms);
    } else {
      early_leases_.push_back(now);  // the lease beat the Complete reply
    }
  }

  void FreeSlot(TimePoint t) {
    std::lock_guard<std::mutex> l(mu_);
    if (!early_leases_.empty()) {
      early_leases_.pop_front();
      std::lock_guard<std::mutex> sl(stats_->mu);
      stats_->lease_latency_ms.push_back(0.0);
    } else {
      freed_.push_back(t);
    }
  }

  RunStats* stats_;
  std::unique_ptr<aqtest::SimWorkerCore> core_;
  std::mutex mu_;
  std::deque<TimePoint> freed_;         // guarded by mu_
  std::deque<TimePoint> early_leases_;  // guarded by mu_
  int initial_;                         // guarded by mu_
};

struct WorkerPool {
  std::vector<std::unique_ptr<SimWorker>> workers;
  void Start(const Coordinator& c, int n, int slots, RunStats* stats, const ResultMaker* rm,
             const std::string& prefix) {
    for (int i = 0; i < n; ++i)
      workers.push_back(std::make_unique<SimWorker>(c, Fmt("%s-w%02d", prefix.c_str(), i), slots,
                                                    stats, rm));
    for (auto& w : workers) w->Start();
    auto deadline = SteadyClock::now() + std::chrono::seconds(20);
    for (auto& w : workers)
      while (!w->welcomed()) {
        if (SteadyClock::now() > deadline) Die("workers were not welcomed within 20 s");
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
  }
  void Stop() {
    for (auto& w : workers) w->Stop();
    workers.clear();
  }
};

// Waits until `stats.completed` reaches `n` or the deadline passes.
bool WaitCompleted(RunStats& stats, int64_t n, TimePoint deadline) {
  std::unique_lock<std::mutex> l(stats.mu);
  while (stats.completed.load() < n) {
    if (SteadyClock::now() > deadline) return false;
    stats.cv.wait_for(l, std::chrono::milliseconds(50));
  }
  return true;
}

// Completions per second between the lo-th and hi-th completion.
double WindowRate(const RunStats& s, int64_t lo, int64_t hi) {
  if (hi <= lo) return 0;
  double dt = Seconds(s.completion_times[lo], s.completion_times[hi]);
  return dt > 0 ? static_cast<double>(hi - lo) / dt : 0;
}

// --------------------------------------------------------------------- config

struct Config {
  int workers = 8;
  int slots = 8;
  int64_t jobs = 20000;
  int64_t chunk = 500;
  int dispatch_samples = 200;
  int64_t depth_small = 1000;
  int64_t depth_large = 100000;
  int64_t depth_big = 1000000;
  int64_t depth_jobs = 0;  // lifecycles measured per depth; 0 = jobs
  int bs_conns = 0;        // 0 = workers * slots
  int result_bytes = 4096;
  bool big = false;
  bool quick = false;
  bool skip_beanstalkd = false;
  bool beanstalkd_fsync = true;  // also measure -f0 (skipped in --quick)
  std::string coordinatord;
  std::string beanstalkd = "/usr/bin/beanstalkd";
  std::string tmp;
  std::string perf;  // perf record output for phase (a)
  std::string phases = "abcd";
  bool keep = false;
};

// ------------------------------------------------------------------ phase (a)

struct LifecycleResult {
  double e2e_rate = 0, steady_rate = 0, seconds = 0, submit_seconds = 0;
  double lease_p50 = 0, lease_p99 = 0, lease_max = 0;
  size_t lease_samples = 0;
  double server_cpu_us = 0, bench_cpu_us = 0;
  double other_cpus = 0;  // CPUs kept busy by other processes meanwhile
  std::string hot_thread;
  double hot_thread_us = 0;  // CPU per lifecycle of the busiest coordinatord thread
};

LifecycleResult RunLifecycle(Coordinator& c, const Config& cfg, RunStats& stats,
                             WorkerPool& pool, const ResultMaker& rm) {
  pool.Start(c, cfg.workers, cfg.slots, &stats, &rm, "a");
  std::unique_ptr<aqtest::Child> perf;
  if (!cfg.perf.empty()) {
    perf = aqtest::Child::Spawn({"/usr/bin/perf", "record", "-e", "cpu-clock", "-g", "-F", "999", "-o",
                                 cfg.perf, "-p", std::to_string(c.pid)},
                                cfg.perf + ".log");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  double cpu0 = ProcessCpuSeconds(c.pid), self0 = SelfCpuSeconds();
  double busy0 = MachineBusySeconds();
  auto threads0 = ThreadCpu(c.pid);
  TimePoint t0 = SteadyClock::now();
  int64_t submitted = 0;
  while (submitted < cfg.jobs) {
    int64_t n = std::min(cfg.chunk, cfg.jobs - submitted);
    submitted += c.Submit("bench-a", "a", submitted, n, false);
  }
  TimePoint t_submitted = SteadyClock::now();
  auto deadline = t0 + std::chrono::seconds(600);
  if (!WaitCompleted(stats, cfg.jobs, deadline))
    Die(Fmt("phase (a): only %lld of %lld lifecycles finished within 600 s",
            static_cast<long long>(stats.completed.load()), static_cast<long long>(cfg.jobs)));
  TimePoint t1 = SteadyClock::now();
  double cpu1 = ProcessCpuSeconds(c.pid), self1 = SelfCpuSeconds();
  double busy1 = MachineBusySeconds();
  auto hot = BusiestThread(threads0, ThreadCpu(c.pid));
  if (perf) perf->Kill(SIGINT);  // perf writes its file; SIGKILL past 10 s
  LifecycleResult r;
  r.seconds = Seconds(t0, stats.completion_times[cfg.jobs - 1]);
  r.submit_seconds = Seconds(t0, t_submitted);
  r.e2e_rate = static_cast<double>(cfg.jobs) / r.seconds;
  r.steady_rate = WindowRate(stats, cfg.jobs / 10, cfg.jobs * 9 / 10);
  {
    std::lock_guard<std::mutex> l(stats.mu);
    r.lease_samples = stats.lease_latency_ms.size();
    r.lease_p50 = Percentile(stats.lease_latency_ms, 50);
    r.lease_p99 = Percentile(stats.lease_latency_ms, 99);
    r.lease_max = Percentile(stats.lease_latency_ms, 100);
  }
  r.server_cpu_us = (cpu1 - cpu0) * 1e6 / static_cast<double>(cfg.jobs);
  r.bench_cpu_us = (self1 - self0) * 1e6 / static_cast<double>(cfg.jobs);
  r.other_cpus = std::max(0.0, (busy1 - busy0) - (cpu1 - cpu0) - (self1 - self0)) /
                 Seconds(t0, t1);
  if (perf) r.other_cpus = -1;  // perf itself runs meanwhile
  r.hot_thread = hot.first;
  r.hot_thread_us = hot.second * 1e6 / static_cast<double>(cfg.jobs);
  return r;
}

// ------------------------------------------------------------------ phase (b)

struct DispatchResult {
  double p50 = 0, p99 = 0, max = 0, submit_p50 = 0, submit_p99 = 0;
  int samples = 0;
};

DispatchResult RunDispatch(Coordinator& c, const Config& cfg, RunStats& stats) {
  std::mutex mu;
  std::condition_variable cv;
  std::string want;
  std::optional<TimePoint> got;
  {
    std::lock_guard<std::mutex> l(stats.on_lease_mu);
    stats.on_lease = [&](const v1::Lease& lease, TimePoint t) {
      std::lock_guard<std::mutex> l2(mu);
      if (lease.dataset_key() == want && !got) {
        got = t;
        cv.notify_all();
      }
    };
  }
  std::vector<double> lat, submit_lat;
  int64_t base = stats.completed.load();
  for (int i = 0; i < cfg.dispatch_samples; ++i) {
    std::string key = Fmt("b-%08d", i);
    {
      std::lock_guard<std::mutex> l(mu);
      want = key;
      got.reset();
    }
    TimePoint t0 = SteadyClock::now();
    c.Submit("bench-b", "b", i, 1, false);
    TimePoint t_resp = SteadyClock::now();
    {
      std::unique_lock<std::mutex> l(mu);
      if (!cv.wait_for(l, std::chrono::seconds(10), [&] { return got.has_value(); }))
        Die(Fmt("phase (b): lease for %s not received within 10 s", key.c_str()));
      lat.push_back(Millis(t0, *got));
    }
    submit_lat.push_back(Millis(t0, t_resp));
    // Let the worker finish so every sample starts with all slots idle.
    if (!WaitCompleted(stats, base + i + 1, SteadyClock::now() + std::chrono::seconds(10)))
      Die("phase (b): job not completed within 10 s");
  }
  {
    std::lock_guard<std::mutex> l(stats.on_lease_mu);
    stats.on_lease = nullptr;
  }
  DispatchResult r;
  r.samples = static_cast<int>(lat.size());
  r.p50 = Percentile(lat, 50);
  r.p99 = Percentile(lat, 99);
  r.max = Percentile(lat, 100);
  r.submit_p50 = Percentile(submit_lat, 50);
  r.submit_p99 = Percentile(submit_lat, 99);
  return r;
}

// ------------------------------------------------------------------ phase (c)

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) Die("bind: free port");
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

class BeanConn {
 public:
  bool Connect(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
      return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{30, 0};  // bounded: no read waits longer than 30 s
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return true;
  }
  ~BeanConn() {
    if (fd_ >= 0) ::close(fd_);
  }
  void Send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) Die("beanstalkd: send failed");
      off += static_cast<size_t>(n);
    }
  }
  std::string Line() {
    while (true) {
      auto p = buf_.find("\r\n");
      if (p != std::string::npos) {
        std::string line = buf_.substr(0, p);
        buf_.erase(0, p + 2);
        return line;
      }
      Fill();
    }
  }
  void Skip(size_t n) {  // body plus its CRLF
    while (buf_.size() < n + 2) Fill();
    buf_.erase(0, n + 2);
  }

 private:
  void Fill() {
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) Die("beanstalkd: connection closed or timed out");
    buf_.append(tmp, static_cast<size_t>(n));
  }
  int fd_ = -1;
  std::string buf_;
};

struct BeanResult {
  double jobs_per_s = 0, ops_per_s = 0, seconds = 0;
  int conns = 0;
  double server_cpu_us = 0;
};

BeanResult RunBeanstalkd(const Config& cfg, const std::string& dir, bool fsync_always,
                         int64_t jobs) {
  std::filesystem::create_directories(dir);
  int port = FreePort();
  std::vector<std::string> argv = {cfg.beanstalkd, "-l", "127.0.0.1", "-p",
                                   std::to_string(port), "-b", dir};
  if (fsync_always) argv.push_back("-f0");
  std::unique_ptr<aqtest::Child> server = aqtest::Child::Spawn(argv, dir + ".log");
  const pid_t pid = server->pid();
  // Ready when it accepts a connection (bounded: 10 s).
  auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (true) {
    BeanConn probe;
    if (probe.Connect(port)) break;
    if (SteadyClock::now() > deadline) Die("beanstalkd did not accept connections in 10 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int conns = cfg.bs_conns > 0 ? cfg.bs_conns : cfg.workers * cfg.slots;
  int64_t per = (jobs + conns - 1) / conns;
  std::string payload(static_cast<size_t>(cfg.result_bytes), 'x');
  std::string put = Fmt("put 1024 0 60 %zu\r\n", payload.size()) + payload + "\r\n";
  std::atomic<int64_t> done{0};
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  double cpu0 = ProcessCpuSeconds(pid);
  TimePoint t0;
  for (int i = 0; i < conns; ++i) {
    threads.emplace_back([&, i] {
      BeanConn c;
      if (!c.Connect(port)) Die("beanstalkd: connect failed");
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      int64_t mine = std::max<int64_t>(0, std::min<int64_t>(per, jobs - per * i));
      for (int64_t k = 0; k < mine; ++k) {
        c.Send(put);
        std::string r = c.Line();
        if (r.rfind("INSERTED ", 0) != 0) Die("beanstalkd put: " + r);
        c.Send("reserve-with-timeout 10\r\n");
        r = c.Line();
        if (r.rfind("RESERVED ", 0) != 0) Die("beanstalkd reserve: " + r);
        unsigned long long id = 0;
        size_t bytes = 0;
        std::sscanf(r.c_str(), "RESERVED %llu %zu", &id, &bytes);
        c.Skip(bytes);
        c.Send(Fmt("delete %llu\r\n", id));
        r = c.Line();
        if (r != "DELETED") Die("beanstalkd delete: " + r);
        done.fetch_add(1);
      }
    });
  }
  while (ready.load() < conns) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  t0 = SteadyClock::now();
  go = true;
  for (auto& t : threads) t.join();
  TimePoint t1 = SteadyClock::now();
  double cpu1 = ProcessCpuSeconds(pid);
  server->Terminate(5000);
  BeanResult r;
  r.conns = conns;
  r.seconds = Seconds(t0, t1);
  r.jobs_per_s = static_cast<double>(done.load()) / r.seconds;
  r.ops_per_s = 3 * r.jobs_per_s;
  r.server_cpu_us = (cpu1 - cpu0) * 1e6 / static_cast<double>(std::max<int64_t>(1, done.load()));
  return r;
}

// ------------------------------------------------------------------ phase (d)

struct DepthResult {
  int64_t depth = 0;
  double prefill_s = 0, prefill_rate = 0, rate = 0, steady_rate = 0;
  double lease_p50 = 0, lease_p99 = 0;
  double server_cpu_us = 0, other_cpus = 0, hot_thread_us = 0;
};

DepthResult RunDepth(const Config& cfg, const std::string& tmp, int64_t depth,
                     const ResultMaker& rm) {
  Coordinator c;
  c.Start(cfg.coordinatord, tmp, Fmt("depth-%lld", static_cast<long long>(depth)));
  DepthResult r;
  r.depth = depth;
  const int64_t prefill_chunk = 5000;
  TimePoint p0 = SteadyClock::now();
  int64_t submitted = 0;
  while (submitted < depth) {
    int64_t n = std::min(prefill_chunk, depth - submitted);
    submitted += c.Submit("bench-d", "d", submitted, n, true);
  }
  r.prefill_s = Seconds(p0, SteadyClock::now());
  r.prefill_rate = static_cast<double>(depth) / r.prefill_s;
  // Let the kernel write back the prefill before measuring, so every depth
  // starts with a clean page cache rather than with writeback in progress.
  ::sync();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  const int64_t k = cfg.depth_jobs > 0 ? cfg.depth_jobs : cfg.jobs;
  RunStats stats(static_cast<size_t>(k) + static_cast<size_t>(cfg.workers * cfg.slots) + 16);
  WorkerPool pool;
  double cpu0 = ProcessCpuSeconds(c.pid), self0 = SelfCpuSeconds();
  double busy0 = MachineBusySeconds();
  auto threads0 = ThreadCpu(c.pid);
  pool.Start(c, cfg.workers, cfg.slots, &stats, &rm, "d");
  // The feeder keeps about `depth` jobs queued: whenever fewer than `depth`
  // are waiting it tops the queue up by one chunk (same small metadata).
  std::atomic<bool> stop_feeder{false};
  const int64_t in_flight = cfg.workers * cfg.slots;
  const int64_t feed_chunk = std::max<int64_t>(1, std::min<int64_t>(500, depth / 2));
  std::thread feeder([&] {
    while (!stop_feeder.load()) {
      int64_t waiting = submitted - stats.completed.load() - in_flight;
      if (waiting < depth) {
        submitted += c.Submit("bench-d", "d", submitted, feed_chunk, true);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
  });
  TimePoint t0 = SteadyClock::now();
  bool ok = WaitCompleted(stats, k, t0 + std::chrono::seconds(600));
  stop_feeder = true;
  feeder.join();
  if (!ok) Die(Fmt("phase (d) depth %lld: only %lld of %lld lifecycles within 600 s",
                   static_cast<long long>(depth), static_cast<long long>(stats.completed.load()),
                   static_cast<long long>(k)));
  double cpu1 = ProcessCpuSeconds(c.pid), self1 = SelfCpuSeconds();
  double busy1 = MachineBusySeconds();
  r.hot_thread_us = BusiestThread(threads0, ThreadCpu(c.pid)).second * 1e6 / static_cast<double>(k);
  r.other_cpus = std::max(0.0, (busy1 - busy0) - (cpu1 - cpu0) - (self1 - self0)) /
                 Seconds(t0, SteadyClock::now());
  pool.Stop();
  r.rate = static_cast<double>(k) / Seconds(t0, stats.completion_times[k - 1]);
  r.steady_rate = WindowRate(stats, k / 10, k * 9 / 10);
  {
    std::lock_guard<std::mutex> l(stats.mu);
    r.lease_p50 = Percentile(stats.lease_latency_ms, 50);
    r.lease_p99 = Percentile(stats.lease_latency_ms, 99);
  }
  r.server_cpu_us = (cpu1 - cpu0) * 1e6 / static_cast<double>(k);
  if (stats.errors.load() > 0)
    Die(Fmt("phase (d): %lld errors; first: %s", static_cast<long long>(stats.errors.load()),
            stats.first_error.c_str()));
  c.Stop();
  return r;
}

std::string DefaultCoordinatord(const char* argv0) {
  std::string dir = ASSESSQ_BIN_DIR;
  if (!dir.empty() && ::access((dir + "/coordinatord").c_str(), X_OK) == 0)
    return dir + "/coordinatord";
  // Next to this program.
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto p = self.parent_path() / "coordinatord";
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  (void)argv0;
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app{"lifecycle_bench: load driver for coordinatord (and beanstalkd as a yardstick)"};
  app.add_option("--workers", cfg.workers, "simulated workers (each its own ApiClient)")
      ->check(CLI::Range(1, 256));
  app.add_option("--slots", cfg.slots, "slots per worker")->check(CLI::Range(1, 256));
  app.add_option("--jobs", cfg.jobs, "jobs in the lifecycle run (a), beanstalkd (c) and per "
                                     "depth in (d)")
      ->check(CLI::Range(int64_t{10}, int64_t{10'000'000}));
  app.add_option("--chunk", cfg.chunk, "files per Submit in (a)")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}));
  app.add_option("--dispatch-samples", cfg.dispatch_samples, "single-job submits in (b)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--depth-jobs", cfg.depth_jobs, "lifecycles measured per depth (0 = --jobs)");
  app.add_option("--bs-conns", cfg.bs_conns, "beanstalkd connections (0 = workers x slots)");
  app.add_option("--result-bytes", cfg.result_bytes, "result / payload size")
      ->check(CLI::Range(64, 1 << 20));
  app.add_flag("--big", cfg.big, "also measure with 1,000,000 jobs queued in (d)");
  app.add_flag("--quick", cfg.quick, "small sizes for a smoke run (< 30 s)");
  app.add_flag("--skip-beanstalkd", cfg.skip_beanstalkd, "skip (c)");
  app.add_option("--coordinatord", cfg.coordinatord, "coordinatord binary");
  app.add_option("--beanstalkd", cfg.beanstalkd, "beanstalkd binary");
  app.add_option("--tmp", cfg.tmp, "parent of the scratch directory (default $TMPDIR or /tmp)");
  app.add_option("--perf", cfg.perf, "perf record coordinatord during (a) into this file");
  app.add_flag("--keep", cfg.keep, "keep the scratch directory");
  app.add_option("--phases", cfg.phases, "which phases to run, e.g. 'ab' (default abcd)");
  CLI11_PARSE(app, argc, argv);
  bool jobs_given = app.count("--jobs") > 0;
  if (cfg.quick) {
    if (!jobs_given) cfg.jobs = 2000;
    if (!app.count("--workers")) cfg.workers = 4;
    if (!app.count("--slots")) cfg.slots = 4;
    if (!app.count("--dispatch-samples")) cfg.dispatch_samples = 50;
    cfg.depth_small = 1000;
    cfg.depth_large = 10000;
    if (!app.count("--depth-jobs")) cfg.depth_jobs = 1000;
    cfg.big = false;
    cfg.beanstalkd_fsync = false;
  }
  (void)SetupLogging("text", "error");

  if (cfg.coordinatord.empty()) cfg.coordinatord = DefaultCoordinatord(argv[0]);
  if (cfg.coordinatord.empty() || ::access(cfg.coordinatord.c_str(), X_OK) != 0)
    Die("coordinatord not found; pass --coordinatord PATH");
  if (cfg.tmp.empty()) cfg.tmp = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
  std::string tmpl = cfg.tmp + "/aqbench-XXXXXX";
  std::vector<char> tbuf(tmpl.begin(), tmpl.end());
  tbuf.push_back('\0');
  if (!::mkdtemp(tbuf.data())) Die("mkdtemp failed in " + cfg.tmp);
  const std::string tmp = tbuf.data();

  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  std::printf("lifecycle_bench: %d workers x %d slots, %lld jobs, %d-byte results, "
              "%u CPUs, load average %.2f at start; scratch %s\n",
              cfg.workers, cfg.slots, static_cast<long long>(cfg.jobs), cfg.result_bytes,
              std::thread::hardware_concurrency(), LoadAvg1(), tmp.c_str());
  std::printf("coordinatord: %s (unix socket, SQLite WAL synchronous=FULL)\n",
              cfg.coordinatord.c_str());
  std::fflush(stdout);
  ResultMaker rm(static_cast<size_t>(cfg.result_bytes));
  std::printf("result JSON: %zu bytes, metadata: %zu bytes\n", rm.Make("a-00000000").size(),
              MakeMetadata("a-00000000", false).size());

  const bool run_a = cfg.phases.find('a') != std::string::npos;
  const bool run_b = cfg.phases.find('b') != std::string::npos;
  const bool run_c = cfg.phases.find('c') != std::string::npos && !cfg.skip_beanstalkd;
  const bool run_d = cfg.phases.find('d') != std::string::npos;
  std::optional<LifecycleResult> a;
  std::optional<DispatchResult> b;

  // (a) and (b) share one coordinator.
  if (run_a || run_b) {
    Coordinator c;
    c.Start(cfg.coordinatord, tmp, "ab");
    std::printf("coordinatord pid %d for (a) and (b)\n", static_cast<int>(c.pid));
    std::fflush(stdout);
    RunStats stats(static_cast<size_t>(cfg.jobs + cfg.dispatch_samples) +
                   static_cast<size_t>(cfg.workers * cfg.slots) + 16);
    WorkerPool pool;
    if (run_a) {
      a = RunLifecycle(c, cfg, stats, pool, rm);
      if (stats.errors.load() > 0 || stats.not_succeeded.load() > 0)
        Die(Fmt("phase (a): %lld errors, %lld not succeeded; first: %s",
                static_cast<long long>(stats.errors.load()),
                static_cast<long long>(stats.not_succeeded.load()), stats.first_error.c_str()));
      std::printf("\n(a) full lifecycle (submit in chunks of %lld -> lease -> heartbeat(running) "
                  "-> complete %d B)\n",
                  static_cast<long long>(cfg.chunk), cfg.result_bytes);
      std::printf("    %lld lifecycles in %.2f s (all submitted after %.2f s)\n",
                  static_cast<long long>(cfg.jobs), a->seconds, a->submit_seconds);
      std::printf("    lifecycles/s end to end (first submit .. last complete): %.0f\n",
                  a->e2e_rate);
      std::printf("    lifecycles/s steady state (completions 10%%..90%%):        %.0f\n",
                  a->steady_rate);
      std::printf("    lease latency (Complete returned -> next Lease), %zu samples: p50 %.2f "
                  "ms, p99 %.2f ms, max %.2f ms\n",
                  a->lease_samples, a->lease_p50, a->lease_p99, a->lease_max);
      std::printf("    CPU per lifecycle: coordinatord %.0f us, bench (clients) %.0f us\n",
                  a->server_cpu_us, a->bench_cpu_us);
      std::printf("    busiest coordinatord thread (%s, the engine's writer): %.0f us per "
                  "lifecycle, a serial ceiling of %.0f lifecycles/s\n",
                  a->hot_thread.c_str(), a->hot_thread_us,
                  a->hot_thread_us > 0 ? 1e6 / a->hot_thread_us : 0.0);
      if (a->other_cpus >= 0)
        std::printf("    other processes kept %.2f CPUs busy meanwhile%s\n", a->other_cpus,
                    a->other_cpus > 0.2
                        ? " (figures are contaminated: rerun on a quiet machine)"
                        : "");
      std::fflush(stdout);
    } else {
      pool.Start(c, cfg.workers, cfg.slots, &stats, &rm, "a");
    }
    if (run_b) {
      b = RunDispatch(c, cfg, stats);
      std::printf("\n(b) dispatch latency, idle workers, one job at a time (%d samples%s)\n",
                  b->samples, run_a ? ", after (a)" : "");
      std::printf("    Submit-RPC start -> Lease received: p50 %.2f ms, p99 %.2f ms, max %.2f "
                  "ms\n",
                  b->p50, b->p99, b->max);
      std::printf("    (Submit RPC itself: p50 %.2f ms, p99 %.2f ms)\n", b->submit_p50,
                  b->submit_p99);
      std::fflush(stdout);
    }
    pool.Stop();
    c.Stop();
  }

  // (c) beanstalkd.
  std::optional<BeanResult> bs, bs_f0;
  if (run_c) {
    if (::access(cfg.beanstalkd.c_str(), X_OK) != 0) {
      std::printf("\n(c) beanstalkd: %s not found (apt-get install beanstalkd); skipped\n",
                  cfg.beanstalkd.c_str());
    } else {
      bs = RunBeanstalkd(cfg, tmp + "/beanstalkd-binlog", false, cfg.jobs);
      std::printf("\n(c) beanstalkd 127.0.0.1, binlog (-b), fsync as shipped (no -f: never "
                  "fsyncs), %d connections, put %d B / reserve / delete, %lld jobs\n",
                  bs->conns, cfg.result_bytes, static_cast<long long>(cfg.jobs));
      std::printf("    beanstalkd: %.0f jobs/s = %.0f ops/s (CPU %.0f us/job)\n", bs->jobs_per_s,
                  bs->ops_per_s, bs->server_cpu_us);
      if (cfg.beanstalkd_fsync) {
        // Fsync per write is slow; a bounded sample is enough for its rate.
        const int64_t f0_jobs = std::min<int64_t>(cfg.jobs, 2000);
        bs_f0 = RunBeanstalkd(cfg, tmp + "/beanstalkd-binlog-f0", true, f0_jobs);
        std::printf("    beanstalkd -f0 (fsync every binlog write; %lld jobs): %.0f jobs/s = "
                    "%.0f ops/s\n",
                    static_cast<long long>(f0_jobs), bs_f0->jobs_per_s, bs_f0->ops_per_s);
      }
      if (a) {
        std::printf("    assessq/beanstalkd = %.2f (lifecycles/s end to end vs beanstalkd "
                    "jobs/s)\n",
                    a->e2e_rate / bs->jobs_per_s);
        std::printf("    assessq steady/beanstalkd = %.2f\n", a->steady_rate / bs->jobs_per_s);
        if (bs_f0)
          std::printf("    assessq/beanstalkd-f0 = %.2f\n", a->e2e_rate / bs_f0->jobs_per_s);
      }
    }
    std::fflush(stdout);
  }

  // (d) queue depth.
  std::vector<DepthResult> ds;
  if (run_d) {
    std::vector<int64_t> depths = {cfg.depth_small, cfg.depth_large};
    if (cfg.big) depths.push_back(cfg.depth_big);
    std::printf("\n(d) queue depth (about DEPTH jobs kept queued while %lld lifecycles run; "
                "small metadata)\n",
                static_cast<long long>(cfg.depth_jobs > 0 ? cfg.depth_jobs : cfg.jobs));
    std::fflush(stdout);
    for (int64_t d : depths) {
      ds.push_back(RunDepth(cfg, tmp, d, rm));
      const DepthResult& r = ds.back();
      std::printf("    depth %9lld: prefill %.1f s (%.0f jobs/s); %.0f lifecycles/s (steady "
                  "%.0f), lease p50 %.2f ms p99 %.2f ms; coordinatord CPU %.0f us/lifecycle "
                  "(engine thread %.0f us); other processes %.2f CPUs\n",
                  static_cast<long long>(r.depth), r.prefill_s, r.prefill_rate, r.rate,
                  r.steady_rate, r.lease_p50, r.lease_p99, r.server_cpu_us, r.hot_thread_us,
                  r.other_cpus);
      std::fflush(stdout);
    }
    for (size_t i = 1; i < ds.size(); ++i)
      std::printf("    throughput ratio depth %lld / depth %lld = %.2f\n",
                  static_cast<long long>(ds[i].depth), static_cast<long long>(ds[0].depth),
                  ds[i].rate / ds[0].rate);
  }

  std::printf("\nsummary:");
  if (a)
    std::printf(" lifecycles/s %.0f (steady %.0f), lease p99 %.2f ms;", a->e2e_rate,
                a->steady_rate, a->lease_p99);
  if (b) std::printf(" dispatch p99 %.2f ms;", b->p99);
  if (a && bs) std::printf(" assessq/beanstalkd = %.2f;", a->e2e_rate / bs->jobs_per_s);
  for (size_t i = 1; i < ds.size(); ++i)
    std::printf(" depth ratio %lld/%lld = %.2f;", static_cast<long long>(ds[i].depth),
                static_cast<long long>(ds[0].depth), ds[i].rate / ds[0].rate);
  std::printf("\n");
  std::fflush(stdout);
  if (!cfg.keep) {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
  } else {
    std::printf("scratch kept: %s\n", tmp.c_str());
  }
  return 0;
}
