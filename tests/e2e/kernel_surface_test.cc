// The kernel surface a job can reach, tried from inside real containers that
// workerd creates: the stand-in agent's probe_syscalls mode attempts each
// call assessq's seccomp profile (deploy/seccomp/assessq.json) refuses, and
// the ordinary work it must leave open (threads, fork/exec, posix_spawn via
// the clone3 -> clone fallback, files, AF_UNIX/AF_INET sockets), and prints
// one "PROBE name=result" line each. And a policy that asks for an AppArmor
// profile the daemon does not apply gets no running job.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/e2e_fixture.h"

namespace aqe2e {
namespace {

class KernelSurfaceTest : public E2eTest {};

std::map<std::string, std::string> ProbeResults(const std::string& log) {
  std::map<std::string, std::string> out;
  for (const auto& line : LinesStartingWith(log, "PROBE ")) {
    std::string kv = line.substr(6);
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string v = kv.substr(eq + 1);
    out[kv.substr(0, eq)] = v.substr(0, v.find(' '));
  }
  return out;
}

TEST_F(KernelSurfaceTest, SeccompProfileRefusesTheKernelSurfaceAndAllowsOrdinaryWork) {
  AgentLimits limits;
  limits.timeout_s = 60;
  limits.grace_s = 5;
  WriteMetadata(inputs_, "probe", "probe_syscalls");
  Workerd& w = AddWorker("seccomp", {.slots = 1});
  const int64_t job = ctl_->Submit({inputs_}, "seccomp", Profile(limits),
                                   {"--max-attempts", "agent=1", "--max-attempts", "infra=1"})
                          .at("probe");
  json shown;
  ASSERT_NO_THROW(shown = ctl_->WaitJobFinished(job, 120000)) << Tail(w.Log());
  ASSERT_EQ(shown.value("state", ""), "succeeded") << shown.dump(2) << "\n" << Tail(w.Log());
  ASSERT_FALSE(shown["attempts"].empty());
  const std::string log = shown["attempts"].back().value("log_tail", "");
  ASSERT_TRUE(absl::StrContains(log, "PROBE-DONE")) << log;
  std::map<std::string, std::string> got = ProbeResults(log);

  // Refused with EPERM: each of these succeeded, or failed differently,
  // under Docker 20.10's default profile where the comment says so.
  for (const char* name : {
           "io_uring_setup",         // default: succeeds
           "io_uring_enter",         // default: EBADF (reaches the kernel)
           "io_uring_register",      // default: reaches the kernel
           "socket_vsock",           // default: succeeds (past every network rule)
           "socket_vsock_highbits",  // AF_VSOCK with bits above the int: succeeds by default
           "socketpair_vsock",       // default: EOPNOTSUPP (reaches the kernel)
           "socket_alg",             // the kernel crypto API's sockets
           "socket_netlink_uevent",  // netlink other than NETLINK_ROUTE
           "userfaultfd", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
           "unshare_user", "unshare_net", "setns", "clone_newuser", "mount", "umount2",
           "pivot_root", "chroot",
           "ptrace_traceme",  // default: succeeds
           "process_vm_readv", "kexec_load", "init_module", "finit_module", "delete_module"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(got[name], "EPERM") << log;
  }
  // clone3 cannot be filtered by flags: ENOSYS, and libc falls back to clone.
  EXPECT_EQ(got["clone3_newuser"], "ENOSYS") << log;
  EXPECT_EQ(got["clone3_plain"], "ENOSYS") << log;
  // The 32-bit system call ABI is not in the filter's architectures: the
  // call never reaches the kernel (seccomp's bad-architecture action kills
  // the thread; under Docker's default it creates the AF_VSOCK socket).
  ASSERT_TRUE(got.count("i386_socket_vsock")) << log;
  EXPECT_NE(got["i386_socket_vsock"], "ok") << log;

  // Ordinary work still works.
  for (const char* name :
       {"thread", "fork", "fork_exec", "posix_spawn", "files", "statx", "socketpair_unix",
        "socket_unix", "socket_inet", "socket_inet6", "socket_netlink", "eventfd",
        "memfd_create", "getrandom", "mmap_exec"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(got[name], "ok") << log;
  }
}

// Docker (apparmor.IsEnabled) applies AppArmor only where the kernel has it.
bool HostHasAppArmor() {
  std::ifstream f("/sys/module/apparmor/parameters/enabled");
  std::string v;
  f >> v;
  return v == "Y" && std::ifstream("/sys/kernel/security/apparmor/profiles").good();
}

TEST_F(KernelSurfaceTest, AppArmorProfileRequestedButNotAppliedIsRefused) {
  // The policy asks for Docker's own profile, present wherever Docker runs
  // with AppArmor. On a host without AppArmor, Engine 20.10 accepts the
  // option, shows it before start, and applies nothing: the worker must
  // notice after start and end the job as infra.
  const std::string policy = dir_->Join("policy.json");
  WriteFile(policy, R"({"apparmor_profile": "docker-default"})");
  AgentLimits limits;
  limits.timeout_s = 60;
  limits.grace_s = 5;
  WriteMetadata(inputs_, "aa", "sleep_ms:2000");
  Workerd& w = AddWorker("apparmor", {.slots = 1, .extra_args = {"--policy", policy}});
  const int64_t job = ctl_->Submit({inputs_}, "apparmor", Profile(limits),
                                   {"--max-attempts", "agent=1", "--max-attempts", "infra=1"})
                          .at("aa");
  json shown;
  ASSERT_NO_THROW(shown = ctl_->WaitJobFinished(job, 120000)) << Tail(w.Log());
  if (HostHasAppArmor()) {
    EXPECT_EQ(shown.value("state", ""), "succeeded") << shown.dump(2);
    return;
  }
  EXPECT_EQ(shown.value("state", ""), "needs_attention") << shown.dump(2);
  EXPECT_EQ(shown.value("last_failure_class", ""), "infra") << shown.dump(2);
  ASSERT_FALSE(shown["attempts"].empty());
  const std::string err = shown["attempts"].back().value("error", "");
  EXPECT_TRUE(absl::StrContains(err, "'docker-default' requested but not applied")) << err;
  EXPECT_TRUE(PollUntil([&] { return ContainersOf(w.name()).empty(); }, 30000, 100))
      << ContainersOf(w.name()).dump(2);
}

}  // namespace
}  // namespace aqe2e
