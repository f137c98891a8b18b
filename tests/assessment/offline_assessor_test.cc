// The offline-assessor program (assessor/offline_assessor.cc) as built:
// arguments, exit codes (0 written, 2 bad usage or input naming the field, 1
// output not writable), the written assessment passes the validator, and the
// binary is fully static (no ELF interpreter), as a FROM scratch image needs.
#include <elf.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "server/validation.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

struct Outcome {
  int exit_code = -1;
  std::string err;
};

class OfflineAssessorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "assessor-test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  Outcome Exec(const std::vector<std::string>& args) {
    Outcome r;
    const fs::path err = dir_ / "stderr";
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 2);
      std::vector<char*> argv;
      std::string bin = OFFLINE_ASSESSOR;
      argv.push_back(bin.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.err = ReadFile(err);
    return r;
  }

  fs::path dir_;
};

const assessq::AssessmentValidator& V() {
  static const assessq::AssessmentValidator* v = [] {
    auto created = assessq::AssessmentValidator::Create(ReadFile(ASSESSMENT_SCHEMA));
    EXPECT_TRUE(created.ok()) << created.status();
    return new assessq::AssessmentValidator(*created);
  }();
  return *v;
}

TEST_F(OfflineAssessorTest, AssessesARealFileWithANonAsciiName) {
  const fs::path input = fs::path(MASADER_DIR) / "ma’aks.json";
  ASSERT_TRUE(fs::exists(input)) << input;
  const fs::path output = dir_ / "result.json";
  Outcome r = Exec({"--input", input.string(), "--output", output.string(), "--dataset", "ma’aks"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const std::string result = ReadFile(output);
  ASSERT_FALSE(result.empty());
  EXPECT_THAT(V().Validate(result, ReadFile(input)), IsEmpty());
  // --flag=value works too.
  Outcome again = Exec({"--input=" + input.string(), "--output=" + (dir_ / "b.json").string()});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(ReadFile(dir_ / "b.json"), result);
}

TEST_F(OfflineAssessorTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Exec({}).exit_code, 2);
  Outcome r = Exec({"--input", "x.json"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--output is required"));
  r = Exec({"--input", "x.json", "--output", "y.json", "--verbose"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown argument \"--verbose\""));
  r = Exec({"--input"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--input needs a value"));
  EXPECT_EQ(Exec({"--help"}).exit_code, 0);
}

TEST_F(OfflineAssessorTest, BadInputExitsTwoNamingTheField) {
  const fs::path output = dir_ / "out.json";
  Outcome r = Exec({"--input", (dir_ / "missing.json").string(), "--output", output.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("cannot read the input"));

  WriteFile(dir_ / "broken.json", "{\"Name\": \"x\",");
  r = Exec({"--input", (dir_ / "broken.json").string(), "--output", output.string(), "--dataset",
            "broken"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("broken ("));
  EXPECT_THAT(r.err, HasSubstr("invalid JSON at byte"));

  WriteFile(dir_ / "volume.json", R"({"Name": "x", "Volume": "many"})");
  r = Exec({"--input", (dir_ / "volume.json").string(), "--output", output.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("field \"Volume\": must be a number"));

  WriteFile(dir_ / "noname.json", R"({"License": "MIT License"})");
  r = Exec({"--input", (dir_ / "noname.json").string(), "--output", output.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("field \"Name\": missing"));

  WriteFile(dir_ / "huge.json", std::string((1 << 20) + 10, ' '));
  r = Exec({"--input", (dir_ / "huge.json").string(), "--output", output.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("larger than"));
  EXPECT_FALSE(fs::exists(output));
}

TEST_F(OfflineAssessorTest, UnwritableOutputExitsOne) {
  WriteFile(dir_ / "in.json", R"({"Name": "x"})");
  Outcome r = Exec({"--input", (dir_ / "in.json").string(), "--output",
                (dir_ / "no-such-dir" / "out.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot write"));
}

TEST(OfflineAssessorBinaryTest, IsFullyStatic) {
  const std::string elf = ReadFile(OFFLINE_ASSESSOR);
  ASSERT_GE(elf.size(), sizeof(Elf64_Ehdr));
  Elf64_Ehdr eh;
  std::memcpy(&eh, elf.data(), sizeof eh);
  ASSERT_EQ(std::memcmp(eh.e_ident, ELFMAG, SELFMAG), 0);
  ASSERT_EQ(eh.e_ident[EI_CLASS], ELFCLASS64);
  bool interp = false, dynamic = false;
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    const size_t off = eh.e_phoff + static_cast<size_t>(i) * eh.e_phentsize;
    ASSERT_LE(off + sizeof ph, elf.size());
    std::memcpy(&ph, elf.data() + off, sizeof ph);
    if (ph.p_type == PT_INTERP) interp = true;
    if (ph.p_type == PT_DYNAMIC) dynamic = true;
  }
  EXPECT_FALSE(interp) << "the binary needs a dynamic loader";
  EXPECT_FALSE(dynamic) << "the binary has a dynamic section";
}

}  // namespace
