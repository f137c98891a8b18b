// The operator API over gRPC's callback interface: authenticates each call as
// an operator, checks submitted files (intake), and translates to the engine
// (writes) or queries (reads), translating protobuf to the engine's domain
// types (server/engine_wire.h). One call holds logic of its own: ReadLog
// picks the attempt (the one asked for, else the latest) and answers from the
// engine's live log while it has one, else from the attempt's stored log
// tail, deciding whether the follower has reached the end.
#pragma once

#include "assessq/v1/assessq.grpc.pb.h"
#include "server/auth.h"
#include "server/engine.h"
#include "server/queries.h"

namespace assessq {

class OperatorService final : public v1::OperatorService::CallbackService {
  using Ctx = grpc::CallbackServerContext;
  using Unary = grpc::ServerUnaryReactor;

 public:
  OperatorService(Engine* engine, Queries* queries, Authenticator* auth)
      : engine_(engine), queries_(queries), auth_(auth) {}

  // Writes, through the engine (answered after the commit).
  Unary* Submit(Ctx* ctx, const v1::SubmitRequest* req, v1::SubmitResponse* resp) override;
  Unary* Retry(Ctx* ctx, const v1::RetryRequest* req, v1::CountResponse* resp) override;
  Unary* Cancel(Ctx* ctx, const v1::CancelRequest* req, v1::CountResponse* resp) override;
  Unary* PauseBatch(Ctx* ctx, const v1::BatchRequest* req, v1::Empty* resp) override;
  Unary* ResumeBatch(Ctx* ctx, const v1::BatchRequest* req, v1::Empty* resp) override;
  Unary* DrainWorker(Ctx* ctx, const v1::DrainRequest* req, v1::Empty* resp) override;
  // Sets a batch's or a provider's limits, then answers with all of them.
  Unary* SetLimits(Ctx* ctx, const v1::LimitsRequest* req, v1::LimitsResponse* resp) override;
  // Sets a batch's budget, then answers with the batch's status (its spend).
  Unary* SetBudget(Ctx* ctx, const v1::BudgetRequest* req, v1::BatchStatus* resp) override;
  // The engine's memory: workers and their sessions.
  Unary* ListWorkers(Ctx* ctx, const v1::WorkersRequest* req, v1::WorkersResponse* resp) override;

  // Reads, from a snapshot: a batch's records, streamed;
  grpc::ServerWriteReactor<v1::ExportRecord>* Export(Ctx* ctx,
                                                     const v1::ExportRequest* req) override;
  // status (with the limits the engine holds), jobs, one job (by id or by
  // batch and dataset key), its result, an attempt's output (see above).
  Unary* Status(Ctx* ctx, const v1::StatusRequest* req, v1::StatusResponse* resp) override;
  Unary* ListJobs(Ctx* ctx, const v1::ListJobsRequest* req, v1::ListJobsResponse* resp) override;
  Unary* ShowJob(Ctx* ctx, const v1::JobRef* req, v1::JobDetail* resp) override;
  Unary* GetResult(Ctx* ctx, const v1::JobRef* req, v1::ResultResponse* resp) override;
  Unary* ReadLog(Ctx* ctx, const v1::LogReadRequest* req, v1::LogReadResponse* resp) override;

 private:
  // Checks the caller is an operator, then `start(reactor)` hands the call
  // to the engine, which finishes the reactor after its commit.
  template <typename Start>
  Unary* ToEngine(Ctx* ctx, Start start);
  // Checks the caller is an operator, then answers with `read()`.
  template <typename Resp, typename Read>
  Unary* FromQueries(Ctx* ctx, Resp* resp, Read read);

  Engine* engine_;
  Queries* queries_;
  Authenticator* auth_;
};

}  // namespace assessq
