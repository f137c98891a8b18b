// The rules of the assessment contract (schemas/assessment.schema.json) that
// both sides apply, in one copy: the coordinator checks every result with
// them (server/validation.cc) and the offline assessor writes results that
// pass them (assessor/rules.cc). C++ standard library only: the offline
// assessor links this into a fully static program without absl. Pure; no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace assessq {

// The grade of a score's band: 80-100 ممتاز, 60-79 جيد, 40-59 مقبول, 0-39 ضعيف
// ("" outside 0..100).
std::string GradeForScore(int score);

// A letter of the Arabic blocks (U+0600-06FF, U+0750-077F, U+08A0-08FF,
// U+FB50-FDFF, U+FE70-FEFF), without the digits, punctuation, tatweel, marks,
// format characters and symbols inside those blocks.
bool IsArabicLetter(uint32_t cp);

// A letter of any script: an Arabic letter (above), an ASCII letter, or any
// other code point outside the Arabic blocks that is not a digit, space,
// punctuation, symbol, combining mark or format character (a conservative
// classification: unknown scripts count as letters).
bool IsLetter(uint32_t cp);

// Share (0..1) of the letters (IsLetter) of UTF-8 `text` that are Arabic
// letters (IsArabicLetter). Returns 0 when there are no letters (or the text
// is not valid UTF-8).
double ArabicLetterShare(std::string_view text);

// http:// or https:// (any case), a non-empty host, an optional numeric port,
// no whitespace or control characters.
bool IsHttpUrlWithHost(std::string_view url);

}  // namespace assessq
