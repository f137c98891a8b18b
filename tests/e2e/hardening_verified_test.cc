// While a job runs, the test inspects its container through the Docker
// Engine API itself (not the worker's word for it) and checks every
// hardening setting the daemon recorded, the kernel's view of the agent's
// process (capabilities, no_new_privs, uid), that only the job's own two
// files are mounted, and that no credential reached the container's
// environment, although workerd's own environment holds some.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/e2e_fixture.h"

namespace aqe2e {
namespace {

class HardeningVerifiedTest : public E2eTest {};

// "Key:\tvalue" from /proc/PID/status.
std::string StatusField(const std::string& status, const std::string& key) {
  for (absl::string_view line : absl::StrSplit(status, '\n'))
    if (absl::StartsWith(line, key + ":"))
      return std::string(absl::StripAsciiWhitespace(line.substr(key.size() + 1)));
  return "";
}

TEST_F(HardeningVerifiedTest, RunningContainerIsHardenedAsRecordedByTheDaemon) {
  AgentLimits limits;
  limits.timeout_s = 60;
  limits.grace_s = 5;
  const std::string profile = Profile(limits);
  WriteMetadata(inputs_, "hardened", "sleep_ms:4000");

  // Secrets in workerd's own environment must not follow the job.
  const std::string canary_api = "sk-ant-e2e-canary-0f3c9a1d7b";
  const std::string canary_tok = "aqt-e2e-canary-5e61b2c4";
  Workerd& w = AddWorker("hard", {.slots = 1,
                                  .extra_env = {"ANTHROPIC_API_KEY=" + canary_api,
                                                "ASSESSQ_TOKEN=" + canary_tok,
                                                "AWS_SECRET_ACCESS_KEY=" + canary_api}});
  const std::string worker_token = std::string(
      absl::StripAsciiWhitespace(ReadFile(coord_->worker_token_file())));
  const std::string op_token = std::string(
      absl::StripAsciiWhitespace(ReadFile(coord_->operator_token_file())));

  auto ids = ctl_->Submit({inputs_}, "hardening", profile);
  const int64_t job = ids.at("hardened");

  std::optional<json> summary;
  ASSERT_TRUE(PollUntil([&] { return (summary = RunningContainerOfJob(w.name(), job)).has_value(); },
                        60000, 50))
      << "the job's container never ran\n" << Tail(w.Log());
  auto in = Docker().InspectContainer(summary->value("Id", ""));
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  const json& hc = (*in)["HostConfig"];
  const json& cfg = (*in)["Config"];
  ASSERT_TRUE((*in)["State"].value("Running", false)) << "inspected too late: " << (*in)["State"].dump();

  // Capabilities, privileges, seccomp/AppArmor never unconfined.
  EXPECT_EQ(hc["CapDrop"], json::array({"ALL"})) << hc["CapDrop"].dump();
  EXPECT_TRUE(hc["CapAdd"].is_null() || hc["CapAdd"].empty()) << hc["CapAdd"].dump();
  EXPECT_EQ(hc["Privileged"], false);
  bool nnp = false;
  for (const auto& o : hc["SecurityOpt"]) {
    std::string v = o.get<std::string>();
    if (v == "no-new-privileges:true" || v == "no-new-privileges" || v == "no-new-privileges=true")
      nnp = true;
    EXPECT_FALSE(absl::StrContains(v, "unconfined")) << v;
  }
  EXPECT_TRUE(nnp) << hc["SecurityOpt"].dump();

  // Filesystem, user, network, namespaces.
  EXPECT_EQ(hc["ReadonlyRootfs"], true);
  EXPECT_EQ(cfg["User"], "10001:10001");
  EXPECT_EQ(hc["NetworkMode"], "none");
  EXPECT_EQ(cfg.value("NetworkDisabled", false), true);
  EXPECT_EQ(hc["IpcMode"], "private");
  EXPECT_TRUE(hc["PidMode"].is_null() || hc["PidMode"] == "") << hc["PidMode"].dump();
  EXPECT_TRUE(hc["UsernsMode"].is_null() || hc["UsernsMode"] == "") << hc["UsernsMode"].dump();
  EXPECT_EQ(hc["Init"], true);
  EXPECT_TRUE(hc["Devices"].is_null() || hc["Devices"].empty()) << hc["Devices"].dump();

  // Resource limits.
  EXPECT_EQ(hc["PidsLimit"], limits.pids);
  EXPECT_EQ(hc["Memory"], int64_t{limits.memory_mb} << 20);
  EXPECT_EQ(hc["MemorySwap"], hc["Memory"]) << "swap must not extend the memory limit";
  std::map<std::string, json> ul;
  for (const auto& u : hc["Ulimits"]) ul[u.value("Name", "")] = u;
  ASSERT_TRUE(ul.count("nofile")) << hc["Ulimits"].dump();
  ASSERT_TRUE(ul.count("core")) << hc["Ulimits"].dump();
  EXPECT_EQ(ul["nofile"]["Soft"], 1024);
  EXPECT_EQ(ul["nofile"]["Hard"], 1024);
  EXPECT_EQ(ul["core"]["Soft"], 0);
  EXPECT_EQ(ul["core"]["Hard"], 0);

  // Mounts: exactly the job's metadata file (read-only) and its output dir
  // (read-write), both from this worker's job dir; no bind strings, no
  // volumes, nothing of Docker's own.
  json mounts = (*in)["Mounts"];
  ASSERT_TRUE(mounts.is_array()) << in->dump(2);
  std::map<std::string, json> by_dest;
  for (const auto& m : mounts) by_dest[m.value("Destination", "")] = m;
  EXPECT_EQ(mounts.size(), 2u) << mounts.dump(2);
  ASSERT_TRUE(by_dest.count("/input/metadata.json")) << mounts.dump(2);
  ASSERT_TRUE(by_dest.count("/output")) << mounts.dump(2);
  EXPECT_EQ(by_dest["/input/metadata.json"]["RW"], false);
  EXPECT_EQ(by_dest["/output"]["RW"], true);
  for (const auto& [dest, m] : by_dest) {
    EXPECT_EQ(m.value("Type", ""), "bind") << m.dump();
    EXPECT_TRUE(absl::StartsWith(m.value("Source", ""), w.jobs_dir() + "/")) << m.dump();
  }
  EXPECT_TRUE(hc["Binds"].is_null() || hc["Binds"].empty()) << hc["Binds"].dump();
  // /tmp and home are size-capped tmpfs, not host directories.
  ASSERT_TRUE(hc["Tmpfs"].is_object()) << hc.dump(2);
  ASSERT_TRUE(hc["Tmpfs"].contains("/tmp")) << hc["Tmpfs"].dump();
  EXPECT_TRUE(absl::StrContains(hc["Tmpfs"]["/tmp"].get<std::string>(),
                                absl::StrCat("size=", limits.tmp_mb, "m")))
      << hc["Tmpfs"].dump();
  const std::string all = in->dump();
  EXPECT_FALSE(absl::StrContains(all, "docker.sock")) << "the Docker socket reaches the container";

  // No credential in the environment: neither the canaries of workerd's
  // environment, nor the tokens, nor any variable named like a secret.
  std::regex secretish("(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", std::regex::icase);
  for (const auto& e : cfg["Env"]) {
    std::string v = e.get<std::string>();
    std::string name = v.substr(0, v.find('='));
    EXPECT_FALSE(std::regex_search(name, secretish)) << "secret-like variable: " << v;
  }
  for (const auto& secret : {canary_api, canary_tok, worker_token, op_token})
    EXPECT_FALSE(absl::StrContains(all, secret)) << "a secret is in the container's config";

  // The kernel's view of the container's init process (docker-init, which
  // runs as the job's user with the same restrictions as the agent).
  const int pid = (*in)["State"].value("Pid", 0);
  ASSERT_GT(pid, 0);
  {
    // A private PID namespace: the container's init is PID 1 in it
    // ("NSpid: <host pid> 1").
    std::string st = ReadFile(absl::StrCat("/proc/", pid, "/status"));
    std::vector<std::string> ns = absl::StrSplit(StatusField(st, "NSpid"), '\t', absl::SkipEmpty());
    ASSERT_EQ(ns.size(), 2u) << "NSpid: " << StatusField(st, "NSpid");
    EXPECT_EQ(ns[1], "1");
  }
  std::vector<std::string> pids = {std::to_string(pid)};
  // Its child is the agent itself.
  std::string children = ReadFile(absl::StrCat("/proc/", pid, "/task/", pid, "/children"));
  for (absl::string_view c : absl::StrSplit(children, ' ', absl::SkipWhitespace()))
    pids.emplace_back(c);
  EXPECT_GE(pids.size(), 2u) << "the agent process was not found under docker-init";
  for (const auto& p : pids) {
    SCOPED_TRACE("pid " + p);
    std::string st = ReadFile("/proc/" + p + "/status");
    if (st.empty()) continue;  // exited meanwhile
    EXPECT_EQ(StatusField(st, "CapEff"), "0000000000000000");
    EXPECT_EQ(StatusField(st, "CapPrm"), "0000000000000000");
    EXPECT_EQ(StatusField(st, "CapBnd"), "0000000000000000");
    EXPECT_EQ(StatusField(st, "NoNewPrivs"), "1");
    EXPECT_EQ(StatusField(st, "Seccomp"), "2") << "no seccomp filter (assessq's profile, deploy/seccomp/assessq.json)";
    EXPECT_TRUE(absl::StartsWith(StatusField(st, "Uid"), "10001")) << StatusField(st, "Uid");
    EXPECT_TRUE(absl::StartsWith(StatusField(st, "Gid"), "10001")) << StatusField(st, "Gid");
    // The process's environment as the kernel holds it.
    std::string environ_text = ReadFile("/proc/" + p + "/environ");
    for (const auto& secret : {canary_api, canary_tok, worker_token})
      EXPECT_FALSE(absl::StrContains(environ_text, secret));
  }

  // And the job then finishes normally.
  json done = ctl_->WaitJobState(job, "succeeded", 60000);
  EXPECT_EQ(done["attempts"].size(), 1u) << done.dump(2);
}

}  // namespace
}  // namespace aqe2e
