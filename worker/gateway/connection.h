// One connection from a job to its gateway, as a sequence of small steps:
// read the request head, route it (CONNECT tunnel, absolute-form HTTP, or
// the model route, also when it comes through the bridge's own address),
// decide it against the job's rules (the model route: its API rules and the
// job's model budget), resolve it, then forward it to the checked target
// through one shared step: byte budget -> connect -> write -> relay -> log. Every refusal is answered (x-deny-reason and a short body) unless a
// CONNECT tunnel is already open, and always logged.
#pragma once

#include <asio.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/gateway/byte_budget.h"
#include "worker/gateway/egress_policy.h"
#include "worker/gateway/gateway.h"
#include "worker/gateway/http_head.h"
#include "worker/gateway/job_budget.h"
#include "worker/gateway/netlog.h"
#include "worker/gateway/upstream.h"

namespace assessq::gateway {

// What a job's connections share. Lives as long as the last of them.
struct JobState {
  JobState(JobConfig c, const GatewayOptions& g);
  JobConfig cfg;  // its policy includes the worker host's own addresses
  const GatewayOptions& gopt;
  ByteBudget budget;
  Netlog netlog;
  SocketRegistry sockets;
  std::mutex mu;
  WildcardNames names;  // guarded by mu
  RateSignal rate;      // guarded by mu
  JobMeter meter;       // the job's model usage and budget (issue 16)
};

class Connection {
 public:
  using Socket = asio::local::stream_protocol::socket;
  Connection(std::shared_ptr<JobState> job, std::shared_ptr<Socket> c) : job_(std::move(job)), c_(std::move(c)) {}
  // Reads the request head and serves it.
  asio::awaitable<void> Serve();
  // Refuses the connection: the job has too many open.
  asio::awaitable<void> RefuseTooMany();

 private:
  // What the job's rules allowed (Decide) or the model route names.
  struct Target {
    std::string host;  // normalised
    int port = 0;
    std::string rule;
    bool explicit_port = false;
  };

  asio::awaitable<void> Refuse(int code, absl::string_view phrase, absl::string_view token, const std::string& why);
  asio::awaitable<void> RefuseBudget();
  asio::awaitable<std::optional<RequestHead>> ReadHead(std::string& buf);
  asio::awaitable<void> HandleSelfConnect(std::string rest);
  asio::awaitable<void> HandleConnect(const RequestHead& h, std::string rest);
  asio::awaitable<void> HandleHttp(const RequestHead& h, std::string rest);
  // `target`: the origin-form path (ModelRouteTarget).
  asio::awaitable<void> HandleModel(const RequestHead& h, std::string target, std::string rest);
  absl::StatusOr<Target> Decide(const std::string& raw_host, int port);
  asio::awaitable<std::optional<std::vector<IpAddr>>> Resolve(const std::string& host);
  asio::awaitable<std::optional<int64_t>> BodyLength(const RequestHead& h);
  asio::awaitable<std::optional<std::string>> ReadCheckedClientHello(const Target& t, std::string hello);
  asio::awaitable<void> Forward(const Target& t, std::vector<IpAddr> addrs, std::string first, int64_t up_limit,
                                const ModelRoute* model);
  void ObserveModelResponse(absl::string_view head);
  void EndModelResponse(ResponseMeter& rm);

  std::shared_ptr<JobState> job_;
  std::shared_ptr<Socket> c_;
  Entry e_;
  // A CONNECT was answered 200: the job's TLS client is on the line, so a
  // refusal from here on is logged, not answered.
  bool tunnel_open_ = false;
};

}  // namespace assessq::gateway
