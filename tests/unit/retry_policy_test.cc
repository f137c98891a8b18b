// Tests server/retry_policy: the default attempt limits per failure class and
// backoff, FromProto's validation (unknown classes, retrying `input`, limits
// outside 1..100, negative backoff), DecideRetry (gives up at each class's
// limit, never retries `input`, backs off exponentially with jitter in
// [cap/2, cap], capped at backoff_max_ms, never sooner than retry_after_ms)
// and the JSON round trip the engine stores batches' policies with. Every
// random draw comes from a seeded std::mt19937_64.
#include "server/retry_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <set>

namespace assessq {
namespace {

using ::testing::HasSubstr;

constexpr v1::FailureClass kAllClasses[] = {
    v1::FAILURE_CLASS_INFRA, v1::FAILURE_CLASS_MODEL_API, v1::FAILURE_CLASS_AGENT,
    v1::FAILURE_CLASS_INVALID_OUTPUT, v1::FAILURE_CLASS_INPUT};

v1::RetryPolicy Proto(std::initializer_list<std::pair<const char*, int>> max,
                      int64_t base = 0, int64_t cap = 0) {
  v1::RetryPolicy p;
  for (auto [k, v] : max) (*p.mutable_max_attempts())[k] = v;
  p.set_backoff_base_ms(base);
  p.set_backoff_max_ms(cap);
  return p;
}

TEST(RetryPolicyTest, Defaults) {
  RetryPolicy p;
  EXPECT_EQ(p.max_attempts.at(v1::FAILURE_CLASS_INFRA), 5);
  EXPECT_EQ(p.max_attempts.at(v1::FAILURE_CLASS_MODEL_API), 8);
  EXPECT_EQ(p.max_attempts.at(v1::FAILURE_CLASS_AGENT), 3);
  EXPECT_EQ(p.max_attempts.at(v1::FAILURE_CLASS_INVALID_OUTPUT), 3);
  EXPECT_EQ(p.max_attempts.at(v1::FAILURE_CLASS_INPUT), 1);
  EXPECT_EQ(p.max_attempts.size(), 5u);
  EXPECT_EQ(p.backoff_base_ms, 2000);
  EXPECT_EQ(p.backoff_max_ms, 600000);
}

TEST(RetryPolicyTest, EmptyProtoGivesDefaults) {
  auto p = RetryPolicy::FromProto(v1::RetryPolicy());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->ToJson(), RetryPolicy().ToJson());
}

TEST(RetryPolicyTest, FromProtoOverridesOnlyWhatItNames) {
  auto p = RetryPolicy::FromProto(Proto({{"agent", 7}, {"model_api", 100}}, 500, 9000));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->max_attempts.at(v1::FAILURE_CLASS_AGENT), 7);
  EXPECT_EQ(p->max_attempts.at(v1::FAILURE_CLASS_MODEL_API), 100);
  EXPECT_EQ(p->max_attempts.at(v1::FAILURE_CLASS_INFRA), 5);
  EXPECT_EQ(p->max_attempts.at(v1::FAILURE_CLASS_INVALID_OUTPUT), 3);
  EXPECT_EQ(p->max_attempts.at(v1::FAILURE_CLASS_INPUT), 1);
  EXPECT_EQ(p->backoff_base_ms, 500);
  EXPECT_EQ(p->backoff_max_ms, 9000);
}

TEST(RetryPolicyTest, FromProtoRejectsUnknownClass) {
  for (const char* name : {"bogus", "INFRA", "", "Agent", "failure_class_infra"}) {
    auto p = RetryPolicy::FromProto(Proto({{name, 2}}));
    ASSERT_FALSE(p.ok()) << name;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("unknown failure class"));
  }
}

TEST(RetryPolicyTest, FromProtoRefusesToRetryInput) {
  EXPECT_TRUE(RetryPolicy::FromProto(Proto({{"input", 1}})).ok());
  for (int n : {2, 3, 100}) {
    auto p = RetryPolicy::FromProto(Proto({{"input", n}}));
    ASSERT_FALSE(p.ok()) << n;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("never retried"));
  }
}

TEST(RetryPolicyTest, FromProtoRejectsOutOfRangeLimits) {
  for (int n : {-1, -100, 101, 1000000}) {
    auto p = RetryPolicy::FromProto(Proto({{"agent", n}}));
    ASSERT_FALSE(p.ok()) << n;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("1..100"));
  }
  EXPECT_TRUE(RetryPolicy::FromProto(Proto({{"agent", 1}})).ok());
  EXPECT_TRUE(RetryPolicy::FromProto(Proto({{"agent", 100}})).ok());
}

// assessq.proto documents RetryPolicy.max_attempts as "0 = default", but
// FromProto answers 0 with "must be 1..100". Regression test for that bug (fixed).
TEST(RetryPolicyTest, ZeroMaxAttemptsMeansDefaultAsProtoDocuments) {
  auto p = RetryPolicy::FromProto(Proto({{"agent", 0}, {"input", 0}}));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->max_attempts.at(v1::FAILURE_CLASS_AGENT), 3);
  EXPECT_EQ(p->max_attempts.at(v1::FAILURE_CLASS_INPUT), 1);
}

TEST(RetryPolicyTest, FromProtoRejectsNegativeBackoff) {
  EXPECT_EQ(RetryPolicy::FromProto(Proto({}, -1, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RetryPolicy::FromProto(Proto({}, 0, -1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RetryPolicyTest, FromProtoRaisesCapToBase) {
  auto p = RetryPolicy::FromProto(Proto({}, 5000, 1000));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->backoff_base_ms, 5000);
  EXPECT_EQ(p->backoff_max_ms, 5000);
  // A base above the default cap lifts the cap too.
  auto q = RetryPolicy::FromProto(Proto({}, 700000, 0));
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->backoff_max_ms, 700000);
}

// ------------------------------------------------------------- DecideRetry

TEST(DecideRetryTest, GivesUpAtEachClassLimit) {
  std::mt19937_64 rng(1);
  RetryPolicy p;
  for (auto cls : {v1::FAILURE_CLASS_INFRA, v1::FAILURE_CLASS_MODEL_API,
                   v1::FAILURE_CLASS_AGENT, v1::FAILURE_CLASS_INVALID_OUTPUT}) {
    const int max = p.max_attempts.at(cls);
    for (int n = 1; n < max; ++n)
      EXPECT_FALSE(DecideRetry(p, cls, n, 0, rng).give_up) << cls << " after " << n;
    EXPECT_TRUE(DecideRetry(p, cls, max, 0, rng).give_up) << cls;
    EXPECT_TRUE(DecideRetry(p, cls, max + 1, 0, rng).give_up) << cls;
  }
}

TEST(DecideRetryTest, HonoursCustomLimits) {
  std::mt19937_64 rng(2);
  auto p = RetryPolicy::FromProto(Proto({{"agent", 1}, {"infra", 10}}));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(DecideRetry(*p, v1::FAILURE_CLASS_AGENT, 1, 0, rng).give_up);
  EXPECT_FALSE(DecideRetry(*p, v1::FAILURE_CLASS_INFRA, 9, 0, rng).give_up);
  EXPECT_TRUE(DecideRetry(*p, v1::FAILURE_CLASS_INFRA, 10, 0, rng).give_up);
}

TEST(DecideRetryTest, InputAlwaysGivesUp) {
  std::mt19937_64 rng(3);
  RetryPolicy p;
  p.max_attempts[v1::FAILURE_CLASS_INPUT] = 50;  // even if someone sets it directly
  for (int n : {0, 1, 2, 49})
    EXPECT_TRUE(DecideRetry(p, v1::FAILURE_CLASS_INPUT, n, 0, rng).give_up) << n;
}

TEST(DecideRetryTest, UnknownClassGivesUp) {
  std::mt19937_64 rng(4);
  EXPECT_TRUE(DecideRetry(RetryPolicy(), v1::FAILURE_CLASS_UNSPECIFIED, 1, 0, rng).give_up);
}

TEST(DecideRetryTest, DelayGrowsExponentiallyWithinHalfCapToCap) {
  std::mt19937_64 rng(12345);
  RetryPolicy p;
  p.max_attempts[v1::FAILURE_CLASS_MODEL_API] = 100;
  p.backoff_base_ms = 1000;
  p.backoff_max_ms = int64_t{1} << 40;
  double prev_mean = 0;
  for (int n = 1; n <= 12; ++n) {
    const int64_t cap = int64_t{1000} << (n - 1);
    int64_t lo = std::numeric_limits<int64_t>::max(), hi = 0;
    double sum = 0;
    std::set<int64_t> distinct;
    for (int i = 0; i < 400; ++i) {
      RetryDecision d = DecideRetry(p, v1::FAILURE_CLASS_MODEL_API, n, 0, rng);
      ASSERT_FALSE(d.give_up);
      ASSERT_GE(d.delay_ms, cap / 2) << "n=" << n;
      ASSERT_LE(d.delay_ms, cap) << "n=" << n;
      lo = std::min(lo, d.delay_ms);
      hi = std::max(hi, d.delay_ms);
      sum += static_cast<double>(d.delay_ms);
      distinct.insert(d.delay_ms);
    }
    const double mean = sum / 400;
    // Full jitter: draws spread over the range, not a constant.
    EXPECT_GT(distinct.size(), 50u) << "n=" << n;
    EXPECT_LT(lo, cap / 2 + cap / 8) << "n=" << n;
    EXPECT_GT(hi, cap - cap / 8) << "n=" << n;
    // The mean (about 3/4 cap) roughly doubles per failure.
    if (n > 1) {
      EXPECT_GT(mean, prev_mean * 1.7) << "n=" << n;
      EXPECT_LT(mean, prev_mean * 2.3) << "n=" << n;
    }
    prev_mean = mean;
  }
}

TEST(DecideRetryTest, FirstDelayWithDefaultsIsOneToTwoSeconds) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    auto d = DecideRetry(RetryPolicy(), v1::FAILURE_CLASS_INFRA, 1, 0, rng);
    ASSERT_FALSE(d.give_up);
    ASSERT_GE(d.delay_ms, 1000);
    ASSERT_LE(d.delay_ms, 2000);
  }
}

TEST(DecideRetryTest, DelayIsCappedAtBackoffMax) {
  std::mt19937_64 rng(99);
  RetryPolicy p;
  p.max_attempts[v1::FAILURE_CLASS_MODEL_API] = 100;
  p.backoff_base_ms = 1000;
  p.backoff_max_ms = 5000;
  // 1000 << 3 = 8000 > 5000, and far beyond: the shift is clamped, the cap holds.
  for (int n : {4, 5, 10, 31, 32, 64, 99}) {
    for (int i = 0; i < 100; ++i) {
      auto d = DecideRetry(p, v1::FAILURE_CLASS_MODEL_API, n, 0, rng);
      ASSERT_FALSE(d.give_up);
      ASSERT_GE(d.delay_ms, 2500) << n;
      ASSERT_LE(d.delay_ms, 5000) << n;
    }
  }
  // The default cap (10 minutes) holds too.
  RetryPolicy def;
  def.max_attempts[v1::FAILURE_CLASS_MODEL_API] = 100;
  for (int n = 1; n < 100; ++n) {
    auto d = DecideRetry(def, v1::FAILURE_CLASS_MODEL_API, n, 0, rng);
    ASSERT_LE(d.delay_ms, 600000) << n;
    ASSERT_GE(d.delay_ms, std::min<int64_t>(600000, int64_t{2000} << (n - 1)) / 2) << n;
  }
}

// A backoff over a week is refused; a huge base set directly must not
// overflow `base * 2^n` into a zero delay (the doubling saturates at the cap).
TEST(DecideRetryTest, HugeBaseBackoffNeverOverflowsToZeroDelay) {
  EXPECT_FALSE(RetryPolicy::FromProto(Proto({{"model_api", 100}}, int64_t{1} << 34, 0)).ok());
  absl::StatusOr<RetryPolicy> p = RetryPolicy{};
  p->max_attempts[v1::FAILURE_CLASS_MODEL_API] = 100;
  p->backoff_base_ms = p->backoff_max_ms = int64_t{1} << 34;
  std::mt19937_64 rng(5);
  for (int n = 1; n < 100; ++n) {
    auto d = DecideRetry(*p, v1::FAILURE_CLASS_MODEL_API, n, 0, rng);
    ASSERT_FALSE(d.give_up);
    ASSERT_GE(d.delay_ms, (int64_t{1} << 34) / 2) << "after " << n << " failures";
  }
}

TEST(DecideRetryTest, HonoursRetryAfter) {
  std::mt19937_64 rng(11);
  RetryPolicy p;
  // Longer than any jitter: taken as is (even past the backoff cap).
  for (int64_t after : {int64_t{5000}, int64_t{900000}}) {
    auto d = DecideRetry(p, v1::FAILURE_CLASS_MODEL_API, 1, after, rng);
    ASSERT_FALSE(d.give_up);
    EXPECT_EQ(d.delay_ms, after);
  }
  // Shorter than the backoff: the backoff wins.
  for (int i = 0; i < 100; ++i) {
    auto d = DecideRetry(p, v1::FAILURE_CLASS_MODEL_API, 3, 10, rng);
    ASSERT_GE(d.delay_ms, 4000);
    ASSERT_LE(d.delay_ms, 8000);
  }
  // A retry-after never turns giving up into a retry.
  EXPECT_TRUE(DecideRetry(p, v1::FAILURE_CLASS_MODEL_API, 8, 1000, rng).give_up);
}

TEST(DecideRetryTest, SameSeedSameDelays) {
  std::mt19937_64 a(2024), b(2024), c(2025);
  RetryPolicy p;
  std::vector<int64_t> da, db, dc;
  for (int n = 1; n < 5; ++n) {
    da.push_back(DecideRetry(p, v1::FAILURE_CLASS_INFRA, n, 0, a).delay_ms);
    db.push_back(DecideRetry(p, v1::FAILURE_CLASS_INFRA, n, 0, b).delay_ms);
    dc.push_back(DecideRetry(p, v1::FAILURE_CLASS_INFRA, n, 0, c).delay_ms);
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

// -------------------------------------------------------------------- JSON

TEST(RetryPolicyJsonTest, RoundTrip) {
  auto p = RetryPolicy::FromProto(
      Proto({{"infra", 9}, {"agent", 1}, {"invalid_output", 4}}, 1234, 56789));
  ASSERT_TRUE(p.ok());
  const std::string json = p->ToJson();
  auto q = RetryPolicy::FromJson(json);
  ASSERT_TRUE(q.ok()) << q.status() << " from " << json;
  EXPECT_EQ(q->max_attempts, p->max_attempts);
  EXPECT_EQ(q->backoff_base_ms, 1234);
  EXPECT_EQ(q->backoff_max_ms, 56789);
  EXPECT_EQ(q->ToJson(), json);
  for (auto cls : kAllClasses) EXPECT_EQ(q->max_attempts.at(cls), p->max_attempts.at(cls));

  auto d = RetryPolicy::FromJson(RetryPolicy().ToJson());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->max_attempts, RetryPolicy().max_attempts);
  EXPECT_EQ(d->backoff_base_ms, 2000);
  EXPECT_EQ(d->backoff_max_ms, 600000);
}

TEST(RetryPolicyJsonTest, ToJsonNamesClasses) {
  const std::string json = RetryPolicy().ToJson();
  for (const char* name : {"infra", "model_api", "agent", "invalid_output", "input"})
    EXPECT_THAT(json, HasSubstr(std::string("\"") + name + "\"")) << json;
}

TEST(RetryPolicyJsonTest, FromJsonRejectsGarbage) {
  for (const char* j : {"", "not json", "[]", "42", "null"}) {
    auto p = RetryPolicy::FromJson(j);
    ASSERT_FALSE(p.ok()) << j;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kDataLoss) << j;
  }
  // Stored JSON goes through the same validation as the proto.
  EXPECT_EQ(RetryPolicy::FromJson(R"({"max_attempts": {"bogus": 2}})").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RetryPolicy::FromJson(R"({"max_attempts": {"input": 3}})").status().code(),
            absl::StatusCode::kInvalidArgument);
  // Missing fields mean defaults.
  auto partial = RetryPolicy::FromJson(R"({"max_attempts": {"agent": 6}})");
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(partial->max_attempts.at(v1::FAILURE_CLASS_AGENT), 6);
  EXPECT_EQ(partial->backoff_base_ms, 2000);
}

// A job that reached its model budget (worker/outcome.h: an agent failure
// whose reason starts "budget:") is never retried automatically, whatever
// the limit; other agent failures, and a "budget" that is not the reason's
// first word or of another class, are retried as before.
TEST(RetryPolicyTest, ABudgetFailureIsNeverRetried) {
  RetryPolicy p;
  std::mt19937_64 rng(7);
  struct Row {
    v1::FailureClass cls;
    const char* reason;
    bool give_up;
  } rows[] = {
      {v1::FAILURE_CLASS_AGENT, "budget: the job's model budget is spent: 1070 tokens of its 1000", true},
      {v1::FAILURE_CLASS_AGENT, "budget:", true},
      {v1::FAILURE_CLASS_AGENT, "agent exited with code 1", false},
      {v1::FAILURE_CLASS_AGENT, "agent exited: budget: x", false},
      {v1::FAILURE_CLASS_AGENT, "budgets are fine", false},
      {v1::FAILURE_CLASS_INFRA, "budget: not the agent's class", false},
      {v1::FAILURE_CLASS_MODEL_API, "budget: x", false},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.reason);
    EXPECT_EQ(DecideRetry(p, r.cls, 1, 0, rng, r.reason).give_up, r.give_up);
  }
  EXPECT_FALSE(DecideRetry(p, v1::FAILURE_CLASS_AGENT, 1, 0, rng).give_up);
}

}  // namespace
}  // namespace assessq
