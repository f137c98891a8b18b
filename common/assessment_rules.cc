#include "common/assessment_rules.h"

#include <cctype>

#include "common/text_scan.h"

namespace assessq {
namespace {

bool InArabicBlocks(uint32_t cp) {
  return (cp >= 0x0600 && cp <= 0x06FF) || (cp >= 0x0750 && cp <= 0x077F) ||
         (cp >= 0x08A0 && cp <= 0x08FF) || (cp >= 0xFB50 && cp <= 0xFDFF) ||
         (cp >= 0xFE70 && cp <= 0xFEFF);
}

// Letters outside the Arabic blocks: ASCII letters, and any other code point
// not known to be a space, digit, punctuation, symbol, mark or format
// character.
bool IsOtherLetter(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z');
  if (cp <= 0x00BF || cp == 0x00D7 || cp == 0x00F7) return false;  // Latin-1 punctuation
  if (cp >= 0x02B0 && cp <= 0x036F) return false;                   // modifiers, marks
  if (cp >= 0x0483 && cp <= 0x0489) return false;
  if (cp >= 0x1AB0 && cp <= 0x1AFF) return false;
  if (cp >= 0x1DC0 && cp <= 0x1DFF) return false;
  if (cp >= 0x2000 && cp <= 0x2BFF) return false;  // punctuation, symbols, arrows...
  if (cp >= 0x2E00 && cp <= 0x2E7F) return false;
  if (cp >= 0x3000 && cp <= 0x303F) return false;
  if (cp >= 0xD800 && cp <= 0xF8FF) return false;  // surrogates, private use
  if (cp >= 0xFE00 && cp <= 0xFE6F) return false;  // variation selectors, forms
  if ((cp >= 0xFF00 && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) ||
      (cp >= 0xFF5B && cp <= 0xFF65))
    return false;
  if (cp >= 0xFFF0 && cp <= 0xFFFF) return false;
  if (cp >= 0x1F000 && cp <= 0x1FAFF) return false;  // emoji, symbols
  if (cp >= 0xE0000) return false;                    // tags, selectors, private use
  return true;
}

}  // namespace

std::string GradeForScore(int score) {
  if (score < 0 || score > 100) return "";
  if (score >= 80) return "ممتاز";
  if (score >= 60) return "جيد";
  if (score >= 40) return "مقبول";
  return "ضعيف";
}

bool IsArabicLetter(uint32_t cp) {
  if (cp >= 0x0600 && cp <= 0x06FF)
    return (cp >= 0x0620 && cp <= 0x063F) || (cp >= 0x0641 && cp <= 0x064A) ||
           (cp >= 0x066E && cp <= 0x066F) || (cp >= 0x0671 && cp <= 0x06D3) || cp == 0x06D5 ||
           (cp >= 0x06E5 && cp <= 0x06E6) || (cp >= 0x06EE && cp <= 0x06EF) ||
           (cp >= 0x06FA && cp <= 0x06FC) || cp == 0x06FF;
  if (cp >= 0x0750 && cp <= 0x077F) return true;
  if (cp >= 0x08A0 && cp <= 0x08FF) return cp <= 0x08C9;
  if (cp >= 0xFB50 && cp <= 0xFDFF)
    return !(cp >= 0xFBB2 && cp <= 0xFBC2) && !(cp >= 0xFD3E && cp <= 0xFD4F) && cp != 0xFDCF &&
           !(cp >= 0xFDD0 && cp <= 0xFDEF) && !(cp >= 0xFDFC);
  if (cp >= 0xFE70 && cp <= 0xFEFF) return cp <= 0xFEFC && cp != 0xFE75;
  return false;
}

bool IsLetter(uint32_t cp) { return InArabicBlocks(cp) ? IsArabicLetter(cp) : IsOtherLetter(cp); }

double ArabicLetterShare(std::string_view text) {
  size_t arabic = 0, letters = 0;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const int n = DecodeUtf8(text, i, &cp);
    if (n <= 0) return 0.0;
    i += static_cast<size_t>(n);
    if (IsArabicLetter(cp)) ++arabic;
    if (IsLetter(cp)) ++letters;
  }
  return letters == 0 ? 0.0 : static_cast<double>(arabic) / static_cast<double>(letters);
}

bool IsHttpUrlWithHost(std::string_view url) {
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  auto lower_prefix = [&](std::string_view p) {
    if (url.size() < p.size()) return false;
    for (size_t i = 0; i < p.size(); ++i) {
      char c = url[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != p[i]) return false;
    }
    return true;
  };
  std::string_view rest;
  if (lower_prefix("https://")) rest = url.substr(8);
  else if (lower_prefix("http://")) rest = url.substr(7);
  else return false;
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = authority.rfind('@'); at != std::string_view::npos)
    authority = authority.substr(at + 1);
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    for (char c : authority.substr(1, close - 1))
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) return false;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
      if (port.empty()) return false;
    }
    host = authority.substr(0, close + 1);
  } else {
    if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (port.empty()) return false;
    }
    bool has_alnum = false;
    for (char c : host) {
      unsigned char u = static_cast<unsigned char>(c);
      if (std::isalnum(u) || u >= 0x80) has_alnum = true;
      else if (c != '-' && c != '.' && c != '_') return false;
    }
    if (!has_alnum) return false;
  }
  if (port.size() > 5) return false;
  for (char c : port)
    if (c < '0' || c > '9') return false;
  return !host.empty();
}

}  // namespace assessq
