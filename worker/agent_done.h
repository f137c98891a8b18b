// When is an agent done? For Claude Code (`done_when: "claude_result"`): once
// it has printed its final `result` event (stream-json or json output) as the
// last line of its stdout. The worker then stops the container after
// `limits.done_grace_s` instead of waiting for processes the agent left
// running in the background. Pure: the detector only reads the stdout bytes it
// is given; OutputFilePresent is the one file-system check beside it.
//
// How robust it must be: stopping early only ends a job the agent could end
// anyway (by exiting), and the result is still read and validated as after a
// normal exit, so a forged result line gains the agent nothing. What must not
// happen is an accidental stop while the agent works, so a line counts only
// if it is a whole stdout line that parses as one JSON object of type
// "result", subtype "success", is_error false, with a session_id; and only
// while it is the last line (any later stdout cancels it). Tool output inside
// Claude Code's events is a JSON string, so a result-looking text printed by a
// tool never forms such a line; stderr is never read.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace assessq {

enum class DoneWhen {
  kExit,          // the agent's exit (default)
  kClaudeResult,  // Claude Code's final result event on stdout
};

// "exit" or "claude_result"; anything else names the field.
absl::StatusOr<DoneWhen> ParseDoneWhen(absl::string_view text);

// Whether one stdout line (without its newline) is Claude Code's final,
// successful result event.
bool IsClaudeFinalResult(absl::string_view line);

class AgentDoneDetector {
 public:
  static constexpr size_t kMaxLine = 1 << 20;  // longer lines are never a result
  explicit AgentDoneDetector(DoneWhen when) : when_(when) {}
  // The next stdout bytes; `skipped` bytes before them were never seen (the
  // line they cut into is dropped).
  void Feed(absl::string_view chunk, int64_t skipped = 0);
  // True while the last complete line of stdout is a final result.
  bool done() const { return done_; }
  bool active() const { return when_ != DoneWhen::kExit; }

 private:
  void Line(absl::string_view line);
  DoneWhen when_;
  std::string partial_;
  bool dropping_ = false;  // inside a line cut by a gap or too long
  bool done_ = false;
};

// The output file is in place: a non-empty regular file (not a link) named
// `name` in `dir`. (I/O: lstat only.)
bool OutputFilePresent(const std::string& dir, const std::string& name);

}  // namespace assessq
