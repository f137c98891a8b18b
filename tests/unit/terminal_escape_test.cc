// Tests common/terminal_escape and the daemons' log-line formatting
// (common/logging): every control a terminal acts on (C0, DEL, C1, ESC
// sequences for title, clear-screen and OSC 52 clipboard writes, bidi
// overrides and isolates, bytes that are not UTF-8) comes out visibly
// escaped, in one-line and multi-line modes, in one piece or streamed in
// pieces split anywhere; Arabic and other text passes unchanged; JSON keeps
// its exact values; log lines are bounded.
#include "common/terminal_escape.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/logging.h"

namespace assessq {
namespace {

const std::string kArabic = "مدونة عربية للاختبار";

struct Case {
  const char* name;
  std::string in;
  std::string line;  // EscapeMode::kLine
  std::string text;  // EscapeMode::kText
};

std::vector<Case> Cases() {
  return {
      {"plain ASCII", "hello, world", "hello, world", "hello, world"},
      {"Arabic", kArabic, kArabic, kArabic},
      {"backslash is not escaped", "C:\\x1b", "C:\\x1b", "C:\\x1b"},
      {"newline", "a\nb", "a\\nb", "a\nb"},
      {"tab", "a\tb", "a\\tb", "a\tb"},
      {"CR LF kept as a pair in text", "a\r\nb", "a\\r\\nb", "a\r\nb"},
      {"lone CR", "safe\rEVIL", "safe\\rEVIL", "safe\\rEVIL"},
      {"CR at the end", "x\r", "x\\r", "x\\r"},
      {"NUL", std::string("a\0b", 3), "a\\x00b", "a\\x00b"},
      {"BEL and BS", "a\a\bb", "a\\x07\\x08b", "a\\x07\\x08b"},
      {"clear screen", "\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H", "\\x1b[2J\\x1b[H"},
      {"title change", "\x1b]0;owned\x07", "\\x1b]0;owned\\x07", "\\x1b]0;owned\\x07"},
      {"OSC 52 clipboard write", "\x1b]52;c;cm0gLXJmIH4K\x1b\\",
       "\\x1b]52;c;cm0gLXJmIH4K\\x1b\\", "\\x1b]52;c;cm0gLXJmIH4K\\x1b\\"},
      {"DEL", "a\x7f" "b", "a\\x7fb", "a\\x7fb"},
      {"C1 CSI as a code point", "a\xc2\x9b" "2J", "a\\u009b2J", "a\\u009b2J"},
      {"C1 NEL and the range ends", "\xc2\x80\xc2\x85\xc2\x9f", "\\u0080\\u0085\\u009f",
       "\\u0080\\u0085\\u009f"},
      {"U+00A0 is printable", "\xc2\xa0", "\xc2\xa0", "\xc2\xa0"},
      {"raw C1 byte (not UTF-8)", "a\x9b" "2J", "a\\x9b2J", "a\\x9b2J"},
      {"invalid UTF-8", "\xff\xfe", "\\xff\\xfe", "\\xff\\xfe"},
      {"overlong ESC", "\xc0\x9b", "\\xc0\\x9b", "\\xc0\\x9b"},
      {"surrogate", "\xed\xa0\x80", "\\xed\\xa0\\x80", "\\xed\\xa0\\x80"},
      {"truncated sequence", "ab\xd9", "ab\\xd9", "ab\\xd9"},
      {"RLO", "abc\xe2\x80\xaetxt.exe", "abc\\u202etxt.exe", "abc\\u202etxt.exe"},
      {"LRE..RLO range", "\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad",
       "\\u202a\\u202b\\u202c\\u202d", "\\u202a\\u202b\\u202c\\u202d"},
      {"isolates", "\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9",
       "\\u2066\\u2067\\u2068\\u2069", "\\u2066\\u2067\\u2068\\u2069"},
      {"neighbours of the bidi ranges pass", "\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa",
       "\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa",
       "\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa"},
      {"emoji (4 bytes)", "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
  };
}

// No byte a terminal would act on is left.
void ExpectInert(const std::string& out, const std::string& what, bool text) {
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(out[i]);
    bool allowed_ws = text && (c == '\n' || c == '\t' || (c == '\r' && i + 1 < out.size() &&
                                                          out[i + 1] == '\n'));
    EXPECT_TRUE(c >= 0x20 || allowed_ws) << what << ": raw control at " << i;
    EXPECT_NE(c, 0x7f) << what;
  }
  for (const char* bad : {"\xc2\x9b", "\xe2\x80\xae", "\xe2\x81\xa6"})
    EXPECT_EQ(out.find(bad), std::string::npos) << what;
}

TEST(TerminalEscapeTest, EveryCaseInBothModes) {
  for (const auto& c : Cases()) {
    EXPECT_EQ(EscapeForTerminal(c.in, EscapeMode::kLine), c.line) << c.name;
    EXPECT_EQ(EscapeForTerminal(c.in, EscapeMode::kText), c.text) << c.name;
    ExpectInert(EscapeForTerminal(c.in, EscapeMode::kLine), c.name, false);
    ExpectInert(EscapeForTerminal(c.in, EscapeMode::kText), c.name, true);
  }
}

TEST(TerminalEscapeTest, StreamedInPiecesSplitAnywhereEscapesAsOnePiece) {
  std::string all;
  for (const auto& c : Cases()) all += c.in + "|";
  for (EscapeMode mode : {EscapeMode::kLine, EscapeMode::kText}) {
    const std::string want = EscapeForTerminal(all, mode);
    for (size_t step : {1, 2, 3, 5, 7}) {
      TerminalEscaper e(mode);
      std::string got;
      for (size_t i = 0; i < all.size(); i += step) got += e.Feed(all.substr(i, step));
      got += e.Finish();
      EXPECT_EQ(got, want) << "pieces of " << step;
    }
    // A CR LF or an Arabic letter split across two pieces.
    TerminalEscaper e(mode);
    std::string got = e.Feed("a\r");
    got += e.Feed("\nb\xd9");
    got += e.Feed("\x85");
    got += e.Finish();
    EXPECT_EQ(got, EscapeForTerminal("a\r\nb\xd9\x85", mode));
  }
  TerminalEscaper e(EscapeMode::kText);
  EXPECT_EQ(e.Feed("x\r"), "x");  // held back: a LF may follow
  EXPECT_EQ(e.Finish(), "\\r");
  EXPECT_EQ(e.Finish(), "");
}

TEST(TerminalEscapeTest, JsonKeepsItsExactValues) {
  nlohmann::json j = {{"name", kArabic + "\x1b]0;t\x07\x7f\xc2\x9b\xe2\x80\xae\xe2\x81\xa9"},
                      {"n", -3},
                      {"nested", {{"k\x1b", "v\xc2\x85"}}}};
  for (int indent : {-1, 2}) {
    std::string dumped = j.dump(indent, ' ', false);
    std::string out = EscapeJsonForTerminal(dumped);
    ExpectInert(out, "json", true);
    EXPECT_NE(out.find("\\u001b"), std::string::npos) << out;
    EXPECT_NE(out.find("\\u007f"), std::string::npos) << out;
    EXPECT_NE(out.find("\\u009b"), std::string::npos) << out;
    EXPECT_NE(out.find("\\u202e"), std::string::npos) << out;
    EXPECT_NE(out.find("\\u2069"), std::string::npos) << out;
    EXPECT_NE(out.find(kArabic), std::string::npos) << "Arabic stays readable";
    EXPECT_EQ(nlohmann::json::parse(out), j) << out;
  }
  EXPECT_EQ(EscapeJsonForTerminal("{\n  \"a\": 1\n}"), "{\n  \"a\": 1\n}");
}

TEST(LoggingTest, LinesAreEscapedOnOneLineAndBounded) {
  EXPECT_EQ(FormatLogMessage("worker \x1b]0;x\x07 said\nFAKE line", false),
            "worker \\x1b]0;x\\x07 said\\nFAKE line");
  // JSON: the escaped text, as a valid JSON string.
  std::string body = FormatLogMessage("a \"quoted\" \\ \x1b[2J \xe2\x80\xae", true);
  auto parsed = nlohmann::json::parse("\"" + body + "\"");
  EXPECT_EQ(parsed.get<std::string>(), "a \"quoted\" \\ \\x1b[2J \\u202e");
  // Bounded, never cutting a character in half, saying what was cut.
  std::string big;
  while (big.size() < 3 * kMaxLogMessageBytes) big += kArabic;
  std::string line = FormatLogMessage(big, false);
  EXPECT_LE(line.size(), kMaxLogMessageBytes + 40);
  EXPECT_NE(line.find("more bytes]"), std::string::npos);
  EXPECT_EQ(line.find("\\x"), std::string::npos) << "no character cut in half";
  EXPECT_EQ(LogSafe("abcdef", 3), "abc… [3 more bytes]");
  EXPECT_EQ(LogSafe("ab\x1b", 3), "ab\\x1b");
}

}  // namespace
}  // namespace assessq
