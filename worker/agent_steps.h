// What the agent says it did: Claude Code's stream-json events (its stdout,
// as the worker keeps it: the bounded log tail) turned into a short timeline
// of tool calls (tool, target, ok or error, duration), kept in the attempt's
// details as "agent_steps" and marked as reported by the agent: the agent
// writes these lines itself, so they are a record of its own account, not
// evidence (the gateway's network log is the evidence). Pure.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/string_view.h"

namespace assessq {

inline constexpr size_t kMaxAgentSteps = 200;      // later calls are counted, not kept
inline constexpr size_t kMaxStepTargetBytes = 200;  // a command, URL or path, cut at a UTF-8 boundary

// {"reported_by": "agent", "format": "claude-stream-json", "complete": bool
// (the record starts at Claude Code's init event), "steps": [{"tool",
// "target", "ok" (true/false, absent while unanswered), "duration_ms"
// (absent without both timestamps)}], "omitted": N (only when over the
// cap)}; null when `stdout_text` holds no Claude Code event.
nlohmann::json ClaudeSteps(absl::string_view stdout_text);

}  // namespace assessq
