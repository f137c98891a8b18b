// Tests worker/job_fs on real files in a temporary directory: a file-mode
// credential that is a model key file under another path (a hard link or a
// symbolic link to it) is refused before anything is created, as are a
// credential that is not a regular file or not mode 0600; and a gateway
// job's socket directory is mounted read-only while only /output is
// writable; each refusal carries its failure class (input or infra).
// Creating a job's files mounts tmpfs, so those cases need root (as the
// tests run in CI); without it they fail, never skip.
#include "worker/job_fs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/vocabulary.h"
#include "tests/support/process.h"

namespace assessq {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class JobFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = base_ + "/anthropic.key";
    std::ofstream(key_) << "sk-ant-real-key";
    chmod(key_.c_str(), 0600);
    spec_.user = "10001:10001";
    spec_.output_file = "assessment.json";
    spec_.model_key_files = {key_};
    spec_.credential_name = "claude";
  }
  aqtest::TempDir tmp_{"job_fs_test"};
  std::string base_ = tmp_.path(), key_;
  JobSpec spec_;
};

TEST_F(JobFsTest, CredentialThatIsAModelKeyIsRefused) {
  std::string other = base_ + "/other.json";
  std::ofstream(other) << "{}";
  chmod(other.c_str(), 0644);
  std::string fifo = base_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  struct Case {
    const char* name;
    std::function<std::string()> make;
    const char* why;
  } cases[] = {
      {"the key itself", [&] { return key_; }, "model key file"},
      {"hard link", [&] {
         fs::create_hard_link(key_, base_ + "/hard");
         return base_ + "/hard";
       }, "model key file"},
      {"symbolic link", [&] {
         fs::create_symlink(key_, base_ + "/sym");
         return base_ + "/sym";
       }, "model key file"},
      {"path spelling", [&] { return base_ + "/./anthropic.key"; }, "model key file"},
      {"world-readable", [&] { return other; }, "mode 0600"},
      {"fifo", [&] { return fifo; }, "not a regular file"},
      {"directory", [&] { return base_; }, "not a regular file"},
      {"missing", [&] { return base_ + "/missing"; }, "cannot read its file"},
  };
  for (const auto& c : cases) {
    JobSpec s = spec_;
    s.credential_file = c.make();
    auto j = JobFs::Create(base_ + "/jobs", "1-2", s, "{}");
    ASSERT_FALSE(j.ok()) << c.name;
    EXPECT_EQ(j.status().code(), absl::StatusCode::kFailedPrecondition) << c.name;
    EXPECT_THAT(j.status().message(), HasSubstr("credential 'claude'")) << c.name;
    EXPECT_THAT(j.status().message(), HasSubstr(c.why)) << c.name;
    // Refused before any job file exists.
    EXPECT_FALSE(fs::exists(base_ + "/jobs/1-2")) << c.name;
  }
}

TEST_F(JobFsTest, GatewaySocketDirIsMountedReadOnly) {
  // The test suite runs as root (scripts/test.sh); without it this fails, never skips.
  ASSERT_EQ(geteuid(), 0u) << "JobFs mounts tmpfs: run the tests as root";
  std::string bridge = base_ + "/netbridge";
  std::ofstream(bridge) << "#!/bin/sh\n";
  chmod(bridge.c_str(), 0755);
  JobSpec s = spec_;
  s.network.mode = "gateway";
  auto j = JobFs::Create(base_ + "/jobs", "1-2", s, "{}", bridge);
  ASSERT_TRUE(j.ok()) << j.status();
  bool saw_net = false;
  for (const auto& m : (*j)->mounts()) {
    if (m.target == kNetDir) {
      saw_net = true;
      EXPECT_TRUE(m.read_only) << "the gateway socket directory is mounted writable";
    }
    EXPECT_EQ(m.read_only, m.target != kOutputDir) << m.target;
  }
  EXPECT_TRUE(saw_net);
  EXPECT_EQ((*j)->net_socket(), (*j)->root() + "/net/proxy.sock");
}

// The failure class travels on the status (common/vocabulary.h), not in its
// code: both refusals are FAILED_PRECONDITION, but a refused credential is
// the profile's (input) and a missing netbridge is this worker's (infra,
// retried elsewhere).
TEST_F(JobFsTest, RefusalsCarryTheirFailureClass) {
  ASSERT_EQ(geteuid(), 0u) << "JobFs mounts tmpfs: run the tests as root";
  JobSpec cred = spec_;
  cred.credential_file = base_ + "/missing";
  auto c = JobFs::Create(base_ + "/jobs", "1-2", cred, "{}");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(FailureClassOf(c.status()), v1::FAILURE_CLASS_INPUT) << c.status();
  JobSpec gw = spec_;
  gw.network.mode = "gateway";
  auto n = JobFs::Create(base_ + "/jobs", "3-4", gw, "{}", base_ + "/no-netbridge");
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(FailureClassOf(n.status()), v1::FAILURE_CLASS_INFRA) << n.status();
}

}  // namespace
}  // namespace assessq
