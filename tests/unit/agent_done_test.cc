// The agent-done decision (worker/agent_done.h), table-driven over stdout as
// Claude Code writes it: its final result event ends the job only as a whole
// line that is the last line so far, never as text inside a tool's output,
// never when it reports an error, and never after a gap that may hide what
// came after it.
#include "worker/agent_done.h"

#include <gtest/gtest.h>

#include "worker/job_spec.h"
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace assessq {
namespace {

const std::string kInit =
    R"({"type":"system","subtype":"init","session_id":"s1","tools":["Bash","Write"]})";
const std::string kAssistant =
    R"({"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}}]},"session_id":"s1"})";
const std::string kResult =
    R"({"type":"result","subtype":"success","is_error":false,"duration_ms":1200,"num_turns":3,"result":"done","session_id":"s1","total_cost_usd":0.01})";
// A tool printed a result-looking line: Claude Code carries it back to the
// model inside a JSON string of a "user" event.
const std::string kToolEcho =
    R"({"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"x\n{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"session_id\":\"s1\"}\n"}]},"session_id":"s1"})";

TEST(IsClaudeFinalResult, Table) {
  struct Case {
    const char* name;
    std::string line;
    bool want;
  } cases[] = {
      {"the final result", kResult, true},
      {"with CR", kResult + "\r", true},
      {"leading blanks", "  " + kResult, true},
      {"json output format (one line, same object)",
       R"({"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"abc"})", true},
      {"an error result", R"({"type":"result","subtype":"success","is_error":true,"session_id":"s1"})", false},
      {"max turns", R"({"type":"result","subtype":"error_max_turns","is_error":false,"session_id":"s1"})", false},
      {"during execution error",
       R"({"type":"result","subtype":"error_during_execution","is_error":true,"session_id":"s1"})", false},
      {"is_error missing", R"({"type":"result","subtype":"success","session_id":"s1"})", false},
      {"is_error a string", R"({"type":"result","subtype":"success","is_error":"false","session_id":"s1"})", false},
      {"no session", R"({"type":"result","subtype":"success","is_error":false})", false},
      {"empty session", R"({"type":"result","subtype":"success","is_error":false,"session_id":""})", false},
      {"other event", kInit, false},
      {"assistant", kAssistant, false},
      {"a tool's output quoted in an event", kToolEcho, false},
      {"text before the object", "tool says " + kResult, false},
      {"text after the object", kResult + " trailing", false},
      {"two objects on a line", kResult + kResult, false},
      {"an array", "[" + kResult + "]", false},
      {"type not a string", R"({"type":["result"],"subtype":"success","is_error":false,"session_id":"s"})", false},
      {"truncated", kResult.substr(0, kResult.size() - 5), false},
      {"empty", "", false},
      {"plain text", "result", false},
  };
  for (const auto& c : cases) EXPECT_EQ(IsClaudeFinalResult(c.line), c.want) << c.name << ": " << c.line;
}

struct Feed {
  std::string chunk;
  int64_t skipped = 0;
};

TEST(AgentDoneDetector, Table) {
  struct Case {
    const char* name;
    std::vector<Feed> feeds;
    bool want;
  } cases[] = {
      {"nothing yet", {}, false},
      {"a whole run", {{kInit + "\n" + kAssistant + "\n" + kToolEcho + "\n" + kResult + "\n"}}, true},
      {"the result in pieces", {{kInit + "\n" + kResult.substr(0, 20)}, {kResult.substr(20)}, {"\n"}}, true},
      {"no newline yet", {{kInit + "\n" + kResult}}, false},
      {"blank lines after it", {{kResult + "\n\n  \n"}}, true},
      {"a forged line, then more output", {{kInit + "\n" + kResult + "\n" + kAssistant + "\n"}}, false},
      {"a forged line, then an unfinished line", {{kResult + "\nstill work"}}, false},
      {"a tool's output quoted in the last event", {{kInit + "\n" + kToolEcho + "\n"}}, false},
      {"an error result last", {{R"({"type":"result","subtype":"error_max_turns","is_error":true,"session_id":"s1"})" "\n"}}, false},
      {"a gap into the result line", {{kInit + "\n"}, {kResult.substr(30) + "\n", 30}}, false},
      {"a gap, then whole lines", {{kInit + "\n"}, {"ing\n" + kResult + "\n", 100}}, true},
      {"a gap after the result", {{kResult + "\n"}, {"x", 4096}}, false},
      {"an over-long line is dropped, the next counts",
       {{std::string(AgentDoneDetector::kMaxLine + 10, 'a')}, {"\n" + kResult + "\n"}}, true},
      {"an over-long result-looking line",
       {{R"({"type":"result","subtype":"success","is_error":false,"session_id":"s1","pad":")" +
         std::string(AgentDoneDetector::kMaxLine, 'a') + "\"}\n"}},
       false},
  };
  for (const auto& c : cases) {
    AgentDoneDetector d(DoneWhen::kClaudeResult);
    for (const auto& f : c.feeds) d.Feed(f.chunk, f.skipped);
    EXPECT_EQ(d.done(), c.want) << c.name;
  }
}

TEST(AgentDoneDetector, ExitModeIsNeverDone) {
  AgentDoneDetector d(DoneWhen::kExit);
  EXPECT_FALSE(d.active());
  d.Feed(kResult + "\n");
  EXPECT_FALSE(d.done());
}

TEST(ParseDoneWhen, Table) {
  EXPECT_EQ(*ParseDoneWhen("exit"), DoneWhen::kExit);
  EXPECT_EQ(*ParseDoneWhen("claude_result"), DoneWhen::kClaudeResult);
  for (const char* bad : {"", "Claude_result", "result", "exit "}) {
    auto w = ParseDoneWhen(bad);
    ASSERT_FALSE(w.ok()) << bad;
    EXPECT_NE(std::string(w.status().message()).find("profile.done_when"), std::string::npos);
  }
}

TEST(ProfileDoneWhen, ParsedCheckedAndCarriedIntoTheJobSpec) {
  const std::string base = R"("image": "assessq-x", "command": ["/agent"])";
  struct Case {
    const char* name;
    std::string json;
    std::string error;  // "" = parses
  } cases[] = {
      {"default", "{" + base + "}", ""},
      {"claude_result", "{" + base + R"(, "done_when": "claude_result", "limits": {"done_grace_s": 5}})", ""},
      {"unknown mode", "{" + base + R"(, "done_when": "whenever"})", "profile.done_when 'whenever'"},
      {"not a string", "{" + base + R"(, "done_when": true})", "profile.done_when must be a string"},
      {"grace too long", "{" + base + R"(, "limits": {"done_grace_s": 3601}})",
       "profile.limits.done_grace_s must be between 0 and 3600"},
      {"grace negative", "{" + base + R"(, "limits": {"done_grace_s": -1}})",
       "profile.limits.done_grace_s must be between 0 and 3600"},
  };
  for (const auto& c : cases) {
    auto p = ParseProfile(c.json, Profile{});
    if (!c.error.empty()) {
      ASSERT_FALSE(p.ok()) << c.name;
      EXPECT_NE(std::string(p.status().message()).find(c.error), std::string::npos)
          << c.name << ": " << p.status();
      continue;
    }
    ASSERT_TRUE(p.ok()) << c.name << ": " << p.status();
    LocalPolicy pol;
    auto spec = DecideJobSpec(*p, pol, JobVars{});
    ASSERT_TRUE(spec.ok()) << c.name << ": " << spec.status();
    if (std::string(c.name) == "default") {
      EXPECT_EQ(spec->done_when, DoneWhen::kExit);
      EXPECT_EQ(spec->limits.done_grace_s, 10);
    } else {
      EXPECT_EQ(spec->done_when, DoneWhen::kClaudeResult);
      EXPECT_EQ(spec->limits.done_grace_s, 5);
    }
  }
}

TEST(OutputFilePresent, OnlyANonEmptyRegularFile) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("agent_done_test." + std::to_string(getpid()));
  fs::create_directories(dir);
  EXPECT_FALSE(OutputFilePresent(dir.string(), "a.json"));  // missing
  { std::ofstream(dir / "a.json"); }
  EXPECT_FALSE(OutputFilePresent(dir.string(), "a.json"));  // empty
  { std::ofstream(dir / "a.json") << "{}"; }
  EXPECT_TRUE(OutputFilePresent(dir.string(), "a.json"));
  fs::create_symlink(dir / "a.json", dir / "link.json");
  EXPECT_FALSE(OutputFilePresent(dir.string(), "link.json"));  // a link, even to a good file
  fs::create_directory(dir / "d.json");
  EXPECT_FALSE(OutputFilePresent(dir.string(), "d.json"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace assessq
