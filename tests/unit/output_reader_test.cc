// Tests worker/output_reader's ReadOutputFile against each hostile file an
// agent can leave in its output directory, on real files in a temporary
// directory: a regular file is read; a missing one is NotFound; a symbolic
// link (inside or out, to a file or a directory), a hard link, a FIFO
// (without blocking), a directory, a socket, a device node and a file that
// crosses a mount (a bind mount on the name) are PermissionDenied; a file
// over the cap is OutOfRange; a name that is not a plain name is
// InvalidArgument; and an output directory that is itself a link is never
// followed. The device node and the mount need root (as the tests run in
// CI); without it those two cases are skipped, saying so.
#include "worker/output_reader.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/process.h"

namespace assessq {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class OutputReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = base_ + "/out";
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  }
  void TearDown() override {
    for (const auto& m : mounted_) umount2(m.c_str(), MNT_DETACH);
  }
  std::string Write(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary) << data;
    return path;
  }
  aqtest::TempDir tmp_{"output_reader_test"};
  std::string base_ = tmp_.path(), dir_;
  std::vector<std::string> mounted_;
};

TEST_F(OutputReaderTest, RegularFileIsRead) {
  Write(dir_ + "/a.json", "{\"ok\":1}");
  auto r = ReadOutputFile(dir_, "a.json", 1024);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "{\"ok\":1}");
  Write(dir_ + "/empty.json", "");
  EXPECT_EQ(*ReadOutputFile(dir_, "empty.json", 1024), "");
}

TEST_F(OutputReaderTest, MissingIsNotFound) {
  auto r = ReadOutputFile(dir_, "a.json", 1024);
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
}

TEST_F(OutputReaderTest, SizeCap) {
  Write(dir_ + "/a.json", std::string(1024, 'x'));
  EXPECT_TRUE(ReadOutputFile(dir_, "a.json", 1024).ok());
  auto r = ReadOutputFile(dir_, "a.json", 1023);
  EXPECT_TRUE(absl::IsOutOfRange(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("the cap is 1023"));
  // Sparse: huge apparent size, nothing read.
  int fd = open((dir_ + "/sparse.json").c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, off_t{1} << 40), 0);
  close(fd);
  EXPECT_TRUE(absl::IsOutOfRange(ReadOutputFile(dir_, "sparse.json", 1 << 20).status()));
}

TEST_F(OutputReaderTest, HostileFilesAreRefused) {
  Write(base_ + "/secret", "host secret");
  Write(dir_ + "/inside.json", "{}");
  struct Case {
    const char* name;
    std::function<void(const std::string& path)> make;
    const char* why;
  } cases[] = {
      {"symlink out", [&](const std::string& p) { fs::create_symlink(base_ + "/secret", p); },
       "symbolic link"},
      {"symlink in", [&](const std::string& p) { fs::create_symlink("inside.json", p); },
       "symbolic link"},
      {"symlink proc", [&](const std::string& p) { fs::create_symlink("/proc/self/environ", p); },
       "symbolic link"},
      {"dangling symlink", [&](const std::string& p) { fs::create_symlink("/nonexistent", p); },
       "symbolic link"},
      {"hard link", [&](const std::string& p) { fs::create_hard_link(base_ + "/secret", p); },
       "2 links"},
      {"fifo", [&](const std::string& p) { ASSERT_EQ(mkfifo(p.c_str(), 0600), 0); },
       "not a regular file"},
      {"directory", [&](const std::string& p) { fs::create_directory(p); }, "not a regular file"},
      {"socket", [&](const std::string& p) {
         int s = socket(AF_UNIX, SOCK_STREAM, 0);
         sockaddr_un a{};
         a.sun_family = AF_UNIX;
         std::strncpy(a.sun_path, p.c_str(), sizeof a.sun_path - 1);
         ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
         close(s);
       }, "cannot open output"},
  };
  for (const auto& c : cases) {
    std::string path = dir_ + "/" + c.name;
    std::replace(path.begin() + static_cast<long>(dir_.size()) + 1, path.end(), ' ', '_');
    c.make(path);
    std::string name = path.substr(dir_.size() + 1);
    auto start = std::chrono::steady_clock::now();
    auto r = ReadOutputFile(dir_, name, 1 << 20);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << c.name;
    ASSERT_FALSE(r.ok()) << c.name << " was read: " << *r;
    EXPECT_TRUE(absl::IsPermissionDenied(r.status())) << c.name << ": " << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr(c.why)) << c.name;
  }
}

TEST_F(OutputReaderTest, DeviceNodeIsRefused) {
  std::string p = dir_ + "/dev.json";
  if (mknod(p.c_str(), S_IFCHR | 0600, makedev(1, 3)) != 0)  // /dev/null's numbers
    FAIL() << "mknod (the tests run as root): " << std::strerror(errno);
  auto r = ReadOutputFile(dir_, "dev.json", 1 << 20);
  EXPECT_TRUE(absl::IsPermissionDenied(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("not a regular file"));
}

TEST_F(OutputReaderTest, FileCrossingAMountIsRefused) {
  std::string src = Write(base_ + "/elsewhere.json", "{\"from\":\"another filesystem\"}");
  std::string p = Write(dir_ + "/a.json", "");
  if (mount(src.c_str(), p.c_str(), nullptr, MS_BIND, nullptr) != 0)
    FAIL() << "bind mount (the tests run as root): " << std::strerror(errno);
  mounted_.push_back(p);
  auto r = ReadOutputFile(dir_, "a.json", 1 << 20);
  EXPECT_TRUE(absl::IsPermissionDenied(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("crosses a mount"));
}

TEST_F(OutputReaderTest, NamesMustBePlain) {
  Write(base_ + "/secret", "host secret");
  for (const char* name : {"", ".", "..", "../secret", "a/b", "/etc/passwd", "./a.json"}) {
    auto r = ReadOutputFile(dir_, name, 1 << 20);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << name << ": " << r.status();
  }
}

TEST_F(OutputReaderTest, OutputDirThatIsALinkIsNotFollowed) {
  Write(base_ + "/a.json", "{}");
  fs::create_symlink(base_, base_ + "/linkdir");
  auto r = ReadOutputFile(base_ + "/linkdir", "a.json", 1 << 20);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(absl::IsNotFound(r.status()));
}

}  // namespace
}  // namespace assessq
