// SimWorkerCore: session, slot threads, heartbeat, completion (see the header).
#include "tests/support/sim_worker_core.h"

#include <algorithm>

namespace aqtest {

using assessq::v1::CompleteRequest;
using assessq::v1::CompleteResponse;
using assessq::v1::Lease;

SimWorkerCore::SimWorkerCore(std::unique_ptr<assessq::ApiClient> client, SimWorkerOptions opt,
                             SimWorkerHooks hooks)
    : client_(std::move(client)), opt_(opt), hooks_(std::move(hooks)) {}

void SimWorkerCore::Start() {
  started_ = true;
  client_->Start([this](const assessq::v1::CoordinatorMessage& m) {
    if (m.has_welcome()) {
      welcomed_ = true;
      return;
    }
    if (!m.has_lease()) return;
    if (hooks_.on_lease) hooks_.on_lease(m.lease(), std::chrono::steady_clock::now());
    std::lock_guard<std::mutex> l(mu_);
    todo_.push_back(m.lease());
    cv_.notify_one();
  });
  for (int t = 0; t < opt_.slots; ++t) threads_.emplace_back([this, t] { SlotLoop(t); });
}

void SimWorkerCore::Stop() {
  if (!started_) return;
  started_ = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  client_->Stop();
}

void SimWorkerCore::SlotLoop(int slot) {
  while (true) {
    Lease lease;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::milliseconds(200), [&] { return stop_ || !todo_.empty(); });
      if (stop_) return;
      if (todo_.empty()) continue;
      lease = std::move(todo_.front());
      todo_.pop_front();
    }
    assessq::v1::HeartbeatRequest hb;
    hb.set_job_id(lease.job_id());
    hb.set_token(lease.token());
    hb.set_running(true);
    auto h = client_->Heartbeat(hb);
    if (!h.ok()) {
      bool go_on = hooks_.on_heartbeat_error
                       ? hooks_.on_heartbeat_error(h.status())
                       : h.status().code() != absl::StatusCode::kFailedPrecondition;
      if (!go_on) {
        if (hooks_.on_slot_free) hooks_.on_slot_free(std::chrono::steady_clock::now());
        continue;
      }
    }
    CompleteRequest c;
    c.set_job_id(lease.job_id());
    c.set_token(lease.token());
    hooks_.make_result(slot, lease, c);
    auto r = Complete(c);
    auto done = std::chrono::steady_clock::now();
    if (hooks_.on_complete) hooks_.on_complete(c, r);
    if (hooks_.on_slot_free) hooks_.on_slot_free(done);
  }
}

absl::StatusOr<CompleteResponse> SimWorkerCore::Complete(const CompleteRequest& c) {
  auto r = client_->Complete(c, opt_.complete_timeout_ms);
  if (!opt_.retry_complete) return r;
  // Outbox: retry until acknowledged or refused as stale.
  int backoff = 20;
  while (!r.ok() && !stop_ && r.status().code() != absl::StatusCode::kFailedPrecondition &&
         r.status().code() != absl::StatusCode::kInvalidArgument) {
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
    backoff = std::min(backoff * 2, 1000);
    if (stop_) break;
    r = client_->Complete(c, opt_.complete_timeout_ms);
  }
  return r;
}

}  // namespace aqtest
