#include "worker/gateway/upstream.h"

#include "absl/strings/str_cat.h"

namespace assessq::gateway {
namespace {

using asio::use_awaitable;
using tcp = asio::ip::tcp;

tcp::endpoint Endpoint(const IpAddr& ip, int port) {
  if (ip.v6) {
    asio::ip::address_v6::bytes_type b;
    std::copy(ip.bytes, ip.bytes + 16, b.begin());
    return tcp::endpoint(asio::ip::address_v6(b), static_cast<uint16_t>(port));
  }
  asio::ip::address_v4::bytes_type b;
  std::copy(ip.bytes, ip.bytes + 4, b.begin());
  return tcp::endpoint(asio::ip::address_v4(b), static_cast<uint16_t>(port));
}

}  // namespace

void SocketRegistry::CloseAll() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& c : closers_) c(true);
  closers_.clear();
}

asio::awaitable<absl::StatusOr<std::vector<IpAddr>>> ResolveChecked(const NameOverrides& overrides,
                                                                    const EgressPolicy& policy,
                                                                    std::string host) {
  std::vector<IpAddr> out;
  if (auto lit = ParseIpLiteral(host)) {
    out.push_back(*lit);
  } else if (auto it = overrides.find(host); it != overrides.end()) {
    for (const auto& a : it->second)
      if (auto ip = ParseIpLiteral(a)) out.push_back(*ip);
  } else {
    tcp::resolver r(co_await asio::this_coro::executor);
    std::error_code ec;
    auto res = co_await r.async_resolve(host, "0", asio::redirect_error(use_awaitable, ec));
    if (ec) co_return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", ec.message()));
    for (const auto& ep : res) {
      auto addr = ep.endpoint().address();
      IpAddr ip;
      if (addr.is_v4()) {
        auto b = addr.to_v4().to_bytes();
        std::copy(b.begin(), b.end(), ip.bytes);
      } else {
        ip.v6 = true;
        auto b = addr.to_v6().to_bytes();
        std::copy(b.begin(), b.end(), ip.bytes);
      }
      bool dup = false;
      for (const auto& o : out) dup |= o == ip;
      if (!dup) out.push_back(ip);
    }
  }
  if (out.empty()) co_return absl::UnavailableError(absl::StrCat("no address for ", host));
  for (const auto& ip : out) {
    std::string why = ClassifyAddress(policy, ip);
    if (!why.empty())
      co_return absl::PermissionDeniedError(absl::StrCat(host, " resolves to a blocked address: ", why));
  }
  co_return out;
}

asio::awaitable<absl::StatusOr<std::pair<std::shared_ptr<tcp::socket>, IpAddr>>> ConnectChecked(
    SocketRegistry& sockets, std::vector<IpAddr> addrs, int port) {
  auto ex = co_await asio::this_coro::executor;
  std::string last;
  for (const auto& ip : addrs) {
    auto s = std::make_shared<tcp::socket>(ex);
    sockets.Track(s);
    std::error_code ec;
    asio::steady_timer t(ex, std::chrono::seconds(10));
    t.async_wait([w = std::weak_ptr<tcp::socket>(s)](std::error_code e) {
      if (!e)
        if (auto p = w.lock()) p->close(e);
    });
    co_await s->async_connect(Endpoint(ip, port), asio::redirect_error(use_awaitable, ec));
    t.cancel();
    if (!ec) {
      // A relay forwards what arrives when it arrives, as the job's own
      // socket would send it (curl and undici set TCP_NODELAY too).
      s->set_option(tcp::no_delay(true), ec);
      co_return std::make_pair(s, ip);
    }
    last = ec.message();
  }
  co_return absl::UnavailableError(absl::StrCat("connect failed: ", last));
}

}  // namespace assessq::gateway
