#include "server/worker_service.h"

#include <spdlog/spdlog.h>

#include <deque>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/report_caps.h"
#include "common/status_util.h"
#include "server/engine_wire.h"
#include "server/intake.h"

namespace assessq {
namespace {

class SessionReactor;

// Complete, wherever it arrives (the RPC or the session): caps, the result
// checked here on the calling gRPC thread so the single engine thread only
// fences and writes (a stale upload is checked for nothing: the engine
// refuses it), then the engine.
void StartComplete(Engine* engine, Queries* queries, const v1::CompleteRequest& req,
                   const Principal& who, Engine::Done<CompletionReply> done) {
  if (req.log_tail().size() > kReportLogTailCap || req.netlog_json().size() > kReportNetlogCap ||
      req.result_json().size() > kReportResultCap || req.details_json().size() > kReportDetailsCap) {
    done(absl::InvalidArgumentError(
        "complete: result (8 MiB), log tail (256 KiB), netlog (4 MiB) or details (1 MiB) "
        "over its cap"));
    return;
  }
  std::optional<CheckedResult> checked;
  if (req.has_result_json()) {
    auto ctx = queries->ResultContextFor(req.job_id());
    if (ctx.ok()) {
      ctx->netlog_json = req.netlog_json();  // the evidence flags read it
      checked = engine->checker()(*ctx, req.result_json());
    }
  }
  engine->Complete(FromProto(req), who.name, std::move(done), std::move(checked), who.id);
}

// The session's write queue, and the engine's handle on the session:
// outlives the reactor, and forgets it once the stream is done, so late
// pushes are dropped safely. (Not the worker's durable outbox.)
class SessionWriteQueue final : public SessionSink {
 public:
  explicit SessionWriteQueue(SessionReactor* r) : r_(r) {}
  void Push(const v1::CoordinatorMessage& m) override;
  void Close(const std::string& reason) override;
  void WriteDone(bool ok);
  // The stream is done: forget the reactor; returns the session id (0: none).
  int64_t Detach() {
    std::lock_guard<std::mutex> l(mu_);
    r_ = nullptr;
    return session_id_;
  }
  // Records the engine's session id; false if the stream already ended.
  bool SetSession(int64_t id) {
    std::lock_guard<std::mutex> l(mu_);
    session_id_ = id;
    return r_ != nullptr;
  }
  int64_t session() {
    std::lock_guard<std::mutex> l(mu_);
    return session_id_;
  }
  // Finish once the queue drains (or now if idle).
  void FinishWhenIdle(grpc::Status s);

 private:
  void FinishLocked(grpc::Status s);
  std::mutex mu_;
  SessionReactor* r_;                      // guarded by mu_
  std::deque<v1::CoordinatorMessage> q_;   // guarded by mu_
  bool writing_ = false;                   // guarded by mu_
  bool finished_ = false;                  // guarded by mu_
  std::optional<grpc::Status> finish_;     // guarded by mu_
  int64_t session_id_ = 0;                 // guarded by mu_
};

class SessionReactor final
    : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage> {
 public:
  SessionReactor(Engine* engine, Queries* queries, Authenticator* auth,
                 grpc::CallbackServerContext* ctx)
      : engine_(engine), queries_(queries), auth_(auth), ctx_(ctx),
        writes_(std::make_shared<SessionWriteQueue>(this)) {
    auto who = auth->Check(ctx, Role::kWorker);
    if (!who.ok()) {
      writes_->FinishWhenIdle(ToGrpc(who.status()));
      return;
    }
    principal_ = who->id;
    who_ = *who;
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the worker closed its side or went away
      writes_->FinishWhenIdle(grpc::Status::OK);
      return;
    }
    // The token again (cached): a revoked token's session ends at its next
    // message, as its unary calls would fail.
    if (auto who = auth_->Check(ctx_, Role::kWorker); !who.ok() || who->id != principal_) {
      writes_->FinishWhenIdle(
          who.ok() ? grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "token changed")
                   : ToGrpc(who.status()));
      return;
    }
    if (in_.has_hello()) {
      if (session_id_ != 0) {
        writes_->FinishWhenIdle(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "second hello on one session"));
        return;
      }
      const auto& h = in_.hello();
      if (h.worker_name().empty() || h.worker_name().size() > 200 ||
          !IsValidUtf8(h.worker_name()) || h.slots() < 0 || h.slots() > 10000) {
        writes_->FinishWhenIdle(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                             "hello needs a worker name and 0..10000 slots"));
        return;
      }
      session_id_ = -1;  // hello seen
      auto writes = writes_;
      Engine* engine = engine_;
      engine_->OpenSession(h.worker_name(), h.slots(), writes_,
                           [engine, writes, lease_ms = engine_->lease_period_ms()](
                               absl::StatusOr<int64_t> id) {
                             if (!id.ok()) {
                               writes->FinishWhenIdle(ToGrpc(id.status()));
                               return;
                             }
                             if (!writes->SetSession(*id)) {
                               engine->CloseSession(*id);  // stream ended meanwhile
                               return;
                             }
                             v1::CoordinatorMessage w;
                             w.mutable_welcome()->set_session_id(absl::StrCat(*id));
                             w.mutable_welcome()->set_lease_period_ms(lease_ms);
                             // Welcome goes before any lease the dispatch pushes next.
                             writes->Push(w);
                           },
                           principal_);
    } else if (in_.has_capacity()) {
      if (int64_t id = writes_->session(); id > 0)
        engine_->SetCapacity(id, in_.capacity().slots());
    } else if (in_.has_heartbeat()) {
      // Fenced exactly as the unary Heartbeat; the session's token passed
      // the worker-role check again above.
      const v1::HeartbeatRequest& hb = in_.heartbeat();
      auto writes = writes_;
      engine_->Heartbeat(FromProto(hb), [writes, seq = hb.seq(), job = hb.job_id(),
                                         token = hb.token()](absl::StatusOr<HeartbeatReply> r) {
        v1::CoordinatorMessage m;
        v1::HeartbeatAck* ack = m.mutable_heartbeat_ack();
        ack->set_seq(seq);
        ack->set_job_id(job);
        ack->set_token(token);
        grpc::Status g = ToGrpc(r.status());
        ack->set_code(static_cast<int32_t>(g.error_code()));
        if (r.ok()) ack->set_lease_expires_at_ms(r->lease_expires_at_ms);
        else ack->set_error(g.error_message());
        writes->Push(m);
      }, principal_);
    } else if (in_.has_complete()) {
      auto writes = writes_;
      StartComplete(engine_, queries_, in_.complete().request(), who_,
                    [writes, seq = in_.complete().seq()](absl::StatusOr<CompletionReply> r) {
                      v1::CoordinatorMessage m;
                      v1::CompleteAck* ack = m.mutable_complete_ack();
                      ack->set_seq(seq);
                      grpc::Status g = ToGrpc(r.status());
                      ack->set_code(static_cast<int32_t>(g.error_code()));
                      if (r.ok()) *ack->mutable_response() = ToProto(*r);
                      else ack->set_error(g.error_message());
                      writes->Push(m);
                    });
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override { writes_->WriteDone(ok); }

  void OnDone() override {
    if (int64_t id = writes_->Detach(); id > 0) engine_->CloseSession(id);
    delete this;
  }

  void OnCancel() override { writes_->FinishWhenIdle(grpc::Status::CANCELLED); }

 private:
  Engine* engine_;
  Queries* queries_;
  Authenticator* auth_;
  grpc::CallbackServerContext* ctx_;
  Principal who_;  // the session's token
  std::shared_ptr<SessionWriteQueue> writes_;
  v1::WorkerMessage in_;
  int64_t session_id_ = 0;  // reactor-thread only: 0 before hello
  int64_t principal_ = 0;   // the token's id
};

void SessionWriteQueue::Push(const v1::CoordinatorMessage& m) {
  std::lock_guard<std::mutex> l(mu_);
  if (!r_ || finished_ || finish_) return;
  q_.push_back(m);
  if (!writing_) {
    writing_ = true;
    r_->StartWrite(&q_.front());
  }
}

void SessionWriteQueue::WriteDone(bool ok) {
  std::lock_guard<std::mutex> l(mu_);
  if (!q_.empty()) q_.pop_front();
  if (!ok) {
    q_.clear();
    writing_ = false;
    FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
    return;
  }
  if (!q_.empty() && !finish_) {
    r_->StartWrite(&q_.front());
    return;
  }
  writing_ = false;
  if (finish_) FinishLocked(*finish_);
}

void SessionWriteQueue::Close(const std::string& reason) {
  FinishWhenIdle(grpc::Status(grpc::StatusCode::ABORTED, reason));
}

void SessionWriteQueue::FinishWhenIdle(grpc::Status s) {
  std::lock_guard<std::mutex> l(mu_);
  if (!finish_) finish_ = s;
  if (!writing_) FinishLocked(*finish_);
}

void SessionWriteQueue::FinishLocked(grpc::Status s) {
  if (finished_ || !r_) return;
  finished_ = true;
  r_->Finish(s);
}

}  // namespace

grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* WorkerService::Session(
    grpc::CallbackServerContext* ctx) {
  return new SessionReactor(engine_, queries_, auth_, ctx);
}

template <typename Start>
grpc::ServerUnaryReactor* WorkerService::AsWorker(grpc::CallbackServerContext* ctx,
                                                  Start start) {
  auto* r = ctx->DefaultReactor();
  auto who = auth_->Check(ctx, Role::kWorker);
  if (who.ok()) start(r, *who);
  else r->Finish(ToGrpc(who.status()));
  return r;
}

namespace {
// Finishes a unary call with the engine's answer translated into `resp`.
template <typename T, typename Resp>
Engine::Done<T> FinishInto(grpc::ServerUnaryReactor* r, Resp* resp) {
  return [r, resp](absl::StatusOr<T> v) {
    if (v.ok()) *resp = ToProto(*v);
    r->Finish(ToGrpc(v.status()));
  };
}
}  // namespace

grpc::ServerUnaryReactor* WorkerService::AppendLog(grpc::CallbackServerContext* ctx,
                                                   const v1::LogAppendRequest* req, v1::Empty*) {
  return AsWorker(ctx, [&](grpc::ServerUnaryReactor* r, const Principal& who) {
    if (req->data().size() > (1u << 20)) {
      r->Finish(ToGrpc(absl::InvalidArgumentError("log append: data over 1 MiB")));
      return;
    }
    // Bound to the lease like Heartbeat and Complete: only the token that
    // holds the attempt's lease may append (FAILED_PRECONDITION otherwise).
    r->Finish(ToGrpc(engine_->live_logs().Append(req->job_id(), req->token(), who.id,
                                                 req->offset(), req->data(), SystemNowMs())));
  });
}

grpc::ServerUnaryReactor* WorkerService::Heartbeat(grpc::CallbackServerContext* ctx,
                                                   const v1::HeartbeatRequest* req,
                                                   v1::HeartbeatResponse* resp) {
  return AsWorker(ctx, [&](grpc::ServerUnaryReactor* r, const Principal& who) {
    engine_->Heartbeat(FromProto(*req), FinishInto<HeartbeatReply>(r, resp), who.id);
  });
}

grpc::ServerUnaryReactor* WorkerService::Complete(grpc::CallbackServerContext* ctx,
                                                  const v1::CompleteRequest* req,
                                                  v1::CompleteResponse* resp) {
  return AsWorker(ctx, [&](grpc::ServerUnaryReactor* r, const Principal& who) {
    StartComplete(engine_, queries_, *req, who, FinishInto<CompletionReply>(r, resp));
  });
}

}  // namespace assessq
