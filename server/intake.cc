#include "absl/strings/string_view.h"
#include "server/intake.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace assessq {

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= n) return false;
    for (int k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

absl::StatusOr<std::string> DatasetKeyFromSourceName(absl::string_view source_name) {
  absl::string_view base = source_name;
  if (auto slash = base.find_last_of('/'); slash != absl::string_view::npos)
    base = base.substr(slash + 1);
  if (base.size() > 5 && base.substr(base.size() - 5) == ".json")
    base = base.substr(0, base.size() - 5);
  if (base.empty() || base == "." || base == "..")
    return absl::InvalidArgumentError("file name gives an empty dataset key");
  if (base.size() > 255)
    return absl::InvalidArgumentError("file name longer than 255 bytes");
  if (!IsValidUtf8(base))
    return absl::InvalidArgumentError("file name is not valid UTF-8");
  for (unsigned char c : base)
    if (c < 0x20 || c == 0x7f || c == '\\')
      return absl::InvalidArgumentError("file name contains a control character or backslash");
  return std::string(base);
}

namespace {
// Deepest bracket nesting outside strings; checked before parsing so hostile
// input is refused cheaply.
int MaxDepth(absl::string_view text) {
  int depth = 0, max = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') max = std::max(max, ++depth);
    else if (c == '}' || c == ']') --depth;
  }
  return max;
}
}  // namespace

absl::StatusOr<ParsedMetadata> ParseMetadata(absl::string_view content) {
  if (content.size() > kMaxMetadataBytes)
    return absl::InvalidArgumentError(absl::StrCat(
        "metadata is ", content.size(), " bytes; the limit is ", kMaxMetadataBytes));
  if (!IsValidUtf8(content)) return absl::InvalidArgumentError("metadata is not valid UTF-8");
  if (MaxDepth(content) > kMaxMetadataDepth)
    return absl::InvalidArgumentError(
        absl::StrCat("metadata nests deeper than ", kMaxMetadataDepth, " levels"));
  auto j = nlohmann::json::parse(content.begin(), content.end(), nullptr, false);
  if (j.is_discarded()) {
    // Re-parse for the position of the error only on the failure path.
    try {
      (void)nlohmann::json::parse(content.begin(), content.end());
    } catch (const nlohmann::json::parse_error& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid JSON at byte ", e.byte, ": ",
                       absl::string_view(e.what()).substr(
                           absl::string_view(e.what()).find("parse error"))));
    }
    return absl::InvalidArgumentError("invalid JSON");
  }
  if (!j.is_object()) return absl::InvalidArgumentError("metadata is not a JSON object");
  auto it = j.find("Name");
  if (it == j.end()) return absl::InvalidArgumentError("field \"Name\" is missing");
  if (!it->is_string()) return absl::InvalidArgumentError("field \"Name\" is not a string");
  std::string name = it->get<std::string>();
  if (name.find_first_not_of(" \t\r\n") == std::string::npos)
    return absl::InvalidArgumentError("field \"Name\" is empty");
  return ParsedMetadata{name};
}

}  // namespace assessq
