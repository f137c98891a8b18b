// Tests worker/hardening's VerifyInspect against doctored inspect documents,
// without Docker: an inspect built from the create request BuildCreateBody
// sends (what a daemon that applied everything reports) passes; then each
// hardening setting removed or changed (capabilities, privileged,
// no-new-privileges, unconfined profiles, read-only root, tmpfs, pids,
// memory, swap, CPU, ulimits, IPC/PID/user namespaces, init, network,
// runtime, devices, binds, user, mounts, a writable gateway socket
// directory) is refused with a line naming that setting.
#include "worker/hardening.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

#include "absl/strings/str_join.h"

namespace assessq {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

JobSpec Spec() {
  JobSpec s;
  s.image = "assessq-test:1";
  s.argv = {"/agent"};
  s.user = "10001:10001";
  s.output_file = "assessment.json";
  s.network.mode = "gateway";
  return s;
}

std::vector<BindMount> Mounts() {
  return {{"/state/jobs/1-2/input/metadata.json", kInputPath, true},
          {"/state/jobs/1-2/out", kOutputDir, false},
          {"/state/jobs/1-2/net", kNetDir, true},
          {"/usr/lib/assessq/assessq-netbridge", kNetbridgePath, true}};
}

// What dockerd reports for a container created from BuildCreateBody.
json InspectOf(const JobSpec& s, const std::vector<BindMount>& mounts) {
  json body = BuildCreateBody(s, mounts, {{"assessq.job", "1"}});
  json in;
  in["HostConfig"] = body["HostConfig"];
  in["HostConfig"].erase("Mounts");
  in["HostConfig"]["Binds"] = nullptr;
  in["Config"] = {{"User", body["User"]}, {"Image", body["Image"]}};
  in["Mounts"] = json::array();
  for (const auto& m : mounts)
    in["Mounts"].push_back({{"Type", "bind"},
                            {"Source", m.source},
                            {"Destination", m.target},
                            {"Mode", ""},
                            {"RW", !m.read_only},
                            {"Propagation", "rprivate"}});
  return in;
}

std::string Joined(const std::vector<std::string>& v) { return absl::StrJoin(v, " | "); }

TEST(VerifyInspectTest, WhatWasAskedForPasses) {
  JobSpec s = Spec();
  EXPECT_TRUE(VerifyInspect(InspectOf(s, Mounts()), s, Mounts()).empty())
      << Joined(VerifyInspect(InspectOf(s, Mounts()), s, Mounts()));
  s.runtime = "runsc";
  EXPECT_TRUE(VerifyInspect(InspectOf(s, Mounts()), s, Mounts()).empty());
}

TEST(VerifyInspectTest, EachSettingMissingOrChangedIsRefusedByName) {
  struct Case {
    const char* name;
    std::function<void(json&)> doctor;
    const char* setting;  // the line naming it
  };
  std::vector<Case> cases = {
      {"CapDrop missing", [](json& j) { j["HostConfig"].erase("CapDrop"); }, "CapDrop"},
      {"CapDrop partial", [](json& j) { j["HostConfig"]["CapDrop"] = {"NET_RAW"}; }, "CapDrop"},
      {"CapAdd", [](json& j) { j["HostConfig"]["CapAdd"] = {"SYS_ADMIN"}; }, "CapAdd"},
      {"Privileged", [](json& j) { j["HostConfig"]["Privileged"] = true; }, "Privileged"},
      {"Privileged missing", [](json& j) { j["HostConfig"].erase("Privileged"); }, "Privileged"},
      {"no-new-privileges missing", [](json& j) { j["HostConfig"]["SecurityOpt"] = json::array(); },
       "no-new-privileges"},
      {"no-new-privileges false",
       [](json& j) { j["HostConfig"]["SecurityOpt"] = {"no-new-privileges:false"}; },
       "no-new-privileges"},
      {"SecurityOpt null", [](json& j) { j["HostConfig"]["SecurityOpt"] = nullptr; },
       "no-new-privileges"},
      {"seccomp unconfined",
       [](json& j) { j["HostConfig"]["SecurityOpt"].push_back("seccomp=unconfined"); },
       "SecurityOpt seccomp"},
      {"apparmor unconfined",
       [](json& j) { j["HostConfig"]["SecurityOpt"].push_back("apparmor=unconfined"); },
       "SecurityOpt apparmor"},
      {"ReadonlyRootfs", [](json& j) { j["HostConfig"]["ReadonlyRootfs"] = false; }, "ReadonlyRootfs"},
      {"ReadonlyRootfs missing", [](json& j) { j["HostConfig"].erase("ReadonlyRootfs"); },
       "ReadonlyRootfs"},
      {"Tmpfs missing", [](json& j) { j["HostConfig"].erase("Tmpfs"); }, "Tmpfs"},
      {"Tmpfs bigger",
       [](json& j) {
         j["HostConfig"]["Tmpfs"]["/tmp"] = "rw,exec,nosuid,nodev,size=99999m,mode=0700,uid=10001,gid=10001";
       },
       "Tmpfs"},
      {"Tmpfs suid",
       [](json& j) { j["HostConfig"]["Tmpfs"]["/tmp"] = "rw,exec,size=256m,mode=0700,uid=10001,gid=10001"; },
       "Tmpfs"},
      {"Tmpfs extra", [](json& j) { j["HostConfig"]["Tmpfs"]["/run"] = "rw,size=1m"; }, "Tmpfs"},
      {"PidsLimit", [](json& j) { j["HostConfig"]["PidsLimit"] = 0; }, "PidsLimit"},
      {"PidsLimit unlimited", [](json& j) { j["HostConfig"]["PidsLimit"] = -1; }, "PidsLimit"},
      {"PidsLimit missing", [](json& j) { j["HostConfig"].erase("PidsLimit"); }, "PidsLimit"},
      {"Memory", [](json& j) { j["HostConfig"]["Memory"] = 0; }, "Memory"},
      {"MemorySwap", [](json& j) { j["HostConfig"]["MemorySwap"] = -1; }, "MemorySwap"},
      {"NanoCpus", [](json& j) { j["HostConfig"]["NanoCpus"] = 0; }, "NanoCpus"},
      {"nofile", [](json& j) { j["HostConfig"]["Ulimits"][0]["Hard"] = 1048576; }, "Ulimits nofile"},
      {"core", [](json& j) { j["HostConfig"]["Ulimits"][1]["Soft"] = -1; }, "Ulimits core"},
      {"Ulimits missing", [](json& j) { j["HostConfig"]["Ulimits"] = nullptr; }, "Ulimits nofile"},
      {"core missing", [](json& j) { j["HostConfig"]["Ulimits"].erase(1); }, "Ulimits core"},
      {"IpcMode host", [](json& j) { j["HostConfig"]["IpcMode"] = "host"; }, "IpcMode"},
      {"IpcMode shareable", [](json& j) { j["HostConfig"]["IpcMode"] = "shareable"; }, "IpcMode"},
      {"PidMode", [](json& j) { j["HostConfig"]["PidMode"] = "host"; }, "PidMode"},
      {"PidMode container", [](json& j) { j["HostConfig"]["PidMode"] = "container:abc"; }, "PidMode"},
      {"UsernsMode", [](json& j) { j["HostConfig"]["UsernsMode"] = "host"; }, "UsernsMode"},
      {"Init", [](json& j) { j["HostConfig"]["Init"] = false; }, "Init"},
      {"Init missing", [](json& j) { j["HostConfig"]["Init"] = nullptr; }, "Init"},
      {"NetworkMode bridge", [](json& j) { j["HostConfig"]["NetworkMode"] = "bridge"; }, "NetworkMode"},
      {"NetworkMode host", [](json& j) { j["HostConfig"]["NetworkMode"] = "host"; }, "NetworkMode"},
      {"Devices", [](json& j) {
         j["HostConfig"]["Devices"] = {{{"PathOnHost", "/dev/kvm"}, {"PathInContainer", "/dev/kvm"}}};
       }, "Devices"},
      {"Binds", [](json& j) { j["HostConfig"]["Binds"] = {"/:/host"}; }, "Binds"},
      {"User root", [](json& j) { j["Config"]["User"] = "0:0"; }, "User"},
      {"User empty", [](json& j) { j["Config"]["User"] = ""; }, "User"},
      {"Config missing", [](json& j) { j.erase("Config"); }, "User"},
      {"extra volume", [](json& j) {
         j["Mounts"].push_back({{"Type", "volume"}, {"Source", "/var/lib/docker/volumes/x"},
                                {"Destination", "/data"}, {"RW", true}});
       }, "Mounts"},
      {"mount missing", [](json& j) { j["Mounts"].erase(0); }, "Mounts"},
      {"mount source", [](json& j) { j["Mounts"][0]["Source"] = "/etc"; }, "Mounts"},
      {"input writable", [](json& j) { j["Mounts"][0]["RW"] = true; }, "/input/metadata.json must be read-only"},
      {"net dir writable", [](json& j) { j["Mounts"][2]["RW"] = true; },
       "gateway socket directory /run/assessq/net must be read-only"},
      {"net dir RW unknown", [](json& j) { j["Mounts"][2].erase("RW"); },
       "gateway socket directory"},
      {"HostConfig missing", [](json& j) { j.erase("HostConfig"); }, "CapDrop"},
  };
  const JobSpec s = Spec();
  for (const auto& c : cases) {
    json in = InspectOf(s, Mounts());
    c.doctor(in);
    std::vector<std::string> bad = VerifyInspect(in, s, Mounts());
    ASSERT_FALSE(bad.empty()) << c.name << " was accepted";
    EXPECT_THAT(Joined(bad), HasSubstr(c.setting)) << c.name;
  }
}

TEST(VerifyInspectTest, RuntimeMustBeTheOneAskedFor) {
  JobSpec s = Spec();
  s.runtime = "runsc";
  json in = InspectOf(s, Mounts());
  in["HostConfig"]["Runtime"] = "runc";
  EXPECT_THAT(Joined(VerifyInspect(in, s, Mounts())), HasSubstr("Runtime"));
  in["HostConfig"].erase("Runtime");
  EXPECT_THAT(Joined(VerifyInspect(in, s, Mounts())), HasSubstr("Runtime"));
}

// The gateway socket directory is refused writable even when the job's own
// mount list asked for it so (a JobFs regression): only /output may be.
TEST(VerifyInspectTest, WritableNetDirRefusedWhateverTheMountListSays) {
  std::vector<BindMount> m = Mounts();
  m[2].read_only = false;
  const JobSpec s = Spec();
  std::vector<std::string> bad = VerifyInspect(InspectOf(s, m), s, m);
  ASSERT_FALSE(bad.empty());
  EXPECT_THAT(Joined(bad), HasSubstr("gateway socket directory /run/assessq/net must be read-only"));
  // The output directory is the one writable mount.
  std::vector<BindMount> ok = Mounts();
  EXPECT_TRUE(VerifyInspect(InspectOf(s, ok), s, ok).empty());
}

TEST(VerifyInspectTest, RefusesGarbage) {
  const JobSpec s = Spec();
  for (const json& in : {json(nullptr), json::array(), json("x"), json::object()})
    EXPECT_GE(VerifyInspect(in, s, Mounts()).size(), 5u) << in.dump();
}

}  // namespace
}  // namespace assessq
