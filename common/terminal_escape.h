// Text that an agent, a metadata file or a worker wrote, made safe to print on
// an operator's terminal or in a daemon's log line: every character a
// terminal would act on instead of showing is written out visibly. Escaped:
// C0 controls (ESC starts title changes, clear-screen, OSC 52 clipboard
// writes; BEL, BS, CR can hide what came before), DEL, C1 controls U+0080..
// U+009F (some terminals act on them after UTF-8 decoding: U+009B is CSI),
// bidi embeddings, overrides and isolates U+202A..U+202E, U+2066..U+2069
// (they reorder what the operator sees), and bytes that are not UTF-8. The
// rest, Arabic and every other script, passes unchanged; so does `\`, so
// the output is for reading, not for decoding back. Pure; no I/O.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace assessq {

enum class EscapeMode {
  // One line (table cells, names, paths, log lines): \n, \t and \r are
  // escaped too, so a value can never start a fake row or line.
  kLine,
  // Multi-line text (an agent's output, validation errors): \n and \t and
  // CR LF pairs are kept; a lone \r (which would let later text overwrite
  // the line) is escaped.
  kText,
};

// True for the code points this module escapes (C0 and the \n, \t
// exceptions aside).
bool IsTerminalControl(uint32_t cp);

// The whole of `s`, escaped: C0 and DEL as \xNN (\n \t \r by name in
// kLine), C1, bidi controls as \uXXXX, each byte of an invalid UTF-8
// sequence as \xNN.
std::string EscapeForTerminal(absl::string_view s, EscapeMode mode = EscapeMode::kLine);

// The same for text that arrives in pieces (`logs -f`): a UTF-8 character
// or a CR LF pair split between two pieces is escaped as if it had come in
// one. Finish() returns what is still held back (at most 3 bytes).
class TerminalEscaper {
 public:
  explicit TerminalEscaper(EscapeMode mode) : mode_(mode) {}
  std::string Feed(absl::string_view piece);
  std::string Finish();

 private:
  std::string Run(bool final);
  EscapeMode mode_;
  std::string pending_;
};

// Serialized JSON (nlohmann's dump, which writes C0 as \u00XX and replaced
// invalid UTF-8 already) with DEL, C1 and bidi controls also written as
// \uXXXX escapes. They can only occur inside strings, so the result is valid
// JSON that parses to exactly the same value.
std::string EscapeJsonForTerminal(absl::string_view json);

}  // namespace assessq
