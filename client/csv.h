// One CSV cell for `assessctl export --format csv`: RFC 4180 quoting, and
// (OWASP "CSV injection") a text value that a spreadsheet would run as a
// formula, one starting with = + - @ tab or CR, gets a leading single quote:
// `=HYPERLINK("http://x","y")` is exported as `'=HYPERLINK(...)`. Only text
// is neutralised: numbers the export writes as numbers (a negative score,
// -3) stay numbers; the string "-3" becomes '-3. Pure; unit-tested.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace assessq::cli {

// Whether a spreadsheet may take text starting like `s` for a formula.
bool StartsLikeFormula(absl::string_view s);

// `s` as one CSV cell; `text`: it is a string value (or a header), not a
// number, boolean or JSON the export wrote itself.
std::string CsvCell(absl::string_view s, bool text);

}  // namespace assessq::cli
