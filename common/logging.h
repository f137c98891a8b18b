// spdlog set-up shared by the daemons: human-readable lines by default, JSON
// lines with --log-format json. Job lines carry "[job=ID]" in the message.
// Every message is bounded (kMaxLogMessageBytes) and escaped for terminals
// (common/terminal_escape.h, one line: a newline or ESC sequence in a
// worker's report, a metadata name or an agent's output can neither forge a
// log line nor act on the terminal of whoever reads the log); JSON lines are
// valid JSON. LogSafe() bounds one untrusted field of a line further.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

// Lets spdlog/fmt print absl::string_view (a distinct type in Debian's Abseil).
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename Ctx>
  auto format(absl::string_view s, Ctx& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};

namespace assessq {

// The most of one log message that is written; the rest is counted.
inline constexpr size_t kMaxLogMessageBytes = 8192;

absl::Status SetupLogging(const std::string& format, const std::string& level);

// One log message as SetupLogging writes it: the first kMaxLogMessageBytes
// (never half a character) escaped on one line, then "… [N more bytes]"
// if cut; with `json`, also escaped as the inside of a JSON string.
std::string FormatLogMessage(absl::string_view msg, bool json);

// An untrusted value for a log line: its first `max_bytes` (never half a
// character) escaped on one line, then "… [N more bytes]" if cut.
std::string LogSafe(absl::string_view s, size_t max_bytes = 256);

}  // namespace assessq
