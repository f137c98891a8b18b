// Reaching a checked target: resolving a name once (or from the test
// override) and refusing it when any of its addresses is blocked, connecting
// only to such a checked address, and the sockets a job has open, so that
// stopping the job closes every one of them.
#pragma once

#include <asio.hpp>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/gateway/egress_policy.h"

namespace assessq::gateway {

// The open sockets of one job. Each closer closes its socket if asked and
// says whether the socket still exists; the gone ones are dropped whenever
// the list has doubled, so a job that opens many connections does not grow
// it without end.
class SocketRegistry {
 public:
  template <typename Sock>
  void Track(std::shared_ptr<Sock> s) {
    std::lock_guard<std::mutex> l(mu_);
    if (closers_.size() >= prune_at_) {
      closers_.remove_if([](const auto& closer) { return !closer(false); });
      prune_at_ = std::max<size_t>(64, 2 * closers_.size());
    }
    std::weak_ptr<Sock> w = s;
    closers_.push_back([w](bool close) {
      auto p = w.lock();
      if (p && close) {
        std::error_code ec;
        p->lowest_layer().close(ec);
      }
      return static_cast<bool>(p);
    });
  }
  void CloseAll();

 private:
  std::mutex mu_;
  std::list<std::function<bool(bool close)>> closers_;
  size_t prune_at_ = 64;
};

using NameOverrides = std::map<std::string, std::vector<std::string>>;

// The addresses of `host` (an IP literal, an overridden name, or a DNS
// answer), every one checked against `policy`: PermissionDenied when any is
// blocked, Unavailable when there is none.
asio::awaitable<absl::StatusOr<std::vector<IpAddr>>> ResolveChecked(const NameOverrides& overrides,
                                                                    const EgressPolicy& policy,
                                                                    std::string host);

// Connects to the first of `addrs` that answers (10 s each), with
// TCP_NODELAY; every socket tried is tracked in `sockets`.
asio::awaitable<absl::StatusOr<std::pair<std::shared_ptr<asio::ip::tcp::socket>, IpAddr>>> ConnectChecked(
    SocketRegistry& sockets, std::vector<IpAddr> addrs, int port);

}  // namespace assessq::gateway
