#include "common/vocabulary.h"

#include <string>

#include "absl/strings/cord.h"

namespace assessq {
namespace {

constexpr char kFailureClassUrl[] = "type.assessq.dev/assessq.v1.FailureClass";

// Each value with its label, in the proto's order.
template <typename E>
struct Label {
  E value;
  const char* name;
};
constexpr Label<v1::JobState> kStates[] = {
    {v1::JOB_STATE_QUEUED, "queued"},       {v1::JOB_STATE_LEASED, "leased"},
    {v1::JOB_STATE_RUNNING, "running"},     {v1::JOB_STATE_SUCCEEDED, "succeeded"},
    {v1::JOB_STATE_NEEDS_ATTENTION, "needs_attention"}, {v1::JOB_STATE_CANCELLED, "cancelled"}};
constexpr Label<v1::FailureClass> kClasses[] = {
    {v1::FAILURE_CLASS_INFRA, "infra"},   {v1::FAILURE_CLASS_MODEL_API, "model_api"},
    {v1::FAILURE_CLASS_AGENT, "agent"},   {v1::FAILURE_CLASS_INVALID_OUTPUT, "invalid_output"},
    {v1::FAILURE_CLASS_INPUT, "input"}};
constexpr Label<AttemptOutcome> kOutcomes[] = {
    {AttemptOutcome::kLeased, "leased"},       {AttemptOutcome::kRunning, "running"},
    {AttemptOutcome::kSucceeded, "succeeded"}, {AttemptOutcome::kFailed, "failed"},
    {AttemptOutcome::kExpired, "expired"},     {AttemptOutcome::kReleased, "released"},
    {AttemptOutcome::kCancelled, "cancelled"}};

template <typename E, size_t N>
absl::string_view NameIn(const Label<E> (&table)[N], E v, absl::string_view otherwise) {
  for (const auto& l : table)
    if (l.value == v) return l.name;
  return otherwise;
}

template <typename E, size_t N>
std::optional<E> ValueIn(const Label<E> (&table)[N], absl::string_view name) {
  for (const auto& l : table)
    if (name == l.name) return l.value;
  return std::nullopt;
}

}  // namespace

absl::string_view StateName(v1::JobState s) { return NameIn(kStates, s, "unspecified"); }

std::optional<v1::JobState> StateFromName(absl::string_view n) { return ValueIn(kStates, n); }

bool IsTerminal(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_NEEDS_ATTENTION ||
         s == v1::JOB_STATE_CANCELLED;
}

bool InFlight(v1::JobState s) {
  return s == v1::JOB_STATE_QUEUED || s == v1::JOB_STATE_LEASED ||
         s == v1::JOB_STATE_RUNNING;
}

absl::string_view ClassName(v1::FailureClass c) { return NameIn(kClasses, c, ""); }

std::optional<v1::FailureClass> ClassFromName(absl::string_view n) {
  return ValueIn(kClasses, n);
}

const std::vector<v1::FailureClass>& FailureClasses() {
  static const auto* all = [] {
    auto* v = new std::vector<v1::FailureClass>;
    for (const auto& l : kClasses) v->push_back(l.value);
    return v;
  }();
  return *all;
}

absl::string_view OutcomeName(AttemptOutcome o) { return NameIn(kOutcomes, o, ""); }

std::optional<AttemptOutcome> OutcomeFromName(absl::string_view n) {
  return ValueIn(kOutcomes, n);
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
