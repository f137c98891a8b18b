#include "client/cost_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace assessq::cli {
namespace {

std::string Thousands(int64_t n) {
  std::string s = absl::StrCat(n < 0 ? -n : n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return n < 0 ? "-" + out : out;
}

}  // namespace

std::string Usd(double usd) { return usd < 0 ? "-" : absl::StrFormat("$%.4f", usd); }

std::string CostText(const v1::Cost& c) {
  std::string s = Usd(c.usd());
  if (c.price_unknown())
    absl::StrAppend(&s, " + price unknown (", absl::StrJoin(c.unpriced_models(), ", "), ")");
  return s;
}

int64_t TotalTokens(const v1::Usage& u) {
  int64_t n = 0;
  for (const auto& m : u.models())
    n += m.input_tokens() + m.output_tokens() + m.cache_write_tokens() + m.cache_read_tokens();
  return n;
}

std::string TokensText(const v1::Usage& u) {
  int64_t in = 0, out = 0, cw = 0, cr = 0;
  for (const auto& m : u.models()) {
    in += m.input_tokens();
    out += m.output_tokens();
    cw += m.cache_write_tokens();
    cr += m.cache_read_tokens();
  }
  return absl::StrCat(Thousands(in + out + cw + cr), " (in ", Thousands(in), " / out ",
                      Thousands(out), " / cache w ", Thousands(cw), " / r ", Thousands(cr), ")");
}

nlohmann::json UsageJson(const v1::Usage& u) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& m : u.models())
    models.push_back({{"provider", m.provider()},
                      {"model", m.model()},
                      {"requests", m.requests()},
                      {"input_tokens", m.input_tokens()},
                      {"output_tokens", m.output_tokens()},
                      {"cache_write_tokens", m.cache_write_tokens()},
                      {"cache_read_tokens", m.cache_read_tokens()},
                      {"duration_ms", m.duration_ms()}});
  return {{"models", models}, {"total_tokens", TotalTokens(u)},
          {"budget_exhausted", u.budget_exhausted()}};
}

nlohmann::json CostJson(const v1::Cost& c) {
  nlohmann::json unpriced = nlohmann::json::array();
  for (const auto& m : c.unpriced_models()) unpriced.push_back(m);
  return {{"usd", c.usd()}, {"price_unknown", c.price_unknown()}, {"unpriced_models", unpriced}};
}

nlohmann::json SpendJson(const v1::BatchSpend& s) {
  auto opt = [](double v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v); };
  return {{"spent", CostJson(s.spent())},
          {"usage", UsageJson(s.usage())},
          {"avg_per_finished_usd", opt(s.avg_per_finished_usd())},
          {"projected_usd", opt(s.projected_usd())},
          {"budget_usd", s.budget_usd() > 0 ? nlohmann::json(s.budget_usd()) : nlohmann::json(nullptr)},
          {"held_by_budget", s.held_by_budget()},
          {"agent_reported_usd", s.agent_reported_usd()}};
}

}  // namespace assessq::cli
