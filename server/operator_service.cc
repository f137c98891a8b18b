#include "server/operator_service.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <deque>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/status_util.h"
#include "server/engine_wire.h"
#include "server/intake.h"
#include "server/model.h"

namespace assessq {
namespace {

// Finishes `r` with `s` and returns it: the one place statuses cross the edge.
grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx, const absl::Status& s) {
  auto* r = ctx->DefaultReactor();
  r->Finish(ToGrpc(s));
  return r;
}

template <typename T, typename Fill>
grpc::ServerUnaryReactor* ReplyWith(grpc::CallbackServerContext* ctx,
                                    absl::StatusOr<T> v, Fill fill) {
  if (v.ok()) fill(std::move(*v));
  return Reply(ctx, v.status());
}

// Completes the reactor later, from the engine's commit callback.
template <typename T, typename Fill>
Engine::Done<T> Later(grpc::ServerUnaryReactor* r, Fill fill) {
  return [r, fill](absl::StatusOr<T> v) {
    if (v.ok()) fill(std::move(*v));
    r->Finish(ToGrpc(v.status()));
  };
}
// The same, answering with the engine's result translated into `resp`.
template <typename T, typename Resp>
Engine::Done<T> LaterInto(grpc::ServerUnaryReactor* r, Resp* resp) {
  return Later<T>(r, [resp](const T& v) { *resp = ToProto(v); });
}
// The same, for an answer that carries nothing.
Engine::Done<bool> LaterEmpty(grpc::ServerUnaryReactor* r) {
  return Later<bool>(r, [](bool) {});
}

absl::Status ValidateBatchName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("batch name is empty");
  if (name.size() > 200) return absl::InvalidArgumentError("batch name longer than 200 bytes");
  if (!IsValidUtf8(name)) return absl::InvalidArgumentError("batch name is not valid UTF-8");
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f)
      return absl::InvalidArgumentError("batch name contains a control character");
  return absl::OkStatus();
}

#define AUTH_OPERATOR(ctx)                                         \
  do {                                                             \
    auto who = auth_->Check(ctx, Role::kOperator);                 \
    if (!who.ok()) return Reply(ctx, who.status());                \
  } while (0)

}  // namespace

template <typename Start>
OperatorService::Unary* OperatorService::ToEngine(Ctx* ctx, Start start) {
  AUTH_OPERATOR(ctx);
  auto* r = ctx->DefaultReactor();
  start(r);
  return r;
}

template <typename Resp, typename Read>
OperatorService::Unary* OperatorService::FromQueries(Ctx* ctx, Resp* resp, Read read) {
  AUTH_OPERATOR(ctx);
  return ReplyWith(ctx, read(), [&](auto v) { resp->Swap(&v); });
}

grpc::ServerUnaryReactor* OperatorService::Submit(grpc::CallbackServerContext* ctx,
                                                  const v1::SubmitRequest* req,
                                                  v1::SubmitResponse* resp) {
  AUTH_OPERATOR(ctx);
  if (auto s = ValidateBatchName(req->batch()); !s.ok()) return Reply(ctx, s);
  SubmitArgs args;
  args.batch = req->batch();
  args.rerun = req->rerun();
  if (!req->profile_json().empty()) {
    auto p = nlohmann::json::parse(req->profile_json(), nullptr, false);
    if (p.is_discarded() || !p.is_object())
      return Reply(ctx, absl::InvalidArgumentError("profile is not a JSON object"));
    args.profile_json = req->profile_json();
  }
  if (req->has_retry_policy()) {
    auto pol = RetryPolicy::FromProto(req->retry_policy());
    if (!pol.ok()) return Reply(ctx, pol.status());
    args.policy = *pol;
  }
  // The batch's budget, its own prices and the profile's job cap.
  if (req->has_budget_usd()) {
    if (!std::isfinite(req->budget_usd()) || req->budget_usd() < 0)
      return Reply(ctx, absl::InvalidArgumentError("budget_usd must be 0 (none) or more"));
    args.budget_usd = req->budget_usd();
  }
  if (!req->prices_json().empty()) {
    if (auto t = PriceTable::Parse(req->prices_json(), "prices_json"); !t.ok())
      return Reply(ctx, t.status());
    args.prices_json = req->prices_json();
  }
  if (auto cap = JobCapFromProfile(args.profile_json); !cap.ok()) return Reply(ctx, cap.status());
  if (req->has_max_running()) args.max_running = req->max_running();
  if (req->has_start_rate_per_min()) args.start_rate_per_min = req->start_rate_per_min();
  // Intake: every file is checked here; bad ones are answered as rejected and
  // the good ones still go in. Answers keep the request's order.
  std::vector<v1::SubmitItem> rejected;
  std::vector<int> order;  // index into either rejected (-1-i) or accepted (i)
  std::set<std::string> keys;
  for (const auto& f : req->files()) {
    v1::SubmitItem item;
    item.set_source_name(f.source_name());
    auto key = DatasetKeyFromSourceName(f.source_name());
    absl::Status bad;
    if (!key.ok()) {
      bad = key.status();
    } else {
      item.set_dataset_key(*key);
      if (!keys.insert(*key).second) {
        bad = absl::AlreadyExistsError(
            absl::StrCat("dataset key '", *key, "' appears twice in this submission"));
      }
    }
    absl::StatusOr<ParsedMetadata> md = bad.ok() ? ParseMetadata(f.content()) : bad;
    if (!md.ok()) {
      item.set_outcome(v1::SubmitItem::OUTCOME_REJECTED);
      item.set_error(std::string(md.status().message()));
      order.push_back(-1 - static_cast<int>(rejected.size()));
      rejected.push_back(std::move(item));
      continue;
    }
    order.push_back(static_cast<int>(args.files.size()));
    args.files.push_back(
        SubmitFile{f.source_name(), *key, md->name, f.content(), Sha256Hex(f.content())});
  }
  auto* r = ctx->DefaultReactor();
  engine_->Submit(std::move(args), [r, resp, rejected = std::move(rejected),
                                    order = std::move(order)](absl::StatusOr<SubmitResult> v) {
    if (v.ok()) {
      const v1::SubmitResponse accepted = ToProto(*v);
      for (int i : order) {
        if (i < 0) *resp->add_items() = rejected[-1 - i];
        else *resp->add_items() = accepted.items(i);
      }
    }
    r->Finish(ToGrpc(v.status()));
  });
  return r;
}

grpc::ServerUnaryReactor* OperatorService::Status(grpc::CallbackServerContext* ctx,
                                                  const v1::StatusRequest* req,
                                                  v1::StatusResponse* resp) {
  AUTH_OPERATOR(ctx);
  auto status = queries_->Status(req->batch());
  if (!status.ok()) return Reply(ctx, status.status());
  resp->Swap(&*status);
  // The limits live in the engine's memory (AIMD state): ask it, then merge.
  auto* r = ctx->DefaultReactor();
  engine_->SetLimits(LimitsOrder{}, [r, resp](absl::StatusOr<std::vector<LimitView>> v) {
    if (v.ok()) {
      const v1::LimitsResponse limits = ToProto(*v);
      for (const auto& l : limits.limits()) {
        if (l.scope() == "provider") {
          *resp->add_providers() = l;
          continue;
        }
        for (auto& b : *resp->mutable_batches())
          if (b.name() == l.name()) *b.mutable_limit() = l;
      }
    }
    r->Finish(ToGrpc(v.status()));
  });
  return r;
}

OperatorService::Unary* OperatorService::ListJobs(Ctx* ctx, const v1::ListJobsRequest* req,
                                                  v1::ListJobsResponse* resp) {
  return FromQueries(ctx, resp, [&] { return queries_->ListJobs(*req); });
}

OperatorService::Unary* OperatorService::ShowJob(Ctx* ctx, const v1::JobRef* req,
                                                 v1::JobDetail* resp) {
  return FromQueries(ctx, resp, [&] { return queries_->ShowJob(*req); });
}

OperatorService::Unary* OperatorService::GetResult(Ctx* ctx, const v1::JobRef* req,
                                                   v1::ResultResponse* resp) {
  return FromQueries(ctx, resp, [&] { return queries_->GetResult(*req); });
}

OperatorService::Unary* OperatorService::Retry(Ctx* ctx, const v1::RetryRequest* req,
                                               v1::CountResponse* resp) {
  return ToEngine(ctx, [&](Unary* r) {
    engine_->Retry(FromProto(*req), Later<int64_t>(r, [resp](int64_t n) { resp->set_count(n); }));
  });
}

OperatorService::Unary* OperatorService::Cancel(Ctx* ctx, const v1::CancelRequest* req,
                                                v1::CountResponse* resp) {
  return ToEngine(ctx, [&](Unary* r) {
    engine_->Cancel(FromProto(*req), Later<int64_t>(r, [resp](int64_t n) { resp->set_count(n); }));
  });
}

OperatorService::Unary* OperatorService::ListWorkers(Ctx* ctx, const v1::WorkersRequest*,
                                                     v1::WorkersResponse* resp) {
  return ToEngine(ctx, [&](Unary* r) {
    engine_->ListWorkers(LaterInto<std::vector<WorkerView>>(r, resp));
  });
}

OperatorService::Unary* OperatorService::PauseBatch(Ctx* ctx, const v1::BatchRequest* req,
                                                    v1::Empty*) {
  return ToEngine(ctx, [&](Unary* r) { engine_->SetPaused(req->batch(), true, LaterEmpty(r)); });
}

OperatorService::Unary* OperatorService::ResumeBatch(Ctx* ctx, const v1::BatchRequest* req,
                                                     v1::Empty*) {
  return ToEngine(ctx, [&](Unary* r) { engine_->SetPaused(req->batch(), false, LaterEmpty(r)); });
}

OperatorService::Unary* OperatorService::SetLimits(Ctx* ctx, const v1::LimitsRequest* req,
                                                   v1::LimitsResponse* resp) {
  return ToEngine(ctx, [&](Unary* r) {
    engine_->SetLimits(FromProto(*req), LaterInto<std::vector<LimitView>>(r, resp));
  });
}

OperatorService::Unary* OperatorService::SetBudget(Ctx* ctx, const v1::BudgetRequest* req,
                                                   v1::BatchStatus* resp) {
  if (!std::isfinite(req->budget_usd()) || req->budget_usd() < 0)
    return Reply(ctx, absl::InvalidArgumentError("budget_usd must be 0 (none) or more"));
  return ToEngine(ctx, [&](Unary* r) {
    engine_->SetBudget(req->batch(), req->budget_usd(),
                       [r, resp, q = queries_, batch = req->batch()](absl::StatusOr<bool> v) {
                         if (!v.ok()) {
                           r->Finish(ToGrpc(v.status()));
                           return;
                         }
                         auto st = q->Status(batch);  // after the commit: the new budget
                         if (st.ok() && st->batches_size() == 1)
                           resp->Swap(st->mutable_batches(0));
                         r->Finish(ToGrpc(st.status()));
                       });
  });
}

namespace {
// The answer to a log read of job `d`: the attempt asked for (else the
// latest), from the live log while it has one, else its stored tail; ended
// once the follower has everything of an attempt that ended.
absl::StatusOr<v1::LogReadResponse> LogRead(const v1::JobDetail& d,
                                            const v1::LogReadRequest& req,
                                            const LiveLogs& live) {
  v1::LogReadResponse resp;
  resp.set_job_state(d.job().state());
  resp.set_next_offset(req.offset());
  const v1::Attempt* a = nullptr;
  for (const auto& at : d.attempts())
    if (req.attempt_id() == 0 ? (!a || at.attempt_id() > a->attempt_id())
                              : at.attempt_id() == req.attempt_id())
      a = &at;
  if (!a) {
    if (req.attempt_id() != 0)
      return absl::NotFoundError(
          absl::StrCat("job ", d.job().job_id(), " has no attempt ", req.attempt_id()));
    // Not started yet: nothing to show, not ended either (unless the job is).
    resp.set_ended(IsTerminal(d.job().state()));
    return resp;
  }
  resp.set_attempt_id(a->attempt_id());
  resp.set_outcome(a->outcome());
  const bool ended = a->outcome() != "leased" && a->outcome() != "running";
  if (auto c = live.Read(a->attempt_id(), req.offset())) {
    resp.set_data(std::move(c->data));
    resp.set_next_offset(c->next_offset);
    resp.set_skipped(c->skipped);
    // Ended, and the follower has everything the worker streamed.
    resp.set_ended(ended && resp.data().empty());
  } else if (ended) {
    // Nothing was streamed (or the coordinator restarted): the stored tail.
    const std::string& tail = a->log_tail();
    int64_t from = std::min<int64_t>(std::max<int64_t>(req.offset(), 0),
                                     static_cast<int64_t>(tail.size()));
    resp.set_data(tail.substr(static_cast<size_t>(from)));
    resp.set_next_offset(static_cast<int64_t>(tail.size()));
    resp.set_ended(true);
  }
  return resp;
}
}  // namespace

OperatorService::Unary* OperatorService::ReadLog(Ctx* ctx, const v1::LogReadRequest* req,
                                                 v1::LogReadResponse* resp) {
  return FromQueries(ctx, resp, [&]() -> absl::StatusOr<v1::LogReadResponse> {
    ASSIGN_OR_RETURN(d, queries_->ShowJob(req->job()));
    return LogRead(d, *req, engine_->live_logs());
  });
}

OperatorService::Unary* OperatorService::DrainWorker(Ctx* ctx, const v1::DrainRequest* req,
                                                     v1::Empty*) {
  return ToEngine(ctx, [&](Unary* r) {
    engine_->DrainWorker(req->worker(), !req->undrain(), LaterEmpty(r));
  });
}

namespace {
// Streams an export: reads the records in one snapshot up front (bounded by
// the batch size), then writes them one at a time as the client takes them.
class ExportReactor final : public grpc::ServerWriteReactor<v1::ExportRecord> {
 public:
  ExportReactor(Queries* q, Authenticator* auth, grpc::CallbackServerContext* ctx,
                const v1::ExportRequest& req) {
    auto who = auth->Check(ctx, Role::kOperator);
    if (!who.ok()) {
      Finish(ToGrpc(who.status()));
      return;
    }
    auto s = q->Export(req, [this](v1::ExportRecord r) {
      records_.push_back(std::move(r));
      return true;
    });
    if (!s.ok()) {
      Finish(ToGrpc(s));
      return;
    }
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      return;
    }
    records_.pop_front();
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (records_.empty()) {
      Finish(grpc::Status::OK);
      return;
    }
    StartWrite(&records_.front());
  }
  std::deque<v1::ExportRecord> records_;
};
}  // namespace

grpc::ServerWriteReactor<v1::ExportRecord>* OperatorService::Export(
    grpc::CallbackServerContext* ctx, const v1::ExportRequest* req) {
  return new ExportReactor(queries_, auth_, ctx, *req);
}

}  // namespace assessq
