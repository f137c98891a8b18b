#include "tests/e2e/e2e_harness.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

extern char** environ;

#ifndef ASSESSQ_COORDINATORD
#error "ASSESSQ_COORDINATORD, ASSESSQ_WORKERD, ASSESSQ_ASSESSCTL and MASADER_DIR must be defined"
#endif

namespace aqe2e {
namespace fs = std::filesystem;

std::string CoordinatordBin() { return ASSESSQ_COORDINATORD; }
std::string WorkerdBin() { return ASSESSQ_WORKERD; }
std::string AssessctlBin() { return ASSESSQ_ASSESSCTL; }
std::string MasaderDir() { return MASADER_DIR; }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool PollUntil(const std::function<bool()>& pred, int timeout_ms, int interval_ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
}

// ------------------------------------------------------------------ files

TempDir::TempDir() {
  char tmpl[] = "/tmp/aqe2e-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  path_ = tmpl;
}

TempDir::~TempDir() {
  const char* keep = std::getenv("ASSESSQ_KEEP_TEST_DIRS");
  if (keep && *keep && std::string(keep) != "0") return;
  UnmountBelow(path_);
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void UnmountBelow(const std::string& dir) {
  // Deepest first; /proc/self/mountinfo field 5 is the mount point (octal
  // escapes for spaces; our paths have none).
  std::vector<std::string> points;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() > 4 && (f[4] == dir || absl::StartsWith(f[4], dir + "/"))) points.push_back(f[4]);
  }
  std::sort(points.begin(), points.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& p : points) umount2(p.c_str(), MNT_DETACH);
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  return "..." + text.substr(text.size() - max_bytes);
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec))
    out.push_back(it->path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// -------------------------------------------------------------- processes

namespace {

// Our environment without ASSESSQ_* (so a developer's settings never steer
// the children), plus `extra`.
std::vector<std::string> ChildEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (!absl::StartsWith(*e, "ASSESSQ_")) env.push_back(*e);
  for (const auto& x : extra) env.push_back(x);
  return env;
}

struct CArgs {
  std::vector<std::string> store;
  std::vector<char*> ptrs;
  explicit CArgs(const std::vector<std::string>& v) : store(v) {
    for (auto& s : store) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
  char** get() { return ptrs.data(); }
};

int DecodeStatus(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return -1000;
}

}  // namespace

std::string RunResult::Describe() const {
  return absl::StrCat("exit ", exit_code, timed_out ? " (timed out)" : "", "\n--- stdout ---\n",
                      Tail(out, 3000), "\n--- stderr ---\n", Tail(err, 3000));
}

RunResult Run(const std::vector<std::string>& argv, int timeout_ms,
              const std::vector<std::string>& extra_env) {
  char out_tmpl[] = "/tmp/aqe2e-out-XXXXXX";
  char err_tmpl[] = "/tmp/aqe2e-err-XXXXXX";
  int out_fd = mkstemp(out_tmpl), err_fd = mkstemp(err_tmpl);
  if (out_fd < 0 || err_fd < 0) throw std::runtime_error("mkstemp failed");
  unlink(out_tmpl);
  unlink(err_tmpl);
  CArgs args(argv), env(ChildEnv(extra_env));
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execve(args.get()[0], args.get(), env.get());
    _exit(127);
  }
  RunResult r;
  int status = 0;
  bool done = PollUntil(
      [&] {
        pid_t w = waitpid(pid, &status, WNOHANG);
        return w == pid;
      },
      timeout_ms, 10);
  if (!done) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    r.timed_out = true;
    r.exit_code = -1;
  } else {
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  auto slurp = [](int fd) {
    std::string s;
    lseek(fd, 0, SEEK_SET);
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
    close(fd);
    return s;
  };
  r.out = slurp(out_fd);
  r.err = slurp(err_fd);
  return r;
}

std::unique_ptr<Child> Child::Spawn(const std::vector<std::string>& argv,
                                    const std::string& log_path,
                                    const std::vector<std::string>& extra_env) {
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot open " + log_path);
  CArgs args(argv), env(ChildEnv(extra_env));
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execve(args.get()[0], args.get(), env.get());
    _exit(127);
  }
  close(log_fd);
  std::unique_ptr<Child> c(new Child());
  c->pid_ = pid;
  c->log_ = log_path;
  return c;
}

Child::~Child() {
  if (Running()) Kill();
}

std::string Child::Log() const { return ReadFile(log_); }

bool Child::Running() {
  if (status_) return false;
  int st = 0;
  pid_t w = waitpid(pid_, &st, WNOHANG);
  if (w == pid_) {
    status_ = DecodeStatus(st);
    return false;
  }
  return w == 0;
}

std::optional<int> Child::exit_status() {
  Running();
  return status_;
}

void Child::Signal(int sig) {
  if (Running()) kill(pid_, sig);
}

bool Child::WaitExit(int timeout_ms) {
  return PollUntil([&] { return !Running(); }, timeout_ms, 20);
}

void Child::Kill() {
  if (!Running()) return;
  kill(pid_, SIGCONT);  // in case it was stopped
  kill(pid_, SIGKILL);
  int st = 0;
  if (waitpid(pid_, &st, 0) == pid_) status_ = DecodeStatus(st);
}

// ------------------------------------------------------------ coordinator

Coordinator::Coordinator(std::string dir, double lease_seconds)
    : dir_(std::move(dir)), lease_seconds_(lease_seconds) {
  db_ = dir_ + "/assessq.db";
  address_ = "unix:" + dir_ + "/c.sock";
  log_ = dir_ + "/coordinatord.log";
  op_token_ = dir_ + "/operator.token";
  worker_token_ = dir_ + "/worker.token";
  for (auto [role, file] : {std::pair<std::string, std::string>{"operator", op_token_},
                            {"worker", worker_token_}}) {
    RunResult r = Run({CoordinatordBin(), "--db", db_, "token", "create", "--role", role,
                       "--name", "e2e-" + role, "--out", file},
                      30000);
    if (r.exit_code != 0)
      throw std::runtime_error(absl::StrCat("token create ", role, ": ", r.Describe()));
  }
}

Coordinator::~Coordinator() {
  if (child_) child_->Kill();
}

std::string Coordinator::Log() const { return ReadFile(log_); }

bool Coordinator::running() { return child_ && child_->Running(); }

void Coordinator::Start() {
  if (running()) throw std::runtime_error("coordinator already running");
  std::ostringstream lease;
  lease << lease_seconds_;
  child_ = Child::Spawn({CoordinatordBin(), "--db", db_, "--listen", address_, "--lease-seconds",
                         lease.str(), "--log-level", "info"},
                        log_);
  Ctl ctl(*this);
  RunResult last;
  bool up = PollUntil(
      [&] {
        if (!child_->Running()) return true;
        last = ctl.Run({"status", "-o", "json"}, 10000);
        return last.exit_code == 0;
      },
      30000, 100);
  if (!up || !child_->Running())
    throw std::runtime_error(absl::StrCat("coordinatord did not come up: ", last.Describe(),
                                          "\n--- log ---\n", Tail(Log())));
}

void Coordinator::Kill(int sig) {
  if (!child_) return;
  if (sig == SIGKILL) {
    child_->Kill();
    return;
  }
  child_->Signal(sig);
  if (!child_->WaitExit(15000)) child_->Kill();
}

// ----------------------------------------------------------------- worker

Workerd::Workerd(const Coordinator& c, std::string dir, std::string name, WorkerOptions opt)
    : coord_(c), dir_(std::move(dir)), name_(std::move(name)), opt_(std::move(opt)) {
  state_dir_ = dir_ + "/state-" + name_;
  log_ = dir_ + "/workerd-" + name_ + ".log";
}

Workerd::~Workerd() {
  if (child_) child_->Kill();
}

std::string Workerd::Log() const { return ReadFile(log_); }

void Workerd::Start() {
  if (child_ && child_->Running()) throw std::runtime_error("workerd already running");
  std::ostringstream reap;
  reap << opt_.reap_seconds;
  std::vector<std::string> argv = {WorkerdBin(),
                                   "--coordinator", coord_.address(),
                                   "--token-file", coord_.worker_token_file(),
                                   "--slots", std::to_string(opt_.slots),
                                   "--state-dir", state_dir_,
                                   "--name", name_,
                                   "--reap-seconds", reap.str(),
                                   "--docker-socket", DockerSocket(),
                                   "--log-level", "info"};
  argv.insert(argv.end(), opt_.extra_args.begin(), opt_.extra_args.end());
  argv.insert(argv.begin(), opt_.wrapper.begin(), opt_.wrapper.end());
  ++starts_;
  child_ = Child::Spawn(argv, log_, opt_.extra_env);
  auto started = [&] {
    std::string log = Log();
    size_t n = 0, pos = 0;
    const std::string needle = absl::StrCat("workerd ", name_, " started");
    while ((pos = log.find(needle, pos)) != std::string::npos) {
      ++n;
      pos += needle.size();
    }
    return static_cast<int>(n) >= starts_;
  };
  Ctl ctl(coord_);
  bool up = PollUntil(
      [&] {
        if (!child_->Running()) return true;
        if (!started()) return false;
        json ws = ctl.Workers();
        for (const auto& w : ws)
          if (w.value("name", "") == name_ && w.value("connected", false)) return true;
        return false;
      },
      30000, 100);
  if (!up || !child_->Running())
    throw std::runtime_error(absl::StrCat("workerd ", name_, " did not come up\n--- log ---\n",
                                          Tail(Log())));
}

// --------------------------------------------------------------- assessctl

RunResult Ctl::Run(const std::vector<std::string>& args, int timeout_ms) const {
  std::vector<std::string> argv = {AssessctlBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--coordinator");
  argv.push_back(c_.address());
  argv.push_back("--token-file");
  argv.push_back(c_.operator_token_file());
  return aqe2e::Run(argv, timeout_ms);
}

json Ctl::Json(const std::vector<std::string>& args, int timeout_ms) const {
  std::vector<std::string> a = args;
  a.push_back("-o");
  a.push_back("json");
  RunResult r = Run(a, timeout_ms);
  if (r.exit_code != 0)
    throw std::runtime_error(
        absl::StrCat("assessctl ", absl::StrJoin(args, " "), " failed: ", r.Describe()));
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded())
    throw std::runtime_error(
        absl::StrCat("assessctl ", absl::StrJoin(args, " "), ": not JSON: ", r.Describe()));
  return j;
}

std::map<std::string, int64_t> Ctl::Submit(const std::vector<std::string>& paths,
                                           const std::string& batch, const std::string& profile,
                                           const std::vector<std::string>& extra) const {
  std::vector<std::string> args = {"submit"};
  args.insert(args.end(), paths.begin(), paths.end());
  args.push_back("--batch");
  args.push_back(batch);
  if (!profile.empty()) {
    args.push_back("--profile");
    args.push_back(profile);
  }
  args.insert(args.end(), extra.begin(), extra.end());
  json j = Json(args, 300000);
  if (j.value("rejected", 0) != 0)
    throw std::runtime_error("submit rejected files: " + j.dump(2));
  std::map<std::string, int64_t> ids;
  for (const auto& it : j["items"]) ids[it.value("dataset_key", "")] = it.value("job_id", int64_t{0});
  return ids;
}

json Ctl::Show(int64_t job) const { return Json({"show", std::to_string(job)}); }
json Ctl::Status(const std::string& batch) const { return Json({"status", "--batch", batch}); }
json Ctl::Workers() const { return Json({"workers"}); }

json Ctl::WaitBatchFinished(const std::string& batch, int64_t total, int timeout_ms) const {
  json last;
  bool done = PollUntil(
      [&] {
        last = Status(batch);
        const json& c = last["counts"];
        auto n = [&](const char* k) { return c.contains(k) ? c[k].get<int64_t>() : 0; };
        return last.value("total", int64_t{0}) == total &&
               n("queued") + n("leased") + n("running") == 0;
      },
      timeout_ms, 250);
  if (!done)
    throw std::runtime_error(absl::StrCat("batch ", batch, " not finished within ", timeout_ms,
                                          " ms: ", last.dump()));
  return last;
}

json Ctl::WaitJobState(int64_t job, const std::string& state, int timeout_ms) const {
  json last;
  bool done = PollUntil(
      [&] {
        last = Show(job);
        return last.value("state", "") == state;
      },
      timeout_ms, 100);
  if (!done)
    throw std::runtime_error(absl::StrCat("job ", job, " not ", state, " within ", timeout_ms,
                                          " ms: ", last.dump(2)));
  return last;
}

json Ctl::WaitJobFinished(int64_t job, int timeout_ms) const {
  json last;
  bool done = PollUntil(
      [&] {
        last = Show(job);
        const std::string st = last.value("state", "");
        return st == "succeeded" || st == "needs_attention" || st == "cancelled";
      },
      timeout_ms, 200);
  if (!done)
    throw std::runtime_error(absl::StrCat("job ", job, " not finished within ", timeout_ms,
                                          " ms: ", last.dump(2)));
  return last;
}

// ------------------------------------------------------------------ inputs

std::string WriteMetadata(const std::string& dir, const std::string& key,
                          const std::string& behaviour) {
  std::string path = dir + "/" + key + ".json";
  json md = {{"Name", "e2e " + key}, {"Dialect", "Modern Standard Arabic"},
             {"X-Test-Behaviour", behaviour}};
  WriteFile(path, md.dump(2));
  return path;
}

std::string WriteAgentProfile(const std::string& path, const AgentLimits& l) {
  json p = {
      {"image", kAgentImage},
      {"command", {"/agent", "--input", "{input}", "--output", "{output_file}", "--dataset",
                   "{dataset}"}},
      {"limits",
       {{"memory_mb", l.memory_mb},
        {"pids", l.pids},
        {"timeout_s", l.timeout_s},
        {"grace_s", l.grace_s},
        {"tmp_mb", l.tmp_mb},
        {"home_mb", l.home_mb},
        {"output_mb", l.output_mb},
        {"result_kb", l.result_kb}}},
  };
  WriteFile(path, p.dump(2));
  return path;
}

// ------------------------------------------------------------------ docker

std::string DockerSocket() {
  const char* env = std::getenv("ASSESSQ_DOCKER_SOCKET");
  return env != nullptr && *env != '\0' ? env : assessq::docker::kDefaultDockerSocket;
}

assessq::docker::DockerClient& Docker() {
  static std::unique_ptr<assessq::docker::DockerClient> client;
  if (!client) {
    auto c = assessq::docker::DockerClient::Create(DockerSocket());
    if (!c.ok()) throw std::runtime_error(std::string(c.status().message()));
    client = std::move(*c);
  }
  if (auto s = client->Ping(); !s.ok())
    throw std::runtime_error(absl::StrCat(
        "Docker does not answer on ", DockerSocket(), " (", s.ToString(),
        "); start it with scripts/start-dockerd.sh"));
  return *client;
}

json ContainersOf(const std::string& worker_name) {
  auto l = Docker().ListContainers({"assessq.worker=" + worker_name}, true);
  if (!l.ok()) throw std::runtime_error(absl::StrCat("list containers: ", l.status().ToString()));
  return *l;
}

void RemoveContainersOf(const std::string& worker_name) {
  auto c = assessq::docker::DockerClient::Create(DockerSocket());
  if (!c.ok()) return;
  auto l = (*c)->ListContainers({"assessq.worker=" + worker_name}, true);
  if (!l.ok()) return;
  for (const auto& x : *l) (void)(*c)->RemoveContainer(x.value("Id", ""), true, true);
}

std::optional<json> RunningContainerOfJob(const std::string& worker_name, int64_t job) {
  auto l = Docker().ListContainers(
      {"assessq.worker=" + worker_name, absl::StrCat("assessq.job=", job)}, false);
  if (!l.ok() || l->empty()) return std::nullopt;
  for (const auto& c : *l)
    if (c.value("State", "") == "running") return c;
  return std::nullopt;
}

std::vector<std::string> LinesStartingWith(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n'))
    if (absl::StartsWith(line, prefix)) out.emplace_back(line);
  return out;
}

std::string Unique(const std::string& base) {
  return absl::StrCat(base, "-", getpid(), "-", NowMs() % 100000);
}

}  // namespace aqe2e
