// A job's byte budget (JobLimits::max_total_bytes): every byte the gateway
// forwards for the job, either way, on all its connections together (the
// gateway's own answers aside). Lock-free; pure (no I/O), unit-tested.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace assessq::gateway {

class ByteBudget {
 public:
  explicit ByteBudget(int64_t max_total_bytes) : max_(max_total_bytes) {}
  // Takes up to `want` bytes and returns how many may be moved (0 when spent).
  int64_t Take(int64_t want);
  // A head (a request's, a ClientHello, a response's) goes whole or not at
  // all: whether `n` bytes fit, and taking all `n` (false: nothing taken).
  bool Fits(int64_t n) const { return used_.load() + n <= max_; }
  bool TakeAll(int64_t n);
  // Bytes not yet taken (<= 0 when spent).
  int64_t Left() const { return max_ - used_.load(); }
  // The refusal's sentence once the budget is spent.
  std::string SpentReason() const;

 private:
  const int64_t max_;
  std::atomic<int64_t> used_{0};
};

}  // namespace assessq::gateway
