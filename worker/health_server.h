// workerd's optional gRPC health endpoint (`--health-listen unix:PATH` or
// `HOST:PORT`, plaintext: it says only SERVING or NOT_SERVING): a gRPC server
// with nothing but the standard grpc.health.v1.Health service. NOT_SERVING
// while the worker drains, whether on SIGTERM or because the coordinator
// drained it (`assessctl workers drain NAME`), SERVING otherwise; the
// decision is the pure WorkerServes().
#pragma once

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/worker_loop.h"

namespace assessq {

// Whether the health service should say SERVING for this state.
bool WorkerServes(const WorkerState& s);

class HealthServer {
 public:
  static absl::StatusOr<std::unique_ptr<HealthServer>> Start(const std::string& listen);
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  // Sets every service's status (the "" service included); logs changes.
  void SetServing(bool serving);
  int port() const { return port_; }  // TCP: the bound port

 private:
  HealthServer() = default;
  // Answers every other method UNIMPLEMENTED; gRPC refuses to start a server
  // with no service of its own, and the stock health service is not one.
  grpc::CallbackGenericService unimplemented_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  int serving_ = -1;  // unknown until the first SetServing
};

}  // namespace assessq
