// The offline assessor's rules over the whole real Masader catalogue
// (../shared/masader/datasets, 1,152 files; GPL data used in place, never
// copied): every file is assessed in-process and every assessment must pass
// the validator against schemas/assessment.schema.json, with no trust flag.
// Fails, never skips, when the catalogue is missing. Prints the score and
// grade distribution.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "assessor/rules.h"
#include "server/validation.h"
#include "tests/support/schema_validator.h"

namespace assessq::offline {
namespace {

namespace fs = std::filesystem;
using ::testing::IsEmpty;

std::string ReadFile(const fs::path& path) { return aqtest::ReadFileOrFail(path.string()); }

TEST(CatalogueTest, EveryMasaderFileGivesAValidAssessment) {
  const fs::path dir = MASADER_DIR;
  ASSERT_TRUE(fs::is_directory(dir))
      << dir << " is missing: the catalogue is expected in ../shared";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 1152u);

  auto validator = AssessmentValidator::Create(ReadFile(ASSESSMENT_SCHEMA));
  ASSERT_TRUE(validator.ok()) << validator.status();

  std::map<std::string, int> grades;
  std::map<int, int> deciles;
  std::vector<long> criterion_sum(kCriterionCount, 0);
  int min_score = 101, max_score = -1;
  long score_sum = 0;
  double min_share = 1.0;
  std::string min_share_file;
  int invalid = 0;
  for (const fs::path& file : files) {
    const std::string metadata = ReadFile(file);
    std::string error;
    auto assessment = AssessMetadataText(metadata, &error);
    if (!assessment) {
      ADD_FAILURE() << file.filename() << ": " << error;
      ++invalid;
      continue;
    }
    const std::string text = assessment->dump(2, ' ', false);
    const auto errors = validator->Validate(text, metadata);
    if (!errors.empty()) {
      ++invalid;
      ADD_FAILURE() << file.filename() << ":\n  " << ::testing::PrintToString(errors);
    }
    EXPECT_THAT(TrustFlags(text, metadata), IsEmpty()) << file.filename();
    EXPECT_EQ((*assessment)["فحص_البيانات"]["الطريقة_المستخدمة"], "metadata_only");
    EXPECT_EQ((*assessment)["تم_تحميل_البيانات"], false);

    const int score = (*assessment)["درجة_الجودة"].get<int>();
    ++grades[(*assessment)["تقدير_الجودة"].get<std::string>()];
    ++deciles[std::min(score / 10, 9)];
    min_score = std::min(min_score, score);
    max_score = std::max(max_score, score);
    score_sum += score;
    for (int i = 0; i < kCriterionCount; ++i)
      criterion_sum[i] +=
          (*assessment)["تفصيل_الجودة"][CriterionKey(static_cast<Criterion>(i))].get<int>();
    auto track = [&](const std::string& s) {
      const double share = ArabicLetterShare(s);
      if (share < min_share) {
        min_share = share;
        min_share_file = file.filename().string();
      }
    };
    track((*assessment)["الملخص"].get<std::string>());
    for (const char* key : {"نقاط_القوة", "نقاط_الضعف", "الاستخدامات_الموصى_بها"})
      for (const auto& s : (*assessment)[key]) track(s.get<std::string>());
  }
  EXPECT_EQ(invalid, 0);

  const double n = static_cast<double>(files.size());
  std::cout << "[ catalogue ] " << files.size() << " files, " << invalid << " invalid\n";
  std::cout << "[ catalogue ] score min " << min_score << ", mean " << score_sum / n << ", max "
            << max_score << "\n";
  for (const char* g : {"ممتاز", "جيد", "مقبول", "ضعيف"})
    std::cout << "[ catalogue ] grade " << g << ": " << grades[g] << "\n";
  for (const auto& [d, count] : deciles)
    std::cout << "[ catalogue ] score " << d * 10 << "-" << (d == 9 ? 100 : d * 10 + 9) << ": "
              << count << "\n";
  for (int i = 0; i < kCriterionCount; ++i)
    std::cout << "[ catalogue ] mean " << CriterionKey(static_cast<Criterion>(i)) << ": "
              << criterion_sum[i] / n << "\n";
  std::cout << "[ catalogue ] lowest Arabic letter share of any prose string: " << min_share
            << " (" << min_share_file << ")\n";
  EXPECT_GE(min_share, 0.5);
}

}  // namespace
}  // namespace assessq::offline
