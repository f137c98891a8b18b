// The seccomp profile of job containers (deploy/seccomp/assessq.json as
// embedded in workerd) and the inspect checks that it and the AppArmor
// profile are in force: VerifyInspect and VerifyStarted against doctored
// inspect documents, one refusal per row. No Docker here: the real-container
// proof is tests/e2e/kernel_surface_test.cc.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "worker/hardening.h"
#include "worker/job_spec.h"
#include "worker/seccomp_profile.h"

namespace assessq {
namespace {

using nlohmann::json;

// Every syscall the profile allows unconditionally.
std::set<std::string> Allowed() {
  std::set<std::string> out;
  for (const auto& r : SeccompProfile()["syscalls"])
    if (r.value("action", "") == "SCMP_ACT_ALLOW" && !r.contains("args"))
      for (const auto& n : r["names"]) out.insert(n.get<std::string>());
  return out;
}

TEST(SeccompProfile, DefaultIsEperm) {
  const json& p = SeccompProfile();
  EXPECT_EQ(p.value("defaultAction", ""), "SCMP_ACT_ERRNO");
  EXPECT_EQ(p.value("defaultErrnoRet", 0), 1);
}

TEST(SeccompProfile, NativeArchitecturesOnly) {
  // No 32-bit sub-architectures: their socketcall() cannot be filtered by
  // family, and nothing a job runs needs them.
  for (const auto& a : SeccompProfile()["archMap"])
    EXPECT_TRUE(a["subArchitectures"].empty()) << a.dump();
}

TEST(SeccompProfile, RefusedCallsAreNeverAllowed) {
  const std::set<std::string> allowed = Allowed();
  for (const char* name :
       {"io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd", "bpf",
        "perf_event_open", "keyctl", "add_key", "request_key", "unshare", "setns", "mount",
        "umount", "umount2", "pivot_root", "chroot", "ptrace", "process_vm_readv",
        "process_vm_writev", "kexec_load", "kexec_file_load", "init_module", "finit_module",
        "delete_module", "fsopen", "fsmount", "move_mount", "open_tree", "open_by_handle_at",
        "name_to_handle_at", "clone3", "socket", "socketpair", "clone", "personality", "iopl",
        "ioperm", "swapon", "reboot", "syslog", "acct"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(allowed.count(name), 0u) << name << " is allowed without conditions";
  }
}

TEST(SeccompProfile, ConditionalRules) {
  std::set<int64_t> socket_families, socketpair_families;
  bool clone_masked = false, clone3_enosys = false;
  for (const auto& r : SeccompProfile()["syscalls"]) {
    const std::string action = r.value("action", "");
    for (const auto& n : r["names"]) {
      const std::string name = n.get<std::string>();
      if (action != "SCMP_ACT_ALLOW") {
        if (name == "clone3" && r.value("errnoRet", 0) == 38) clone3_enosys = true;
        continue;
      }
      if (name == "socket" || name == "socketpair") {
        ASSERT_GE(r["args"].size(), 1u) << r.dump();
        const json& a = r["args"][0];
        // EQ on the whole register: NE would let 40 | 1<<32 through.
        EXPECT_EQ(a.value("op", ""), "SCMP_CMP_EQ") << r.dump();
        EXPECT_EQ(a.value("index", -1), 0) << r.dump();
        const int64_t family = a.value("value", -1);
        (name == "socket" ? socket_families : socketpair_families).insert(family);
        if (family == 16) {
          // AF_NETLINK: NETLINK_ROUTE (protocol 0) only.
          ASSERT_EQ(r["args"].size(), 2u) << r.dump();
          EXPECT_EQ(r["args"][1], json({{"index", 2}, {"value", 0}, {"op", "SCMP_CMP_EQ"}}));
        } else {
          EXPECT_EQ(r["args"].size(), 1u) << r.dump();
        }
      }
      if (name == "clone") {
        ASSERT_EQ(r["args"].size(), 1u) << r.dump();
        const json& a = r["args"][0];
        EXPECT_EQ(a.value("op", ""), "SCMP_CMP_MASKED_EQ");
        EXPECT_EQ(a.value("value", int64_t{0}), int64_t{0x7E020000}) << "CLONE_NEW* mask";
        EXPECT_EQ(a.value("valueTwo", int64_t{0}), 0);
        clone_masked = true;
      }
    }
  }
  EXPECT_EQ(socket_families, (std::set<int64_t>{1, 2, 10, 16}));  // UNIX, INET, INET6, NETLINK
  EXPECT_EQ(socketpair_families, (std::set<int64_t>{1}));
  EXPECT_TRUE(clone_masked);
  EXPECT_TRUE(clone3_enosys);
}

TEST(SeccompProfile, WhatAProgramNeedsIsAllowed) {
  const std::set<std::string> allowed = Allowed();
  for (const char* name : {"read", "write", "openat", "close", "mmap", "mprotect", "futex",
                           "rseq", "statx", "newfstatat", "execve", "wait4", "fork", "vfork",
                           "pipe2", "epoll_pwait", "getrandom", "prlimit64", "set_robust_list",
                           "rt_sigaction", "sched_getaffinity", "memfd_create", "membarrier",
                           "connect", "bind", "listen", "accept4", "mknodat"}) {
    EXPECT_EQ(allowed.count(name), 1u) << name;
  }
}

// ------------------------------------------------------------ VerifyInspect

JobSpec Spec() {
  JobSpec s;
  s.image = "assessq-test-agent:1";
  s.argv = {"/agent"};
  s.user = "10001:10001";
  return s;
}

std::vector<BindMount> Mounts() { return {{"/var/lib/w/jobs/1-2/out", "/output", false}}; }

// What Engine 20.10 returns for a container created from BuildCreateBody.
json GoodInspect(const JobSpec& s) {
  json body = BuildCreateBody(s, Mounts(), {});
  json in = {{"HostConfig", body["HostConfig"]},
             {"Config", {{"User", s.user}}},
             {"AppArmorProfile", s.apparmor_profile},
             {"Mounts",
              {{{"Type", "bind"}, {"Source", "/var/lib/w/jobs/1-2/out"},
                {"Destination", "/output"}, {"RW", true}}}}};
  in["HostConfig"].erase("Mounts");
  return in;
}

TEST(VerifySeccomp, CreateBodyCarriesTheProfile) {
  json body = BuildCreateBody(Spec(), Mounts(), {});
  std::vector<std::string> opts = body["HostConfig"]["SecurityOpt"];
  int n = 0;
  for (const auto& o : opts)
    if (absl::StartsWith(o, "seccomp=")) {
      ++n;
      EXPECT_EQ(json::parse(o.substr(8)), SeccompProfile());
    }
  EXPECT_EQ(n, 1) << absl::StrJoin(opts, " | ");
  EXPECT_TRUE(VerifyInspect(GoodInspect(Spec()), Spec(), Mounts()).empty())
      << absl::StrJoin(VerifyInspect(GoodInspect(Spec()), Spec(), Mounts()), "\n");
}

struct Doctored {
  const char* name;
  std::string apparmor;                  // the policy's apparmor_profile
  std::function<void(json&)> doctor;     // changes the good inspect
  const char* refusal;                   // a line must contain this
};

TEST(VerifySeccomp, RefusesEachDoctoredDocument) {
  json other_profile = SeccompProfile();
  other_profile["syscalls"][0]["names"].push_back("io_uring_setup");
  auto set_opts = [](std::vector<std::string> keep_prefixes, std::vector<std::string> add) {
    return [=](json& in) {
      json out = json::array();
      for (const auto& o : in["HostConfig"]["SecurityOpt"])
        for (const auto& p : keep_prefixes)
          if (absl::StartsWith(o.get<std::string>(), p)) out.push_back(o);
      for (const auto& a : add) out.push_back(a);
      in["HostConfig"]["SecurityOpt"] = out;
    };
  };
  const std::vector<Doctored> rows = {
      {"no seccomp option", "", set_opts({"no-new"}, {}), "seccomp: assessq's profile missing"},
      {"seccomp unconfined", "", set_opts({"no-new"}, {"seccomp=unconfined"}),
       "seccomp: 'unconfined' is not allowed"},
      {"seccomp:unconfined (colon form)", "", set_opts({"no-new"}, {"seccomp:unconfined"}),
       "seccomp: 'unconfined' is not allowed"},
      {"another profile", "", set_opts({"no-new"}, {"seccomp=" + other_profile.dump()}),
       "wanted assessq's profile"},
      {"not JSON", "", set_opts({"no-new"}, {"seccomp=/etc/seccomp.json"}),
       "wanted assessq's profile"},
      {"two profiles", "", set_opts({"no-new", "seccomp"}, {"seccomp=" + other_profile.dump()}),
       "2 profiles, wanted one"},
      {"apparmor unconfined", "", set_opts({"no-new", "seccomp"}, {"apparmor=unconfined"}),
       "SecurityOpt apparmor: wanted none"},
      {"apparmor not asked for", "", set_opts({"no-new", "seccomp"}, {"apparmor=other"}),
       "SecurityOpt apparmor: wanted none"},
      {"AppArmorProfile unconfined", "", [](json& in) { in["AppArmorProfile"] = "unconfined"; },
       "AppArmorProfile: 'unconfined' is not allowed"},
      {"apparmor requested, option dropped", "assessq-job", set_opts({"no-new", "seccomp"}, {}),
       "'assessq-job' requested but missing"},
      {"apparmor requested, other profile", "assessq-job",
       set_opts({"no-new", "seccomp"}, {"apparmor=docker-default"}),
       "SecurityOpt apparmor: wanted 'assessq-job'"},
      {"apparmor requested, daemon records none", "assessq-job",
       [](json& in) { in["AppArmorProfile"] = ""; }, "AppArmorProfile: wanted 'assessq-job'"},
      {"other unconfined option", "", set_opts({"no-new", "seccomp"}, {"label=unconfined"}),
       "'label=unconfined' is not allowed"},
      {"no-new-privileges dropped", "", set_opts({"seccomp"}, {}), "no-new-privileges missing"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    JobSpec s = Spec();
    s.apparmor_profile = row.apparmor;
    json in = GoodInspect(s);
    ASSERT_TRUE(VerifyInspect(in, s, Mounts()).empty())
        << absl::StrJoin(VerifyInspect(in, s, Mounts()), "\n");
    row.doctor(in);
    std::vector<std::string> bad = VerifyInspect(in, s, Mounts());
    bool found = false;
    for (const auto& b : bad) found = found || absl::StrContains(b, row.refusal);
    EXPECT_TRUE(found) << "wanted a line with '" << row.refusal << "', got:\n"
                       << absl::StrJoin(bad, "\n");
  }
}

TEST(VerifySeccomp, ApparmorRequestedIsCarriedAndAccepted) {
  JobSpec s = Spec();
  s.apparmor_profile = "assessq-job";
  json body = BuildCreateBody(s, Mounts(), {});
  bool has = false;
  for (const auto& o : body["HostConfig"]["SecurityOpt"]) has = has || o == "apparmor=assessq-job";
  EXPECT_TRUE(has) << body["HostConfig"]["SecurityOpt"].dump().substr(0, 200);
  EXPECT_TRUE(VerifyInspect(GoodInspect(s), s, Mounts()).empty());
}

TEST(VerifyStarted, ChecksTheAppliedAppArmorProfile) {
  struct Row {
    const char* name;
    std::string wanted;
    json applied;
    const char* refusal;  // nullptr: accepted
  };
  const std::vector<Row> rows = {
      {"none asked, none applied (host without AppArmor)", "", "", nullptr},
      {"none asked, daemon default", "", "docker-default", nullptr},
      {"none asked, unconfined", "", "unconfined", "runs 'unconfined'"},
      {"asked and applied", "assessq-job", "assessq-job", nullptr},
      {"asked, host without AppArmor", "assessq-job", "", "requested but not applied"},
      {"asked, another applied", "assessq-job", "docker-default", "requested but not applied"},
      {"asked, field missing", "assessq-job", nullptr, "requested but not applied"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    JobSpec s = Spec();
    s.apparmor_profile = r.wanted;
    json in = json::object();
    if (!r.applied.is_null()) in["AppArmorProfile"] = r.applied;
    std::vector<std::string> bad = VerifyStarted(in, s);
    if (!r.refusal) {
      EXPECT_TRUE(bad.empty()) << absl::StrJoin(bad, "\n");
    } else {
      ASSERT_EQ(bad.size(), 1u) << absl::StrJoin(bad, "\n");
      EXPECT_TRUE(absl::StrContains(bad[0], r.refusal)) << bad[0];
    }
  }
}

TEST(PolicyApparmor, ParsedAndValidated) {
  auto ok = ParseLocalPolicy(R"({"apparmor_profile": "assessq-job"})");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->apparmor_profile, "assessq-job");
  for (const char* bad : {R"({"apparmor_profile": "unconfined"})",
                          R"({"apparmor_profile": "a,b"})", R"({"apparmor_profile": 3})"}) {
    auto p = ParseLocalPolicy(bad);
    EXPECT_FALSE(p.ok()) << bad;
    if (!p.ok()) EXPECT_TRUE(absl::StrContains(p.status().message(), "apparmor_profile")) << p.status();
  }
  Profile prof;
  prof.image = "assessq-x";
  LocalPolicy pol;
  pol.apparmor_profile = "assessq-job";
  auto spec = DecideJobSpec(prof, pol, {});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->apparmor_profile, "assessq-job");
}

}  // namespace
}  // namespace assessq
