#include "common/text_scan.h"

namespace assessq {

int DecodeUtf8(std::string_view s, size_t i, uint32_t* cp) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  int extra;
  uint32_t v;
  if ((c & 0xe0) == 0xc0) {
    extra = 1;
    v = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    extra = 2;
    v = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    extra = 3;
    v = c & 0x07;
  } else {
    return 0;
  }
  for (int k = 1; k <= extra; ++k) {
    if (i + k >= s.size()) return -1;
    const unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    v = (v << 6) | (cc & 0x3f);
  }
  *cp = v;
  return extra + 1;
}

int DecodeValidUtf8(std::string_view s, size_t i, uint32_t* cp) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c == 0xc0 || c == 0xc1 || c >= 0xf5) return 0;
  uint32_t v;
  const int n = DecodeUtf8(s, i, &v);
  if (n <= 0) return n;
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return n;
}

}  // namespace assessq
