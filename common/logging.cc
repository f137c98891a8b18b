#include "common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/terminal_escape.h"
#include "common/utf8.h"

namespace assessq {
namespace {

// The message flag of the daemons' patterns: FormatLogMessage of %v.
class SafeMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  explicit SafeMessageFlag(bool json) : json_(json) {}
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string s =
        FormatLogMessage(absl::string_view(msg.payload.data(), msg.payload.size()), json_);
    dest.append(s.data(), s.data() + s.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return spdlog::details::make_unique<SafeMessageFlag>(json_);
  }

 private:
  bool json_;
};

// The inside of a JSON string for text that is already free of controls.
std::string JsonStringBody(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {  // cannot happen after escaping; belt and braces
      out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string LogSafe(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return EscapeForTerminal(s, EscapeMode::kLine);
  std::string head = TruncateUtf8(s, max_bytes);
  return absl::StrCat(EscapeForTerminal(head, EscapeMode::kLine), "… [",
                      s.size() - head.size(), " more bytes]");
}

std::string FormatLogMessage(absl::string_view msg, bool json) {
  std::string line = LogSafe(msg, kMaxLogMessageBytes);
  return json ? JsonStringBody(line) : line;
}

absl::Status SetupLogging(const std::string& format, const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("assessq");
  spdlog::set_default_logger(logger);
  std::string pattern;
  bool json = false;
  if (format == "json") {
    json = true;
    pattern = R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","thread":%t,"msg":"%*"})";
  } else if (format == "text") {
    pattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %*";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-format must be text or json, not '", format, "'"));
  }
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    return absl::InvalidArgumentError(absl::StrCat("bad --log-level '", level, "'"));
  auto formatter = std::make_unique<spdlog::pattern_formatter>(
      json ? spdlog::pattern_time_type::utc : spdlog::pattern_time_type::local);
  formatter->add_flag<SafeMessageFlag>('*', json).set_pattern(pattern);
  spdlog::set_formatter(std::move(formatter));
  spdlog::set_level(lvl);
  return absl::OkStatus();
}

}  // namespace assessq
