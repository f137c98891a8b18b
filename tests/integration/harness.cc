#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"

extern char** environ;

namespace aqtest {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void Throw(const std::string& what) { throw std::runtime_error(what); }

// A copy of this process's environment without ASSESSQ_* (so a developer's
// settings never leak into a test), plus `extra`.
std::vector<std::string> ChildEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    if (kv.rfind("ASSESSQ_", 0) == 0) continue;
    env.push_back(kv);
  }
  for (const auto& kv : extra) env.push_back(kv);
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

// fork + execve with stdout/stderr redirected to files. Only async-signal-safe
// calls between fork and exec (the test process has gRPC threads).
pid_t SpawnRaw(const std::vector<std::string>& argv, const std::string& out_path,
               const std::string& err_path, bool append, const std::vector<std::string>& env) {
  if (argv.empty()) Throw("spawn: empty argv");
  CArgs args(argv);
  CArgs envp(ChildEnv(env));
  const std::string out_c = out_path, err_c = err_path;
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) Throw(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, nullptr);
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_c.c_str(), flags, 0644);
    int err = err_c == out_c ? out : open(err_c.c_str(), flags, 0644);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    for (int fd = 3; fd < 1024; ++fd) close(fd);
    execve(args.get()[0], args.get(), envp.get());
    _exit(127);
  }
  return pid;
}

// Waits for `pid` up to timeout_ms; the raw wait status, or empty.
std::optional<int> WaitPid(pid_t pid, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int delay_us = 200;
  while (true) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return st;
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    delay_us = std::min(delay_us * 2, 10000);
  }
}

int DecodeStatus(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return -1000;
}

// Where Run() keeps a child's output until it has read it; removed at exit.
// (A leaked pointer, so it is still valid in the atexit handler.)
const std::string& ScratchDir() {
  static const std::string* dir = [] {
    auto* d = new std::string("/tmp/aqit-run-XXXXXX");
    if (!mkdtemp(d->data())) Throw("mkdtemp failed");
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(ScratchDir(), ec);
    });
    return d;
  }();
  return *dir;
}

}  // namespace

std::string BinPath(const std::string& name) {
  std::string p = std::string(ASSESSQ_BIN_DIR) + "/" + name;
  if (access(p.c_str(), X_OK) != 0) Throw(p + ": not built (or not executable)");
  return p;
}

std::string MasaderDir() { return MASADER_DIR; }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ------------------------------------------------------------------ files

TempDir::TempDir() {
  std::string t = "/tmp/aqit-XXXXXX";
  if (!mkdtemp(t.data())) Throw(std::string("mkdtemp: ") + std::strerror(errno));
  path_ = t;
}

TempDir::~TempDir() {
  const char* keep = std::getenv("ASSESSQ_KEEP_TEST_DIRS");
  if (keep && *keep && std::string(keep) != "0") {
    std::fprintf(stderr, "[harness] keeping %s\n", path_.c_str());
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) Throw(path + ": cannot write");
  f << content;
  if (!f.flush()) Throw(path + ": write failed");
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& path, size_t max_bytes) {
  std::string s = ReadFile(path);
  if (s.size() > max_bytes) s = "..." + s.substr(s.size() - max_bytes);
  return s;
}

// ------------------------------------------------------------------ running

std::string RunResult::Describe() const {
  std::ostringstream o;
  o << "exit " << exit_code << (timed_out ? " (TIMED OUT)" : "") << "\n--- stdout ---\n"
    << (out.size() > 6000 ? out.substr(0, 6000) + "..." : out) << "\n--- stderr ---\n"
    << (err.size() > 6000 ? err.substr(0, 6000) + "..." : err) << "\n";
  return o.str();
}

RunResult Run(const std::vector<std::string>& argv, int timeout_ms,
              const std::vector<std::string>& env) {
  static std::atomic<int> counter{0};
  std::string base = ScratchDir() + "/" + std::to_string(getpid()) + "-" +
                     std::to_string(counter++);
  std::string out = base + ".out", err = base + ".err";
  RunResult r;
  pid_t pid = SpawnRaw(argv, out, err, false, env);
  auto st = WaitPid(pid, timeout_ms);
  if (!st) {
    kill(pid, SIGKILL);
    st = WaitPid(pid, 10000);
    r.timed_out = true;
    r.exit_code = -1;
  } else {
    r.exit_code = WIFEXITED(*st) ? WEXITSTATUS(*st) : -1;
  }
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return r;
}

std::unique_ptr<Child> Child::Spawn(const std::vector<std::string>& argv,
                                    const std::string& log_path,
                                    const std::vector<std::string>& env) {
  std::unique_ptr<Child> c(new Child());
  c->log_ = log_path;
  c->pid_ = SpawnRaw(argv, log_path, log_path, true, env);
  return c;
}

Child::~Child() {
  if (Running()) Kill(SIGKILL);
}

bool Child::Running() {
  if (status_ || pid_ <= 0) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = DecodeStatus(st);
    return false;
  }
  return r == 0;
}

std::optional<int> Child::exit_status() {
  Running();
  return status_;
}

bool Child::WaitExit(int timeout_ms) {
  if (!Running()) return true;
  auto st = WaitPid(pid_, timeout_ms);
  if (!st) return false;
  status_ = DecodeStatus(*st);
  return true;
}

void Child::Kill(int sig) {
  if (!Running()) return;
  ::kill(pid_, sig);
  if (!WaitExit(10000)) {
    ::kill(pid_, SIGKILL);
    WaitExit(10000);
  }
}

bool Child::Terminate(int timeout_ms) {
  if (!Running()) return status_ == 0;
  ::kill(pid_, SIGTERM);
  if (WaitExit(timeout_ms)) return status_ == 0;
  Kill(SIGKILL);
  return false;
}

// ------------------------------------------------------------------ coordinator

Coordinator::Coordinator(std::string dir, CoordinatorOptions opt)
    : dir_(std::move(dir)), opt_(std::move(opt)) {
  db_ = dir_ + "/assessq.db";
  log_ = dir_ + "/coordinatord.log";
  address_ = opt_.listen.empty() ? "unix:" + dir_ + "/c.sock" : opt_.listen;
}

Coordinator::~Coordinator() {
  if (child_) child_->Kill(SIGKILL);
}

std::string Coordinator::CreateToken(const std::string& role, const std::string& name) {
  std::string file = dir_ + "/" + name + ".token";
  auto r = Run({BinPath("coordinatord"), "--db", db_, "token", "create", "--role", role,
                "--name", name, "--out", file},
               30000);
  if (r.exit_code != 0) Throw("token create failed: " + r.Describe());
  return file;
}

std::shared_ptr<grpc::Channel> Coordinator::NewChannel() const {
  auto ch = assessq::MakeChannel(address_, opt_.client_tls);
  if (!ch.ok()) Throw("MakeChannel(" + address_ + "): " + ch.status().ToString());
  return *ch;
}

std::unique_ptr<assessq::v1::OperatorService::Stub> Coordinator::OperatorStub() const {
  return assessq::v1::OperatorService::NewStub(NewChannel());
}

bool Coordinator::running() const { return child_ && child_->Running(); }

void Coordinator::Start() {
  if (running()) Throw("coordinator already running");
  char lease[32];
  std::snprintf(lease, sizeof lease, "%g", opt_.lease_seconds);
  std::vector<std::string> argv = {BinPath("coordinatord"), "--db", db_, "--listen", address_,
                                   "--lease-seconds", lease, "--log-level", opt_.log_level};
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
          std::to_string(child_->exit_status().value_or(-999)) + "):\n" + Tail(log_));
  if (!ok) Throw("coordinatord did not answer its health service within 30 s:\n" + Tail(log_));
}

void Coordinator::Kill() {
  if (child_) child_->Kill(SIGKILL);
}

void Coordinator::Restart() {
  Kill();
  Start();
}

void Coordinator::Stop() {
  if (!child_ || !child_->Running()) return;
  if (!child_->Terminate(15000))
    Throw("coordinatord did not exit cleanly on SIGTERM (status " +
          std::to_string(child_->exit_status().value_or(-999)) + "):\n" + Tail(log_));
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

bool PollUntil(const std::function<bool()>& pred, int timeout_ms, int interval_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
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

std::string ValidAssessment(const std::string& name, const std::string& note) {
  std::string summary = "تقييم تجريبي لمجموعة البيانات كتبه اختبار التكامل.";
  if (!note.empty()) summary += " (" + note + ")";
  nlohmann::json a = {
      {"الاسم", name},
      {"الاسم_الأصلي", name},
      {"درجة_الجودة", 70},
      {"تقدير_الجودة", "جيد"},
      {"الملخص", summary},
      {"فحص_البيانات",
       {{"الطريقة_المستخدمة", "metadata_only"},
        {"عدد_العينات_المفحوصة", 0},
        {"معاينة_العينات", nlohmann::json::array()},
        {"مشاكل_مكتشفة", nlohmann::json::array()},
        {"البيانات_تطابق_الوصف", false}}},
      {"نقاط_القوة", {"وصف واضح"}},
      {"نقاط_الضعف", {"تقييم تجريبي"}},
      {"الاستخدامات_الموصى_بها", {"اختبار النظام"}},
      {"تفصيل_الجودة",
       {{"سهولة_الوصول", 70},
        {"التوثيق", 70},
        {"السلامة_الأخلاقية", 70},
        {"الترخيص", 70},
        {"قابلية_إعادة_الإنتاج", 70},
        {"المراجعة_العلمية", 70},
        {"جودة_البيانات", 70}}},
      {"المصادر_المفتوحة", nlohmann::json::array()},
      {"تم_تحميل_البيانات", false},
  };
  return a.dump();
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Throw("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    Throw("bind 127.0.0.1:0 failed");
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

}  // namespace aqtest
