// CSV cells with formula neutralisation (see csv.h).
#include "client/csv.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace assessq::cli {

bool StartsLikeFormula(absl::string_view s) {
  if (s.empty()) return false;
  switch (s[0]) {
    case '=': case '+': case '-': case '@': case '\t': case '\r':
      return true;
    default:
      return false;
  }
}

std::string CsvCell(absl::string_view value, bool text) {
  std::string s = text && StartsLikeFormula(value) ? absl::StrCat("'", value) : std::string(value);
  bool quote = s.find_first_of(",\"\r\n") != std::string::npos ||
               (!s.empty() && (s[0] == ' ' || s.back() == ' '));
  if (!quote) return s;
  return absl::StrCat("\"", absl::StrReplaceAll(s, {{"\"", "\"\""}}), "\"");
}

}  // namespace assessq::cli
