#include "worker/api_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/call_failure.h"
#include "common/report_caps.h"
#include "common/status_util.h"
#include "common/utf8.h"

namespace assessq {

namespace {

// A refused call's status, carrying what the refusal means (the classifier).
absl::Status Refused(const grpc::Status& s) { return TagCallFailure(FromGrpc(s)); }

// The network log (a JSON array of entries) cut to `cap` bytes: the first
// entries that fit, then one saying how many were dropped.
std::string FitNetlog(const std::string& text, size_t cap) {
  constexpr size_t kNote = 1024;
  auto note = [](size_t dropped, size_t bytes, const char* why) {
    return nlohmann::json{{"decision", "truncated"},
                          {"reason", absl::StrCat("network log cut to fit the report (", why, "): ",
                                                  dropped, " entries, ", bytes, " bytes dropped")},
                          {"dropped_entries", dropped}};
  };
  auto log = nlohmann::json::parse(text, nullptr, false);
  if (log.is_discarded() || !log.is_array())
    return nlohmann::json::array({note(0, text.size(), "not a JSON array")}).dump();
  std::string out = "[";
  size_t kept = 0, dropped_bytes = 0;
  bool full = false;
  for (const auto& e : log) {
    std::string one = e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (!full && out.size() + one.size() + 1 + kNote <= cap) {
      if (kept++ > 0) out += ",";
      out += one;
    } else {
      full = true;
      dropped_bytes += one.size();
    }
  }
  size_t dropped = log.size() - kept;
  if (dropped > 0) {
    if (kept > 0) out += ",";
    out += note(dropped, dropped_bytes, "over its cap").dump();
  }
  out += "]";
  return out;
}

// The details (a JSON object): its fields of up to 1 KiB each, while they fit.
std::string FitDetails(const std::string& text, size_t cap) {
  auto d = nlohmann::json::parse(text, nullptr, false);
  nlohmann::json out = nlohmann::json::object();
  out["details_cut"] = absl::StrCat(text.size(), " bytes over the report's cap; long fields dropped");
  if (d.is_discarded() || !d.is_object()) return out.dump();
  size_t size = out.dump().size();
  for (auto& [k, v] : d.items()) {
    std::string one = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (one.size() > 1024 || k.size() > 256 || size + k.size() + one.size() + 8 > cap) continue;
    out[k] = v;
    size += k.size() + one.size() + 8;
  }
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string FitReport(v1::CompleteRequest* r) {
  std::vector<std::string> cut;
  auto said = [&](const char* what, size_t from, size_t to) {
    cut.push_back(absl::StrCat(what, " ", from, " -> ", to, " bytes"));
  };
  if (r->has_result_json() && r->result_json().size() > kReportResultCap) {
    const size_t n = r->result_json().size();
    r->mutable_failure()->set_failure_class(v1::FAILURE_CLASS_INVALID_OUTPUT);
    r->mutable_failure()->set_reason(absl::StrCat("the output file (", n, " bytes) is larger than the ",
                                                  kReportResultCap, " bytes a report may carry"));
    said("result", n, 0);
  }
  if (r->log_tail().size() > kReportLogTailCap) {
    const size_t n = r->log_tail().size();
    const std::string mark = absl::StrCat("[... ", n, " bytes of log; the start was cut to fit the report]\n");
    r->set_log_tail(mark + TailUtf8(r->log_tail(), kReportLogTailCap - mark.size()));
    said("log tail", n, r->log_tail().size());
  }
  if (r->netlog_json().size() > kReportNetlogCap) {
    const size_t n = r->netlog_json().size();
    r->set_netlog_json(FitNetlog(r->netlog_json(), kReportNetlogCap));
    said("netlog", n, r->netlog_json().size());
  }
  if (r->has_failure() && r->failure().reason().size() > kReportReasonCap) {
    const size_t n = r->failure().reason().size();
    r->mutable_failure()->set_reason(TruncateUtf8(r->failure().reason(), kReportReasonCap));
    said("failure reason", n, kReportReasonCap);
  }
  if (r->has_release() && r->release().reason().size() > kReportReasonCap)
    r->mutable_release()->set_reason(TruncateUtf8(r->release().reason(), kReportReasonCap));
  if (r->details_json().size() > kReportDetailsCap) {
    const size_t n = r->details_json().size();
    r->set_details_json(FitDetails(r->details_json(), kReportDetailsCap - 4096));
    said("details", n, r->details_json().size());
  }
  if (cut.empty()) return "";
  std::string what = absl::StrJoin(cut, "; ");
  // Said in the details too, when they are JSON and have room.
  auto d = nlohmann::json::parse(r->details_json().empty() ? "{}" : r->details_json(), nullptr, false);
  if (d.is_object() && r->details_json().size() + what.size() + 64 <= kReportDetailsCap) {
    d["report_cut"] = what;
    r->set_details_json(d.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  return what;
}

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
    AddAuth(ctx, opt_.bearer_token);
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
    if (ClassifyCall(FromGrpc(st)) == CallFailure::kCredentials) {
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

template <typename Req, typename Resp>
absl::StatusOr<Resp> ApiClient::Unary(
    grpc::Status (v1::WorkerService::Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*),
    const Req& req, int timeout_ms) {
  grpc::ClientContext ctx;
  AddAuth(ctx, opt_.bearer_token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  Resp resp;
  if (auto s = (stub_.get()->*rpc)(&ctx, req, &resp); !s.ok()) return Refused(s);
  return resp;
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

template <auto kSent, auto kAck, typename Req, typename Resp, typename Take>
absl::StatusOr<Resp> ApiClient::CallOnSessionOrRpc(
    const char* what, v1::WorkerMessage m, Take take,
    grpc::Status (v1::WorkerService::Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*),
    const Req& req, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  v1::CoordinatorMessage answer;
  switch (CallOnSession(
      std::move(m), [](v1::WorkerMessage& w, uint64_t seq) { (w.*kSent)()->set_seq(seq); },
      deadline, &answer)) {
    case SessionCall::kAnswered: {
      auto& ack = *(answer.*kAck)();
      if (ack.code() != 0)
        return Refused(grpc::Status(static_cast<grpc::StatusCode>(ack.code()), ack.error()));
      return take(ack);
    }
    case SessionCall::kTimedOut:
      return absl::DeadlineExceededError(absl::StrCat(what, ": no answer on the session in time"));
    case SessionCall::kNotSent:
    case SessionCall::kLost:
      break;  // the RPC, with what time is left
  }
  return Unary(rpc, req, LeftMs(deadline));
}

namespace {
// What the unary RPC would have answered, from the session's ack.
v1::HeartbeatResponse HeartbeatAnswer(v1::HeartbeatAck& ack) {
  v1::HeartbeatResponse resp;
  resp.set_lease_expires_at_ms(ack.lease_expires_at_ms());
  return resp;
}
v1::CompleteResponse CompleteAnswer(v1::CompleteAck& ack) {
  v1::CompleteResponse resp;
  resp.Swap(ack.mutable_response());
  return resp;
}
}  // namespace

absl::StatusOr<v1::HeartbeatResponse> ApiClient::Heartbeat(const v1::HeartbeatRequest& req,
                                                           int timeout_ms) {
  v1::WorkerMessage m;
  *m.mutable_heartbeat() = req;
  return CallOnSessionOrRpc<&v1::WorkerMessage::mutable_heartbeat,
                            &v1::CoordinatorMessage::mutable_heartbeat_ack>(
      "heartbeat", std::move(m), HeartbeatAnswer, &v1::WorkerService::Stub::Heartbeat, req,
      timeout_ms);
}

absl::Status ApiClient::AppendLog(const v1::LogAppendRequest& req, int timeout_ms) {
  return Unary(&v1::WorkerService::Stub::AppendLog, req, timeout_ms).status();
}

absl::StatusOr<v1::CompleteResponse> ApiClient::Complete(const v1::CompleteRequest& req_in,
                                                         int timeout_ms) {
  // Over a cap the coordinator refuses the whole report, result and all.
  v1::CompleteRequest fitted;
  const v1::CompleteRequest* p = &req_in;
  if (req_in.log_tail().size() > kReportLogTailCap || req_in.netlog_json().size() > kReportNetlogCap ||
      req_in.details_json().size() > kReportDetailsCap || req_in.result_json().size() > kReportResultCap ||
      req_in.failure().reason().size() > kReportReasonCap ||
      req_in.release().reason().size() > kReportReasonCap) {
    fitted = req_in;
    std::string cut = FitReport(&fitted);
    spdlog::warn("[job={}] report cut to fit the coordinator's caps: {}", req_in.job_id(), cut);
    p = &fitted;
  }
  const v1::CompleteRequest& req = *p;
  v1::WorkerMessage m;
  *m.mutable_complete()->mutable_request() = req;
  // A completion the session lost and the RPC repeats is answered as a duplicate.
  return CallOnSessionOrRpc<&v1::WorkerMessage::mutable_complete,
                            &v1::CoordinatorMessage::mutable_complete_ack>(
      "complete", std::move(m), CompleteAnswer, &v1::WorkerService::Stub::Complete, req,
      timeout_ms);
}

}  // namespace assessq
