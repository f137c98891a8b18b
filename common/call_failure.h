// The retry classifier: what a failed call to the coordinator means for the
// caller, decided from the status in this one place, and carried on the
// status as a typed payload (TagCallFailure) so callers ask for the meaning,
// not for a status code. The coordinator's worker service answers
// FAILED_PRECONDITION for a lease its fencing token no longer holds (or that
// was taken with another bearer token), UNAUTHENTICATED / PERMISSION_DENIED
// for a bearer token it refuses, INVALID_ARGUMENT / NOT_FOUND for a request
// it cannot accept, UNAVAILABLE while it is down or its database is busy.
// Used by the worker's API client (worker/api_client.h) and its durable
// outbox (worker/outbox.h). Pure; unit-tested table-driven over every code
// (tests/unit/call_failure_test.cc).
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace assessq {

enum class CallFailure {
  kNone,          // OK
  kTransient,     // the coordinator is away, busy or slow: the same call may succeed later
  kLeaseNotHeld,  // the fencing token is stale or bound to another worker: never changes
  kRejected,      // the request itself is refused: sending it again cannot help
  kCredentials,   // the bearer token is refused: changes only with another token
  kFault,         // the coordinator failed on this call: it may succeed later
};

// The payload if `s` carries one, else decided from the code.
CallFailure ClassifyCall(const absl::Status& s);
// `s` with its classification attached as a payload (OK stays OK).
absl::Status TagCallFailure(absl::Status s);
// transient, lease_not_held, rejected, credentials, fault ("" for none).
absl::string_view CallFailureName(CallFailure f);
// kTransient and kFault: the same call may succeed later.
bool IsRetryable(CallFailure f);

}  // namespace assessq
