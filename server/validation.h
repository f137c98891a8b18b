// Validates one assessment (the JSON an agent writes for one dataset) against
// schemas/assessment.schema.json and against the rules a JSON Schema cannot
// express:
//   - تقدير_الجودة matches the band of درجة_الجودة (80-100 ممتاز, 60-79 جيد,
//     40-59 مقبول, 0-39 ضعيف);
//   - تم_تحميل_البيانات true needs عدد_العينات_المفحوصة > 0 and a method other
//     than metadata_only; false needs 0 samples and metadata_only;
//   - الاسم_الأصلي equals the metadata's Name (after trimming whitespace and
//     folding ASCII case);
//   - الملخص and every string of نقاط_القوة, نقاط_الضعف, الاستخدامات_الموصى_بها
//     are mostly Arabic script: at least half of their letters are Arabic;
//   - every المصادر_المفتوحة entry is an http(s) URL with a host.
// The size (256 KiB) and nesting (16) caps are checked before parsing.
//
// Errors are "JSON-pointer: message", e.g. "/درجة_الجودة: must be ≤ 100"; the
// root is "/". All problems are reported at once. Pure: no I/O.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/assessment_rules.h"
#include "server/net_evidence.h"

namespace assessq {

inline constexpr size_t kMaxAssessmentBytes = 256 * 1024;
inline constexpr int kMaxAssessmentDepth = 16;

struct AssessmentValidator {
 public:
  // Parses and compiles a draft-07 schema once. InvalidArgument when the text
  // is not JSON or not a schema valijson accepts.
  static absl::StatusOr<AssessmentValidator> Create(const std::string& schema_text);

  // Every problem of `result_json`, empty when it is valid. `metadata_json` is
  // the dataset's metadata file (the Name comparison needs it); when it is
  // empty the Name comparison is skipped, when it is not a JSON object with a
  // string "Name" that is an error on /الاسم_الأصلي. Thread-safe: concurrent
  // calls on one validator (or on copies) are fine; copies share the schema.
  std::vector<std::string> Validate(const std::string& result_json,
                                    const std::string& metadata_json) const;

  // Validate and, when the result is valid and `with_flags`, its TrustFlags
  // followed (when `evidence` is given: the attempt's network log) by its
  // EvidenceFlags (server/net_evidence.h), parsing the result and the
  // metadata once (the coordinator's hot path).
  struct Verdict {
    std::vector<std::string> errors;
    std::vector<std::string> flags;
  };
  Verdict Check(const std::string& result_json, const std::string& metadata_json,
                bool with_flags, const NetEvidence* evidence = nullptr) const;

  struct Impl;

 private:
  explicit AssessmentValidator(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Non-fatal observations about a (schema-valid) result that a reviewer should
// look at; empty when nothing is suspicious or the result does not parse. In
// this order, each at most once:
//   sample_count_exceeds_volume            samples checked > metadata Volume
//                                          (Volume numeric > 0, Unit counts
//                                          items: not "hours")
//   preview_exceeds_sample_count           more previews than samples checked
//   claims_loaded_without_samples_preview  loaded, but معاينة_العينات is empty
//   claims_loaded_but_access_restricted    loaded, but metadata Access is
//                                          Upon-Request or With-Fee
//   claims_match_without_inspection        البيانات_تطابق_الوصف true with 0
//                                          samples checked
//   score_inconsistent_with_breakdown      |درجة_الجودة - mean of
//                                          تفصيل_الجودة| > 25
//   no_sources                             المصادر_المفتوحة empty, but the
//                                          metadata has an http(s) Link or HF Link
std::vector<std::string> TrustFlags(const std::string& result_json,
                                    const std::string& metadata_json);

// GradeForScore, ArabicLetterShare and IsHttpUrlWithHost, which these checks
// use, are in common/assessment_rules.h (shared with the offline assessor).

}  // namespace assessq
