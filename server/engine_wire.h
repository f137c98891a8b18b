// The protobuf <-> engine translation the gRPC services (and tests that
// speak the wire messages) use: requests into the engine's domain types
// (server/engine.h), its answers back into responses. Pure; no I/O.
#pragma once

#include <vector>

#include "assessq/v1/assessq.pb.h"
#include "server/engine.h"

namespace assessq {

JobKey FromProto(const v1::JobRef& ref);
RetryOrder FromProto(const v1::RetryRequest& req);
CancelOrder FromProto(const v1::CancelRequest& req);
LimitsOrder FromProto(const v1::LimitsRequest& req);
HeartbeatReport FromProto(const v1::HeartbeatRequest& req);
CompletionReport FromProto(const v1::CompleteRequest& req);

v1::SubmitResponse ToProto(const SubmitResult& r);
v1::CompleteResponse ToProto(const CompletionReply& r);
v1::HeartbeatResponse ToProto(const HeartbeatReply& r);
v1::WorkersResponse ToProto(const std::vector<WorkerView>& workers);
v1::LimitsResponse ToProto(const std::vector<LimitView>& limits);

}  // namespace assessq
