#include "absl/strings/string_view.h"
#include "server/intake.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/json_depth.h"
#include "common/utf8.h"

namespace assessq {

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
  for (size_t i = 0; i < base.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(base[i]);
    // C0, DEL, and C1 (U+0080..U+009F, encoded C2 80..C2 9F).
    bool c1 = c == 0xc2 && i + 1 < base.size() &&
              static_cast<unsigned char>(base[i + 1]) >= 0x80 &&
              static_cast<unsigned char>(base[i + 1]) <= 0x9f;
    if (c < 0x20 || c == 0x7f || c == '\\' || c1)
      return absl::InvalidArgumentError("file name contains a control character or backslash");
  }
  return std::string(base);
}

absl::StatusOr<ParsedMetadata> ParseMetadata(absl::string_view content) {
  if (content.size() > kMaxMetadataBytes)
    return absl::InvalidArgumentError(absl::StrCat(
        "metadata is ", content.size(), " bytes; the limit is ", kMaxMetadataBytes));
  if (!IsValidUtf8(content)) return absl::InvalidArgumentError("metadata is not valid UTF-8");
  if (JsonDepth(std::string_view(content.data(), content.size()), kMaxMetadataDepth) >
      kMaxMetadataDepth)
    return absl::InvalidArgumentError(
        absl::StrCat("metadata nests deeper than ", kMaxMetadataDepth, " levels"));
  auto j = nlohmann::json::parse(content.begin(), content.end(), nullptr, false);
  if (j.is_discarded()) {
    // Re-parse for the position of the error only on the failure path.
    try {
      (void)nlohmann::json::parse(content.begin(), content.end());
    } catch (const nlohmann::json::parse_error& e) {
      std::string what = e.what();
      if (auto p = what.find("parse error"); p != std::string::npos) what = what.substr(p);
      // nlohmann quotes the bytes it last read, which may be half a character.
      return absl::InvalidArgumentError(
          absl::StrCat("invalid JSON at byte ", e.byte, ": ", SanitizeUtf8(what)));
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
