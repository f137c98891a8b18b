#include "server/result_checks.h"

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "server/assessment_schema.h"
#include "server/validation.h"

namespace assessq {
namespace {

class Registry {
 public:
  explicit Registry(AssessmentValidator builtin) : builtin_(std::move(builtin)) {}

  std::vector<std::string> Check(const ResultContext& ctx, const std::string& json) {
    auto profile = nlohmann::json::parse(ctx.profile_json, nullptr, false);
    if (profile.is_object() && profile.contains("schema")) {
      const auto& s = profile["schema"];
      if (s.is_string() && s.get<std::string>() == "json-object") return DefaultValidator(ctx, json);
      if (s.is_object()) {
        auto v = ForSchema(s.dump());
        if (!v.ok()) return {absl::StrCat("/: the batch profile's schema does not compile: ", v.status().message())};
        return v->Validate(json, ctx.metadata);
      }
    }
    return builtin_.Validate(json, ctx.metadata);
  }

 private:
  absl::StatusOr<AssessmentValidator> ForSchema(const std::string& text) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = cache_.find(text);
    if (it != cache_.end()) return it->second;
    auto v = AssessmentValidator::Create(text);
    if (!v.ok()) return v.status();
    if (cache_.size() > 64) cache_.clear();
    cache_.emplace(text, *v);
    return *v;
  }

  AssessmentValidator builtin_;
  std::mutex mu_;
  std::map<std::string, AssessmentValidator> cache_;
};

}  // namespace

absl::StatusOr<ResultValidator> MakeResultValidator() {
  auto builtin = AssessmentValidator::Create(kAssessmentSchema);
  if (!builtin.ok())
    return absl::InternalError(absl::StrCat("built-in assessment schema: ", builtin.status().message()));
  auto reg = std::make_shared<Registry>(*builtin);
  return ResultValidator([reg](const ResultContext& ctx, const std::string& json) {
    return reg->Check(ctx, json);
  });
}

ResultFlagger MakeResultFlagger() {
  return [](const ResultContext& ctx, const std::string& json) {
    auto profile = nlohmann::json::parse(ctx.profile_json, nullptr, false);
    if (profile.is_object() && profile.contains("schema")) return std::vector<std::string>();
    return TrustFlags(json, ctx.metadata);
  };
}

}  // namespace assessq
