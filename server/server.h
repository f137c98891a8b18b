// Assembles a running coordinator: the engine, the read side, the
// authenticator, both gRPC services, health checking and reflection, bound to
// a unix socket or a TCP address (TLS when a certificate is given); the
// health service says NOT_SERVING while the database probe fails
// (server/db_probe.h); Prometheus metrics on metrics_listen when set.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/metrics_http.h"
#include "server/auth.h"
#include "server/db_probe.h"
#include "server/engine.h"
#include "server/metrics.h"
#include "server/operator_service.h"
#include "server/queries.h"
#include "server/worker_service.h"

namespace assessq {

struct ServerOptions {
  std::string db_path;
  std::string listen = "unix:/tmp/assessq/coordinator.sock";
  int64_t lease_period_ms = 30000;
  std::string tls_cert;       // PEM; required for TCP unless insecure_tcp
  std::string tls_key;
  std::string tls_client_ca;  // set: client certificates are verified
  bool require_client_cert = false;
  bool insecure_tcp = false;  // TCP without TLS (loopback tests only)
  std::string metrics_listen;  // HOST:PORT for GET /metrics; empty: off
  int64_t health_probe_ms = 1000;  // how often the database probe runs
  std::string prices_file;  // costsrv: the price table (server/pricing.h); empty: none
  ResultValidator validator;
};

class CoordinatorServer {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(ServerOptions opt);
  ~CoordinatorServer();
  void Wait();
  void Shutdown();
  int bound_port() const { return port_; }
  int metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }
  CoordinatorMetrics* metrics() { return metrics_.get(); }
  Engine* engine() { return engine_.get(); }

 private:
  CoordinatorServer() = default;
  ServerOptions opt_;
  std::unique_ptr<Queries> queries_;
  std::unique_ptr<CoordinatorMetrics> metrics_;  // outlives the engine that reports to it
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<MetricsHttp> metrics_http_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<OperatorService> operator_service_;
  std::unique_ptr<WorkerService> worker_service_;
  std::unique_ptr<grpc::Server> server_;
  std::thread health_;
  std::atomic<bool> stopping_{false};
  int port_ = 0;
};

}  // namespace assessq
