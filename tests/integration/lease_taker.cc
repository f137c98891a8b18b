// LeaseTaker: the real API client's messages queued for the test thread.
#include "tests/integration/lease_taker.h"

#include <chrono>
#include <stdexcept>

namespace aqtest {

namespace v1 = assessq::v1;

LeaseTaker::LeaseTaker(const std::string& address, const std::string& bearer_token,
                       const std::string& name, int slots) {
  auto c = assessq::ApiClient::Create({address, bearer_token, {}, name, slots});
  if (!c.ok()) throw std::runtime_error(c.status().ToString());
  client_ = std::move(*c);
  client_->Start([this](const v1::CoordinatorMessage& m) {
    std::lock_guard<std::mutex> l(mu_);
    if (m.has_lease()) leases_.push_back(m.lease());
    if (m.has_cancel() || m.has_drain()) notices_.push_back(m);
    cv_.notify_all();
  });
}

LeaseTaker::~LeaseTaker() { client_->Stop(); }

v1::Lease LeaseTaker::NextLease(int timeout_ms) {
  std::unique_lock<std::mutex> l(mu_);
  if (!cv_.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return !leases_.empty(); }))
    throw std::runtime_error("no lease arrived");
  v1::Lease x = leases_.front();
  leases_.pop_front();
  return x;
}

v1::CoordinatorMessage LeaseTaker::NextNotice(int timeout_ms) {
  std::unique_lock<std::mutex> l(mu_);
  if (!cv_.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return !notices_.empty(); }))
    throw std::runtime_error("no cancel or drain notice arrived");
  v1::CoordinatorMessage x = notices_.front();
  notices_.pop_front();
  return x;
}

size_t LeaseTaker::pending() {
  std::lock_guard<std::mutex> l(mu_);
  return leases_.size();
}

}  // namespace aqtest
