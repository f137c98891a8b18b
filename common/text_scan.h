// Byte-level scans shared by the coordinator (validation, the UTF-8 helpers,
// the terminal escaper) and the offline assessor: decoding one UTF-8
// sequence, leniently or strictly, and ASCII white space. C++ standard
// library only: the offline assessor links this into a fully static program
// without absl. Pure; no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace assessq {

// Decodes the UTF-8 sequence that starts at s[i] (i < s.size()) into *cp and
// returns its length in bytes (1 to 4); returns 0 when s[i] is not a lead
// byte or a continuation byte is wrong, and -1 when the bytes so far are
// right but `s` ends first (a caller reading a stream may wait for more).
// Only the form is checked: overlong forms, surrogates and values past
// U+10FFFF are decoded as they stand.
int DecodeUtf8(std::string_view s, size_t i, uint32_t* cp);

// The same for valid UTF-8 only: 0 also for a lead byte that can never start
// a valid sequence (C0, C1, F5..FF), an overlong form, a surrogate, or a
// value past U+10FFFF.
int DecodeValidUtf8(std::string_view s, size_t i, uint32_t* cp);

// ' ', \t, \n, \r, \f, \v.
inline bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace assessq
