#include "worker/gateway/byte_budget.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace assessq::gateway {

int64_t ByteBudget::Take(int64_t want) {
  int64_t cur = used_.load();
  while (true) {
    int64_t ok = std::clamp<int64_t>(max_ - cur, 0, want);
    if (ok == 0 || used_.compare_exchange_weak(cur, cur + ok)) return ok;
  }
}

bool ByteBudget::TakeAll(int64_t n) {
  int64_t cur = used_.load();
  while (cur + n <= max_)
    if (used_.compare_exchange_weak(cur, cur + n)) return true;
  return false;
}

std::string ByteBudget::SpentReason() const {
  return absl::StrCat("the job's byte limit (", max_, " bytes) is spent");
}

}  // namespace assessq::gateway
