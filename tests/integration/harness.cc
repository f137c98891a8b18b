#include "tests/integration/harness.h"

#include <nlohmann/json.hpp>
#include "tests/support/valid_assessment.h"

namespace aqtest {

std::string ValidAssessment(const std::string& name, const std::string& note) {
  std::string summary = "تقييم تجريبي لمجموعة البيانات كتبه اختبار التكامل.";
  if (!note.empty()) summary += " (" + note + ")";
  return ValidAssessmentJson({.name = name,
                              .summary = summary,
                              .strength = "وصف واضح",
                              .weakness = "تقييم تجريبي",
                              .use = "اختبار النظام"})
      .dump();
}

}  // namespace aqtest
