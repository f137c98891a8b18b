// The offline assessor's rules: a Masader metadata object in, an assessment
// (schemas/assessment.schema.json) out, from the metadata alone. Every
// criterion is a documented sum of points (docs/offline-assessor.md); the
// overall score is their weighted mean and the grade is the score's band. The
// prose is Modern Standard Arabic built from templates that cite the facts.
//
// Pure and dependency-light on purpose (nlohmann json, the C++ standard
// library and common/'s std-only assessq_text only): the program around it is
// linked fully static for a FROM scratch image.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/assessment_rules.h"

namespace assessq::offline {

inline constexpr size_t kMaxInputBytes = 1 << 20;  // as intake: 1 MiB
inline constexpr int kMaxInputDepth = 32;
inline constexpr size_t kMaxNameChars = 300;        // the schema's cap on الاسم

// The metadata fields the rules read. Masader spells keys with spaces ("HF
// Link"); its schema.json with underscores ("HF_Link"): both are accepted.
// Missing or null fields are "not documented".
struct Facts {
  std::string name;  // trimmed, non-empty
  bool name_had_outer_space = false;
  std::optional<int> year;
  std::string language;  // "ar", "multilingual"
  std::string dialect;
  std::string form;     // text, audio, images, videos
  std::string script;   // Arab, Latin, Arab-Latin
  std::string license;
  std::string link, hf_link, paper_link;  // as given
  std::string host, access, cost;
  std::string description;
  std::optional<double> volume;
  std::string unit;
  std::vector<std::string> tasks, sources, domains, annotation, providers, derived_from;
  std::string paper_title, venue_title, venue_type, venue_name;
  std::optional<bool> tokenized, has_splits, partial;
  std::string ethical_risks;  // rarely present ("Low", "Medium", "High")
  size_t dialect_subsets = 0;
};

// Reads `metadata` (a JSON object). A field present with the wrong type, or a
// missing/blank/over-long Name, is an error: returns nullopt and sets *error to
// a message naming the field, e.g. `field "Volume": must be a number`.
std::optional<Facts> ExtractFacts(const nlohmann::json& metadata, std::string* error);

// The seven criteria, in the order of تفصيل_الجودة.
enum Criterion {
  kAccess = 0,        // سهولة_الوصول
  kDocumentation,     // التوثيق
  kEthics,            // السلامة_الأخلاقية
  kLicense,           // الترخيص
  kReproducibility,   // قابلية_إعادة_الإنتاج
  kPeerReview,        // المراجعة_العلمية
  kDataQuality,       // جودة_البيانات
  kCriterionCount
};
const char* CriterionKey(Criterion c);      // "سهولة_الوصول"
const char* CriterionLabel(Criterion c);    // "سهولة الوصول" (for prose)
int CriterionWeight(Criterion c);           // percent; the weights sum to 100

// One finding of a rule, in Arabic: a strength (positive) or a weakness.
struct Note {
  bool positive;
  std::string text;
};

struct CriterionResult {
  int score = 0;  // 0..100
  std::vector<Note> notes;
};

// License classes (see the docs for the full table).
enum class LicenseClass {
  kPermissive,      // CC0, CC BY, MIT, Apache, BSD, ODC-By, CDLA-Permissive... 100
  kCopyleft,        // CC BY-SA, GPL, LGPL, MPL, ODbL, CDLA-Sharing         90
  kOpenRestricted,  // BigScience RAIL (open with use restrictions)          70
  kNonCommercial,   // CC BY-NC, CC BY-NC-SA                                 65
  kNonCommercialNoDerivatives,  // CC BY-NC-ND                               55
  kAgreement,       // LDC User Agreement, ELRA end-user licences            40
  kCustom,          // "custom"                                              30
  kUnrecognized,    // any other non-empty text                              30
  kUnknown,         // "unknown" or missing                                   0
};
LicenseClass ClassifyLicense(const std::string& license);
int LicenseScore(LicenseClass c);

CriterionResult ScoreLicense(const Facts& f);
CriterionResult ScoreAccess(const Facts& f);
CriterionResult ScoreDocumentation(const Facts& f);
CriterionResult ScorePeerReview(const Facts& f);
CriterionResult ScoreEthics(const Facts& f);
CriterionResult ScoreReproducibility(const Facts& f);
CriterionResult ScoreDataQuality(const Facts& f);

struct Scores {
  std::array<CriterionResult, kCriterionCount> criteria;
  int overall = 0;    // weighted mean, rounded half up
  std::string grade;  // band of overall
};
Scores ScoreAll(const Facts& f);

// round(sum(weight_i * score_i) / 100), half up.
int WeightedMean(const std::array<int, kCriterionCount>& scores);
// 80-100 ممتاز, 60-79 جيد, 40-59 مقبول, 0-39 ضعيف ("" outside 0..100).
inline std::string GradeFor(int score) { return GradeForScore(score); }

// The assessment object (keys in the schema's order).
nlohmann::ordered_json BuildAssessment(const Facts& f, const Scores& s);

// ExtractFacts + ScoreAll + BuildAssessment.
std::optional<nlohmann::ordered_json> AssessMetadata(const nlohmann::json& metadata,
                                                     std::string* error);
// The same from file content: size/depth caps, JSON parse ("invalid JSON at
// byte N"), must be an object.
std::optional<nlohmann::ordered_json> AssessMetadataText(const std::string& text,
                                                         std::string* error);

// The coordinator's own checks of these (common/assessment_rules.h, no absl
// either), so that what the assessor writes passes them.
inline double ArabicShare(std::string_view text) { return ArabicLetterShare(text); }
inline bool IsHttpUrl(std::string_view url) { return IsHttpUrlWithHost(url); }

}  // namespace assessq::offline
