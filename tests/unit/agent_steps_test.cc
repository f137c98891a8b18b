// The agent's reported steps (worker/agent_steps.h), table-driven over
// Claude Code's stream-json: tool calls paired with their results (ok or
// error, duration), targets cut, the cap, and output that is not Claude
// Code's.
#include "worker/agent_steps.h"

#include <gtest/gtest.h>

#include <string>

namespace assessq {
namespace {

using nlohmann::json;

std::string Use(const std::string& id, const std::string& tool, json input, const std::string& ts) {
  return json{{"type", "assistant"},
              {"timestamp", ts},
              {"message", {{"content", {{{"type", "tool_use"}, {"id", id}, {"name", tool}, {"input", input}}}}}}}
             .dump() + "\n";
}
std::string Result(const std::string& id, bool error, const std::string& ts) {
  return json{{"type", "user"},
              {"timestamp", ts},
              {"message", {{"content", {{{"type", "tool_result"}, {"tool_use_id", id}, {"is_error", error},
                                         {"content", "x"}}}}}}}
             .dump() + "\n";
}
const std::string kInit = R"({"type":"system","subtype":"init","session_id":"s"})" "\n";
const std::string kEnd = R"({"type":"result","subtype":"success","is_error":false,"session_id":"s"})" "\n";

TEST(ClaudeSteps, Table) {
  struct Case {
    const char* name;
    std::string out;
    json want;  // the "steps" array, or null for no record at all
    bool complete = true;
  } cases[] = {
      {"not Claude Code", "hello\nworld\n{\"a\":1}\n", nullptr},
      {"empty", "", nullptr},
      {"a whole run",
       kInit + Use("t1", "WebFetch", {{"url", "https://a.org/p"}, {"prompt", "sum"}}, "2026-12-03T10:00:00.000Z") +
           Result("t1", false, "2026-12-03T10:00:01.250Z") +
           Use("t2", "WebFetch", {{"url", "https://denied.example/"}}, "2026-12-03T10:00:02.000Z") +
           Result("t2", true, "2026-12-03T10:00:02.100Z") +
           Use("t3", "Bash", {{"command", "python3 x.py"}, {"description", "run"}}, "2026-12-03T10:00:03.000Z") +
           Result("t3", false, "2026-12-03T10:00:03.500Z") + kEnd,
       json::array({{{"tool", "WebFetch"}, {"target", "https://a.org/p"}, {"ok", true}, {"duration_ms", 1250}},
                    {{"tool", "WebFetch"}, {"target", "https://denied.example/"}, {"ok", false}, {"duration_ms", 100}},
                    {{"tool", "Bash"}, {"target", "python3 x.py"}, {"ok", true}, {"duration_ms", 500}}})},
      {"unanswered and without timestamps", kInit + Use("t1", "Write", {{"file_path", "/output/a.json"}}, ""),
       json::array({{{"tool", "Write"}, {"target", "/output/a.json"}}})},
      {"a result for an unknown call is ignored", kInit + Result("zz", true, "2026-12-03T10:00:00Z") + kEnd,
       json::array()},
      {"the tail only: not complete",
       Use("t1", "Read", {{"file_path", "/input/metadata.json"}}, "bad time") + Result("t1", false, "also bad"),
       json::array({{{"tool", "Read"}, {"target", "/input/metadata.json"}, {"ok", true}}}), false},
      {"garbage lines between events",
       kInit + "not json\n{\"type\":\"assistant\",\"message\":7}\n" +
           Use("t1", "Read", {{"file_path", "/p"}}, "") + "{broken\n",
       json::array({{{"tool", "Read"}, {"target", "/p"}}})},
  };
  for (const auto& c : cases) {
    json got = ClaudeSteps(c.out);
    if (c.want.is_null()) {
      EXPECT_TRUE(got.is_null()) << c.name << ": " << got.dump();
      continue;
    }
    ASSERT_TRUE(got.is_object()) << c.name;
    EXPECT_EQ(got["steps"], c.want) << c.name << ": " << got.dump();
    EXPECT_EQ(got["reported_by"], "agent") << c.name;
    EXPECT_EQ(got["complete"], c.complete) << c.name;
    EXPECT_FALSE(got.contains("omitted")) << c.name;
  }
}

TEST(ClaudeSteps, TargetsAreCutAtACharacterAndStepsAtTheCap) {
  std::string arabic;
  for (int i = 0; i < 300; ++i) arabic += "ع";  // 2 bytes each
  std::string out = kInit + Use("t0", "Bash", {{"command", "x" + arabic}}, "");
  for (size_t i = 1; i < kMaxAgentSteps + 5; ++i)
    out += Use("t" + std::to_string(i), "Read", {{"file_path", "/f"}}, "");
  json got = ClaudeSteps(out);
  ASSERT_TRUE(got.is_object());
  EXPECT_EQ(got["steps"].size(), kMaxAgentSteps);
  EXPECT_EQ(got["omitted"], 5);
  std::string t = got["steps"][0]["target"];
  EXPECT_LE(t.size(), kMaxStepTargetBytes + 3);
  EXPECT_NO_THROW((void)json(t).dump());  // still valid UTF-8
  EXPECT_EQ(t.substr(t.size() - 3), "…");
}

}  // namespace
}  // namespace assessq
