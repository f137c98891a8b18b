#include "tests/support/drivers.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpc/health/v1/health.grpc.pb.h"

#ifndef ASSESSQ_BIN_DIR
#error "ASSESSQ_BIN_DIR and MASADER_DIR must be defined (tests/support/CMakeLists.txt)"
#endif

namespace aqtest {
namespace {

[[noreturn]] void Throw(const std::string& what) { throw std::runtime_error(what); }

std::string Number(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

}  // namespace

std::string BinPath(const std::string& name) {
  std::string p = std::string(ASSESSQ_BIN_DIR) + "/" + name;
  if (access(p.c_str(), X_OK) != 0) Throw(p + ": not built (or not executable)");
  return p;
}

std::string MasaderDir() { return MASADER_DIR; }

std::string DockerSocket() {
  const char* env = std::getenv("ASSESSQ_DOCKER_SOCKET");
  return env != nullptr && *env != '\0' ? env : "/var/run/docker.sock";
}

// ------------------------------------------------------------ coordinator

Coordinator::Coordinator(std::string dir, CoordinatorOptions opt)
    : dir_(std::move(dir)), opt_(std::move(opt)) {
  db_ = dir_ + "/assessq.db";
  log_ = dir_ + "/coordinatord.log";
  address_ = opt_.listen.empty() ? "unix:" + dir_ + "/c.sock" : opt_.listen;
}

Coordinator::~Coordinator() {
  if (child_) child_->Kill(SIGKILL);
}

std::string Coordinator::CreateToken(const std::string& role, const std::string& name,
                                     const std::string& file) {
  std::string out = file.empty() ? dir_ + "/" + name + ".token" : file;
  auto r = Run({Binary(), "--db", db_, "token", "create", "--role", role,
                "--name", name, "--out", out},
               30000);
  if (r.exit_code != 0) Throw("token create " + role + " " + name + " failed: " + r.Describe());
  return out;
}

void Coordinator::CreateStandardTokens() {
  op_token_ = CreateToken("operator", "e2e-operator", dir_ + "/operator.token");
  worker_token_ = CreateToken("worker", "e2e-worker", dir_ + "/worker.token");
}

std::shared_ptr<grpc::Channel> Coordinator::NewChannel() const {
  auto ch = assessq::MakeChannel(address_, opt_.client_tls);
  if (!ch.ok()) Throw("MakeChannel(" + address_ + "): " + ch.status().ToString());
  return *ch;
}

std::unique_ptr<assessq::v1::OperatorService::Stub> Coordinator::OperatorStub() const {
  return assessq::v1::OperatorService::NewStub(NewChannel());
}

std::string Coordinator::Binary() const {
  return opt_.binary.empty() ? BinPath("coordinatord") : opt_.binary;
}

bool Coordinator::running() const { return child_ && child_->Running(); }

void Coordinator::Start() {
  if (running()) Throw("coordinator already running");
  std::vector<std::string> argv = {Binary(), "--db", db_, "--listen", address_,
                                   "--lease-seconds", Number(opt_.lease_seconds),
                                   "--log-level", opt_.log_level};
  for (const auto& a : opt_.extra_args) argv.push_back(a);
  {
    std::ofstream l(log_, std::ios::app);
    l << "===== [harness] start #" << (starts_ + 1) << " at " << NowMs() << " ms\n";
  }
  child_ = Child::Spawn(argv, log_);
  ++starts_;
  bool ok = PollUntil(
      [&] {
        if (!child_->Running()) return true;
        auto h = CheckHealth(NewChannel(), "", 500);
        return h.ok() && *h == 1;
      },
      30000, 20);
  if (!child_->Running())
    Throw("coordinatord exited during start (status " +
          std::to_string(child_->exit_status().value_or(-999)) + "):\n" + TailFile(log_, 4000));
  if (!ok)
    Throw("coordinatord did not answer its health service within 30 s:\n" + TailFile(log_, 4000));
}

void Coordinator::Kill(int sig) {
  if (!child_) return;
  if (sig == SIGKILL) {
    child_->Kill(SIGKILL);
    return;
  }
  child_->Signal(sig);
  if (!child_->WaitExit(15000)) child_->Kill(SIGKILL);
}

void Coordinator::Restart() {
  Kill();
  Start();
}

void Coordinator::Stop() {
  if (!child_ || !child_->Running()) return;
  if (!child_->Terminate(15000))
    Throw("coordinatord did not exit cleanly on SIGTERM (status " +
          std::to_string(child_->exit_status().value_or(-999)) + "):\n" + TailFile(log_, 4000));
}

// ------------------------------------------------------------------ calls

absl::StatusOr<int> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                const std::string& service, int timeout_ms) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  auto s = stub->Check(&ctx, req, &resp);
  if (!s.ok())
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  return static_cast<int>(resp.status());
}

RunResult Assessctl(const Coordinator& c, const std::string& token_file,
                    const std::vector<std::string>& args, int timeout_ms) {
  std::vector<std::string> argv = {BinPath("assessctl"), "--coordinator", c.address()};
  if (!token_file.empty()) {
    argv.push_back("--token-file");
    argv.push_back(token_file);
  }
  for (const auto& a : args) argv.push_back(a);
  return Run(argv, timeout_ms);
}

nlohmann::json JsonOut(const RunResult& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_discarded()) Throw("stdout is not valid JSON: " + r.Describe());
  return j;
}

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token, int timeout_ms) {
  auto c = std::make_unique<grpc::ClientContext>();
  assessq::AddAuth(*c, token);
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  return c;
}

std::string ReadToken(const std::string& token_file) {
  auto t = assessq::LoadToken(token_file);
  if (!t.ok()) Throw("token " + token_file + ": " + t.status().ToString());
  return *t;
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

void Workerd::Start() {
  if (child_ && child_->Running()) Throw("workerd already running");
  std::vector<std::string> argv = {BinPath("workerd"),
                                   "--coordinator", coord_.address(),
                                   "--token-file", coord_.worker_token_file(),
                                   "--slots", std::to_string(opt_.slots),
                                   "--state-dir", state_dir_,
                                   "--name", name_,
                                   "--reap-seconds", Number(opt_.reap_seconds),
                                   "--docker-socket", DockerSocket(),
                                   "--log-level", "info"};
  argv.insert(argv.end(), opt_.extra_args.begin(), opt_.extra_args.end());
  argv.insert(argv.begin(), opt_.wrapper.begin(), opt_.wrapper.end());
  ++starts_;
  child_ = Child::Spawn(argv, log_, opt_.extra_env);
  // This start's line, not an earlier start's.
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
        for (const auto& w : ctl.Workers())
          if (w.value("name", "") == name_ && w.value("connected", false)) return true;
        return false;
      },
      30000, 100);
  if (!up || !child_->Running())
    Throw(absl::StrCat("workerd ", name_, " did not come up\n--- log ---\n",
                       TailText(Log(), 6000)));
}

// -------------------------------------------------------------- assessctl

RunResult Ctl::Run(const std::vector<std::string>& args, int timeout_ms) const {
  std::vector<std::string> argv = {BinPath("assessctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--coordinator");
  argv.push_back(c_.address());
  argv.push_back("--token-file");
  argv.push_back(c_.operator_token_file());
  return aqtest::Run(argv, timeout_ms);
}

Ctl::json Ctl::Json(const std::vector<std::string>& args, int timeout_ms) const {
  std::vector<std::string> a = args;
  a.push_back("-o");
  a.push_back("json");
  RunResult r = Run(a, timeout_ms);
  if (r.exit_code != 0)
    Throw(absl::StrCat("assessctl ", absl::StrJoin(args, " "), " failed: ", r.Describe()));
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded())
    Throw(absl::StrCat("assessctl ", absl::StrJoin(args, " "), ": not JSON: ", r.Describe()));
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
  if (j.value("rejected", 0) != 0) Throw("submit rejected files: " + j.dump(2));
  std::map<std::string, int64_t> ids;
  for (const auto& it : j["items"]) ids[it.value("dataset_key", "")] = it.value("job_id", int64_t{0});
  return ids;
}

Ctl::json Ctl::Show(int64_t job) const { return Json({"show", std::to_string(job)}); }
Ctl::json Ctl::Status(const std::string& batch) const { return Json({"status", "--batch", batch}); }
Ctl::json Ctl::Workers() const { return Json({"workers"}); }

Ctl::json Ctl::WaitBatchFinished(const std::string& batch, int64_t total, int timeout_ms) const {
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
    Throw(absl::StrCat("batch ", batch, " not finished within ", timeout_ms, " ms: ", last.dump()));
  return last;
}

Ctl::json Ctl::WaitJob(int64_t job, const std::function<bool(const std::string&)>& done,
                       const std::string& what, int timeout_ms) const {
  json last;
  if (!PollUntil(
          [&] {
            last = Show(job);
            return done(last.value("state", ""));
          },
          timeout_ms, 100))
    Throw(absl::StrCat("job ", job, " not ", what, " within ", timeout_ms, " ms: ", last.dump(2)));
  return last;
}

Ctl::json Ctl::WaitJobState(int64_t job, const std::string& state, int timeout_ms) const {
  return WaitJob(job, [&](const std::string& st) { return st == state; }, state, timeout_ms);
}

Ctl::json Ctl::WaitJobFinished(int64_t job, int timeout_ms) const {
  return WaitJob(
      job,
      [](const std::string& st) {
        return st == "succeeded" || st == "needs_attention" || st == "cancelled";
      },
      "finished", timeout_ms);
}

}  // namespace aqtest
