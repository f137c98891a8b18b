// The operator API over gRPC's callback interface: authenticates each call as
// an operator, checks submitted files (intake), and translates to the engine
// (writes) or queries (reads). No domain logic lives here.
#pragma once

#include "assessq/v1/assessq.grpc.pb.h"
#include "server/auth.h"
#include "server/engine.h"
#include "server/queries.h"

namespace assessq {

class OperatorService final : public v1::OperatorService::CallbackService {
 public:
  OperatorService(Engine* engine, Queries* queries, Authenticator* auth)
      : engine_(engine), queries_(queries), auth_(auth) {}

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* ctx,
                                   const v1::SubmitRequest* req,
                                   v1::SubmitResponse* resp) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx,
                                   const v1::StatusRequest* req,
                                   v1::StatusResponse* resp) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const v1::ListJobsRequest* req,
                                     v1::ListJobsResponse* resp) override;
  grpc::ServerUnaryReactor* ShowJob(grpc::CallbackServerContext* ctx, const v1::JobRef* req,
                                    v1::JobDetail* resp) override;
  grpc::ServerUnaryReactor* GetResult(grpc::CallbackServerContext* ctx, const v1::JobRef* req,
                                      v1::ResultResponse* resp) override;
  grpc::ServerUnaryReactor* Retry(grpc::CallbackServerContext* ctx,
                                  const v1::RetryRequest* req,
                                  v1::CountResponse* resp) override;
  grpc::ServerUnaryReactor* Cancel(grpc::CallbackServerContext* ctx,
                                   const v1::CancelRequest* req,
                                   v1::CountResponse* resp) override;
  grpc::ServerWriteReactor<v1::ExportRecord>* Export(grpc::CallbackServerContext* ctx,
                                                     const v1::ExportRequest* req) override;
  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* ctx,
                                        const v1::WorkersRequest* req,
                                        v1::WorkersResponse* resp) override;
  grpc::ServerUnaryReactor* PauseBatch(grpc::CallbackServerContext* ctx,
                                       const v1::BatchRequest* req, v1::Empty* resp) override;
  grpc::ServerUnaryReactor* ResumeBatch(grpc::CallbackServerContext* ctx,
                                        const v1::BatchRequest* req, v1::Empty* resp) override;
  grpc::ServerUnaryReactor* DrainWorker(grpc::CallbackServerContext* ctx,
                                        const v1::DrainRequest* req, v1::Empty* resp) override;
  // costsrv: a batch's budget; answers with the batch's status (its spend).
  grpc::ServerUnaryReactor* SetBudget(grpc::CallbackServerContext* ctx,
                                      const v1::BudgetRequest* req,
                                      v1::BatchStatus* resp) override;
  grpc::ServerUnaryReactor* SetLimits(grpc::CallbackServerContext* ctx,
                                      const v1::LimitsRequest* req,
                                      v1::LimitsResponse* resp) override;
  grpc::ServerUnaryReactor* ReadLog(grpc::CallbackServerContext* ctx,
                                    const v1::LogReadRequest* req,
                                    v1::LogReadResponse* resp) override;

 private:
  Engine* engine_;
  Queries* queries_;
  Authenticator* auth_;
};

}  // namespace assessq
