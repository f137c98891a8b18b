// valijson reports a schema it cannot use by throwing (instead of printing and
// aborting) only with this set; no other file includes valijson.
#ifndef VALIJSON_USE_EXCEPTIONS
#define VALIJSON_USE_EXCEPTIONS 1
#endif

#include "server/validation.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <exception>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_depth.h"
#include "common/text_scan.h"

namespace assessq {

using json = nlohmann::json;

struct AssessmentValidator::Impl {
  json schema_json;         // for wording messages (enum values, bounds, types)
  valijson::Schema schema;  // compiled once; only read by Validate
};

namespace {

// Field names of the assessment.
constexpr char kOriginalName[] = "الاسم_الأصلي";
constexpr char kScore[] = "درجة_الجودة";
constexpr char kGrade[] = "تقدير_الجودة";
constexpr char kSummary[] = "الملخص";
constexpr char kExam[] = "فحص_البيانات";
constexpr char kMethod[] = "الطريقة_المستخدمة";
constexpr char kSamples[] = "عدد_العينات_المفحوصة";
constexpr char kPreview[] = "معاينة_العينات";
constexpr char kMatches[] = "البيانات_تطابق_الوصف";
constexpr char kStrengths[] = "نقاط_القوة";
constexpr char kWeaknesses[] = "نقاط_الضعف";
constexpr char kUses[] = "الاستخدامات_الموصى_بها";
constexpr char kBreakdown[] = "تفصيل_الجودة";
constexpr char kSources[] = "المصادر_المفتوحة";
constexpr char kLoaded[] = "تم_تحميل_البيانات";
constexpr char kMetadataOnly[] = "metadata_only";

// ------------------------------------------------------------ JSON pointers

std::string EscapeToken(const std::string& token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

std::string Pointer(const std::vector<std::string>& tokens) {
  if (tokens.empty()) return "/";
  std::string out;
  for (const auto& t : tokens) absl::StrAppend(&out, "/", EscapeToken(t));
  return out;
}

std::string Problem(const std::vector<std::string>& tokens, const std::string& message) {
  return absl::StrCat(Pointer(tokens), ": ", message);
}

// Parses `text` after the size and depth caps; on failure returns the one
// error describing why.
bool ParseCapped(const std::string& text, json* out, std::string* error) {
  if (text.size() > kMaxAssessmentBytes) {
    *error = absl::StrCat("/: document is ", text.size(), " bytes, more than the ",
                          kMaxAssessmentBytes, "-byte cap");
    return false;
  }
  if (JsonDepth(text, kMaxAssessmentDepth) > kMaxAssessmentDepth) {
    *error = absl::StrCat("/: nesting is deeper than ", kMaxAssessmentDepth, " levels");
    return false;
  }
  try {
    *out = json::parse(text);
  } catch (const json::parse_error& e) {
    *error = absl::StrCat("/: invalid JSON at byte ", e.byte);
    return false;
  } catch (const std::exception&) {
    *error = "/: invalid JSON";
    return false;
  }
  return true;
}

// The metadata file, or a discarded value when it does not parse or is past
// generous caps (intake already refused anything beyond 1 MiB / depth 32).
json ParseMetadata(const std::string& text) {
  if (text.size() > (4u << 20) || JsonDepth(text, 64) > 64) return json(json::value_t::discarded);
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// ------------------------------------------------- wording schema messages

// The schema node describing the value at `tokens` (properties / items).
const json* SchemaAt(const json& root, const std::vector<std::string>& tokens) {
  const json* node = &root;
  for (const auto& t : tokens) {
    if (!node->is_object()) return nullptr;
    auto props = node->find("properties");
    if (props != node->end() && props->is_object() && props->contains(t)) {
      node = &(*props)[t];
      continue;
    }
    auto items = node->find("items");
    if (items != node->end() && items->is_object()) {
      node = &*items;
      continue;
    }
    return nullptr;
  }
  return node;
}

std::string NumberText(const json& v) {
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) {
    double d = v.get<double>();
    if (std::floor(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
    return absl::StrCat(d);
  }
  return v.dump();
}

std::string Keyword(const json* schema, const char* key) {
  if (schema == nullptr || !schema->is_object() || !schema->contains(key)) return "";
  return NumberText((*schema)[key]);
}

std::string TypeMessage(const json* schema) {
  if (schema == nullptr || !schema->contains("type") || !(*schema)["type"].is_string())
    return "has the wrong type";
  const std::string t = (*schema)["type"].get<std::string>();
  if (t == "integer" || t == "array" || t == "object") return absl::StrCat("must be an ", t);
  return absl::StrCat("must be a ", t);
}

std::string EnumMessage(const json* schema) {
  if (schema == nullptr || !schema->contains("enum") || !(*schema)["enum"].is_array())
    return "must be one of the allowed values";
  std::vector<std::string> values;
  for (const auto& v : (*schema)["enum"]) values.push_back(v.is_string() ? v.get<std::string>()
                                                                         : v.dump());
  return absl::StrCat("must be one of: ", absl::StrJoin(values, ", "));
}

// The text between `prefix` and the final "'." of a valijson message.
std::string QuotedAfter(const std::string& description, const std::string& prefix) {
  auto at = description.find(prefix);
  if (at == std::string::npos) return "";
  std::string rest = description.substr(at + prefix.size());
  if (absl::EndsWith(rest, "'.")) rest.resize(rest.size() - 2);
  return rest;
}

// The value at `tokens` in `doc`, or null.
const json* ValueAt(const json& doc, const std::vector<std::string>& tokens) {
  const json* node = &doc;
  for (const auto& t : tokens) {
    if (node->is_object()) {
      auto it = node->find(t);
      if (it == node->end()) return nullptr;
      node = &*it;
    } else if (node->is_array()) {
      size_t index;
      if (!absl::SimpleAtoi(t, &index) || index >= node->size()) return nullptr;
      node = &(*node)[index];
    } else {
      return nullptr;
    }
  }
  return node;
}

// Turns one valijson error into "pointer: message"; "" for the summary
// errors valijson adds on every parent of a failing value.
std::vector<std::string> Reword(const json& schema_json, const json& doc,
                                std::vector<std::string> tokens, const std::string& d) {
  if (absl::StartsWith(d, "Failed to validate against schema associated with property name") ||
      absl::StartsWith(d, "Failed to validate item #") ||
      absl::StartsWith(d, "Failed to validate against additional properties schema"))
    return {};
  const json* schema = SchemaAt(schema_json, tokens);
  if (absl::StartsWith(d, "Missing required property")) {
    tokens.push_back(QuotedAfter(d, "Missing required property '"));
    return {Problem(tokens, "missing")};
  }
  if (absl::StartsWith(d, "Object contains a property that could not be validated")) {
    // valijson names only the first unknown property: list them all.
    std::vector<std::string> out;
    const json* object = ValueAt(doc, tokens);
    const json* props =
        schema != nullptr && schema->contains("properties") ? &(*schema)["properties"] : nullptr;
    if (object != nullptr && object->is_object()) {
      for (const auto& [key, value] : object->items()) {
        if (props != nullptr && props->is_object() && props->contains(key)) continue;
        std::vector<std::string> at = tokens;
        at.push_back(key);
        out.push_back(Problem(at, "is not an allowed property"));
      }
    }
    if (out.empty()) {
      tokens.push_back(QuotedAfter(d, "constraints: '"));
      out.push_back(Problem(tokens, "is not an allowed property"));
    }
    return out;
  }
  if (absl::StartsWith(d, "Value type not permitted"))
    return {Problem(tokens, TypeMessage(schema))};
  if (absl::StartsWith(d, "Failed to match against any enum values"))
    return {Problem(tokens, EnumMessage(schema))};
  if (absl::StartsWith(d, "Expected number less than or equal to"))
    return {Problem(tokens, absl::StrCat("must be ≤ ", Keyword(schema, "maximum")))};
  if (absl::StartsWith(d, "Expected number greater than or equal to"))
    return {Problem(tokens, absl::StrCat("must be ≥ ", Keyword(schema, "minimum")))};
  if (absl::StartsWith(d, "String should be no more than"))
    return {Problem(tokens,
                    absl::StrCat("must be at most ", Keyword(schema, "maxLength"), " characters"))};
  if (absl::StartsWith(d, "String should be no fewer than")) {
    std::string n = Keyword(schema, "minLength");
    return {Problem(tokens, n == "1" ? std::string("must not be empty")
                                     : absl::StrCat("must be at least ", n, " characters"))};
  }
  if (absl::StartsWith(d, "Array should contain no more than"))
    return {
        Problem(tokens, absl::StrCat("must have at most ", Keyword(schema, "maxItems"), " items"))};
  if (absl::StartsWith(d, "Array should contain no fewer than"))
    return {Problem(tokens,
                    absl::StrCat("must have at least ", Keyword(schema, "minItems"), " items"))};
  return {Problem(tokens, d)};
}

// ------------------------------------------------------------- text checks

// Trims ASCII whitespace and no-break spaces (U+00A0), folds ASCII case.
std::string NormalizedName(const std::string& s) {
  size_t b = 0, e = s.size();
  for (;;) {
    if (b < e && IsAsciiSpace(s[b])) ++b;
    else if (b + 1 < e && s[b] == '\xC2' && s[b + 1] == '\xA0') b += 2;
    else break;
  }
  for (;;) {
    if (e > b && IsAsciiSpace(s[e - 1])) --e;
    else if (e >= b + 2 && s[e - 2] == '\xC2' && s[e - 1] == '\xA0') e -= 2;
    else break;
  }
  std::string out = s.substr(b, e - b);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// At most `max` bytes of UTF-8 `s`, cut on a character boundary.
std::string Clip(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "…";
}

// ------------------------------------------------------- semantic checks

const json* Field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool IsKnownMethod(const std::string& m) {
  return m == "datasets_lib" || m == "hf_viewer" || m == "github_raw" || m == kMetadataOnly;
}

void CheckGrade(const json& doc, std::vector<std::string>* errors) {
  const json* score = Field(doc, kScore);
  const json* grade = Field(doc, kGrade);
  if (score == nullptr || grade == nullptr || !score->is_number_integer() || !grade->is_string())
    return;
  const int64_t s = score->get<int64_t>();
  if (s < 0 || s > 100) return;  // the schema reports it
  const std::string g = grade->get<std::string>();
  const std::string want = GradeForScore(static_cast<int>(s));
  if (GradeForScore(80) != g && GradeForScore(60) != g && GradeForScore(40) != g &&
      GradeForScore(0) != g)
    return;  // not a grade at all: the schema reports it
  if (g != want)
    errors->push_back(Problem(
        {kGrade}, absl::StrCat("must be ", want, " for a score of ", s,
                               " (bands: 80-100 ممتاز, 60-79 جيد, 40-59 مقبول, 0-39 ضعيف)")));
}

void CheckLoaded(const json& doc, std::vector<std::string>* errors) {
  const json* loaded = Field(doc, kLoaded);
  const json* exam = Field(doc, kExam);
  if (loaded == nullptr || !loaded->is_boolean() || exam == nullptr || !exam->is_object()) return;
  const bool is_loaded = loaded->get<bool>();
  const json* samples = Field(*exam, kSamples);
  const json* method = Field(*exam, kMethod);
  if (samples != nullptr && samples->is_number_integer()) {
    const int64_t n = samples->get<int64_t>();
    if (is_loaded && n == 0)  // negative counts: the schema reports them
      errors->push_back(Problem({kExam, kSamples},
                                absl::StrCat("must be > 0 when ", kLoaded, " is true")));
    if (!is_loaded && n > 0)
      errors->push_back(Problem({kExam, kSamples},
                                absl::StrCat("must be 0 when ", kLoaded, " is false")));
  }
  if (method != nullptr && method->is_string() && IsKnownMethod(method->get<std::string>())) {
    const bool metadata_only = method->get<std::string>() == kMetadataOnly;
    if (is_loaded && metadata_only)
      errors->push_back(Problem({kExam, kMethod}, absl::StrCat("must not be ", kMetadataOnly,
                                                               " when ", kLoaded, " is true")));
    if (!is_loaded && !metadata_only)
      errors->push_back(Problem(
          {kExam, kMethod}, absl::StrCat("must be ", kMetadataOnly, " when ", kLoaded,
                                         " is false")));
  }
}

// `md` is the parsed metadata file, or null when there is none to compare
// with (then the Name comparison is skipped).
void CheckName(const json& doc, const json* md, std::vector<std::string>* errors) {
  if (md == nullptr) return;
  const json* given = Field(doc, kOriginalName);
  if (given == nullptr || !given->is_string()) return;  // the schema reports it
  const json* name = Field(*md, "Name");
  if (name == nullptr || !name->is_string()) {
    errors->push_back(Problem({kOriginalName},
                              "cannot be checked: the metadata has no string \"Name\""));
    return;
  }
  const std::string want = name->get<std::string>();
  if (NormalizedName(given->get<std::string>()) != NormalizedName(want))
    errors->push_back(Problem(
        {kOriginalName},
        absl::StrCat("must equal the metadata Name \"", Clip(want, 200), "\"")));
}

void CheckProse(const json& value, std::vector<std::string> tokens,
                std::vector<std::string>* errors) {
  if (!value.is_string()) return;
  const std::string text = value.get<std::string>();
  if (text.empty()) return;  // minLength reports it
  const double share = ArabicLetterShare(text);
  if (share >= 0.5) return;
  bool any_letter = false;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const int n = DecodeUtf8(text, i, &cp);
    if (n <= 0) break;
    i += static_cast<size_t>(n);
    if (IsLetter(cp)) {
      any_letter = true;
      break;
    }
  }
  if (!any_letter) {
    errors->push_back(Problem(tokens, "must be Arabic prose, but has no letters"));
    return;
  }
  const int percent = static_cast<int>(std::floor(share * 100.0));
  errors->push_back(Problem(
      tokens, absl::StrCat("must be mostly Arabic script: ", percent,
                           "% of its letters are Arabic, at least 50% required")));
}

void CheckAllProse(const json& doc, std::vector<std::string>* errors) {
  if (const json* s = Field(doc, kSummary)) CheckProse(*s, {kSummary}, errors);
  for (const char* key : {kStrengths, kWeaknesses, kUses}) {
    const json* list = Field(doc, key);
    if (list == nullptr || !list->is_array()) continue;
    for (size_t i = 0; i < list->size(); ++i)
      CheckProse((*list)[i], {key, std::to_string(i)}, errors);
  }
}

void CheckSources(const json& doc, std::vector<std::string>* errors) {
  const json* list = Field(doc, kSources);
  if (list == nullptr || !list->is_array()) return;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& v = (*list)[i];
    if (!v.is_string()) continue;  // the schema reports it
    if (!IsHttpUrlWithHost(v.get<std::string>()))
      errors->push_back(Problem({kSources, std::to_string(i)},
                                "must be an http(s) URL with a host"));
  }
}

// Units whose Volume counts items a sample could be one of.
bool CountableUnit(const std::string& unit) {
  static const std::set<std::string> kUnits = {"sentences", "tokens", "documents",
                                               "conversations", "images", "videos"};
  std::string u = NormalizedName(unit);
  return kUnits.count(u) > 0;
}

bool HttpLink(const json* v) {
  return v != nullptr && v->is_string() && IsHttpUrlWithHost(v->get<std::string>());
}

}  // namespace

// ------------------------------------------------------------ trust flags

namespace {

// The trust flags of a parsed result (an object) against parsed metadata (an
// object, empty when unknown).
std::vector<std::string> FlagsOf(const json& doc, const json& md) {
  std::vector<std::string> flags;
  const json* exam = Field(doc, kExam);
  if (exam != nullptr && !exam->is_object()) exam = nullptr;
  const json* samples = exam ? Field(*exam, kSamples) : nullptr;
  const json* preview = exam ? Field(*exam, kPreview) : nullptr;
  const json* matches = exam ? Field(*exam, kMatches) : nullptr;
  const json* loaded = Field(doc, kLoaded);
  const bool is_loaded = loaded != nullptr && loaded->is_boolean() && loaded->get<bool>();
  const bool has_samples = samples != nullptr && samples->is_number_integer();
  const int64_t n = has_samples ? samples->get<int64_t>() : 0;

  // sample_count_exceeds_volume
  const json* volume = Field(md, "Volume");
  const json* unit = Field(md, "Unit");
  if (has_samples && volume != nullptr && volume->is_number() && unit != nullptr &&
      unit->is_string() && CountableUnit(unit->get<std::string>())) {
    const double v = volume->get<double>();
    if (v > 0 && static_cast<double>(n) > v) flags.push_back("sample_count_exceeds_volume");
  }
  // preview_exceeds_sample_count
  if (has_samples && preview != nullptr && preview->is_array() &&
      static_cast<int64_t>(preview->size()) > n)
    flags.push_back("preview_exceeds_sample_count");
  // claims_loaded_without_samples_preview
  if (is_loaded && (preview == nullptr || !preview->is_array() || preview->empty()))
    flags.push_back("claims_loaded_without_samples_preview");
  // claims_loaded_but_access_restricted
  if (is_loaded) {
    const json* access = Field(md, "Access");
    if (access != nullptr && access->is_string()) {
      const std::string a = NormalizedName(access->get<std::string>());
      if (a == "upon-request" || a == "with-fee")
        flags.push_back("claims_loaded_but_access_restricted");
    }
  }
  // claims_match_without_inspection
  if (matches != nullptr && matches->is_boolean() && matches->get<bool>() && has_samples && n == 0)
    flags.push_back("claims_match_without_inspection");
  // score_inconsistent_with_breakdown
  const json* score = Field(doc, kScore);
  const json* breakdown = Field(doc, kBreakdown);
  if (score != nullptr && score->is_number() && breakdown != nullptr && breakdown->is_object() &&
      !breakdown->empty()) {
    double sum = 0;
    int count = 0;
    for (const auto& [k, v] : breakdown->items()) {
      if (!v.is_number()) continue;
      sum += v.get<double>();
      ++count;
    }
    if (count > 0 && std::fabs(score->get<double>() - sum / count) > 25.0)
      flags.push_back("score_inconsistent_with_breakdown");
  }
  // no_sources
  const json* sources = Field(doc, kSources);
  if (sources != nullptr && sources->is_array() && sources->empty() &&
      (HttpLink(Field(md, "Link")) || HttpLink(Field(md, "HF Link")) ||
       HttpLink(Field(md, "HF_Link"))))
    flags.push_back("no_sources");
  return flags;
}

}  // namespace

// ------------------------------------------------------------ public API

std::vector<std::string> TrustFlags(const std::string& result_json,
                                    const std::string& metadata_json) {
  json doc;
  std::string parse_error;
  if (!ParseCapped(result_json, &doc, &parse_error) || !doc.is_object()) return {};
  json md = ParseMetadata(metadata_json);
  if (!md.is_object()) md = json::object();
  return FlagsOf(doc, md);
}

absl::StatusOr<AssessmentValidator> AssessmentValidator::Create(const std::string& schema_text) {
  auto impl = std::make_shared<Impl>();
  try {
    impl->schema_json = json::parse(schema_text);
  } catch (const json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("assessment schema: invalid JSON at byte ", e.byte));
  }
  if (!impl->schema_json.is_object())
    return absl::InvalidArgumentError("assessment schema: not a JSON object");
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(impl->schema_json);
    parser.populateSchema(adapter, impl->schema);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("assessment schema: ", e.what()));
  }
  return AssessmentValidator(std::move(impl));
}

AssessmentValidator::Verdict AssessmentValidator::Check(const std::string& result_json,
                                                        const std::string& metadata_json,
                                                        bool with_flags,
                                                        const NetEvidence* evidence) const {
  Verdict v;
  std::vector<std::string>& errors = v.errors;
  json doc;
  std::string parse_error;
  if (!ParseCapped(result_json, &doc, &parse_error)) {
    errors.push_back(std::move(parse_error));
    return v;
  }

  // The schema, with a Validator per call: it caches regexes, the Schema is
  // only read.
  {
    valijson::Validator validator(valijson::Validator::kStrongTypes);
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter target(doc);
    try {
      validator.validate(impl_->schema, target, &results);
    } catch (const std::exception& e) {
      errors.push_back(absl::StrCat("/: cannot be validated: ", e.what()));
      return v;
    }
    valijson::ValidationResults::Error e;
    std::set<std::string> seen;
    while (results.popError(e)) {
      std::vector<std::string> tokens;
      for (size_t i = 1; i < e.context.size(); ++i) {  // [0] is "<root>"
        const std::string& c = e.context[i];
        tokens.push_back(c.size() >= 2 && c.front() == '[' && c.back() == ']'
                             ? c.substr(1, c.size() - 2)
                             : c);
      }
      for (std::string& problem : Reword(impl_->schema_json, doc, std::move(tokens), e.description))
        if (seen.insert(problem).second) errors.push_back(std::move(problem));
    }
  }
  if (!doc.is_object()) return v;

  // The metadata is parsed once, for the Name comparison and the flags.
  json md = metadata_json.empty() ? json(json::value_t::discarded) : ParseMetadata(metadata_json);
  CheckGrade(doc, &errors);
  CheckLoaded(doc, &errors);
  CheckName(doc, metadata_json.empty() ? nullptr : &md, &errors);
  CheckAllProse(doc, &errors);
  CheckSources(doc, &errors);
  if (with_flags && errors.empty()) {
    const json& m = md.is_object() ? md : json::object();
    v.flags = FlagsOf(doc, m);
    if (evidence != nullptr)
      for (std::string& f : EvidenceFlags(doc, m, *evidence)) v.flags.push_back(std::move(f));
  }
  return v;
}

std::vector<std::string> AssessmentValidator::Validate(const std::string& result_json,
                                                       const std::string& metadata_json) const {
  return Check(result_json, metadata_json, /*with_flags=*/false).errors;
}


}  // namespace assessq
