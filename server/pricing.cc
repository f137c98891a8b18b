#include "server/pricing.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/utf8.h"

namespace assessq {
namespace {

using nlohmann::json;

absl::Status Bad(absl::string_view source, absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", field, ": ", what));
}

absl::StatusOr<double> Price(const json& j, absl::string_view source, const std::string& field) {
  if (!j.is_number()) return Bad(source, field, "must be a number (USD per million tokens)");
  double v = j.get<double>();
  if (!std::isfinite(v) || v < 0) return Bad(source, field, "must be 0 or more");
  if (v > kMaxPricePerMillion)
    return Bad(source, field,
               absl::StrCat("is over ", kMaxPricePerMillion, " USD per million tokens (a typo?)"));
  return v;
}

int64_t NonNeg(int64_t v) { return v < 0 ? 0 : v; }

std::string CleanName(const std::string& s) {
  return TruncateUtf8(SanitizeUtf8(s), kMaxModelNameBytes);
}

void AddInto(v1::ModelUsage& to, const v1::ModelUsage& m) {
  to.set_requests(to.requests() + NonNeg(m.requests()));
  to.set_input_tokens(to.input_tokens() + NonNeg(m.input_tokens()));
  to.set_output_tokens(to.output_tokens() + NonNeg(m.output_tokens()));
  to.set_cache_write_tokens(to.cache_write_tokens() + NonNeg(m.cache_write_tokens()));
  to.set_cache_read_tokens(to.cache_read_tokens() + NonNeg(m.cache_read_tokens()));
  to.set_duration_ms(to.duration_ms() + NonNeg(m.duration_ms()));
}

}  // namespace

absl::StatusOr<PriceTable> PriceTable::Parse(absl::string_view text, absl::string_view source) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return Bad(source, "(file)", "is not valid JSON");
  if (!j.is_object()) return Bad(source, "(file)", "must be a JSON object");
  for (const auto& [k, v] : j.items()) {
    if (k == "note") {
      if (!v.is_string()) return Bad(source, "note", "must be a string");
    } else if (k != "providers") {
      return Bad(source, k, "unknown setting (expected \"providers\" and an optional \"note\")");
    }
  }
  if (!j.contains("providers")) return Bad(source, "providers", "is missing");
  const json& providers = j["providers"];
  if (!providers.is_object()) return Bad(source, "providers", "must be an object");
  PriceTable t;
  for (const auto& [provider, models] : providers.items()) {
    const std::string where = absl::StrCat("providers.", provider);
    if (provider.empty()) return Bad(source, where, "provider name is empty");
    if (!models.is_object())
      return Bad(source, where, "must be an object of model name -> prices");
    for (const auto& [model, p] : models.items()) {
      const std::string mw = absl::StrCat(where, ".", model);
      if (model.empty() || model == "*") return Bad(source, mw, "model name is empty");
      if (model.find('*') != std::string::npos && model.find('*') != model.size() - 1)
        return Bad(source, mw, "'*' may only end a model name (a prefix)");
      if (!p.is_object()) return Bad(source, mw, "must be an object of prices");
      for (const auto& [k, v] : p.items())
        if (k != "input" && k != "output" && k != "cache_write" && k != "cache_read")
          return Bad(source, absl::StrCat(mw, ".", k),
                     "unknown price (expected input, output, cache_write, cache_read)");
      v1::ModelPrice mp;
      mp.set_provider(provider);
      mp.set_model(model);
      for (const char* kind : {"input", "output", "cache_write", "cache_read"}) {
        const std::string f = absl::StrCat(mw, ".", kind);
        if (!p.contains(kind)) return Bad(source, f, "is missing (every kind needs a price)");
        auto v = Price(p[kind], source, f);
        if (!v.ok()) return v.status();
        if (std::string(kind) == "input") mp.set_input(*v);
        else if (std::string(kind) == "output") mp.set_output(*v);
        else if (std::string(kind) == "cache_write") mp.set_cache_write(*v);
        else mp.set_cache_read(*v);
      }
      t.prices_[{provider, model}] = mp;
    }
  }
  return t;
}

const v1::ModelPrice* PriceTable::Find(absl::string_view provider, absl::string_view model) const {
  auto exact = prices_.find({std::string(provider), std::string(model)});
  if (exact != prices_.end()) return &exact->second;
  const v1::ModelPrice* best = nullptr;
  size_t best_len = 0;
  for (auto it = prices_.lower_bound({std::string(provider), ""});
       it != prices_.end() && it->first.first == provider; ++it) {
    const std::string& key = it->first.second;
    if (key.empty() || key.back() != '*') continue;
    absl::string_view prefix(key.data(), key.size() - 1);
    if (absl::StartsWith(model, prefix) && (best == nullptr || prefix.size() > best_len)) {
      best = &it->second;
      best_len = prefix.size();
    }
  }
  return best;
}

std::vector<v1::ModelPrice> PriceTable::Entries() const {
  std::vector<v1::ModelPrice> out;
  for (const auto& [k, p] : prices_) out.push_back(p);
  return out;
}

int64_t TokensOf(const v1::ModelUsage& m) {
  return NonNeg(m.input_tokens()) + NonNeg(m.output_tokens()) + NonNeg(m.cache_write_tokens()) +
         NonNeg(m.cache_read_tokens());
}

double CostOfModel(const v1::ModelUsage& m, const v1::ModelPrice& p) {
  return (static_cast<double>(NonNeg(m.input_tokens())) * p.input() +
          static_cast<double>(NonNeg(m.output_tokens())) * p.output() +
          static_cast<double>(NonNeg(m.cache_write_tokens())) * p.cache_write() +
          static_cast<double>(NonNeg(m.cache_read_tokens())) * p.cache_read()) /
         1e6;
}

v1::Cost CostOf(const v1::Usage& usage, const PriceTable& table) {
  v1::Cost c;
  double usd = 0;
  std::set<std::string> unpriced;
  for (const auto& m : usage.models()) {
    if (TokensOf(m) == 0) continue;
    const v1::ModelPrice* p = table.Find(m.provider(), m.model());
    if (p == nullptr) {
      unpriced.insert(absl::StrCat(m.provider(), "/", m.model()));
      continue;
    }
    usd += CostOfModel(m, *p);
  }
  c.set_usd(usd);
  c.set_price_unknown(!unpriced.empty());
  for (const auto& u : unpriced) c.add_unpriced_models(u);
  return c;
}

v1::Usage SanitizeUsage(const v1::Usage& usage) {
  v1::Usage out;
  out.set_budget_exhausted(usage.budget_exhausted());
  std::map<std::pair<std::string, std::string>, int> index;
  size_t named = 0;  // entries other than kOtherModels
  for (const auto& m : usage.models()) {
    std::string provider = CleanName(m.provider());
    std::string model = CleanName(m.model());
    auto it = index.find({provider, model});
    if (it == index.end() && named >= kMaxUsageModels - 1) {
      // Over the cap: every further model is summed in one entry.
      provider = "";
      model = kOtherModels;
      it = index.find({provider, model});
    } else if (it == index.end()) {
      ++named;
    }
    if (it == index.end()) {
      v1::ModelUsage* n = out.add_models();
      n->set_provider(provider);
      n->set_model(model);
      it = index.emplace(std::make_pair(provider, model), out.models_size() - 1).first;
    }
    AddInto(*out.mutable_models(it->second), m);
  }
  return out;
}

absl::StatusOr<JobCap> JobCapFromProfile(absl::string_view profile_json) {
  JobCap cap;
  json j = json::parse(profile_json.begin(), profile_json.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return cap;  // the profile's own checks say why
  auto l = j.find("limits");
  if (l == j.end() || !l->is_object()) return cap;
  auto b = l->find("budget");
  if (b == l->end()) return cap;
  if (!b->is_object())
    return absl::InvalidArgumentError(
        "profile.limits.budget must be an object {\"max_tokens\": N, \"max_usd\": X}");
  for (const auto& [k, v] : b->items()) {
    if (k == "max_tokens") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0)
        return absl::InvalidArgumentError(
            "profile.limits.budget.max_tokens must be a whole number, 0 (none) or more");
      cap.max_tokens = v.get<int64_t>();
    } else if (k == "max_usd") {
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
        return absl::InvalidArgumentError(
            "profile.limits.budget.max_usd must be a number of USD, 0 (none) or more");
      cap.max_usd = v.get<double>();
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "profile.limits.budget: unknown setting '", k, "' (expected max_tokens, max_usd)"));
    }
  }
  return cap;
}

JobCap RemainingCap(const JobCap& cap, const v1::Usage& used, const PriceTable& table) {
  constexpr double kLeastUsd = 1e-8;
  JobCap left = cap;
  if (cap.max_tokens > 0) {
    int64_t tokens = 0;
    for (const auto& m : used.models()) tokens += TokensOf(m);
    left.max_tokens = std::max<int64_t>(cap.max_tokens - tokens, 1);
  }
  if (cap.max_usd > 0) left.max_usd = std::max(cap.max_usd - CostOf(used, table).usd(), kLeastUsd);
  return left;
}

std::optional<v1::JobBudget> LeaseBudget(const JobCap& cap, const PriceTable& table) {
  if (!cap.any()) return std::nullopt;
  v1::JobBudget b;
  b.set_max_tokens(cap.max_tokens);
  b.set_max_usd(cap.max_usd);
  for (const auto& p : table.Entries()) *b.add_prices() = p;
  return b;
}

std::optional<double> AgentReportedCostUsd(absl::string_view details_json,
                                           absl::string_view log_tail) {
  json d = json::parse(details_json.begin(), details_json.end(), nullptr, false);
  if (d.is_object()) {
    auto s = d.find("agent_steps");
    if (s != d.end() && s->is_object()) {
      auto c = s->find("total_cost_usd");
      if (c != s->end() && c->is_number() && std::isfinite(c->get<double>()) &&
          c->get<double>() >= 0)
        return c->get<double>();
    }
  }
  std::optional<double> found;
  for (absl::string_view line : absl::StrSplit(log_tail, '\n', absl::SkipEmpty())) {
    if (line.front() != '{' || line.find("\"result\"") == absl::string_view::npos) continue;
    json e = json::parse(line.begin(), line.end(), nullptr, false);
    if (!e.is_object() || e.value("type", std::string()) != "result") continue;
    auto c = e.find("total_cost_usd");
    if (c != e.end() && c->is_number() && std::isfinite(c->get<double>()) && c->get<double>() >= 0)
      found = c->get<double>();
  }
  return found;
}

}  // namespace assessq
