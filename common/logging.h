// spdlog set-up shared by the daemons: human-readable lines by default, JSON
// lines with --log-format json. Job lines carry "[job=ID]" in the message.
#pragma once

#include <fmt/format.h>

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

absl::Status SetupLogging(const std::string& format, const std::string& level);

}  // namespace assessq
