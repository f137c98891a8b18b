#include "common/vocabulary.h"

#include <string>

#include "absl/strings/cord.h"

namespace assessq {
namespace {

constexpr char kFailureClassUrl[] = "type.assessq.dev/assessq.v1.FailureClass";

constexpr const char* kOutcomeNames[] = {"leased",  "running",  "succeeded", "failed",
                                              "expired", "released", "cancelled"};

}  // namespace

absl::string_view StateName(v1::JobState s) {
  switch (s) {
    case v1::JOB_STATE_QUEUED: return "queued";
    case v1::JOB_STATE_LEASED: return "leased";
    case v1::JOB_STATE_RUNNING: return "running";
    case v1::JOB_STATE_SUCCEEDED: return "succeeded";
    case v1::JOB_STATE_NEEDS_ATTENTION: return "needs_attention";
    case v1::JOB_STATE_CANCELLED: return "cancelled";
    default: return "unspecified";
  }
}

std::optional<v1::JobState> StateFromName(absl::string_view n) {
  for (int i = v1::JOB_STATE_QUEUED; i <= v1::JOB_STATE_CANCELLED; ++i)
    if (StateName(static_cast<v1::JobState>(i)) == n) return static_cast<v1::JobState>(i);
  return std::nullopt;
}

bool IsTerminal(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_NEEDS_ATTENTION ||
         s == v1::JOB_STATE_CANCELLED;
}

bool InFlight(v1::JobState s) {
  return s == v1::JOB_STATE_QUEUED || s == v1::JOB_STATE_LEASED ||
         s == v1::JOB_STATE_RUNNING;
}

absl::string_view ClassName(v1::FailureClass c) {
  switch (c) {
    case v1::FAILURE_CLASS_INFRA: return "infra";
    case v1::FAILURE_CLASS_MODEL_API: return "model_api";
    case v1::FAILURE_CLASS_AGENT: return "agent";
    case v1::FAILURE_CLASS_INVALID_OUTPUT: return "invalid_output";
    case v1::FAILURE_CLASS_INPUT: return "input";
    default: return "";
  }
}

std::optional<v1::FailureClass> ClassFromName(absl::string_view n) {
  for (int i = v1::FAILURE_CLASS_INFRA; i <= v1::FAILURE_CLASS_INPUT; ++i)
    if (ClassName(static_cast<v1::FailureClass>(i)) == n)
      return static_cast<v1::FailureClass>(i);
  return std::nullopt;
}

absl::string_view OutcomeName(AttemptOutcome o) {
  return kOutcomeNames[static_cast<size_t>(o)];
}

std::optional<AttemptOutcome> OutcomeFromName(absl::string_view n) {
  for (size_t i = 0; i < std::size(kOutcomeNames); ++i)
    if (n == kOutcomeNames[i]) return static_cast<AttemptOutcome>(i);
  return std::nullopt;
}

std::optional<AttemptOutcome> OutcomeOfReport(const v1::CompleteRequest& r) {
  switch (r.outcome_case()) {
    case v1::CompleteRequest::kResultJson: return AttemptOutcome::kSucceeded;
    case v1::CompleteRequest::kFailure: return AttemptOutcome::kFailed;
    case v1::CompleteRequest::kRelease: return AttemptOutcome::kReleased;
    default: return std::nullopt;
  }
}

absl::Status WithFailureClass(absl::Status s, v1::FailureClass c) {
  if (s.ok()) return s;
  s.SetPayload(kFailureClassUrl, absl::Cord(ClassName(c)));
  return s;
}

std::optional<v1::FailureClass> FailureClassOf(const absl::Status& s) {
  if (s.ok()) return std::nullopt;
  auto p = s.GetPayload(kFailureClassUrl);
  if (!p) return std::nullopt;
  return ClassFromName(std::string(*p));
}

absl::Status InputError(absl::string_view message) {
  return WithFailureClass(absl::FailedPreconditionError(message), v1::FAILURE_CLASS_INPUT);
}

absl::Status InfraError(absl::string_view message) {
  return WithFailureClass(absl::FailedPreconditionError(message), v1::FAILURE_CLASS_INFRA);
}

}  // namespace assessq
