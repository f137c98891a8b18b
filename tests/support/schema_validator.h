// For the assessment tests: reading a fixture file (a test failure, not an
// exception, when it cannot be read) and the validator built once from the
// real schemas/assessment.schema.json (ASSESSMENT_SCHEMA, defined by the
// including test's CMake target).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "server/validation.h"

namespace aqtest {

inline std::string ReadFileOrFail(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

#ifdef ASSESSMENT_SCHEMA
inline const assessq::AssessmentValidator& SchemaValidator() {
  static const assessq::AssessmentValidator* v = [] {
    auto created = assessq::AssessmentValidator::Create(ReadFileOrFail(ASSESSMENT_SCHEMA));
    EXPECT_TRUE(created.ok()) << created.status();
    return new assessq::AssessmentValidator(*created);
  }();
  return *v;
}
#endif

}  // namespace aqtest
