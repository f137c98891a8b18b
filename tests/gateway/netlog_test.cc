// The job's network log (worker/gateway/netlog.h), without sockets: the
// entry and byte caps, the quarter kept for allowed connections whatever
// the refusals, the closing "truncated" entry, long fields cut, and the
// denied count.
#include "worker/gateway/netlog.h"

#include <gtest/gtest.h>

#include <string>

#include "worker/gateway/gateway.h"

namespace assessq::gateway {
namespace {

void Add(Netlog& log, bool allowed, const std::string& host = "a.test") {
  Entry e;
  e.j["method"] = "GET";
  e.j["host"] = host;
  e.j["port"] = 443;
  log.Record(e, allowed, allowed ? "a.test" : "no rule allows it", allowed ? "" : "host_not_allowed");
}

TEST(Netlog, CompletesAnEntry) {
  Netlog log(7, NetlogLimits{});
  Add(log, false);
  Add(log, true);
  nlohmann::json j = log.Entries();
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["job"], 7);
  EXPECT_EQ(j[0]["decision"], "deny");
  EXPECT_EQ(j[0]["deny_reason"], "host_not_allowed");
  EXPECT_EQ(j[0]["reason"], "no rule allows it");
  EXPECT_TRUE(j[0].contains("ts") && j[0].contains("duration_ms"));
  EXPECT_EQ(j[1]["decision"], "allow");
  EXPECT_FALSE(j[1].contains("deny_reason"));
  EXPECT_EQ(log.denied(), 1);
}

TEST(Netlog, Caps) {
  struct Case {
    const char* name;
    NetlogLimits lim;
    int denied, allowed;  // recorded in this order
    size_t kept_denied, kept_allowed;  // checked for the entry caps
    bool byte_cap;                     // the byte cap decides instead
  };
  const std::vector<Case> cases = {
      {"under the caps", {100, 1 << 20, 30}, 5, 5, 5, 5, false},
      {"entry cap", {10, 1 << 20, 30}, 0, 20, 0, 10, false},
      // Refusals fill at most three quarters: allowed ones still fit after.
      {"refusals stop at 3/4 of the entries", {8, 1 << 20, 30}, 20, 5, 6, 2, false},
      {"byte cap", {10000, 2000, 30}, 0, 100, 0, 0, true},
      {"refusals stop at 3/4 of the bytes", {10000, 2000, 30}, 100, 100, 0, 0, true},
  };
  for (const Case& c : cases) {
    Netlog log(1, c.lim);
    for (int i = 0; i < c.denied; ++i) Add(log, false);
    for (int i = 0; i < c.allowed; ++i) Add(log, true);
    nlohmann::json j = log.Entries();
    size_t kept_denied = 0, kept_allowed = 0;
    for (const auto& e : j) {
      kept_denied += e["decision"] == "deny";
      kept_allowed += e["decision"] == "allow";
    }
    const bool dropped = kept_denied + kept_allowed < static_cast<size_t>(c.denied + c.allowed);
    if (!c.byte_cap) {
      EXPECT_EQ(kept_denied, c.kept_denied) << c.name;
      EXPECT_EQ(kept_allowed, c.kept_allowed) << c.name;
    } else {
      // Bytes: the entries kept stay within the cap (3/4 of it for refusals)
      // and an allowed entry fits after any number of refusals.
      int64_t denied_bytes = 0;
      for (const auto& e : j)
        if (e["decision"] == "deny") denied_bytes += static_cast<int64_t>(NetlogText(e).size()) + 1;
      EXPECT_LE(denied_bytes, c.lim.max_bytes / 4 * 3) << c.name;
      EXPECT_GT(kept_allowed, 0u) << c.name;
      j.erase(j.size() - 1);
      EXPECT_LE(static_cast<int64_t>(NetlogText(j).size()), c.lim.max_bytes) << c.name;
      j = log.Entries();
    }
    ASSERT_EQ(dropped, j.back()["decision"] == "truncated") << c.name;
    if (dropped) {
      EXPECT_EQ(j.back()["dropped_entries"], static_cast<int64_t>(c.denied + c.allowed) - (j.size() - 1)) << c.name;
      EXPECT_EQ(j.back()["dropped_denied"], static_cast<int64_t>(c.denied) -
                                                static_cast<int64_t>(kept_denied)) << c.name;
    }
    EXPECT_EQ(log.denied(), c.denied) << c.name;
  }
}

TEST(Netlog, CutsLongFields) {
  Netlog log(1, NetlogLimits{});
  Add(log, false, std::string(5000, 'h'));
  nlohmann::json j = log.Entries();
  ASSERT_EQ(j.size(), 1u);
  const std::string host = j[0]["host"];
  EXPECT_LT(host.size(), kNetlogFieldBytes + 40);
  EXPECT_NE(host.find("more bytes cut]"), std::string::npos) << host;
}

}  // namespace
}  // namespace assessq::gateway
