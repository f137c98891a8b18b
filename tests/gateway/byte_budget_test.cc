// The job's byte budget (worker/gateway/byte_budget.h), with no I/O: partial
// takes for relayed bytes, all-or-nothing takes for heads, and that threads
// taking at once never admit a byte more than the limit.
#include "worker/gateway/byte_budget.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace assessq::gateway {
namespace {

TEST(ByteBudget, TakesAndRefuses) {
  // One budget of 100 bytes, a sequence of takes and what each returns.
  enum Op { kTake, kTakeAll, kFits };
  struct Step {
    Op op;
    int64_t n;
    int64_t want;  // Take: bytes granted; TakeAll/Fits: 1 true, 0 false
    int64_t left;  // Left() afterwards
  };
  const std::vector<Step> steps = {
      {kFits, 100, 1, 100},   {kFits, 101, 0, 100},  {kTake, 30, 30, 70},    {kTakeAll, 70, 1, 0},
      {kTake, 5, 0, 0},       {kTakeAll, 1, 0, 0},   {kFits, 1, 0, 0},       {kFits, 0, 1, 0},
  };
  ByteBudget b(100);
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    int64_t got = s.op == kTake ? b.Take(s.n) : s.op == kTakeAll ? b.TakeAll(s.n) : b.Fits(s.n);
    EXPECT_EQ(got, s.want) << "step " << i;
    EXPECT_EQ(b.Left(), s.left) << "step " << i;
  }
}

TEST(ByteBudget, APartialTakeGrantsWhatIsLeftAndAHeadNothing) {
  ByteBudget b(10);
  EXPECT_FALSE(b.TakeAll(11));  // a head too large takes nothing
  EXPECT_EQ(b.Left(), 10);
  EXPECT_EQ(b.Take(25), 10);  // a relayed read is cut to what is left
  EXPECT_EQ(b.Left(), 0);
  EXPECT_EQ(b.SpentReason(), "the job's byte limit (10 bytes) is spent");
}

TEST(ByteBudget, ConcurrentTakesNeverExceedTheLimit) {
  constexpr int64_t kMax = 1'000'000;
  ByteBudget b(kMax);
  std::vector<std::thread> threads;
  std::vector<int64_t> taken(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200000; ++i) taken[t] += (i % 2) ? b.Take(7) : (b.TakeAll(3) ? 3 : 0);
    });
  for (auto& t : threads) t.join();
  int64_t sum = 0;
  for (int64_t n : taken) sum += n;
  EXPECT_LE(sum, kMax);
  EXPECT_EQ(sum, kMax - b.Left());
}

}  // namespace
}  // namespace assessq::gateway
