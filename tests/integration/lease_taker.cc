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

namespace {

// The front of `q` once there is one (throws "no WHAT arrived" after timeout_ms).
template <typename T>
T PopWithin(std::deque<T>& q, std::mutex& mu, std::condition_variable& cv, int timeout_ms,
            const char* what) {
  std::unique_lock<std::mutex> l(mu);
  if (!cv.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return !q.empty(); }))
    throw std::runtime_error(std::string("no ") + what + " arrived");
  T x = q.front();
  q.pop_front();
  return x;
}

}  // namespace

v1::Lease LeaseTaker::NextLease(int timeout_ms) {
  return PopWithin(leases_, mu_, cv_, timeout_ms, "lease");
}

v1::CoordinatorMessage LeaseTaker::NextNotice(int timeout_ms) {
  return PopWithin(notices_, mu_, cv_, timeout_ms, "cancel or drain notice");
}

size_t LeaseTaker::pending() {
  std::lock_guard<std::mutex> l(mu_);
  return leases_.size();
}

}  // namespace aqtest
