#include "common/call_failure.h"

#include <string>

#include "absl/strings/cord.h"

namespace assessq {
namespace {

constexpr char kCallFailureUrl[] = "type.assessq.dev/assessq.CallFailure";

using C = absl::StatusCode;

// What each code means; a code not named here (kInternal, kUnknown,
// kDataLoss, kUnimplemented, codes added later) is a fault of the
// coordinator's.
CallFailure FromCode(C code) {
  switch (code) {
    case C::kOk:
      return CallFailure::kNone;
    case C::kUnavailable:
    case C::kDeadlineExceeded:
    case C::kAborted:
    case C::kCancelled:
    case C::kResourceExhausted:
      return CallFailure::kTransient;
    case C::kFailedPrecondition:
      return CallFailure::kLeaseNotHeld;
    case C::kInvalidArgument:
    case C::kNotFound:
    case C::kAlreadyExists:
    case C::kOutOfRange:
      return CallFailure::kRejected;
    case C::kUnauthenticated:
    case C::kPermissionDenied:
      return CallFailure::kCredentials;
    default:
      return CallFailure::kFault;
  }
}

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
  return FromCode(s.code());
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
