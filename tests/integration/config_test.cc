// The daemons' TOML config files (CLI11's --config): every long option is a
// key, flags on the command line win, unknown keys are errors. Checked
// through behaviour: coordinatord started with only --config takes its
// database (a token made through the same file works), socket, lease period
// (the Welcome a worker gets) and metrics address (what answers HTTP) from
// the file; started again with --lease-seconds and --metrics-listen flags,
// those win. workerd takes --token-file from its file and a flag overrides
// it (seen in the error about the missing token, before Docker is needed).
#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>

#include "tests/integration/harness.h"
#include "tests/integration/scrape.h"
#include "worker/api_client.h"

namespace aqtest {
namespace {

// The Welcome's lease period a worker gets from the coordinator at `address`.
int64_t WelcomeLeaseMs(const std::string& address, const std::string& token_file) {
  assessq::ApiClientOptions o;
  o.address = address;
  o.bearer_token = ReadToken(token_file);
  o.worker_name = "config-probe";
  o.slots = 0;
  auto api = assessq::ApiClient::Create(o);
  if (!api.ok()) throw std::runtime_error(api.status().ToString());
  std::mutex mu;
  int64_t period = 0;
  (*api)->Start([&](const assessq::v1::CoordinatorMessage& m) {
    std::lock_guard<std::mutex> l(mu);
    if (m.has_welcome()) period = m.welcome().lease_period_ms();
  });
  PollUntil([&] {
    std::lock_guard<std::mutex> l(mu);
    return period != 0;
  }, 15000);
  (*api)->Stop();
  std::lock_guard<std::mutex> l(mu);
  return period;
}

bool Serving(const std::string& address) {
  auto ch = assessq::MakeChannel(address, {});
  if (!ch.ok()) return false;
  auto h = CheckHealth(*ch, "", 500);
  return h.ok() && *h == 1;
}

TEST(ConfigTest, CoordinatordReadsTheFileAndFlagsWin) {
  TempDir dir;
  const int p1 = FreeLoopbackPort(), p2 = FreeLoopbackPort();
  const std::string address = "unix:" + dir.Join("cfg.sock");
  const std::string config = dir.Join("coordinatord.toml");
  WriteFile(config, "# coordinatord test config\n"
                    "db = \"" + dir.Join("from-config.db") + "\"\n"
                    "listen = \"" + address + "\"\n"
                    "lease-seconds = 2.5   # heartbeats renew it\n"
                    "metrics-listen = \"127.0.0.1:" + std::to_string(p1) + "\"\n"
                    "log-format = \"json\"\n");
  // The token subcommand finds the database through the same file.
  const std::string wk = dir.Join("w.token");
  RunResult t = aqtest::Run({BinPath("coordinatord"), "--config", config, "token", "create", "--role",
                     "worker", "--name", "w", "--out", wk});
  ASSERT_EQ(t.exit_code, 0) << t.Describe();
  ASSERT_TRUE(std::filesystem::exists(dir.Join("from-config.db")));

  {
    auto c = Child::Spawn({BinPath("coordinatord"), "--config", config}, dir.Join("c1.log"));
    ASSERT_TRUE(PollUntil([&] { return !c->Running() || Serving(address); }, 30000));
    ASSERT_TRUE(c->Running()) << Tail(dir.Join("c1.log"));
    EXPECT_EQ(WelcomeLeaseMs(address, wk), 2500) << Tail(dir.Join("c1.log"));
    EXPECT_TRUE(aqscrape::Scrape(p1).has_value()) << "config metrics-listen not served";
    EXPECT_NE(ReadFile(dir.Join("c1.log")).find("\"level\":\"info\""), std::string::npos)
        << "log-format from the file not applied:\n" << Tail(dir.Join("c1.log"));
    EXPECT_TRUE(c->Terminate());
  }
  {
    auto c = Child::Spawn({BinPath("coordinatord"), "--config", config, "--lease-seconds", "7",
                           "--metrics-listen", "127.0.0.1:" + std::to_string(p2)},
                          dir.Join("c2.log"));
    ASSERT_TRUE(PollUntil([&] { return !c->Running() || Serving(address); }, 30000));
    ASSERT_TRUE(c->Running()) << Tail(dir.Join("c2.log"));
    EXPECT_EQ(WelcomeLeaseMs(address, wk), 7000) << Tail(dir.Join("c2.log"));
    EXPECT_TRUE(aqscrape::Scrape(p2).has_value()) << "flag metrics-listen not served";
    EXPECT_FALSE(aqscrape::Scrape(p1).has_value()) << "the file's metrics address won over the flag";
    EXPECT_TRUE(c->Terminate());
  }
}

// Plaintext TCP carries bearer tokens in the clear: only on loopback. And
// with port 0 the log names the port it really got.
TEST(ConfigTest, InsecureTcpIsLoopbackOnlyAndPortZeroIsReported) {
  TempDir dir;
  RunResult wild = aqtest::Run({BinPath("coordinatord"), "--db", dir.Join("a.db"), "--listen",
                                "0.0.0.0:0", "--insecure-tcp"},
                               30000);
  EXPECT_NE(wild.exit_code, 0) << wild.Describe();
  EXPECT_NE((wild.out + wild.err).find("loopback only"), std::string::npos) << wild.Describe();

  auto c = Child::Spawn({BinPath("coordinatord"), "--db", dir.Join("b.db"), "--listen",
                         "127.0.0.1:0", "--insecure-tcp"},
                        dir.Join("lo.log"));
  std::string port;
  ASSERT_TRUE(PollUntil(
      [&] {
        std::string log = ReadFile(dir.Join("lo.log"));
        auto p = log.find("listening on 127.0.0.1:");
        if (p == std::string::npos) return false;
        p += std::string("listening on 127.0.0.1:").size();
        port = log.substr(p, log.find_first_not_of("0123456789", p) - p);
        return true;
      },
      30000))
      << ReadFile(dir.Join("lo.log"));
  ASSERT_FALSE(port.empty());
  EXPECT_NE(port, "0");
  EXPECT_TRUE(PollUntil([&] { return Serving("127.0.0.1:" + port); }, 15000))
      << "nothing answers on the port the log named: " << port;
}

TEST(ConfigTest, UnknownKeysAndMissingFilesAreErrors) {
  TempDir dir;
  const std::string config = dir.Join("typo.toml");
  WriteFile(config, "db = \"" + dir.Join("a.db") + "\"\nlease-second = 3\n");
  RunResult r = aqtest::Run({BinPath("coordinatord"), "--config", config}, 30000);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE((r.out + r.err).find("lease-second"), std::string::npos) << r.Describe();

  RunResult m = aqtest::Run({BinPath("coordinatord"), "--config", dir.Join("nope.toml")}, 30000);
  EXPECT_NE(m.exit_code, 0) << m.Describe();
  EXPECT_NE((m.out + m.err).find("nope.toml"), std::string::npos) << m.Describe();

  RunResult w = aqtest::Run({BinPath("workerd"), "--config", config}, 30000);
  EXPECT_NE(w.exit_code, 0) << w.Describe();
  EXPECT_NE((w.out + w.err).find("db"), std::string::npos) << w.Describe();
}

TEST(ConfigTest, WorkerdReadsTheFileAndFlagsWin) {
  TempDir dir;
  const std::string config = dir.Join("workerd.toml");
  WriteFile(config, "coordinator = \"unix:" + dir.Join("none.sock") + "\"\n"
                    "token-file = \"" + dir.Join("from-config.token") + "\"\n"
                    "state-dir = \"" + dir.Join("state") + "\"\n"
                    "slots = 3\n"
                    "metrics-listen = \"127.0.0.1:0\"\n"
                    "health-listen = \"unix:" + dir.Join("health.sock") + "\"\n");
  // --token-file is required: the file satisfies it; the missing token file
  // it names is the first thing workerd trips over.
  RunResult a = aqtest::Run({BinPath("workerd"), "--config", config}, 30000);
  EXPECT_NE(a.exit_code, 0) << a.Describe();
  EXPECT_NE((a.out + a.err).find("from-config.token"), std::string::npos) << a.Describe();

  RunResult b = aqtest::Run({BinPath("workerd"), "--config", config, "--token-file",
                     dir.Join("from-flag.token")},
                    30000);
  EXPECT_NE(b.exit_code, 0) << b.Describe();
  EXPECT_NE((b.out + b.err).find("from-flag.token"), std::string::npos) << b.Describe();
  EXPECT_EQ((b.out + b.err).find("from-config.token"), std::string::npos) << b.Describe();
}

}  // namespace
}  // namespace aqtest
