#include "common/utf8.h"

#include <cstdint>
#include <string_view>

#include "common/text_scan.h"

namespace assessq {
namespace {

// Length of the valid sequence starting at s[i], or 0 if invalid.
size_t SeqLen(absl::string_view s, size_t i) {
  uint32_t cp;
  const int n = DecodeValidUtf8(std::string_view(s.data(), s.size()), i, &cp);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xc0) == 0x80; }

}  // namespace

bool IsValidUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = SeqLen(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string SanitizeUtf8(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = SeqLen(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

std::string TruncateUtf8(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  size_t end = max_bytes;
  while (end > 0 && IsContinuation(s[end])) --end;
  return std::string(s.substr(0, end));
}

std::string TailUtf8(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  size_t start = s.size() - max_bytes;
  while (start < s.size() && IsContinuation(s[start])) ++start;
  return std::string(s.substr(start));
}

}  // namespace assessq
