#include "common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace assessq {

absl::Status SetupLogging(const std::string& format, const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("assessq");
  spdlog::set_default_logger(logger);
  if (format == "json") {
    // Message text is escaped by spdlog's %v only minimally; callers keep
    // messages free of raw quotes where it matters (ids, classes, codes).
    spdlog::set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","thread":%t,"msg":"%v"})",
        spdlog::pattern_time_type::utc);
  } else if (format == "text") {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-format must be text or json, not '", format, "'"));
  }
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    return absl::InvalidArgumentError(absl::StrCat("bad --log-level '", level, "'"));
  spdlog::set_level(lvl);
  return absl::OkStatus();
}

}  // namespace assessq
