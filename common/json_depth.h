// How deep a JSON text nests, counted on the raw bytes before any parser
// sees it, so hostile input is refused cheaply: the deepest nesting of
// brackets ({ and [) outside strings, stopping early once past `limit` (so a
// result above `limit` means "too deep"; at or below it, it is exact).
// Pure; C++ standard library only, header-only: used by the metadata intake,
// the assessment validation and the fully static offline assessor.
#pragma once

#include <algorithm>
#include <limits>
#include <string_view>

namespace assessq {

inline int JsonDepth(std::string_view text, int limit = std::numeric_limits<int>::max()) {
  int depth = 0, max = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max = std::max(max, ++depth);
      if (max > limit) return max;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max;
}

}  // namespace assessq
