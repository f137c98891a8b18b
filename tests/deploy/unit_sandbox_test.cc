// The shipped deploy/systemd/workerd.service, run rather than linted: workerd
// starts under the unit's settings (tests/deploy/run_as_unit.sh reproduces
// them, as systemd is not PID 1 here) and runs a gateway job whose stand-in
// agent (probe_unit) writes past its output_mb and connects to its gateway
// socket as its non-root user. Under a unit that gives workerd a private
// mount namespace, dockerd never sees the job's output tmpfs (the container
// gets the bare directory, without its cap); under UMask=0077 without
// explicit modes, the agent cannot reach the socket. Either fails this test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/e2e_fixture.h"

#ifndef ASSESSQ_RUN_AS_UNIT
#error "ASSESSQ_RUN_AS_UNIT and ASSESSQ_WORKERD_UNIT must be defined"
#endif

namespace aqe2e {
namespace {

class UnitSandboxTest : public E2eTest {};

std::string Field(const std::string& text, const std::string& key) {
  for (absl::string_view line : absl::StrSplit(text, '\n'))
    if (absl::StartsWith(line, key)) return std::string(line.substr(key.size()));
  return "";
}

std::string Link(const std::string& path) {
  char buf[256];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST_F(UnitSandboxTest, JobsRunUnderTheShippedUnitsSettings) {
  const int output_mb = 4;
  json profile = {
      {"image", kAgentImage},
      {"command", {"/agent", "--input", "{input}", "--output", "{output_file}", "--dataset", "{dataset}"}},
      {"network", {{"mode", "gateway"}, {"allow", {"allowed.test"}}, {"deny", json::array()}}},
      {"limits",
       {{"memory_mb", 128}, {"pids", 64}, {"timeout_s", 60}, {"grace_s", 5}, {"tmp_mb", 8},
        {"home_mb", 8}, {"output_mb", output_mb}}},
  };
  const std::string profile_file = dir_->Join("unit-profile.json");
  WriteFile(profile_file, profile.dump(2));
  WriteMetadata(inputs_, "unit", "probe_unit");
  Workerd& w = AddWorker(
      "unit", {.slots = 1, .wrapper = {"/bin/bash", ASSESSQ_RUN_AS_UNIT, ASSESSQ_WORKERD_UNIT, "--"}});

  // workerd itself: in our (the host's) mount namespace, with the unit's
  // umask, core limit, no_new_privs and capability bounding set.
  const std::string proc = absl::StrCat("/proc/", w.child()->pid());
  EXPECT_EQ(Link(proc + "/ns/mnt"), Link("/proc/self/ns/mnt"))
      << "workerd has a mount namespace of its own: dockerd will not see its job mounts";
  const std::string status = ReadFile(proc + "/status");
  EXPECT_EQ(Field(status, "Umask:\t"), "0077") << status;
  EXPECT_EQ(Field(status, "NoNewPrivs:\t"), "1") << status;
  // CAP_CHOWN (0), CAP_DAC_OVERRIDE (1), CAP_FOWNER (3), CAP_SYS_ADMIN (21).
  EXPECT_EQ(Field(status, "CapBnd:\t"), "000000000020000b") << status;
  const std::string limits = ReadFile(proc + "/limits");
  std::vector<std::string> core = absl::StrSplit(Field(limits, "Max core file size"), ' ', absl::SkipEmpty());
  ASSERT_GE(core.size(), 2u) << limits;
  EXPECT_EQ(core[0], "0") << limits;
  EXPECT_EQ(core[1], "0") << limits;

  const int64_t job = ctl_->Submit({inputs_}, "unit", profile_file,
                                   {"--max-attempts", "agent=1", "--max-attempts", "infra=1"})
                          .at("unit");
  json shown;
  ASSERT_NO_THROW(shown = ctl_->WaitJobFinished(job, 120000)) << Tail(w.Log());
  ASSERT_FALSE(shown["attempts"].empty()) << shown.dump(2);
  const std::string log = shown["attempts"].back().value("log_tail", "");
  EXPECT_EQ(shown.value("state", ""), "succeeded") << shown.dump(2) << "\n" << Tail(w.Log());
  ASSERT_TRUE(absl::StrContains(log, "PROBE-DONE")) << log;

  // The output directory is the job's tmpfs, and its cap holds inside.
  const std::string fs = Field(log, "PROBE output_fs=");
  EXPECT_TRUE(absl::StartsWith(fs, "tmpfs ")) << log;
  const std::string fill = Field(log, "PROBE fill_output=");
  EXPECT_TRUE(absl::StartsWith(fill, "ENOSPC bytes=")) << log;
  int64_t bytes = -1;
  if (absl::StartsWith(fill, "ENOSPC bytes="))
    (void)absl::SimpleAtoi(fill.substr(std::string("ENOSPC bytes=").size()), &bytes);
  EXPECT_GT(bytes, 0) << log;
  EXPECT_LE(bytes, int64_t{output_mb} << 20) << log;
  // The agent (uid 10001) reaches its gateway socket.
  EXPECT_EQ(Field(log, "PROBE gateway_connect="), "ok") << log;
}

}  // namespace
}  // namespace aqe2e
