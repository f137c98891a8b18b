#include "client/report/report_data.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/vocabulary.h"

namespace assessq::report {
namespace {

ojson ParseOrNull(const std::string& text) {
  if (text.empty()) return nullptr;
  ojson j = ojson::parse(text, nullptr, false);
  return j.is_discarded() ? ojson(nullptr) : j;
}

ojson ObjectOrEmpty(const std::string& text) {
  ojson j = ParseOrNull(text);
  return j.is_object() ? j : ojson::object();
}

// The shared labels (common/vocabulary.h); "" for an unspecified state.
std::string StateOf(v1::JobState s) {
  return s == v1::JOB_STATE_UNSPECIFIED ? std::string() : std::string(StateName(s));
}

std::string ClassOf(v1::FailureClass c) { return std::string(ClassName(c)); }

// Cuts at a code point boundary at or below `max` bytes.
std::string Clip(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;
  return s.substr(0, n) + "…";
}

std::optional<double> Number(const ojson& obj, const std::string& key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) return std::nullopt;
  double v = it->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

int64_t DeniedFromDetails(const ojson& details) {
  auto n = Number(details, "denied_requests");
  return n ? static_cast<int64_t>(*n) : 0;
}

struct Netlog {
  std::vector<HostUse> hosts;
  ojson denied = ojson::array();
  int64_t denied_total = 0;  // not capped like `denied`
};

Netlog NetlogOf(const DatasetInput& in) {
  Netlog n;
  for (const auto& a : in.attempts)
    n.denied_total += AddNetlog(a.netlog_json(), a.number(), n.hosts, n.denied);
  std::stable_sort(n.hosts.begin(), n.hosts.end(),
                   [](const HostUse& a, const HostUse& b) { return a.requests > b.requests; });
  return n;
}

// The criteria keys in report order: the built-in ones, then others seen.
void NoteCriteria(const ojson& assessment, std::vector<std::string>& keys) {
  if (!assessment.is_object()) return;
  auto it = assessment.find(kBreakdownKey);
  if (it == assessment.end() || !it->is_object()) return;
  for (const auto& [k, v] : it->items())
    if (v.is_number() && std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
}

}  // namespace

int64_t AddNetlog(const std::string& netlog_json, int attempt, std::vector<HostUse>& hosts,
                  ojson& denied) {
  int64_t denied_seen = 0;
  if (netlog_json.empty()) return 0;
  ojson log = ojson::parse(netlog_json, nullptr, false);
  if (log.is_discarded() || !log.is_array()) return 0;
  for (const auto& e : log) {
    if (!e.is_object()) continue;
    auto str = [&](const char* k) {
      auto it = e.find(k);
      return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    auto num = [&](const char* k) -> int64_t {
      auto it = e.find(k);
      return it != e.end() && it->is_number() ? it->get<int64_t>() : 0;
    };
    std::string host = str("host");
    int64_t port = num("port");
    bool is_denied = str("decision") == "deny";
    if (!host.empty()) {
      auto h = std::find_if(hosts.begin(), hosts.end(), [&](const HostUse& u) {
        return u.host == host && u.port == port;
      });
      if (h == hosts.end()) {
        if (hosts.size() < kMaxHostsPerDataset) {
          hosts.push_back({host, port});
          h = hosts.end() - 1;
        }
      }
      if (h != hosts.end()) {
        ++h->requests;
        ++(is_denied ? h->denied : h->allowed);
        h->bytes_up += num("bytes_up");
        h->bytes_down += num("bytes_down");
      }
    }
    if (is_denied) ++denied_seen;
    if (is_denied && denied.size() < kMaxDeniedPerDataset) {
      std::string reason = str("reason");
      if (reason.empty()) reason = str("rule");
      denied.push_back({{"attempt", attempt},
                        {"ts_ms", num("ts")},
                        {"method", str("method")},
                        {"host", host},
                        {"port", port},
                        {"reason", Clip(reason, 500)}});
    }
  }
  return denied_seen;
}

std::optional<int64_t> ScoreOf(const ojson& assessment) {
  auto v = Number(assessment, kScoreKey);
  if (!v) return std::nullopt;
  return static_cast<int64_t>(std::llround(*v));
}

std::string GradeOf(const ojson& assessment) {
  if (!assessment.is_object()) return kNoGrade;
  auto it = assessment.find(kGradeKey);
  if (it == assessment.end() || !it->is_string() || it->get<std::string>().empty())
    return kNoGrade;
  return it->get<std::string>();
}

ojson DatasetJson(const DatasetInput& in, const std::vector<std::string>& criteria) {
  const v1::ExportRecord& r = in.record;
  const v1::JobSummary& j = r.job();
  ojson assessment = ParseOrNull(r.result_json());
  ojson details = ObjectOrEmpty(r.details_json());

  ojson row = ojson::object();
  row["id"] = j.job_id();
  row["key"] = j.dataset_key();
  row["name"] = j.dataset_name();
  if (assessment.is_object()) {
    auto it = assessment.find("الاسم");
    if (it != assessment.end() && it->is_string() && !it->get<std::string>().empty())
      row["name"] = it->get<std::string>();
  }
  row["source"] = j.source_name();
  row["state"] = StateOf(j.state());
  auto score = ScoreOf(assessment);
  row["score"] = score ? ojson(*score) : ojson(nullptr);
  row["grade"] = GradeOf(assessment);
  ojson crit = ojson::array();
  const ojson* breakdown = nullptr;
  if (assessment.is_object()) {
    auto it = assessment.find(kBreakdownKey);
    if (it != assessment.end() && it->is_object()) breakdown = &*it;
  }
  for (const auto& k : criteria) {
    auto v = breakdown ? Number(*breakdown, k) : std::nullopt;
    crit.push_back(v ? ojson(*v) : ojson(nullptr));
  }
  row["crit"] = crit;
  row["flags"] = ojson::array();
  for (const auto& f : r.flags()) row["flags"].push_back(f);
  row["attempts"] = r.attempts();
  row["duration_ms"] = r.duration_ms();
  if (auto c = CostOfDataset(in)) {
    row["cost_usd"] = c->usd;
    row["cost_price_unknown"] = c->price_unknown;
    row["tokens"] = c->tokens;
    row["agent_cost_usd"] = c->agent_usd < 0 ? ojson(nullptr) : ojson(c->agent_usd);
  } else {
    row["cost_usd"] = nullptr;  // unknown: attempts not fetched
  }
  row["worker"] = r.worker();
  row["sha256"] = j.input_sha256();
  row["created_at_ms"] = j.created_at_ms();
  row["updated_at_ms"] = j.updated_at_ms();
  if (!j.last_error().empty() && j.state() != v1::JOB_STATE_SUCCEEDED) {
    row["last_error"] = Clip(j.last_error(), kMaxErrorChars);
    row["last_failure_class"] = ClassOf(j.last_failure_class());
  }
  // The agent's own account of its tool calls (worker/agent_steps.h) is
  // shown as a timeline of its own, not as one more provenance value.
  row["steps"] = nullptr;
  if (auto it = details.find("agent_steps"); it != details.end()) {
    if (it->is_object() && it->contains("steps") && (*it)["steps"].is_array()) row["steps"] = *it;
    details.erase(it);
  }
  row["provenance"] = details;

  if (in.attempts_fetched) {
    Netlog n = NetlogOf(in);
    ojson hosts = ojson::array();
    for (const auto& h : n.hosts)
      hosts.push_back({{"host", h.host},
                       {"port", h.port},
                       {"requests", h.requests},
                       {"allowed", h.allowed},
                       {"denied", h.denied},
                       {"bytes_up", h.bytes_up},
                       {"bytes_down", h.bytes_down}});
    row["hosts"] = hosts;
    row["denied"] = n.denied;
    row["denied_count"] = n.denied_total;
    ojson attempts = ojson::array();
    for (const auto& a : in.attempts) {
      ojson ad = ObjectOrEmpty(a.details_json());
      std::vector<HostUse> ah;
      ojson adenied = ojson::array();
      int64_t adenied_total = AddNetlog(a.netlog_json(), a.number(), ah, adenied);
      ojson e = {{"number", a.number()},
                 {"worker", a.worker()},
                 {"outcome", a.outcome()},
                 {"failure_class", ClassOf(a.failure_class())},
                 {"exit_code", a.exit_code()},
                 {"error", Clip(a.error(), kMaxErrorChars)},
                 {"leased_at_ms", a.leased_at_ms()},
                 {"started_at_ms", a.started_at_ms()},
                 {"ended_at_ms", a.ended_at_ms()},
                 {"hosts", static_cast<int64_t>(ah.size())},
                 {"denied", adenied_total},
                 {"cost_usd", a.cost().usd()},
                 {"cost_price_unknown", a.cost().price_unknown()}};
      if (ad.contains("image") && ad["image"].is_string()) e["image"] = ad["image"];
      if (auto d = Number(ad, "duration_ms")) e["run_ms"] = static_cast<int64_t>(*d);
      attempts.push_back(std::move(e));
    }
    row["attempt_list"] = attempts;
  } else {
    row["hosts"] = nullptr;  // unknown: not fetched
    row["denied"] = nullptr;
    row["denied_count"] = DeniedFromDetails(details);
    row["attempt_list"] = nullptr;
  }
  row["assessment"] = assessment;
  return row;
}

std::optional<DatasetCost> CostOfDataset(const DatasetInput& in) {
  if (!in.attempts_fetched) return std::nullopt;
  DatasetCost c;
  for (const auto& a : in.attempts) {
    c.usd += a.cost().usd();
    c.price_unknown |= a.cost().price_unknown();
    for (const auto& m : a.usage().models())
      c.tokens += m.input_tokens() + m.output_tokens() + m.cache_write_tokens() +
                  m.cache_read_tokens();
    if (a.agent_reported_cost_usd() >= 0)
      c.agent_usd = (c.agent_usd < 0 ? 0 : c.agent_usd) + a.agent_reported_cost_usd();
  }
  return c;
}

Summary Summarize(const std::vector<DatasetInput>& inputs) {
  Summary s;
  s.datasets = static_cast<int64_t>(inputs.size());
  std::vector<std::string> keys(kCriteria.begin(), kCriteria.end());
  std::map<std::string, std::pair<double, int64_t>> sums;  // key -> (sum, count)
  std::map<std::string, int64_t> grade_counts;
  std::vector<std::string> other_grades;
  double total = 0;
  for (const auto& in : inputs) {
    const auto& r = in.record;
    ojson a = ParseOrNull(r.result_json());
    NoteCriteria(a, keys);
    std::string g = GradeOf(a);
    bool known = std::find(kGrades.begin(), kGrades.end(), g) != kGrades.end() || g == kNoGrade;
    if (!known && std::find(other_grades.begin(), other_grades.end(), g) == other_grades.end())
      other_grades.push_back(g);
    ++grade_counts[g];
    if (auto score = ScoreOf(a)) {
      if (s.scored == 0) s.score_min = s.score_max = *score;
      s.score_min = std::min(s.score_min, *score);
      s.score_max = std::max(s.score_max, *score);
      total += static_cast<double>(*score);
      ++s.scored;
      s.histogram[std::clamp<int64_t>(*score / 10, 0, 9)]++;
    }
    if (a.is_object()) {
      auto it = a.find(kBreakdownKey);
      if (it != a.end() && it->is_object())
        for (const auto& [k, v] : it->items())
          if (v.is_number() && std::isfinite(v.get<double>())) {
            sums[k].first += v.get<double>();
            sums[k].second++;
          }
    }
    for (const auto& f : r.flags()) s.flag_counts[f]++;
    if (r.flags_size() > 0) ++s.flagged;
    if (r.attempts() > 1) ++s.retried;
    if (in.attempts_fetched) {
      s.denied_requests += NetlogOf(in).denied_total;
    } else {
      s.denied_requests += DeniedFromDetails(ObjectOrEmpty(r.details_json()));
    }
    if (auto c = CostOfDataset(in)) {
      ++s.costed;
      s.cost_usd += c->usd;
      s.cost_price_unknown |= c->price_unknown;
      s.cost_max_usd = std::max(s.cost_max_usd, c->usd);
      if (c->agent_usd > 0) s.agent_cost_usd += c->agent_usd;
    }
  }
  // The distribution of cost per dataset: ten equal bins up to the maximum.
  for (const auto& in : inputs)
    if (auto c = CostOfDataset(in)) {
      int64_t bin = s.cost_max_usd > 0 ? static_cast<int64_t>(c->usd / s.cost_max_usd * 10) : 0;
      s.cost_histogram[std::clamp<int64_t>(bin, 0, 9)]++;
    }
  s.score_mean = s.scored ? total / static_cast<double>(s.scored) : 0;
  for (const char* g : kGrades) s.grades.push_back({g, grade_counts[g]});
  for (const auto& g : other_grades) s.grades.push_back({g, grade_counts[g]});
  if (grade_counts[kNoGrade] > 0) s.grades.push_back({kNoGrade, grade_counts[kNoGrade]});
  for (const auto& k : keys) {
    auto it = sums.find(k);
    CriterionAverage c{k};
    if (it != sums.end() && it->second.second > 0) {
      c.average = it->second.first / static_cast<double>(it->second.second);
      c.count = it->second.second;
    }
    s.criteria.push_back(c);
  }
  return s;
}

ojson SummaryJson(const Summary& s) {
  ojson j = ojson::object();
  j["datasets"] = s.datasets;
  j["scored"] = s.scored;
  j["grades"] = ojson::array();
  for (const auto& g : s.grades) j["grades"].push_back({{"grade", g.grade}, {"count", g.count}});
  j["criteria"] = ojson::array();
  for (const auto& c : s.criteria)
    j["criteria"].push_back({{"key", c.key},
                             {"average", std::round(c.average * 10) / 10},
                             {"count", c.count}});
  j["histogram"] = s.histogram;
  j["score_mean"] = std::round(s.score_mean * 10) / 10;
  j["score_min"] = s.score_min;
  j["score_max"] = s.score_max;
  j["flag_counts"] = ojson::object();
  for (const auto& [f, n] : s.flag_counts) j["flag_counts"][f] = n;
  j["flagged"] = s.flagged;
  j["retried"] = s.retried;
  j["denied_requests"] = s.denied_requests;
  j["cost"] = {{"total_usd", s.cost_usd},
               {"datasets", s.costed},
               {"mean_usd", s.costed ? s.cost_usd / static_cast<double>(s.costed) : 0},
               {"max_usd", s.cost_max_usd},
               {"price_unknown", s.cost_price_unknown},
               {"histogram", s.cost_histogram},
               {"bin_usd", s.cost_max_usd / 10},
               {"agent_reported_usd", s.agent_cost_usd}};
  return j;
}

ojson ReportJson(const std::string& batch, int64_t generated_at_ms, bool include_unfinished,
                 const std::vector<DatasetInput>& inputs, const Summary& s) {
  std::vector<std::string> criteria;
  for (const auto& c : s.criteria) criteria.push_back(c.key);
  bool fetched = !inputs.empty() && std::all_of(inputs.begin(), inputs.end(), [](const auto& i) {
    return i.attempts_fetched;
  });
  ojson j = ojson::object();
  j["batch"] = batch;
  j["generated_at_ms"] = generated_at_ms;
  j["include_unfinished"] = include_unfinished;
  j["attempts_fetched"] = fetched;
  j["summary"] = SummaryJson(s);
  j["criteria"] = criteria;
  j["datasets"] = ojson::array();
  for (const auto& in : inputs) j["datasets"].push_back(DatasetJson(in, criteria));
  return j;
}

std::string EmbedJson(const ojson& j) {
  std::string text = j.dump(-1, ' ', false, ojson::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + text.size() / 50);
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (c == '\xE2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
               (text[i + 2] == '\xA8' || text[i + 2] == '\xA9')) {
      out += text[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

absl::StatusOr<std::string> RenderReport(absl::string_view tmpl, const ojson& data) {
  size_t at = tmpl.find(kDataPlaceholder);
  if (at == absl::string_view::npos ||
      tmpl.find(kDataPlaceholder, at + 1) != absl::string_view::npos)
    return absl::InvalidArgumentError(
        absl::StrCat("report template must hold ", kDataPlaceholder, " exactly once"));
  std::string out;
  std::string data_text = EmbedJson(data);
  out.reserve(tmpl.size() + data_text.size());
  out.append(tmpl.data(), at);
  out += data_text;
  absl::string_view rest = tmpl.substr(at + sizeof(kDataPlaceholder) - 1);
  out.append(rest.data(), rest.size());
  return out;
}

std::string GradeLine(const Summary& s) {
  std::vector<std::string> parts;
  for (const auto& g : s.grades)
    if (g.count > 0) parts.push_back(absl::StrCat(g.grade, " ", g.count));
  return absl::StrJoin(parts, " · ");
}

}  // namespace assessq::report
