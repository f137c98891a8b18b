// Unit tests of client/report/report_data.h: grade counts and criterion
// averages over hand-made export records, netlog aggregation into hosts and
// denied requests, rows for jobs without a result, the embedding of the data
// into the page (no "</script>", "<!--" or raw U+2028 can reach the HTML, odd
// and invalid-UTF-8 dataset names survive), and the compiled-in template
// (right-to-left Arabic, one placeholder, nothing fetched from the network).
#include "client/report/report_data.h"

#include <gtest/gtest.h>

#include <regex>

#include "client/report/report_template.h"

namespace assessq::report {
namespace {

// A valid-looking assessment with the given score, grade and criteria.
std::string Assessment(const std::string& name, int score, const std::string& grade,
                       std::vector<int> crit, ojson extra = ojson::object()) {
  ojson breakdown = ojson::object();
  for (size_t i = 0; i < crit.size() && i < kCriteria.size(); ++i) breakdown[kCriteria[i]] = crit[i];
  ojson a = {{"الاسم", name},
             {"الاسم_الأصلي", name},
             {kScoreKey, score},
             {kGradeKey, grade},
             {"الملخص", "ملخص"},
             {kBreakdownKey, breakdown}};
  for (auto& [k, v] : extra.items()) a[k] = v;
  return a.dump();
}

DatasetInput Input(int64_t id, const std::string& key, const std::string& result_json,
                   std::vector<std::string> flags = {}, int attempts = 1) {
  DatasetInput in;
  auto* j = in.record.mutable_job();
  j->set_job_id(id);
  j->set_batch("b");
  j->set_dataset_key(key);
  j->set_dataset_name(key);
  j->set_source_name(key + ".json");
  j->set_state(result_json.empty() ? v1::JOB_STATE_NEEDS_ATTENTION : v1::JOB_STATE_SUCCEEDED);
  j->set_attempts(attempts);
  in.record.set_result_json(result_json);
  in.record.set_attempts(attempts);
  in.record.set_duration_ms(1500);
  in.record.set_worker("w1");
  for (auto& f : flags) in.record.add_flags(f);
  return in;
}

int64_t CountOf(const Summary& s, const std::string& grade) {
  for (const auto& g : s.grades)
    if (g.grade == grade) return g.count;
  return -1;
}

TEST(ReportData, CountsGradesInContractOrderAndAveragesCriteria) {
  std::vector<DatasetInput> in = {
      Input(1, "a", Assessment("A", 90, "ممتاز", {100, 80, 60, 40, 20, 0, 70})),
      Input(2, "b", Assessment("B", 85, "ممتاز", {50, 60, 70, 80, 90, 100, 80})),
      Input(3, "c", Assessment("C", 65, "جيد", {0, 10, 20, 30, 40, 50, 60}), {"no_sources"}, 2),
      Input(4, "d", Assessment("D", 39, "ضعيف", {30, 30, 30, 30, 30, 30, 30}),
            {"no_sources", "claims_match_without_inspection"}),
      Input(5, "e", ""),  // no result (needs attention)
  };
  Summary s = Summarize(in);
  EXPECT_EQ(s.datasets, 5);
  EXPECT_EQ(s.scored, 4);
  ASSERT_GE(s.grades.size(), 4u);
  EXPECT_EQ(s.grades[0].grade, "ممتاز");
  EXPECT_EQ(s.grades[1].grade, "جيد");
  EXPECT_EQ(s.grades[2].grade, "مقبول");
  EXPECT_EQ(s.grades[3].grade, "ضعيف");
  EXPECT_EQ(CountOf(s, "ممتاز"), 2);
  EXPECT_EQ(CountOf(s, "جيد"), 1);
  EXPECT_EQ(CountOf(s, "مقبول"), 0);  // listed even when empty: the chart shows the gap
  EXPECT_EQ(CountOf(s, "ضعيف"), 1);
  EXPECT_EQ(CountOf(s, kNoGrade), 1);
  ASSERT_EQ(s.criteria.size(), kCriteria.size());
  EXPECT_EQ(s.criteria[0].key, kCriteria[0]);
  EXPECT_DOUBLE_EQ(s.criteria[0].average, (100 + 50 + 0 + 30) / 4.0);
  EXPECT_EQ(s.criteria[0].count, 4);
  EXPECT_DOUBLE_EQ(s.criteria[5].average, (0 + 100 + 50 + 30) / 4.0);
  EXPECT_DOUBLE_EQ(s.score_mean, (90 + 85 + 65 + 39) / 4.0);
  EXPECT_EQ(s.score_min, 39);
  EXPECT_EQ(s.score_max, 90);
  EXPECT_EQ(s.histogram[9], 1);  // 90
  EXPECT_EQ(s.histogram[8], 1);  // 85
  EXPECT_EQ(s.histogram[6], 1);  // 65
  EXPECT_EQ(s.histogram[3], 1);  // 39
  EXPECT_EQ(s.flag_counts["no_sources"], 2);
  EXPECT_EQ(s.flag_counts["claims_match_without_inspection"], 1);
  EXPECT_EQ(s.flagged, 2);
  EXPECT_EQ(s.retried, 1);
  EXPECT_EQ(GradeLine(s), "ممتاز 2 · جيد 1 · ضعيف 1 · " + std::string(kNoGrade) + " 1");
}

TEST(ReportData, ScoreOf100GoesInTheTopBinAndOtherCriteriaAndGradesAreKept) {
  ojson extra = {{kBreakdownKey, {{"سهولة_الوصول", 100}, {"معيار_إضافي", 40}}}};
  std::vector<DatasetInput> in = {
      Input(1, "a", Assessment("A", 100, "ممتاز", {}, extra)),
      Input(2, "b", Assessment("B", 50, "grade-x", {})),
  };
  Summary s = Summarize(in);
  EXPECT_EQ(s.histogram[9], 1);
  EXPECT_EQ(CountOf(s, "grade-x"), 1);  // an unknown grade is shown, after the four
  EXPECT_EQ(s.grades[4].grade, "grade-x");
  ASSERT_EQ(s.criteria.size(), kCriteria.size() + 1);
  EXPECT_EQ(s.criteria.back().key, "معيار_إضافي");
  EXPECT_DOUBLE_EQ(s.criteria.back().average, 40);
  EXPECT_EQ(s.criteria[1].count, 0);  // no dataset had التوثيق
}

TEST(ReportData, NetlogBecomesHostsAndDeniedRequests) {
  std::vector<HostUse> hosts;
  ojson denied = ojson::array();
  std::string log = R"([
    {"ts": 1, "method": "GET", "host": "hf.co", "port": 443, "decision": "allow", "bytes_up": 10, "bytes_down": 100},
    {"ts": 2, "method": "GET", "host": "hf.co", "port": 443, "decision": "allow", "bytes_up": 5, "bytes_down": 50},
    {"ts": 3, "method": "CONNECT", "host": "evil.example", "port": 443, "decision": "deny", "reason": "not allowed"},
    "junk", {"decision": "deny", "rule": "no-host"}
  ])";
  EXPECT_EQ(AddNetlog(log, 2, hosts, denied), 2);
  EXPECT_EQ(AddNetlog("not json", 3, hosts, denied), 0);
  EXPECT_EQ(AddNetlog("", 3, hosts, denied), 0);
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0].host, "hf.co");
  EXPECT_EQ(hosts[0].requests, 2);
  EXPECT_EQ(hosts[0].allowed, 2);
  EXPECT_EQ(hosts[0].bytes_down, 150);
  EXPECT_EQ(hosts[1].host, "evil.example");
  EXPECT_EQ(hosts[1].denied, 1);
  ASSERT_EQ(denied.size(), 2u);
  EXPECT_EQ(denied[0]["attempt"], 2);
  EXPECT_EQ(denied[0]["method"], "CONNECT");
  EXPECT_EQ(denied[0]["reason"], "not allowed");
  EXPECT_EQ(denied[1]["reason"], "no-host");  // falls back to the rule
}

TEST(ReportData, RowCarriesProvenanceAttemptsAndTheWholeAssessment) {
  DatasetInput in = Input(7, "masader_x", Assessment("X", 70, "جيد", {70, 70, 70, 70, 70, 70, 70}), {}, 2);
  in.record.set_details_json(R"({"image":"img:1","duration_ms":1234,"denied_requests":1})");
  v1::Attempt a1;
  a1.set_number(1);
  a1.set_outcome("failed");
  a1.set_failure_class(v1::FAILURE_CLASS_AGENT);
  a1.set_error("boom");
  a1.set_netlog_json(R"([{"host":"x.example","port":80,"decision":"deny","method":"GET"}])");
  v1::Attempt a2;
  a2.set_number(2);
  a2.set_outcome("succeeded");
  a2.set_details_json(R"({"image":"img:1","duration_ms":900})");
  a2.set_netlog_json(R"([{"host":"hf.co","port":443,"decision":"allow","method":"GET"}])");
  in.attempts = {a1, a2};
  in.attempts_fetched = true;
  std::vector<std::string> crit(kCriteria.begin(), kCriteria.end());
  ojson row = DatasetJson(in, crit);
  EXPECT_EQ(row["id"], 7);
  EXPECT_EQ(row["name"], "X");
  EXPECT_EQ(row["score"], 70);
  EXPECT_EQ(row["grade"], "جيد");
  EXPECT_EQ(row["crit"].size(), kCriteria.size());
  EXPECT_EQ(row["attempts"], 2);
  EXPECT_EQ(row["provenance"]["image"], "img:1");
  ASSERT_EQ(row["attempt_list"].size(), 2u);
  EXPECT_EQ(row["attempt_list"][0]["failure_class"], "agent");
  EXPECT_EQ(row["attempt_list"][0]["denied"], 1);
  EXPECT_EQ(row["attempt_list"][1]["run_ms"], 900);
  EXPECT_EQ(row["hosts"].size(), 2u);
  EXPECT_EQ(row["denied_count"], 1);
  EXPECT_EQ(row["denied"][0]["host"], "x.example");
  // Every key of the stored assessment, in its stored order.
  ASSERT_TRUE(row["assessment"].is_object());
  EXPECT_EQ(row["assessment"].begin().key(), "الاسم");
  EXPECT_EQ(row["assessment"]["الملخص"], "ملخص");

  in.attempts_fetched = false;
  row = DatasetJson(in, crit);
  EXPECT_TRUE(row["hosts"].is_null());  // unknown, not "none"
  EXPECT_EQ(row["denied_count"], 1);    // from the result attempt's details
}

TEST(ReportData, TheAgentsReportedStepsBecomeTheirOwnTimeline) {
  DatasetInput in = Input(8, "masader_y", Assessment("Y", 70, "جيد", {70, 70, 70, 70, 70, 70, 70}), {}, 1);
  in.record.set_details_json(
      R"({"image":"img:1","agent_steps":{"reported_by":"agent","complete":true,)"
      R"("steps":[{"tool":"WebFetch","target":"https://aclanthology.org/P17","ok":true,"duration_ms":1200}]}})");
  std::vector<std::string> crit(kCriteria.begin(), kCriteria.end());
  ojson row = DatasetJson(in, crit);
  ASSERT_TRUE(row["steps"].is_object()) << row.dump();
  EXPECT_EQ(row["steps"]["reported_by"], "agent");
  EXPECT_EQ(row["steps"]["steps"][0]["tool"], "WebFetch");
  EXPECT_FALSE(row["provenance"].contains("agent_steps"));
  EXPECT_EQ(row["provenance"]["image"], "img:1");
  in.record.set_details_json(R"({"image":"img:1"})");
  EXPECT_TRUE(DatasetJson(in, crit)["steps"].is_null());
}

TEST(ReportData, RowWithoutResultKeepsTheErrorAndNulls) {
  DatasetInput in = Input(9, "broken", "");
  in.record.mutable_job()->set_last_error("validation failed: </script><script>alert(1)</script>");
  in.record.mutable_job()->set_last_failure_class(v1::FAILURE_CLASS_INVALID_OUTPUT);
  ojson row = DatasetJson(in, {kCriteria[0]});
  EXPECT_TRUE(row["assessment"].is_null());
  EXPECT_TRUE(row["score"].is_null());
  EXPECT_EQ(row["grade"], kNoGrade);
  EXPECT_EQ(row["state"], "needs_attention");
  EXPECT_EQ(row["last_failure_class"], "invalid_output");
  EXPECT_TRUE(row["crit"][0].is_null());
}

// Cost: a dataset's cost is the sum of its attempts' (unknown, not zero,
// without fetched attempts); the summary has the total, the mean, whether
// some price was unknown, the agent's own figures and the distribution.
TEST(ReportData, CostPerDatasetTotalsAndDistribution) {
  auto costed = [](int64_t id, std::vector<double> usd, bool unknown = false) {
    DatasetInput in = Input(id, "c" + std::to_string(id), Assessment("C", 60, "جيد", {60}));
    in.attempts_fetched = true;
    for (double u : usd) {
      v1::Attempt a;
      a.set_number(static_cast<int>(in.attempts.size()) + 1);
      a.mutable_cost()->set_usd(u);
      a.mutable_cost()->set_price_unknown(unknown);
      auto* m = a.mutable_usage()->add_models();
      m->set_output_tokens(100);
      a.set_agent_reported_cost_usd(in.attempts.empty() ? 0.5 : -1);
      in.attempts.push_back(a);
    }
    return in;
  };
  std::vector<DatasetInput> ins = {costed(1, {1.0, 1.0}), costed(2, {0.1}), costed(3, {4.0}, true),
                                   Input(4, "nofetch", Assessment("N", 60, "جيد", {60}))};
  ASSERT_FALSE(CostOfDataset(ins[3]).has_value());
  auto c1 = CostOfDataset(ins[0]);
  ASSERT_TRUE(c1.has_value());
  EXPECT_DOUBLE_EQ(c1->usd, 2.0);
  EXPECT_EQ(c1->tokens, 200);
  EXPECT_DOUBLE_EQ(c1->agent_usd, 0.5);
  Summary s = Summarize(ins);
  EXPECT_EQ(s.costed, 3);
  EXPECT_DOUBLE_EQ(s.cost_usd, 6.1);
  EXPECT_TRUE(s.cost_price_unknown);
  EXPECT_DOUBLE_EQ(s.cost_max_usd, 4.0);
  EXPECT_DOUBLE_EQ(s.agent_cost_usd, 1.5);
  // bins of $0.40: 0.1 -> 0, 2.0 -> 5, 4.0 -> 9 (the top bin holds the maximum)
  EXPECT_EQ(s.cost_histogram[0], 1);
  EXPECT_EQ(s.cost_histogram[5], 1);
  EXPECT_EQ(s.cost_histogram[9], 1);
  ojson row = DatasetJson(ins[2], {});
  EXPECT_DOUBLE_EQ(row["cost_usd"].get<double>(), 4.0);
  EXPECT_TRUE(row["cost_price_unknown"].get<bool>());
  EXPECT_TRUE(DatasetJson(ins[3], {})["cost_usd"].is_null());
  ojson sj = SummaryJson(s);
  EXPECT_DOUBLE_EQ(sj["cost"]["total_usd"].get<double>(), 6.1);
  EXPECT_EQ(sj["cost"]["datasets"].get<int64_t>(), 3);
}

TEST(ReportData, EmbeddingCannotCloseTheScriptElement) {
  ojson data = {{"name", "</script><img src=x onerror=alert(1)>"},
                {"comment", "<!-- <script>"},
                {"amp", "a & b > c"},
                {"ls", "line\u2028sep\u2029para"},
                {"quote", "\"'`\\"}};
  std::string text = EmbedJson(data);
  EXPECT_EQ(text.find('<'), std::string::npos) << text;
  EXPECT_EQ(text.find('>'), std::string::npos) << text;
  EXPECT_EQ(text.find('&'), std::string::npos) << text;
  EXPECT_EQ(text.find("\xE2\x80\xA8"), std::string::npos);
  EXPECT_EQ(text.find("\xE2\x80\xA9"), std::string::npos);
  EXPECT_NE(text.find("\\u003c/script\\u003e"), std::string::npos) << text;
  // Still the same JSON.
  EXPECT_EQ(ojson::parse(text), data);
}

TEST(ReportData, OddDatasetNamesSurviveTheRoundTrip) {
  std::vector<std::string> names = {
      "مدونة «عربية» (نسخة ٢)", "</SCRIPT >", "a\"b'c", "tab\there\nnewline", "😀 emoji",
      "Name with <b>html</b> & entities &amp;", std::string("bad\xFF\xFEutf8"), "\u202Ertl override"};
  std::vector<DatasetInput> in;
  for (size_t i = 0; i < names.size(); ++i) {
    DatasetInput d = Input(static_cast<int64_t>(i + 1), names[i], Assessment("n", 60, "جيد", {60}));
    d.record.mutable_job()->set_dataset_name(names[i]);
    d.record.set_result_json("");  // name comes from the job, not the assessment
    in.push_back(d);
  }
  ojson data = ReportJson("batch </script>", 1700000000000, false, in, Summarize(in));
  std::string text = EmbedJson(data);
  EXPECT_EQ(text.find('<'), std::string::npos);
  ojson back = ojson::parse(text);
  EXPECT_EQ(back["batch"], "batch </script>");
  ASSERT_EQ(back["datasets"].size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    if (i == 6) {
      // Invalid UTF-8 is replaced, never passed through.
      EXPECT_EQ(back["datasets"][i]["name"], "bad\xEF\xBF\xBD\xEF\xBF\xBDutf8");
      continue;
    }
    EXPECT_EQ(back["datasets"][i]["name"], names[i]) << i;
    EXPECT_EQ(back["datasets"][i]["key"], names[i]) << i;
  }
}

TEST(ReportData, RenderReplacesThePlaceholderOnce) {
  ojson data = {{"x", "</script>"}};
  auto page = RenderReport("<script type=\"application/json\">__ASSESSQ_REPORT_DATA__</script>", data);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(*page, "<script type=\"application/json\">{\"x\":\"\\u003c/script\\u003e\"}</script>");
  EXPECT_FALSE(RenderReport("no placeholder", data).ok());
  EXPECT_FALSE(RenderReport("__ASSESSQ_REPORT_DATA__ __ASSESSQ_REPORT_DATA__", data).ok());
}

TEST(ReportTemplate, IsRightToLeftArabicSelfContainedAndHoldsThePlaceholder) {
  std::string t = kReportTemplate;
  EXPECT_NE(t.find("<html lang=\"ar\" dir=\"rtl\">"), std::string::npos);
  EXPECT_NE(t.find("<meta charset=\"utf-8\">"), std::string::npos);
  EXPECT_NE(t.find("default-src 'none'"), std::string::npos) << "the CSP must forbid fetches";
  auto page = RenderReport(t, ojson::object());
  ASSERT_TRUE(page.ok()) << page.status();
  // Nothing loaded from anywhere: no src/href to a URL, no CSS imports or
  // url() fonts, no fetch/XHR/WebSocket in the script.
  std::regex external(R"((src|href)\s*=\s*["']?\s*(https?:|//))", std::regex::icase);
  EXPECT_FALSE(std::regex_search(t, external));
  for (const char* banned : {"@import", "url(", "fetch(", "XMLHttpRequest", "WebSocket", "innerHTML",
                             "outerHTML", "insertAdjacentHTML", "document.write", "eval("})
    EXPECT_EQ(t.find(banned), std::string::npos) << banned;
}

}  // namespace
}  // namespace assessq::report
