// Tests the pieces of assessctl that stand between hostile input and the
// operator: CSV cells (RFC 4180 quoting and formula neutralisation, text
// only), tables (every cell escaped, one line per row), and reading a
// submitted folder (client/input_files: the pure decision for every kind of
// entry, then the real syscalls on a temp folder with links in and out,
// a fifo, a dangling link and a link to a folder).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "client/cli_context.h"
#include "client/csv.h"
#include "client/input_files.h"

#include "tests/support/process.h"

namespace assessq::cli {
namespace {
namespace fs = std::filesystem;

// ------------------------------------------------------------------ CSV

TEST(CsvCellTest, FormulaStartsAreNeutralisedInTextOnly) {
  struct Case {
    std::string in;
    bool text;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"plain", true, "plain"},
      {"مدونة عربية", true, "مدونة عربية"},
      {"=HYPERLINK(\"http://x\",\"y\")", true, "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""},
      {"=1+1", true, "'=1+1"},
      {"+1", true, "'+1"},
      {"-1", true, "'-1"},
      {"-cmd|' /C calc'!A0", true, "'-cmd|' /C calc'!A0"},
      {"@SUM(A1)", true, "'@SUM(A1)"},
      {"\t=1", true, "'\t=1"},
      {"\r=1", true, "\"'\r=1\""},
      {"a=1", true, "a=1"},  // only the first character counts
      {"", true, ""},
      {"a,b", true, "\"a,b\""},
      {"say \"hi\"", true, "\"say \"\"hi\"\"\""},
      {"line\nbreak", true, "\"line\nbreak\""},
      {" padded ", true, "\" padded \""},
      // What the export writes itself: numbers and JSON stay as they are.
      {"-3", false, "-3"},
      {"-0.5", false, "-0.5"},
      {"+1", false, "+1"},
      {"{\"k\":\"=x\"}", false, "\"{\"\"k\"\":\"\"=x\"\"}\""},
  };
  for (const auto& c : cases)
    EXPECT_EQ(CsvCell(c.in, c.text), c.want) << "'" << c.in << "' text=" << c.text;
  for (const char* s : {"=", "+", "-", "@", "\t", "\r"}) EXPECT_TRUE(StartsLikeFormula(s)) << s;
  for (const char* s : {"", "a", " =", "'=", "1", "{"}) EXPECT_FALSE(StartsLikeFormula(s)) << s;
}

// ------------------------------------------------------------------ tables

TEST(TableTest, EveryCellIsEscapedAndEachRowIsOneLine) {
  Table t({"NAME", "WORKER"});
  t.Add({"evil\n1  fake  row\x1b]0;title\x07", "w\xe2\x80\xae" "1"});
  t.Add({"مدونة", "ok"});
  testing::internal::CaptureStdout();
  t.Print();
  std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_EQ(out.find('\x07'), std::string::npos) << out;
  EXPECT_EQ(out.find("\xe2\x80\xae"), std::string::npos) << out;
  EXPECT_NE(out.find("evil\\n1  fake  row\\x1b]0;title\\x07"), std::string::npos) << out;
  EXPECT_NE(out.find("w\\u202e1"), std::string::npos) << out;
  EXPECT_NE(out.find("مدونة"), std::string::npos) << out;
  EXPECT_EQ(Safe("a\x1b" "b"), "a\\x1bb");
  EXPECT_EQ(SafeText("a\nb\x1b"), "a\nb\\x1b");
}

// ------------------------------------------------------------------ submit

TEST(InputFilesTest, IsWithinComparesWholeComponents) {
  struct Case {
    const char* folder;
    const char* path;
    bool within;
  };
  const Case cases[] = {
      {"/a/b", "/a/b/c.json", true},     {"/a/b", "/a/b/d/c.json", true},
      {"/a/b/", "/a/b/c.json", true},    {"/", "/etc/passwd", true},
      {"/a/b", "/a/bc/c.json", false},   {"/a/b", "/a/c.json", false},
      {"/a/b", "/etc/passwd", false},    {"/a/b/c", "/a/b", false},
  };
  for (const Case& c : cases)
    EXPECT_EQ(IsWithin(c.folder, c.path), c.within) << c.folder << " / " << c.path;
}

TEST(InputFilesTest, DecideInputForEveryKindOfEntry) {
  using K = InputKind;
  const fs::path root = "/data/in";
  struct Case {
    const char* name;
    K entry, target;
    fs::path resolved;
    bool follow;
    absl::StatusCode want;
    const char* says;  // in the message
  };
  const std::vector<Case> cases = {
      {"regular file", K::kRegular, K::kRegular, "/data/in/a.json", false, absl::StatusCode::kOk, ""},
      {"link inside", K::kSymlink, K::kRegular, "/data/in/sub/b.json", false, absl::StatusCode::kOk, ""},
      {"link outside", K::kSymlink, K::kRegular, "/etc/passwd", false,
       absl::StatusCode::kPermissionDenied, "symbolic link to /etc/passwd, outside the submitted folder /data/in"},
      {"link to a sibling folder with the same prefix", K::kSymlink, K::kRegular,
       "/data/in2/a.json", false, absl::StatusCode::kPermissionDenied, "--follow-links"},
      {"link outside, --follow-links", K::kSymlink, K::kRegular, "/etc/passwd", true,
       absl::StatusCode::kOk, ""},
      {"dangling link", K::kSymlink, K::kMissing, "", false, absl::StatusCode::kNotFound,
       "does not exist"},
      {"link to a fifo inside", K::kSymlink, K::kFifo, "/data/in/p", false,
       absl::StatusCode::kFailedPrecondition, "symbolic link to a fifo"},
      {"link to a fifo outside, --follow-links", K::kSymlink, K::kFifo, "/tmp/p", true,
       absl::StatusCode::kFailedPrecondition, "fifo"},
      {"link to a device outside", K::kSymlink, K::kCharDevice, "/dev/zero", false,
       absl::StatusCode::kPermissionDenied, "outside"},
      {"link to a folder", K::kSymlink, K::kDirectory, "/data/in/sub", false,
       absl::StatusCode::kFailedPrecondition, "directory"},
      {"fifo", K::kFifo, K::kFifo, "/data/in/x.json", false,
       absl::StatusCode::kFailedPrecondition, "not a regular file (fifo)"},
      {"socket", K::kSocket, K::kSocket, "/data/in/x.json", true,
       absl::StatusCode::kFailedPrecondition, "socket"},
      {"character device", K::kCharDevice, K::kCharDevice, "/data/in/x.json", false,
       absl::StatusCode::kFailedPrecondition, "character device"},
      {"block device", K::kBlockDevice, K::kBlockDevice, "/data/in/x.json", false,
       absl::StatusCode::kFailedPrecondition, "block device"},
      {"directory", K::kDirectory, K::kDirectory, "/data/in/x.json", false,
       absl::StatusCode::kFailedPrecondition, "directory"},
      {"missing", K::kMissing, K::kMissing, "", false, absl::StatusCode::kNotFound, "no such file"},
  };
  for (const auto& c : cases) {
    InputFacts f{c.entry, c.target, root, c.resolved};
    absl::Status s = DecideInput(f, c.follow);
    EXPECT_EQ(s.code(), c.want) << c.name << ": " << s;
    EXPECT_NE(s.message().find(c.says), absl::string_view::npos) << c.name << ": " << s;
  }
}

class InputFilesIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    in_ = base_ / "in";
    fs::create_directories(in_ / "sub");
    Write(in_ / "a.json", R"({"Name":"a"})");
    Write(in_ / "sub" / "b.json", R"({"Name":"b"})");
    Write(base_ / "secret.json", R"({"Name":"secret"})");
    fs::create_symlink(base_ / "secret.json", in_ / "out.json");
    fs::create_symlink("../secret.json", in_ / "out-relative.json");
    fs::create_symlink(in_ / "sub" / "b.json", in_ / "in.json");
    fs::create_symlink(base_ / "nowhere.json", in_ / "dangling.json");
    ASSERT_EQ(mkfifo((in_ / "pipe.json").c_str(), 0600), 0);
    fs::create_symlink(in_ / "pipe.json", in_ / "to-pipe.json");
  }
  static void Write(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }
  absl::StatusOr<std::string> Read(const std::string& name, bool follow = false) {
    return ReadInputFile(in_.string(), (in_ / name).string(), follow, 1 << 20);
  }
  aqtest::TempDir tmp_{"aq-input"};
  fs::path base_ = tmp_.path(), in_;
};

TEST_F(InputFilesIoTest, ReadsInsideRefusesOutsideAndNeverOpensAFifo) {
  EXPECT_EQ(*Read("a.json"), R"({"Name":"a"})");
  EXPECT_EQ(*Read("sub/b.json"), R"({"Name":"b"})");
  EXPECT_EQ(*Read("in.json"), R"({"Name":"b"})") << "a link inside the folder is read";
  for (const char* out : {"out.json", "out-relative.json"}) {
    auto r = Read(out);
    ASSERT_FALSE(r.ok()) << out;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
    EXPECT_NE(r.status().message().find("secret.json, outside the submitted folder"),
              absl::string_view::npos) << r.status();
    EXPECT_EQ(*Read(out, /*follow=*/true), R"({"Name":"secret"})") << out;
  }
  auto d = Read("dangling.json");
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound) << d.status();
  // Would block forever if it were opened for reading without O_NONBLOCK.
  for (bool follow : {false, true}) {
    auto p = Read("pipe.json", follow);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition) << p.status();
    EXPECT_NE(p.status().message().find("fifo"), absl::string_view::npos) << p.status();
    auto lp = Read("to-pipe.json", follow);
    EXPECT_EQ(lp.status().code(), absl::StatusCode::kFailedPrecondition) << lp.status();
  }
  // Named on its own: its folder is the one it is in.
  auto named = ReadInputFile(in_.string(), (in_ / "out.json").string(), false, 1 << 20);
  EXPECT_FALSE(named.ok());
  // Too big.
  Write(in_ / "big.json", std::string(100, 'x'));
  auto big = ReadInputFile(in_.string(), (in_ / "big.json").string(), false, 10);
  EXPECT_NE(big.status().message().find("larger than 10 bytes"), absl::string_view::npos);
}

}  // namespace
}  // namespace assessq::cli
