// The worker API over gRPC's callback interface. Session is a long-lived
// bidirectional stream: the worker says Hello (name, slots), then the
// coordinator pushes leases for free slots and cancel/drain notices the
// moment they happen, with no polling interval. Heartbeat and Complete are
// unary and fenced by the lease token.
#pragma once

#include "assessq/v1/assessq.grpc.pb.h"
#include "server/auth.h"
#include "server/engine.h"
#include "server/queries.h"

namespace assessq {

class WorkerService final : public v1::WorkerService::CallbackService {
 public:
  WorkerService(Engine* engine, Queries* queries, Authenticator* auth)
      : engine_(engine), queries_(queries), auth_(auth) {}

  grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* Session(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx,
                                      const v1::HeartbeatRequest* req,
                                      v1::HeartbeatResponse* resp) override;
  grpc::ServerUnaryReactor* Complete(grpc::CallbackServerContext* ctx,
                                     const v1::CompleteRequest* req,
                                     v1::CompleteResponse* resp) override;
  grpc::ServerUnaryReactor* AppendLog(grpc::CallbackServerContext* ctx,
                                      const v1::LogAppendRequest* req,
                                      v1::Empty* resp) override;

 private:
  Engine* engine_;
  Queries* queries_;
  Authenticator* auth_;
};

}  // namespace assessq
