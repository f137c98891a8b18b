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
#include "tests/support/process.h"
#include "tests/support/schema_validator.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string ReadFile(const fs::path& path) { return aqtest::ReadFile(path.string()); }
void WriteFile(const fs::path& path, const std::string& content) {
  aqtest::WriteFile(path.string(), content);
}

struct Outcome {
  int exit_code = -1;
  std::string err;
};

class OfflineAssessorTest : public ::testing::Test {
 protected:
  // The program run to completion (60 s at most), its stderr kept.
  Outcome Exec(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {OFFLINE_ASSESSOR};
    argv.insert(argv.end(), args.begin(), args.end());
    aqtest::RunResult r = aqtest::Run(argv, 60000);
    return {r.exit_code, r.err};
  }

  aqtest::TempDir tmp_{"assessor-test"};
  fs::path dir_ = tmp_.path();
};

const assessq::AssessmentValidator& V() { return aqtest::SchemaValidator(); }

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
