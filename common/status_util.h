// Converts between absl::Status (used by every module) and grpc::Status
// (used only at the RPC edge). Codes map one to one, so what a refusal means
// survives the wire (common/call_failure.h reads it).
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace assessq {

grpc::Status ToGrpc(const absl::Status& s);
absl::Status FromGrpc(const grpc::Status& s);

}  // namespace assessq
