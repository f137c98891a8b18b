#include "worker/agent_done.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace assessq {

absl::StatusOr<DoneWhen> ParseDoneWhen(absl::string_view text) {
  if (text == "exit") return DoneWhen::kExit;
  if (text == "claude_result") return DoneWhen::kClaudeResult;
  return absl::InvalidArgumentError(absl::StrCat(
      "profile.done_when '", text, "' is not supported (exit or claude_result)"));
}

bool IsClaudeFinalResult(absl::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // Cheap tests first: the object must start the line.
  size_t i = line.find_first_not_of(" \t");
  if (i == absl::string_view::npos || line[i] != '{') return false;
  if (line.find("\"result\"") == absl::string_view::npos) return false;
  nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  auto str = [&](const char* k) -> std::string {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto is_error = j.find("is_error");
  return str("type") == "result" && str("subtype") == "success" && is_error != j.end() &&
         is_error->is_boolean() && !is_error->get<bool>() && !str("session_id").empty();
}

void AgentDoneDetector::Feed(absl::string_view chunk, int64_t skipped) {
  if (!active()) return;
  if (skipped > 0) {
    // A gap: the line it falls in is unknown, and so is whether anything
    // came after a result.
    partial_.clear();
    dropping_ = true;
    done_ = false;
  }
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    absl::string_view piece = chunk.substr(0, nl);
    if (!dropping_) {
      if (partial_.size() + piece.size() > kMaxLine) {
        partial_.clear();
        dropping_ = true;
      } else {
        partial_.append(piece.data(), piece.size());
      }
    }
    if (nl == absl::string_view::npos) {
      // Bytes of an unfinished line are output after the last line too.
      if (!piece.empty()) done_ = false;
      return;
    }
    if (dropping_) {
      done_ = false;
      dropping_ = false;
    } else {
      Line(partial_);
    }
    partial_.clear();
    chunk.remove_prefix(nl + 1);
  }
}

void AgentDoneDetector::Line(absl::string_view line) {
  if (line.find_first_not_of(" \t\r") == absl::string_view::npos) return;  // blank lines change nothing
  done_ = IsClaudeFinalResult(line);
}

bool OutputFilePresent(const std::string& dir, const std::string& name) {
  struct stat st;
  std::string path = dir + "/" + name;
  return lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

}  // namespace assessq
