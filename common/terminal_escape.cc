// Escaping untrusted text for terminals and log lines (see terminal_escape.h).
#include "common/terminal_escape.h"

#include <string_view>

#include "absl/strings/str_format.h"
#include "common/text_scan.h"

namespace assessq {
namespace {

// Decodes the UTF-8 sequence at s[i]: its length (cp set), 0 if the byte at
// i does not start a valid sequence, or -1 if it could still start one but
// `s` ends first.
int Decode(absl::string_view s, size_t i, uint32_t* cp) {
  return DecodeValidUtf8(std::string_view(s.data(), s.size()), i, cp);
}

bool IsBidiControl(uint32_t cp) {
  return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

void AppendByte(std::string& out, unsigned char b) { out += absl::StrFormat("\\x%02x", b); }

// Escapes s[0..) into `out`; stops before a tail that may still complete
// (an incomplete UTF-8 sequence, or in kText a final CR) unless `final`.
// Returns how many bytes were consumed.
size_t EscapeInto(absl::string_view s, EscapeMode mode, bool final, std::string& out) {
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp = 0;
    int n = Decode(s, i, &cp);
    if (n < 0) {
      if (!final) return i;
      n = 0;  // cut short for good: the lead byte is escaped, then the rest
    }
    if (n == 0) {
      AppendByte(out, static_cast<unsigned char>(s[i]));
      ++i;
      continue;
    }
    if (cp < 0x20) {
      if (mode == EscapeMode::kText && (cp == '\n' || cp == '\t')) {
        out += static_cast<char>(cp);
      } else if (mode == EscapeMode::kText && cp == '\r') {
        if (i + 1 == s.size() && !final) return i;  // a LF may follow
        if (i + 1 < s.size() && s[i + 1] == '\n') out += '\r';
        else out += "\\r";
      } else if (cp == '\n') {
        out += "\\n";
      } else if (cp == '\t') {
        out += "\\t";
      } else if (cp == '\r') {
        out += "\\r";
      } else {
        AppendByte(out, static_cast<unsigned char>(cp));
      }
    } else if (cp == 0x7f) {
      AppendByte(out, 0x7f);
    } else if (IsTerminalControl(cp)) {
      out += absl::StrFormat("\\u%04x", cp);
    } else {
      out.append(s.data() + i, static_cast<size_t>(n));
    }
    i += static_cast<size_t>(n);
  }
  return i;
}

}  // namespace

bool IsTerminalControl(uint32_t cp) {
  return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || IsBidiControl(cp);
}

std::string EscapeForTerminal(absl::string_view s, EscapeMode mode) {
  std::string out;
  out.reserve(s.size());
  EscapeInto(s, mode, /*final=*/true, out);
  return out;
}

std::string TerminalEscaper::Feed(absl::string_view piece) {
  pending_.append(piece.data(), piece.size());
  return Run(false);
}

std::string TerminalEscaper::Finish() { return Run(true); }

std::string TerminalEscaper::Run(bool final) {
  std::string out;
  size_t used = EscapeInto(pending_, mode_, final, out);
  pending_.erase(0, used);
  return out;
}

std::string EscapeJsonForTerminal(absl::string_view json) {
  std::string out;
  out.reserve(json.size());
  for (size_t i = 0; i < json.size();) {
    uint32_t cp = 0;
    int n = Decode(json, i, &cp);
    if (n <= 0) {  // not UTF-8 (the serializer replaced it; kept as given)
      out += json[i++];
      continue;
    }
    // C0 inside strings is already \u00XX; outside them it is JSON's own
    // whitespace, which stays.
    if (cp >= 0x20 && IsTerminalControl(cp)) out += absl::StrFormat("\\u%04x", cp);
    else out.append(json.data() + i, static_cast<size_t>(n));
    i += static_cast<size_t>(n);
  }
  return out;
}

}  // namespace assessq
