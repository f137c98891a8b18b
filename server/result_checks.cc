#include "server/result_checks.h"

#include <optional>
#include <unordered_map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "server/assessment_schema.h"
#include "server/validation.h"

namespace assessq {
namespace {

// What one batch profile asks for.
struct Mode {
  enum Kind { kBuiltin, kJsonObject, kCustom, kBadSchema } kind = kBuiltin;
  std::optional<AssessmentValidator> custom;  // kCustom
  std::string error;                          // kBadSchema
};

class Registry {
 public:
  explicit Registry(AssessmentValidator builtin) : builtin_(std::move(builtin)) {}

  CheckedResult Check(const ResultContext& ctx, const std::string& json) {
    std::shared_ptr<const Mode> mode = ModeFor(ctx.profile_json);
    CheckedResult out;
    switch (mode->kind) {
      case Mode::kJsonObject:
        out.errors = DefaultValidator(ctx, json);
        break;
      case Mode::kBadSchema:
        out.errors = {mode->error};
        break;
      case Mode::kCustom:
        out.errors = mode->custom->Validate(json, ctx.metadata);
        break;
      case Mode::kBuiltin: {
        const NetEvidence evidence = ParseNetEvidence(ctx.netlog_json);
        auto v = builtin_.Check(json, ctx.metadata, /*with_flags=*/true, &evidence);
        out.errors = std::move(v.errors);
        out.flags = std::move(v.flags);
        break;
      }
    }
    return out;
  }

 private:
  std::shared_ptr<const Mode> ModeFor(const std::string& profile_text) {
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = modes_.find(profile_text);
      if (it != modes_.end()) return it->second;
    }
    auto mode = std::make_shared<Mode>();
    auto profile = nlohmann::json::parse(profile_text, nullptr, false);
    if (profile.is_object() && profile.contains("schema")) {
      const auto& s = profile["schema"];
      if (s.is_string() && s.get<std::string>() == "json-object") {
        mode->kind = Mode::kJsonObject;
      } else if (s.is_object()) {
        auto v = AssessmentValidator::Create(s.dump());
        if (v.ok()) {
          mode->kind = Mode::kCustom;
          mode->custom = std::move(*v);
        } else {
          mode->kind = Mode::kBadSchema;
          mode->error = absl::StrCat("/: the batch profile's schema does not compile: ",
                                     v.status().message());
        }
      }
    }
    std::lock_guard<std::mutex> l(mu_);
    if (modes_.size() > 64) modes_.clear();  // profiles are few; bound it anyway
    modes_.emplace(profile_text, mode);
    return mode;
  }

  AssessmentValidator builtin_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const Mode>> modes_;  // guarded by mu_
};

}  // namespace

absl::StatusOr<ResultChecker> MakeResultChecker() {
  auto builtin = AssessmentValidator::Create(kAssessmentSchema);
  if (!builtin.ok())
    return absl::InternalError(absl::StrCat("built-in assessment schema: ", builtin.status().message()));
  auto reg = std::make_shared<Registry>(*builtin);
  return ResultChecker([reg](const ResultContext& ctx, const std::string& json) {
    return reg->Check(ctx, json);
  });
}

}  // namespace assessq
