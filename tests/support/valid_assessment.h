// One schema-valid assessment (schemas/assessment.schema.json and the rules
// of server/validation.cc), the shape every stand-in that completes a job
// sends: the test agent, the simulated worker and the integration tests.
// Header-only (nlohmann::json alone), so the static test agent can use it.
#pragma once

#include <array>
#include <string>

#include <nlohmann/json.hpp>

namespace aqtest {

struct AssessmentText {
  std::string name;     // الاسم and الاسم_الأصلي
  std::string summary;  // الملخص
  std::string strength, weakness, use;
  int score = 70;             // درجة_الجودة ("جيد")
  bool matches = false;       // البيانات_تطابق_الوصف
  // تفصيل_الجودة: access, documentation, ethics, licence, reproducibility,
  // peer review, data quality.
  std::array<int, 7> breakdown = {70, 70, 70, 70, 70, 70, 70};
};

inline nlohmann::json ValidAssessmentJson(const AssessmentText& t) {
  const auto& b = t.breakdown;
  return {
      {"الاسم", t.name},
      {"الاسم_الأصلي", t.name},
      {"درجة_الجودة", t.score},
      {"تقدير_الجودة", "جيد"},
      {"الملخص", t.summary},
      {"فحص_البيانات",
       {{"الطريقة_المستخدمة", "metadata_only"},
        {"عدد_العينات_المفحوصة", 0},
        {"معاينة_العينات", nlohmann::json::array()},
        {"مشاكل_مكتشفة", nlohmann::json::array()},
        {"البيانات_تطابق_الوصف", t.matches}}},
      {"نقاط_القوة", {t.strength}},
      {"نقاط_الضعف", {t.weakness}},
      {"الاستخدامات_الموصى_بها", {t.use}},
      {"تفصيل_الجودة",
       {{"سهولة_الوصول", b[0]},
        {"التوثيق", b[1]},
        {"السلامة_الأخلاقية", b[2]},
        {"الترخيص", b[3]},
        {"قابلية_إعادة_الإنتاج", b[4]},
        {"المراجعة_العلمية", b[5]},
        {"جودة_البيانات", b[6]}}},
      {"المصادر_المفتوحة", nlohmann::json::array()},
      {"تم_تحميل_البيانات", false},
  };
}

}  // namespace aqtest
