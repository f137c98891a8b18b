// Checks one submitted metadata file before it becomes a job: derives the
// dataset key from the file name (UTF-8, no control characters, never a path)
// and requires the content to be a JSON object with a non-empty string
// "Name" within the size and nesting caps. Pure; unit-tested without I/O.
#pragma once

#include "absl/strings/string_view.h"
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/utf8.h"

namespace assessq {

inline constexpr size_t kMaxMetadataBytes = 1 << 20;  // 1 MiB
inline constexpr int kMaxMetadataDepth = 32;

// "dir/ma’aks.json" -> "ma’aks". Errors name the problem; the caller adds the file.
absl::StatusOr<std::string> DatasetKeyFromSourceName(absl::string_view source_name);

struct ParsedMetadata {
  std::string name;  // the "Name" field
};
absl::StatusOr<ParsedMetadata> ParseMetadata(absl::string_view content);


}  // namespace assessq
