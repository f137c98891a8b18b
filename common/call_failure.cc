#include "common/call_failure.h"

#include <string>

#include "absl/strings/cord.h"

namespace assessq {
namespace {

constexpr char kCallFailureUrl[] = "type.assessq.dev/assessq.CallFailure";

using C = absl::StatusCode;

// Every code a call can end with, and what it means; a code not listed here
// (kInternal, kUnknown, kDataLoss, kUnimplemented, codes added later) is a
// fault of the coordinator's.
constexpr struct {
  C code;
  CallFailure meaning;
} kMeanings[] = {
    {C::kOk, CallFailure::kNone},
    {C::kUnavailable, CallFailure::kTransient},
    {C::kDeadlineExceeded, CallFailure::kTransient},
    {C::kAborted, CallFailure::kTransient},
    {C::kCancelled, CallFailure::kTransient},
    {C::kResourceExhausted, CallFailure::kTransient},
    {C::kFailedPrecondition, CallFailure::kLeaseNotHeld},
    {C::kInvalidArgument, CallFailure::kRejected},
    {C::kNotFound, CallFailure::kRejected},
    {C::kAlreadyExists, CallFailure::kRejected},
    {C::kOutOfRange, CallFailure::kRejected},
    {C::kUnauthenticated, CallFailure::kCredentials},
    {C::kPermissionDenied, CallFailure::kCredentials},
};

constexpr const char* kNames[] = {"", "transient", "lease_not_held", "rejected", "credentials",
                                  "fault"};  // in CallFailure's order

}  // namespace

absl::string_view CallFailureName(CallFailure f) { return kNames[static_cast<size_t>(f)]; }

CallFailure ClassifyCall(const absl::Status& s) {
  if (s.ok()) return CallFailure::kNone;
  if (auto p = s.GetPayload(kCallFailureUrl)) {
    const std::string name(*p);
    for (size_t i = 1; i < std::size(kNames); ++i)
      if (name == kNames[i]) return static_cast<CallFailure>(i);
  }
  for (const auto& m : kMeanings)
    if (m.code == s.code()) return m.meaning;
  return CallFailure::kFault;
}

absl::Status TagCallFailure(absl::Status s) {
  if (s.ok()) return s;
  s.SetPayload(kCallFailureUrl, absl::Cord(CallFailureName(ClassifyCall(s))));
  return s;
}

bool IsRetryable(CallFailure f) {
  return f == CallFailure::kTransient || f == CallFailure::kFault;
}

}  // namespace assessq
