// The protobuf <-> engine translation: requests into the engine's domain
// types (server/engine.h) and its answers back into responses, for the gRPC
// services (and tests that speak the wire messages); and the messages the
// engine pushes to workers' sessions. Pure; no I/O.
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

// What the engine pushes to a worker's session.
v1::CoordinatorMessage LeaseMessage(const LeaseGrant& g);
v1::CoordinatorMessage CancelMessage(int64_t job_id, int64_t token, const std::string& reason);
v1::CoordinatorMessage DrainMessage(const std::string& reason, bool undrain);

}  // namespace assessq
