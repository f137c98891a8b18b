// The worker API over gRPC's callback interface. Session is a long-lived
// bidirectional stream: the worker says Hello (name, slots), then the
// coordinator pushes leases for free slots and cancel/drain notices the
// moment they happen, with no polling interval. Heartbeat and Complete
// travel on the session too (answered with a HeartbeatAck / CompleteAck
// carrying the status code) and also exist as unary RPCs; either way they
// are fenced by the lease token and bound to the worker token that took
// the lease. AppendLog is unary. Requests are translated into the engine's
// domain types here (server/engine_wire.h).
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
  // The same reports as on the session, one call each.
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx,
                                      const v1::HeartbeatRequest* req,
                                      v1::HeartbeatResponse* resp) override;
  grpc::ServerUnaryReactor* Complete(grpc::CallbackServerContext* ctx,
                                     const v1::CompleteRequest* req,
                                     v1::CompleteResponse* resp) override;
  // A running attempt's output, for `logs -f` (memory only).
  grpc::ServerUnaryReactor* AppendLog(grpc::CallbackServerContext* ctx,
                                      const v1::LogAppendRequest* req,
                                      v1::Empty* resp) override;

 private:
  // Checks the caller is a worker, then `start(reactor, principal)`, which
  // finishes the reactor (now or after the engine's commit).
  template <typename Start>
  grpc::ServerUnaryReactor* AsWorker(grpc::CallbackServerContext* ctx, Start start);

  Engine* engine_;
  Queries* queries_;
  Authenticator* auth_;
};

}  // namespace assessq
