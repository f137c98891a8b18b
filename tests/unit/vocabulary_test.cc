// The shared vocabulary (common/vocabulary.h): every state, class and
// outcome has one label that reads back to it, and a failure class set on a
// status is read back from it (and only from it).
#include "common/vocabulary.h"

#include <gtest/gtest.h>

#include <string>

namespace assessq {
namespace {

TEST(VocabularyTest, EveryStateHasOneLabelThatReadsBack) {
  const struct {
    v1::JobState state;
    const char* label;
    bool terminal, in_flight;
  } cases[] = {
      {v1::JOB_STATE_QUEUED, "queued", false, true},
      {v1::JOB_STATE_LEASED, "leased", false, true},
      {v1::JOB_STATE_RUNNING, "running", false, true},
      {v1::JOB_STATE_SUCCEEDED, "succeeded", true, false},
      {v1::JOB_STATE_NEEDS_ATTENTION, "needs_attention", true, false},
      {v1::JOB_STATE_CANCELLED, "cancelled", true, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(std::string(StateName(c.state)), c.label);
    EXPECT_EQ(StateFromName(c.label), c.state) << c.label;
    EXPECT_EQ(IsTerminal(c.state), c.terminal) << c.label;
    EXPECT_EQ(InFlight(c.state), c.in_flight) << c.label;
  }
  EXPECT_EQ(std::string(StateName(v1::JOB_STATE_UNSPECIFIED)), "unspecified");
  EXPECT_EQ(StateFromName("unspecified"), std::nullopt);
  EXPECT_EQ(StateFromName("Queued"), std::nullopt);
  EXPECT_EQ(StateFromName(""), std::nullopt);
}

TEST(VocabularyTest, EveryFailureClassHasOneLabelThatReadsBack) {
  const struct {
    v1::FailureClass c;
    const char* label;
  } cases[] = {
      {v1::FAILURE_CLASS_INFRA, "infra"},
      {v1::FAILURE_CLASS_MODEL_API, "model_api"},
      {v1::FAILURE_CLASS_AGENT, "agent"},
      {v1::FAILURE_CLASS_INVALID_OUTPUT, "invalid_output"},
      {v1::FAILURE_CLASS_INPUT, "input"},
  };
  std::vector<v1::FailureClass> listed;
  for (const auto& c : cases) {
    EXPECT_EQ(std::string(ClassName(c.c)), c.label);
    EXPECT_EQ(ClassFromName(c.label), c.c) << c.label;
    listed.push_back(c.c);
  }
  // Every class the proto defines is in the table above, and in FailureClasses().
  std::vector<v1::FailureClass> defined;
  for (int i = v1::FailureClass_MIN; i <= v1::FailureClass_MAX; ++i)
    if (v1::FailureClass_IsValid(i) && i != v1::FAILURE_CLASS_UNSPECIFIED)
      defined.push_back(static_cast<v1::FailureClass>(i));
  EXPECT_EQ(listed, defined);
  EXPECT_EQ(FailureClasses(), defined);
  EXPECT_EQ(std::string(ClassName(v1::FAILURE_CLASS_UNSPECIFIED)), "");
  EXPECT_EQ(ClassFromName(""), std::nullopt);
  EXPECT_EQ(ClassFromName("INFRA"), std::nullopt);
}

TEST(VocabularyTest, EveryAttemptOutcomeHasOneLabelThatReadsBack) {
  const struct {
    AttemptOutcome o;
    const char* label;
  } cases[] = {
      {AttemptOutcome::kLeased, "leased"},       {AttemptOutcome::kRunning, "running"},
      {AttemptOutcome::kSucceeded, "succeeded"}, {AttemptOutcome::kFailed, "failed"},
      {AttemptOutcome::kExpired, "expired"},     {AttemptOutcome::kReleased, "released"},
      {AttemptOutcome::kCancelled, "cancelled"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(std::string(OutcomeName(c.o)), c.label);
    EXPECT_EQ(OutcomeFromName(c.label), c.o) << c.label;
  }
  EXPECT_EQ(OutcomeFromName("stopped"), std::nullopt);
  EXPECT_EQ(OutcomeFromName(""), std::nullopt);
}

TEST(VocabularyTest, TheOutcomeAReportAsksFor) {
  v1::CompleteRequest r;
  EXPECT_EQ(OutcomeOfReport(r), std::nullopt);
  r.set_result_json("{}");
  EXPECT_EQ(OutcomeOfReport(r), AttemptOutcome::kSucceeded);
  r.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_AGENT);
  EXPECT_EQ(OutcomeOfReport(r), AttemptOutcome::kFailed);
  r.mutable_release()->set_reason("draining");
  EXPECT_EQ(OutcomeOfReport(r), AttemptOutcome::kReleased);
}

TEST(VocabularyTest, TheFailureClassTravelsOnTheStatus) {
  for (int i = v1::FailureClass_MIN; i <= v1::FailureClass_MAX; ++i) {
    if (!v1::FailureClass_IsValid(i) || i == v1::FAILURE_CLASS_UNSPECIFIED) continue;
    const auto c = static_cast<v1::FailureClass>(i);
    // The same code carries either class: the payload decides, not the code.
    absl::Status s = WithFailureClass(absl::FailedPreconditionError("x"), c);
    EXPECT_EQ(FailureClassOf(s), c) << ClassName(c);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(s.message(), "x");
  }
  EXPECT_EQ(FailureClassOf(absl::FailedPreconditionError("no payload")), std::nullopt);
  EXPECT_EQ(FailureClassOf(absl::OkStatus()), std::nullopt);
  EXPECT_TRUE(WithFailureClass(absl::OkStatus(), v1::FAILURE_CLASS_INPUT).ok());
  EXPECT_EQ(FailureClassOf(InputError("bad profile")), v1::FAILURE_CLASS_INPUT);
  EXPECT_EQ(FailureClassOf(InfraError("no netbridge")), v1::FAILURE_CLASS_INFRA);
  EXPECT_EQ(InputError("bad profile").message(), "bad profile");
}

}  // namespace
}  // namespace assessq
