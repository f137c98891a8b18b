// The worker's API client: one dispatch session (a bidirectional stream that
// delivers leases and cancel/drain notices as they happen, and carries
// heartbeats and completions and their answers while it is up) plus the
// fenced unary calls Heartbeat and Complete for while it is down. Reconnects
// with backoff when the coordinator goes away and says Hello again, so
// leases held across a coordinator restart keep being renewed. A refused
// call's status carries what the refusal means (common/call_failure.h).
// Used by workerd, the simulated workers and integration tests, and the
// lifecycle benchmark.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
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

// Keeps a completion report within the coordinator's caps
// (common/report_caps.h) by shrinking its attachments, never its result: the
// log tail keeps its end, the network log its first entries and a closing
// entry saying how many were cut, the details their short fields; a failure
// reason is cut. A result larger than the result cap itself cannot be kept
// and turns the report into an invalid_output failure saying so. Afterwards
// the report serialises to under kReportMaxBytes. Returns what was cut (""
// when the report already fitted). Pure.
std::string FitReport(v1::CompleteRequest* r);

struct ApiClientOptions {
  std::string address;
  std::string bearer_token;  // the worker's credential (not a lease's fencing token)
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
  // session that ends before answering falls back to the RPC too. A refusal
  // carries its meaning (ClassifyCall, common/call_failure.h):
  // kLeaseNotHeld when the lease is no longer held.
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& req,
                                                  int timeout_ms = 10000);
  // On the session when it is up, else the RPC, as Heartbeat; the report is
  // fitted to the coordinator's caps first (FitReport). A completion
  // whose answer was lost is sent again by the RPC: the coordinator answers
  // a re-sent completion as a duplicate.
  absl::StatusOr<v1::CompleteResponse> Complete(const v1::CompleteRequest& req,
                                                int timeout_ms = 30000);
  // A running attempt's new output (for `assessctl logs -f`); best effort.
  absl::Status AppendLog(const v1::LogAppendRequest& req, int timeout_ms = 3000);

 private:
  explicit ApiClient(ApiClientOptions opt) : opt_(std::move(opt)) {}
  void Run(MessageFn on_message);
  // One unary RPC with the bearer token and a deadline; a refusal carries
  // its CallFailure.
  template <typename Req, typename Resp>
  absl::StatusOr<Resp> Unary(
      grpc::Status (v1::WorkerService::Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*),
      const Req& req, int timeout_ms);
  // Calls sent on the session and waiting for their answer (by seq).
  struct Pending {
    bool done = false;
    bool session_lost = false;
    v1::CoordinatorMessage answer;
  };
  enum class SessionCall { kAnswered, kNotSent, kLost, kTimedOut };
  // Sends `m` on the session (`set_seq` stamps the seq into it) and waits
  // for the answer with that seq until `deadline`.
  SessionCall CallOnSession(v1::WorkerMessage m, void (*set_seq)(v1::WorkerMessage&, uint64_t),
                            std::chrono::steady_clock::time_point deadline,
                            v1::CoordinatorMessage* answer);
  // One call on the session with the unary RPC as its fallback. `m` carries
  // the call in its part `kSent` (e.g. &v1::WorkerMessage::mutable_heartbeat,
  // which gets the seq); the answer's part `kAck` is a refusal when its code
  // is not zero, else `take` makes the response of it; no answer by the
  // deadline is DeadlineExceeded naming `what`; a call the session never
  // took, or lost, goes by `rpc` with the time left.
  template <auto kSent, auto kAck, typename Req, typename Resp, typename Take>
  absl::StatusOr<Resp> CallOnSessionOrRpc(
      const char* what, v1::WorkerMessage m, Take take,
      grpc::Status (v1::WorkerService::Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*),
      const Req& req, int timeout_ms);
  void Answer(uint64_t seq, const v1::CoordinatorMessage& m);
  void FailPending();  // the session ended: every waiting call uses the RPC

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
  std::mutex calls_mu_;
  std::condition_variable calls_cv_;
  uint64_t next_seq_ = 0;                                          // guarded by calls_mu_
  std::unordered_map<uint64_t, std::shared_ptr<Pending>> calls_;  // guarded by calls_mu_
};

}  // namespace assessq
