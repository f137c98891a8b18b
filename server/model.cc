#include "absl/strings/string_view.h"
#include "server/model.h"

namespace assessq {

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

bool IsTerminal(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_NEEDS_ATTENTION ||
         s == v1::JOB_STATE_CANCELLED;
}

bool InFlight(v1::JobState s) {
  return s == v1::JOB_STATE_QUEUED || s == v1::JOB_STATE_LEASED ||
         s == v1::JOB_STATE_RUNNING;
}

}  // namespace assessq
