// Cost end to end (issue 16): a real coordinatord, a real workerd and a real
// dockerd run jobs (image assessq-net-test:1, python3) whose agent calls the
// model route (http://127.0.0.1:3128/v1/messages, as Claude Code does)
// through the job's egress gateway to the stand-in Messages API
// (tests/integration/standin_provider.py --usage, HTTPS with a certificate
// from a CA this test makes) in a network namespace the test creates
// (10.98.7.2, reached by name through the worker policy's
// resolver_overrides): nothing leaves the machine.
//  - the usage the coordinator stored for the attempt (assessctl show -o
//    json) equals, per model and kind, what the stand-in sent: JSON answers,
//    streamed answers and a stream cut short;
//  - a job whose profile caps it (limits.budget.max_tokens) crosses its cap
//    mid-run: its next model request is refused (402, x-deny-reason
//    job_budget_exhausted, in the netlog), workerd stops it, the attempt ends
//    as an agent failure "budget: ...", and the coordinator does not retry
//    it (needs_attention after one attempt, with the default three agent
//    attempts).
// Fails, never skips, without Docker or the image.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/e2e_harness.h"
#include "tests/gateway/gw_test_util.h"
#include "tests/support/netns_world.h"

namespace aqe2e {
namespace {

namespace fs = std::filesystem;

constexpr char kImage[] = "assessq-net-test:1";
constexpr char kHostAddr[] = "10.98.7.1";
constexpr char kStandInAddr[] = "10.98.7.2";

// The agent: calls the model route once per entry of the metadata's
// X-Plan.bodies, printing each status; on a refusal it prints the reason and
// (hold) waits to be stopped, else exits 3.
constexpr char kAgent[] = R"PY(
import json, sys, time, urllib.request, urllib.error
plan = json.load(open(sys.argv[1]))["X-Plan"]
for body in plan["bodies"]:
    req = urllib.request.Request("http://127.0.0.1:3128/v1/messages", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json", "x-api-key": "placeholder"},
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            print("STATUS", r.status, len(r.read()), flush=True)
    except urllib.error.HTTPError as e:
        print("REFUSED", e.code, e.headers.get("x-deny-reason"), flush=True)
        if plan.get("hold"):
            time.sleep(60)
        sys.exit(3)
    except Exception as e:
        print("CUT", type(e).__name__, flush=True)
sys.exit(0)
)PY";

json StandInStats(const std::string& file) { return json::parse(ReadFile(file), nullptr, false); }

TEST(BudgetE2eTest, StoredUsageEqualsTheProvidersAndAJobAtItsCapEndsAgentBudgetWithoutRetry) {
  Docker();  // throws: a failure, never a skip
  auto img = Docker().ImageExists(kImage);
  ASSERT_TRUE(img.ok() && *img) << kImage << " is missing: run scripts/build-net-image.sh";
  // The stand-in's namespace; its address routes into it (checked).
  aqtest::NetnsWorld ns({.name = "aqbud",
                         .veth = "aqb",
                         .lock_file = "/tmp/assessq-budget-e2e-test.lock",
                         .host_addr = kHostAddr,
                         .ns_addrs = {std::string(kStandInAddr) + "/24"},
                         .must_route = {kStandInAddr}});
  ns.Build();
  TempDir dir;
  gwtest::TestCa ca = gwtest::MakeTestCa(dir.path());
  auto [cert, key] = ca.Issue("model", "DNS:model.test");
  const std::string port_file = dir.Join("standin.port"), stats = dir.Join("standin.stats");
  auto standin = Child::Spawn(ns.Exec({"/usr/bin/python3", ASSESSQ_STANDIN_PY, "--usage", "--host",
                                       kStandInAddr, "--port", "8443", "--port-file", port_file,
                                       "--stats-file", stats, "--cert", cert, "--key", key}),
                              dir.Join("standin.log"));
  ASSERT_TRUE(PollUntil([&] { return fs::exists(port_file); }, 20000, 50)) << ReadFile(dir.Join("standin.log"));

  std::string key_file = dir.Join("model.key");
  WriteFile(key_file, "sk-ant-budget-test-REAL\n");
  chmod(key_file.c_str(), 0600);
  json policy = {
      {"netbridge_path", ASSESSQ_NETBRIDGE},
      {"credentials", {{"stub", key_file}}},
      {"model_providers",
       {{"anthropic",
         {{"host", "model.test"}, {"port", 8443}, {"tls", true}, {"ca_file", ca.ca_pem},
          {"header", "x-api-key"}, {"credential", "stub"}}}}},
      {"egress",
       {{"open_ranges", {std::string(kStandInAddr) + "/32"}},
        {"resolver_overrides", {{"model.test", {kStandInAddr}}}}}},
  };
  WriteFile(dir.Join("policy.json"), policy.dump(2));
  auto profile = [&](const std::string& name, const json& budget) {
    json p = {{"image", kImage},
              {"command", {"/usr/bin/python3", "-c", kAgent, "{input}"}},
              {"network", {{"mode", "gateway"}, {"model", "anthropic"}}},
              {"limits",
               {{"memory_mb", 256}, {"pids", 64}, {"timeout_s", 90}, {"grace_s", 5}, {"tmp_mb", 16},
                {"home_mb", 16}, {"output_mb", 4}}}};
    if (!budget.is_null()) p["limits"]["budget"] = budget;
    WriteFile(dir.Join(name), p.dump(2));
    return dir.Join(name);
  };
  auto input = [&](const std::string& sub, const json& plan) {
    fs::create_directories(dir.Join(sub));
    WriteFile(dir.Join(sub) + "/job.json", json({{"Name", "budget " + sub}, {"X-Plan", plan}}).dump());
    return dir.Join(sub);
  };

  Coordinator coord(dir.path());
  coord.Start();
  Ctl ctl(coord);
  Workerd worker(coord, dir.path(), Unique("budget"),
                 WorkerOptions{.slots = 1, .extra_args = {"--policy", dir.Join("policy.json")}});
  worker.Start();

  // 1. Metered: JSON, streamed, a stream cut after message_start, one cut
  // after its first message_delta. No output file: one agent attempt.
  json bodies = json::array({json{{"stream", false}}, json{{"stream", true}},
                             json{{"stream", true}, {"aq_cut", "after_start"}},
                             json{{"stream", true}, {"aq_cut", "after_delta"}}, json{{"stream", false}}});
  auto ids = ctl.Submit({input("metered", {{"bodies", bodies}})}, Unique("metered"), profile("p1.json", nullptr),
                        {"--max-attempts", "agent=1"});
  json shown = ctl.WaitJobFinished(ids.at("job"), 120000);
  ASSERT_EQ(shown["attempts"].size(), 1u) << shown.dump(2);
  const json& a = shown["attempts"][0];
  json sent = StandInStats(stats);
  ASSERT_EQ(sent.value("calls", 0), 5) << sent.dump() << "\n" << a.value("log_tail", "");
  ASSERT_TRUE(a.contains("usage")) << a.dump(2);
  const json& models = a["usage"]["models"];
  ASSERT_EQ(models.size(), sent["sent"].size()) << a["usage"].dump(2) << "\n" << sent.dump(2);
  for (const auto& m : models) {
    SCOPED_TRACE(m.dump());
    const std::string name = m.value("model", "");
    ASSERT_TRUE(sent["sent"].contains(name)) << sent.dump(2);
    const json& s = sent["sent"][name];
    EXPECT_EQ(m["provider"], "anthropic");
    EXPECT_EQ(m["requests"], s["requests"]);
    EXPECT_EQ(m["input_tokens"], s["input_tokens"]);
    EXPECT_EQ(m["output_tokens"], s["output_tokens"]);
    EXPECT_EQ(m["cache_write_tokens"], s["cache_creation_input_tokens"]);
    EXPECT_EQ(m["cache_read_tokens"], s["cache_read_input_tokens"]);
  }
  EXPECT_EQ(a["usage"].value("budget_exhausted", true), false);

  // 2. A cap of 2,500 tokens: calls 6, 7 and 8 are 1,192 + 1,204 + 1,216
  // tokens; the fourth request is refused and the agent waits (hold) until
  // workerd stops it. Default retry policy: three agent attempts.
  json many = json::array();
  for (int i = 0; i < 8; ++i) many.push_back(json{{"stream", i % 2 == 1}});
  auto capped = ctl.Submit({input("capped", {{"bodies", many}, {"hold", true}})}, Unique("capped"),
                           profile("p2.json", json{{"max_tokens", 2500}}));
  const int64_t job = capped.at("job");
  json done = ctl.WaitJobFinished(job, 120000);
  EXPECT_EQ(done.value("state", ""), "needs_attention") << done.dump(2);
  ASSERT_EQ(done["attempts"].size(), 1u) << "a budget failure was retried: " << done.dump(2);
  const json& b = done["attempts"][0];
  EXPECT_EQ(b.value("failure_class", ""), "agent") << b.dump(2);
  EXPECT_TRUE(absl::StartsWith(b.value("error", ""), "budget: the job's model budget is spent"))
      << b.dump(2);
  EXPECT_TRUE(absl::StrContains(b.value("log_tail", ""), "REFUSED 402 job_budget_exhausted")) << b.dump(2);
  // Stopped by workerd, not at the end of the agent's 60 s wait.
  EXPECT_LT(b["details"].value("duration_ms", 999999), 30000) << b.dump(2);
  EXPECT_EQ(StandInStats(stats).value("calls", 0), 8) << "a refused request reached the provider";
  json netlog = ctl.Json({"netlog", std::to_string(job)});
  bool refused = false;
  for (const auto& e : netlog) refused |= e.value("deny_reason", "") == "job_budget_exhausted";
  EXPECT_TRUE(refused) << netlog.dump(2);
  EXPECT_EQ(b["usage"].value("budget_exhausted", false), true) << b.dump(2);
  EXPECT_EQ(b["usage"].value("total_tokens", 0), 1192 + 1204 + 1216) << b["usage"].dump(2);
}

}  // namespace
}  // namespace aqe2e

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
