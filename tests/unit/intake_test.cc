// Tests server/intake: how a submitted file's name becomes a dataset key
// (basename only, ".json" stripped, UTF-8 without control characters or
// backslashes, never "", "." or "..", at most 255 bytes), the UTF-8 validator
// behind it (overlong forms, surrogates, truncated and out-of-range
// sequences), and ParseMetadata's checks on content (a JSON object with a
// non-blank string "Name", at most 1 MiB, nesting at most 32 levels, errors
// that name the byte position). Finally every real file of the masader corpus
// must parse and yield a key.
#include "server/intake.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace assessq {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The key for `name`, or a test failure that shows the status.
std::string KeyOf(const std::string& name) {
  auto k = DatasetKeyFromSourceName(name);
  EXPECT_TRUE(k.ok()) << "name '" << name << "': " << k.status();
  return k.ok() ? *k : std::string("<error>");
}

void ExpectKeyRejected(const std::string& name) {
  auto k = DatasetKeyFromSourceName(name);
  EXPECT_FALSE(k.ok()) << "name '" << name << "' gave key '" << (k.ok() ? *k : "") << "'";
  if (!k.ok()) EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument);
}

// ------------------------------------------------------------ dataset keys

// A file name's key: its basename with one ".json" taken off, every other
// character kept.
TEST(DatasetKeyTest, KeyIsTheBasenameLessOneJsonSuffix) {
  struct Case {
    const char* name;
    const char* key;
  };
  const Case cases[] = {
      // The suffix comes off.
      {"foo.json", "foo"},
      {"arabic_news_2020.json", "arabic_news_2020"},
      // A name without it is kept whole; only one ".json" comes off.
      {"foo", "foo"},
      {"foo.txt", "foo.txt"},
      {"foo.json.json", "foo.json"},
      // The directory is dropped.
      {"dir/x.json", "x"},
      {"a/b/c/x.json", "x"},
      {"/abs/path/x.json", "x"},
      // Non-ASCII names are kept.
      {"ma’aks.json", "ma’aks"},
      {"dir/ma’aks.json", "ma’aks"},
      {"أخبار_عربية.json", "أخبار_عربية"},
      {"مجموعة/بيانات.json", "بيانات"},
      {"emoji_😀.json", "emoji_😀"},
      // Spaces are kept.
      {"my data set.json", "my data set"},
      {" leading.json", " leading"},
  };
  for (const Case& c : cases) EXPECT_EQ(KeyOf(c.name), c.key) << c.name;
}

TEST(DatasetKeyTest, TraversalGivesBasenameNeverAPath) {
  EXPECT_EQ(KeyOf("../evil.json"), "evil");
  EXPECT_EQ(KeyOf("../../../etc/passwd"), "passwd");
  EXPECT_EQ(KeyOf("dir/../../evil.json"), "evil");
  for (const char* name : {"../evil.json", "a/../b.json", "/x/y/z.json", "../../q"}) {
    std::string k = KeyOf(name);
    EXPECT_EQ(k.find('/'), std::string::npos) << name << " -> " << k;
    EXPECT_NE(k, "..");
    EXPECT_NE(k, ".");
  }
}

TEST(DatasetKeyTest, DotAndDotDotAndEmptyAreRejected) {
  ExpectKeyRejected("");
  ExpectKeyRejected(".");
  ExpectKeyRejected("..");
  ExpectKeyRejected("dir/..");
  ExpectKeyRejected("dir/.");
  ExpectKeyRejected("../");
  ExpectKeyRejected("dir/");
  ExpectKeyRejected("/");
  // ".json" stripped from these leaves "." and "..".
  ExpectKeyRejected("..json");
  ExpectKeyRejected("...json");
  ExpectKeyRejected("dir/...json");
}

TEST(DatasetKeyTest, InvalidUtf8IsRejected) {
  ExpectKeyRejected("\xff.json");
  ExpectKeyRejected("abc\xc3.json");      // truncated 2-byte sequence
  ExpectKeyRejected("\xc0\xaf.json");     // overlong '/'
  ExpectKeyRejected("\xe0\x80\xaf.json"); // overlong '/', 3 bytes
  ExpectKeyRejected("\xed\xa0\x80.json"); // surrogate
  ExpectKeyRejected("x\x80y.json");       // lone continuation byte
}

TEST(DatasetKeyTest, ControlCharactersAndBackslashAreRejected) {
  ExpectKeyRejected("a\nb.json");
  ExpectKeyRejected("a\tb.json");
  ExpectKeyRejected("a\rb.json");
  ExpectKeyRejected("\x1b[31mred.json");
  ExpectKeyRejected("del\x7f.json");
  ExpectKeyRejected(std::string("nul\0byte.json", 13));
  ExpectKeyRejected("..\\evil.json");
  ExpectKeyRejected("dir\\x.json");
  auto k = DatasetKeyFromSourceName("a\nb.json");
  ASSERT_FALSE(k.ok());
  EXPECT_THAT(std::string(k.status().message()), HasSubstr("control character"));
}

// intake.h promises keys with "no control characters", but only C0 controls
// and DEL are checked (intake.cc, DatasetKeyFromSourceName's byte loop): the
// C1 controls U+0080..U+009F (Unicode category Cc, e.g. U+009B, the 8-bit
// CSI that starts terminal escapes, and U+0085 NEL, a line break) pass.
// Regression test for that bug (fixed).
TEST(DatasetKeyTest, C1ControlCharactersAreRejected) {
  ExpectKeyRejected("a\xc2\x85" "b.json");         // U+0085 NEL
  ExpectKeyRejected("\xc2\x9b" "31mred.json");     // U+009B CSI
  ExpectKeyRejected("x\xc2\x80.json");             // U+0080
}

TEST(DatasetKeyTest, OverLongNamesAreRejected) {
  EXPECT_EQ(KeyOf(std::string(255, 'a') + ".json"), std::string(255, 'a'));
  EXPECT_EQ(KeyOf(std::string(255, 'a')), std::string(255, 'a'));
  ExpectKeyRejected(std::string(256, 'a') + ".json");
  ExpectKeyRejected(std::string(256, 'a'));
  ExpectKeyRejected(std::string(100000, 'a') + ".json");
  // The limit is in bytes: 128 two-byte letters are 256 bytes.
  std::string arabic;
  for (int i = 0; i < 128; ++i) arabic += "ب";
  ExpectKeyRejected(arabic + ".json");
  // A long directory part does not count against the key.
  EXPECT_EQ(KeyOf(std::string(1000, 'd') + "/x.json"), "x");
}

// -------------------------------------------------------------- IsValidUtf8

TEST(IsValidUtf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8(std::string("nul\0inside", 10)));
  EXPECT_TRUE(IsValidUtf8("\xc2\x80"));          // U+0080, smallest 2-byte
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9"));       // 2-byte at the very end
  EXPECT_TRUE(IsValidUtf8("\xdf\xbf"));          // U+07FF
  EXPECT_TRUE(IsValidUtf8("\xe0\xa0\x80"));      // U+0800, smallest 3-byte
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));      // €
  EXPECT_TRUE(IsValidUtf8("\xed\x9f\xbf"));      // U+D7FF, just below surrogates
  EXPECT_TRUE(IsValidUtf8("\xee\x80\x80"));      // U+E000, just above
  EXPECT_TRUE(IsValidUtf8("\xef\xbf\xbf"));      // U+FFFF
  EXPECT_TRUE(IsValidUtf8("\xf0\x90\x80\x80"));  // U+10000, smallest 4-byte
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));  // 😀
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF, the last code point
  EXPECT_TRUE(IsValidUtf8("ma’aks مرحبا 😀 x"));
}

TEST(IsValidUtf8Test, RejectsOverlongEncodings) {
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));          // NUL in 2 bytes
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // '/' in 2 bytes
  EXPECT_FALSE(IsValidUtf8("\xc1\xbf"));          // U+007F in 2 bytes
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\x80"));      // NUL in 3 bytes
  EXPECT_FALSE(IsValidUtf8("\xe0\x9f\xbf"));      // U+07FF in 3 bytes
  EXPECT_FALSE(IsValidUtf8("\xf0\x80\x80\x80"));  // NUL in 4 bytes
  EXPECT_FALSE(IsValidUtf8("\xf0\x8f\xbf\xbf"));  // U+FFFF in 4 bytes
}

TEST(IsValidUtf8Test, RejectsSurrogates) {
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));  // U+D800
  EXPECT_FALSE(IsValidUtf8("\xed\xaf\xbf"));  // U+DBFF
  EXPECT_FALSE(IsValidUtf8("\xed\xb0\x80"));  // U+DC00
  EXPECT_FALSE(IsValidUtf8("\xed\xbf\xbf"));  // U+DFFF
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\xbd\xed\xb8\x80"));  // CESU-8 pair for 😀
}

TEST(IsValidUtf8Test, RejectsTruncatedSequences) {
  EXPECT_FALSE(IsValidUtf8("\xc3"));
  EXPECT_FALSE(IsValidUtf8("abc\xc3"));
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));
  EXPECT_FALSE(IsValidUtf8("\xe2"));
  EXPECT_FALSE(IsValidUtf8("\xf0\x9f\x98"));
  EXPECT_FALSE(IsValidUtf8("\xf0\x9f"));
  EXPECT_FALSE(IsValidUtf8("\xf0"));
  // Cut short by the next character rather than by the end.
  EXPECT_FALSE(IsValidUtf8("\xe2\x82x"));
  EXPECT_FALSE(IsValidUtf8("\xf0\x9f\x98x"));
  EXPECT_FALSE(IsValidUtf8("\xc3\xc3\xa9"));
}

TEST(IsValidUtf8Test, RejectsInvalidBytesAndOutOfRange) {
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
  EXPECT_FALSE(IsValidUtf8("a\xbf" "b"));
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(IsValidUtf8("\xf7\xbf\xbf\xbf"));  // U+1FFFFF
  EXPECT_FALSE(IsValidUtf8("\xf8\x88\x80\x80\x80"));  // 5-byte form
  EXPECT_FALSE(IsValidUtf8("\xfc\x84\x80\x80\x80\x80"));  // 6-byte form
  EXPECT_FALSE(IsValidUtf8("\xfe"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
}

// ------------------------------------------------------------ ParseMetadata

absl::Status ParseError(const std::string& content) {
  auto r = ParseMetadata(content);
  EXPECT_FALSE(r.ok()) << "accepted: " << content.substr(0, 200);
  if (r.ok()) return absl::OkStatus();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  return r.status();
}

std::string Nested(int depth, const std::string& inner = "0") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

TEST(ParseMetadataTest, ValidObjectGivesName) {
  auto r = ParseMetadata(R"({"Name": "Arabic News", "Year": 2020, "Tags": ["a", {"b": 1}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->name, "Arabic News");
}

TEST(ParseMetadataTest, NonAsciiNameAndLeadingWhitespaceAreKept) {
  auto r = ParseMetadata("\n  {\"Name\": \"  مدونة ma’aks \\u00e9\"}\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->name, "  مدونة ma’aks é");
}

TEST(ParseMetadataTest, MissingNameIsRejected) {
  EXPECT_THAT(std::string(ParseError(R"({"Year": 2020})").message()), HasSubstr("Name"));
  EXPECT_THAT(std::string(ParseError("{}").message()), HasSubstr("missing"));
  // Field names are case-sensitive.
  EXPECT_THAT(std::string(ParseError(R"({"name": "x"})").message()), HasSubstr("missing"));
  // A "Name" deeper down does not count.
  EXPECT_THAT(std::string(ParseError(R"({"inner": {"Name": "x"}})").message()),
              HasSubstr("missing"));
}

TEST(ParseMetadataTest, NonStringNameIsRejected) {
  for (const char* c : {R"({"Name": 5})", R"({"Name": null})", R"({"Name": true})",
                        R"({"Name": ["x"]})", R"({"Name": {"x": 1}})"}) {
    EXPECT_THAT(std::string(ParseError(c).message()), HasSubstr("not a string")) << c;
  }
}

TEST(ParseMetadataTest, BlankNameIsRejected) {
  for (const char* c : {R"({"Name": ""})", R"({"Name": "   "})", R"({"Name": "\t\r\n "})"}) {
    EXPECT_THAT(std::string(ParseError(c).message()), HasSubstr("empty")) << c;
  }
}

TEST(ParseMetadataTest, NonObjectTopLevelIsRejected) {
  for (const char* c : {R"([{"Name": "x"}])", R"("Name")", "42", "null", "true", "[]"}) {
    EXPECT_THAT(std::string(ParseError(c).message()), HasSubstr("not a JSON object")) << c;
  }
}

TEST(ParseMetadataTest, MalformedJsonNamesTheBytePosition) {
  // '@' is the 10th byte; nlohmann reports 1-based positions.
  absl::Status s = ParseError(R"({"Name": @})");
  EXPECT_THAT(std::string(s.message()), HasSubstr("invalid JSON at byte 10"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("parse error"));
  // Trailing comma, unterminated string, trailing garbage, empty input.
  EXPECT_THAT(std::string(ParseError(R"({"Name": "x",})").message()),
              HasSubstr("invalid JSON at byte 14"));
  EXPECT_THAT(std::string(ParseError(R"({"Name": "x)").message()),
              HasSubstr("invalid JSON at byte"));
  EXPECT_THAT(std::string(ParseError(R"({"Name": "x"} extra)").message()),
              HasSubstr("invalid JSON at byte 15"));
  EXPECT_THAT(std::string(ParseError("").message()), HasSubstr("invalid JSON at byte"));
  EXPECT_THAT(std::string(ParseError("   ").message()), HasSubstr("invalid JSON at byte"));
}

// The error message travels to the client in SubmitItem.error, a proto3
// string, which must be valid UTF-8. For a bare (unquoted) non-ASCII value,
// nlohmann stops after the first byte of the character and quotes it as
// "last read: '\xD8'"; intake.cc (ParseMetadata, the re-parse for the error
// position) copies e.what() into the status unchanged, so the message holds a
// lone UTF-8 lead byte. Regression test for that bug (fixed).
TEST(ParseMetadataTest, ErrorMessageForBareNonAsciiValueIsValidUtf8) {
  // An unquoted Arabic value, and typographic quotes instead of '"'.
  for (const char* c : {"{\"Name\": عربي}", "{\"Name\": “Arabic News”}"}) {
    absl::Status s = ParseError(c);
    EXPECT_THAT(std::string(s.message()), HasSubstr("invalid JSON at byte"));
    EXPECT_TRUE(IsValidUtf8(s.message())) << s.message();
  }
}

TEST(ParseMetadataTest, InvalidUtf8ContentIsRejected) {
  EXPECT_THAT(std::string(ParseError("{\"Name\": \"caf\xc3\"}").message()), HasSubstr("UTF-8"));
  EXPECT_THAT(std::string(ParseError("{\"Name\": \"\xed\xa0\x80\"}").message()),
              HasSubstr("UTF-8"));
}

TEST(ParseMetadataTest, SizeLimitIsOneMebibyte) {
  const std::string head = R"({"Name": "big", "pad": ")";
  const std::string tail = R"("})";
  std::string exact = head + std::string(kMaxMetadataBytes - head.size() - tail.size(), 'x') + tail;
  ASSERT_EQ(exact.size(), kMaxMetadataBytes);
  auto ok = ParseMetadata(exact);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->name, "big");

  std::string over = head + std::string(kMaxMetadataBytes - head.size() - tail.size() + 1, 'x') + tail;
  ASSERT_EQ(over.size(), kMaxMetadataBytes + 1);
  absl::Status s = ParseError(over);
  EXPECT_THAT(std::string(s.message()), HasSubstr("1048577 bytes"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("limit"));
}

TEST(ParseMetadataTest, HostileNestingIsRefusedWithoutCrashing) {
  EXPECT_THAT(std::string(ParseError(std::string(100000, '[')).message()),
              HasSubstr("nests deeper than 32"));
  EXPECT_THAT(std::string(ParseError(std::string(100000, '{')).message()),
              HasSubstr("nests deeper than 32"));
  EXPECT_THAT(std::string(ParseError(Nested(100000)).message()), HasSubstr("nests deeper"));
  std::string deep_in_object = R"({"Name": "x", "a": )" + Nested(5000) + "}";
  EXPECT_THAT(std::string(ParseError(deep_in_object).message()), HasSubstr("nests deeper"));
}

TEST(ParseMetadataTest, NestingLimitIsThirtyTwoLevels) {
  // The object itself is level 1.
  std::string at_limit = R"({"Name": "x", "a": )" + Nested(kMaxMetadataDepth - 1) + "}";
  auto ok = ParseMetadata(at_limit);
  EXPECT_TRUE(ok.ok()) << ok.status();
  std::string over = R"({"Name": "x", "a": )" + Nested(kMaxMetadataDepth) + "}";
  EXPECT_THAT(std::string(ParseError(over).message()), HasSubstr("nests deeper"));
  // Siblings do not add up: many shallow arrays in a row are fine.
  std::string wide = R"({"Name": "x", "a": [)";
  for (int i = 0; i < 1000; ++i) wide += (i ? ",[[1]]" : "[[1]]");
  wide += "]}";
  EXPECT_TRUE(ParseMetadata(wide).ok());
}

TEST(ParseMetadataTest, BracketsInsideStringsDoNotCountAsNesting) {
  std::string brackets(50000, '[');
  auto r = ParseMetadata(R"({"Name": ")" + brackets + R"(", "b": "{{{{]]]]"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->name, brackets);
  // An escaped quote does not end the string...
  auto esc = ParseMetadata(R"({"Name": "a\")" + brackets + R"("})");
  ASSERT_TRUE(esc.ok()) << esc.status();
  EXPECT_EQ(esc->name, "a\"" + brackets);
  // ...but a string ending in an escaped backslash does end, so real
  // brackets after it count.
  std::string after = R"({"Name": "a\\", "x": )" + Nested(40) + "}";
  EXPECT_THAT(std::string(ParseError(after).message()), HasSubstr("nests deeper"));
}

// ------------------------------------------------------- the real corpus

TEST(MasaderCorpusTest, EveryRealFileParsesAndHasAKey) {
  namespace fs = std::filesystem;
  const fs::path dir = MASADER_DIR;
  ASSERT_TRUE(fs::is_directory(dir)) << "masader corpus missing at " << dir;
  int files = 0;
  std::set<std::string> keys;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    const std::string name = entry.path().filename().string();
    std::ifstream in(entry.path(), std::ios::binary);
    ASSERT_TRUE(in) << name;
    std::stringstream ss;
    ss << in.rdbuf();
    auto md = ParseMetadata(ss.str());
    EXPECT_TRUE(md.ok()) << name << ": " << md.status();
    if (md.ok()) EXPECT_FALSE(md->name.empty()) << name;
    auto key = DatasetKeyFromSourceName("datasets/" + name);
    EXPECT_TRUE(key.ok()) << name << ": " << key.status();
    if (key.ok()) {
      EXPECT_EQ(*key + ".json", name);
      EXPECT_EQ(key->find('/'), std::string::npos);
      keys.insert(*key);
    }
  }
  EXPECT_EQ(files, 1152);
  EXPECT_EQ(keys.size(), 1152u);
}

}  // namespace
}  // namespace assessq
