// Tests server/fleet_limits with a fake clock: which provider a profile
// names; per-batch and per-provider maximums shared across batches; the start
// rate's token bucket (one second's worth of burst, then the rate); a
// model_api failure halving the provider's limit, holding starts for its
// retry-after, one cut per window (failures of attempts started before the
// cut only extend the hold), additive increase back to the configured
// maximum (or the level before the first cut) after which the cut is
// forgotten; Save/Restore for rollbacks; and what View reports. A worker's
// retry-after is capped, and one job cuts or holds a provider at most once
// per window.
#include "server/fleet_limits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

namespace assessq {
namespace {

using ::testing::HasSubstr;

const LimitView* Find(const std::vector<LimitView>& v, const std::string& scope,
                      const std::string& name) {
  for (const auto& l : v)
    if (l.scope == scope && l.name == name) return &l;
  return nullptr;
}

// Batch 1 on provider "anthropic" (limit `provider_limit`) with `running`
// jobs started at `t`.
void StartFleet(FleetLimits& f, int provider_limit, int64_t t, int running) {
  f.ConfigureBatch(1, "b", "anthropic", {});
  f.ConfigureProvider("anthropic", {provider_limit, 0});
  for (int i = 0; i < running; ++i) f.OnStart(1, t);
}

TEST(FleetLimitsTest, ProviderComesFromTheProfile) {
  EXPECT_EQ(FleetLimits::ProviderOf(R"({"network":{"mode":"gateway","model":"anthropic"}})"),
            "anthropic");
  EXPECT_EQ(FleetLimits::ProviderOf(R"({"provider":"standin"})"), "standin");
  EXPECT_EQ(FleetLimits::ProviderOf(R"({"network":{"mode":"none"}})"), "default");
  EXPECT_EQ(FleetLimits::ProviderOf("{}"), "default");
  EXPECT_EQ(FleetLimits::ProviderOf("not json"), "default");
  EXPECT_EQ(FleetLimits::ProviderOf(R"({"network":{"model":""},"provider":7})"), "default");
}

TEST(FleetLimitsTest, NoLimitsMeansUnlimited) {
  FleetLimits f;
  f.ConfigureBatch(1, "b", "p", {});
  for (int i = 0; i < 1000; ++i) f.OnStart(1, 0);
  EXPECT_EQ(f.Allow(1, 0).starts, FleetLimits::kUnlimited);
  EXPECT_EQ(f.Allow(99, 0).starts, FleetLimits::kUnlimited);  // unknown batch: not ours to hold
}

TEST(FleetLimitsTest, BatchMaximumCountsRunningJobs) {
  FleetLimits f;
  f.ConfigureBatch(1, "b", "p", {3, 0});
  EXPECT_EQ(f.Allow(1, 0).starts, 3);
  f.OnStart(1, 0);
  f.OnStart(1, 0);
  EXPECT_EQ(f.Allow(1, 0).starts, 1);
  f.OnStart(1, 0);
  auto a = f.Allow(1, 0);
  EXPECT_EQ(a.starts, 0);
  EXPECT_EQ(a.retry_at_ms, 0) << "only a job ending frees a slot; no timed wake-up";
  f.OnEnd(1);
  EXPECT_EQ(f.Allow(1, 0).starts, 1);
  f.UndoStart(1);
  EXPECT_EQ(f.Allow(1, 0).starts, 2);
}

TEST(FleetLimitsTest, ProviderMaximumIsSharedByItsBatches) {
  FleetLimits f;
  f.ConfigureBatch(1, "a", "anthropic", {});
  f.ConfigureBatch(2, "b", "anthropic", {});
  f.ConfigureBatch(3, "c", "other", {});
  f.ConfigureProvider("anthropic", {4, 0});
  f.OnStart(1, 0);
  f.OnStart(1, 0);
  f.OnStart(2, 0);
  EXPECT_EQ(f.Allow(1, 0).starts, 1);
  EXPECT_EQ(f.Allow(2, 0).starts, 1);
  f.OnStart(2, 0);
  EXPECT_EQ(f.Allow(1, 0).starts, 0);
  EXPECT_EQ(f.Allow(2, 0).starts, 0);
  EXPECT_EQ(f.Allow(3, 0).starts, FleetLimits::kUnlimited);
}

TEST(FleetLimitsTest, StartRateIsATokenBucketOfOneSecond) {
  FleetLimits f;
  f.ConfigureBatch(1, "b", "p", {0, 120});  // 2/s, burst 2
  int64_t t = 1'000'000;
  EXPECT_EQ(f.Allow(1, t).starts, 2);
  f.OnStart(1, t);
  f.OnStart(1, t);
  auto a = f.Allow(1, t);
  EXPECT_EQ(a.starts, 0);
  EXPECT_EQ(a.retry_at_ms, t + 500);
  EXPECT_EQ(f.Allow(1, t + 499).starts, 0);
  EXPECT_EQ(f.Allow(1, t + 500).starts, 1);
  EXPECT_EQ(f.Allow(1, t + 10'000).starts, 2) << "the burst never exceeds one second's worth";
  // A slow rate still lets one job start (burst at least 1).
  FleetLimits g;
  g.ConfigureBatch(1, "b", "p", {0, 6});  // one per 10 s
  EXPECT_EQ(g.Allow(1, t).starts, 1);
  g.OnStart(1, t);
  EXPECT_EQ(g.Allow(1, t).retry_at_ms, t + 10'000);
}

TEST(FleetLimitsTest, RecoveredLeasesCountButTakeNoToken) {
  FleetLimits f;
  f.ConfigureBatch(1, "b", "p", {2, 60});
  f.OnStart(1, 0, /*recovered=*/true);
  auto a = f.Allow(1, 0);
  EXPECT_EQ(a.starts, 1);
}

TEST(FleetLimitsTest, ModelApiFailureHalvesHoldsAndRecoversAdditively) {
  FleetLimits f;
  const int64_t t = 100'000;
  StartFleet(f, 16, t, 8);
  // A job leased at t fails with 429, retry-after 30 s, at t + 1000.
  f.OnModelApiFailure(1, t, 30'000, t + 1000, "job 7: 429");
  EXPECT_EQ(f.ProviderLimit("anthropic"), 4) << "half of the 8 that were running";
  auto a = f.Allow(1, t + 1000);
  EXPECT_EQ(a.starts, 0);
  EXPECT_EQ(a.retry_at_ms, t + 31'000);
  // Another failure of an attempt already in flight at the cut: no second cut.
  f.OnModelApiFailure(1, t, 0, t + 1500, "job 8: 429");
  EXPECT_EQ(f.ProviderLimit("anthropic"), 4);
  // The hold passes; 8 still running against a limit of 4.
  EXPECT_EQ(f.Allow(1, t + 31'000).starts, 0);
  for (int i = 0; i < 6; ++i) f.OnEnd(1);  // 2 running
  EXPECT_EQ(f.Allow(1, t + 31'000).starts, 2);
  // Successes raise it by 1/limit each: about one per window of 4 (4.25,
  // 4.49, 4.71, 4.92, 5.12).
  for (int i = 0; i < 4; ++i) f.OnSuccess(1);
  EXPECT_EQ(f.ProviderLimit("anthropic"), 4);
  f.OnSuccess(1);
  EXPECT_EQ(f.ProviderLimit("anthropic"), 5);
  // A failure of an attempt started after the cut cuts again.
  f.OnStart(1, t + 40'000);
  f.OnStart(1, t + 40'000);  // 4 running
  f.OnModelApiFailure(1, t + 40'000, 0, t + 41'000, "job 9: 529");
  EXPECT_EQ(f.ProviderLimit("anthropic"), 2) << "half of min(limit 5, running 4)";
  // Enough successes bring it back to the configured 16, then the cut is forgotten.
  for (int i = 0; i < 200; ++i) f.OnSuccess(1);
  EXPECT_EQ(f.ProviderLimit("anthropic"), 16);
  auto view = f.View(t + 50'000);
  const LimitView* v = Find(view, "provider", "anthropic");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->reason, "configured maximum 16");
}

TEST(FleetLimitsTest, AWorkersRetryAfterIsCapped) {
  struct Case {
    int64_t reported, capped;
  };
  const Case cases[] = {{0, 0},
                        {-5, 0},
                        {7'000, 7'000},
                        {FleetLimits::kMaxRetryAfterMs, FleetLimits::kMaxRetryAfterMs},
                        {FleetLimits::kMaxRetryAfterMs + 1, FleetLimits::kMaxRetryAfterMs},
                        {int64_t{1} << 62, FleetLimits::kMaxRetryAfterMs},
                        {std::numeric_limits<int64_t>::max(), FleetLimits::kMaxRetryAfterMs},
                        {std::numeric_limits<int64_t>::min(), 0}};
  for (const auto& c : cases) {
    EXPECT_EQ(FleetLimits::CapRetryAfter(c.reported), c.capped) << c.reported;
    FleetLimits f;
    f.ConfigureBatch(1, "b", "p", {});
    f.OnStart(1, 0);
    const int64_t now = 1'000'000;
    f.OnModelApiFailure(1, 0, c.reported, now, "429", /*job_id=*/7);
    auto a = f.Allow(1, now);
    EXPECT_EQ(a.retry_at_ms, c.capped > 0 ? now + c.capped : 0) << c.reported;
    // Past the cap, starts are no longer held, whatever the worker said.
    f.OnEnd(1);
    EXPECT_GT(f.Allow(1, now + FleetLimits::kMaxRetryAfterMs).starts, 0) << c.reported;
  }
}

TEST(FleetLimitsTest, OneJobCutsTheFleetAtMostOncePerWindow) {
  FleetLimits f;
  const int64_t t = 1'000'000;
  StartFleet(f, 64, t, 32);
  // Job 7 fails; it retries (a new lease after the cut) and fails again and
  // again inside the window: only the first failure cuts the fleet's limit,
  // and a repeat holds new starts for at most kRepeatHoldMs.
  f.OnModelApiFailure(1, t, 30'000, t + 1000, "job 7: 429", 7);
  EXPECT_EQ(f.ProviderLimit("anthropic"), 16);
  for (int k = 1; k <= 5; ++k) {
    int64_t at = t + k * 100'000;
    f.OnModelApiFailure(1, at - 30'000, FleetLimits::kMaxRetryAfterMs, at, "job 7: 429", 7);
    EXPECT_EQ(f.ProviderLimit("anthropic"), 16) << "repeat " << k;
    EXPECT_EQ(f.Allow(1, at).retry_at_ms, at + FleetLimits::kRepeatHoldMs) << "repeat " << k;
  }
  // Another job's failure (leased after the cut) still cuts.
  f.OnModelApiFailure(1, t + 2000, 0, t + 560'000, "job 8: 429", 8);
  EXPECT_EQ(f.ProviderLimit("anthropic"), 8);
  // Once the window has passed, job 7 counts again.
  const int64_t later = t + 1000 + FleetLimits::kJobWindowMs;
  f.OnModelApiFailure(1, later - 1, 0, later, "job 7: 429", 7);
  EXPECT_EQ(f.ProviderLimit("anthropic"), 4);
}

TEST(FleetLimitsTest, WithoutAConfiguredMaximumItRecoversToThePreviousLevel) {
  FleetLimits f;
  f.ConfigureBatch(1, "b", "p", {});
  for (int i = 0; i < 10; ++i) f.OnStart(1, 0);
  f.OnModelApiFailure(1, 0, 0, 10, "429");
  EXPECT_EQ(f.ProviderLimit("p"), 5);
  EXPECT_EQ(f.Allow(1, 10).starts, 0);
  for (int i = 0; i < 9; ++i) f.OnEnd(1);  // 1 running
  EXPECT_EQ(f.Allow(1, 10).starts, 4);
  for (int i = 0; i < 100; ++i) f.OnSuccess(1);
  EXPECT_EQ(f.ProviderLimit("p"), 0) << "back to no limit once it reached the old level";
  EXPECT_EQ(f.Allow(1, 10).starts, FleetLimits::kUnlimited);
}

TEST(FleetLimitsTest, NeverBelowOne) {
  FleetLimits f;
  f.ConfigureBatch(1, "b", "p", {});
  f.OnStart(1, 0);
  f.OnModelApiFailure(1, 0, 0, 1, "429");
  EXPECT_EQ(f.ProviderLimit("p"), 1);
  f.OnStart(1, 2);
  f.OnModelApiFailure(1, 2, 0, 3, "429");
  EXPECT_EQ(f.ProviderLimit("p"), 1);
}

TEST(FleetLimitsTest, SaveAndRestoreUndoACut) {
  FleetLimits f;
  f.ConfigureBatch(1, "b", "p", {});
  for (int i = 0; i < 6; ++i) f.OnStart(1, 0);
  auto m = f.Save(1);
  f.OnModelApiFailure(1, 0, 5000, 1, "429");
  EXPECT_EQ(f.ProviderLimit("p"), 3);
  f.Restore(m);
  EXPECT_EQ(f.ProviderLimit("p"), 0);
  EXPECT_EQ(f.Allow(1, 2).starts, FleetLimits::kUnlimited);
}

TEST(FleetLimitsTest, ViewShowsLimitsRunningAndWhy) {
  FleetLimits f;
  f.ConfigureBatch(1, "masader", "anthropic", {10, 30});
  f.ConfigureProvider("anthropic", {8, 0});
  for (int i = 0; i < 4; ++i) f.OnStart(1, 0, true);
  f.OnModelApiFailure(1, 0, 20'000, 1000, "job 3: HTTP 429");
  auto v = f.View(1000);
  const LimitView* b = Find(v, "batch", "masader");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->provider, "anthropic");
  EXPECT_EQ(b->running, 4);
  EXPECT_EQ(b->effective_limit, 10);
  EXPECT_THAT(b->reason, HasSubstr("start rate 30/min"));
  const LimitView* p = Find(v, "provider", "anthropic");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->effective_limit, 2);
  EXPECT_EQ(p->hold_until_ms, 21'000);
  EXPECT_THAT(p->reason, HasSubstr("cut to 2 after a model_api failure (job 3: HTTP 429)"));
  EXPECT_THAT(p->reason, HasSubstr("toward 8"));
  EXPECT_THAT(p->reason, HasSubstr("no new starts for 20 s"));
}

TEST(FleetLimitsTest, MovingABatchToAnotherProviderMovesItsRunningJobs) {
  FleetLimits f;
  f.ConfigureBatch(1, "b", "p", {});
  f.ConfigureProvider("q", {2, 0});
  f.OnStart(1, 0);
  f.OnStart(1, 0);
  f.ConfigureBatch(1, "b", "q", {});
  EXPECT_EQ(f.Allow(1, 0).starts, 0);
  f.ConfigureBatch(1, "b", "p", {});
  EXPECT_EQ(f.Allow(1, 0).starts, FleetLimits::kUnlimited);
}

}  // namespace
}  // namespace assessq
