#include "common/call_failure.h"

#include <string>

#include "absl/strings/cord.h"

namespace assessq {
namespace {

constexpr char kCallFailureUrl[] = "type.assessq.dev/assessq.CallFailure";

constexpr CallFailure kAll[] = {CallFailure::kTransient, CallFailure::kLeaseNotHeld,
                                CallFailure::kRejected, CallFailure::kCredentials,
                                CallFailure::kFault};

CallFailure FromCode(absl::StatusCode c) {
  switch (c) {
    case absl::StatusCode::kOk:
      return CallFailure::kNone;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kResourceExhausted:
      return CallFailure::kTransient;
    case absl::StatusCode::kFailedPrecondition:
      return CallFailure::kLeaseNotHeld;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
      return CallFailure::kRejected;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return CallFailure::kCredentials;
    default:  // kInternal, kUnknown, kDataLoss, kUnimplemented, codes not known here
      return CallFailure::kFault;
  }
}

}  // namespace

absl::string_view CallFailureName(CallFailure f) {
  switch (f) {
    case CallFailure::kNone: return "";
    case CallFailure::kTransient: return "transient";
    case CallFailure::kLeaseNotHeld: return "lease_not_held";
    case CallFailure::kRejected: return "rejected";
    case CallFailure::kCredentials: return "credentials";
    case CallFailure::kFault: return "fault";
  }
  return "fault";
}

CallFailure ClassifyCall(const absl::Status& s) {
  if (s.ok()) return CallFailure::kNone;
  if (auto p = s.GetPayload(kCallFailureUrl)) {
    const std::string name(*p);
    for (CallFailure f : kAll)
      if (CallFailureName(f) == name) return f;
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
