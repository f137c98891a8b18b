// Converts between absl::Status (used by every module) and grpc::Status
// (used only at the RPC edge). Codes map one to one, so retry semantics
// (kUnavailable: retry; kFailedPrecondition: don't) survive the wire.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace assessq {

grpc::Status ToGrpc(const absl::Status& s);
absl::Status FromGrpc(const grpc::Status& s);

// True for codes a caller should retry after a pause.
bool IsRetryable(const absl::Status& s);

}  // namespace assessq
