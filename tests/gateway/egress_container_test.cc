// The egress gateway from inside real job containers: a real coordinatord, a
// real workerd (worker policy with netbridge_path, open_ranges,
// resolver_overrides and a model provider) and a real dockerd run probe jobs
// (image assessq-net-test:1 from scripts/build-net-image.sh: curl and
// python3) whose agent is tests/gateway/egress_probes.py. Each probe job
// tries one way out and prints what it saw; each TEST checks one protection
// against that, the job's netlog (assessctl netlog) and the connection log of
// the test hosts.
//
// The test hosts live in a network namespace this test creates (veth pair,
// addresses 203.0.113.2-3, 10.99.0.2-3 and 169.254.169.254 inside it; the
// host routes 203.0.113.0/24, 10.99.0.0/24 and 169.254.169.254/32 to it for
// the duration of the test): whatever the gateway does, its packets only
// reach this machine. Names resolve only through resolver_overrides. The
// suite holds a file lock so two runs never share those routes, and removes
// the namespace (and with it the veth and routes) at the end, also after a
// failure; a namespace left by a killed run is removed by the next one.
//
// Fails, never skips, when Docker or the image is missing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/e2e/e2e_harness.h"
#include "tests/e2e/suite_world.h"
#include "tests/gateway/gw_test_util.h"
#include "tests/support/netns_world.h"

namespace aqe2e {
namespace {

namespace fs = std::filesystem;

constexpr char kImage[] = "assessq-net-test:1";
constexpr char kHostVethAddr[] = "203.0.113.1";
constexpr char kPublicAddr[] = "203.0.113.2";   // public.test, rebind.test's first answer
constexpr char kEvilAddr[] = "203.0.113.3";     // evil.test (no rule allows it)
constexpr char kAllowedAddr[] = "10.99.0.2";    // allowed.test, model.test (open_ranges)
constexpr char kPrivateAddr[] = "10.99.0.3";    // private.test, rebind.test's second answer
constexpr char kMetadataAddr[] = "169.254.169.254";  // meta.test
constexpr char kRealKey[] = "sk-ant-egress-test-REAL-9f8e7d6c5b4a";
constexpr char kRealOauthToken[] = "sk-ant-oat01-egress-test-REAL-OAUTH-1a2b3c";
constexpr char kPlaceholder[] = "assessq-placeholder-the-gateway-adds-the-real-key";
constexpr int kFloodRequests = 3000;  // ~1.6 MB of entries even once each is cut
constexpr char kLockFile[] = "/tmp/assessq-egress-container-test.lock";

// Everything the probes saw, and what the host saw of them.
struct Probe {
  int64_t job = 0;
  json show, netlog, obs;
  std::string log_tail;
};

struct World {
  std::unique_ptr<aqtest::NetnsWorld> net;
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Child> ns_server;
  std::string ns_log;
  std::unique_ptr<gwtest::TestServer> host_service;
  std::vector<std::string> host_addrs;  // the host's own IPv4 addresses (not lo, not ours)
  std::unique_ptr<Coordinator> coord;
  std::unique_ptr<Workerd> worker;
  std::unique_ptr<Ctl> ctl;
  std::string sleeper_socket, a_socket;  // host paths of two concurrent jobs' gateway sockets
  std::map<std::string, Probe> probes;
  size_t log_bytes_before = 0;  // workerd's log when the probe batch was submitted
  std::string setup_error;

  ~World() { Teardown(); }

  void Teardown() {
    DiscardWorker(worker);
    coord.reset();
    ns_server.reset();  // killed
    host_service.reset();
    net.reset();  // the namespace, its veth pair and every route through it
    dir.reset();
  }
};
World* g_world = nullptr;

std::vector<std::string> HostIpv4Addresses(const std::string& skip_if) {
  std::vector<std::string> out;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return out;
  for (ifaddrs* i = ifa; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    if (std::string(i->ifa_name) == "lo" || std::string(i->ifa_name) == skip_if) continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    out.push_back(buf);
  }
  freeifaddrs(ifa);
  return out;
}

std::string ReadProbesSource() {
  std::string src = ReadFile(ASSESSQ_PROBES_PY);
  if (src.empty()) throw std::runtime_error("cannot read " + std::string(ASSESSQ_PROBES_PY));
  return src;
}

std::vector<json> NsLog() { return aqtest::JsonLines(g_world->ns_log); }

std::string WritePolicy(World& w, const std::string& ca_pem) {
  std::string key_file = w.dir->Join("stub.key");
  WriteFile(key_file, std::string(kRealKey) + "\n");
  chmod(key_file.c_str(), 0600);
  std::string token_file = w.dir->Join("stub.oauth");
  WriteFile(token_file, std::string(kRealOauthToken) + "\n");
  chmod(token_file.c_str(), 0600);
  json policy = {
      {"netbridge_path", ASSESSQ_NETBRIDGE},
      {"credentials", {{"stubkey", key_file}, {"stuboauth", token_file}}},
      {"model_providers",
       {{"stub",
         {{"host", "model.test"}, {"port", 443}, {"tls", true}, {"ca_file", ca_pem},
          {"header", "x-api-key"}, {"credential", "stubkey"}}},
        // A subscription login (claude setup-token): the gateway sends the
        // token as a bearer; the container holds a placeholder in
        // CLAUDE_CODE_OAUTH_TOKEN.
        {"stub_oauth",
         {{"host", "model.test"}, {"port", 443}, {"tls", true}, {"ca_file", ca_pem},
          {"header", "authorization"}, {"credential", "stuboauth"},
          {"key_env", "CLAUDE_CODE_OAUTH_TOKEN"}}}}},
      {"egress",
       {{"open_ranges", {std::string(kAllowedAddr) + "/32"}},
        {"resolver_overrides",
         {{"allowed.test", {kAllowedAddr}},
          {"model.test", {kAllowedAddr}},
          {"evil.test", {kEvilAddr}},
          {"public.test", {kPublicAddr}},
          {"rebind.test", {kPublicAddr, kPrivateAddr}},
          {"private.test", {kPrivateAddr}},
          {"meta.test", {kMetadataAddr}}}},
        {"idle_timeout_s", 30}}},
  };
  std::string path = w.dir->Join("policy.json");
  WriteFile(path, policy.dump(2));
  return path;
}

std::string WriteProfile(World& w, const std::string& model = "stub") {
  json profile = {
      {"image", kImage},
      {"command", {"/usr/bin/python3", "-c", ReadProbesSource(), "{input}"}},
      {"network",
       {{"mode", "gateway"},
        {"allow", {"allowed.test", "public.test", "rebind.test", "private.test", "meta.test"}},
        {"deny", json::array()},
        {"allow_from_metadata", {"Link", "Paper Link"}},
        {"model", model}}},
      {"limits",
       {{"memory_mb", 256}, {"pids", 64}, {"timeout_s", 120}, {"grace_s", 5}, {"tmp_mb", 16},
        {"home_mb", 16}, {"output_mb", 4}, {"log_kb", 256}}},
  };
  std::string path = w.dir->Join("profile-" + model + ".json");
  WriteFile(path, profile.dump(2));
  return path;
}

void WriteProbe(const std::string& dir, const std::string& name, const json& params = json::object(),
                const json& extra = json::object()) {
  json md = {{"Name", "egress probe " + name}, {"Dialect", "Modern Standard Arabic"},
             {"X-Probe", name}, {"X-Params", params}};
  md.update(extra);
  WriteFile(dir + "/" + name + ".json", md.dump(2));
}

const std::vector<std::string> kMaxAttempts = {"--max-attempts", "agent=1", "--max-attempts", "infra=1",
                                               "--max-attempts", "model_api=1", "--max-attempts",
                                               "invalid_output=1"};

void Collect(World& w, const std::string& name, int64_t job) {
  Probe& p = w.probes[name];
  p.job = job;
  p.show = w.ctl->Show(job);
  p.netlog = w.ctl->Json({"netlog", std::to_string(job)});
  if (p.show.contains("attempts") && !p.show["attempts"].empty())
    p.log_tail = p.show["attempts"].back().value("log_tail", "");
  for (const auto& line : LinesStartingWith(p.log_tail, "PROBE-RESULT ")) {
    json j = json::parse(line.substr(13), nullptr, false);
    if (!j.is_discarded()) p.obs = j["obs"];
  }
}

void SetUpWorld(World& w) {
  Docker();  // throws: a failure, never a skip
  auto img = Docker().ImageExists(kImage);
  if (!img.ok() || !*img)
    throw std::runtime_error(std::string(kImage) +
                             " is missing: run scripts/build-net-image.sh BUILD/net-test-ca "
                             "(the assessq_net_image ctest fixture does)");
  const std::string ca_dir = ASSESSQ_NET_CA_DIR;
  if (!fs::exists(ca_dir + "/ca.pem") || !fs::exists(ca_dir + "/ca.key"))
    throw std::runtime_error("the test CA is missing from " + ca_dir);
  // The image must trust this CA (it records the CA's sha256).
  RunResult sum = Run({"/usr/bin/sha256sum", ca_dir + "/ca.pem"}, 10000);
  auto inspect = Docker().InspectImage(kImage);
  std::string want = "ASSESSQ_NET_CA=" + sum.out.substr(0, 64);
  if (!inspect.ok() || !absl::StrContains((*inspect)["Config"]["Env"].dump(), want))
    throw std::runtime_error(std::string(kImage) + " was built with another CA than " + ca_dir +
                             "/ca.pem: run scripts/build-net-image.sh");

  w.dir = std::make_unique<TempDir>();
  // The test hosts' namespace; every address a probe could make the gateway
  // reach routes into it.
  w.net = std::make_unique<aqtest::NetnsWorld>(aqtest::NetnsSpec{
      .name = "aqtest",
      .veth = "aq",
      .lock_file = kLockFile,
      .host_addr = kHostVethAddr,
      .ns_addrs = {"203.0.113.2/24", "203.0.113.3/32", "10.99.0.2/32", "10.99.0.3/32",
                   "169.254.169.254/32"},
      .default_via_host = true,
      .host_routes = {"10.99.0.0/24", "169.254.169.254/32"},
      .must_route = {kPublicAddr, kEvilAddr, kAllowedAddr, kPrivateAddr, kMetadataAddr}});
  w.net->Build();

  // The test hosts, with a certificate from the CA in the image.
  gwtest::TestCa ca{w.dir->path(), ca_dir + "/ca.pem", ca_dir + "/ca.key"};
  auto [cert, key] = ca.Issue("netns", "DNS:allowed.test,DNS:public.test,DNS:evil.test,DNS:rebind.test,"
                                       "DNS:model.test,DNS:private.test,DNS:meta.test");
  w.ns_log = w.dir->Join("netns-server.jsonl");
  w.ns_server = Child::Spawn(w.net->Exec({"/usr/bin/python3", ASSESSQ_NETNS_SERVER_PY, "--log",
                                           w.ns_log, "--cert", cert, "--key", key}),
                             w.dir->Join("netns-server.out"));
  if (!PollUntil([&] { return absl::StrContains(ReadFile(w.ns_log), "\"ready\""); }, 20000, 50))
    throw std::runtime_error("the namespace's test server did not start: " +
                             ReadFile(w.dir->Join("netns-server.out")));

  // A service on the host's 0.0.0.0, and the host's own addresses.
  w.host_service = std::make_unique<gwtest::TestServer>("0.0.0.0", 0, gwtest::TestServer::Mode::kHttp);
  w.host_addrs = HostIpv4Addresses(w.net->veth_host());
  w.host_addrs.push_back(kHostVethAddr);

  w.coord = std::make_unique<Coordinator>(w.dir->path());
  w.coord->Start();
  w.ctl = std::make_unique<Ctl>(*w.coord);
  std::string policy = WritePolicy(w, ca_dir + "/ca.pem");
  std::string profile = WriteProfile(w);
  w.worker = std::make_unique<Workerd>(*w.coord, w.dir->path(), Unique("egress"),
                                       WorkerOptions{.slots = 5, .extra_args = {"--policy", policy}});
  w.worker->Start();

  // Job B first: it runs (and keeps its gateway socket) while the others run.
  std::string in_b = w.dir->Join("in-sleeper");
  fs::create_directories(in_b);
  WriteProbe(in_b, "sleeper", {{"seconds", 100}});
  std::vector<std::string> args = kMaxAttempts;
  auto b = w.ctl->Submit({in_b}, "egress-sleeper", profile, args);
  const int64_t b_job = b.at("sleeper");
  std::optional<json> running;
  if (!PollUntil([&] { return (running = RunningContainerOfJob(w.worker->name(), b_job)).has_value(); },
                 60000, 100))
    throw std::runtime_error("the sleeper job never ran\n" + Tail(w.worker->Log()));
  for (const auto& d : ListDir(w.worker->jobs_dir()))
    if (absl::StartsWith(d, std::to_string(b_job) + "-"))
      w.sleeper_socket = w.worker->jobs_dir() + "/" + d + "/net/proxy.sock";
  struct stat st;
  if (w.sleeper_socket.empty() || stat(w.sleeper_socket.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode))
    throw std::runtime_error("the sleeper's gateway socket is not where expected: " + w.sleeper_socket);

  // Every other probe, in one batch.
  std::string in = w.dir->Join("in");
  fs::create_directories(in);
  // Its metadata's links join its allow list (network.allow_from_metadata);
  // no probe contacts them.
  WriteProbe(in, "allowed", json::object(),
             {{"Link", "https://Linked.Example.org/corpus"}, {"Paper Link", "http://10.0.0.1/paper"}});
  WriteProbe(in, "no_rule");
  WriteProbe(in, "ip_literals",
             {{"hosts",
               {"127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "0x7f000001", "127.1", "[::1]",
                "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
                // allowed.test's own address (open_ranges opens it; no rule names it).
                kAllowedAddr, "174260226", "0xa.0x63.0.2", "012.0143.0.02", "10.99.2",
                "[::ffff:10.99.0.2]"}}});
  std::vector<std::string> targets = {kMetadataAddr, "0xa9fea9fe", kPrivateAddr, "172.17.0.1",
                                      "meta.test", "private.test", "10.0.0.1", "192.168.0.1"};
  for (const auto& a : w.host_addrs) targets.push_back(a);
  WriteProbe(in, "private_ranges",
             {{"targets", targets}, {"direct", {kMetadataAddr, kPrivateAddr, kAllowedAddr, "172.17.0.1"}}});
  WriteProbe(in, "rebind");
  WriteProbe(in, "sni_mismatch");
  WriteProbe(in, "host_mismatch");
  WriteProbe(in, "non_http");
  WriteProbe(in, "no_network", {{"udp", {kAllowedAddr, kPublicAddr}}, {"tcp", {kAllowedAddr, kPublicAddr}}});
  std::vector<std::string> service_addrs = w.host_addrs;
  service_addrs.push_back("127.0.0.1");
  WriteProbe(in, "host_service", {{"port", w.host_service->port()}, {"addrs", service_addrs}});
  std::string coord_sock = w.coord->address().substr(5);  // unix:PATH
  WriteProbe(in, "host_paths",
             {{"paths",
               {coord_sock, "/var/run/docker.sock", "/run/docker.sock", w.sleeper_socket,
                w.worker->jobs_dir(), w.worker->state_dir()}}});
  WriteProbe(in, "model");
  WriteProbe(in, "model_env");
  WriteProbe(in, "denied_upload");
  WriteProbe(in, "model_api_only");
  WriteProbe(in, "netlog_flood", {{"requests", kFloodRequests}});
  w.log_bytes_before = ReadFile(w.worker->child()->log_path()).size();
  auto ids = w.ctl->Submit({in}, "egress-probes", profile, args);
  // The subscription-login provider, in a batch of its own (its profile).
  std::string in_oauth = w.dir->Join("in-oauth");
  fs::create_directories(in_oauth);
  WriteProbe(in_oauth, "model_bearer");
  auto oauth = w.ctl->Submit({in_oauth}, "egress-oauth", WriteProfile(w, "stub_oauth"), args);
  w.ctl->WaitBatchFinished("egress-probes", static_cast<int64_t>(ids.size()), 180000);
  w.ctl->WaitBatchFinished("egress-oauth", 1, 60000);
  for (const auto& [name, job] : ids) Collect(w, name, job);
  for (const auto& [name, job] : oauth) Collect(w, name, job);
  if (const char* dump = std::getenv("EGRESS_TEST_DUMP")) {  // debugging aid
    json all = json::object();
    for (const auto& [name, p] : w.probes)
      all[name] = {{"job", p.job}, {"obs", p.obs}, {"netlog", p.netlog}, {"log_tail", p.log_tail}};
    WriteFile(dump, all.dump(2));
  }
  // The host_paths job ran while the sleeper did (the sleeper runs 100 s and
  // is cancelled only now).
  json b_show = w.ctl->Show(b_job);
  if (b_show.value("state", "") != "running")
    throw std::runtime_error("the sleeper job stopped before the probes finished: " + b_show.dump(2));
  (void)w.ctl->Run({"cancel", std::to_string(b_job)});
  PollUntil([&] { return w.ctl->Show(b_job).value("state", "") != "running"; }, 30000, 200);
  Collect(w, "sleeper", b_job);
}

class EgressContainerTest : public SuiteWorldTest<World, &g_world, SetUpWorld> {
 protected:
  // The probe's observations; fails the test when the probe did not report.
  const Probe& P(const std::string& name) {
    const Probe& p = g_world->probes[name];
    EXPECT_TRUE(p.obs.is_object()) << "probe " << name << " printed no result; job "
                                   << p.show.dump(2).substr(0, 4000);
    return p;
  }

  static std::vector<json> Denials(const Probe& p) {
    std::vector<json> out;
    for (const auto& e : p.netlog)
      if (e.value("decision", "") == "deny") out.push_back(e);
    return out;
  }
  static int Allows(const Probe& p) {
    int n = 0;
    for (const auto& e : p.netlog) n += e.value("decision", "") == "allow";
    return n;
  }

  // Connections the namespace's hosts accepted at `addr`.
  static int AcceptsAt(const std::string& addr) {
    int n = 0;
    for (const auto& e : NsLog())
      if (e.value("event", "") == "accept" && e.value("local", "") == addr) ++n;
    return n;
  }
  // Requests (HTTP or TLS) the namespace's hosts saw for this Host / SNI.
  static int RequestsFor(const std::string& name) {
    int n = 0;
    for (const auto& e : NsLog()) {
      if (e.value("event", "") != "request") continue;
      std::string host = e.value("host", ""), sni = e.contains("sni") && e["sni"].is_string() ? e["sni"].get<std::string>() : "";
      if (host == name || absl::StartsWith(host, name + ":") || sni == name) ++n;
    }
    return n;
  }
};

// -------------------------------------------------------------- allowed

TEST_F(EgressContainerTest, AllowedNameWorksWithCurlAndPythonUrllib) {
  const Probe& p = P("allowed");
  for (const char* k : {"curl_http", "curl_https"}) {
    EXPECT_EQ(p.obs[k]["rc"], 0) << k << ": " << p.obs[k].dump();
    EXPECT_EQ(p.obs[k]["code"], 200) << k << ": " << p.obs[k].dump();
    EXPECT_TRUE(absl::StrContains(p.obs[k].value("body", ""), "hello from 10.99.0.2 host=allowed.test"))
        << p.obs[k].dump();
  }
  for (const char* k : {"urllib_http", "urllib_https"}) {
    EXPECT_EQ(p.obs[k]["code"], 200) << k << ": " << p.obs[k].dump();
    EXPECT_TRUE(absl::StrContains(p.obs[k].value("body", ""), "host=allowed.test")) << p.obs[k].dump();
  }
  EXPECT_EQ(Allows(p), 4) << p.netlog.dump(2);
  for (const auto& e : p.netlog) EXPECT_EQ(e.value("address", ""), kAllowedAddr) << e.dump();
  EXPECT_GE(RequestsFor("allowed.test"), 4);
}

// The job's metadata hosts joined its allow list, recorded with the attempt
// and shown by `assessctl show` and `netlog`; a job without such links got
// the profile's.
TEST_F(EgressContainerTest, MetadataHostsJoinTheJobsAllowListAndAreRecorded) {
  const json profile_allow = {"allowed.test", "public.test", "rebind.test", "private.test", "meta.test"};
  const Probe& p = P("allowed");
  ASSERT_FALSE(p.show["attempts"].empty()) << p.show.dump(2);
  const json& d = p.show["attempts"].back()["details"];
  json want = profile_allow;
  want.push_back("linked.example.org");
  EXPECT_EQ(d["allow"], want) << d.dump(2);
  EXPECT_EQ(d["allow_from_metadata"], json::array({"linked.example.org"})) << d.dump(2);
  EXPECT_EQ(d["allow_from_metadata_refused"], json::array({"Paper Link: IP literal"})) << d.dump(2);
  const json& other = P("no_rule").show["attempts"].back()["details"];
  EXPECT_EQ(other["allow"], profile_allow) << other.dump(2);
  EXPECT_EQ(other["allow_from_metadata"], json::array()) << other.dump(2);
  RunResult text = g_world->ctl->Run({"show", std::to_string(p.job)});
  EXPECT_TRUE(absl::StrContains(text.out, "allow list: 5 profile rules; from its metadata: linked.example.org"))
      << text.out;
  RunResult net = g_world->ctl->Run({"netlog", std::to_string(p.job)});
  EXPECT_TRUE(absl::StrContains(net.out, "allow list (6 rules): allowed.test, public.test, "
                                         "rebind.test, private.test, meta.test, linked.example.org\n"
                                         "from the dataset's metadata: linked.example.org"))
      << net.out;
}

// ---------------------------------------------------------------- names

TEST_F(EgressContainerTest, NameWithNoRuleIsDeniedBeforeResolution) {
  const Probe& p = P("no_rule");
  EXPECT_EQ(p.obs["curl_http"]["code"], 403) << p.obs.dump();
  EXPECT_EQ(p.obs["curl_https"]["connect"], 403) << p.obs.dump();
  EXPECT_NE(p.obs["curl_https"]["rc"], 0);
  EXPECT_EQ(p.obs["urllib_http"]["code"], 403) << p.obs.dump();
  EXPECT_NE(p.obs["urllib_https"]["code"], 200) << p.obs.dump();
  auto d = Denials(p);
  EXPECT_EQ(d.size(), 4u) << p.netlog.dump(2);
  for (const auto& e : d) {
    EXPECT_EQ(e.value("host", ""), "evil.test");
    // Decided by the rules: the name was never looked up.
    EXPECT_EQ(e.value("reason", ""), "no rule allows it") << e.dump();
    EXPECT_FALSE(e.contains("address")) << e.dump();
  }
  EXPECT_EQ(Allows(p), 0);
  EXPECT_EQ(AcceptsAt(kEvilAddr), 0) << "evil.test's host was reached";
}

TEST_F(EgressContainerTest, EveryIpLiteralSpellingIsDenied) {
  const Probe& p = P("ip_literals");
  ASSERT_TRUE(p.obs.is_object());
  int checked = 0;
  for (auto it = p.obs.begin(); it != p.obs.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (absl::StartsWith(k, "raw ")) {
      EXPECT_TRUE(v == 403 || v == 400) << k << ": " << v.dump();
    } else if (absl::StartsWith(k, "http ")) {
      // curl may refuse an odd spelling itself (rc 3): nothing is sent then.
      if (v["rc"] != 3) EXPECT_EQ(v["code"], 403) << k << ": " << v.dump();
    } else if (absl::StartsWith(k, "https ")) {
      EXPECT_NE(v["rc"], 0) << k << ": " << v.dump();
      if (v["rc"] != 3) EXPECT_EQ(v["connect"], 403) << k << ": " << v.dump();
    }
    ++checked;
  }
  EXPECT_EQ(checked, 15 * 3);
  EXPECT_EQ(Allows(p), 0) << p.netlog.dump(2);
  for (const auto& e : Denials(p))
    EXPECT_EQ(e.value("reason", ""), "no rule allows it") << e.dump();
  EXPECT_FALSE(p.netlog.empty());
  for (const char* spelled : {"10.99.0.2", "127.0.0.1", "::ffff:10.99.0.2"})
    EXPECT_EQ(RequestsFor(spelled), 0) << spelled;
}

TEST_F(EgressContainerTest, PrivateMetadataBridgeAndHostAddressesAreDenied) {
  const Probe& p = P("private_ranges");
  for (auto it = p.obs.begin(); it != p.obs.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (absl::StartsWith(k, "proxy ")) {
      EXPECT_EQ(v["code"], 403) << k << ": " << v.dump();
    } else if (absl::StartsWith(k, "connect ")) {
      EXPECT_EQ(v["connect"], 403) << k << ": " << v.dump();
    } else if (absl::StartsWith(k, "direct ")) {
      EXPECT_EQ(v, "ENETUNREACH") << k;
    }
  }
  EXPECT_EQ(Allows(p), 0) << p.netlog.dump(2);
  // The names a rule allows are refused for their addresses.
  int blocked = 0;
  for (const auto& e : Denials(p)) {
    std::string host = e.value("host", ""), reason = e.value("reason", "");
    if (host == "meta.test" || host == "private.test") {
      EXPECT_TRUE(absl::StrContains(reason, "resolves to a blocked address")) << e.dump();
      ++blocked;
    } else {
      EXPECT_EQ(reason, "no rule allows it") << e.dump();
    }
  }
  EXPECT_EQ(blocked, 4);
  EXPECT_TRUE(absl::StrContains(p.netlog.dump(), "link-local / cloud metadata"));
  EXPECT_EQ(AcceptsAt(kMetadataAddr), 0) << "the metadata address was reached";
  EXPECT_EQ(AcceptsAt(kPrivateAddr), 0) << "a private address was reached";
  EXPECT_EQ(g_world->host_service->connections(), 0) << "the host's service was reached";
}

TEST_F(EgressContainerTest, ResolverAnsweringPublicThenPrivateIsDenied) {
  const Probe& p = P("rebind");
  EXPECT_EQ(p.obs["http"]["code"], 403) << p.obs.dump();
  EXPECT_EQ(p.obs["https"]["connect"], 403) << p.obs.dump();
  // The control: the public address alone is fine.
  EXPECT_EQ(p.obs["control"]["code"], 200) << p.obs.dump();
  auto d = Denials(p);
  EXPECT_EQ(d.size(), 2u) << p.netlog.dump(2);
  for (const auto& e : d) {
    EXPECT_TRUE(absl::StrContains(e.value("reason", ""), "rebind.test resolves to a blocked address: 10.99.0.3"))
        << e.dump();
    EXPECT_FALSE(e.contains("address")) << e.dump();
  }
  EXPECT_EQ(RequestsFor("rebind.test"), 0) << "the first (public) answer was connected to";
  EXPECT_EQ(AcceptsAt(kPrivateAddr), 0);
  EXPECT_GE(RequestsFor("public.test"), 1);
}

// -------------------------------------------------------------- fronting

TEST_F(EgressContainerTest, SniMismatchIsRefused) {
  const Probe& p = P("sni_mismatch");
  EXPECT_NE(p.obs["curl_connect_to"]["rc"], 0) << p.obs.dump();
  for (const char* k : {"python_evil", "python_other_allowed"}) {
    EXPECT_EQ(p.obs[k]["connect"], 200) << k << ": " << p.obs[k].dump();
    EXPECT_EQ(p.obs[k].value("tls", ""), "failed") << k << ": " << p.obs[k].dump();
  }
  EXPECT_EQ(p.obs["python_control"].value("tls", ""), "ok") << p.obs.dump();
  EXPECT_EQ(p.obs["python_control"]["status"], 200) << p.obs.dump();
  int fronting = 0;
  for (const auto& e : Denials(p))
    fronting += absl::StrContains(e.value("reason", ""), "(fronting)");
  EXPECT_EQ(fronting, 3) << p.netlog.dump(2);
  EXPECT_EQ(RequestsFor("evil.test"), 0);
  for (const auto& e : NsLog())
    if (e.value("event", "") == "request" && e.contains("sni") && e["sni"].is_string())
      EXPECT_NE(e["sni"], "public.test") << "a TLS session with another name went through the allowed.test tunnel";
}

TEST_F(EgressContainerTest, HostHeaderMismatchIsRefused) {
  const Probe& p = P("host_mismatch");
  EXPECT_EQ(p.obs["raw"], 400) << p.obs.dump();
  EXPECT_EQ(p.obs["raw_port"], 400) << p.obs.dump();
  EXPECT_EQ(p.obs["curl"]["code"], 400) << p.obs.dump();
  EXPECT_EQ(p.obs["control"], 200) << p.obs.dump();
  int mismatch = 0;
  for (const auto& e : Denials(p))
    mismatch += absl::StrContains(e.value("reason", ""), "does not match the URL");
  EXPECT_EQ(mismatch, 3) << p.netlog.dump(2);
  EXPECT_EQ(RequestsFor("evil.test"), 0);
}

TEST_F(EgressContainerTest, NonHttpTrafficIsRefused) {
  const Probe& p = P("non_http");
  for (const char* k : {"junk", "bare_client_hello", "smtp_like"})
    EXPECT_TRUE(absl::StartsWith(p.obs[k].value("response", ""), "HTTP/1.1 400 ")) << k << ": " << p.obs[k].dump();
  // Plaintext inside a CONNECT tunnel to a TLS-only rule: closed after the 200.
  EXPECT_EQ(p.obs["plaintext_in_tunnel"].value("response", ""), "HTTP/1.1 200 Connection Established\r\n\r\n")
      << p.obs.dump();
  EXPECT_EQ(Allows(p), 0) << p.netlog.dump(2);
  EXPECT_EQ(Denials(p).size(), 4u) << p.netlog.dump(2);
}

// ------------------------------------------------------------- no network

TEST_F(EgressContainerTest, ContainerHasNoInterfaceButLoopbackAndNoRoute) {
  const Probe& p = P("no_network");
  EXPECT_EQ(p.obs["interfaces"], json::array({"lo"})) << p.obs.dump();
  for (const char* a : {kAllowedAddr, kPublicAddr}) {
    EXPECT_EQ(p.obs[std::string("udp ") + a], "ENETUNREACH") << p.obs.dump();
    EXPECT_EQ(p.obs[std::string("tcp ") + a], "ENETUNREACH") << p.obs.dump();
  }
  for (const auto& e : NsLog()) EXPECT_NE(e.value("event", ""), "datagram") << e.dump();
  EXPECT_TRUE(p.netlog.empty()) << p.netlog.dump(2);
}

TEST_F(EgressContainerTest, HostServiceOnAllAddressesIsUnreachable) {
  const Probe& p = P("host_service");
  for (auto it = p.obs.begin(); it != p.obs.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (absl::StartsWith(k, "direct ")) {
      // The container's own loopback has nothing there; everything else has no route.
      EXPECT_EQ(v, k == "direct 127.0.0.1" ? "ECONNREFUSED" : "ENETUNREACH") << k;
    } else if (absl::StartsWith(k, "proxy ")) {
      EXPECT_EQ(v["code"], 403) << k << ": " << v.dump();
    } else {
      EXPECT_EQ(v["connect"], 403) << k << ": " << v.dump();
    }
  }
  EXPECT_EQ(Allows(p), 0);
  EXPECT_EQ(g_world->host_service->connections(), 0) << "the host's 0.0.0.0 service was reached";
}

TEST_F(EgressContainerTest, CoordinatorAndDockerSocketsAreAbsent) {
  const Probe& p = P("host_paths");
  std::string coord_sock = g_world->coord->address().substr(5);
  for (const std::string path : {coord_sock, std::string("/var/run/docker.sock"), std::string("/run/docker.sock"),
                                 g_world->worker->jobs_dir(), g_world->worker->state_dir()}) {
    ASSERT_TRUE(p.obs.contains(path)) << path << " " << p.obs.dump();
    EXPECT_EQ(p.obs[path]["exists"], false) << path;
    EXPECT_NE(p.obs[path]["connect"], "CONNECTED") << path;
  }
  EXPECT_EQ(p.obs["run_assessq"], json::array({"net", "netbridge"})) << p.obs.dump();
  // Its own socket only: the dir is root's, mode 0711, and mounted read-only.
  EXPECT_EQ(p.obs["own_socket"], true) << p.obs.dump();
  EXPECT_EQ(p.obs["list_net_dir"], "EACCES") << p.obs.dump();
  EXPECT_EQ(p.obs["create_in_net_dir"], "EROFS") << p.obs.dump();
}

TEST_F(EgressContainerTest, AnotherJobsGatewaySocketIsNotInTheContainer) {
  const Probe& p = P("host_paths");
  // Both ran at once (checked at set-up: B was still running when A had
  // finished), and B's socket was a live socket on the host.
  const std::string& bpath = g_world->sleeper_socket;
  ASSERT_TRUE(p.obs.contains(bpath)) << p.obs.dump();
  EXPECT_EQ(p.obs[bpath]["exists"], false);
  EXPECT_EQ(p.obs[bpath]["connect"], "ENOENT");
}

// ----------------------------------------------------------------- model

TEST_F(EgressContainerTest, ModelKeyIsAddedByTheGatewayAndNeverEntersTheContainer) {
  const Probe& p = P("model");
  EXPECT_EQ(p.obs["base_url"], "http://127.0.0.1:3128");
  EXPECT_EQ(p.obs["env_key"], kPlaceholder);
  EXPECT_EQ(p.obs["post"]["code"], 200) << p.obs.dump();
  EXPECT_EQ(p.obs["secrets_dir"], false);
  EXPECT_FALSE(absl::StrContains(p.log_tail, kRealKey)) << "the real key reached the container";
  EXPECT_FALSE(absl::StrContains(p.show.dump(), kRealKey));
  EXPECT_FALSE(absl::StrContains(p.netlog.dump(), kRealKey));
  // The provider saw the real key once, and never the placeholder.
  int seen = 0;
  for (const auto& e : NsLog()) {
    if (e.value("event", "") != "request" || e.value("host", "") != "model.test") continue;
    if (e["headers"].contains("anthropic-beta")) continue;  // the bearer probe's (below)
    ++seen;
    ASSERT_TRUE(e["headers"].contains("x-api-key")) << e.dump();
    EXPECT_EQ(e["headers"]["x-api-key"], json::array({kRealKey})) << e.dump();
    EXPECT_FALSE(absl::StrContains(e.dump(), kPlaceholder)) << e.dump();
    EXPECT_EQ(e.value("sni", ""), "model.test");
  }
  EXPECT_GE(seen, 1);
  int model = 0;
  for (const auto& e : p.netlog)
    if (e.value("kind", "") == "model") {
      ++model;
      EXPECT_EQ(e["status"], 200) << e.dump();
    }
  EXPECT_GE(model, 1) << p.netlog.dump(2);
}

// The job's environment sets ANTHROPIC_BASE_URL=http://127.0.0.1:3128 and
// HTTP_PROXY=http://127.0.0.1:3128 with NO_PROXY empty, so every client that
// honours HTTP_PROXY (urllib, requests, httpx, curl) sends the model request
// to the proxy in absolute form, "POST http://127.0.0.1:3128/v1/messages";
// the gateway takes that for a request to host 127.0.0.1:3128 and denies it.
TEST_F(EgressContainerTest, ModelBaseUrlWorksWithTheJobsOwnProxySettings) {
  const Probe& p = P("model_env");
  ASSERT_TRUE(p.obs.is_object());
  EXPECT_EQ(p.obs["curl_env_proxy"]["code"], 200) << p.obs["curl_env_proxy"].dump();
  EXPECT_EQ(p.obs["urllib_env_proxy"]["code"], 200) << p.obs["urllib_env_proxy"].dump();
  for (const auto& e : Denials(p)) ADD_FAILURE() << "denied: " << e.dump();
}

// A subscription login (Claude Code's CLAUDE_CODE_OAUTH_TOKEN from `claude
// setup-token`): the container holds only a placeholder, sends it as a
// bearer, and the provider receives the real token as the bearer, once.
TEST_F(EgressContainerTest, ASubscriptionTokenIsAddedAsABearerAndNeverEntersTheContainer) {
  const Probe& p = P("model_bearer");
  EXPECT_EQ(p.obs["env_token"], kPlaceholder) << p.obs.dump();
  EXPECT_EQ(p.obs["post"]["code"], 200) << p.obs.dump();
  EXPECT_FALSE(absl::StrContains(p.obs["environ"].dump(), "ANTHROPIC_API_KEY")) << p.obs.dump();
  EXPECT_FALSE(absl::StrContains(p.show.dump(), kRealOauthToken));
  EXPECT_FALSE(absl::StrContains(p.log_tail, kRealOauthToken));
  int seen = 0;
  for (const auto& e : NsLog()) {
    if (e.value("event", "") != "request" || !e["headers"].contains("anthropic-beta")) continue;
    ++seen;
    EXPECT_EQ(e["headers"]["authorization"], json::array({std::string("Bearer ") + kRealOauthToken}))
        << e.dump();
    EXPECT_FALSE(e["headers"].contains("x-api-key")) << e.dump();
    EXPECT_FALSE(absl::StrContains(e.dump(), kPlaceholder)) << e.dump();
    EXPECT_TRUE(absl::StartsWith(e.value("line", ""), "POST /v1/messages?beta=true ")) << e.dump();
  }
  EXPECT_EQ(seen, 1);
}

// TRACE, the file and the batch endpoints are not the model route: refused
// with the reason, and the provider never sees them (with the key).
TEST_F(EgressContainerTest, TheModelRouteRefusesWhatIsNotTheMessagesApi) {
  const Probe& p = P("model_api_only");
  EXPECT_EQ(p.obs["trace"]["code"], 405) << p.obs.dump();
  EXPECT_EQ(p.obs["trace"]["deny_reason"], "method_not_allowed") << p.obs.dump();
  for (const char* k : {"files", "batches"}) {
    EXPECT_EQ(p.obs[k]["code"], 403) << k << ": " << p.obs.dump();
    EXPECT_EQ(p.obs[k]["deny_reason"], "path_not_allowed") << k << ": " << p.obs.dump();
  }
  for (const auto& e : NsLog()) {
    if (e.value("event", "") != "request") continue;
    std::string line = e.value("line", "");
    EXPECT_FALSE(absl::StartsWith(line, "TRACE") || absl::StrContains(line, "/v1/files") ||
                 absl::StrContains(line, "/batches"))
        << e.dump();
  }
  EXPECT_EQ(Denials(p).size(), 3u) << p.netlog.dump(2);
}

// 3,000 refused requests with 8 KB targets and 20 KB Host headers, then a
// valid assessment: the network log stays under its byte cap and says what
// it dropped, the report is accepted and the result stored, and workerd's
// own log grows by a bounded number of short lines (before: the netlog grew
// to ~84 MB, the report was refused and the result lost with it, and
// workerd logged ~28 KB per request).
TEST_F(EgressContainerTest, AFloodOfHugeRefusedRequestsLosesNoResultAndGrowsNoLog) {
  const Probe& p = P("netlog_flood");
  EXPECT_EQ(p.obs["codes"].value("400", 0), kFloodRequests) << p.obs.dump();
  EXPECT_EQ(p.show.value("state", ""), "succeeded") << p.show.dump(2).substr(0, 3000);
  json result = g_world->ctl->Json({"result", std::to_string(p.job)});
  EXPECT_EQ(result.value("الاسم", ""), "egress probe netlog_flood") << result.dump().substr(0, 500);
  const std::string text = p.netlog.dump();
  EXPECT_LE(text.size(), size_t{(1 << 20) + 2048}) << "the stored network log";
  ASSERT_TRUE(p.netlog.is_array() && !p.netlog.empty());
  EXPECT_EQ(p.netlog.back().value("decision", ""), "truncated") << p.netlog.back().dump();
  EXPECT_EQ(p.netlog.back().value("dropped_entries", 0) + static_cast<int>(p.netlog.size()) - 1,
            kFloodRequests);
  EXPECT_EQ(p.show["attempts"].back().value("details", json::object()).value("denied_requests", 0),
            kFloodRequests) << p.show["attempts"].back().dump().substr(0, 2000);
  // workerd's lines about this job.
  const std::string log = ReadFile(g_world->worker->child()->log_path()).substr(g_world->log_bytes_before);
  size_t lines = 0, bytes = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n'))
    if (absl::StrContains(line, absl::StrCat("[job=", p.job, "]"))) {
      ++lines;
      bytes += line.size();
    }
  std::cout << "flood: stored network log " << text.size() << " bytes, " << p.netlog.size()
            << " entries; workerd wrote " << lines << " lines (" << bytes << " bytes) for the job\n";
  EXPECT_LE(lines, 40u);
  EXPECT_LT(bytes, size_t{32 << 10});
}

// When the gateway closes a connection (a denial) while the agent is still
// sending (a request body), the bridge's write gets EPIPE: the bridge must
// not die of SIGPIPE (it is the job's main process: exit 141).
TEST_F(EgressContainerTest, ADeniedUploadDoesNotKillTheJob) {
  const Probe& p = g_world->probes["denied_upload"];
  ASSERT_FALSE(p.show.is_null());
  const json& a = p.show["attempts"].back();
  EXPECT_NE(a.value("exit_code", 0), 141) << "the job died of SIGPIPE: " << a.dump(2);
  ASSERT_TRUE(p.obs.is_object()) << "the probe never finished: " << a.dump(2);
  EXPECT_EQ(p.obs["upload"], 403) << p.obs.dump();
  EXPECT_EQ(p.obs["after"]["code"], 200) << p.obs.dump();
}

// Whatever any probe did: every connection the namespace's hosts accepted
// carried a request for a name the profile allows (or the model provider).
TEST_F(EgressContainerTest, OnlyAllowedNamesEverReachedTheTestHosts) {
  int accepts = 0, requests = 0;
  for (const auto& e : NsLog()) {
    std::string ev = e.value("event", "");
    if (ev == "accept") {
      ++accepts;
      EXPECT_TRUE(e.value("local", "") == kAllowedAddr || e.value("local", "") == kPublicAddr) << e.dump();
    } else if (ev == "request") {
      ++requests;
      std::string host = e.value("host", "");
      EXPECT_TRUE(host == "allowed.test" || host == "public.test" || host == "model.test") << e.dump();
      if (e.contains("sni") && e["sni"].is_string())
        EXPECT_EQ(e["sni"], host) << e.dump();
    } else if (ev == "error") {
      ADD_FAILURE() << "a connection reached a test host and failed there: " << e.dump();
    }
  }
  EXPECT_EQ(accepts, requests);
  EXPECT_GT(requests, 0);
}

}  // namespace
}  // namespace aqe2e

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  signal(SIGPIPE, SIG_IGN);
  return RUN_ALL_TESTS();
}
