#include "worker/agent_steps.h"

#include <map>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace assessq {
namespace {

using nlohmann::json;

std::string Cut(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // not inside a character
  return s.substr(0, n) + "…";
}

std::string Str(const json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The one input field that says what a call was about.
std::string Target(const json& input) {
  if (!input.is_object()) return "";
  for (const char* k : {"url", "file_path", "command", "query", "pattern", "path", "description", "prompt"}) {
    std::string v = Str(input, k);
    if (!v.empty()) return v;
  }
  return "";
}

// Milliseconds since the epoch of an RFC 3339 timestamp, or -1.
int64_t Ms(const std::string& ts) {
  absl::Time t;
  std::string err;
  if (ts.empty() || !absl::ParseTime(absl::RFC3339_full, ts, &t, &err)) return -1;
  return absl::ToUnixMillis(t);
}

}  // namespace

json ClaudeSteps(absl::string_view stdout_text) {
  bool any = false, init = false;
  json steps = json::array();
  std::map<std::string, size_t> by_id;     // tool_use id -> index in steps
  std::map<std::string, int64_t> started;  // tool_use id -> ms
  size_t omitted = 0;
  for (absl::string_view line : absl::StrSplit(stdout_text, '\n', absl::SkipEmpty())) {
    if (line.empty() || line.front() != '{') continue;
    json e = json::parse(line.begin(), line.end(), nullptr, false);
    if (e.is_discarded() || !e.is_object()) continue;
    std::string type = Str(e, "type");
    if (type == "system" && Str(e, "subtype") == "init") init = any = true;
    if (type != "assistant" && type != "user") {
      if (type == "result") any = true;
      continue;
    }
    auto m = e.find("message");
    if (m == e.end() || !m->is_object()) continue;
    auto content = m->find("content");
    if (content == m->end() || !content->is_array()) continue;
    any = true;
    int64_t ts = Ms(Str(e, "timestamp"));
    for (const auto& b : *content) {
      if (!b.is_object()) continue;
      std::string bt = Str(b, "type");
      if (type == "assistant" && bt == "tool_use") {
        std::string id = Str(b, "id");
        if (steps.size() >= kMaxAgentSteps) {
          ++omitted;
          continue;
        }
        json s = {{"tool", Cut(Str(b, "name"), 64)},
                  {"target", Cut(Target(b.contains("input") ? b["input"] : json()), kMaxStepTargetBytes)}};
        if (!id.empty()) {
          by_id[id] = steps.size();
          if (ts >= 0) started[id] = ts;
        }
        steps.push_back(std::move(s));
      } else if (type == "user" && bt == "tool_result") {
        auto it = by_id.find(Str(b, "tool_use_id"));
        if (it == by_id.end()) continue;
        json& s = steps[it->second];
        auto err = b.find("is_error");
        s["ok"] = !(err != b.end() && err->is_boolean() && err->get<bool>());
        auto st = started.find(it->first);
        if (st != started.end() && ts >= st->second) s["duration_ms"] = ts - st->second;
      }
    }
  }
  if (!any) return nullptr;
  json out = {{"reported_by", "agent"}, {"format", "claude-stream-json"}, {"complete", init},
              {"steps", std::move(steps)}};
  if (omitted > 0) out["omitted"] = omitted;
  return out;
}

}  // namespace assessq
