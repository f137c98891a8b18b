// The offline assessor's rules (assessor/rules.h): reading the metadata (and
// refusing wrong types by field name), each criterion's point table as
// documented in docs/offline-assessor.md, the weighted mean and grade, the
// built assessment (valid against the real schema and validator), and that
// the rules' text/URL helpers agree with the validator's.
#include "assessor/rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <numeric>
#include <sstream>
#include <string>

#include "server/validation.h"
#include "tests/support/schema_validator.h"

namespace assessq::offline {
namespace {

using json = nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

std::string ReadFile(const std::string& path) { return aqtest::ReadFileOrFail(path); }
const AssessmentValidator& V() { return aqtest::SchemaValidator(); }

// A complete, well-documented Masader-style record.
json Rich() {
  return json::parse(R"({
    "Name": "Example Arabic Corpus",
    "Dialect Subsets": [],
    "HF Link": "https://hf.co/datasets/example/eac",
    "Link": "https://github.com/example/eac",
    "License": "CC BY 4.0",
    "Year": 2023,
    "Language": "ar",
    "Dialect": "Modern Standard Arabic",
    "Source": ["news articles"],
    "Domain": ["news"],
    "Form": "text",
    "Annotation Style": ["human annotation"],
    "Description": "A corpus of news articles collected from ten Arabic newspapers, cleaned, deduplicated and annotated by trained native speakers for topic, with guidelines and agreement scores published alongside, for research use by everyone.",
    "Volume": 50000.0,
    "Unit": "sentences",
    "Provider": ["Example University"],
    "Derived From": [],
    "Paper Title": "EAC: An Example Arabic Corpus",
    "Paper Link": "https://aclanthology.org/2023.example-1.1.pdf",
    "Script": "Arab",
    "Tokenized": false,
    "Host": "GitHub",
    "Access": "Free",
    "Cost": "",
    "Has Splits": true,
    "Partial": false,
    "Tasks": ["topic classification"],
    "Venue Title": "ACL",
    "Venue Type": "conference",
    "Venue Name": "Association for Computational Linguistics",
    "Authors": [],
    "Affiliations": [],
    "Abstract": ""
  })");
}

Facts FactsOf(const json& md) {
  std::string error;
  auto f = ExtractFacts(md, &error);
  EXPECT_TRUE(f.has_value()) << error;
  return f.value_or(Facts{});
}

std::string ErrorOf(const json& md) {
  std::string error;
  auto f = ExtractFacts(md, &error);
  EXPECT_FALSE(f.has_value());
  return error;
}

// ------------------------------------------------------------- reading

TEST(ExtractFactsTest, ReadsTheRecord) {
  Facts f = FactsOf(Rich());
  EXPECT_EQ(f.name, "Example Arabic Corpus");
  EXPECT_EQ(f.year, 2023);
  EXPECT_EQ(f.volume, 50000.0);
  EXPECT_EQ(f.tasks, std::vector<std::string>{"topic classification"});
  EXPECT_EQ(f.has_splits, true);
  EXPECT_EQ(f.hf_link, "https://hf.co/datasets/example/eac");
}

TEST(ExtractFactsTest, AcceptsUnderscoreKeysNullsAndMissingFields) {
  Facts f = FactsOf(json::parse(R"({"Name": " X ", "HF_Link": "https://hf.co/x",
                                    "Has_Splits": true, "License": null})"));
  EXPECT_EQ(f.name, "X");
  EXPECT_TRUE(f.name_had_outer_space);
  EXPECT_EQ(f.hf_link, "https://hf.co/x");
  EXPECT_EQ(f.has_splits, true);
  EXPECT_EQ(f.license, "");
  EXPECT_FALSE(f.volume.has_value());
  EXPECT_FALSE(f.tokenized.has_value());
}

TEST(ExtractFactsTest, ErrorsNameTheField) {
  EXPECT_EQ(ErrorOf(json::parse("[1]")), "metadata: must be a JSON object");
  EXPECT_EQ(ErrorOf(json::parse("{}")), "field \"Name\": missing");
  EXPECT_EQ(ErrorOf(json::parse(R"({"Name": 7})")), "field \"Name\": must be a string");
  EXPECT_EQ(ErrorOf(json::parse(R"({"Name": "  "})")), "field \"Name\": is empty");
  EXPECT_EQ(ErrorOf(json{{"Name", std::string(301, 'n')}}),
            "field \"Name\": longer than 300 characters");
  json md = Rich();
  md["Volume"] = "50k";
  EXPECT_EQ(ErrorOf(md), "field \"Volume\": must be a number");
  md = Rich();
  md["Volume"] = -1;
  EXPECT_EQ(ErrorOf(md), "field \"Volume\": must be a non-negative number");
  md = Rich();
  md["Tasks"] = json::array({"a", 3});
  EXPECT_EQ(ErrorOf(md), "field \"Tasks\": must be a list of strings");
  md = Rich();
  md["Tokenized"] = "no";
  EXPECT_EQ(ErrorOf(md), "field \"Tokenized\": must be true or false");
  md = Rich();
  md["Year"] = 2023.5;
  EXPECT_EQ(ErrorOf(md), "field \"Year\": must be a whole year");
  md = Rich();
  md["License"] = json::array({"MIT"});
  EXPECT_EQ(ErrorOf(md), "field \"License\": must be a string");
  md = Rich();
  md["Dialect Subsets"] = "none";
  EXPECT_EQ(ErrorOf(md), "field \"Dialect Subsets\": must be a list");
}

TEST(AssessMetadataTextTest, RefusesMalformedHugeAndDeepInput) {
  std::string error;
  EXPECT_FALSE(AssessMetadataText("{\"Name\": ", &error));
  EXPECT_THAT(error, HasSubstr("metadata: invalid JSON at byte"));
  EXPECT_FALSE(AssessMetadataText(std::string(kMaxInputBytes + 1, ' '), &error));
  EXPECT_EQ(error, "metadata: larger than 1048576 bytes");
  EXPECT_FALSE(AssessMetadataText(std::string(33, '[') + std::string(33, ']'), &error));
  EXPECT_EQ(error, "metadata: nested deeper than 32 levels");
  EXPECT_TRUE(AssessMetadataText(R"({"Name": "x", "k": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})",
                                 &error))
      << error;
}

// ------------------------------------------------------------ criteria

TEST(LicenseTest, EveryMasaderOptionIsClassified) {
  struct Case {
    const char* license;
    LicenseClass want;
  };
  const Case cases[] = {
      {"Apache-1.0", LicenseClass::kPermissive},
      {"Apache-2.0", LicenseClass::kPermissive},
      {"Non Commercial Use - ELRA END USER", LicenseClass::kAgreement},
      {"BSD", LicenseClass::kPermissive},
      {"CC BY 1.0", LicenseClass::kPermissive},
      {"CC BY 4.0", LicenseClass::kPermissive},
      {"CC BY 2.5", LicenseClass::kPermissive},
      {"CC BY-NC 4.0", LicenseClass::kNonCommercial},
      {"CC BY-NC-ND 4.0", LicenseClass::kNonCommercialNoDerivatives},
      {"CC BY-SA 4.0", LicenseClass::kCopyleft},
      {"CC BY-NC-SA 3.0", LicenseClass::kNonCommercial},
      {"CC0", LicenseClass::kPermissive},
      {"CDLA-Permissive-1.0", LicenseClass::kPermissive},
      {"CDLA-Permissive-2.0", LicenseClass::kPermissive},
      {"GPL-1.0", LicenseClass::kCopyleft},
      {"GPL-3.0", LicenseClass::kCopyleft},
      {"LDC User Agreement", LicenseClass::kAgreement},
      {"LGPL-3.0", LicenseClass::kCopyleft},
      {"MIT License", LicenseClass::kPermissive},
      {"ODbl-1.0", LicenseClass::kCopyleft},
      {"MPL-2.0", LicenseClass::kCopyleft},
      {"ODC-By", LicenseClass::kPermissive},
      {"AFL-3.0", LicenseClass::kPermissive},
      {"CDLA-SHARING-1.0", LicenseClass::kCopyleft},
      {"BigScience RAIL License", LicenseClass::kOpenRestricted},
      {"DbCL", LicenseClass::kPermissive},
      {"unknown", LicenseClass::kUnknown},
      {"", LicenseClass::kUnknown},
      {"custom", LicenseClass::kCustom},
      {"Research only, contact the authors", LicenseClass::kUnrecognized},
      {"Use permitted after submitting a form", LicenseClass::kUnrecognized},
      {"Creative Commons Attribution-NonCommercial 4.0", LicenseClass::kNonCommercial},
  };
  for (const Case& c : cases) EXPECT_EQ(ClassifyLicense(c.license), c.want) << c.license;
  EXPECT_EQ(LicenseScore(LicenseClass::kPermissive), 100);
  EXPECT_EQ(LicenseScore(LicenseClass::kCopyleft), 90);
  EXPECT_EQ(LicenseScore(LicenseClass::kOpenRestricted), 70);
  EXPECT_EQ(LicenseScore(LicenseClass::kNonCommercial), 65);
  EXPECT_EQ(LicenseScore(LicenseClass::kNonCommercialNoDerivatives), 55);
  EXPECT_EQ(LicenseScore(LicenseClass::kAgreement), 40);
  EXPECT_EQ(LicenseScore(LicenseClass::kCustom), 30);
  EXPECT_EQ(LicenseScore(LicenseClass::kUnrecognized), 30);
  EXPECT_EQ(LicenseScore(LicenseClass::kUnknown), 0);
}

TEST(AccessTest, AccessAndLinks) {
  json md = Rich();
  EXPECT_EQ(ScoreAccess(FactsOf(md)).score, 100);  // 50 + 30 + 20
  md["HF Link"] = "";
  EXPECT_EQ(ScoreAccess(FactsOf(md)).score, 70);
  md["Access"] = "Upon-Request";
  EXPECT_EQ(ScoreAccess(FactsOf(md)).score, 40);
  md["Access"] = "With-Fee";
  EXPECT_EQ(ScoreAccess(FactsOf(md)).score, 30);
  md["Link"] = "mailto:owner@example.org";  // not a public link
  EXPECT_EQ(ScoreAccess(FactsOf(md)).score, 10);
  md.erase("Access");
  EXPECT_EQ(ScoreAccess(FactsOf(md)).score, 0);
}

TEST(DocumentationTest, PointsAddUp) {
  json md = Rich();
  // 25 description + 15 tasks + 10 dialect + 15 volume/unit + 5 tokenized
  // + 10 splits + 10 domain/source + 10 annotation
  EXPECT_EQ(ScoreDocumentation(FactsOf(md)).score, 100);
  md["Description"] = "Twenty words or so: a b c d e f g h i j k l m n o p";
  EXPECT_EQ(ScoreDocumentation(FactsOf(md)).score, 90);
  md["Description"] = "short";
  EXPECT_EQ(ScoreDocumentation(FactsOf(md)).score, 80);
  md["Has Splits"] = false;
  EXPECT_EQ(ScoreDocumentation(FactsOf(md)).score, 75);
  md["Annotation Style"] = json::array({"other"});
  EXPECT_EQ(ScoreDocumentation(FactsOf(md)).score, 65);
  EXPECT_EQ(ScoreDocumentation(FactsOf(json{{"Name", "x"}})).score, 0);
}

TEST(PeerReviewTest, PaperAndVenue) {
  json md = Rich();
  EXPECT_EQ(ScorePeerReview(FactsOf(md)).score, 100);  // 30 + 15 + 40 + 15
  md["Venue Type"] = "workshop";
  EXPECT_EQ(ScorePeerReview(FactsOf(md)).score, 90);
  md["Venue Type"] = "preprint";
  EXPECT_EQ(ScorePeerReview(FactsOf(md)).score, 75);
  md["Venue Type"] = "other";
  md["Venue Name"] = "";
  EXPECT_EQ(ScorePeerReview(FactsOf(md)).score, 55);
  md["Paper Link"] = "";
  EXPECT_EQ(ScorePeerReview(FactsOf(md)).score, 25);
  md["Paper Title"] = "";
  EXPECT_EQ(ScorePeerReview(FactsOf(md)).score, 0);  // no paper: nothing counts
}

TEST(EthicsTest, DocumentedRisksAndAdjustments) {
  json md = Rich();
  EXPECT_EQ(ScoreEthics(FactsOf(md)).score, 60);  // 50 undocumented + 10 low-risk sources
  md["Ethical Risks"] = "Low";
  EXPECT_EQ(ScoreEthics(FactsOf(md)).score, 100);
  md["Ethical Risks"] = "High";
  EXPECT_EQ(ScoreEthics(FactsOf(md)).score, 40);
  md.erase("Ethical Risks");
  md["Source"] = json::array({"social media"});
  md["Tasks"] = json::array({"hate speech detection", "gender identification"});
  EXPECT_EQ(ScoreEthics(FactsOf(md)).score, 20);  // 50 - 15 - 10 - 5
  md["Form"] = "audio";
  EXPECT_EQ(ScoreEthics(FactsOf(md)).score, 10);
  md["Ethical Risks"] = "High";
  EXPECT_EQ(ScoreEthics(FactsOf(md)).score, 0);  // clamped
}

TEST(ReproducibilityTest, HostLinksAccessSplits) {
  json md = Rich();
  // 35 stable host + 20 link + 15 HF link + 20 free + 10 splits
  EXPECT_EQ(ScoreReproducibility(FactsOf(md)).score, 100);
  md["Host"] = "LDC";
  md["HF Link"] = "";
  md["Access"] = "With-Fee";
  md["Has Splits"] = false;
  EXPECT_EQ(ScoreReproducibility(FactsOf(md)).score, 60);  // 30 + 20 + 10
  md["Host"] = "Gdrive";
  md["Partial"] = true;
  EXPECT_EQ(ScoreReproducibility(FactsOf(md)).score, 30);  // 10 + 20 + 10 - 10
}

TEST(DataQualityTest, VolumeAnnotationProvenanceCollectionAndCap) {
  json md = Rich();
  // 25 volume + 30 human annotation + 15 provider + 10 sources + 20 curated = 100, capped
  EXPECT_EQ(ScoreDataQuality(FactsOf(md)).score, 80);
  md["Volume"] = 2000;
  md["Annotation Style"] = json::array({"machine annotation"});
  md["Source"] = json::array({"web pages"});
  EXPECT_EQ(ScoreDataQuality(FactsOf(md)).score, 60);  // 15 + 10 + 15 + 10 + 10
  md["Source"] = json::array({"LLM"});
  md["Provider"] = json::array();
  md["Volume"] = 10;
  EXPECT_EQ(ScoreDataQuality(FactsOf(md)).score, 20);  // 5 + 10 + 0 + 10 + 5 - 10
  md["Unit"] = "hours";
  md["Volume"] = 150;
  EXPECT_EQ(ScoreDataQuality(FactsOf(md)).score, 40);
  EXPECT_EQ(ScoreDataQuality(FactsOf(json{{"Name", "x"}})).score, 0);
}

TEST(OverallTest, WeightsMeanAndGrade) {
  int total = 0;
  for (int i = 0; i < kCriterionCount; ++i) total += CriterionWeight(static_cast<Criterion>(i));
  EXPECT_EQ(total, 100);
  EXPECT_EQ(WeightedMean({100, 100, 100, 100, 100, 100, 100}), 100);
  EXPECT_EQ(WeightedMean({0, 0, 0, 0, 0, 0, 0}), 0);
  // Ethics weighs 10, the others 15: 10*100/100 = 10.
  EXPECT_EQ(WeightedMean({0, 0, 100, 0, 0, 0, 0}), 10);
  // 15*50 + 15*51 = 1515 -> 15.15 -> 15
  EXPECT_EQ(WeightedMean({50, 51, 0, 0, 0, 0, 0}), 15);
  // Half up: 10*5 = 50 -> 0.5 -> 1
  EXPECT_EQ(WeightedMean({0, 0, 5, 0, 0, 0, 0}), 1);
  EXPECT_EQ(GradeFor(80), "ممتاز");
  EXPECT_EQ(GradeFor(79), "جيد");
  EXPECT_EQ(GradeFor(60), "جيد");
  EXPECT_EQ(GradeFor(59), "مقبول");
  EXPECT_EQ(GradeFor(40), "مقبول");
  EXPECT_EQ(GradeFor(39), "ضعيف");
  for (int s = -1; s <= 101; ++s) EXPECT_EQ(GradeFor(s), GradeForScore(s)) << s;
  Scores all = ScoreAll(FactsOf(Rich()));
  // 15*100 (access) + 15*100 (docs) + 10*60 (ethics) + 15*100 (license)
  // + 15*100 (repro) + 15*100 (peer) + 15*80 (quality) = 9300
  EXPECT_EQ(all.overall, 93);
  EXPECT_EQ(all.grade, "ممتاز");
}

// ----------------------------------------------------------- the output

TEST(BuildAssessmentTest, RichRecordIsValidAndMetadataOnly) {
  std::string error;
  auto a = AssessMetadata(Rich(), &error);
  ASSERT_TRUE(a) << error;
  const std::string text = a->dump();
  EXPECT_THAT(V().Validate(text, Rich().dump()), IsEmpty());
  EXPECT_EQ((*a)["فحص_البيانات"]["الطريقة_المستخدمة"], "metadata_only");
  EXPECT_EQ((*a)["فحص_البيانات"]["عدد_العينات_المفحوصة"], 0);
  EXPECT_EQ((*a)["تم_تحميل_البيانات"], false);
  EXPECT_EQ((*a)["الاسم_الأصلي"], "Example Arabic Corpus");
  EXPECT_EQ((*a)["المصادر_المفتوحة"],
            nlohmann::ordered_json::array({"https://github.com/example/eac",
                                           "https://hf.co/datasets/example/eac",
                                           "https://aclanthology.org/2023.example-1.1.pdf"}));
  EXPECT_EQ((*a)["درجة_الجودة"], 93);
  EXPECT_THAT((*a)["الملخص"].get<std::string>(), HasSubstr("«Example Arabic Corpus»"));
  EXPECT_THAT((*a)["الملخص"].get<std::string>(), HasSubstr("50,000 جملة"));
  EXPECT_THAT((*a)["الملخص"].get<std::string>(), HasSubstr("تصنيف الموضوعات"));
  // Keys come in the schema's order.
  std::vector<std::string> keys;
  for (const auto& [k, v] : a->items()) keys.push_back(k);
  EXPECT_EQ(keys.front(), "الاسم");
  EXPECT_EQ(keys.back(), "تم_تحميل_البيانات");
  // Same input, same output.
  EXPECT_EQ(AssessMetadata(Rich(), &error)->dump(), text);
  EXPECT_THAT(TrustFlags(text, Rich().dump()), IsEmpty());
}

TEST(BuildAssessmentTest, NameOnlyRecordIsValidAndWeak) {
  std::string error;
  const json md = json{{"Name", "  Bare  "}};
  auto a = AssessMetadata(md, &error);
  ASSERT_TRUE(a) << error;
  EXPECT_THAT(V().Validate(a->dump(), md.dump()), IsEmpty());
  EXPECT_EQ((*a)["تقدير_الجودة"], "ضعيف");
  EXPECT_EQ((*a)["الاسم"], "Bare");
  EXPECT_EQ((*a)["المصادر_المفتوحة"], nlohmann::ordered_json::array());
  EXPECT_THAT((*a)["فحص_البيانات"]["مشاكل_مكتشفة"],
              Contains("الترخيص غير محدد في البيانات الوصفية"));
  EXPECT_FALSE((*a)["نقاط_القوة"].empty());
}

TEST(BuildAssessmentTest, LongLatinNamesAndValuesKeepTheProseArabic) {
  json md = Rich();
  md["Name"] = std::string(300, 'N');
  md["License"] = "A very long non-standard license text " + std::string(100, 'L');
  md["Host"] = std::string(100, 'H');
  md["Access"] = "With-Fee";
  md["Cost"] = std::string(100, 'C');
  md["Venue Type"] = "conference";
  md["Venue Name"] = "VeryLongVenueName";
  std::string error;
  auto a = AssessMetadata(md, &error);
  ASSERT_TRUE(a) << error;
  EXPECT_THAT(V().Validate(a->dump(), md.dump()), IsEmpty());
  EXPECT_THAT((*a)["الملخص"].get<std::string>(), Not(HasSubstr("NNNN")));
  EXPECT_THAT((*a)["الملخص"].get<std::string>(), HasSubstr("المذكورة"));
}

TEST(BuildAssessmentTest, LinksThatAreNotHttpAreReportedNotCited) {
  json md = Rich();
  md["Link"] = "mailto:owner@example.org";
  md["HF Link"] = "";
  md["Paper Link"] = "";
  std::string error;
  auto a = AssessMetadata(md, &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ((*a)["المصادر_المفتوحة"], nlohmann::ordered_json::array());
  EXPECT_THAT((*a)["فحص_البيانات"]["مشاكل_مكتشفة"],
              Contains(HasSubstr("mailto:owner@example.org")));
  EXPECT_THAT(V().Validate(a->dump(), md.dump()), IsEmpty());
  EXPECT_THAT(TrustFlags(a->dump(), md.dump()), IsEmpty());
}

TEST(BuildAssessmentTest, UnknownTasksAndDialectsAreNotQuotedInLatin) {
  json md = Rich();
  md["Tasks"] = json::array({"quantum parsing"});
  md["Dialect"] = "Atlantis";
  std::string error;
  auto a = AssessMetadata(md, &error);
  ASSERT_TRUE(a) << error;
  const std::string summary = (*a)["الملخص"].get<std::string>();
  EXPECT_THAT(summary, Not(HasSubstr("quantum")));
  EXPECT_THAT(summary, Not(HasSubstr("Atlantis")));
  EXPECT_THAT(summary, HasSubstr("مهام أخرى غير مصنفة"));
  EXPECT_THAT(V().Validate(a->dump(), md.dump()), IsEmpty());
}

// ----------------------------------------------- agreement with validation

TEST(HelpersTest, ArabicShareAgreesWithTheValidator) {
  for (const char* s :
       {"", "abc", "مرحبا بالعالم", "abcd أبتث", "كَتَبَ ١٢٣ ، ؟ 456 ab", "ﷲ ab", "ـــ ab",
        "日本 ع", "“ع” — 😀", "MA’AKS مجموعة", "WanJuan·SiLu Multimodal بيانات",
        "Ωmega ñandú é ع", "\xff\xfe", "ترخيص (CC BY-NC-SA 4.0)"})
    EXPECT_DOUBLE_EQ(ArabicShare(s), ArabicLetterShare(s)) << s;
}

TEST(HelpersTest, IsHttpUrlAgreesWithTheValidator) {
  for (const char* s :
       {"", "http://a", "https://example.org", "HTTP://EXAMPLE.ORG/x", "https://user@h.org:443/p",
        "https://[2001:db8::1]/", "https://[::1", "http://موقع.مثال/", "example.org",
        "ftp://a.org", "https://", "http://:80/", "https://a.org:/", "https://a.org:123456/",
        "https://a b.org", "mailto:a@b.org", "https://../x", "https://a%2fb.org",
        "https://a.org:8o/"})
    EXPECT_EQ(IsHttpUrl(s), IsHttpUrlWithHost(s)) << s;
}

}  // namespace
}  // namespace assessq::offline
