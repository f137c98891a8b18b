// AssessmentValidator (server/validation.h) against the real
// schemas/assessment.schema.json: a valid assessment passes; each rule, when
// broken, gives an error on the right JSON pointer; all errors come at once;
// malformed, huge and deep input give one error; concurrent use; TrustFlags
// and the text/URL helpers.
#include "server/validation.h"
#include "tests/support/schema_validator.h"
#include "server/result_checks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace assessq {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

std::string ReadFile(const std::string& path) { return aqtest::ReadFileOrFail(path); }
const AssessmentValidator& V() { return aqtest::SchemaValidator(); }

const char kMetadata[] = R"({
  "Name": "Arabic News Corpus", "Volume": 1000.0, "Unit": "sentences",
  "Link": "https://github.com/example/anc", "HF Link": "https://hf.co/datasets/example/anc",
  "Access": "Free"
})";

// A valid assessment of a loaded dataset.
json Loaded() {
  return json::parse(R"json({
    "الاسم": "مدونة الأخبار العربية",
    "الاسم_الأصلي": "Arabic News Corpus",
    "درجة_الجودة": 72,
    "تقدير_الجودة": "جيد",
    "الملخص": "مدونة أخبار عربية بالفصحى المعاصرة، موثقة جيدا ومتاحة على منصة Hugging Face.",
    "فحص_البيانات": {
      "الطريقة_المستخدمة": "hf_viewer",
      "عدد_العينات_المفحوصة": 20,
      "معاينة_العينات": ["أعلنت الوزارة اليوم عن خطة جديدة", "Breaking: text in English"],
      "مشاكل_مكتشفة": ["بعض الجمل مكررة"],
      "البيانات_تطابق_الوصف": true
    },
    "نقاط_القوة": ["ترخيص مفتوح (CC BY 4.0)", "حجم مناسب"],
    "نقاط_الضعف": ["لا توجد تقسيمات رسمية"],
    "الاستخدامات_الموصى_بها": ["تصنيف الموضوعات"],
    "تفصيل_الجودة": {
      "سهولة_الوصول": 90, "التوثيق": 70, "السلامة_الأخلاقية": 60, "الترخيص": 100,
      "قابلية_إعادة_الإنتاج": 70, "المراجعة_العلمية": 50, "جودة_البيانات": 65
    },
    "المصادر_المفتوحة": ["https://hf.co/datasets/example/anc", "http://github.com/example/anc"],
    "تم_تحميل_البيانات": true
  })json");
}

// A valid metadata-only assessment.
json MetadataOnly() {
  json j = Loaded();
  j["فحص_البيانات"]["الطريقة_المستخدمة"] = "metadata_only";
  j["فحص_البيانات"]["عدد_العينات_المفحوصة"] = 0;
  j["فحص_البيانات"]["معاينة_العينات"] = json::array();
  j["فحص_البيانات"]["البيانات_تطابق_الوصف"] = false;
  j["تم_تحميل_البيانات"] = false;
  return j;
}

std::vector<std::string> Check(const json& j, const std::string& metadata = kMetadata) {
  return V().Validate(j.dump(), metadata);
}

TEST(AssessmentValidatorTest, CreateRefusesBadSchemas) {
  EXPECT_FALSE(AssessmentValidator::Create("{").ok());
  EXPECT_FALSE(AssessmentValidator::Create("[1]").ok());
  EXPECT_FALSE(AssessmentValidator::Create(R"({"type": 5})").ok());
  EXPECT_TRUE(AssessmentValidator::Create(R"({"type": "object"})").ok());
}

TEST(AssessmentValidatorTest, ValidExamplesPass) {
  EXPECT_THAT(Check(Loaded()), IsEmpty());
  EXPECT_THAT(Check(MetadataOnly()), IsEmpty());
  // Without metadata the name comparison is skipped.
  json other = Loaded();
  other["الاسم_الأصلي"] = "Something Else";
  EXPECT_THAT(Check(other, ""), IsEmpty());
}

TEST(AssessmentValidatorTest, CopiesShareTheSchema) {
  AssessmentValidator copy = V();
  EXPECT_THAT(copy.Validate(Loaded().dump(), kMetadata), IsEmpty());
}

// ------------------------------------------------------------ the schema

TEST(AssessmentValidatorTest, ScoreBounds) {
  json j = Loaded();
  j["درجة_الجودة"] = 101;
  EXPECT_THAT(Check(j), ElementsAre("/درجة_الجودة: must be ≤ 100"));
  j["درجة_الجودة"] = -1;
  EXPECT_THAT(Check(j), ElementsAre("/درجة_الجودة: must be ≥ 0"));
  j["درجة_الجودة"] = 72.5;
  EXPECT_THAT(Check(j), ElementsAre("/درجة_الجودة: must be an integer"));
  j["درجة_الجودة"] = "72";
  EXPECT_THAT(Check(j), ElementsAre("/درجة_الجودة: must be an integer"));
}

TEST(AssessmentValidatorTest, GradeEnum) {
  json j = Loaded();
  j["تقدير_الجودة"] = "جيد جدا";
  EXPECT_THAT(Check(j), ElementsAre("/تقدير_الجودة: must be one of: ممتاز, جيد, مقبول, ضعيف"));
}

TEST(AssessmentValidatorTest, MissingFieldsArePointedAt) {
  json j = Loaded();
  j.erase("الملخص");
  j["فحص_البيانات"].erase("معاينة_العينات");
  j["تفصيل_الجودة"].erase("التوثيق");
  EXPECT_THAT(Check(j), UnorderedElementsAre("/الملخص: missing",
                                             "/فحص_البيانات/معاينة_العينات: missing",
                                             "/تفصيل_الجودة/التوثيق: missing"));
}

TEST(AssessmentValidatorTest, UnknownPropertiesAreRefusedAtEveryLevel) {
  json j = Loaded();
  j["extra"] = 1;
  j["a/b~c"] = 2;
  j["فحص_البيانات"]["ملاحظات"] = "x";
  j["تفصيل_الجودة"]["الشمول"] = 50;
  EXPECT_THAT(Check(j), UnorderedElementsAre("/extra: is not an allowed property",
                                             "/a~1b~0c: is not an allowed property",
                                             "/فحص_البيانات/ملاحظات: is not an allowed property",
                                             "/تفصيل_الجودة/الشمول: is not an allowed property"));
}

TEST(AssessmentValidatorTest, BreakdownScores) {
  json j = Loaded();
  j["تفصيل_الجودة"]["الترخيص"] = 101;
  j["تفصيل_الجودة"]["جودة_البيانات"] = -5;
  j["تفصيل_الجودة"]["التوثيق"] = "70";
  EXPECT_THAT(Check(j), UnorderedElementsAre("/تفصيل_الجودة/الترخيص: must be ≤ 100",
                                             "/تفصيل_الجودة/جودة_البيانات: must be ≥ 0",
                                             "/تفصيل_الجودة/التوثيق: must be an integer"));
}

TEST(AssessmentValidatorTest, ExamFields) {
  json j = Loaded();
  j["فحص_البيانات"]["الطريقة_المستخدمة"] = "scraping";
  j["فحص_البيانات"]["عدد_العينات_المفحوصة"] = -2;
  j["فحص_البيانات"]["البيانات_تطابق_الوصف"] = "yes";
  j["فحص_البيانات"]["معاينة_العينات"] = json::array({1});
  EXPECT_THAT(
      Check(j),
      UnorderedElementsAre(
          "/فحص_البيانات/الطريقة_المستخدمة: must be one of: datasets_lib, hf_viewer, "
          "github_raw, metadata_only",
          "/فحص_البيانات/عدد_العينات_المفحوصة: must be ≥ 0",
          "/فحص_البيانات/البيانات_تطابق_الوصف: must be a boolean",
          "/فحص_البيانات/معاينة_العينات/0: must be a string"));
}

TEST(AssessmentValidatorTest, TypesLengthsAndCaps) {
  json j = Loaded();
  std::string long_arabic;
  for (int i = 0; i < 4001; ++i) long_arabic += "ب";
  j["الملخص"] = long_arabic;
  j["نقاط_القوة"] = json::array();
  for (int i = 0; i < 21; ++i) j["نقاط_القوة"].push_back("نقطة قوة");
  j["نقاط_الضعف"] = json::array({""});
  j["الاسم"] = "";
  j["تم_تحميل_البيانات"] = "true";
  j["المصادر_المفتوحة"] = "https://example.org";
  EXPECT_THAT(Check(j), UnorderedElementsAre("/الملخص: must be at most 4000 characters",
                                             "/نقاط_القوة: must have at most 20 items",
                                             "/نقاط_الضعف/0: must not be empty",
                                             "/الاسم: must not be empty",
                                             "/تم_تحميل_البيانات: must be a boolean",
                                             "/المصادر_المفتوحة: must be an array"));
}

TEST(AssessmentValidatorTest, RootMustBeAnObject) {
  EXPECT_THAT(V().Validate("[1, 2]", kMetadata), ElementsAre("/: must be an object"));
  EXPECT_THAT(V().Validate("\"x\"", kMetadata), ElementsAre("/: must be an object"));
}

// ------------------------------------------------------ beyond the schema

TEST(AssessmentValidatorTest, GradeMustMatchTheScoreBand) {
  struct Case {
    int score;
    const char* grade;
  };
  for (Case c : {Case{100, "ممتاز"}, Case{80, "ممتاز"}, Case{79, "جيد"}, Case{60, "جيد"},
                 Case{59, "مقبول"}, Case{40, "مقبول"}, Case{39, "ضعيف"}, Case{0, "ضعيف"}}) {
    json j = Loaded();
    j["درجة_الجودة"] = c.score;
    j["تقدير_الجودة"] = c.grade;
    EXPECT_THAT(Check(j), IsEmpty()) << c.score;
  }
  json j = Loaded();
  j["درجة_الجودة"] = 79;
  j["تقدير_الجودة"] = "ممتاز";
  EXPECT_THAT(Check(j), ElementsAre("/تقدير_الجودة: must be جيد for a score of 79 (bands: "
                                    "80-100 ممتاز, 60-79 جيد, 40-59 مقبول, 0-39 ضعيف)"));
  j["درجة_الجودة"] = 40;
  j["تقدير_الجودة"] = "ضعيف";
  EXPECT_THAT(Check(j), ElementsAre(HasSubstr("/تقدير_الجودة: must be مقبول for a score of 40")));
  // An out-of-range score is the schema's error only.
  j["درجة_الجودة"] = 150;
  j["تقدير_الجودة"] = "ممتاز";
  EXPECT_THAT(Check(j), ElementsAre("/درجة_الجودة: must be ≤ 100"));
}

// تم_تحميل_البيانات binds the samples count and the method: loaded needs
// samples and a real method; not loaded, none and metadata_only.
TEST(AssessmentValidatorTest, LoadedFlagBindsSamplesAndMethod) {
  struct Case {
    json (*record)();
    const char* field;
    json value;
    const char* error;
  };
  const Case cases[] = {
      {Loaded, "عدد_العينات_المفحوصة", 0,
       "/فحص_البيانات/عدد_العينات_المفحوصة: must be > 0 when تم_تحميل_البيانات is true"},
      {Loaded, "الطريقة_المستخدمة", "metadata_only",
       "/فحص_البيانات/الطريقة_المستخدمة: must not be metadata_only when تم_تحميل_البيانات "
       "is true"},
      {MetadataOnly, "عدد_العينات_المفحوصة", 3,
       "/فحص_البيانات/عدد_العينات_المفحوصة: must be 0 when تم_تحميل_البيانات is false"},
      {MetadataOnly, "الطريقة_المستخدمة", "hf_viewer",
       "/فحص_البيانات/الطريقة_المستخدمة: must be metadata_only when تم_تحميل_البيانات is "
       "false"},
  };
  for (const Case& c : cases) {
    json j = c.record();
    j["فحص_البيانات"][c.field] = c.value;
    EXPECT_THAT(Check(j), ElementsAre(c.error)) << c.field << " = " << c.value.dump();
  }
  for (const char* method : {"datasets_lib", "hf_viewer", "github_raw"}) {
    json j = Loaded();
    j["فحص_البيانات"]["الطريقة_المستخدمة"] = method;
    EXPECT_THAT(Check(j), IsEmpty()) << method;
  }
}

TEST(AssessmentValidatorTest, OriginalNameMustMatchTheMetadata) {
  json j = Loaded();
  j["الاسم_الأصلي"] = "  arabic NEWS corpus\t";
  EXPECT_THAT(Check(j), IsEmpty());
  j["الاسم_الأصلي"] = "Arabic News Corpus v2";
  EXPECT_THAT(Check(j),
              ElementsAre("/الاسم_الأصلي: must equal the metadata Name \"Arabic News Corpus\""));
  // Metadata names with outer spaces and non-ASCII characters.
  j["الاسم_الأصلي"] = "MA’AKS";
  EXPECT_THAT(Check(j, R"({"Name": " MA’AKS "})"), IsEmpty());
  EXPECT_THAT(Check(j, R"({"Name": "ma’aks"})"), IsEmpty());
  j["الاسم_الأصلي"] = "ÉCOLE";
  EXPECT_THAT(Check(j, R"({"Name": "école"})"),
              ElementsAre(HasSubstr("/الاسم_الأصلي: must equal")));  // ASCII folding only
  // Metadata without a usable Name.
  j = Loaded();
  EXPECT_THAT(Check(j, "{not json"),
              ElementsAre("/الاسم_الأصلي: cannot be checked: the metadata has no string \"Name\""));
  EXPECT_THAT(Check(j, R"({"Name": 5})"), ElementsAre(HasSubstr("/الاسم_الأصلي: cannot")));
}

TEST(AssessmentValidatorTest, ProseMustBeMostlyArabic) {
  json j = Loaded();
  j["الملخص"] = "A well documented corpus of Arabic news.";
  j["نقاط_القوة"][1] = "Open license";
  j["نقاط_الضعف"][0] = "2024 - 100%";
  j["الاستخدامات_الموصى_بها"] = json::array({"تصنيف الموضوعات", "Topic classification"});
  EXPECT_THAT(
      Check(j),
      ElementsAre(
          "/الملخص: must be mostly Arabic script: 0% of its letters are Arabic, at least 50% "
          "required",
          "/نقاط_القوة/1: must be mostly Arabic script: 0% of its letters are Arabic, at least "
          "50% required",
          "/نقاط_الضعف/0: must be Arabic prose, but has no letters",
          "/الاستخدامات_الموصى_بها/1: must be mostly Arabic script: 0% of its letters are "
          "Arabic, at least 50% required"));
  // Exactly half is enough; just under half is not.
  j = Loaded();
  j["الملخص"] = "abcd أبتث";
  EXPECT_THAT(Check(j), IsEmpty());
  j["الملخص"] = "abcde أبتث";
  EXPECT_THAT(Check(j), ElementsAre("/الملخص: must be mostly Arabic script: 44% of its letters "
                                    "are Arabic, at least 50% required"));
  // Digits, punctuation, diacritics and Arabic digits are not letters.
  j["الملخص"] = "كَتَبَ ١٢٣ ، ؟ 456 ab";
  EXPECT_THAT(Check(j), IsEmpty());
  // Samples and problems may be in any language.
  j = Loaded();
  j["فحص_البيانات"]["معاينة_العينات"] = json::array({"English only sample"});
  j["فحص_البيانات"]["مشاكل_مكتشفة"] = json::array({"duplicates"});
  EXPECT_THAT(Check(j), IsEmpty());
}

TEST(AssessmentValidatorTest, SourcesMustBeHttpUrlsWithAHost) {
  json j = Loaded();
  j["المصادر_المفتوحة"] = json::array({"https://example.org/a", "ftp://example.org/data",
                                       "https://", "http:///path", "https://exa mple.org",
                                       "HTTPS://Example.ORG:8443/x?y#z", "mailto:a@b.org",
                                       "https://[::1]:8080/", "https://host:port/"});
  EXPECT_THAT(Check(j),
              ElementsAre("/المصادر_المفتوحة/1: must be an http(s) URL with a host",
                          "/المصادر_المفتوحة/2: must be an http(s) URL with a host",
                          "/المصادر_المفتوحة/3: must be an http(s) URL with a host",
                          "/المصادر_المفتوحة/4: must be an http(s) URL with a host",
                          "/المصادر_المفتوحة/6: must be an http(s) URL with a host",
                          "/المصادر_المفتوحة/8: must be an http(s) URL with a host"));
}

TEST(AssessmentValidatorTest, AllErrorsAreListedAtOnce) {
  json j = Loaded();
  j["درجة_الجودة"] = 85;                      // grade stays جيد: band error
  j.erase("الاسم");                            // schema: missing
  j["الاسم_الأصلي"] = "Other";                 // metadata name
  j["الملخص"] = "English summary";             // prose
  j["فحص_البيانات"]["عدد_العينات_المفحوصة"] = 0;  // loaded without samples
  j["تفصيل_الجودة"]["الترخيص"] = 120;           // schema: bound
  j["المصادر_المفتوحة"][0] = "file:///etc/passwd";  // URL
  j["unexpected"] = true;                      // schema: additional property
  EXPECT_THAT(
      Check(j),
      UnorderedElementsAre(
          "/الاسم: missing", "/unexpected: is not an allowed property",
          "/تفصيل_الجودة/الترخيص: must be ≤ 100",
          HasSubstr("/تقدير_الجودة: must be ممتاز for a score of 85"),
          "/فحص_البيانات/عدد_العينات_المفحوصة: must be > 0 when تم_تحميل_البيانات is true",
          "/الاسم_الأصلي: must equal the metadata Name \"Arabic News Corpus\"",
          HasSubstr("/الملخص: must be mostly Arabic script"),
          "/المصادر_المفتوحة/0: must be an http(s) URL with a host"));
}

// ---------------------------------------------------------- hostile input

TEST(AssessmentValidatorTest, MalformedJsonGivesOneErrorWithTheByte) {
  EXPECT_THAT(V().Validate("", kMetadata), ElementsAre("/: invalid JSON at byte 1"));
  EXPECT_THAT(V().Validate("{", kMetadata), ElementsAre("/: invalid JSON at byte 2"));
  EXPECT_THAT(V().Validate(R"({"a": })", kMetadata), ElementsAre("/: invalid JSON at byte 7"));
  EXPECT_THAT(V().Validate(Loaded().dump() + "x", kMetadata),
              ElementsAre(HasSubstr("/: invalid JSON at byte")));
  EXPECT_THAT(V().Validate("{\"\xff\": 1}", kMetadata),
              ElementsAre(HasSubstr("/: invalid JSON at byte")));  // not UTF-8
}

TEST(AssessmentValidatorTest, HugeInputIsRefusedBeforeParsing) {
  json j = Loaded();
  const std::string small = j.dump();
  // Pad with whitespace: still valid JSON, only the size is wrong.
  std::string at_cap = small + std::string(kMaxAssessmentBytes - small.size(), ' ');
  EXPECT_THAT(V().Validate(at_cap, kMetadata), IsEmpty());
  std::string over = at_cap + " ";
  EXPECT_THAT(V().Validate(over, kMetadata),
              ElementsAre("/: document is 262145 bytes, more than the 262144-byte cap"));
}

TEST(AssessmentValidatorTest, DeepInputIsRefusedBeforeParsing) {
  auto nested = [](int depth) {
    return std::string(depth, '[') + std::string(depth, ']');
  };
  EXPECT_THAT(V().Validate(nested(16), kMetadata), ElementsAre("/: must be an object"));
  EXPECT_THAT(V().Validate(nested(17), kMetadata),
              ElementsAre("/: nesting is deeper than 16 levels"));
  EXPECT_THAT(V().Validate(nested(100000), kMetadata),
              ElementsAre("/: nesting is deeper than 16 levels"));
  // Brackets inside strings do not count.
  json j = Loaded();
  j["الملخص"] = "ملخص " + std::string(40, '[') + " عربي";
  EXPECT_THAT(Check(j), IsEmpty());
}

TEST(AssessmentValidatorTest, ConcurrentValidationIsConsistent) {
  json bad = Loaded();
  bad["درجة_الجودة"] = 101;
  bad["الملخص"] = "English";
  const std::string good_text = Loaded().dump(), bad_text = bad.dump();
  const auto want_good = V().Validate(good_text, kMetadata);
  const auto want_bad = V().Validate(bad_text, kMetadata);
  ASSERT_THAT(want_good, IsEmpty());
  ASSERT_EQ(want_bad.size(), 2u);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        if (V().Validate(good_text, kMetadata) != want_good) ++mismatches[t];
        if (V().Validate(bad_text, kMetadata) != want_bad) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

// ----------------------------------------------------------- trust flags

TEST(TrustFlagsTest, CleanResultsHaveNoFlags) {
  EXPECT_THAT(TrustFlags(Loaded().dump(), kMetadata), IsEmpty());
  EXPECT_THAT(TrustFlags(MetadataOnly().dump(), kMetadata), IsEmpty());
  EXPECT_THAT(TrustFlags("{not json", kMetadata), IsEmpty());
  EXPECT_THAT(TrustFlags(Loaded().dump(), "{not json"), IsEmpty());
}

TEST(TrustFlagsTest, SampleCountExceedsVolume) {
  json j = Loaded();
  j["فحص_البيانات"]["عدد_العينات_المفحوصة"] = 1001;
  EXPECT_THAT(TrustFlags(j.dump(), kMetadata), ElementsAre("sample_count_exceeds_volume"));
  // Hours are not comparable with a count of samples; a missing volume neither.
  EXPECT_THAT(TrustFlags(j.dump(), R"({"Name": "x", "Volume": 10, "Unit": "hours",
                                       "Link": "https://a.org"})"),
              IsEmpty());
  EXPECT_THAT(TrustFlags(j.dump(), R"({"Name": "x", "Volume": "10", "Unit": "sentences",
                                       "Link": "https://a.org"})"),
              IsEmpty());
  EXPECT_THAT(TrustFlags(j.dump(), R"({"Name": "x", "Volume": 10, "Unit": "Documents",
                                       "Link": "https://a.org"})"),
              ElementsAre("sample_count_exceeds_volume"));
}

TEST(TrustFlagsTest, LoadedClaims) {
  json j = Loaded();
  j["فحص_البيانات"]["معاينة_العينات"] = json::array();
  EXPECT_THAT(TrustFlags(j.dump(), kMetadata),
              ElementsAre("claims_loaded_without_samples_preview"));
  j = Loaded();
  EXPECT_THAT(TrustFlags(j.dump(), R"({"Name": "x", "Access": "With-Fee",
                                       "Link": "https://a.org"})"),
              ElementsAre("claims_loaded_but_access_restricted"));
  j["فحص_البيانات"]["عدد_العينات_المفحوصة"] = 1;
  EXPECT_THAT(TrustFlags(j.dump(), kMetadata), ElementsAre("preview_exceeds_sample_count"));
}

TEST(TrustFlagsTest, MatchWithoutInspectionInconsistentScoreAndNoSources) {
  json j = MetadataOnly();
  j["فحص_البيانات"]["البيانات_تطابق_الوصف"] = true;
  j["درجة_الجودة"] = 100;
  j["تقدير_الجودة"] = "ممتاز";
  j["المصادر_المفتوحة"] = json::array();
  EXPECT_THAT(TrustFlags(j.dump(), kMetadata),
              ElementsAre("claims_match_without_inspection", "score_inconsistent_with_breakdown",
                          "no_sources"));
  // No http(s) link in the metadata: nothing was left out.
  EXPECT_THAT(TrustFlags(j.dump(), R"({"Name": "x", "Link": "mailto:a@b.org", "HF Link": ""})"),
              ElementsAre("claims_match_without_inspection",
                          "score_inconsistent_with_breakdown"));
}

// --------------------------------------------------------------- helpers

TEST(ValidationHelpersTest, GradeForScore) {
  EXPECT_EQ(GradeForScore(100), "ممتاز");
  EXPECT_EQ(GradeForScore(80), "ممتاز");
  EXPECT_EQ(GradeForScore(79), "جيد");
  EXPECT_EQ(GradeForScore(60), "جيد");
  EXPECT_EQ(GradeForScore(59), "مقبول");
  EXPECT_EQ(GradeForScore(40), "مقبول");
  EXPECT_EQ(GradeForScore(39), "ضعيف");
  EXPECT_EQ(GradeForScore(0), "ضعيف");
  EXPECT_EQ(GradeForScore(-1), "");
  EXPECT_EQ(GradeForScore(101), "");
}

TEST(ValidationHelpersTest, ArabicLetterShare) {
  EXPECT_DOUBLE_EQ(ArabicLetterShare("مرحبا"), 1.0);
  EXPECT_DOUBLE_EQ(ArabicLetterShare("hello"), 0.0);
  EXPECT_DOUBLE_EQ(ArabicLetterShare(""), 0.0);
  EXPECT_DOUBLE_EQ(ArabicLetterShare("123 ٤٥٦ ،؟!"), 0.0);  // no letters at all
  EXPECT_DOUBLE_EQ(ArabicLetterShare("ab مر"), 0.5);
  EXPECT_DOUBLE_EQ(ArabicLetterShare("مُحَمَّد"), 1.0);       // marks are not letters
  EXPECT_DOUBLE_EQ(ArabicLetterShare("ﷲ ab"), 1.0 / 3.0);  // presentation forms count
  EXPECT_DOUBLE_EQ(ArabicLetterShare("ـــ ab"), 0.0);       // tatweel is not a letter
  EXPECT_DOUBLE_EQ(ArabicLetterShare("日本 ع"), 1.0 / 3.0);  // other scripts are letters
  EXPECT_DOUBLE_EQ(ArabicLetterShare("“ع” — 😀"), 1.0);      // punctuation, emoji are not
  EXPECT_DOUBLE_EQ(ArabicLetterShare("\xff"), 0.0);          // not UTF-8
}

TEST(ValidationHelpersTest, IsHttpUrlWithHost) {
  for (const char* ok : {"http://a", "https://example.org", "HTTP://EXAMPLE.ORG/x",
                         "https://user@host.org:443/p?q#f", "https://[2001:db8::1]/",
                         "https://hf.co/datasets/a/b", "http://موقع.مثال/"})
    EXPECT_TRUE(IsHttpUrlWithHost(ok)) << ok;
  for (const char* bad : {"", "example.org", "ftp://a.org", "https://", "http://:80/",
                          "https://a.org:/", "https://a.org:123456/", "https://a b.org",
                          "https://a.org/\x01", "https://[::1", "https://a.org:8o/",
                          "javascript:alert(1)", "https://../x", "https://a%2fb.org"})
    EXPECT_FALSE(IsHttpUrlWithHost(bad)) << bad;
}

// The coordinator's checker adds the flags from the attempt's network log
// (server/net_evidence) after the result's own, and none without a log.
TEST(AssessmentValidatorTest, TheCheckerFlagsClaimsTheNetworkLogDoesNotBear) {
  auto checker = MakeResultChecker();
  ASSERT_TRUE(checker.ok()) << checker.status();
  ResultContext ctx{"b", "anc", "Arabic News Corpus", "{}", kMetadata};
  const std::string loaded = Loaded().dump();
  // Offline (no gateway, so no log) and metadata only: nothing to flag.
  EXPECT_THAT((*checker)(ctx, MetadataOnly().dump()).flags, IsEmpty());
  // A gateway log with nothing fetched: the claim and the sources lack evidence.
  ctx.netlog_json = "[]";
  CheckedResult none = (*checker)(ctx, loaded);
  EXPECT_THAT(none.errors, IsEmpty());
  EXPECT_THAT(none.flags, ElementsAre("claims_loaded_without_download", "sources_not_contacted"));
  // Samples downloaded from the dataset's hosts, both sources contacted.
  const std::string log =
      R"([{"host": "hf.co", "decision": "allow", "kind": "connect", "bytes_down": 4096},
          {"host": "github.com", "decision": "allow", "kind": "connect", "bytes_down": 512}])";
  ctx.netlog_json = log;
  EXPECT_THAT((*checker)(ctx, loaded).flags, IsEmpty());
}

}  // namespace
}  // namespace assessq
