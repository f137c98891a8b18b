// The real agent, end to end: a real coordinatord, a real workerd and a real
// dockerd run one job of the Claude Code profile (deploy/agent/claude: its
// entrypoint and prompt) with the real `claude -p` (image from
// scripts/build-claude-image.sh: Debian's nodejs and @anthropic-ai/claude-code
// from npm) in a hardened container, through the job's egress gateway, on one
// real Masader metadata file. The model provider is a scripted stand-in for the
// Messages API (messages_server.py, HTTPS with a certificate from a CA this
// test makes) in a network namespace the test creates; the worker policy's
// model provider points at it by name (resolver_overrides) and trusts the test
// CA, with a real-looking key the gateway adds to every model request.
//
// The stand-in scripts the conversation: a Bash tool call printing the
// agent's environment and that of every process in the container, then the
// nine steps a real assessment takes (messages_server.py --replay): Read the
// metadata; a Python (urllib, through HTTPS_PROXY) download of samples from a
// stand-in huggingface.co; WebFetch of the paper on a stand-in
// aclanthology.org; WebFetch of a doi.org link that redirects to a stand-in
// publisher, then of the publisher's page; WebFetch of the GitHub repository;
// WebFetch of a host the profile does not allow (refused by the gateway); a
// Python analysis of the samples; Write of the assessment. The stand-in web
// hosts (web_server.py) live in the same namespace behind the gateway's
// resolver_overrides, with a certificate from the test CA, which a derived
// image adds to the image's system store (the entrypoint points Claude Code's
// NODE_EXTRA_CA_CERTS at it; Python reads it anyway). Claude Code's WebFetch
// asks the model to summarise each fetched page in a second request; the
// stand-in answers those with the page's markers, so each tool result that
// Claude Code sent back shows what it read. It holds its first answer until
// the test has inspected the running container. The tests then check that the job succeeded with a result that
// validates, that the stand-in saw the real key (never the placeholder) on
// every request, that the key was nowhere in the container (its Docker
// config, its processes' environments as the host sees them and as the agent
// printed them, its mounts, the job's files, logs and netlog), and that no
// traffic but the model route left the container (every other attempt is a
// denial in the netlog; the test prints them).
//
// The job runs the deploy command unchanged. (Claude Code's HTTP client,
// undici's EnvHttpProxyAgent, tunnels even the plain-http base URL through
// HTTP_PROXY as CONNECT 127.0.0.1:3128; the gateway takes that tunnel as the
// model route. This test found that the gateway used to deny it.)
//
// The profile is deploy/agent/claude/profile.json with only the image and the
// allow list (the stand-in hosts) changed. Network: the allow list holds only
// hosts that resolve (resolver_overrides) to the namespace's addresses, every
// other name is refused before any lookup: nothing leaves this machine.
// Fails, never skips, without Docker or the image.
//
// AQ_REPLAY_BEFORE=1 measures the replay as it went before issue 15: the
// image without the managed settings (WebFetch's preflight not skipped) and
// today's allow list of the old profile (of the replay's hosts, only
// huggingface.co and github.com); it prints how many tool calls succeeded and
// is expected to fail its assertions.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/validation.h"
#include "tests/e2e/e2e_harness.h"
#include "tests/e2e/suite_world.h"
#include "tests/gateway/gw_test_util.h"
#include "tests/support/netns_world.h"

namespace aqe2e {
namespace {

namespace fs = std::filesystem;

constexpr char kRealKey[] = "sk-ant-agent-real-test-REAL-7c1e5a9b3d2f";
constexpr char kPlaceholder[] = "assessq-placeholder-the-gateway-adds-the-real-key";
constexpr char kModelHost[] = "model.test";
// TEST-NET-2: the host side of the veth and the stand-in's address. Not a
// range the gateway blocks, so the policy needs no open_ranges.
constexpr char kHostVethAddr[] = "198.51.100.1";
constexpr char kModelAddr[] = "198.51.100.2";
constexpr char kWebAddr[] = "198.51.100.3";  // the stand-in web hosts
constexpr char kDataset[] = "aoc-aldi";
constexpr char kLockFile[] = "/tmp/assessq-agent-real-test.lock";
constexpr int kJobWaitS = 300;
// The replayed assessment's hosts: allowed (and served by web_server.py)...
const std::vector<std::string> kWebHosts = {"huggingface.co", "aclanthology.org", "doi.org",
                                            "link.springer.com", "github.com"};
// ...and one the profile does not allow (refused by name, never resolved).
constexpr char kDeniedHost[] = "www.kaggle.com";
// The steps of the replay, in order, after the environment print.
const std::vector<std::string> kReplaySteps = {"read",     "download", "paper",  "doi",      "publisher",
                                               "github",   "denied",   "analysis", "write"};


bool ReplayBefore() {
  const char* e = std::getenv("AQ_REPLAY_BEFORE");
  return e != nullptr && std::string(e) == "1";
}

// The docker CLI (the tests run it with execve, not through a shell).
std::string DockerCli() {
  for (const char* p : {"/usr/bin/docker", "/usr/local/bin/docker"})
    if (fs::exists(p)) return p;
  return "docker";
}

// What the host saw of the running container, taken while the stand-in held
// its first answer.
struct Running {
  json inspect;                         // docker inspect of the container
  json image_inspect;
  std::map<int, std::string> environs;  // host view: pid -> /proc/PID/environ
  std::map<int, std::string> cmdlines;
  std::vector<std::string> job_files;   // files under the job's host dir
  std::string job_files_with_key;       // those that hold the key
};

struct World {
  std::string image;
  std::string shipped_image;  // the build script's image; `image` adds the test CA to it
  std::unique_ptr<Child> web;
  std::string web_log;
  std::unique_ptr<aqtest::NetnsWorld> net;
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Child> stand_in;
  std::string stand_in_log, gate_file, metadata_path, metadata;
  std::unique_ptr<Coordinator> coord;
  std::unique_ptr<Workerd> worker;
  std::unique_ptr<Ctl> ctl;
  int64_t job = 0;
  Running running;
  json show, netlog, exported;  // exported: the job's `export --format jsonl` row
  RunResult result;
  std::string setup_error;
  int64_t job_ms = 0;

  ~World() { Teardown(); }
  void Teardown() {
    DiscardWorker(worker);
    coord.reset();
    stand_in.reset();  // killed
    web.reset();
    if (!image.empty() && image != shipped_image) (void)Run({DockerCli(), "image", "rm", "-f", image}, 60000);
    net.reset();  // the namespace; the veth pair goes with it
    dir.reset();
  }
};
World* g_world = nullptr;

// Test-CA images of killed runs (assessq-claude-testca:PID with PID gone).
void RemoveStaleImages() {
  RunResult r = Run({DockerCli(), "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "assessq-claude-testca"},
                    60000);
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    std::string tag(absl::StripAsciiWhitespace(line));
    std::string pid = tag.substr(tag.find(':') + 1);
    if (pid.find_first_not_of("0123456789") == std::string::npos && !fs::exists("/proc/" + pid))
      (void)Run({DockerCli(), "image", "rm", "-f", tag}, 60000);
  }
}

std::vector<json> StandInLog() { return aqtest::JsonLines(g_world->stand_in_log); }

// The shipped image plus the test CA in its system store (what a site with
// its own CA would add): docker create, cp, commit. Before issue 15 the image
// had no managed settings: AQ_REPLAY_BEFORE=1 empties them.
std::string ImageTrustingTestCa(World& w, const std::string& ca_pem_file) {
  RunResult bundle = Run({DockerCli(), "run", "--rm", "--network", "none", "--entrypoint", "cat",
                          w.shipped_image, "/etc/ssl/certs/ca-certificates.crt"}, 60000);
  if (bundle.exit_code != 0 || bundle.out.empty())
    throw std::runtime_error("cannot read the image's CA bundle: " + bundle.Describe());
  std::string file = w.dir->Join("ca-certificates.crt");
  WriteFile(file, bundle.out + "\n" + ReadFile(ca_pem_file));
  chmod(file.c_str(), 0644);
  RunResult c = Run({DockerCli(), "create", w.shipped_image}, 60000);
  std::string id(absl::StripAsciiWhitespace(c.out));
  if (c.exit_code != 0 || id.empty()) throw std::runtime_error("docker create: " + c.Describe());
  std::string tag = absl::StrCat("assessq-claude-testca:", getpid());
  RunResult cp = Run({DockerCli(), "cp", file, id + ":/etc/ssl/certs/ca-certificates.crt"}, 60000);
  RunResult cp2{0};
  if (ReplayBefore()) {
    std::string empty = w.dir->Join("managed-settings.json");
    WriteFile(empty, "{}\n");
    chmod(empty.c_str(), 0644);
    cp2 = Run({DockerCli(), "cp", empty, id + ":/etc/claude-code/managed-settings.json"}, 60000);
  }
  RunResult commit = Run({DockerCli(), "commit", id, tag}, 120000);
  (void)Run({DockerCli(), "rm", "-f", id}, 60000);
  if (cp.exit_code != 0 || cp2.exit_code != 0 || commit.exit_code != 0)
    throw std::runtime_error("making " + tag + ": " + cp.Describe() + cp2.Describe() + commit.Describe());
  return tag;
}

std::string ClaudeImageTag() {
  RunResult r = Run({ASSESSQ_BUILD_CLAUDE_IMAGE, "--print-tag"}, 20000);
  std::string tag(absl::StripAsciiWhitespace(r.out));
  if (r.exit_code != 0 || tag.empty())
    throw std::runtime_error("build-claude-image.sh --print-tag failed: " + r.Describe());
  return tag;
}

std::string WritePolicy(World& w, const std::string& ca_pem) {
  std::string key_file = w.dir->Join("anthropic.key");
  WriteFile(key_file, std::string(kRealKey) + "\n");
  chmod(key_file.c_str(), 0600);
  // deploy/agent/claude/worker-policy.example.json, with the provider moved
  // to the stand-in and the test's names.
  json overrides = {{kModelHost, {kModelAddr}}};
  for (const auto& h : kWebHosts) overrides[h] = {kWebAddr};
  json policy = {
      {"allowed_images", {"assessq-*"}},
      {"allow_writable_rootfs", false},
      {"netbridge_path", ASSESSQ_NETBRIDGE},
      {"credentials", {{"anthropic", key_file}}},
      {"model_providers",
       {{"anthropic",
         {{"host", kModelHost}, {"port", 443}, {"tls", true}, {"ca_file", ca_pem},
          {"header", "x-api-key"}, {"credential", "anthropic"}}}}},
      {"egress",
       {{"forbidden_hosts", json::array()},
        {"resolver_overrides", overrides},
        {"max_connections", 64},
        {"idle_timeout_s", 60}}},
  };
  std::string path = w.dir->Join("policy.json");
  WriteFile(path, policy.dump(2));
  return path;
}

std::string WriteProfile(World& w) {
  // deploy/agent/claude/profile.json as shipped, with this test's image and
  // the stand-in hosts as its allow list (the prompt template inlined).
  json p = json::parse(ReadFile(ASSESSQ_SOURCE_DIR "/deploy/agent/claude/profile.json"), nullptr, false);
  if (p.is_discarded()) throw std::runtime_error("deploy/agent/claude/profile.json does not parse");
  std::string tmpl = ReadFile(ASSESSQ_SOURCE_DIR "/deploy/agent/claude/prompt.ar.txt");
  if (tmpl.empty()) throw std::runtime_error("deploy/agent/claude/prompt.ar.txt is missing");
  p["image"] = w.image;
  p["prompt_template"] = tmpl;
  p["network"]["allow"] = kWebHosts;
  // Before issue 15 the profile allowed, of these hosts, only these two.
  if (ReplayBefore()) p["network"]["allow"] = {"huggingface.co", "github.com"};
  std::string path = w.dir->Join("profile.json");
  WriteFile(path, p.dump(2));
  return path;
}

// Host view of the container's processes: every pid whose cgroup names it.
void ReadContainerProcesses(const std::string& id, Running& r) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (!absl::StrContains(ReadFile(e.path().string() + "/cgroup"), id)) continue;
    int pid = std::atoi(name.c_str());
    r.environs[pid] = ReadFile(e.path().string() + "/environ");
    std::string cmd = ReadFile(e.path().string() + "/cmdline");
    for (char& c : cmd)
      if (c == '\0') c = ' ';
    r.cmdlines[pid] = cmd;
  }
}

void ScanJobFiles(World& w, Running& r) {
  std::string prefix = std::to_string(w.job) + "-";
  for (const auto& d : ListDir(w.worker->jobs_dir())) {
    if (!absl::StartsWith(d, prefix)) continue;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(w.worker->jobs_dir() + "/" + d,
                                                    fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (!it->is_regular_file(ec)) continue;
      r.job_files.push_back(it->path().string());
      if (absl::StrContains(ReadFile(it->path().string()), kRealKey))
        r.job_files_with_key += it->path().string() + " ";
    }
  }
}

void SetUpWorld(World& w) {
  Docker();  // throws without Docker: a failure, never a skip
  w.shipped_image = ClaudeImageTag();
  auto img = Docker().ImageExists(w.shipped_image);
  if (!img.ok() || !*img)
    throw std::runtime_error(w.shipped_image + " is missing: run scripts/build-claude-image.sh "
                                               "(the assessq_claude_image ctest fixture does)");
  w.dir = std::make_unique<TempDir>();
  // The stand-ins' namespace; the model's and the web hosts' addresses route
  // into it.
  w.net = std::make_unique<aqtest::NetnsWorld>(
      aqtest::NetnsSpec{.name = "aqreal",
                        .veth = "aqr",
                        .lock_file = kLockFile,
                        .host_addr = kHostVethAddr,
                        .ns_addrs = {std::string(kModelAddr) + "/24", std::string(kWebAddr) + "/24"},
                        .must_route = {kModelAddr, kWebAddr}});
  w.net->Build();
  RemoveStaleImages();

  // The stand-in provider, with a certificate for model.test from a fresh CA.
  fs::create_directories(w.dir->Join("ca"));
  gwtest::TestCa ca = gwtest::MakeTestCa(w.dir->Join("ca"));
  auto [cert, key] = ca.Issue("model", std::string("DNS:") + kModelHost);
  w.image = ImageTrustingTestCa(w, ca.ca_pem);
  // The replayed assessment's URLs (from the metadata where it has them).
  json md = json::parse(ReadFile(MasaderDir() + "/" + kDataset + ".json"), nullptr, false);
  if (md.is_discarded()) throw std::runtime_error(std::string("cannot read the metadata of ") + kDataset);
  json replay = {
      {"hf_url", "https://huggingface.co/datasets/arbml/AOC_ALDi/resolve/main/samples.jsonl"},
      {"paper_url", md.value("Paper Link", "")},
      {"doi_url", "https://doi.org/10.1007/s10579-023-09999-x"},
      {"publisher_host", "link.springer.com"},
      {"publisher_url", "https://link.springer.com/article/10.1007/s10579-023-09999-x"},
      {"github_url", "https://github.com/AMR-KELEG/ALDi"},
      {"denied_url", std::string("https://") + kDeniedHost + "/datasets/aoc-aldi"},
  };
  if (!absl::StartsWith(replay["paper_url"].get<std::string>(), "https://aclanthology.org/"))
    throw std::runtime_error("the metadata's Paper Link is not on aclanthology.org: " + replay.dump());
  WriteFile(w.dir->Join("replay.json"), replay.dump(2));
  std::string sans;
  for (const auto& h : kWebHosts) sans += (sans.empty() ? "DNS:" : ",DNS:") + h;
  auto [web_cert, web_key] = ca.Issue("web", sans);
  w.web_log = w.dir->Join("web.jsonl");
  w.web = Child::Spawn(w.net->Exec({"/usr/bin/python3", ASSESSQ_WEB_SERVER_PY, "--log", w.web_log, "--bind",
                                     kWebAddr, "--port", "443", "--cert", web_cert, "--key", web_key}),
                       w.dir->Join("web-server.out"));
  w.stand_in_log = w.dir->Join("messages.jsonl");
  w.gate_file = w.dir->Join("gate");
  w.stand_in = Child::Spawn(w.net->Exec({"/usr/bin/python3", ASSESSQ_MESSAGES_SERVER_PY, "--log",
                                          w.stand_in_log, "--bind", kModelAddr, "--port", "443",
                                          "--cert", cert, "--key", key, "--gate", w.gate_file,
                                          "--replay", w.dir->Join("replay.json")}),
                            w.dir->Join("messages-server.out"));
  if (!PollUntil([&] { return absl::StrContains(ReadFile(w.stand_in_log), "\"ready\""); }, 20000, 50))
    throw std::runtime_error("the stand-in Messages API did not start: " +
                             ReadFile(w.dir->Join("messages-server.out")));
  if (!PollUntil([&] { return absl::StrContains(ReadFile(w.web_log), "\"ready\""); }, 20000, 50))
    throw std::runtime_error("the stand-in web hosts did not start: " + ReadFile(w.dir->Join("web-server.out")));

  w.coord = std::make_unique<Coordinator>(w.dir->path());
  w.coord->Start();
  w.ctl = std::make_unique<Ctl>(*w.coord);
  std::string policy = WritePolicy(w, ca.ca_pem);
  std::string profile = WriteProfile(w);
  w.worker = std::make_unique<Workerd>(*w.coord, w.dir->path(), Unique("real"),
                                       WorkerOptions{.slots = 1, .extra_args = {"--policy", policy}});
  w.worker->Start();

  // One real Masader metadata file.
  std::string in = w.dir->Join("in");
  fs::create_directories(in);
  std::string src = MasaderDir() + "/" + kDataset + ".json";
  w.metadata = ReadFile(src);
  if (w.metadata.empty()) throw std::runtime_error("cannot read " + src);
  w.metadata_path = in + "/" + kDataset + ".json";
  WriteFile(w.metadata_path, w.metadata);
  const int64_t t0 = NowMs();
  auto ids = w.ctl->Submit({in}, "agent-real", profile,
                           {"--max-attempts", "agent=1", "--max-attempts", "infra=1", "--max-attempts",
                            "model_api=1", "--max-attempts", "invalid_output=1"});
  if (!ids.count(kDataset)) throw std::runtime_error("submit did not return the dataset's job");
  w.job = ids.at(kDataset);

  // The agent is running and waiting for its first answer: look at it.
  std::optional<json> summary;
  bool held = PollUntil(
      [&] {
        if (!summary) summary = RunningContainerOfJob(w.worker->name(), w.job);
        return summary && absl::StrContains(ReadFile(w.stand_in_log), "\"waiting\"");
      },
      120000, 50);
  if (!held)
    throw std::runtime_error(absl::StrCat(
        "the agent never asked the stand-in for its first turn (container ", summary ? "ran" : "never ran",
        ")\n--- stand-in log ---\n", Tail(ReadFile(w.stand_in_log), 3000), "\n--- job ---\n",
        w.ctl->Show(w.job).dump(2).substr(0, 6000), "\n--- netlog so far ---\n",
        w.ctl->Run({"netlog", std::to_string(w.job)}).out.substr(0, 4000), "\n--- workerd ---\n",
        Tail(w.worker->Log())));
  const int64_t t_held = NowMs();
  const std::string id = summary->value("Id", "");
  auto in_c = Docker().InspectContainer(id);
  if (!in_c.ok()) throw std::runtime_error("inspect: " + in_c.status().ToString());
  w.running.inspect = *in_c;
  auto in_i = Docker().InspectImage(w.image);
  if (in_i.ok()) w.running.image_inspect = *in_i;
  ReadContainerProcesses(id, w.running);
  ScanJobFiles(w, w.running);
  const int64_t t_open = NowMs();
  WriteFile(w.gate_file, "go\n");

  json status = w.ctl->WaitBatchFinished("agent-real", 1, kJobWaitS * 1000);
  w.job_ms = NowMs() - t0;
  w.show = w.ctl->Show(w.job);
  w.netlog = w.ctl->Json({"netlog", std::to_string(w.job)});
  w.result = w.ctl->Run({"result", std::to_string(w.job)});
  RunResult ex = w.ctl->Run({"export", "--batch", "agent-real", "--format", "jsonl"});
  w.exported = json::parse(std::string(absl::StripAsciiWhitespace(ex.out)), nullptr, false);
  std::cout << "agent_real: job " << w.job << " finished in " << w.job_ms << " ms, state "
            << w.show.value("state", "?") << " (first model request held at +" << t_held - t0
            << " ms, released at +" << t_open - t0 << " ms)\n";
}

class AgentRealTest : public SuiteWorldTest<World, &g_world, SetUpWorld> {
 protected:
  static void TearDownTestSuite() {
    if (g_world && AnyTestFailed() && !g_world->stand_in_log.empty())
      std::cerr << "--- stand-in log ---\n" << Tail(ReadFile(g_world->stand_in_log), 8000) << "\n";
    SuiteWorldTest::TearDownTestSuite();
  }

  static const World& W() { return *g_world; }
  static std::string LastLogTail() {
    const json& a = W().show["attempts"];
    return a.is_array() && !a.empty() ? a.back().value("log_tail", "") : "";
  }
  static std::vector<json> Requests() {
    std::vector<json> out;
    for (const auto& e : StandInLog())
      if (e.value("event", "") == "request") out.push_back(e);
    return out;
  }
  static std::string BashResult() { return StepResult("env").value("content", ""); }
  // The tool result Claude Code sent back for a step (the stand-in logs it
  // from the next request's messages); {} if it never came.
  static json StepResult(const std::string& step) {
    for (const auto& e : StandInLog())
      if (e.value("event", "") == "tool_result" && e.value("step", "") == step) return e;
    return json::object();
  }
  static std::string Marker(const std::string& name) {
    for (const auto& e : JsonLines(W().web_log))
      if (e.value("event", "") == "ready") return e["markers"].value(name, "?");
    return "?";
  }
  // Whether a step's result holds what the stand-in served (or, for the
  // refused host, the refusal).
  static std::string StepProblem(const std::string& step) {
    json r = StepResult(step);
    if (r.empty()) return "no tool result";
    std::string c = r.value("content", "");
    bool err = r.value("is_error", true);
    auto want = [&](bool ok, const std::string& what) {
      return ok ? std::string() : absl::StrCat(what, " (is_error ", err, "): ", c.substr(0, 600));
    };
    if (step == "read") return want(!err && absl::StrContains(c, "AOC-ALDi") && absl::StrContains(c, "Paper Link"), "not the metadata");
    if (step == "download")
      return want(!err && absl::StrContains(c, "AQ-DOWNLOAD rows=6") && absl::StrContains(c, Marker("hf")) &&
                      absl::StrContains(c, "الجو جميل اليوم في القاهرة"),
                  "not the samples");
    if (step == "paper") return want(!err && absl::StrContains(c, Marker("paper")), "not the paper's page");
    if (step == "doi")
      return want(absl::StrContains(c, "https://link.springer.com/article/10.1007/s10579-023-09999-x"),
                  "not the redirect to the publisher");
    if (step == "publisher") return want(!err && absl::StrContains(c, Marker("publisher")), "not the publisher's page");
    if (step == "github") return want(!err && absl::StrContains(c, Marker("github")), "not the repository's page");
    if (step == "denied") {
      std::string lower = absl::AsciiStrToLower(c);
      bool refused = absl::StrContains(c, "403") || absl::StrContains(lower, "blocked") ||
                     absl::StrContains(lower, "proxy");
      return want(refused && !absl::StrContains(c, "AQ-"), "not a refusal");
    }
    if (step == "analysis") return want(!err && absl::StrContains(c, "AQ-ANALYSIS rows=6"), "not the analysis");
    if (step == "write") return want(!err, "the Write failed");
    return "unknown step";
  }
};

TEST_F(AgentRealTest, JobSucceedsWithAResultThatValidates) {
  ASSERT_EQ(W().show.value("state", ""), "succeeded")
      << W().show.dump(2).substr(0, 8000) << "\n--- log tail ---\n" << LastLogTail();
  ASSERT_EQ(W().result.exit_code, 0) << W().result.Describe();
  json stored = json::parse(W().result.out, nullptr, false);
  ASSERT_FALSE(stored.is_discarded()) << W().result.out;
  // Validated again here, with the project's validator and schema, against
  // the metadata file that was submitted.
  auto v = assessq::AssessmentValidator::Create(ReadFile(ASSESSQ_SOURCE_DIR "/schemas/assessment.schema.json"));
  ASSERT_TRUE(v.ok()) << v.status();
  auto errors = v->Validate(stored.dump(), W().metadata);
  EXPECT_TRUE(errors.empty()) << absl::StrJoin(errors, "\n");
  json md = json::parse(W().metadata);
  EXPECT_EQ(stored["الاسم_الأصلي"], md["Name"]);
  // It is what the agent wrote: the stand-in's Write call, through Claude Code.
  EXPECT_EQ(stored["درجة_الجودة"], 55);
  EXPECT_EQ(stored["تقدير_الجودة"], "مقبول");
  // One attempt, and the agent ran the whole scripted conversation.
  EXPECT_EQ(W().show["attempts"].size(), 1u) << W().show["attempts"].dump(2);
  std::vector<std::string> turns;
  for (const auto& r : Requests())
    if (r.contains("turn") && r["turn"] != "side" && r["turn"] != "toolsearch") turns.push_back(r["turn"]);
  std::vector<std::string> want = {"env"};
  want.insert(want.end(), kReplaySteps.begin(), kReplaySteps.end());
  want.push_back("done");
  EXPECT_EQ(turns, want) << Tail(ReadFile(W().stand_in_log), 4000);
  for (const auto& e : StandInLog()) EXPECT_NE(e.value("event", ""), "error") << e.dump();
  // What the agent says it did matches what it did: samples were loaded.
  EXPECT_EQ(stored["تم_تحميل_البيانات"], true);
  EXPECT_EQ(stored["فحص_البيانات"]["عدد_العينات_المفحوصة"], 6);
  // The shipped profile ends the job once Claude Code has reported its result.
  std::cout << "agent_real: attempt details " << W().show["attempts"].back()["details"].dump() << "\n";
  EXPECT_LT(W().job_ms, 240000);
}

// The coordinator's trust flags (from the gateway's network log) find
// nothing to flag: the result says data was loaded and huggingface.co sent
// it; every source it lists was contacted. (Before issue 15 the paper's host
// was never reached and its source is flagged.)
TEST_F(AgentRealTest, TheResultsClaimsAreBackedByTheNetworkLog) {
  ASSERT_TRUE(W().exported.is_object()) << W().exported.dump();
  std::string connects;
  for (const auto& e : W().netlog)
    if (e.value("kind", "") == "connect") connects += e.dump() + "\n";
  std::cout << "agent_real: trust flags: " << W().exported["flags"].dump() << "\n";
  EXPECT_EQ(W().exported["flags"], json::array()) << connects;
}

// The nine steps of a real assessment, each through the real Claude Code and
// the gateway: every tool result Claude Code sent back holds the stand-in's
// content, and the refused host's holds the refusal.
TEST_F(AgentRealTest, EveryReplayedStepGotTheStandInsContent) {
  int ok = 0;
  std::vector<std::string> failed;
  for (const auto& step : kReplaySteps) {
    std::string problem = StepProblem(step);
    EXPECT_EQ(problem, "") << step;
    if (problem.empty()) ++ok;
    else failed.push_back(step);
    std::cout << "agent_real: replay step " << step << ": " << (problem.empty() ? "ok" : problem.substr(0, 300))
              << "\n";
  }
  std::cout << "agent_real: replay tool calls that did what they should: " << ok << " of " << kReplaySteps.size()
            << (failed.empty() ? "" : " (failed: " + absl::StrJoin(failed, ", ") + ")")
            << (ReplayBefore() ? " [before: no managed settings, old allow list]" : "") << "\n";
  // The refusal says why: the gateway's x-deny-reason: host_not_allowed,
  // which Claude Code 2.1.335 turns into {"error_type":"EGRESS_BLOCKED",...,
  // "message":"Access to HOST is blocked by the network egress proxy."}.
  std::string denied = StepResult("denied").value("content", "");
  std::cout << "agent_real: the refused WebFetch's result: " << denied.substr(0, 400) << "\n";
  if (!ReplayBefore())
    EXPECT_TRUE(absl::StrContains(denied, "EGRESS_BLOCKED") &&
                absl::StrContains(denied, std::string("Access to ") + kDeniedHost +
                                              " is blocked by the network egress proxy"))
        << "the refusal does not say why: " << denied;
  // WebFetch's summaries: one side request per fetched page, each with the
  // page's marker.
  std::set<std::string> summarised;
  for (const auto& e : StandInLog())
    if (e.value("event", "") == "side")
      for (const auto& m : e["markers"]) summarised.insert(m.get<std::string>());
  for (const char* m : {"paper", "publisher", "github"}) EXPECT_TRUE(summarised.count(Marker(m))) << m;
  for (const auto& e : StandInLog())
    if (e.value("event", "") == "side" && !e["markers"].empty()) {
      std::cout << "agent_real: a WebFetch summary request (model " << e.value("model", "?") << "): "
                << e.value("user", "").substr(0, 1200) << "\n";
      break;
    }
}

// The attempt keeps the agent's own account of its tool calls (from Claude
// Code's stream-json), marked as reported by the agent, in the order made,
// with the refused fetch as an error.
TEST_F(AgentRealTest, TheAttemptKeepsTheAgentsReportedSteps) {
  const json& d = W().show["attempts"].back()["details"];
  ASSERT_TRUE(d.contains("agent_steps")) << d.dump(2);
  const json& a = d["agent_steps"];
  EXPECT_EQ(a.value("reported_by", ""), "agent");
  EXPECT_EQ(a.value("complete", false), true);
  std::vector<std::string> got;  // "TOOL TARGET ok|error|-"
  for (const auto& s : a["steps"]) {
    if (s.value("tool", "") == "ToolSearch") continue;
    got.push_back(s.value("tool", "") + " " + s.value("target", "") + " " +
                  (s.contains("ok") ? (s["ok"].get<bool>() ? "ok" : "error") : "-"));
  }
  ASSERT_EQ(got.size(), 1 + kReplaySteps.size()) << a.dump(2);
  EXPECT_EQ(got[1], "Read /input/metadata.json ok");
  EXPECT_TRUE(absl::StartsWith(got[2], "Bash python3 - <<'PY'") && absl::EndsWith(got[2], " ok")) << got[2];
  EXPECT_EQ(got[3], "WebFetch https://aclanthology.org/2023.emnlp-main.655/ ok");
  EXPECT_EQ(got[7], std::string("WebFetch https://") + kDeniedHost + "/datasets/aoc-aldi error");
  EXPECT_EQ(got[9], "Write /output/assessment.json ok");
  for (const auto& g : got) std::cout << "agent_real: reported step: " << g.substr(0, 90) << "\n";
}

// The network log lists each host of the replay with its decision, and the
// web stand-in saw exactly the allowed fetches.
TEST_F(AgentRealTest, NetlogListsEachHostWithItsDecision) {
  ASSERT_TRUE(W().netlog.is_array()) << W().netlog.dump();
  std::map<std::string, std::set<std::string>> decisions;  // host -> decisions
  for (const auto& e : W().netlog)
    if (e.contains("host") && e["host"].is_string()) decisions[e["host"]].insert(e.value("decision", "?"));
  for (const auto& h : kWebHosts)
    EXPECT_EQ(decisions[h], std::set<std::string>{"allow"}) << h << "\n" << W().netlog.dump(2).substr(0, 6000);
  EXPECT_EQ(decisions[kDeniedHost], std::set<std::string>{"deny"}) << W().netlog.dump(2).substr(0, 6000);
  // WebFetch's preflight is skipped: nothing asked api.anthropic.com.
  EXPECT_EQ(decisions.count("api.anthropic.com"), 0u) << W().netlog.dump(2).substr(0, 6000);
  for (const auto& e : W().netlog) {
    if (e.value("decision", "") != "deny") continue;
    if (e.contains("host") && e["host"] == kDeniedHost) {
      EXPECT_TRUE(absl::StrContains(e.dump(), "not allowed") || absl::StrContains(e.dump(), "no rule"))
          << e.dump();
    }
  }
  std::map<std::string, int> served;
  for (const auto& e : JsonLines(W().web_log))
    if (e.value("event", "") == "request") ++served[e.value("host", "?") + " " + std::to_string(e.value("status", 0))];
  std::cout << "agent_real: web stand-in served:";
  for (const auto& [k, n] : served) std::cout << " " << k << " x" << n;
  std::cout << "\n";
  EXPECT_GE(served["huggingface.co 200"], 1);
  EXPECT_GE(served["aclanthology.org 200"], 1);
  EXPECT_GE(served["doi.org 302"], 1);
  EXPECT_GE(served["link.springer.com 200"], 1);
  EXPECT_GE(served["github.com 200"], 1);
}

// The image runs the files deploy/agent/claude ships: the entrypoint, the
// managed settings and the pinned Claude Code.
TEST_F(AgentRealTest, TheImageHoldsTheShippedFiles) {
  auto cat = [&](const std::string& path) {
    RunResult r = aqe2e::Run({DockerCli(), "run", "--rm", "--network", "none", "--entrypoint", "cat", W().shipped_image, path},
                      60000);
    EXPECT_EQ(r.exit_code, 0) << path << ": " << r.Describe();
    return r.out;
  };
  EXPECT_EQ(cat("/usr/local/bin/assessq-agent"), ReadFile(ASSESSQ_SOURCE_DIR "/deploy/agent/claude/entrypoint.sh"));
  EXPECT_EQ(cat("/etc/claude-code/managed-settings.json"),
            ReadFile(ASSESSQ_SOURCE_DIR "/deploy/agent/claude/managed-settings.json"));
  std::string lock = ReadFile(ASSESSQ_SOURCE_DIR "/deploy/agent/claude/claude-code.lock");
  auto at = lock.find("\nCLAUDE_CODE_VERSION=");
  ASSERT_NE(at, std::string::npos);
  std::string version = lock.substr(at + 21, lock.find('\n', at + 1) - at - 21);
  RunResult v = aqe2e::Run({DockerCli(), "run", "--rm", "--network", "none", "--entrypoint", "claude", W().shipped_image,
                     "--version"}, 60000);
  EXPECT_TRUE(absl::StartsWith(v.out, version + " ")) << v.Describe() << " want " << version;
  json settings = json::parse(cat("/etc/claude-code/managed-settings.json"), nullptr, false);
  EXPECT_EQ(settings.value("skipWebFetchPreflight", false), true);
  // The job ran Claude Code's stream-json output to stdout, ending in its result.
  EXPECT_TRUE(absl::StrContains(LastLogTail(), "\"type\":\"result\"")) << LastLogTail().substr(0, 2000);
}

TEST_F(AgentRealTest, StandInGotTheRealKeyOnEveryRequestAndNeverThePlaceholder) {
  auto reqs = Requests();
  int messages = 0;
  for (const auto& r : reqs) {
    EXPECT_EQ(r["x_api_key"], json::array({kRealKey})) << r.dump();
    EXPECT_EQ(r["authorization"], json::array()) << r.dump();
    EXPECT_EQ(r.value("host", ""), kModelHost) << r.dump();
    if (r.value("method", "") == "POST" && absl::StartsWith(r.value("path", ""), "/v1/messages")) ++messages;
  }
  EXPECT_GE(messages, 3) << Tail(ReadFile(W().stand_in_log), 4000);
  // The placeholder never reached the provider, in any header.
  for (const auto& r : reqs) EXPECT_FALSE(absl::StrContains(r.dump(), kPlaceholder)) << r.dump();
  std::set<std::string> paths;
  for (const auto& r : reqs) paths.insert(r.value("method", "") + " " + r.value("path", ""));
  std::cout << "agent_real: requests the stand-in answered: " << absl::StrJoin(paths, ", ") << "\n";
}

TEST_F(AgentRealTest, TheContainerNeverHeldTheKey) {
  const Running& r = W().running;
  // Docker's record of the container and its image.
  const json& env = r.inspect["Config"]["Env"];
  ASSERT_TRUE(env.is_array()) << r.inspect.dump();
  std::set<std::string> vars;
  for (const auto& e : env) vars.insert(e.get<std::string>());
  EXPECT_TRUE(vars.count(std::string("ANTHROPIC_API_KEY=") + kPlaceholder)) << env.dump(2);
  EXPECT_TRUE(vars.count("ANTHROPIC_BASE_URL=http://127.0.0.1:3128")) << env.dump(2);
  EXPECT_FALSE(absl::StrContains(r.inspect.dump(), kRealKey)) << "docker inspect holds the key";
  EXPECT_FALSE(absl::StrContains(r.image_inspect.dump(), kRealKey));
  // Hardened as the worker asks; no mount of the key file, no secrets dir.
  EXPECT_EQ(r.inspect["HostConfig"]["ReadonlyRootfs"], true);
  EXPECT_EQ(r.inspect["Config"]["User"], "10001:10001");
  EXPECT_EQ(r.inspect["HostConfig"]["NetworkMode"], "none");
  for (const auto& m : r.inspect["Mounts"]) {
    EXPECT_FALSE(absl::StrContains(m.dump(), "anthropic.key")) << m.dump();
    EXPECT_NE(m.value("Destination", ""), "/run/secrets") << m.dump();
  }
  // Every process in the container, as the host sees it.
  ASSERT_GE(r.environs.size(), 3u) << "expected init, the bridge, the entrypoint and claude";
  bool claude_seen = false;
  for (const auto& [pid, environ] : r.environs) {
    EXPECT_FALSE(absl::StrContains(environ, kRealKey)) << "pid " << pid << " " << r.cmdlines.at(pid);
    if (absl::StrContains(r.cmdlines.at(pid), "claude")) {
      claude_seen = true;
      EXPECT_TRUE(absl::StrContains(environ, std::string("ANTHROPIC_API_KEY=") + kPlaceholder))
          << r.cmdlines.at(pid);
    }
  }
  EXPECT_TRUE(claude_seen) << absl::StrJoin(r.cmdlines, "\n", absl::PairFormatter(": "));
  // The job's files on the host (input, prompt, netbridge socket dir).
  EXPECT_FALSE(r.job_files.empty());
  EXPECT_EQ(r.job_files_with_key, "");
  // The agent's own view: its Bash tool printed `env` and every process's
  // environment; the stand-in received that as the tool result.
  std::string bash = BashResult();
  ASSERT_FALSE(bash.empty()) << "no Bash tool result reached the stand-in";
  EXPECT_TRUE(absl::StrContains(bash, "AQ-PROC-END")) << "the output was cut: " << bash.substr(0, 2000);
  EXPECT_FALSE(absl::StrContains(bash, kRealKey)) << bash;
  EXPECT_TRUE(absl::StrContains(bash, std::string("ANTHROPIC_API_KEY=") + kPlaceholder)) << bash;
  EXPECT_TRUE(absl::StrContains(bash, "ANTHROPIC_BASE_URL=http://127.0.0.1:3128")) << bash;
  EXPECT_TRUE(absl::StrContains(bash, "No such file or directory")) << "/run/secrets exists: " << bash;
  // Nor did it come back out in anything the job reported.
  EXPECT_FALSE(absl::StrContains(W().show.dump(), kRealKey));
  EXPECT_FALSE(absl::StrContains(W().netlog.dump(), kRealKey));
  EXPECT_FALSE(absl::StrContains(W().result.out, kRealKey));
}

TEST_F(AgentRealTest, OnlyTheModelRouteAndTheAllowedHostsLeftTheContainer) {
  ASSERT_TRUE(W().netlog.is_array()) << W().netlog.dump();
  int model = 0;
  std::vector<std::string> denied;
  const std::set<std::string> allowed(kWebHosts.begin(), kWebHosts.end());
  for (const auto& e : W().netlog) {
    if (e.value("kind", "") == "model") {
      ++model;
      EXPECT_EQ(e.value("decision", ""), "allow") << e.dump();
      EXPECT_EQ(e.value("address", ""), kModelAddr) << e.dump();
      EXPECT_EQ(e["status"], 200) << e.dump();
      continue;
    }
    if (e.value("decision", "") == "allow") {
      // Only the profile's hosts, only at the stand-in's address.
      EXPECT_TRUE(e.contains("host") && e["host"].is_string() && allowed.count(e["host"])) << e.dump();
      EXPECT_EQ(e.value("address", ""), kWebAddr) << e.dump();
      continue;
    }
    EXPECT_EQ(e.value("decision", ""), "deny") << e.dump();
    denied.push_back(absl::StrCat(e.value("kind", "?"), " ", e.value("method", "?"), " ",
                                  e.contains("host") ? e["host"].dump() : "?", ":",
                                  e.contains("port") ? e["port"].dump() : "?", " (",
                                  e.value("reason", ""), ")"));
  }
  EXPECT_GE(model, 10) << W().netlog.dump(2);
  for (const auto& e : W().netlog)
    std::cout << "agent_real: netlog " << e.value("ts", int64_t{0}) << " +" << e.value("duration_ms", int64_t{0})
              << "ms " << e.value("decision", "?") << " " << e.value("kind", "?") << " "
              << e.value("method", "?") << " " << (e.contains("host") ? e["host"].dump() : "?") << " "
              << e.value("path", "") << "\n";
  std::cout << "agent_real: " << model << " model requests; denied: "
            << (denied.empty() ? "none" : absl::StrJoin(denied, "; ")) << "\n";
}

}  // namespace
}  // namespace aqe2e

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  signal(SIGPIPE, SIG_IGN);
  return RUN_ALL_TESTS();
}
