// Money for model tokens: the price table (coordinatord --prices FILE, or a
// batch's own from `assessctl submit --prices FILE`), what a Usage costs by
// it, the cap a profile puts on one job (limits.budget), and the clean-up of
// the usage a worker reports (model names come from the agent's traffic:
// untrusted). Pure: no I/O, no clock.
//
// The table's form (USD per million tokens of each kind; all four required):
//   {"note": "optional text",
//    "providers": {"anthropic": {
//        "claude-sonnet-4-5*": {"input": 3, "output": 15, "cache_write": 3.75,
//                               "cache_read": 0.30}}}}
// A model key ending in '*' prices every model name that starts with the rest
// (the longest such prefix wins; an exact name wins over any prefix). A model
// with no price is "price unknown": its tokens are counted, its money is not,
// and the Cost says so (price_unknown, unpriced_models) — never zero.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "assessq/v1/assessq.pb.h"

namespace assessq {

inline constexpr double kMaxPricePerMillion = 100000;  // a typo guard, far above any real price
inline constexpr size_t kMaxUsageModels = 64;          // models kept per attempt
inline constexpr size_t kMaxModelNameBytes = 200;
inline constexpr char kOtherModels[] = "(other models)";

class PriceTable {
 public:
  // `source` names where the text came from (a file, "prices_json") in errors.
  static absl::StatusOr<PriceTable> Parse(absl::string_view json, absl::string_view source);

  // The price of `model` of `provider`, or nullptr (price unknown).
  const v1::ModelPrice* Find(absl::string_view provider, absl::string_view model) const;
  bool empty() const { return prices_.empty(); }
  // Every entry, in (provider, model) order (for JobBudget.prices).
  std::vector<v1::ModelPrice> Entries() const;

 private:
  std::map<std::pair<std::string, std::string>, v1::ModelPrice> prices_;
};

// USD for `m` at price `p`.
double CostOfModel(const v1::ModelUsage& m, const v1::ModelPrice& p);
int64_t TokensOf(const v1::ModelUsage& m);  // input + output + cache write + cache read
// What `usage` costs by `table`. Models with tokens but no price are listed in
// unpriced_models ("provider/model") and set price_unknown.
v1::Cost CostOf(const v1::Usage& usage, const PriceTable& table);

// The usage as a worker reported it, made safe to store and show: names cut
// to kMaxModelNameBytes at a character boundary with invalid UTF-8 replaced,
// negative counts as 0, entries of the same (provider, model) merged, and past
// kMaxUsageModels entries the rest summed under model kOtherModels.
v1::Usage SanitizeUsage(const v1::Usage& usage);

// A profile's cap on one job: limits.budget {"max_tokens": N, "max_usd": X}
// (each optional, 0 = none). Absent: no cap. A bad value is an error naming
// the field.
struct JobCap {
  int64_t max_tokens = 0;
  double max_usd = 0;
  bool any() const { return max_tokens > 0 || max_usd > 0; }
};
absl::StatusOr<JobCap> JobCapFromProfile(absl::string_view profile_json);

// What is left of a job's cap after its earlier attempts used `used`: the
// cap is the job's, not each attempt's, so a retried job (infra, model API)
// starts with what its earlier attempts left. A kind already spent is left
// at the smallest amount the gateway can hold (1 token, or a millionth of a
// cent), never at 0 (0 would mean "no cap"): the next model request is
// refused as job_budget_exhausted. Unpriced usage counts for tokens only, as
// at the gateway.
JobCap RemainingCap(const JobCap& cap, const v1::Usage& used, const PriceTable& table);

// The lease's JobBudget for a cap and the prices in force (unset when no cap).
std::optional<v1::JobBudget> LeaseBudget(const JobCap& cap, const PriceTable& table);

// Claude Code's own figure (total_cost_usd in its stream-json "result" line):
// from details.agent_steps.total_cost_usd if the worker put it there, else
// the last result line of the log tail; nullopt when neither has one. The
// agent writes these lines itself: shown labelled as the agent's, never used
// for budgets.
std::optional<double> AgentReportedCostUsd(absl::string_view details_json,
                                           absl::string_view log_tail);

}  // namespace assessq
