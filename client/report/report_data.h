// The data behind `assessctl report`: turns a batch's export records (and,
// when fetched, each job's attempts with their network logs) into the one
// JSON document the HTML page renders: per-dataset rows with the full
// assessment and its provenance (attempts, image, durations, hosts contacted,
// denied requests), and the batch summary the charts draw (grade counts,
// per-criterion averages, score histogram, flags). Also embeds that document
// into the page template so no dataset value can end the <script> element.
// Pure: no I/O, no clock; unit-tested in tests/report/report_data_test.cc.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "assessq/v1/assessq.pb.h"

namespace assessq::report {

using ojson = nlohmann::ordered_json;

// The four grades of the built-in contract, best first.
inline constexpr std::array<const char*, 4> kGrades = {"ممتاز", "جيد", "مقبول", "ضعيف"};
// Rows whose assessment has no (or an unknown) grade are counted under this.
inline constexpr char kNoGrade[] = "بلا تقدير";
// The built-in contract's criteria (تفصيل_الجودة), in the schema's order.
inline constexpr std::array<const char*, 7> kCriteria = {
    "سهولة_الوصول",        "التوثيق",          "السلامة_الأخلاقية", "الترخيص",
    "قابلية_إعادة_الإنتاج", "المراجعة_العلمية", "جودة_البيانات"};
inline constexpr char kScoreKey[] = "درجة_الجودة";
inline constexpr char kGradeKey[] = "تقدير_الجودة";
inline constexpr char kBreakdownKey[] = "تفصيل_الجودة";

// Caps that keep one odd job from bloating the page.
inline constexpr size_t kMaxHostsPerDataset = 200;
inline constexpr size_t kMaxDeniedPerDataset = 200;
inline constexpr size_t kMaxErrorChars = 2000;

// One dataset: its export record and, if they were fetched, its attempts
// (ShowJob). `attempts_fetched` false means hosts and denied requests are
// unknown, not empty.
struct DatasetInput {
  v1::ExportRecord record;
  std::vector<v1::Attempt> attempts;
  bool attempts_fetched = false;
};

struct GradeCount {
  std::string grade;
  int64_t count = 0;
};

struct CriterionAverage {
  std::string key;
  double average = 0;  // over the datasets that have a numeric score for it
  int64_t count = 0;
};

struct Summary {
  int64_t datasets = 0;
  int64_t scored = 0;  // rows with a numeric overall score
  std::vector<GradeCount> grades;  // kGrades in order, then other grades seen, then kNoGrade
  std::vector<CriterionAverage> criteria;  // kCriteria, then other keys in first-seen order
  std::array<int64_t, 10> histogram{};     // scores 0-9, 10-19, ..., 90-100
  double score_mean = 0;
  int64_t score_min = 0, score_max = 0;
  std::map<std::string, int64_t> flag_counts;
  int64_t flagged = 0;          // rows with at least one flag
  int64_t retried = 0;          // rows that took more than one attempt
  int64_t denied_requests = 0;  // over all rows (attempt logs, else details_json)
  // Cost (the gateway's count priced by the coordinator; known only for rows
  // whose attempts were fetched): totals and the distribution per dataset
  // (kCostBins equal bins from 0 to the most a dataset cost).
  double cost_usd = 0;
  int64_t costed = 0;             // rows with a known cost
  bool cost_price_unknown = false;  // some tokens had no price
  double cost_max_usd = 0;
  std::array<int64_t, 10> cost_histogram{};
  double agent_cost_usd = 0;      // the agent's own figures, summed
};

// A dataset's cost over all its attempts; nullopt when its attempts were not
// fetched (unknown, not zero).
struct DatasetCost {
  double usd = 0;
  bool price_unknown = false;
  int64_t tokens = 0;
  double agent_usd = -1;  // -1: the agent reported nothing
};
std::optional<DatasetCost> CostOfDataset(const DatasetInput& in);

// A host a job's egress gateway saw, aggregated over all its attempts.
struct HostUse {
  std::string host;
  int64_t port = 0;
  int64_t requests = 0, allowed = 0, denied = 0;
  int64_t bytes_up = 0, bytes_down = 0;
};

// Aggregates netlog entries (the gateway's JSON array) into `hosts` by
// host:port (at most kMaxHostsPerDataset), and appends the denied entries to
// `denied` tagged with `attempt` (while it holds fewer than
// kMaxDeniedPerDataset). Returns the number of denied entries in this log,
// capped or not. Malformed text or entries are skipped.
int64_t AddNetlog(const std::string& netlog_json, int attempt, std::vector<HostUse>& hosts,
                  ojson& denied);

// The assessment's overall score (integer-valued number) and grade, if any.
std::optional<int64_t> ScoreOf(const ojson& assessment);
std::string GradeOf(const ojson& assessment);  // kNoGrade when missing or unknown

// One row of the page: table columns plus everything the detail view shows.
ojson DatasetJson(const DatasetInput& in, const std::vector<std::string>& criteria);

Summary Summarize(const std::vector<DatasetInput>& inputs);
ojson SummaryJson(const Summary& s);

// The whole document: {"batch", "generated_at_ms", "include_unfinished",
// "attempts_fetched", "summary", "criteria", "datasets": [...]}; `summary` is
// Summarize(inputs).
ojson ReportJson(const std::string& batch, int64_t generated_at_ms, bool include_unfinished,
                 const std::vector<DatasetInput>& inputs, const Summary& summary);

// JSON text safe inside <script type="application/json">: '<', '>' and '&'
// become \u003c, \u003e, \u0026 (so "</script>" and "<!--" cannot appear) and
// U+2028/U+2029 become \u2028/\u2029; invalid UTF-8 becomes U+FFFD.
std::string EmbedJson(const ojson& j);

// The placeholder the template holds exactly once, inside its data <script>.
inline constexpr char kDataPlaceholder[] = "__ASSESSQ_REPORT_DATA__";

// The page: `tmpl` with its placeholder replaced by EmbedJson(data).
// InvalidArgument if the template does not hold the placeholder exactly once.
absl::StatusOr<std::string> RenderReport(absl::string_view tmpl, const ojson& data);

// "ممتاز 377 · جيد 487 · مقبول 287 · ضعيف 1" (grades with a count only).
std::string GradeLine(const Summary& s);

}  // namespace assessq::report
