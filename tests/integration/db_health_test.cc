// coordinatord's gRPC health service follows its database: the real
// coordinatord (probe every 200 ms) says SERVING, then NOT_SERVING while the
// SQLite file is renamed away (the engine's open handle would carry on
// writing into a file nobody can find; the probe opens the path afresh each
// time, so it sees the file is gone) and SERVING again once it is back, with
// assessq_database_up on /metrics agreeing; the named services follow too.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/integration/harness.h"
#include "tests/integration/scrape.h"

namespace aqtest {
namespace {

namespace fs = std::filesystem;
constexpr int kServing = 1, kNotServing = 2;

TEST(DbHealthTest, NotServingWhileTheDatabaseFileIsGone) {
  TempDir dir;
  const int port = FreeLoopbackPort();
  CoordinatorOptions opt;
  opt.extra_args = {"--health-probe-ms", "200", "--metrics-listen",
                    "127.0.0.1:" + std::to_string(port)};
  Coordinator coord(dir.path(), opt);
  const std::string op = coord.CreateToken("operator", "ops");
  coord.Start();  // waits for SERVING
  auto ch = coord.NewChannel();
  auto health = [&] {
    auto h = CheckHealth(ch, "", 2000);
    return h.ok() ? *h : -1;
  };
  auto db_up = [&] {
    auto s = aqscrape::Scrape(port);
    return s ? aqscrape::Value(*s, "assessq_database_up") : -2;
  };
  ASSERT_EQ(health(), kServing);
  EXPECT_EQ(db_up(), 1);

  fs::rename(coord.db(), coord.db() + ".away");
  EXPECT_TRUE(PollUntil([&] { return health() == kNotServing; }, 10000))
      << "health still " << health() << " with the database gone\n" << Tail(coord.log());
  EXPECT_TRUE(PollUntil([&] { return db_up() == 0; }, 5000)) << db_up();
  // The per-service status follows too (the services the server registers).
  auto svc = CheckHealth(ch, "assessq.v1.OperatorService", 2000);
  ASSERT_TRUE(svc.ok()) << svc.status();
  EXPECT_EQ(*svc, kNotServing);

  fs::rename(coord.db() + ".away", coord.db());
  EXPECT_TRUE(PollUntil([&] { return health() == kServing; }, 10000))
      << "health still " << health() << " with the database back\n" << Tail(coord.log());
  EXPECT_TRUE(PollUntil([&] { return db_up() == 1; }, 5000)) << db_up();
  EXPECT_NE(ReadFile(coord.log()).find("database unavailable"), std::string::npos)
      << Tail(coord.log());
  coord.Stop();
}

}  // namespace
}  // namespace aqtest
