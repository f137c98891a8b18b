// The network-namespace world of the tests that run real containers against
// stand-in hosts (the egress container test, the real-agent test): a named
// namespace joined to the host by a veth pair, the stand-ins' addresses on
// its side, routes from the host into it, and a check with `ip route get`
// that every address the test will reach goes into the namespace before
// anything runs (or the set-up throws). Runs are serialised by a lock file;
// namespaces of killed runs (NAME-PID with PID gone) are removed first; the
// namespace is deleted on destruction and, best effort, on SIGINT/SIGTERM.
#pragma once

#include <string>
#include <vector>

namespace aqtest {

struct NetnsSpec {
  std::string name;                      // namespace NAME-PID
  std::string veth;                      // veth pair VETHhPID (host) / VETHnPID (namespace)
  std::string lock_file;                 // held while the world exists
  std::string host_addr;                 // the host end's address, a /24
  std::vector<std::string> ns_addrs;     // CIDRs on the namespace's end
  bool default_via_host = false;         // the namespace routes everything back to the host end
  std::vector<std::string> host_routes;  // CIDRs the host routes into the namespace
  std::vector<std::string> must_route;   // addresses that must route into it (checked)
};

// /usr/sbin/ip or /sbin/ip.
std::string IpBin();
// Runs `ip ARGS...`; throws with the output when it fails.
void IpCmd(const std::vector<std::string>& args);

class NetnsWorld {
 public:
  explicit NetnsWorld(NetnsSpec spec) : spec_(std::move(spec)) {}
  ~NetnsWorld();
  NetnsWorld(const NetnsWorld&) = delete;
  NetnsWorld& operator=(const NetnsWorld&) = delete;

  // Takes the lock (waits up to 200 s for another run), removes stale
  // namespaces, builds the namespace and checks the routes; throws.
  void Build();
  // Deletes the namespace (its veth pair and routes go with it) and
  // releases the lock.
  void Remove();

  const std::string& ns() const { return ns_; }
  const std::string& veth_host() const { return veth_host_; }
  bool created() const { return created_; }
  // `ip netns exec NS ARGV...`.
  std::vector<std::string> Exec(const std::vector<std::string>& argv) const;

 private:
  void RemoveStale() const;
  NetnsSpec spec_;
  std::string ns_, veth_host_, veth_ns_;
  bool created_ = false;
  int lock_fd_ = -1;
};

}  // namespace aqtest
