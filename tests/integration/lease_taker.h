// An in-process worker for the integration tests: the real worker API client
// (worker/api_client) on a coordinator's session, collecting the leases and
// the cancel/drain notices it is sent, so a test can take and complete jobs
// by hand.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "assessq/v1/assessq.pb.h"
#include "worker/api_client.h"

namespace aqtest {

class LeaseTaker {
 public:
  // Opens the session to `address` with `bearer_token` as worker `name`
  // offering `slots` (throws std::runtime_error when the client is refused).
  LeaseTaker(const std::string& address, const std::string& bearer_token,
             const std::string& name, int slots);
  ~LeaseTaker();
  LeaseTaker(const LeaseTaker&) = delete;
  LeaseTaker& operator=(const LeaseTaker&) = delete;

  // The next lease (throws after timeout_ms).
  assessq::v1::Lease NextLease(int timeout_ms = 30000);
  // The next cancel or drain notice (throws after timeout_ms).
  assessq::v1::CoordinatorMessage NextNotice(int timeout_ms = 30000);
  // Leases received and not yet taken by NextLease.
  size_t pending();
  assessq::ApiClient& api() { return *client_; }

 private:
  std::unique_ptr<assessq::ApiClient> client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<assessq::v1::Lease> leases_;
  std::deque<assessq::v1::CoordinatorMessage> notices_;
};

}  // namespace aqtest
