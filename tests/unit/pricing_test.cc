// Tests server/pricing and server/budget (pure): the price table's parser with
// every refusal path (each error names the source and the field), exact and
// prefix model matches, what a Usage costs (a model without a price is
// "price unknown", never zero), the clean-up of reported usage (untrusted
// names, negative counts, a flood of models), the profile's job cap and the
// lease budget built from it (what a retried job's earlier attempts left
// of it), the agent's own figure, and the batch budget
// decision, table-driven.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "server/budget.h"
#include "server/pricing.h"

namespace assessq {
namespace {

using ::testing::HasSubstr;

constexpr char kTable[] = R"({"note":"test","providers":{"anthropic":{
  "claude-sonnet-4-5*": {"input": 3, "output": 15, "cache_write": 3.75, "cache_read": 0.3},
  "claude-sonnet-4-5-special": {"input": 1, "output": 1, "cache_write": 1, "cache_read": 1},
  "claude-*": {"input": 100, "output": 100, "cache_write": 100, "cache_read": 100},
  "claude-haiku-4-5": {"input": 1, "output": 5, "cache_write": 1.25, "cache_read": 0.1}}}})";

v1::ModelUsage MU(std::string provider, std::string model, int64_t in, int64_t out, int64_t cw,
                  int64_t cr) {
  v1::ModelUsage m;
  m.set_provider(provider);
  m.set_model(model);
  m.set_requests(1);
  m.set_input_tokens(in);
  m.set_output_tokens(out);
  m.set_cache_write_tokens(cw);
  m.set_cache_read_tokens(cr);
  return m;
}

TEST(PriceTableTest, RefusesBadTablesNamingTheSourceAndTheField) {
  struct Case {
    const char* json;
    const char* want;  // in the message after "prices.json: "
  };
  const Case cases[] = {
      {"not json", "(file): is not valid JSON"},
      {"[]", "(file): must be a JSON object"},
      {"{}", "providers: is missing"},
      {R"({"providers":{},"extra":1})", "extra: unknown setting"},
      {R"({"note":3,"providers":{}})", "note: must be a string"},
      {R"({"providers":[]})", "providers: must be an object"},
      {R"({"providers":{"":{}}})", "providers.: provider name is empty"},
      {R"({"providers":{"a":[]}})", "providers.a: must be an object of model name"},
      {R"({"providers":{"a":{"":{}}}})", "providers.a.: model name is empty"},
      {R"({"providers":{"a":{"*":{}}}})", "providers.a.*: model name is empty"},
      {R"({"providers":{"a":{"m*x":{}}}})", "providers.a.m*x: '*' may only end"},
      {R"({"providers":{"a":{"m":3}}})", "providers.a.m: must be an object of prices"},
      {R"({"providers":{"a":{"m":{"input":1,"output":1,"cache_write":1,"cache_read":1,"inptu":1}}}})",
       "providers.a.m.inptu: unknown price"},
      {R"({"providers":{"a":{"m":{"input":1,"output":1,"cache_write":1}}}})",
       "providers.a.m.cache_read: is missing"},
      {R"({"providers":{"a":{"m":{"input":"3","output":1,"cache_write":1,"cache_read":1}}}})",
       "providers.a.m.input: must be a number"},
      {R"({"providers":{"a":{"m":{"input":1,"output":-1,"cache_write":1,"cache_read":1}}}})",
       "providers.a.m.output: must be 0 or more"},
      {R"({"providers":{"a":{"m":{"input":1,"output":1,"cache_write":1e9,"cache_read":1}}}})",
       "providers.a.m.cache_write: is over"},
  };
  for (const auto& c : cases) {
    auto t = PriceTable::Parse(c.json, "prices.json");
    ASSERT_FALSE(t.ok()) << c.json;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(std::string("prices.json: ") + c.want))
        << c.json;
  }
}

TEST(PriceTableTest, ExactNameWinsThenTheLongestPrefix) {
  auto t = PriceTable::Parse(kTable, "t");
  ASSERT_TRUE(t.ok()) << t.status();
  struct Case {
    const char* provider;
    const char* model;
    double want_input;  // -1: no price
  };
  const Case cases[] = {
      {"anthropic", "claude-sonnet-4-5-20250929", 3},
      {"anthropic", "claude-sonnet-4-5", 3},  // the prefix with nothing after it
      {"anthropic", "claude-sonnet-4-5-special", 1},
      {"anthropic", "claude-haiku-4-5", 1},
      {"anthropic", "claude-haiku-4-5-20251001", 100},  // exact name is not a prefix
      {"anthropic", "claude-opus-4-5", 100},
      {"anthropic", "gpt-5", -1},
      {"other", "claude-sonnet-4-5", -1},
      {"anthropi", "claude-sonnet-4-5", -1},
  };
  for (const auto& c : cases) {
    const v1::ModelPrice* p = t->Find(c.provider, c.model);
    if (c.want_input < 0) {
      EXPECT_EQ(p, nullptr) << c.provider << "/" << c.model;
    } else {
      ASSERT_NE(p, nullptr) << c.provider << "/" << c.model;
      EXPECT_DOUBLE_EQ(p->input(), c.want_input) << c.model;
    }
  }
}

TEST(PriceTableTest, TheShippedExampleParsesAndPricesClaudeCodesModels) {
  std::ifstream f(std::string(PROJECT_SOURCE_DIR) + "/deploy/config/prices.example.json");
  std::stringstream ss;
  ss << f.rdbuf();
  auto t = PriceTable::Parse(ss.str(), "prices.example.json");
  ASSERT_TRUE(t.ok()) << t.status();
  for (const char* m : {"claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101",
                        "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001",
                        "claude-sonnet-4-20250514", "claude-opus-4-20250514",
                        "claude-3-5-haiku-20241022"})
    EXPECT_NE(t->Find("anthropic", m), nullptr) << m;
  EXPECT_DOUBLE_EQ(t->Find("anthropic", "claude-sonnet-4-5-20250929")->output(), 15.0);
}

TEST(CostTest, PricedModelsAddUpAndUnknownOnesAreNeverZero) {
  auto t = PriceTable::Parse(kTable, "t");
  ASSERT_TRUE(t.ok());
  v1::Usage u;
  *u.add_models() = MU("anthropic", "claude-sonnet-4-5-20250929", 1000000, 100000, 200000, 2000000);
  *u.add_models() = MU("anthropic", "claude-haiku-4-5", 500000, 0, 0, 0);
  v1::Cost c = CostOf(u, *t);
  // 3 + 1.5 + 0.75 + 0.6 = 5.85 ; haiku 0.5
  EXPECT_NEAR(c.usd(), 6.35, 1e-9);
  EXPECT_FALSE(c.price_unknown());
  *u.add_models() = MU("standin", "mystery-1", 10, 10, 0, 0);
  *u.add_models() = MU("standin", "no-tokens", 0, 0, 0, 0);  // no tokens: nothing unknown
  c = CostOf(u, *t);
  EXPECT_NEAR(c.usd(), 6.35, 1e-9);
  EXPECT_TRUE(c.price_unknown());
  EXPECT_THAT(c.unpriced_models(), ::testing::ElementsAre("standin/mystery-1"));
  // An empty table prices nothing: unknown, not free.
  PriceTable empty;
  c = CostOf(u, empty);
  EXPECT_TRUE(c.price_unknown());
  EXPECT_EQ(c.usd(), 0);
  EXPECT_EQ(c.unpriced_models_size(), 3);
}

TEST(SanitizeUsageTest, NamesAreCleanedCountsClampedAndAFloodIsSummed) {
  v1::Usage u;
  *u.add_models() = MU("anthropic", std::string("bad\xff\xfe") + std::string(500, 'x'), 5, -7, 1, 1);
  *u.add_models() = MU("anthropic", "m", 1, 1, 1, 1);
  *u.add_models() = MU("anthropic", "m", 2, 2, 2, 2);  // the same model twice: merged
  for (int i = 0; i < 200; ++i) *u.add_models() = MU("anthropic", "flood" + std::to_string(i), 1, 0, 0, 0);
  u.set_budget_exhausted(true);
  v1::Usage s = SanitizeUsage(u);
  EXPECT_TRUE(s.budget_exhausted());
  ASSERT_EQ(static_cast<size_t>(s.models_size()), kMaxUsageModels);
  EXPECT_LE(s.models(0).model().size(), kMaxModelNameBytes);
  EXPECT_EQ(s.models(0).model().find('\xff'), std::string::npos);
  EXPECT_EQ(s.models(0).output_tokens(), 0);
  EXPECT_EQ(s.models(1).model(), "m");
  EXPECT_EQ(s.models(1).input_tokens(), 3);
  const auto& other = s.models(s.models_size() - 1);
  EXPECT_EQ(other.model(), kOtherModels);
  // 200 flood entries, 61 kept by name: 139 summed.
  EXPECT_EQ(other.input_tokens(), 200 - static_cast<int64_t>(kMaxUsageModels - 3));
  int64_t total_in = 0;
  for (const auto& m : s.models()) total_in += m.input_tokens();
  EXPECT_EQ(total_in, 5 + 3 + 200);  // nothing lost
}

TEST(JobCapTest, ProfileBudgetIsReadAndBadValuesNameTheField) {
  struct Case {
    const char* profile;
    int64_t tokens;
    double usd;
    const char* error;  // nullptr: ok
  };
  const Case cases[] = {
      {"{}", 0, 0, nullptr},
      {"not json", 0, 0, nullptr},
      {R"({"limits":{"timeout_s":5}})", 0, 0, nullptr},
      {R"({"limits":{"budget":{"max_tokens":1000}}})", 1000, 0, nullptr},
      {R"({"limits":{"budget":{"max_usd":0.5,"max_tokens":0}}})", 0, 0.5, nullptr},
      {R"({"limits":{"budget":7}})", 0, 0, "profile.limits.budget must be an object"},
      {R"({"limits":{"budget":{"max_tokens":-1}}})", 0, 0, "profile.limits.budget.max_tokens"},
      {R"({"limits":{"budget":{"max_tokens":1.5}}})", 0, 0, "profile.limits.budget.max_tokens"},
      {R"({"limits":{"budget":{"max_usd":"1"}}})", 0, 0, "profile.limits.budget.max_usd"},
      {R"({"limits":{"budget":{"max_usd":-2}}})", 0, 0, "profile.limits.budget.max_usd"},
      {R"({"limits":{"budget":{"max_dollars":2}}})", 0, 0, "unknown setting 'max_dollars'"},
  };
  for (const auto& c : cases) {
    auto cap = JobCapFromProfile(c.profile);
    if (c.error) {
      ASSERT_FALSE(cap.ok()) << c.profile;
      EXPECT_THAT(std::string(cap.status().message()), HasSubstr(c.error));
      continue;
    }
    ASSERT_TRUE(cap.ok()) << c.profile << cap.status();
    EXPECT_EQ(cap->max_tokens, c.tokens) << c.profile;
    EXPECT_DOUBLE_EQ(cap->max_usd, c.usd) << c.profile;
  }
}

TEST(JobCapTest, LeaseBudgetCarriesTheCapAndThePrices) {
  auto t = PriceTable::Parse(kTable, "t");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(LeaseBudget(JobCap{}, *t).has_value());
  auto b = LeaseBudget(JobCap{500, 1.25}, *t);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->max_tokens(), 500);
  EXPECT_DOUBLE_EQ(b->max_usd(), 1.25);
  EXPECT_EQ(b->prices_size(), 4);
}

TEST(JobCapTest, RetriesGetWhatTheJobsEarlierAttemptsLeft) {
  auto t = PriceTable::Parse(kTable, "t");
  ASSERT_TRUE(t.ok());
  // haiku: 1 USD per million input tokens; "mystery" has no price.
  auto used = [](std::vector<v1::ModelUsage> ms) {
    v1::Usage u;
    for (auto& m : ms) *u.add_models() = m;
    return u;
  };
  struct Case {
    const char* name;
    JobCap cap;
    v1::Usage used;
    int64_t want_tokens;
    double want_usd;
  };
  const std::vector<Case> cases = {
      {"nothing used: the whole cap", {1000, 2.0}, used({}), 1000, 2.0},
      {"no cap stays no cap", {0, 0}, used({MU("anthropic", "claude-haiku-4-5", 10, 0, 0, 0)}), 0,
       0},
      {"tokens of every kind and model count", {1000, 0},
       used({MU("anthropic", "claude-haiku-4-5", 100, 50, 25, 25),
             MU("standin", "mystery", 300, 0, 0, 0)}),
       500, 0},
      {"money: priced models only", {0, 2.0},
       used({MU("anthropic", "claude-haiku-4-5", 500000, 0, 0, 0),
             MU("standin", "mystery", 900000, 0, 0, 0)}),
       0, 1.5},
      // Spent: the least the gateway can hold, never 0 (which means no cap).
      {"tokens spent", {100, 0}, used({MU("standin", "mystery", 150, 0, 0, 0)}), 1, 0},
      {"money spent", {0, 0.1}, used({MU("anthropic", "claude-haiku-4-5", 200000, 0, 0, 0)}), 0,
       1e-8},
  };
  for (const auto& c : cases) {
    JobCap left = RemainingCap(c.cap, c.used, *t);
    EXPECT_EQ(left.max_tokens, c.want_tokens) << c.name;
    EXPECT_NEAR(left.max_usd, c.want_usd, 1e-12) << c.name;
    EXPECT_EQ(left.any(), c.cap.any()) << c.name;
  }
}

TEST(AgentCostTest, FromDetailsElseTheLastResultLineElseNone) {
  const std::string log =
      "{\"type\":\"system\",\"subtype\":\"init\"}\n"
      "{\"type\":\"result\",\"total_cost_usd\":0.25}\n"
      "noise {\"type\":\"result\",\"total_cost_usd\":9}\n"
      "{\"type\":\"result\",\"subtype\":\"success\",\"total_cost_usd\":0.5}\n";
  EXPECT_EQ(AgentReportedCostUsd("", log), 0.5);
  EXPECT_EQ(AgentReportedCostUsd(R"({"agent_steps":{"total_cost_usd":1.5}})", log), 1.5);
  EXPECT_EQ(AgentReportedCostUsd(R"({"agent_steps":{"total_cost_usd":-1}})", log), 0.5);
  EXPECT_EQ(AgentReportedCostUsd("{}", "plain text\n"), std::nullopt);
  EXPECT_EQ(AgentReportedCostUsd("{}", "{\"type\":\"result\",\"total_cost_usd\":\"x\"}"),
            std::nullopt);
  EXPECT_EQ(AgentReportedCostUsd("{}", "{\"type\":\"assistant\",\"total_cost_usd\":3}"),
            std::nullopt);
}

TEST(BudgetTest, HoldsOnceSpentPlusRunningReservesWouldPassTheBudget) {
  struct Case {
    const char* name;
    BudgetInputs in;
    bool hold;
    double reserve;
  };
  const Case cases[] = {
      {"no budget", {0, 100, 5, 1, 2}, false, 1},
      {"negative budget is none", {-1, 100, 5, 1, 2}, false, 1},
      {"under, capped jobs fit", {10, 2, 3, 2, -1}, false, 2},      // 2+6=8, +2=10 <= 10
      {"next capped job would pass", {10, 3, 3, 2, -1}, true, 2},  // 3+6=9, +2=11 > 10
      {"spent reaches the budget", {10, 10, 0, 0, -1}, true, 0},
      {"spent past the budget", {10, 12, 0, 0, 5}, true, 5},
      {"uncapped, nothing finished: reserve 0", {10, 9.9, 4, 0, -1}, false, 0},
      {"uncapped: the average is the reserve", {10, 6, 2, 0, 1.5}, true, 1.5},  // 6+3=9,+1.5>10
      {"uncapped: fits with the average", {10, 5, 2, 0, 1.5}, false, 1.5},      // 5+3=8,+1.5<=10
      {"cap wins over the average", {10, 0, 1, 4, 0.1}, false, 4},             // 0+4,+4=8
      {"running cap alone reaches it", {10, 0, 3, 4, -1}, true, 4},             // 12 >= 10
  };
  for (const auto& c : cases) {
    BudgetDecision d = DecideBudget(c.in);
    EXPECT_EQ(d.hold, c.hold) << c.name << ": " << d.reason;
    EXPECT_DOUBLE_EQ(d.reserve_usd, c.reserve) << c.name;
    EXPECT_EQ(d.reason.empty(), !d.hold) << c.name;
  }
  BudgetDecision d = DecideBudget({10, 3, 3, 2, -1});
  EXPECT_THAT(d.reason, HasSubstr("would pass the budget $10.0000"));
}

}  // namespace
}  // namespace assessq
