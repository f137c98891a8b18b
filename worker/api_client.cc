#include "worker/api_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "common/status_util.h"

namespace assessq {

absl::StatusOr<std::unique_ptr<ApiClient>> ApiClient::Create(ApiClientOptions opt) {
  std::unique_ptr<ApiClient> c(new ApiClient(std::move(opt)));
  auto ch = MakeChannel(c->opt_.address, c->opt_.tls);
  if (!ch.ok()) return ch.status();
  c->channel_ = *ch;
  c->stub_ = v1::WorkerService::NewStub(c->channel_);
  c->capacity_ = c->opt_.slots;
  return c;
}

ApiClient::~ApiClient() { Stop(); }

void ApiClient::Start(MessageFn on_message) {
  thread_ = std::thread([this, f = std::move(on_message)] { Run(f); });
}

void ApiClient::Stop() {
  stop_ = true;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (ctx_) ctx_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void ApiClient::SetCapacity(int slots) {
  capacity_ = slots;
  std::lock_guard<std::mutex> l(mu_);
  if (stream_) {
    v1::WorkerMessage m;
    m.mutable_capacity()->set_slots(slots);
    stream_->Write(m);
  }
}

void ApiClient::Run(MessageFn on_message) {
  int backoff_ms = 100;
  while (!stop_) {
    grpc::ClientContext ctx;
    AddAuth(ctx, opt_.token);
    // Wait for the channel instead of failing fast: the waiting call drives
    // the reconnection, so after a coordinator restart the session is back
    // within a fraction of a second, not at gRPC's next background poll
    // (seconds, long enough for short leases to expire; found by the soak).
    ctx.set_wait_for_ready(true);
    std::shared_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>> stream;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) break;
      ctx_ = &ctx;
      stream = stub_->Session(&ctx);
      stream_ = stream;
    }
    v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_name(opt_.worker_name);
    hello.mutable_hello()->set_slots(capacity_);
    hello.mutable_hello()->set_version("assessq/0.1");
    bool wrote;
    {
      std::lock_guard<std::mutex> l(mu_);
      wrote = stream->Write(hello);
    }
    v1::CoordinatorMessage m;
    bool got_any = false;
    while (wrote && stream->Read(&m)) {
      if (m.has_heartbeat_ack()) {
        Answer(m.heartbeat_ack().seq(), m);
        continue;
      }
      if (m.has_complete_ack()) {
        Answer(m.complete_ack().seq(), m);
        continue;
      }
      if (m.has_welcome()) {
        connected_ = true;
        got_any = true;
        backoff_ms = 100;
      }
      on_message(m);
    }
    connected_ = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      stream_.reset();
      ctx_ = nullptr;
    }
    FailPending();
    grpc::Status st = stream->Finish();
    if (stop_) break;
    if (st.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
        st.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      spdlog::error("coordinator refused the session: {}", st.error_message());
    } else if (got_any) {
      spdlog::warn("session to coordinator ended ({}); reconnecting", st.error_message());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, 2000);
  }
}

void ApiClient::Answer(uint64_t seq, const v1::CoordinatorMessage& m) {
  std::lock_guard<std::mutex> l(calls_mu_);
  auto it = calls_.find(seq);
  if (it == calls_.end()) return;  // its caller gave up waiting
  it->second->done = true;
  it->second->answer = m;
  calls_.erase(it);
  calls_cv_.notify_all();
}

void ApiClient::FailPending() {
  std::lock_guard<std::mutex> l(calls_mu_);
  for (auto& [seq, p] : calls_) p->session_lost = true;
  calls_.clear();
  calls_cv_.notify_all();
}

ApiClient::SessionCall ApiClient::CallOnSession(v1::WorkerMessage m,
                                                void (*set_seq)(v1::WorkerMessage&, uint64_t),
                                                std::chrono::steady_clock::time_point deadline,
                                                v1::CoordinatorMessage* answer) {
  if (!connected_) return SessionCall::kNotSent;
  auto pending = std::make_shared<Pending>();
  uint64_t seq;
  {
    std::lock_guard<std::mutex> l(calls_mu_);
    seq = ++next_seq_;
    calls_[seq] = pending;
  }
  set_seq(m, seq);
  bool wrote = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stream_) wrote = stream_->Write(m);
  }
  std::unique_lock<std::mutex> l(calls_mu_);
  if (wrote)
    calls_cv_.wait_until(l, deadline, [&] { return pending->done || pending->session_lost; });
  calls_.erase(seq);
  if (pending->done) {
    *answer = std::move(pending->answer);
    return SessionCall::kAnswered;
  }
  if (!wrote) return SessionCall::kNotSent;
  return pending->session_lost ? SessionCall::kLost : SessionCall::kTimedOut;
}

namespace {
int LeftMs(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 100));
}
}  // namespace

absl::StatusOr<v1::HeartbeatResponse> ApiClient::Heartbeat(const v1::HeartbeatRequest& req,
                                                           int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  v1::WorkerMessage m;
  *m.mutable_heartbeat() = req;
  v1::CoordinatorMessage answer;
  switch (CallOnSession(std::move(m),
                        [](v1::WorkerMessage& w, uint64_t seq) { w.mutable_heartbeat()->set_seq(seq); },
                        deadline, &answer)) {
    case SessionCall::kAnswered: {
      const v1::HeartbeatAck& ack = answer.heartbeat_ack();
      if (ack.code() != 0)
        return FromGrpc(grpc::Status(static_cast<grpc::StatusCode>(ack.code()), ack.error()));
      v1::HeartbeatResponse resp;
      resp.set_lease_expires_at_ms(ack.lease_expires_at_ms());
      return resp;
    }
    case SessionCall::kTimedOut:
      return absl::DeadlineExceededError("heartbeat: no answer on the session in time");
    case SessionCall::kNotSent:
    case SessionCall::kLost:
      break;  // the RPC, with what time is left
  }
  return UnaryHeartbeat(req, LeftMs(deadline));
}

absl::StatusOr<v1::HeartbeatResponse> ApiClient::UnaryHeartbeat(const v1::HeartbeatRequest& req,
                                                                int timeout_ms) {
  grpc::ClientContext ctx;
  AddAuth(ctx, opt_.token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  v1::HeartbeatResponse resp;
  auto s = stub_->Heartbeat(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s);
  return resp;
}

absl::Status ApiClient::AppendLog(const v1::LogAppendRequest& req, int timeout_ms) {
  grpc::ClientContext ctx;
  AddAuth(ctx, opt_.token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  v1::Empty resp;
  auto s = stub_->AppendLog(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s);
  return absl::OkStatus();
}

absl::StatusOr<v1::CompleteResponse> ApiClient::Complete(const v1::CompleteRequest& req,
                                                         int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  v1::WorkerMessage m;
  *m.mutable_complete()->mutable_request() = req;
  v1::CoordinatorMessage answer;
  switch (CallOnSession(std::move(m),
                        [](v1::WorkerMessage& w, uint64_t seq) { w.mutable_complete()->set_seq(seq); },
                        deadline, &answer)) {
    case SessionCall::kAnswered: {
      v1::CompleteAck* ack = answer.mutable_complete_ack();
      if (ack->code() != 0)
        return FromGrpc(grpc::Status(static_cast<grpc::StatusCode>(ack->code()), ack->error()));
      v1::CompleteResponse resp;
      resp.Swap(ack->mutable_response());
      return resp;
    }
    case SessionCall::kTimedOut:
      return absl::DeadlineExceededError("complete: no answer on the session in time");
    case SessionCall::kNotSent:
    case SessionCall::kLost:
      break;  // the RPC (a completion already recorded is answered as a duplicate)
  }
  return UnaryComplete(req, LeftMs(deadline));
}

absl::StatusOr<v1::CompleteResponse> ApiClient::UnaryComplete(const v1::CompleteRequest& req,
                                                              int timeout_ms) {
  grpc::ClientContext ctx;
  AddAuth(ctx, opt_.token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  v1::CompleteResponse resp;
  auto s = stub_->Complete(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s);
  return resp;
}

}  // namespace assessq
