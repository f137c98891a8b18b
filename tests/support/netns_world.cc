#include "tests/support/netns_world.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/support/process.h"

namespace aqtest {
namespace fs = std::filesystem;

namespace {

// The command that deletes the live namespace, for the signal handler
// (made before the handler can run; one world per process).
char g_delete_cmd[256];

void OnFatalSignal(int sig) {
  if (g_delete_cmd[0] != '\0') (void)!system(g_delete_cmd);
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

std::string IpBin() { return fs::exists("/usr/sbin/ip") ? "/usr/sbin/ip" : "/sbin/ip"; }

void IpCmd(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {IpBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = Run(argv, 20000);
  if (r.exit_code != 0)
    throw std::runtime_error(absl::StrCat("ip ", absl::StrJoin(args, " "), ": ", r.Describe()));
}

NetnsWorld::~NetnsWorld() { Remove(); }

void NetnsWorld::RemoveStale() const {
  const std::string prefix = spec_.name + "-";
  RunResult r = Run({IpBin(), "netns", "list"}, 20000);
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    std::string name(line.substr(0, line.find(' ')));
    if (!absl::StartsWith(name, prefix)) continue;
    std::string pid = name.substr(prefix.size());
    if (!fs::exists("/proc/" + pid)) {
      (void)Run({IpBin(), "netns", "del", name}, 20000);
      (void)Run({IpBin(), "link", "del", spec_.veth + "h" + pid}, 20000);
    }
  }
}

void NetnsWorld::Build() {
  lock_fd_ = open(spec_.lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0 ||
      !PollUntil([&] { return flock(lock_fd_, LOCK_EX | LOCK_NB) == 0; }, 200000, 200))
    throw std::runtime_error("another run of this test holds " + spec_.lock_file);
  RemoveStale();
  const std::string pid = std::to_string(getpid());
  ns_ = spec_.name + "-" + pid;
  veth_host_ = spec_.veth + "h" + pid;
  veth_ns_ = spec_.veth + "n" + pid;
  std::snprintf(g_delete_cmd, sizeof g_delete_cmd, "%s netns del %s >/dev/null 2>&1",
                IpBin().c_str(), ns_.c_str());
  signal(SIGINT, OnFatalSignal);
  signal(SIGTERM, OnFatalSignal);
  IpCmd({"netns", "add", ns_});
  created_ = true;
  IpCmd({"link", "add", veth_host_, "type", "veth", "peer", "name", veth_ns_});
  IpCmd({"link", "set", veth_ns_, "netns", ns_});
  IpCmd({"addr", "add", spec_.host_addr + "/24", "dev", veth_host_});
  IpCmd({"link", "set", veth_host_, "up"});
  for (const auto& a : spec_.ns_addrs) IpCmd({"-n", ns_, "addr", "add", a, "dev", veth_ns_});
  IpCmd({"-n", ns_, "link", "set", "lo", "up"});
  IpCmd({"-n", ns_, "link", "set", veth_ns_, "up"});
  if (spec_.default_via_host)
    IpCmd({"-n", ns_, "route", "add", "default", "via", spec_.host_addr});
  for (const auto& r : spec_.host_routes)
    IpCmd({"route", "add", r, "dev", veth_host_, "src", spec_.host_addr});
  // Every address the test could make anything reach goes into the
  // namespace, or the suite stops here.
  for (const auto& a : spec_.must_route) {
    RunResult r = Run({IpBin(), "route", "get", a}, 20000);
    if (r.exit_code != 0 || !absl::StrContains(r.out, "dev " + veth_host_ + " "))
      throw std::runtime_error(
          absl::StrCat("the route to ", a, " does not go into the test namespace: ", r.out));
  }
}

void NetnsWorld::Remove() {
  if (created_) {
    // The veth pair and every route through it go with the namespace.
    (void)Run({IpBin(), "netns", "del", ns_}, 20000);
    (void)Run({IpBin(), "link", "del", veth_host_}, 20000);
    created_ = false;
    g_delete_cmd[0] = '\0';
  }
  if (lock_fd_ >= 0) {
    close(lock_fd_);
    lock_fd_ = -1;
  }
}

std::vector<std::string> NetnsWorld::Exec(const std::vector<std::string>& argv) const {
  std::vector<std::string> out = {IpBin(), "netns", "exec", ns_};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

}  // namespace aqtest
