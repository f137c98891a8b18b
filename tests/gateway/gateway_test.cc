// The egress gateway in-process (worker/gateway/gateway.h), driven by real
// clients: libcurl through the real assessq-netbridge (as an agent would use
// HTTP_PROXY) and raw bytes on the job's Unix socket, against test servers
// that count every connection and keep every byte.
//
// The whole test process runs in a private network namespace (see main)
// with no route off the machine: the gateway's own namespace has lo only
// (127.0.0.1 and ::1 with counting servers, and 203.0.113.9 standing for the
// worker host's own public address); the test servers live in a second
// namespace behind a veth pair (10.200.0.2 = allowed.test, opened by
// open_ranges; 10.200.0.3 a private host; 198.51.100.7 a "public" host;
// 169.254.169.254 the metadata address), so that what the gateway reaches is
// not an address of its own host. Nothing can leave this machine whatever
// the gateway does, and names resolve only through resolver_overrides.
#include "worker/gateway/gateway.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/gateway/gw_test_util.h"

namespace assessq::gateway {
namespace {

using gwtest::Curl;
using gwtest::CurlOptions;
using gwtest::Exchange;
using gwtest::ReadHttpHead;
using gwtest::StatusOf;
using gwtest::TestServer;
using gwtest::UnixClient;
using Mode = gwtest::TestServer::Mode;

// The test servers live in a second namespace ("far", behind a veth pair):
constexpr char kFar[] = "10.200.0.2";        // allowed.test etc. (opened by open_ranges)
constexpr char kFarOpen[] = "10.200.0.2/32";
constexpr char kPrivate[] = "10.200.0.3";    // a private host no open_range opens
constexpr char kPublic[] = "198.51.100.7";   // a "public" host
// In the gateway's own namespace: loopback (with counting servers) and
constexpr char kSelf[] = "203.0.113.9";      // "the worker host's own public address", on lo
constexpr char kSecret[] = "sk-ant-REAL-key-0123456789-never-in-a-container";
constexpr char kPlaceholder[] = "assessq-placeholder-the-gateway-adds-the-real-key";

struct Shared {
  gwtest::TempDir dir;
  gwtest::TestCa ca;
  std::pair<std::string, std::string> good, wrong, rogue;
  SSL_CTX* good_ctx = nullptr;
  SSL_CTX* wrong_ctx = nullptr;
  SSL_CTX* rogue_ctx = nullptr;
};
Shared* g_shared = nullptr;

std::map<std::string, std::vector<std::string>> Overrides() {
  return {
      {"allowed.test", {kFar}},
      {"other.test", {kFar}},
      {"model.test", {kFar}},
      {"public.test", {kPublic}},
      {"rebind.test", {kPublic, kPrivate}},
      {"rebind-reverse.test", {kPrivate, kPublic}},
      {"rebind-loopback.test", {kPublic, "127.0.0.1"}},
      {"rebind-mapped.test", {kPublic, "::ffff:127.0.0.1"}},
      {"rebind-v6.test", {kPublic, "::1"}},
      {"rebind-meta.test", {kPublic, "169.254.169.254"}},
      {"self.test", {kSelf}},
      {"n1.allowed.test", {kFar}},
      {"n2.allowed.test", {kFar}},
      {"n3.allowed.test", {kFar}},
      {"n4.allowed.test", {kFar}},
      {"n5.allowed.test", {kFar}},
  };
}

// Open sockets of this process (the gateway runs in it): /proc/self/fd
// entries that are sockets.
int SocketsOfThisProcess() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && absl::StartsWith(target.string(), "socket:")) ++n;
  }
  return n;
}

// The netbridge (127.0.0.1:3128) accepts a connection.
bool BridgeAccepts() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(3128);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

class GatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (g_shared) return;
    g_shared = new Shared;
    g_shared->ca = gwtest::MakeTestCa(g_shared->dir.path());
    g_shared->good = g_shared->ca.Issue(
        "good", "DNS:allowed.test,DNS:other.test,DNS:model.test,DNS:public.test,IP:10.200.0.2");
    g_shared->wrong = g_shared->ca.Issue("wrong", "DNS:wrong.test");
    g_shared->rogue = g_shared->ca.Issue("rogue", "DNS:model.test", /*self_signed=*/true);
    g_shared->good_ctx = gwtest::ServerTlsContext(g_shared->good.first, g_shared->good.second);
    g_shared->wrong_ctx = gwtest::ServerTlsContext(g_shared->wrong.first, g_shared->wrong.second);
    g_shared->rogue_ctx = gwtest::ServerTlsContext(g_shared->rogue.first, g_shared->rogue.second);
  }

  void SetUp() override {
    dir_ = std::make_unique<gwtest::TempDir>();
    http80_ = Far(kFar, 80, Mode::kHttp);
    https443_ = Far(kFar, 443, Mode::kHttp, g_shared->good_ctx);
    priv80_ = Far(kPrivate, 80, Mode::kHttp);
    priv443_ = Far(kPrivate, 443, Mode::kSilent);
    pub80_ = Far(kPublic, 80, Mode::kHttp);
    pub443_ = Far(kPublic, 443, Mode::kHttp, g_shared->good_ctx);
    meta80_ = Far("169.254.169.254", 80, Mode::kHttp);
    // The gateway's own loopback.
    lo80_ = std::make_unique<TestServer>("127.0.0.1", 80, Mode::kHttp);
    lo443_ = std::make_unique<TestServer>("127.0.0.1", 443, Mode::kSilent);
    v6_80_ = std::make_unique<TestServer>("::1", 80, Mode::kHttp);
    v6_443_ = std::make_unique<TestServer>("::1", 443, Mode::kSilent);
  }

  void TearDown() override {
    bridge_.reset();
    if (job_) job_->Stop();
    job_.reset();
    gw_.reset();
  }

  static std::unique_ptr<TestServer> Far(const std::string& addr, int port, Mode mode,
                                         SSL_CTX* tls = nullptr) {
    return std::make_unique<TestServer>(addr, port, mode, tls, /*far=*/true);
  }

  std::string ca() const { return g_shared->ca.ca_pem; }
  std::string sock() const { return dir_->Join("proxy.sock"); }

  static JobConfig Config(const std::vector<std::string>& allow, const std::vector<std::string>& open = {},
                          const std::vector<std::string>& deny = {}) {
    JobConfig c;
    c.job_id = 42;
    for (const auto& a : allow) {
      auto r = ParseRule(a);
      EXPECT_TRUE(r.ok()) << a;
      if (r.ok()) c.policy.rules.push_back(*r);
    }
    for (const auto& d : deny) {
      auto r = ParseRule(d);
      EXPECT_TRUE(r.ok()) << d;
      if (r.ok()) {
        r->deny = true;
        c.policy.rules.push_back(*r);
      }
    }
    for (const auto& o : open) {
      auto r = ParseCidr(o);
      EXPECT_TRUE(r.ok()) << o;
      if (r.ok()) c.policy.open_ranges.push_back(*r);
    }
    return c;
  }

  void Start(JobConfig c) {
    GatewayOptions o;
    o.resolver_overrides = Overrides();
    o.splice = splice_;
    auto g = Gateway::Create(o);
    ASSERT_TRUE(g.ok()) << g.status();
    gw_ = std::move(*g);
    c.socket_path = sock();
    auto j = gw_->StartJob(c);
    ASSERT_TRUE(j.ok()) << j.status();
    job_ = *j;
  }

  // Another job (and gateway) in place of the running one.
  void Restart(JobConfig c) {
    job_->Stop();
    job_.reset();
    gw_.reset();
    Start(std::move(c));
  }

  // The real bridge, as inside a container: 127.0.0.1:3128 -> the socket.
  std::string Proxy() {
    if (!bridge_) {
      bridge_ = std::make_unique<gwtest::Netbridge>(ASSESSQ_NETBRIDGE, sock(), 3128);
      EXPECT_TRUE(bridge_->ready()) << "netbridge did not listen";
    }
    return "http://127.0.0.1:3128";
  }

  // The netlog once it holds `n` entries (the last is written as the
  // connection ends).
  nlohmann::json Netlog(size_t n) {
    nlohmann::json log;
    aqtest::PollUntil(
        [&] {
          log = job_->Netlog();
          return log.size() >= n;
        },
        5000, 10);
    EXPECT_GE(log.size(), n) << log.dump(2);
    return log;
  }

  int AllServerConnections() {
    int n = 0;
    for (auto* s : {&http80_, &https443_, &priv80_, &priv443_, &pub80_, &pub443_, &meta80_, &lo80_,
                    &lo443_, &v6_80_, &v6_443_})
      n += (*s)->connections();
    return n;
  }

  static std::string Get(const std::string& url_host, const std::string& host_header,
                         const std::string& extra = "") {
    return absl::StrCat("GET http://", url_host, "/ HTTP/1.1\r\nHost: ", host_header, "\r\n", extra,
                        "\r\n");
  }

  std::unique_ptr<gwtest::TempDir> dir_;
  std::unique_ptr<TestServer> http80_, https443_, priv80_, priv443_, pub80_, pub443_, meta80_, lo80_,
      lo443_, v6_80_, v6_443_;
  std::unique_ptr<Gateway> gw_;
  std::shared_ptr<JobGateway> job_;
  std::unique_ptr<gwtest::Netbridge> bridge_;
  bool splice_ = true;  // GatewayOptions::splice for the next Start
};

// ------------------------------------------------------------- allowed

TEST_F(GatewayTest, AllowedHostWorksOverHttpWithCurl) {
  Start(Config({"allowed.test"}, {kFarOpen}));
  auto r = Curl({.url = "http://allowed.test/hello?x=1",
                 .proxy = Proxy(),
                 .headers = {"Proxy-Authorization: Basic c2VjcmV0", "X-Custom: kept"}});
  ASSERT_EQ(r.curl_code, CURLE_OK) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello\n");
  ASSERT_EQ(http80_->connections(), 1);
  std::string got = http80_->received()[0];
  EXPECT_TRUE(absl::StartsWith(got, "GET /hello?x=1 HTTP/1.1\r\n")) << got;
  EXPECT_TRUE(absl::StrContains(got, "\r\nhost: allowed.test\r\n")) << got;
  EXPECT_TRUE(absl::StrContains(got, "\r\nconnection: close\r\n")) << got;
  EXPECT_TRUE(absl::StrContains(got, "\r\nx-custom: kept\r\n")) << got;
  EXPECT_FALSE(absl::StrContains(absl::AsciiStrToLower(got), "proxy-authorization")) << got;
  auto log = Netlog(1);
  const auto& e = log[0];
  EXPECT_EQ(e["decision"], "allow");
  EXPECT_EQ(e["kind"], "http");
  EXPECT_EQ(e["host"], "allowed.test");
  EXPECT_EQ(e["port"], 80);
  EXPECT_EQ(e["rule"], "allowed.test");
  EXPECT_EQ(e["address"], kFar);
  EXPECT_EQ(e["job"], 42);
  EXPECT_GT(e.value("bytes_down", 0), 0) << e.dump();
  EXPECT_EQ(job_->denied(), 0);
}

TEST_F(GatewayTest, AllowedHostWorksOverConnectAndVerifiedTlsWithCurl) {
  Start(Config({"allowed.test"}, {kFarOpen}));
  auto r = Curl({.url = "https://allowed.test/secure", .proxy = Proxy(), .cainfo = ca()});
  ASSERT_EQ(r.curl_code, CURLE_OK) << r.error;
  EXPECT_EQ(r.connect_status, 200);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello\n");
  EXPECT_EQ(https443_->connections(), 1);
  auto log = Netlog(1);
  EXPECT_EQ(log[0]["decision"], "allow");
  EXPECT_EQ(log[0]["kind"], "connect");
  EXPECT_EQ(log[0]["sni"], "allowed.test");
  EXPECT_EQ(log[0]["port"], 443);
  EXPECT_GT(log[0].value("bytes_up", 0), 0);
  EXPECT_GT(log[0].value("bytes_down", 0), 0);
}

// ------------------------------------------------------------- denied

TEST_F(GatewayTest, DeniedHostIs403WithTheReasonAndIsNeverResolved) {
  Start(Config({"allowed.test", "*.allowed.test"}, {kFarOpen}, {"bad.allowed.test"}));
  // evil.test is in no rule and not in resolver_overrides: a resolver (there
  // is no DNS in this namespace) would give "cannot resolve", not this.
  auto r = Curl({.url = "http://evil.test/", .proxy = Proxy()});
  EXPECT_EQ(r.status, 403);
  EXPECT_TRUE(absl::StrContains(r.headers, "X-Assessq-Gateway: deny")) << r.headers;
  EXPECT_TRUE(absl::StrContains(r.body, "no rule allows it")) << r.body;
  r = Curl({.url = "https://evil.test/", .proxy = Proxy(), .cainfo = ca()});
  EXPECT_NE(r.curl_code, CURLE_OK);
  EXPECT_EQ(r.connect_status, 403);
  // A deny rule wins over the wildcard that would allow it.
  std::string resp = Exchange(sock(), Get("bad.allowed.test", "bad.allowed.test"));
  EXPECT_EQ(StatusOf(resp), 403) << resp;
  auto log = Netlog(3);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(log[i]["decision"], "deny") << log[i].dump();
    EXPECT_EQ(log[i]["host"], "evil.test");
    EXPECT_EQ(log[i]["reason"], "no rule allows it") << log[i].dump();
    EXPECT_FALSE(log[i].contains("address")) << log[i].dump();
  }
  EXPECT_EQ(log[0]["kind"], "http");
  EXPECT_EQ(log[1]["kind"], "connect");
  EXPECT_EQ(log[2]["reason"], "deny rule !bad.allowed.test") << log[2].dump();
  EXPECT_EQ(job_->denied(), 3);
  EXPECT_EQ(AllServerConnections(), 0);
}

TEST_F(GatewayTest, WorkerForbiddenHostWinsOverTheProfile) {
  JobConfig c = Config({"allowed.test"}, {kFarOpen});
  c.policy.forbidden.push_back(*ParseRule("allowed.test"));
  Start(c);
  std::string resp = Exchange(sock(), Get("allowed.test", "allowed.test"));
  EXPECT_EQ(StatusOf(resp), 403) << resp;
  auto log = Netlog(1);
  EXPECT_TRUE(absl::StartsWith(log[0].value("reason", ""), "forbidden by worker policy")) << log.dump();
  EXPECT_EQ(AllServerConnections(), 0);
}

// Every spelling of loopback, with loopback opened in open_ranges: only the
// rules stand between the job and the address, and no rule names it.
TEST_F(GatewayTest, EveryIpLiteralSpellingIsDenied) {
  Start(Config({"allowed.test", "*.allowed.test"}, {"127.0.0.1/32", "::1/128", kFarOpen}));
  const std::vector<std::string> hosts = {
      // allowed.test's own address, opened by open_ranges: only the rules
      // stand between the job and it.
      "10.200.0.2", "180879362", "0xa.0xc8.0.2", "012.0310.0.02", "10.200.2", "0xac80002",
      "[::ffff:10.200.0.2]", "[::ffff:ac8:2]",
      // loopback
      "127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "0x7f000001", "127.1", "0x7F.0.0.1",
      "127.0.1", "017700000001", "0x7f.0x0.0x0.0x1", "[::1]", "[::ffff:127.0.0.1]",
      "[::ffff:7f00:1]", "[0:0:0:0:0:ffff:7f00:1]", "[::127.0.0.1]", "[0::1]"};
  size_t entries = 0;
  for (const auto& h : hosts) {
    std::string resp = Exchange(sock(), absl::StrCat("CONNECT ", h, ":443 HTTP/1.1\r\nHost: ", h,
                                                     ":443\r\n\r\n"));
    EXPECT_EQ(StatusOf(resp), 403) << "CONNECT " << h << ": " << resp;
    resp = Exchange(sock(), Get(h, h));
    EXPECT_EQ(StatusOf(resp), 403) << "GET " << h << ": " << resp;
    resp = Exchange(sock(), Get(h + ":80", h + ":80"));
    EXPECT_EQ(StatusOf(resp), 403) << "GET " << h << ":80: " << resp;
    entries += 3;
  }
  // Unbracketed IPv6 is not even an authority.
  EXPECT_EQ(StatusOf(Exchange(sock(), "CONNECT ::ffff:7f00:1:443 HTTP/1.1\r\n\r\n")), 400);
  ++entries;
  // And the same through curl (which may canonicalise the spelling itself).
  std::string proxy = Proxy();
  for (const auto& h : hosts) {
    // (curl may refuse a spelling itself: then nothing reaches the gateway.)
    auto r = Curl({.url = "http://" + h + "/", .proxy = proxy});
    if (r.curl_code != CURLE_URL_MALFORMAT) {
      EXPECT_EQ(r.status, 403) << h << ": " << r.error;
      ++entries;
    }
    r = Curl({.url = "https://" + h + "/", .proxy = proxy, .cainfo = ca()});
    EXPECT_NE(r.curl_code, CURLE_OK) << h;
    if (r.curl_code != CURLE_URL_MALFORMAT) {
      EXPECT_EQ(r.connect_status, 403) << h << ": " << r.error;
      ++entries;
    }
  }
  auto log = Netlog(entries);
  EXPECT_EQ(log.size(), entries);
  for (size_t i = 0; i < log.size(); ++i) {
    if (i == hosts.size() * 3) continue;  // the unbracketed one: 400
    EXPECT_EQ(log[i]["decision"], "deny") << log[i].dump();
    EXPECT_EQ(log[i]["reason"], "no rule allows it") << log[i].dump();
  }
  EXPECT_EQ(AllServerConnections(), 0) << "a literal reached a server";
}

TEST_F(GatewayTest, IpLiteralNamedByARuleIsAllowedInEverySpellingButNotAsIpv6) {
  Start(Config({kFar}, {kFarOpen}));
  for (const std::string h : {"10.200.0.2", "0xa.0xc8.0.2", "180879362"}) {
    std::string resp = Exchange(sock(), Get(h, h));
    EXPECT_EQ(StatusOf(resp), 200) << h << ": " << resp;
  }
  EXPECT_EQ(http80_->connections(), 3);
  for (const std::string h : {"[::ffff:10.200.0.2]", "[::1]", "127.0.0.1"}) {
    std::string resp = Exchange(sock(), Get(h, h));
    EXPECT_EQ(StatusOf(resp), 403) << h << ": " << resp;
  }
  EXPECT_EQ(AllServerConnections(), 3);
}

// A resolver answering a usable address first and a blocked one next (DNS
// rebinding, or a name pointing at the inside): denied, no connection to
// either address.
TEST_F(GatewayTest, ResolverAnsweringPublicThenPrivateIsDeniedWithoutConnecting) {
  Start(Config({"rebind.test", "rebind-reverse.test", "rebind-loopback.test", "rebind-mapped.test",
                "rebind-v6.test", "rebind-meta.test", "public.test"}));
  size_t entries = 0;
  for (const std::string n : {"rebind.test", "rebind-reverse.test", "rebind-loopback.test",
                              "rebind-mapped.test", "rebind-v6.test", "rebind-meta.test"}) {
    std::string resp = Exchange(sock(), Get(n, n));
    EXPECT_EQ(StatusOf(resp), 403) << n << ": " << resp;
    EXPECT_TRUE(absl::StrContains(resp, "resolves to a blocked address")) << resp;
    resp = Exchange(sock(), absl::StrCat("CONNECT ", n, ":443 HTTP/1.1\r\n\r\n"));
    EXPECT_EQ(StatusOf(resp), 403) << n << ": " << resp;
    entries += 2;
  }
  auto log = Netlog(entries);
  for (const auto& e : log) {
    EXPECT_EQ(e["decision"], "deny");
    EXPECT_FALSE(e.contains("address")) << e.dump();
  }
  EXPECT_EQ(AllServerConnections(), 0) << "the gateway connected to a rebinding name's address";
  // The control: the public address alone works (so the denial above is the
  // private address's doing).
  std::string resp = Exchange(sock(), Get("public.test", "public.test"));
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(pub80_->connections(), 1);
}

// -------------------------------------------------------------- fronting

TEST_F(GatewayTest, SniMismatchInConnectIsRefusedBeforeAnyUpstreamByte) {
  Start(Config({"allowed.test", "other.test"}, {kFarOpen}));
  struct Case {
    std::string sni, why;
  };
  // other.test is allowed too and has the same address: the name must still
  // be the CONNECT host's.
  for (const Case& c : std::vector<Case>{{"evil.test", "does not match CONNECT host"},
                                         {"other.test", "does not match CONNECT host"},
                                         {"", "no server name"}}) {
    UnixClient cl(sock());
    ASSERT_TRUE(cl.ok());
    cl.Send("CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n");
    std::string head = cl.ReadUntil("\r\n\r\n");
    ASSERT_EQ(StatusOf(head), 200) << head;
    cl.Send(gwtest::MakeClientHello(c.sni));
    bool eof = false;
    std::string rest = cl.ReadAll(&eof);
    EXPECT_TRUE(eof) << "SNI '" << c.sni << "': the tunnel stayed open";
    EXPECT_EQ(rest, "") << c.sni;
  }
  // Not TLS at all, on a rule without a port (TLS only).
  {
    UnixClient cl(sock());
    cl.Send("CONNECT allowed.test:443 HTTP/1.1\r\n\r\n");
    ASSERT_EQ(StatusOf(cl.ReadUntil("\r\n\r\n")), 200);
    cl.Send("GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n");
    bool eof = false;
    EXPECT_EQ(cl.ReadAll(&eof), "");
    EXPECT_TRUE(eof);
  }
  // curl --connect-to: CONNECT allowed.test:443, TLS for evil.test.
  auto r = Curl({.url = "https://evil.test/", .proxy = Proxy(), .cainfo = ca(),
                 .connect_to = "evil.test:443:allowed.test:443"});
  EXPECT_NE(r.curl_code, CURLE_OK);
  auto log = Netlog(5);
  EXPECT_TRUE(absl::StrContains(log[0].value("reason", ""), "(fronting)")) << log[0].dump();
  EXPECT_EQ(log[0]["sni"], "evil.test");
  EXPECT_TRUE(absl::StrContains(log[1].value("reason", ""), "does not match")) << log[1].dump();
  EXPECT_TRUE(absl::StrContains(log[2].value("reason", ""), "no server name")) << log[2].dump();
  EXPECT_TRUE(absl::StrContains(log[3].value("reason", ""), "TLS check")) << log[3].dump();
  EXPECT_TRUE(absl::StrContains(log[4].value("reason", ""), "does not match")) << log[4].dump();
  for (const auto& e : log) EXPECT_EQ(e["decision"], "deny") << e.dump();
  EXPECT_EQ(https443_->connections(), 0) << "the upstream saw a connection";
  EXPECT_EQ(AllServerConnections(), 0);
}

TEST_F(GatewayTest, HostHeaderMismatchIs400) {
  Start(Config({"allowed.test", "other.test"}, {kFarOpen}));
  for (const std::string host : {"evil.test", "other.test", "allowed.test:8080", "127.0.0.1",
                                 "allowed.test.evil.test", "allowed.test@evil.test", ""}) {
    std::string resp = Exchange(sock(), Get("allowed.test", host));
    EXPECT_EQ(StatusOf(resp), 400) << "Host: " << host << ": " << resp;
  }
  std::string resp = Exchange(sock(), "GET http://allowed.test/ HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusOf(resp), 400) << resp;
  EXPECT_TRUE(absl::StrContains(resp, "no Host header"));
  // Two Host headers: the first is checked and only the gateway's one is sent.
  resp = Exchange(sock(), Get("allowed.test", "allowed.test", "Host: evil.test\r\n"));
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  ASSERT_EQ(http80_->connections(), 1);
  EXPECT_FALSE(absl::StrContains(http80_->received()[0], "evil.test")) << http80_->received()[0];
  // Spellings of the same authority match.
  for (const std::string host : {"allowed.test:80", "ALLOWED.test.", "Allowed.Test"}) {
    resp = Exchange(sock(), Get("allowed.test", host));
    EXPECT_EQ(StatusOf(resp), 200) << host << ": " << resp;
  }
  EXPECT_EQ(http80_->connections(), 4);
  auto log = Netlog(12);
  EXPECT_TRUE(absl::StrContains(log[0].value("reason", ""), "does not match the URL")) << log[0].dump();
}

TEST_F(GatewayTest, JunkAndUnsupportedFormsAre400) {
  Start(Config({"allowed.test"}, {kFarOpen}));
  for (const std::string req :
       {std::string("\x00\x01\x02\x03junk\r\n\r\n", 12), std::string("SSH-2.0-OpenSSH_9.2\r\n\r\n"),
        std::string("GET https://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n"),
        std::string("OPTIONS * HTTP/1.1\r\nHost: allowed.test\r\n\r\n"),
        std::string("GET http://allowed.test/ HTTP/2.0\r\nHost: allowed.test\r\n\r\n"),
        std::string("GET http://u:p@allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n"),
        gwtest::MakeClientHello("allowed.test") + "\r\n\r\n"}) {
    std::string resp = Exchange(sock(), req);
    EXPECT_EQ(StatusOf(resp), 400) << resp;
  }
  // A ClientHello without CONNECT never completes a head: closed at the head limit.
  std::string big(40000, 'A');
  EXPECT_EQ(StatusOf(Exchange(sock(), big)), 400);
  EXPECT_EQ(AllServerConnections(), 0);
}

// ----------------------------------------------------------- model route

ModelRoute Route(int port, const std::string& header = "x-api-key") {
  ModelRoute m;
  m.host = "model.test";
  m.port = port;
  m.tls = true;
  m.ca_file = g_shared->ca.ca_pem;
  m.header = header;
  m.secret = kSecret;
  return m;
}

std::string ModelRequest() {
  return absl::StrCat(
      "POST /v1/messages?beta=true HTTP/1.1\r\nHost: 127.0.0.1:3128\r\nx-api-key: ", kPlaceholder,
      "\r\nAuthorization: Bearer client-supplied-token\r\nX-API-KEY: second-client-key\r\n"
      "anthropic-version: 2023-06-01\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
}

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST_F(GatewayTest, ModelRouteInjectsTheRealKeyAndStripsTheAgents) {
  JobConfig c = Config({}, {kFarOpen});
  c.model = Route(443);
  Start(c);
  std::string resp = Exchange(sock(), ModelRequest());
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_FALSE(absl::StrContains(resp, kSecret));
  ASSERT_EQ(https443_->connections(), 1);
  std::string got = https443_->received()[0];
  EXPECT_TRUE(absl::StartsWith(got, "POST /v1/messages?beta=true HTTP/1.1\r\n")) << got;
  EXPECT_EQ(Count(absl::AsciiStrToLower(got), "\r\nx-api-key:"), 1u) << got;
  EXPECT_TRUE(absl::StrContains(got, absl::StrCat("\r\nx-api-key: ", kSecret, "\r\n"))) << got;
  EXPECT_FALSE(absl::StrContains(got, kPlaceholder)) << got;
  EXPECT_FALSE(absl::StrContains(got, "client-supplied-token")) << got;
  EXPECT_FALSE(absl::StrContains(got, "second-client-key")) << got;
  EXPECT_FALSE(absl::StrContains(absl::AsciiStrToLower(got), "authorization")) << got;
  EXPECT_TRUE(absl::StrContains(got, "\r\nhost: model.test\r\n")) << got;
  EXPECT_TRUE(absl::StrContains(got, "\r\nanthropic-version: 2023-06-01\r\n")) << got;
  EXPECT_TRUE(absl::EndsWith(got, "\r\n\r\n{}")) << got;
  // The way an agent reaches it: ANTHROPIC_BASE_URL=http://127.0.0.1:3128.
  (void)Proxy();
  auto r = Curl({.url = "http://127.0.0.1:3128/v1/models",
            .proxy = "",
            .headers = {absl::StrCat("x-api-key: ", kPlaceholder)}});
  EXPECT_EQ(r.status, 200) << r.error;
  ASSERT_GE(https443_->connections(), 2);
  got = https443_->received().back();
  EXPECT_TRUE(absl::StrContains(got, absl::StrCat("x-api-key: ", kSecret))) << got;
  EXPECT_FALSE(absl::StrContains(got, kPlaceholder)) << got;
  auto log = Netlog(2);
  EXPECT_EQ(log[0]["kind"], "model");
  EXPECT_EQ(log[0]["decision"], "allow");
  EXPECT_EQ(log[0]["status"], 200);
  EXPECT_EQ(log[0]["path"], "/v1/messages?beta=true");
  EXPECT_FALSE(absl::StrContains(log.dump(), kSecret)) << "the key is in the netlog";
}

TEST_F(GatewayTest, ModelRouteForwardsABodyFarLargerThanTheFirstRead) {
  // A real agent's request (system prompt, tools, history) is hundreds of
  // KiB; the provider answers only after the whole body, so the body must
  // keep flowing while the gateway waits for the answer's head.
  JobConfig c = Config({}, {kFarOpen});
  c.model = Route(443);
  Start(c);
  std::string body = "{\"pad\":\"" + std::string(300 * 1024, 'x') + "\"}";
  gwtest::UnixClient cl(sock(), 10000);
  ASSERT_TRUE(cl.ok());
  ASSERT_TRUE(cl.Send(absl::StrCat("POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:3128\r\n"
                                   "Content-Type: application/json\r\nContent-Length: ",
                                   body.size(), "\r\n\r\n")));
  for (size_t off = 0; off < body.size(); off += 64 * 1024) ASSERT_TRUE(cl.Send(body.substr(off, 64 * 1024)));
  std::string resp = cl.ReadAll();
  EXPECT_EQ(StatusOf(resp), 200) << resp.substr(0, 300);
  ASSERT_EQ(https443_->connections(), 1);
  EXPECT_TRUE(absl::EndsWith(https443_->received()[0], body)) << "the provider did not get the whole body";
  auto log = Netlog(1);
  EXPECT_GE(log[0].value("bytes_up", int64_t{0}), static_cast<int64_t>(body.size())) << log.dump();
}

TEST_F(GatewayTest, APipelinedRequestBehindAnAllowedOneGoesNowhere) {
  // After the first request (and its body), nothing more from the job reaches
  // that upstream: a second request naming another host cannot ride along.
  Start(Config({"allowed.test"}, {kFarOpen}));
  std::string two = Get("allowed.test", "allowed.test") +
                    "GET /smuggled HTTP/1.1\r\nHost: other.test\r\n\r\n";
  std::string resp = Exchange(sock(), two);
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  ASSERT_EQ(http80_->connections(), 1);
  EXPECT_FALSE(absl::StrContains(http80_->all_received(), "smuggled")) << http80_->all_received();
  // The same with a body: exactly Content-Length bytes go up.
  std::string post = "POST http://allowed.test/p HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 5\r\n\r\n"
                     "hello"
                     "GET /smuggled2 HTTP/1.1\r\nHost: other.test\r\n\r\n";
  resp = Exchange(sock(), post);
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  std::string got = http80_->received().back();
  EXPECT_TRUE(absl::EndsWith(got, "\r\n\r\nhello")) << got;
  EXPECT_FALSE(absl::StrContains(http80_->all_received(), "smuggled2"));
  // A Content-Length that is not a number is refused before any upstream byte.
  int before = http80_->connections();
  resp = Exchange(sock(), "POST http://allowed.test/p HTTP/1.1\r\nHost: allowed.test\r\n"
                          "Content-Length: +5\r\n\r\nhello");
  EXPECT_EQ(StatusOf(resp), 400) << resp;
  EXPECT_EQ(http80_->connections(), before);
  // A chunked body has no bound the gateway can see, so a request smuggled
  // behind it would go up unchecked: refused (411) before any upstream byte,
  // logged with the reason.
  std::string chunked = "POST http://allowed.test/p HTTP/1.1\r\nHost: allowed.test\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                        "GET /smuggled3 HTTP/1.1\r\nHost: other.test\r\n\r\n";
  resp = Exchange(sock(), chunked);
  EXPECT_EQ(StatusOf(resp), 411) << resp;
  EXPECT_TRUE(absl::StrContains(resp, "Content-Length")) << resp;
  EXPECT_EQ(http80_->connections(), before);
  EXPECT_FALSE(absl::StrContains(http80_->all_received(), "smuggled3"));
  const std::string log = job_->Netlog().dump();
  EXPECT_TRUE(absl::StrContains(log, "Transfer-Encoding")) << log;
}

TEST_F(GatewayTest, ATunnelToTheBridgeItselfIsTheModelRoute) {
  // undici's EnvHttpProxyAgent (Claude Code) tunnels even the plain-http base
  // URL through HTTPS_PROXY: CONNECT 127.0.0.1:3128, then the request inside.
  JobConfig c = Config({}, {kFarOpen});
  c.model = Route(443);
  Start(c);
  for (const char* self : {"127.0.0.1:3128", "localhost:3128", "LOCALHOST:3128"}) {
    std::string req = ModelRequest();
    std::string resp = Exchange(sock(), absl::StrCat("CONNECT ", self, " HTTP/1.1\r\nHost: ", self,
                                                     "\r\n\r\n", req));
    EXPECT_TRUE(absl::StartsWith(resp, "HTTP/1.1 200 Connection Established\r\n\r\n")) << resp;
    std::string inner = resp.substr(resp.find("\r\n\r\n") + 4);
    EXPECT_EQ(StatusOf(inner), 200) << self << ": " << resp;
    std::string got = https443_->received().back();
    EXPECT_TRUE(absl::StartsWith(got, "POST /v1/messages?beta=true HTTP/1.1\r\n")) << got;
    EXPECT_TRUE(absl::StrContains(got, absl::StrCat("\r\nx-api-key: ", kSecret, "\r\n"))) << got;
    EXPECT_FALSE(absl::StrContains(got, kPlaceholder)) << got;
  }
  EXPECT_EQ(https443_->connections(), 3);
  auto log = Netlog(3);
  EXPECT_EQ(log[0]["kind"], "model");
  EXPECT_EQ(log[0]["via"], "connect");
  // The same tunnel cannot carry a request anywhere else.
  std::string resp = Exchange(sock(), "CONNECT 127.0.0.1:3128 HTTP/1.1\r\nHost: 127.0.0.1:3128\r\n\r\n" +
                                          Get("allowed.test", "allowed.test"));
  std::string inner = resp.substr(resp.find("\r\n\r\n") + 4);
  EXPECT_EQ(StatusOf(inner), 400) << resp;
  EXPECT_EQ(http80_->connections(), 0);
  // Another port of loopback is no tunnel to the bridge: denied as ever.
  resp = Exchange(sock(), "CONNECT 127.0.0.1:3129 HTTP/1.1\r\nHost: 127.0.0.1:3129\r\n\r\n");
  EXPECT_EQ(StatusOf(resp), 403) << resp;
  EXPECT_EQ(https443_->connections(), 3);
}

TEST_F(GatewayTest, ModelRouteBearerMode) {
  JobConfig c = Config({}, {kFarOpen});
  c.model = Route(443, "authorization");
  Start(c);
  std::string resp = Exchange(sock(), ModelRequest());
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  ASSERT_EQ(https443_->connections(), 1);
  std::string got = https443_->received()[0];
  EXPECT_EQ(Count(absl::AsciiStrToLower(got), "\r\nauthorization:"), 1u) << got;
  EXPECT_TRUE(absl::StrContains(got, absl::StrCat("\r\nauthorization: Bearer ", kSecret, "\r\n"))) << got;
  EXPECT_FALSE(absl::StrContains(absl::AsciiStrToLower(got), "x-api-key")) << got;
  EXPECT_FALSE(absl::StrContains(got, kPlaceholder)) << got;
  EXPECT_FALSE(absl::StrContains(got, "client-supplied-token")) << got;
}

TEST_F(GatewayTest, ModelRouteRefusesAProviderItCannotVerify) {
  // A self-signed certificate for the right name, and a CA-issued one for
  // another name: the key is never sent.
  TestServer rogue(kFar, 0, Mode::kHttp, g_shared->rogue_ctx, true);
  TestServer wrong(kFar, 0, Mode::kHttp, g_shared->wrong_ctx, true);
  for (TestServer* s : {&rogue, &wrong}) {
    JobConfig c = Config({}, {kFarOpen});
    c.model = Route(s->port());
    Start(c);
    std::string resp = Exchange(sock(), ModelRequest());
    EXPECT_EQ(StatusOf(resp), 502) << resp;
    EXPECT_TRUE(absl::StrContains(resp, "TLS to the model provider failed")) << resp;
    EXPECT_EQ(s->all_received(), "");
    EXPECT_EQ(s->connections(), 1);
    EXPECT_FALSE(absl::StrContains(resp, kSecret));
    job_->Stop();
    job_.reset();
    gw_.reset();
  }
}

TEST_F(GatewayTest, ModelRouteNotConfiguredIs403) {
  Start(Config({"allowed.test"}, {kFarOpen}));
  std::string resp = Exchange(sock(), ModelRequest());
  EXPECT_EQ(StatusOf(resp), 403) << resp;
  EXPECT_EQ(AllServerConnections(), 0);
}

TEST_F(GatewayTest, RateLimitAnswerSetsTheRateSignal) {
  JobConfig c = Config({}, {kFarOpen});
  c.model = Route(443);
  Start(c);
  https443_->set_response(
      "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 7\r\n"
      "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
  std::string resp = Exchange(sock(), ModelRequest());
  EXPECT_EQ(StatusOf(resp), 429) << resp;
  EXPECT_TRUE(absl::StrContains(resp, "Retry-After: 7")) << resp;
  Netlog(1);
  RateSignal rs = job_->rate_signal();
  EXPECT_EQ(rs.status, 429);
  EXPECT_EQ(rs.retry_after_ms, 7000);
  EXPECT_EQ(rs.count, 1);
  // An overloaded answer without retry-after counts too; the longest wait stays.
  https443_->set_response("HTTP/1.1 529 Overloaded\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  resp = Exchange(sock(), ModelRequest());
  EXPECT_EQ(StatusOf(resp), 529) << resp;
  Netlog(2);
  rs = job_->rate_signal();
  EXPECT_EQ(rs.status, 529);
  EXPECT_EQ(rs.retry_after_ms, 7000);
  EXPECT_EQ(rs.count, 2);
}

// ---------------------------------------------------------------- limits

TEST_F(GatewayTest, MaxConnectionsRefusesTheOneTooMany) {
  JobConfig c = Config({"allowed.test"}, {kFarOpen});
  c.limits.max_connections = 2;
  Start(c);
  const int sockets = SocketsOfThisProcess();
  auto a = std::make_unique<UnixClient>(sock());
  UnixClient b(sock());
  a->Send("GET http://allowed.test/ HTTP/1.1\r\n");  // half a head: held open
  b.Send("GET http://allowed.test/ HTTP/1.1\r\n");
  // The gateway (in this process) has accepted both: both ends of both are open.
  aqtest::PollUntil([&] { return SocketsOfThisProcess() >= sockets + 4; }, 5000, 5);
  std::string resp = Exchange(sock(), Get("allowed.test", "allowed.test"));
  EXPECT_EQ(StatusOf(resp), 503) << resp;
  EXPECT_TRUE(absl::StrContains(resp, "too many concurrent connections")) << resp;
  EXPECT_EQ(http80_->connections(), 0);
  a.reset();  // one slot frees up: the gateway has closed a's server end
  aqtest::PollUntil([&] { return SocketsOfThisProcess() <= sockets + 2; }, 5000, 5);
  resp = Exchange(sock(), Get("allowed.test", "allowed.test"));
  EXPECT_EQ(StatusOf(resp), 200) << resp;
}

TEST_F(GatewayTest, IdleTimeoutClosesSilentConnectionsAndTunnels) {
  TestServer echo(kFar, 0, Mode::kEcho, nullptr, true);
  JobConfig c = Config({absl::StrCat("allowed.test:", echo.port())}, {kFarOpen});
  c.limits.idle_timeout_ms = 500;
  Start(c);
  // A client that never sends its head.
  {
    UnixClient cl(sock(), 10000);
    int64_t t0 = gwtest::NowMs();
    bool eof = false;
    cl.ReadAll(&eof);
    int64_t took = gwtest::NowMs() - t0;
    EXPECT_TRUE(eof);
    EXPECT_GE(took, 400);
    EXPECT_LT(took, 3000);
  }
  // A raw tunnel (a rule with an explicit port) that goes quiet.
  UnixClient cl(sock(), 10000);
  cl.Send(absl::StrCat("CONNECT allowed.test:", echo.port(), " HTTP/1.1\r\n\r\n"));
  ASSERT_EQ(StatusOf(cl.ReadUntil("\r\n\r\n")), 200);
  cl.Send("ping");
  EXPECT_EQ(cl.ReadUntil("ping"), "ping");
  int64_t t0 = gwtest::NowMs();
  bool eof = false;
  cl.ReadAll(&eof);
  int64_t took = gwtest::NowMs() - t0;
  EXPECT_TRUE(eof) << "the idle tunnel was not closed";
  EXPECT_GE(took, 300);
  EXPECT_LT(took, 3000);
  EXPECT_EQ(echo.connections(), 1);
}

// The idle timeout is per connection, not per job: a connection that moves
// data must not keep a silent connection of the same job open.
TEST_F(GatewayTest, IdleTimeoutIsPerConnectionNotPerJob) {
  TestServer echo(kFar, 0, Mode::kEcho, nullptr, true);
  JobConfig c = Config({absl::StrCat("allowed.test:", echo.port())}, {kFarOpen});
  c.limits.idle_timeout_ms = 500;
  Start(c);
  auto tunnel = [&](UnixClient& cl) {
    cl.Send(absl::StrCat("CONNECT allowed.test:", echo.port(), " HTTP/1.1\r\n\r\n"));
    EXPECT_EQ(StatusOf(cl.ReadUntil("\r\n\r\n")), 200);
    cl.Send("x");
    EXPECT_EQ(cl.ReadUntil("x"), "x");
  };
  UnixClient quiet(sock(), 200), busy(sock(), 2000);
  tunnel(quiet);
  tunnel(busy);
  // The busy tunnel talks every 100 ms for 3 s; the quiet one says nothing
  // and must be closed after about 500 ms.
  bool quiet_closed = false;
  int64_t closed_after = -1, t0 = gwtest::NowMs();
  while (gwtest::NowMs() - t0 < 3000) {
    busy.Send("y");
    busy.ReadUntil("y");
    if (!quiet_closed) {
      bool eof = false;
      quiet.ReadAll(&eof);  // 200 ms receive timeout
      if (eof) {
        quiet_closed = true;
        closed_after = gwtest::NowMs() - t0;
      }
    } else {
      break;  // nothing more to see
    }
  }
  EXPECT_TRUE(quiet_closed) << "a silent tunnel stayed open for 3 s with idle_timeout 500 ms "
                               "because another connection of the job was busy";
  if (quiet_closed) EXPECT_LT(closed_after, 2000);
}

TEST_F(GatewayTest, TotalBytesLimitCutsTheTransfer) {
  TestServer bulk(kFar, 0, Mode::kBulk, nullptr, true);
  bulk.set_bulk_bytes(4 << 20);
  JobConfig c = Config({absl::StrCat("allowed.test:", bulk.port())}, {kFarOpen});
  c.limits.max_total_bytes = 1 << 20;
  Start(c);
  std::string host = absl::StrCat("allowed.test:", bulk.port());
  std::string resp = Exchange(sock(), Get(host, host), 10000);
  EXPECT_EQ(StatusOf(resp), 200);
  EXPECT_LT(resp.size(), size_t{(1 << 20) + (64 << 10)});
  EXPECT_GT(resp.size(), size_t{512 << 10});
  auto log = Netlog(1);
  EXPECT_EQ(log[0].value("limit", ""), "total bytes") << log[0].dump();
  // The job's budget is spent: the next transfer gets nothing past the head.
  resp = Exchange(sock(), Get(host, host), 10000);
  EXPECT_LT(resp.size(), size_t{64 << 10});
}

// Headers are the agent's bytes: one that is not UTF-8 lands in the network
// log, which workerd then serialises for the coordinator; that must neither
// throw (it would end workerd) nor produce invalid UTF-8.
TEST_F(GatewayTest, ANetlogWithTheAgentsNonUtf8BytesSerialisesSafely) {
  Start(Config({"allowed.test"}, {kFarOpen}));
  std::string resp = Exchange(sock(), "GET http://allowed.test/ HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n");
  EXPECT_EQ(StatusOf(resp), 400) << resp;
  auto log = Netlog(1);
  EXPECT_THROW(log.dump(), nlohmann::json::type_error) << "the hazard this guards against";
  std::string text;
  ASSERT_NO_THROW(text = assessq::gateway::NetlogText(log));
  auto back = nlohmann::json::parse(text, nullptr, false);
  ASSERT_FALSE(back.is_discarded()) << text;
  EXPECT_NE(back[0].value("reason", "").find("\xEF\xBF\xBD"), std::string::npos) << text;
}

// TCP urgent data from upstream stops splice(2) at the urgent mark with
// EAGAIN while epoll keeps reporting the socket readable: the relay must
// read past it (the bytes after it arrive) and must not spin the io thread
// every job shares (CPU measured over a second with the tunnel stuck there).
TEST_F(GatewayTest, UrgentDataFromUpstreamNeitherStallsNorSpinsTheRelay) {
  for (bool splice : {true, false}) {
    SCOPED_TRACE(splice ? "splice" : "copy");
    splice_ = splice;
    TestServer urgent(kFar, 0, Mode::kUrgent, nullptr, true);
    Start(Config({absl::StrCat("allowed.test:", urgent.port())}, {kFarOpen}));
    UnixClient cl(sock(), 5000);
    cl.Send(absl::StrCat("CONNECT allowed.test:", urgent.port(), " HTTP/1.1\r\n\r\n"));
    ASSERT_EQ(StatusOf(cl.ReadUntil("\r\n\r\n")), 200);
    cl.Send("go");
    EXPECT_EQ(cl.ReadUntil("c"), "ac") << "the bytes after the urgent mark did not arrive";
    rusage r0{}, r1{};
    getrusage(RUSAGE_SELF, &r0);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    getrusage(RUSAGE_SELF, &r1);
    auto cpu = [](const rusage& r) {
      return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
             static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
    };
    EXPECT_LT(cpu(r1) - cpu(r0), 0.3) << "the relay spins on the urgent mark";
    job_->Stop();
    job_.reset();
    gw_.reset();
  }
}

TEST_F(GatewayTest, StopClosesTheListenerAndOpenTunnels) {
  TestServer echo(kFar, 0, Mode::kEcho, nullptr, true);
  Start(Config({absl::StrCat("allowed.test:", echo.port())}, {kFarOpen}));
  UnixClient cl(sock(), 3000);
  cl.Send(absl::StrCat("CONNECT allowed.test:", echo.port(), " HTTP/1.1\r\n\r\n"));
  ASSERT_EQ(StatusOf(cl.ReadUntil("\r\n\r\n")), 200);
  cl.Send("x");
  EXPECT_EQ(cl.ReadUntil("x"), "x");
  job_->Stop();
  // Stop returns once the open tunnel has ended and is in the network log
  // (read at once, as workerd does at the end of a job).
  const nlohmann::json log = job_->Netlog();
  ASSERT_EQ(log.size(), 1u) << log.dump();
  EXPECT_EQ(log[0].value("bytes_up", int64_t{-1}), 1) << log.dump();
  EXPECT_EQ(log[0].value("bytes_down", int64_t{-1}), 1) << log.dump();
  bool eof = false;
  cl.ReadAll(&eof);
  EXPECT_TRUE(eof) << "an open tunnel survived Stop()";
  // The listener is gone (connections refused), or the check below says it is not.
  aqtest::PollUntil([&] { return !UnixClient(sock(), 100).ok(); }, 2000, 10);
  UnixClient after(sock(), 1000);
  if (after.ok()) {
    after.Send(Get("allowed.test", "allowed.test"));
    EXPECT_EQ(after.ReadAll(), "") << "the listener still answers after Stop()";
  }
}

// ------------------------------------------------------------- netbridge

// The bridge carries a request the gateway answers early (a denial) while the
// agent is still sending its body: the gateway closes, the bridge's next
// write fails with EPIPE. The bridge must survive that (it is the job's
// main process: if it dies, the job dies with exit 141).
TEST_F(GatewayTest, NetbridgeSurvivesAGatewayThatClosesFirst) {
  Start(Config({"allowed.test"}, {kFarOpen}));
  (void)Proxy();
  {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(3128);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string head =
        "POST http://evil.test/upload HTTP/1.1\r\nHost: evil.test\r\nContent-Length: 1000000\r\n\r\n";
    ASSERT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)ReadHttpHead(fd);  // the denial: the gateway has answered and closed
    std::string chunk(16384, 'x');
    for (int i = 0; i < 20; ++i) {
      if (send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) break;
    }
    // The bridge is done with the connection (it closed it, or died).
    char sink[4096];
    while (recv(fd, sink, sizeof sink, 0) > 0) {
    }
    close(fd);
  }
  // Either the bridge answers a new connection, or it has died and is reaped.
  aqtest::PollUntil([&] { return !bridge_->Alive() || BridgeAccepts(); }, 5000, 10);
  int status = 0;
  bool alive = bridge_->Alive(&status);
  EXPECT_TRUE(alive) << "assessq-netbridge died: "
                     << (WIFSIGNALED(status) ? absl::StrCat("signal ", WTERMSIG(status))
                                             : absl::StrCat("exit ", WEXITSTATUS(status)));
  if (alive) {
    auto r = Curl({.url = "http://allowed.test/", .proxy = "http://127.0.0.1:3128"});
    EXPECT_EQ(r.status, 200) << r.error;
  }
}

// A rule with an explicit port allows raw TCP in a CONNECT tunnel (no TLS
// needed): it does for "10.200.0.2:8443", and must for "[fd00:200::2]:8443"
// too (a port of four hex digits: "fd00:200::2" + ":8443" also reads as one
// IPv6 address, which once made the gateway miss the port).
TEST_F(GatewayTest, RawTcpThroughARuleWithAnIpv4LiteralAndPort) {
  TestServer echo(kFar, 8443, Mode::kEcho, nullptr, true);
  Start(Config({absl::StrCat(kFar, ":", echo.port())}, {kFarOpen}));
  UnixClient cl(sock(), 3000);
  cl.Send(absl::StrCat("CONNECT ", kFar, ":", echo.port(), " HTTP/1.1\r\n\r\n"));
  ASSERT_EQ(StatusOf(cl.ReadUntil("\r\n\r\n")), 200);
  cl.Send("ping");
  EXPECT_EQ(cl.ReadUntil("ping"), "ping");
}

TEST_F(GatewayTest, RawTcpThroughARuleWithAnIpv6LiteralAndPort) {
  TestServer echo(gwtest::kFarAddr6, 8443, Mode::kEcho, nullptr, true);
  Start(Config({absl::StrCat("[", gwtest::kFarAddr6, "]:", echo.port())}, {"fd00:200::2/128"}));
  UnixClient cl(sock(), 3000);
  cl.Send(absl::StrCat("CONNECT [", gwtest::kFarAddr6, "]:", echo.port(), " HTTP/1.1\r\n\r\n"));
  ASSERT_EQ(StatusOf(cl.ReadUntil("\r\n\r\n")), 200);
  cl.Send("ping");
  EXPECT_EQ(cl.ReadUntil("ping"), "ping") << "netlog: " << job_->Netlog().dump();
}

// A name a rule allows, resolving to an address of the worker host itself
// (here 203.0.113.9, a "public" address on lo): a service the host runs on
// 0.0.0.0 would be one CONNECT away. Refused like loopback and private ranges.
TEST_F(GatewayTest, NameResolvingToTheWorkerHostsOwnAddressIsRefused) {
  TestServer host_service("0.0.0.0", 0, Mode::kHttp);
  std::string host = absl::StrCat("self.test:", host_service.port());
  Start(Config({host}));
  std::string resp = Exchange(sock(), Get(host, host));
  EXPECT_EQ(StatusOf(resp), 403) << resp;
  EXPECT_EQ(host_service.connections(), 0) << "the gateway connected to the worker host itself";
}

// ------------------------------------------------ the relay (splice, copy)
//
// Once a connection is a pure byte relay, the gateway moves the bytes with
// splice(2) between the two sockets (GatewayOptions::splice, the default),
// or through a buffer (the TLS model route always; splice = false here):
// the same limits and byte counts either way.

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 r(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(r());
  s[0] = 'x';  // not 0x16: a raw tunnel's first byte must not read as TLS
  return s;
}

// Sends `data` on `fd` from a second thread, then half-closes; meanwhile
// reads what comes back until EOF (an echo would stall on full buffers
// otherwise). *eof: whether it ended in EOF (not a timeout or error).
std::string EchoThrough(int fd, const std::string& data, bool* eof = nullptr) {
  std::thread w([fd, &data] {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = send(fd, data.data() + off, std::min<size_t>(data.size() - off, 100000), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    shutdown(fd, SHUT_WR);
  });
  std::string out;
  std::vector<char> buf(1 << 16);
  if (eof) *eof = false;
  while (true) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && eof) *eof = true;
    if (n <= 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
  }
  w.join();
  return out;
}

// A TCP connection to the bridge (127.0.0.1:3128), with a receive timeout.
int BridgeConnect(int timeout_ms = 10000) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(3128);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

std::string ConnectRequest(const std::string& authority) {
  return absl::StrCat("CONNECT ", authority, " HTTP/1.1\r\nHost: ", authority, "\r\n\r\n");
}

TEST_F(GatewayTest, RelayedBytesAreCountedExactlyBothWaysWithSpliceAndWithCopy) {
  TestServer echo(kFar, 0, Mode::kEcho, nullptr, true);
  TestServer bulk(kFar, 0, Mode::kBulk, nullptr, true);
  bulk.set_bulk_bytes((5 << 20) + 7);
  const std::string tunnel = absl::StrCat("allowed.test:", echo.port());
  const std::string http = absl::StrCat("allowed.test:", bulk.port());
  const std::string data = RandomBytes((3 << 20) + 12345, 1);
  for (bool splice : {true, false}) {
    SCOPED_TRACE(splice ? "splice" : "copy");
    splice_ = splice;
    Start(Config({tunnel, http}, {kFarOpen}));
    {
      UnixClient cl(sock(), 10000);
      ASSERT_TRUE(cl.Send(ConnectRequest(tunnel)));
      ASSERT_EQ(StatusOf(cl.ReadUntil("\r\n\r\n")), 200);
      bool eof = false;
      std::string back = EchoThrough(cl.fd(), data, &eof);
      EXPECT_TRUE(eof) << "the half-close did not come back through the tunnel";
      EXPECT_EQ(back.size(), data.size());
      EXPECT_TRUE(back == data) << "the tunnel changed the bytes";
    }
    std::string resp = Exchange(sock(), Get(http, http), 10000);
    EXPECT_EQ(StatusOf(resp), 200);
    EXPECT_EQ(resp.size() - resp.find("\r\n\r\n") - 4, (size_t{5} << 20) + 7);
    auto log = Netlog(2);
    EXPECT_EQ(log[0]["kind"], "connect");
    EXPECT_EQ(log[0].value("bytes_up", int64_t{-1}), static_cast<int64_t>(data.size())) << log[0].dump();
    EXPECT_EQ(log[0].value("bytes_down", int64_t{-1}), static_cast<int64_t>(data.size())) << log[0].dump();
    EXPECT_FALSE(log[0].contains("limit")) << log[0].dump();
    // The download: what the job received, and what the server got (the
    // rewritten request head).
    EXPECT_EQ(log[1]["kind"], "http");
    EXPECT_EQ(log[1].value("bytes_down", int64_t{-1}), static_cast<int64_t>(resp.size())) << log[1].dump();
    EXPECT_EQ(log[1].value("bytes_up", int64_t{-1}), static_cast<int64_t>(bulk.received().back().size()))
        << log[1].dump();
    job_->Stop();
    job_.reset();
    gw_.reset();
  }
}

// The job's byte budget counts every byte forwarded either way: a tunnel
// carrying more is cut at exactly the budget, closed both ways at once, and
// logged; once it is spent, nothing more connects anywhere.
TEST_F(GatewayTest, ATransferLargerThanTheJobByteLimitIsCutExactlyAndLogged) {
  TestServer bulk(kFar, 0, Mode::kBulk, nullptr, true);
  bulk.set_bulk_bytes(8 << 20);
  const std::string host = absl::StrCat("allowed.test:", bulk.port());
  const int64_t limit = 1 << 20;
  const std::string req = "GET /blob HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
  for (bool splice : {true, false}) {
    SCOPED_TRACE(splice ? "splice" : "copy");
    splice_ = splice;
    JobConfig c = Config({host}, {kFarOpen});
    c.limits.max_total_bytes = limit;
    Start(c);
    {
      UnixClient cl(sock(), 10000);
      ASSERT_TRUE(cl.Send(ConnectRequest(host)));
      ASSERT_EQ(StatusOf(cl.ReadUntil("\r\n\r\n")), 200);
      ASSERT_TRUE(cl.Send(req));
      int64_t t0 = gwtest::NowMs();
      bool eof = false;
      std::string got = cl.ReadAll(&eof);
      EXPECT_TRUE(eof) << "the cut tunnel stayed open";
      EXPECT_LT(gwtest::NowMs() - t0, 5000);
      EXPECT_EQ(StatusOf(got), 200);
      EXPECT_EQ(static_cast<int64_t>(got.size()), limit - static_cast<int64_t>(req.size()))
          << "the job received more or less than its byte budget";
      auto log = Netlog(1);
      EXPECT_EQ(log[0]["decision"], "allow") << log[0].dump();
      EXPECT_EQ(log[0].value("limit", ""), "total bytes") << log[0].dump();
      EXPECT_EQ(log[0].value("bytes_up", int64_t{-1}), static_cast<int64_t>(req.size())) << log[0].dump();
      EXPECT_EQ(log[0].value("bytes_down", int64_t{-1}), static_cast<int64_t>(got.size())) << log[0].dump();
    }
    // Spent: a tunnel is closed before it connects, a request is answered 403.
    int before = bulk.connections();
    {
      UnixClient cl(sock(), 5000);
      ASSERT_TRUE(cl.Send(ConnectRequest(host)));
      ASSERT_EQ(StatusOf(cl.ReadUntil("\r\n\r\n")), 200);
      ASSERT_TRUE(cl.Send(req));
      bool eof = false;
      EXPECT_EQ(cl.ReadAll(&eof), "");
      EXPECT_TRUE(eof);
    }
    std::string resp = Exchange(sock(), Get(host, host));
    EXPECT_EQ(StatusOf(resp), 403) << resp;
    EXPECT_TRUE(absl::StrContains(resp, "byte limit")) << resp;
    EXPECT_EQ(bulk.connections(), before) << "a connection was made with the budget spent";
    auto log = Netlog(3);
    for (int i : {1, 2}) {
      EXPECT_EQ(log[i]["decision"], "deny") << log[i].dump();
      EXPECT_EQ(log[i].value("limit", ""), "total bytes") << log[i].dump();
    }
    job_->Stop();
    job_.reset();
    gw_.reset();
  }
}

// A request body arriving after its head is forwarded up to its
// Content-Length and not a byte further, spliced or copied.
TEST_F(GatewayTest, AnUploadStopsAtItsContentLengthWithSpliceAndWithCopy) {
  TestServer silent(kFar, 0, Mode::kSilent, nullptr, true);
  const std::string host = absl::StrCat("allowed.test:", silent.port());
  const std::string body = RandomBytes((1 << 20) + 3, 2);
  size_t round = 0;
  for (bool splice : {true, false}) {
    SCOPED_TRACE(splice ? "splice" : "copy");
    splice_ = splice;
    JobConfig c = Config({host}, {kFarOpen});
    c.limits.idle_timeout_ms = 500;  // the server never answers: the gateway closes
    Start(c);
    {
      UnixClient cl(sock(), 5000);
      ASSERT_TRUE(cl.Send(absl::StrCat("POST http://", host, "/up HTTP/1.1\r\nHost: ", host,
                                       "\r\nContent-Length: ", body.size(), "\r\n\r\n")));
      // The relay is running: the gateway has connected to the server.
      aqtest::PollUntil([&] { return silent.connections() > static_cast<int>(round); }, 5000, 5);
      ASSERT_TRUE(cl.Send(body + "GET /smuggled HTTP/1.1\r\nHost: other.test\r\n\r\n"));
      cl.ReadAll();
    }
    auto log = Netlog(1);
    int64_t up = log[0].value("bytes_up", int64_t{-1});
    std::string got;
    aqtest::PollUntil(
        [&] {
          auto all = silent.received();
          if (all.size() > round) got = all[round];
          return static_cast<int64_t>(got.size()) >= up;
        },
        3000, 10);
    EXPECT_TRUE(absl::EndsWith(got, body)) << "the server did not get the whole body, last";
    EXPECT_FALSE(absl::StrContains(got, "smuggled")) << "bytes past the body went up";
    EXPECT_EQ(up, static_cast<int64_t>(got.size())) << log[0].dump();
    job_->Stop();
    job_.reset();
    gw_.reset();
    ++round;
  }
}

// The model route without TLS is a plain socket pair: spliced, with the
// key added, the whole body forwarded and the bytes counted.
TEST_F(GatewayTest, TheModelRouteWithoutTlsForwardsTheBodyAndCountsBytes) {
  const std::string body = "{\"pad\":\"" + std::string(300 * 1024, 'x') + "\"}";
  for (bool splice : {true, false}) {
    SCOPED_TRACE(splice ? "splice" : "copy");
    splice_ = splice;
    JobConfig c = Config({}, {kFarOpen});
    c.model = Route(80);
    c.model->tls = false;
    Start(c);
    gwtest::UnixClient cl(sock(), 10000);
    ASSERT_TRUE(cl.Send(absl::StrCat("POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:3128\r\nx-api-key: ",
                                     kPlaceholder, "\r\nContent-Length: ", body.size(), "\r\n\r\n")));
    for (size_t off = 0; off < body.size(); off += 64 * 1024) ASSERT_TRUE(cl.Send(body.substr(off, 64 * 1024)));
    std::string resp = cl.ReadAll();
    EXPECT_EQ(StatusOf(resp), 200) << resp.substr(0, 300);
    std::string got = http80_->received().back();
    EXPECT_TRUE(absl::EndsWith(got, body)) << "the provider did not get the whole body";
    EXPECT_TRUE(absl::StrContains(got, absl::StrCat("\r\nx-api-key: ", kSecret, "\r\n")));
    EXPECT_FALSE(absl::StrContains(got, kPlaceholder));
    auto log = Netlog(1);
    EXPECT_EQ(log[0]["kind"], "model");
    EXPECT_EQ(log[0]["status"], 200);
    EXPECT_EQ(log[0].value("bytes_up", int64_t{-1}), static_cast<int64_t>(got.size())) << log[0].dump();
    EXPECT_EQ(log[0].value("bytes_down", int64_t{-1}), static_cast<int64_t>(resp.size())) << log[0].dump();
    // A chunked body to the provider is refused too (a request pipelined
    // behind it could name another virtual host on the provider's address).
    const int before = http80_->connections();
    std::string chunked = Exchange(sock(), absl::StrCat(
        "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:3128\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\n{}\r\n0\r\n\r\nGET /other HTTP/1.1\r\nHost: other.test\r\n\r\n"));
    EXPECT_EQ(StatusOf(chunked), 411) << chunked;
    EXPECT_EQ(http80_->connections(), before);
    job_->Stop();
    job_.reset();
    gw_.reset();
  }
}

// splice(2) has no MSG_NOSIGNAL: writing into a socket whose peer has gone
// raises SIGPIPE, and workerd does not ignore SIGPIPE. The gateway's io
// threads must not let it end the process. Here SIGPIPE has its default
// action (death) for the gateway's threads; this test's own server threads
// are started with it blocked.
TEST_F(GatewayTest, AJobThatClosesMidDownloadDoesNotKillTheProcessWithSigpipe) {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  TestServer bulk(kFar, 0, Mode::kBulk, nullptr, true);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  bulk.set_bulk_bytes(64 << 20);
  struct sigaction dfl {}, prev{};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, &prev);
  const std::string host = absl::StrCat("allowed.test:", bulk.port());
  Start(Config({host, "allowed.test"}, {kFarOpen}));
  for (int i = 0; i < 3; ++i) {
    UnixClient cl(sock(), 5000);
    ASSERT_TRUE(cl.Send(Get(host, host)));
    ASSERT_EQ(StatusOf(cl.ReadUntil("\r\n\r\n")), 200);
  }  // closed with megabytes to come: the gateway's next splice into it fails
  // The gateway has ended all three (each one's netlog entry is written as it ends).
  aqtest::PollUntil([&] { return job_->Netlog().size() >= 3; }, 5000, 10);
  std::string resp = Exchange(sock(), Get("allowed.test", "allowed.test"));
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  sigaction(SIGPIPE, &prev, nullptr);
}

// ------------------------------------------------- netbridge (splice, epoll)

TEST_F(GatewayTest, NetbridgePassesEveryByteAndTheHalfCloseBothWays) {
  TestServer echo(kFar, 0, Mode::kEcho, nullptr, true);
  const std::string host = absl::StrCat("allowed.test:", echo.port());
  Start(Config({host}, {kFarOpen}));
  (void)Proxy();
  const std::string data = RandomBytes((2 << 20) + 777, 3);
  int fd = BridgeConnect();
  ASSERT_GE(fd, 0);
  ASSERT_EQ(send(fd, ConnectRequest(host).data(), ConnectRequest(host).size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(ConnectRequest(host).size()));
  ASSERT_EQ(StatusOf(ReadHttpHead(fd)), 200);
  bool eof = false;
  std::string back = EchoThrough(fd, data, &eof);
  close(fd);
  EXPECT_TRUE(eof) << "the agent's half-close did not come back as EOF";
  EXPECT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data) << "the bridge changed the bytes";
  auto log = Netlog(1);
  EXPECT_EQ(log[0].value("bytes_up", int64_t{-1}), static_cast<int64_t>(data.size())) << log[0].dump();
  EXPECT_EQ(log[0].value("bytes_down", int64_t{-1}), static_cast<int64_t>(data.size())) << log[0].dump();
}

int ThreadsOf(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (absl::StartsWith(line, "Threads:")) return std::atoi(line.c_str() + 8);
  return -1;
}

// One thread carries every connection (none is started per connection, and
// none counts against the container's pids limit), and they do not mix.
TEST_F(GatewayTest, NetbridgeCarriesManyConcurrentConnectionsInOneThread) {
  TestServer echo(kFar, 0, Mode::kEcho, nullptr, true);
  const std::string host = absl::StrCat("allowed.test:", echo.port());
  Start(Config({host}, {kFarOpen}));
  (void)Proxy();
  constexpr int kConns = 24;
  std::vector<int> fds;
  for (int i = 0; i < kConns; ++i) {
    int fd = BridgeConnect();
    ASSERT_GE(fd, 0);
    std::string r = ConnectRequest(host);
    ASSERT_EQ(send(fd, r.data(), r.size(), MSG_NOSIGNAL), static_cast<ssize_t>(r.size()));
    ASSERT_EQ(StatusOf(ReadHttpHead(fd)), 200);
    fds.push_back(fd);
  }
  EXPECT_EQ(ThreadsOf(bridge_->pid()), 2) << "the bridge runs a thread per connection (main + loop expected)";
  std::vector<std::string> back(kConns);
  std::vector<std::thread> ts;
  for (int i = 0; i < kConns; ++i)
    ts.emplace_back([&, i] { back[i] = EchoThrough(fds[i], RandomBytes(256 << 10, 100 + i)); });
  for (auto& t : ts) t.join();
  for (int i = 0; i < kConns; ++i) {
    EXPECT_TRUE(back[i] == RandomBytes(256 << 10, 100 + i)) << "connection " << i;
    close(fds[i]);
  }
  Netlog(kConns);
}

// At its nofile limit the bridge still works: a connection it can give no
// pipes to is copied through a buffer, and one it cannot even accept is
// answered 503 (a descriptor held back for it), not left hanging.
TEST_F(GatewayTest, NetbridgeAtItsDescriptorLimitCopiesThenRefusesWith503) {
  TestServer echo(kFar, 0, Mode::kEcho, nullptr, true);
  const std::string host = absl::StrCat("allowed.test:", echo.port());
  Start(Config({host}, {kFarOpen}));
  (void)Proxy();
  pid_t pid = bridge_->pid();
  // Leave exactly 8 free descriptor numbers: one spliced connection takes 6
  // (2 sockets, 2 pipes), the next 2 (its sockets; no pipe left: copied).
  // (Once the readiness probe's connection is gone: the same set twice.)
  auto fds_of = [pid] {
    std::vector<int> out;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
      out.push_back(std::atoi(e.path().filename().c_str()));
    std::sort(out.begin(), out.end());
    return out;
  };
  // Until two looks 100 ms apart see the same set.
  std::vector<int> open_fds;
  bool first = true;
  aqtest::PollUntil(
      [&] {
        std::vector<int> now = fds_of();
        bool same = !first && now == open_fds;
        first = false;
        open_fds = now;
        return same;
      },
      5000, 100);
  int limit = 0;
  for (int free_below = 0; free_below < 8; ++limit)
    if (std::find(open_fds.begin(), open_fds.end(), limit) == open_fds.end()) ++free_below;
  rlimit rl{};
  rl.rlim_cur = rl.rlim_max = static_cast<rlim_t>(limit);
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &rl, nullptr), 0) << std::strerror(errno);
  auto open_tunnel = [&](std::string* answer) {
    int fd = BridgeConnect(3000);
    std::string r = ConnectRequest(host);
    send(fd, r.data(), r.size(), MSG_NOSIGNAL);
    *answer = ReadHttpHead(fd);
    return fd;
  };
  std::string a1, a2, a3;
  int spliced = open_tunnel(&a1);
  int copied = open_tunnel(&a2);
  int refused = open_tunnel(&a3);
  EXPECT_EQ(StatusOf(a1), 200) << a1;
  EXPECT_EQ(StatusOf(a2), 200) << a2;
  EXPECT_EQ(StatusOf(a3), 503) << a3;
  close(refused);
  for (int fd : {spliced, copied}) {
    std::string data = RandomBytes(1 << 20, static_cast<unsigned>(fd));
    EXPECT_TRUE(EchoThrough(fd, data) == data) << "fd " << fd;
    close(fd);
  }
  // Descriptors back: the next connection is served again.
  aqtest::PollUntil([&] { return fds_of().size() <= open_fds.size(); }, 5000, 10);
  std::string a4;
  int again = open_tunnel(&a4);
  EXPECT_EQ(StatusOf(a4), 200) << a4;
  close(again);
  EXPECT_TRUE(bridge_->Alive());
}

// ------------------------------------------------ refusals say why (x-deny-reason)

// The value of `name` in a response head ("" if absent).
std::string HeaderOf(const std::string& resp, const std::string& name) {
  std::string head = absl::AsciiStrToLower(resp.substr(0, resp.find("\r\n\r\n")));
  std::string key = "\r\n" + absl::AsciiStrToLower(name) + ": ";
  auto p = head.find(key);
  if (p == std::string::npos) return "";
  auto e = head.find("\r\n", p + key.size());
  return head.substr(p + key.size(), e == std::string::npos ? std::string::npos : e - p - key.size());
}

std::string BodyOf(const std::string& resp) {
  auto p = resp.find("\r\n\r\n");
  return p == std::string::npos ? "" : resp.substr(p + 4);
}

TEST_F(GatewayTest, EveryRefusalCarriesXDenyReasonAndAShortBody) {
  JobConfig c = Config({"allowed.test", "rebind.test", "self.test", "*.allowed.test", "allowed.test:81"},
                       {kFarOpen}, {"bad.allowed.test"});
  c.policy.forbidden.push_back(*ParseRule("forbidden.test"));
  c.limits.max_names_per_wildcard = 1;
  c.model = Route(443);
  Start(c);
  struct Case {
    std::string request;
    int status;
    const char* token;
  };
  const std::string big(8000, 'a');
  const Case cases[] = {
      // Claude Code recognises exactly this token for a host the proxy refuses.
      {Get("evil.test", "evil.test"), 403, "host_not_allowed"},
      {"CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n", 403, "host_not_allowed"},
      {Get("bad.allowed.test", "bad.allowed.test"), 403, "host_not_allowed"},
      {Get("forbidden.test", "forbidden.test"), 403, "host_not_allowed"},
      {Get("127.0.0.1", "127.0.0.1"), 403, "host_not_allowed"},
      {"CONNECT 0x7f.1:443 HTTP/1.1\r\nHost: 0x7f.1:443\r\n\r\n", 403, "host_not_allowed"},
      {Get("rebind.test", "rebind.test"), 403, "address_forbidden"},
      {"CONNECT self.test:443 HTTP/1.1\r\nHost: self.test:443\r\n\r\n", 403, "address_forbidden"},
      {"GARBAGE\r\n\r\n", 400, "bad_request"},
      {"CONNECT nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"},
      {"GET http://allowed.test/ HTTP/1.1\r\n\r\n", 400, "bad_request"},
      {Get("allowed.test", "other.test"), 400, "host_mismatch"},
      {"POST http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nTransfer-Encoding: chunked\r\n\r\n"
       "0\r\n\r\n",
       411, "chunked_body_refused"},
      {"POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1:3128\r\nContent-Length: 0\r\n\r\n", 403,
       "path_not_allowed"},
      {"TRACE /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:3128\r\n\r\n", 405, "method_not_allowed"},
      {"CONNECT 127.0.0.1:3128 HTTP/1.1\r\nHost: 127.0.0.1:3128\r\n\r\n" + Get("allowed.test", "allowed.test"),
       400, "model_route_only"},
      {Get("allowed.test:81", "allowed.test:81"), 502, "upstream_unreachable"},
      {Get("n1.allowed.test", "n1.allowed.test"), 200, ""},
      {Get("n2.allowed.test", "n2.allowed.test"), 403, "too_many_names"},
  };
  size_t refused = 0;
  for (const auto& k : cases) {
    std::string resp = Exchange(sock(), k.request);
    if (absl::StartsWith(resp, "HTTP/1.1 200 Connection Established\r\n\r\n") &&
        absl::StartsWith(k.request, "CONNECT 127.0.0.1:3128"))
      resp = resp.substr(resp.find("\r\n\r\n") + 4);  // the answer inside the tunnel
    EXPECT_EQ(StatusOf(resp), k.status) << k.request.substr(0, 80) << "\n" << resp;
    EXPECT_EQ(HeaderOf(resp, "x-deny-reason"), k.token) << k.request.substr(0, 80) << "\n" << resp;
    if (k.status == 200) continue;
    ++refused;
    std::string body = BodyOf(resp);
    EXPECT_TRUE(absl::StartsWith(body, "assessq gateway: ")) << resp;
    EXPECT_LT(body.size(), 600u) << resp;
    EXPECT_EQ(HeaderOf(resp, "content-length"), absl::StrCat(body.size())) << resp;
    EXPECT_TRUE(absl::StartsWith(HeaderOf(resp, "content-type"), "text/plain")) << resp;
  }
  // The same token is in the network log.
  auto log = Netlog(std::size(cases));
  size_t tokens = 0;
  for (const auto& e : log)
    if (e["decision"] == "deny") {
      EXPECT_TRUE(e.contains("deny_reason")) << e.dump();
      ++tokens;
    }
  EXPECT_EQ(tokens, refused);
  EXPECT_EQ(log[0]["deny_reason"], "host_not_allowed") << log[0].dump();
  // A refusal past the byte budget says so too.
  JobConfig tiny = Config({"allowed.test"}, {kFarOpen});
  tiny.limits.max_total_bytes = 10;
  Restart(tiny);
  std::string resp = Exchange(sock(), Get("allowed.test", "allowed.test"));
  EXPECT_EQ(StatusOf(resp), 403) << resp;
  EXPECT_EQ(HeaderOf(resp, "x-deny-reason"), "budget_exhausted") << resp;
  // And one past the job's connection limit, and a route with no provider.
  JobConfig two = Config({"allowed.test"}, {kFarOpen});
  two.limits.max_connections = 1;
  Restart(two);
  UnixClient hold(sock());
  hold.Send("GET http://allowed.test/ HTTP/1.1\r\n");  // half a head: held open
  std::string busy;
  for (int64_t until = gwtest::NowMs() + 5000; gwtest::NowMs() < until;) {
    busy = Exchange(sock(), Get("allowed.test", "allowed.test"));
    if (StatusOf(busy) == 503) break;
  }
  EXPECT_EQ(StatusOf(busy), 503) << busy;
  EXPECT_EQ(HeaderOf(busy, "x-deny-reason"), "too_many_connections") << busy;
  Restart(Config({"allowed.test"}, {kFarOpen}));
  resp = Exchange(sock(), ModelRequest());
  EXPECT_EQ(StatusOf(resp), 403) << resp;
  EXPECT_EQ(HeaderOf(resp, "x-deny-reason"), "no_model_provider") << resp;
}

// ------------------------------------------- the model route is the model API

TEST_F(GatewayTest, TheModelRouteForwardsOnlyTheProviderApisMethodsAndPaths) {
  JobConfig c = Config({}, {kFarOpen});
  c.model = Route(443);
  Start(c);
  auto req = [](const std::string& method, const std::string& path) {
    return absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: 127.0.0.1:3128\r\nx-api-key: ",
                        kPlaceholder, "\r\nContent-Length: 2\r\n\r\n{}");
  };
  struct Case {
    std::string method, path;
    int status;
    const char* token;
  };
  const Case cases[] = {
      {"TRACE", "/v1/messages", 405, "method_not_allowed"},
      {"GET", "/v1/messages", 405, "method_not_allowed"},
      {"POST", "/v1/files", 403, "path_not_allowed"},
      {"POST", "/v1/messages/batches", 403, "path_not_allowed"},
      {"GET", "/v1/messages/batches/x/results", 403, "path_not_allowed"},
      {"POST", "/v1/messages/../files", 403, "path_not_allowed"},
      {"POST", "/v1/messages/%2e%2e/files", 403, "path_not_allowed"},
      {"DELETE", "/v1/files/file_1", 403, "path_not_allowed"},
  };
  for (const auto& k : cases) {
    // Origin form (ANTHROPIC_BASE_URL) and through a tunnel to the bridge.
    std::string resp = Exchange(sock(), req(k.method, k.path));
    EXPECT_EQ(StatusOf(resp), k.status) << k.method << " " << k.path << "\n" << resp;
    EXPECT_EQ(HeaderOf(resp, "x-deny-reason"), k.token) << resp;
    resp = Exchange(sock(), "CONNECT 127.0.0.1:3128 HTTP/1.1\r\nHost: 127.0.0.1:3128\r\n\r\n" +
                                req(k.method, k.path));
    std::string inner = resp.substr(std::min(resp.size(), resp.find("\r\n\r\n") + 4));
    EXPECT_EQ(StatusOf(inner), k.status) << resp;
    EXPECT_EQ(HeaderOf(inner, "x-deny-reason"), k.token) << resp;
  }
  EXPECT_EQ(https443_->connections(), 0) << "a refused request reached the provider with the key";
  // The API itself still works: messages (with a query string), count_tokens, models.
  for (const auto& [m, p] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/v1/messages?beta=true"}, {"POST", "/v1/messages/count_tokens"}, {"GET", "/v1/models"}}) {
    std::string resp = Exchange(sock(), req(m, p));
    EXPECT_EQ(StatusOf(resp), 200) << m << " " << p << "\n" << resp;
  }
  EXPECT_EQ(https443_->connections(), 3);
  auto log = Netlog(2 * std::size(cases) + 3);
  int denied = 0;
  for (const auto& e : log)
    if (e["decision"] == "deny") {
      ++denied;
      EXPECT_EQ(e["kind"], "model") << e.dump();
      EXPECT_TRUE(e.contains("path")) << e.dump();
    }
  EXPECT_EQ(denied, 2 * static_cast<int>(std::size(cases)));
  // A provider's own list replaces the defaults.
  JobConfig own = Config({}, {kFarOpen});
  own.model = Route(443);
  own.model->api = {*ParseModelApiRule("POST /v1/chat/completions")};
  Restart(own);
  EXPECT_EQ(StatusOf(Exchange(sock(), req("POST", "/v1/chat/completions"))), 200);
  EXPECT_EQ(StatusOf(Exchange(sock(), req("POST", "/v1/messages"))), 403);
  EXPECT_EQ(https443_->connections(), 4);
}

// ---------------------------------------------------- names under a wildcard

TEST_F(GatewayTest, AWildcardRuleResolvesABoundedNumberOfNamesPerJob) {
  JobConfig c = Config({"*.allowed.test"}, {kFarOpen});
  c.limits.max_names_per_wildcard = 3;
  Start(c);
  for (const char* n : {"n1.allowed.test", "n2.allowed.test", "n3.allowed.test"}) {
    std::string resp = Exchange(sock(), Get(n, n));
    EXPECT_EQ(StatusOf(resp), 200) << n << "\n" << resp;
  }
  // The fourth name is refused before any lookup, as a CONNECT and as HTTP.
  std::string resp = Exchange(sock(), Get("n4.allowed.test", "n4.allowed.test"));
  EXPECT_EQ(StatusOf(resp), 403) << resp;
  EXPECT_EQ(HeaderOf(resp, "x-deny-reason"), "too_many_names") << resp;
  EXPECT_TRUE(absl::StrContains(resp, "too many names under *.allowed.test")) << resp;
  resp = Exchange(sock(), "CONNECT n5.allowed.test:443 HTTP/1.1\r\nHost: n5.allowed.test:443\r\n\r\n");
  EXPECT_EQ(StatusOf(resp), 403) << resp;
  EXPECT_EQ(HeaderOf(resp, "x-deny-reason"), "too_many_names") << resp;
  // A name already admitted stays usable.
  resp = Exchange(sock(), Get("n2.allowed.test", "n2.allowed.test"));
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(http80_->connections(), 4);
  // The names are in the network log, with the count under the rule.
  auto log = Netlog(6);
  EXPECT_EQ(log[0]["host"], "n1.allowed.test");
  EXPECT_EQ(log[2]["wildcard_names"], 3) << log[2].dump();
  EXPECT_EQ(log[3]["host"], "n4.allowed.test");
  EXPECT_EQ(log[3]["deny_reason"], "too_many_names") << log[3].dump();
  EXPECT_EQ(log[4]["host"], "n5.allowed.test");
}

// ------------------------------------------------ the network log's budget

// 2,000 refused requests with 8 KB targets and 20 KB Host headers, as a
// hostile agent sends them: the network log stays under its byte cap and
// says what it dropped, every field is cut, and workerd's own log gets a
// bounded number of short lines (it grew by ~28 KB per request before).
TEST_F(GatewayTest, AFloodOfHugeRefusedRequestsKeepsTheNetlogAndWorkerdsLogBounded) {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink));
  JobConfig c = Config({"allowed.test"}, {kFarOpen});
  Start(c);
  const int kRequests = 2000;
  const std::string target(8000, 't'), host(20 * 1024, 'h');  // the target: 8 KiB in all
  for (int i = 0; i < kRequests; ++i) {
    std::string req = i % 2 == 0
        ? absl::StrCat("GET http://evil.test/", target, " HTTP/1.1\r\nHost: ", host, i, "\r\n\r\n")
        : absl::StrCat("GET http://", host.substr(0, 200), ".example/", target.substr(0, 7700),
                       " HTTP/1.1\r\nHost: ", host.substr(0, 200), ".example\r\nX-Pad: ", host, "\r\n\r\n");
    std::string resp = Exchange(sock(), req);
    ASSERT_TRUE(StatusOf(resp) == 400 || StatusOf(resp) == 403) << i << ": " << resp.substr(0, 300);
  }
  // A connection allowed after the flood is still logged: refusals fill at
  // most three quarters of the log.
  EXPECT_EQ(StatusOf(Exchange(sock(), Get("allowed.test", "allowed.test"))), 200);
  job_->Stop();
  const nlohmann::json log = job_->Netlog();
  const std::string text = NetlogText(log);
  EXPECT_EQ(job_->denied(), kRequests);
  EXPECT_LE(text.size(), static_cast<size_t>(c.limits.netlog_max_bytes) + kNetlogNoteBytes)
      << "network log of " << text.size() << " bytes";
  ASSERT_GE(log.size(), 2u);
  const auto& last = log.back();
  EXPECT_EQ(last["decision"], "truncated") << last.dump();
  EXPECT_EQ(last.value("dropped_entries", 0) + static_cast<int>(log.size()) - 1, kRequests + 1)
      << last.dump();
  EXPECT_TRUE(absl::StrContains(last.value("reason", ""), "not logged")) << last.dump();
  for (const auto& e : log)
    for (const auto& [k, v] : e.items())
      if (v.is_string()) EXPECT_LE(v.get<std::string>().size(), kNetlogFieldBytes + 40) << k;
  EXPECT_TRUE(absl::StrContains(log[0].value("reason", ""), "more bytes cut")) << log[0].dump();
  bool allowed_logged = false;
  for (const auto& e : log) allowed_logged |= e["decision"] == "allow" && e["host"] == "allowed.test";
  EXPECT_TRUE(allowed_logged) << "the allowed connection was pushed out of the log by the refusals";
  EXPECT_EQ(last.value("dropped_denied", 0), last.value("dropped_entries", -1));
  job_.reset();
  gw_.reset();
  spdlog::set_default_logger(previous);
  const std::string lines = captured.str();
  EXPECT_LT(lines.size(), size_t{64 << 10}) << "workerd's log grew by " << lines.size() << " bytes";
  EXPECT_TRUE(absl::StrContains(lines, "not logged here")) << lines.substr(0, 2000);
  for (absl::string_view line : absl::StrSplit(lines, '\n'))
    EXPECT_LT(line.size(), 700u) << line.substr(0, 300);
}

// ------------------------------------------------- cost (issue 16): usage

// The stand-in Messages API (tests/integration/standin_provider.py --usage)
// in the far namespace, HTTPS (a certificate for model.test from the test
// CA) on 10.200.0.2:8443; it writes the usage it sent to a stats file.
class StandIn {
 public:
  explicit StandIn(const gwtest::TempDir& dir)
      : port_file_(dir.Join("standin.port")), stats_(dir.Join("standin.stats")),
        proc_({"/usr/bin/python3", ASSESSQ_STANDIN_PY, "--usage", "--host", kFar, "--port", "8443",
               "--port-file", port_file_, "--stats-file", stats_, "--cert", g_shared->good.first, "--key",
               g_shared->good.second},
              dir.Join("standin.log")) {
    aqtest::PollUntil([&] { return std::filesystem::exists(port_file_); }, 15000, 20);
    EXPECT_TRUE(std::filesystem::exists(port_file_)) << "the stand-in did not start";
  }
  // Its stats once it has answered `calls` requests.
  nlohmann::json Stats(int calls) {
    nlohmann::json j;
    if (aqtest::PollUntil(
            [&] {
              j = nlohmann::json::parse(aqtest::ReadFile(stats_), nullptr, false);
              return !j.is_discarded() && j.value("calls", 0) >= calls;
            },
            10000, 20))
      return j;
    ADD_FAILURE() << "the stand-in did not answer " << calls << " calls";
    return j;
  }

 private:
  std::string port_file_, stats_;
  gwtest::FarProcess proc_;
};

std::string MessagesRequest(const std::string& body) {
  return absl::StrCat("POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:3128\r\nx-api-key: ", kPlaceholder,
                      "\r\nAccept-Encoding: gzip, br\r\nanthropic-version: 2023-06-01\r\n"
                      "Content-Type: application/json\r\nContent-Length: ",
                      body.size(), "\r\n\r\n", body);
}

int64_t Requests(const UsageSnapshot& u) {
  int64_t n = 0;
  for (const auto& m : u.models) n += m.requests;
  return n;
}

// The gateway's count of every kind of token equals what the provider sent,
// exactly: JSON answers, streamed answers, and streams cut short after
// message_start and after the first message_delta; the agent's
// accept-encoding is replaced by identity, so every answer is readable.
TEST_F(GatewayTest, TheModelRoutesUsageEqualsTheProvidersOwnCount) {
  StandIn p(*dir_);
  JobConfig c = Config({}, {kFarOpen});
  c.model = Route(8443);
  c.model->provider = "anthropic";
  Start(c);
  const std::vector<std::string> bodies = {
      R"({"stream":false})", R"({"stream":true})", R"({"stream":true,"aq_cut":"after_start"})",
      R"({"stream":true,"aq_cut":"after_delta"})", R"({"stream":false})", R"({"stream":true})"};
  for (const auto& b : bodies) {
    std::string resp = Exchange(sock(), MessagesRequest(b), 10000);
    EXPECT_EQ(StatusOf(resp), 200) << resp.substr(0, 300);
  }
  nlohmann::json stats = p.Stats(static_cast<int>(bodies.size()));
  for (const auto& ae : stats["accept_encoding"]) EXPECT_EQ(ae, "identity") << stats.dump();
  UsageSnapshot u;
  aqtest::PollUntil(
      [&] { return Requests(u = job_->usage()) >= static_cast<int64_t>(bodies.size()); }, 5000, 10);
  ASSERT_EQ(u.models.size(), stats["sent"].size()) << stats.dump();
  for (const auto& m : u.models) {
    SCOPED_TRACE(m.model);
    ASSERT_TRUE(stats["sent"].contains(m.model)) << stats.dump();
    const auto& s = stats["sent"][m.model];
    EXPECT_EQ(m.provider, "anthropic");
    EXPECT_EQ(m.requests, s["requests"].get<int64_t>());
    EXPECT_EQ(m.tokens.input, s["input_tokens"].get<int64_t>());
    EXPECT_EQ(m.tokens.output, s["output_tokens"].get<int64_t>());
    EXPECT_EQ(m.tokens.cache_write, s["cache_creation_input_tokens"].get<int64_t>());
    EXPECT_EQ(m.tokens.cache_read, s["cache_read_input_tokens"].get<int64_t>());
    EXPECT_GE(m.duration_ms, 0);
  }
  EXPECT_EQ(u.unmetered, 0);
  EXPECT_FALSE(u.budget_exhausted);
  // Each request's own reading is in its log entry.
  auto log = Netlog(bodies.size());
  for (const auto& e : log) EXPECT_TRUE(e.contains("usage")) << e.dump();
}

// A job at its cap: the next model request is refused with 402 and
// x-deny-reason job_budget_exhausted before anything goes upstream; by
// tokens, and by money with the lease's prices.
TEST_F(GatewayTest, AJobAtItsBudgetIsRefusedBeforeAnythingGoesUpstream) {
  StandIn p(*dir_);
  // Call n: 100+n input, 7n cache write, 1000+n cache read, 20+3n output:
  // 1132, 1144 and 1156 tokens for the first three.
  struct Cap {
    const char* name;
    BudgetCap cap;
    int allowed;
  } caps[] = {
      {"tokens", {2500, 0, {}}, 3},  // 1132 + 1144 = 2276 < 2500; 3432 >= 2500
      // $1000 per M input: calls 4 and 5 cost $0.104 and $0.105.
      {"usd", {0, 0.2, {{"anthropic", "claude-standin-json", 1000, 0, 0, 0}}}, 2},
  };
  int calls = 0;
  for (const auto& cap : caps) {
    SCOPED_TRACE(cap.name);
    JobConfig c = Config({}, {kFarOpen});
    c.model = Route(8443);
    c.model->provider = "anthropic";
    c.budget = cap.cap;
    if (job_) Restart(c);
    else Start(c);
    for (int i = 0; i < cap.allowed; ++i) {
      std::string resp = Exchange(sock(), MessagesRequest(R"({"stream":false})"), 10000);
      EXPECT_EQ(StatusOf(resp), 200) << resp.substr(0, 300);
    }
    calls += cap.allowed;
    p.Stats(calls);
    std::string refused = Exchange(sock(), MessagesRequest(R"({"stream":false})"), 10000);
    EXPECT_EQ(StatusOf(refused), 402) << refused;
    EXPECT_TRUE(absl::StrContains(refused, "\r\nx-deny-reason: job_budget_exhausted\r\n")) << refused;
    EXPECT_TRUE(absl::StrContains(refused, "the job's model budget is spent")) << refused;
    EXPECT_EQ(p.Stats(calls)["calls"], calls) << "a refused request reached the provider";
    UsageSnapshot u = job_->usage();
    EXPECT_TRUE(u.budget_exhausted);
    EXPECT_EQ(u.budget_refusals, 1);
    EXPECT_TRUE(absl::StrContains(u.budget_why, "budget is spent")) << u.budget_why;
    auto log = Netlog(static_cast<size_t>(cap.allowed) + 1);
    EXPECT_EQ(log.back()["deny_reason"], "job_budget_exhausted") << log.back().dump();
  }
}

}  // namespace
}  // namespace assessq::gateway

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!::testing::GTEST_FLAG(list_tests)) {
    std::string err = gwtest::EnterPrivateNetns({"203.0.113.9/32"});
    if (err.empty()) err = gwtest::MakeFarNetns({"198.51.100.7/32", "169.254.169.254/32", "10.200.0.3/32"});
    if (!err.empty()) {
      std::fprintf(stderr, "gateway_test: %s\n", err.c_str());
      return 1;
    }
  }
  curl_global_init(CURL_GLOBAL_ALL);
  signal(SIGPIPE, SIG_IGN);
  // The shared CA dir goes when the tests are done.
  struct Cleanup : ::testing::Environment {
    void TearDown() override {
      delete assessq::gateway::g_shared;
      assessq::gateway::g_shared = nullptr;
    }
  };
  ::testing::AddGlobalTestEnvironment(new Cleanup);
  int rc = RUN_ALL_TESTS();
  curl_global_cleanup();
  return rc;
}
