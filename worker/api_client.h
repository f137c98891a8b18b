// The worker's API client: one dispatch session (a bidirectional stream that
// delivers leases and cancel/drain notices as they happen, and carries
// heartbeats and their answers while it is up) plus the fenced unary calls
// Complete and, while the session is down, Heartbeat. Reconnects with backoff when the
// coordinator goes away and says Hello again, so leases held across a
// coordinator restart keep being renewed. Used by workerd, the simulated
// workers of the durability test, and the lifecycle benchmark.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "assessq/v1/assessq.grpc.pb.h"
#include "common/channel.h"

namespace assessq {

struct ApiClientOptions {
  std::string address;
  std::string token;
  ClientTls tls;
  std::string worker_name;
  int slots = 1;
};

class ApiClient {
 public:
  using MessageFn = std::function<void(const v1::CoordinatorMessage&)>;

  static absl::StatusOr<std::unique_ptr<ApiClient>> Create(ApiClientOptions opt);
  ~ApiClient();

  // Starts the session loop; `on_message` runs on the session thread for
  // every Welcome, Lease, CancelLease and Drain.
  void Start(MessageFn on_message);
  void Stop();
  // Tells the coordinator the capacity changed (e.g. host short of disk).
  void SetCapacity(int slots);
  bool connected() const { return connected_; }

  // On the session when it is up (answered there), else the unary RPC; a
  // session that ends before answering falls back to the RPC too. Errors are
  // the RPC's: FAILED_PRECONDITION means the lease is no longer held.
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& req,
                                                  int timeout_ms = 10000);
  absl::StatusOr<v1::CompleteResponse> Complete(const v1::CompleteRequest& req,
                                                int timeout_ms = 30000);
  // A running attempt's new output (for `assessctl logs -f`); best effort.
  absl::Status AppendLog(const v1::LogAppendRequest& req, int timeout_ms = 3000);

 private:
  explicit ApiClient(ApiClientOptions opt) : opt_(std::move(opt)) {}
  void Run(MessageFn on_message);
  absl::StatusOr<v1::HeartbeatResponse> UnaryHeartbeat(const v1::HeartbeatRequest& req,
                                                       int timeout_ms);
  // Heartbeats sent on the session and waiting for their HeartbeatAck.
  struct PendingBeat {
    bool done = false;
    bool session_lost = false;
    v1::HeartbeatAck ack;
  };
  void AnswerBeat(const v1::HeartbeatAck& ack);
  void FailBeats();  // the session ended: every waiting heartbeat uses the RPC

  ApiClientOptions opt_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::atomic<int> capacity_;
  std::mutex mu_;
  grpc::ClientContext* ctx_ = nullptr;  // guarded by mu_
  std::shared_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>>
      stream_;  // guarded by mu_
  std::mutex beats_mu_;
  std::condition_variable beats_cv_;
  uint64_t next_seq_ = 0;                                           // guarded by beats_mu_
  std::unordered_map<uint64_t, std::shared_ptr<PendingBeat>> beats_;  // guarded by beats_mu_
};

}  // namespace assessq
