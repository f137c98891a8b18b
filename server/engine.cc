#include "server/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "server/engine_wire.h"
#include "server/migrations.h"
#include "server/model.h"

namespace assessq {

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<std::string> DefaultValidator(const ResultContext&, const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded()) return {"/: result is not valid JSON"};
  if (!j.is_object()) return {"/: result is not a JSON object"};
  return {};
}

Engine::Engine(EngineOptions opt) : opt_(std::move(opt)) {
  if (!opt_.clock) opt_.clock = SystemNowMs;
  if (!opt_.checker) {
    ResultValidator v = opt_.validator ? opt_.validator : ResultValidator(DefaultValidator);
    opt_.checker = [v, f = opt_.flagger](const ResultContext& ctx, const std::string& json) {
      CheckedResult c;
      c.errors = v(ctx, json);
      if (c.errors.empty() && f) c.flags = f(ctx, json);
      return c;
    };
  }
  rng_.seed(opt_.seed ? opt_.seed : std::random_device{}());
  if (!opt_.usage) opt_.usage = std::make_shared<UsageStore>();  // no prices
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(EngineOptions opt) {
  std::unique_ptr<Engine> e(new Engine(std::move(opt)));
  ASSIGN_OR_RETURN(db, Db::Open(e->opt_.db_path, {}));
  e->db_ = std::move(db);
  e->store_ = std::make_unique<JobStore>(*e->db_);
  Engine* p = e.get();
  e->loop_ = std::make_unique<CommitLoop>(
      *e->db_, e->opt_.db_path,
      CommitLoop::Hooks{[p] { return p->Now(); }, [p] { return p->WakeAt(); },
                        [p] { return p->dispatch_dirty_; }, [p] { p->Step(); },
                        [p] { return p->CloseSessions(); }});
  RETURN_IF_ERROR(Migrate(*e->db_));
  RETURN_IF_ERROR(e->Load());
  RETURN_IF_ERROR(e->loop_->Start());
  return e;
}

// The loop first: its threads use everything else.
Engine::~Engine() { loop_.reset(); }

absl::Status Engine::Load() {
  ASSIGN_OR_RETURN(batches, store_->Batches());
  for (BatchRow& r : batches) {
    ASSIGN_OR_RETURN(pol, RetryPolicy::FromJson(r.retry_policy_json));
    limits_.ConfigureBatch(r.id, r.name, FleetLimits::ProviderOf(r.profile_json), r.limits);
    batches_.Load(BatchInfo{r.id, r.name, r.profile_json, pol, r.paused, r.limits});
  }
  ASSIGN_OR_RETURN(providers, store_->ProviderLimits());
  for (const auto& [name, config] : providers) limits_.ConfigureProvider(name, config);
  // The observer learns every provider's limit after the first commit.
  if (auto* o = opt_.observer)
    for (const auto& v : limits_.View(Now()))
      if (v.scope == "provider") {
        const int limit = reported_limits_[v.name] = limits_.ProviderLimit(v.name);
        loop_->After([o, name = v.name, limit] { o->OnModelApiLimit(name, limit); });
      }
  // Leases survive a restart with the time they had left when the
  // coordinator stopped (their clocks stand still while it is down), so
  // connected workers renew them as before and a dead worker's run out one
  // lease period after its last heartbeat, however often we restart. Leases
  // stored without an expiry (before schema v4) get a fresh period.
  const int64_t now = Now();
  ASSIGN_OR_RETURN(alive_at, store_->AliveAt());
  const int64_t downtime = alive_at ? std::max<int64_t>(0, now - *alive_at) : 0;
  ASSIGN_OR_RETURN(held, store_->HeldLeases());
  for (const HeldLeaseRow& h : held) {
    const int64_t expires =
        h.lease_expires_at > 0 ? h.lease_expires_at + downtime : now + opt_.lease_period_ms;
    leases_.Recover(h.job_id,
                    LeaseInfo{h.attempt_id, h.worker, expires, h.running, h.batch_id, 0,
                              h.principal},
                    now);
  }
  ASSIGN_OR_RETURN(workers, store_->Workers());
  for (const WorkerRow& r : workers) workers_.Load(r.name, r.slots, r.draining, r.last_seen);
  RETURN_IF_ERROR(store_->MarkAllWorkersDisconnected());
  if (!leases_.empty())
    spdlog::info("recovered {} leases; each must be renewed within {} ms", leases_.size(),
                 opt_.lease_period_ms);
  return absl::OkStatus();
}

// ------------------------------------------------------------------ the loop

absl::Status Engine::Atomically(const std::function<absl::Status(Txn&)>& op) {
  return loop_->Atomically(Now(), op);
}

int64_t Engine::WakeAt() const {
  int64_t wake = std::numeric_limits<int64_t>::max();
  if (auto first = leases_.FirstExpiry()) wake = first->first;
  if (next_ready_at_ > 0) wake = std::min(wake, next_ready_at_);
  return wake;
}

void Engine::Step() {
  const int64_t now = Now();
  if (auto first = leases_.FirstExpiry(); first && first->first <= now) {
    if (auto s = Atomically([&](Txn& tx) { return ExpireLeases(tx); }); !s.ok())
      spdlog::error("lease expiry: {}", s.ToString());
  }
  if (next_ready_at_ > 0 && next_ready_at_ <= now) {
    next_ready_at_ = 0;
    dispatch_dirty_ = true;
  }
  if (dispatch_dirty_) {
    if (auto s = Dispatch(); !s.ok()) spdlog::error("dispatch: {}", s.ToString());
  }
  // Once a second while leases are held (in the commit that grants the
  // first one too): the time we were last alive (see Load).
  if (!leases_.empty() && now - alive_written_ >= 1000) {
    auto s = Atomically([&](Txn& tx) { return tx.store().SetAliveAt(now); });
    if (s.ok()) alive_written_ = now;
    else spdlog::error("engine clock: {}", s.ToString());
  }
}

std::vector<Txn::Action> Engine::CloseSessions() {
  std::vector<Txn::Action> closes;
  for (auto& sink : workers_.Sinks())
    closes.push_back([sink] { sink->Close("coordinator shutting down"); });
  return closes;
}

// ------------------------------------------------------------------ helpers

absl::Status Engine::Event(Txn& tx, std::optional<int64_t> batch_id,
                           std::optional<int64_t> job_id, absl::string_view kind,
                           absl::string_view detail) {
  return tx.store().AddEvent(tx.now(), batch_id, job_id, kind, detail);
}

void Engine::NoteReady(int64_t ready_at) {
  if (ready_at <= Now()) {
    dispatch_dirty_ = true;
  } else if (next_ready_at_ == 0 || ready_at < next_ready_at_) {
    next_ready_at_ = ready_at;
  }
}

void Engine::Push(Txn& tx, const std::string& worker, const v1::CoordinatorMessage& m) {
  if (auto sink = workers_.SinkOf(worker)) tx.After([sink, m] { sink->Push(m); });
}

absl::Status Engine::CheckHolder(int64_t job_id, const LeaseInfo& lease,
                                 int64_t principal) const {
  if (principal == 0 || lease.principal == 0 || lease.principal == principal)
    return absl::OkStatus();
  // FAILED_PRECONDITION (not PERMISSION_DENIED): for the caller this lease is
  // not held, and retrying cannot change that (a worker's outbox drops such
  // a report instead of retrying it before every later one).
  return absl::FailedPreconditionError(absl::StrCat(
      "job ", job_id, ": lease ", lease.token, " was taken with another worker token"));
}

void Engine::DropLease(Txn& tx, int64_t job_id) {
  if (leases_.Drop(tx, job_id)) dispatch_dirty_ = true;  // a slot came free
}

absl::Status Engine::FinishAttempt(Txn& tx, int64_t attempt_id, AttemptOutcome outcome,
                                   std::optional<v1::FailureClass> cls,
                                   const std::string& error, const CompletionReport* report) {
  std::optional<absl::string_view> cls_name;
  if (cls) cls_name = ClassName(*cls);
  RETURN_IF_ERROR(tx.store().FinishAttempt(attempt_id, OutcomeName(outcome), cls_name, error,
                                           tx.now(), report ? &report->attempt : nullptr));
  // The attempt's final usage and the agent's own cost figure.
  if (report)
    RETURN_IF_ERROR(ReportUsage(
        tx, opt_.usage->RecordCompletion(tx.db(), attempt_id,
                                         report->usage ? &*report->usage : nullptr,
                                         report->attempt.details_json, report->attempt.log_tail)));
  if (auto* o = opt_.observer)
    tx.After([o, outcome, cls] { o->OnAttemptFinished(OutcomeName(outcome), cls); });
  return absl::OkStatus();
}

absl::Status Engine::RequeueJob(Txn& tx, int64_t job_id, int64_t batch_id, bool new_epoch,
                                absl::string_view why) {
  RETURN_IF_ERROR(tx.store().RequeueJob(job_id, new_epoch, tx.now()));
  RETURN_IF_ERROR(Event(tx, batch_id, job_id, "requeued", why));
  NoteReady(tx.now());
  return absl::OkStatus();
}

absl::StatusOr<v1::JobState> Engine::FailJob(Txn& tx, const JobRow& job, int64_t attempt_id,
                                             v1::FailureClass cls, const std::string& error,
                                             int64_t retry_after_ms) {
  BatchInfo* b = batches_.ById(job.batch_id);
  RetryPolicy policy = b ? b->policy : RetryPolicy{};
  ASSIGN_OR_RETURN(failures, tx.store().CountFailures(job, ClassName(cls)));
  // A worker's number: capped before it delays anything.
  retry_after_ms = FleetLimits::CapRetryAfter(retry_after_ms);
  RetryDecision d = DecideRetry(policy, cls, failures, retry_after_ms, rng_, error);
  const int64_t now = tx.now();
  if (cls == v1::FAILURE_CLASS_MODEL_API) {
    // The whole fleet slows down for this provider (AIMD), not just this job.
    const LeaseInfo* lease = leases_.Find(job.id);
    const int64_t leased_at = lease ? lease->leased_at : 0;
    const std::string provider = limits_.ProviderOfBatch(job.batch_id);
    int before = limits_.ProviderLimit(provider);
    limit_changes_.ModelApiFailed(tx, job.batch_id, leased_at, retry_after_ms,
                                  absl::StrCat("job ", job.id, ": ", TruncateUtf8(error, 120)),
                                  job.id);
    int after = limits_.ProviderLimit(provider);
    if (after != before) {
      ReportProviderLimit(tx, provider);
      spdlog::warn("[job={}] model API pushed back; fleet limit for {} {} -> {}, "
                   "retry-after {} ms", job.id, provider,
                   before == 0 ? std::string("none") : absl::StrCat(before), after,
                   retry_after_ms);
    }
    dispatch_dirty_ = true;
  }
  v1::JobState next = d.give_up ? v1::JOB_STATE_NEEDS_ATTENTION : v1::JOB_STATE_QUEUED;
  RETURN_IF_ERROR(tx.store().SetJobFailed(job.id, StateName(next), now + d.delay_ms,
                                          ClassName(cls), TruncateUtf8(error, 4000), now));
  RETURN_IF_ERROR(Event(tx, job.batch_id, job.id, "failed",
                        absl::StrCat(ClassName(cls), ": ", TruncateUtf8(error, 500))));
  if (d.give_up) {
    RETURN_IF_ERROR(Event(tx, job.batch_id, job.id, "needs_attention",
                          absl::StrCat(ClassName(cls), " after ", failures, " attempt(s)")));
    spdlog::warn("[job={}] needs attention: {} after {} attempt(s): {}", job.id,
                 ClassName(cls), failures, TruncateUtf8(error, 200));
  } else {
    NoteReady(now + d.delay_ms);
    spdlog::info("[job={}] attempt {} failed ({}), retry in {} ms", job.id, attempt_id,
                 ClassName(cls), d.delay_ms);
  }
  return next;
}

void Engine::ReportProviderLimit(Txn& tx, const std::string& provider) {
  if (!opt_.observer) return;
  int limit = limits_.ProviderLimit(provider);
  auto it = reported_limits_.find(provider);
  if (it != reported_limits_.end() && it->second == limit) return;
  reported_limits_[provider] = limit;
  // (Not undone on rollback: the next change reports the value in force.)
  tx.After([o = opt_.observer, provider, limit] { o->OnModelApiLimit(provider, limit); });
}

// ------------------------------------------------------------------ workers

void Engine::OpenSession(std::string worker, int slots, std::shared_ptr<SessionSink> sink,
                         Done<int64_t> done, int64_t principal) {
  Post<int64_t>(
      [this, worker, slots, sink, principal](Txn& tx) -> absl::StatusOr<int64_t> {
        // A worker name holding leases of another token cannot be taken over.
        if (principal != 0 && leases_.HeldByOtherToken(worker, principal))
          return absl::PermissionDeniedError(absl::StrCat(
              "worker name '", worker, "' holds leases taken with another token"));
        RETURN_IF_ERROR(tx.store().WorkerConnected(worker, slots, tx.now()));
        const auto& session = workers_.Connect(tx, worker, slots, sink, principal);
        if (workers_.Draining(worker)) {
          // Tell it again: it may have restarted since.
          tx.After([sink, m = DrainMessage("drained by operator", false)] { sink->Push(m); });
        }
        dispatch_dirty_ = true;
        spdlog::info("worker {} connected with {} slots ({} leases held)", worker, slots,
                     leases_.InUse(worker));
        return session.id;
      },
      std::move(done));
}

void Engine::SetCapacity(int64_t session_id, int slots) {
  loop_->Post([this, session_id, slots] {
    if (!workers_.SetCapacity(session_id, slots, Now())) return;
    dispatch_dirty_ = true;
  });
}

void Engine::CloseSession(int64_t session_id) {
  loop_->Post([this, session_id] {
    const std::string worker = workers_.EndSession(session_id);
    if (worker.empty()) return;  // unknown, or already replaced
    auto st = Atomically([&](Txn& tx) -> absl::Status {
      RETURN_IF_ERROR(tx.store().WorkerDisconnected(worker, tx.now()));
      workers_.Disconnected(tx, worker);
      return absl::OkStatus();
    });
    if (!st.ok())
      spdlog::error("worker {} disconnected; recording it failed: {}", worker, st.ToString());
    else
      spdlog::info("worker {} disconnected ({} leases held until renewed or expired)", worker,
                   leases_.InUse(worker));
  });
}

void Engine::Heartbeat(HeartbeatReport hb, Done<HeartbeatReply> done, int64_t principal) {
  Post<HeartbeatReply>(
      [this, hb, principal](Txn& tx) -> absl::StatusOr<HeartbeatReply> {
        const LeaseInfo* l = leases_.Find(hb.job_id);
        if (!l || l->token != hb.token)
          return absl::FailedPreconditionError(absl::StrCat(
              "job ", hb.job_id, ": lease ", hb.token, " is not held (stale token)"));
        RETURN_IF_ERROR(CheckHolder(hb.job_id, *l, principal));
        // The attempt's usage so far (cumulative).
        if (hb.usage)
          RETURN_IF_ERROR(ReportUsage(tx, opt_.usage->Record(tx.db(), hb.token, *hb.usage)));
        const int64_t expires = tx.now() + opt_.lease_period_ms;
        const bool starts_running = hb.running && !l->running;
        workers_.Seen(tx, l->worker);
        leases_.Renew(tx, hb.job_id, expires, l->running || hb.running);
        if (starts_running)
          RETURN_IF_ERROR(tx.store().MarkJobRunning(hb.job_id, hb.token, tx.now(), expires));
        else
          RETURN_IF_ERROR(tx.store().RenewLease(hb.job_id, expires));
        return HeartbeatReply{expires};
      },
      std::move(done));
}

absl::StatusOr<CompletionReply> Engine::CompleteUnheld(Txn& tx, const CompletionReport& r) {
  // An outbox re-send of a completion we already recorded is answered as a
  // duplicate; anything else is stale.
  ASSIGN_OR_RETURN(at, tx.store().Attempt(r.token));
  if (!at || at->job_id != r.job_id)
    return absl::FailedPreconditionError(
        absl::StrCat("job ", r.job_id, ": no lease with token ", r.token));
  const AttemptOutcome want = *r.outcome;
  const std::optional<AttemptOutcome> recorded = OutcomeFromName(at->outcome);
  // (A result we judged invalid was recorded as an invalid_output failure.)
  const bool same = recorded == want ||
                    (want == AttemptOutcome::kSucceeded && recorded == AttemptOutcome::kFailed &&
                     at->failure_class == ClassName(v1::FAILURE_CLASS_INVALID_OUTPUT));
  if (recorded == AttemptOutcome::kLeased || recorded == AttemptOutcome::kRunning || !same)
    return absl::FailedPreconditionError(absl::StrCat("job ", r.job_id, ": lease ", r.token,
                                                      " is no longer held (attempt ",
                                                      at->outcome, ")"));
  ASSIGN_OR_RETURN(job, tx.store().LoadJob(r.job_id));
  CompletionReply reply;
  reply.duplicate = true;
  if (job) reply.job_state = StateFromName(job->state).value_or(v1::JOB_STATE_UNSPECIFIED);
  return reply;
}

absl::StatusOr<CompletionReply> Engine::CompleteSucceeded(
    Txn& tx, const CompletionReport& r, const LeaseInfo& lease, const std::string& worker,
    const std::optional<CheckedResult>& checked) {
  CompletionReply reply;
  CheckedResult check;
  if (checked) {
    check = *checked;
  } else {
    ASSIGN_OR_RETURN(row, tx.store().LoadJob(r.job_id));
    if (!row) return absl::InternalError(absl::StrCat("job ", r.job_id, " vanished"));
    BatchInfo* b = batches_.ById(lease.batch_id);
    ResultContext ctx{b ? b->name : "", row->dataset_key, row->dataset_name,
                      b ? b->profile_json : "{}", ""};
    ASSIGN_OR_RETURN(md, tx.store().ReadInput(row->input_id));
    ctx.metadata = std::move(md);
    ctx.netlog_json = r.attempt.netlog_json;
    check = opt_.checker(ctx, r.result_json);
  }
  if (!check.errors.empty()) {
    std::string err = absl::StrJoin(check.errors, "\n");
    RETURN_IF_ERROR(FinishAttempt(tx, r.token, AttemptOutcome::kFailed,
                                  v1::FAILURE_CLASS_INVALID_OUTPUT, err, &r));
    ASSIGN_OR_RETURN(row, tx.store().LoadJob(r.job_id));
    if (!row) return absl::InternalError(absl::StrCat("job ", r.job_id, " vanished"));
    ASSIGN_OR_RETURN(next, FailJob(tx, *row, r.token, v1::FAILURE_CLASS_INVALID_OUTPUT, err, 0));
    DropLease(tx, r.job_id);
    reply.job_state = next;
    reply.validation_errors = check.errors;
    return reply;
  }
  nlohmann::json flags = nlohmann::json::array();
  for (auto& f : check.flags) flags.push_back(f);
  RETURN_IF_ERROR(tx.store().InsertResult(r.job_id, r.token, r.result_json, flags.dump(),
                                          tx.now()));
  RETURN_IF_ERROR(FinishAttempt(tx, r.token, AttemptOutcome::kSucceeded, std::nullopt, "", &r));
  RETURN_IF_ERROR(tx.store().SetJobEnded(r.job_id, "succeeded", tx.now()));
  RETURN_IF_ERROR(Event(tx, lease.batch_id, r.job_id, "succeeded", worker));
  limit_changes_.Succeeded(tx, lease.batch_id);
  ReportProviderLimit(tx, limits_.ProviderOfBatch(lease.batch_id));
  DropLease(tx, r.job_id);
  reply.job_state = v1::JOB_STATE_SUCCEEDED;
  return reply;
}

void Engine::Complete(CompletionReport report, std::string worker, Done<CompletionReply> done,
                      std::optional<CheckedResult> checked, int64_t principal) {
  Post<CompletionReply>(
      [this, r = std::move(report), worker, checked,
       principal](Txn& tx) -> absl::StatusOr<CompletionReply> {
        if (!r.outcome)
          return absl::InvalidArgumentError("complete: no outcome given");
        const LeaseInfo* held = leases_.Find(r.job_id);
        if (!held || held->token != r.token) return CompleteUnheld(tx, r);
        RETURN_IF_ERROR(CheckHolder(r.job_id, *held, principal));
        const LeaseInfo lease = *held;
        if (r.outcome == AttemptOutcome::kSucceeded)
          return CompleteSucceeded(tx, r, lease, worker, checked);
        CompletionReply reply;
        if (r.outcome == AttemptOutcome::kReleased) {
          RETURN_IF_ERROR(FinishAttempt(tx, r.token, AttemptOutcome::kReleased, std::nullopt,
                                        r.reason, &r));
          RETURN_IF_ERROR(tx.store().UncountAttempt(r.job_id));
          RETURN_IF_ERROR(RequeueJob(tx, r.job_id, lease.batch_id, false,
                                     absl::StrCat("released by ", worker, ": ", r.reason)));
          DropLease(tx, r.job_id);
          reply.job_state = v1::JOB_STATE_QUEUED;
          return reply;
        }
        if (r.failure_class == v1::FAILURE_CLASS_UNSPECIFIED)
          return absl::InvalidArgumentError("failure without a failure class");
        RETURN_IF_ERROR(
            FinishAttempt(tx, r.token, AttemptOutcome::kFailed, r.failure_class, r.reason, &r));
        ASSIGN_OR_RETURN(row, tx.store().LoadJob(r.job_id));
        if (!row) return absl::InternalError(absl::StrCat("job ", r.job_id, " vanished"));
        ASSIGN_OR_RETURN(next, FailJob(tx, *row, r.token, r.failure_class, r.reason,
                                       r.retry_after_ms));
        DropLease(tx, r.job_id);
        reply.job_state = next;
        return reply;
      },
      std::move(done));
}

// ------------------------------------------------------ expiry and dispatch

absl::Status Engine::ExpireLeases(Txn& tx) {
  while (true) {
    auto first = leases_.FirstExpiry();
    if (!first || first->first > tx.now()) break;
    const int64_t job_id = first->second;
    std::optional<LeaseInfo> lease = leases_.Drop(tx, job_id);
    if (!lease) return absl::InternalError(absl::StrCat("job ", job_id, ": expiry without lease"));
    dispatch_dirty_ = true;
    ASSIGN_OR_RETURN(job, tx.store().LoadJob(job_id));
    if (!job) continue;
    std::string why = absl::StrCat("lease expired: worker ", lease->worker,
                                   " stopped renewing it (lost worker)");
    RETURN_IF_ERROR(FinishAttempt(tx, lease->token, AttemptOutcome::kExpired,
                                  v1::FAILURE_CLASS_INFRA, why, nullptr));
    ASSIGN_OR_RETURN(next, FailJob(tx, *job, lease->token, v1::FAILURE_CLASS_INFRA, why, 0));
    (void)next;
    spdlog::warn("[job={}] {}", job_id, why);
  }
  return absl::OkStatus();
}

absl::Status Engine::Dispatch() {
  dispatch_dirty_ = false;
  // Free slots per connected, non-draining worker.
  auto free = workers_.FreeSlots(leases_);
  int total = 0;
  for (const auto& [session, slots] : free) total += slots;
  if (total == 0) return absl::OkStatus();
  const int64_t now = Now();
  // A batch's budget holds its new starts (server/budget.h); the checks and
  // their hold/resume events are part of the round's transaction.
  RETURN_IF_ERROR(opt_.usage->BeginRound(*db_, now));
  std::map<int64_t, int> running = leases_.ByBatch();  // batch -> leases held
  // Batches that may not start anything now: paused, over budget, or held by
  // a fleet limit (then ask again when its start-rate token or retry-after
  // is due).
  std::vector<int64_t> blocked;
  for (const auto& [id, b] : batches_.all()) {
    ASSIGN_OR_RETURN(budget_ok, opt_.usage->MayStart(*db_, id, running[id], now));
    if (b.paused || !budget_ok) {
      blocked.push_back(id);
      continue;
    }
    FleetLimits::Allowance a = limits_.Allow(id, now);
    if (a.starts > 0) continue;
    blocked.push_back(id);
    if (a.retry_at_ms > 0) NoteReady(a.retry_at_ms);
  }
  ASSIGN_OR_RETURN(ids, store_->ReadyJobs(now, blocked, total));
  // The earliest job not yet ready sets the next wake-up.
  ASSIGN_OR_RETURN(next_ready, store_->NextReadyAt(now));
  if (next_ready) NoteReady(*next_ready);

  size_t next_worker = 0;
  bool held_back = false;
  for (auto [job_id, batch_id] : ids) {
    FleetLimits::Allowance a = limits_.Allow(batch_id, now);
    ASSIGN_OR_RETURN(budget_ok, opt_.usage->MayStart(*db_, batch_id, running[batch_id], now));
    if (!budget_ok) a.starts = 0;
    if (a.starts <= 0) {
      // Its batch reached a limit within this round; the next round leaves
      // that batch out in SQL and fills the slot from another one.
      held_back = true;
      if (a.retry_at_ms > 0) NoteReady(a.retry_at_ms);
      continue;
    }
    // Round-robin over workers with free slots.
    while (free[next_worker % free.size()].second == 0) ++next_worker;
    auto& [session, slots_left] = free[next_worker % free.size()];
    ++next_worker;
    --slots_left;
    auto s = loop_->Atomically(now, [&](Txn& tx) { return LeaseTo(tx, job_id, *session); });
    if (!s.ok()) spdlog::error("[job={}] lease failed: {}", job_id, s.ToString());
    else ++running[batch_id];
  }
  if (held_back) NoteReady(now);
  return absl::OkStatus();
}

absl::Status Engine::LeaseTo(Txn& tx, int64_t job_id, const WorkerTable::Session& session) {
  const int64_t now = tx.now();
  ASSIGN_OR_RETURN(job, tx.store().LoadJob(job_id));
  if (!job) return absl::NotFoundError(absl::StrCat("job ", job_id, " vanished"));
  BatchInfo* b = batches_.ById(job->batch_id);
  const int number = static_cast<int>(job->attempts) + 1;
  const int64_t expires = now + opt_.lease_period_ms;
  ASSIGN_OR_RETURN(token, tx.store().LeaseJob(*job, number, session.worker, now, expires,
                                              session.principal));
  RETURN_IF_ERROR(Event(tx, job->batch_id, job_id, "leased",
                        absl::StrCat(session.worker, " token ", token)));
  if (auto* o = opt_.observer)
    tx.After([o, job_id, ready_at = job->ready_at, now] { o->OnLeased(job_id, ready_at, now); });

  LeaseGrant g{job_id,
               token,
               number,
               b ? b->name : "",
               job->dataset_key,
               job->dataset_name,
               "",
               job->input_sha256,
               b ? b->profile_json : "{}",
               expires,
               {}};
  ASSIGN_OR_RETURN(metadata, tx.store().ReadInput(job->input_id));
  g.metadata = std::move(metadata);
  // The repair loop: the last attempt's validation errors go to the next
  // (a first attempt has none to look for).
  if (number > 1) {
    ASSIGN_OR_RETURN(errors, tx.store().PreviousErrors(job_id, token));
    for (auto& e : absl::StrSplit(errors, '\n', absl::SkipEmpty()))
      g.previous_errors.emplace_back(e);
  }
  leases_.Grant(tx, job_id,
                LeaseInfo{token, session.worker, expires, false, job->batch_id, now,
                          session.principal});
  v1::CoordinatorMessage m = LeaseMessage(g);
  // The job's cap (profile limits.budget) and the prices in force.
  RETURN_IF_ERROR(opt_.usage->FillLease(tx.db(), job->batch_id, job_id, g.profile_json,
                                          m.mutable_lease()));
  tx.After([sink = session.sink, m = std::move(m)] { sink->Push(m); });
  spdlog::debug("[job={}] leased to {} (token {})", job_id, session.worker, token);
  return absl::OkStatus();
}

// ------------------------------------------------------------------- cost

absl::Status Engine::ReportUsage(Txn& tx, absl::StatusOr<std::vector<UsageGrowth>> grew) {
  if (!grew.ok()) return grew.status();
  if (auto* o = opt_.observer; o && !grew->empty())
    tx.After([o, g = std::move(*grew)] {
      for (const auto& x : g) o->OnModelUsage(x.added, x.usd);
    });
  return absl::OkStatus();
}

}  // namespace assessq
