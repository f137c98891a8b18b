#include "server/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/utf8.h"
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
  if (!opt_.usage) opt_.usage = std::make_shared<UsageStore>();  // costsrv
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(EngineOptions opt) {
  std::unique_ptr<Engine> e(new Engine(std::move(opt)));
  ASSIGN_OR_RETURN(db, Db::Open(e->opt_.db_path, {}));
  e->db_ = std::move(db);
  e->store_ = std::make_unique<JobStore>(*e->db_);
  RETURN_IF_ERROR(Migrate(*e->db_));
  RETURN_IF_ERROR(e->Load());
  RETURN_IF_ERROR(e->db_->Exec("PRAGMA wal_autocheckpoint=0"));
  e->effects_thread_ = std::thread([p = e.get()] { p->EffectsLoop(); });
  e->thread_ = std::thread([p = e.get()] { p->Loop(); });
  e->checkpointer_ = std::thread([p = e.get()] { p->CheckpointLoop(); });
  return e;
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  checkpoint_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (checkpointer_.joinable()) checkpointer_.join();
  {
    std::lock_guard<std::mutex> l(effects_mu_);
    effects_stop_ = true;
  }
  effects_cv_.notify_all();
  if (effects_thread_.joinable()) effects_thread_.join();
}

void Engine::EffectsLoop() {
  while (true) {
    std::vector<std::function<void()>> batch;
    {
      std::unique_lock<std::mutex> l(effects_mu_);
      effects_cv_.wait(l, [&] { return effects_stop_ || !effects_q_.empty(); });
      if (effects_q_.empty()) return;  // stopping, and everything ran
      batch = std::move(effects_q_.front());
      effects_q_.pop_front();
    }
    for (auto& fn : batch) fn();
  }
}

void Engine::CheckpointLoop() {
  auto db = Db::Open(opt_.db_path, {});
  if (!db.ok()) {
    spdlog::error("checkpointer: {}; falling back to automatic checkpoints", db.status().ToString());
    PostRaw([this] { (void)db_->Exec("PRAGMA wal_autocheckpoint=1000"); });
    return;
  }
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      if (checkpoint_cv_.wait_for(l, std::chrono::milliseconds(500), [&] { return stop_; })) break;
    }
    // PASSIVE never blocks the writer; frames still in use wait for the next round.
    (void)(*db)->Exec("PRAGMA wal_checkpoint(PASSIVE)");
  }
  (void)(*db)->Exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

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
        group_effects_.push_back([o, name = v.name, limit] { o->OnModelApiLimit(name, limit); });
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
  for (const WorkerRow& r : workers) {
    WorkerMem& w = workers_[r.name];
    w.slots = r.slots;
    w.draining = r.draining;
    w.last_seen = r.last_seen;
  }
  RETURN_IF_ERROR(store_->MarkAllWorkersDisconnected());
  if (!leases_.empty())
    spdlog::info("recovered {} leases; each must be renewed within {} ms", leases_.size(),
                 opt_.lease_period_ms);
  return absl::OkStatus();
}

// ------------------------------------------------------------------ the loop

void Engine::PostRaw(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> l(mu_);
    pending_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

absl::Status Engine::Atomically(const std::function<absl::Status(Txn&)>& op) {
  return Txn::Run(*db_, Now(), group_effects_, op);
}

template <typename T>
void Engine::Post(std::function<absl::StatusOr<T>(Txn&)> op, Done<T> done) {
  PostRaw([this, op = std::move(op), done = std::move(done)]() mutable {
    absl::StatusOr<T> r = absl::UnknownError("not run");
    absl::Status s = Atomically([&](Txn& tx) -> absl::Status {
      r = op(tx);
      return r.status();
    });
    if (!s.ok() && r.ok()) r = s;
    // The reply, after the group commit, whatever the outcome.
    group_effects_.push_back([r = std::move(r), done = std::move(done)]() mutable {
      if (done) done(std::move(r));
    });
  });
}

void Engine::Loop() {
  std::vector<std::function<void()>> batch;
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      int64_t now = Now();
      int64_t wake = now + 1000;
      if (auto first = leases_.FirstExpiry()) wake = std::min(wake, first->first);
      if (next_ready_at_ > 0) wake = std::min(wake, next_ready_at_);
      if (pending_.empty() && !stop_ && wake > now && !dispatch_dirty_)
        cv_.wait_for(l, std::chrono::milliseconds(wake - now),
                     [&] { return stop_ || !pending_.empty(); });
      if (stop_ && pending_.empty()) break;
      batch.swap(pending_);
    }
    if (auto s = db_->Run("BEGIN IMMEDIATE"); !s.ok()) {
      spdlog::critical("cannot begin a transaction: {}", s.ToString());
      std::abort();
    }
    for (auto& fn : batch) fn();
    batch.clear();
    int64_t now = Now();
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
    db_->ResetAll();
    // A failed commit leaves memory ahead of the database; the database is the
    // truth, so stop and let the supervisor restart us from it.
    if (auto s = db_->Run("COMMIT"); !s.ok()) {
      spdlog::critical("commit failed, exiting to recover from the database: {}",
                       s.ToString());
      std::abort();
    }
    if (!group_effects_.empty()) {
      std::vector<std::function<void()>> effects;
      effects.swap(group_effects_);
      {
        std::lock_guard<std::mutex> l(effects_mu_);
        effects_q_.push_back(std::move(effects));
      }
      effects_cv_.notify_one();
    }
  }
  // After every reply and push already queued.
  std::vector<std::function<void()>> closes;
  for (auto& [id, s] : sessions_)
    closes.push_back([sink = s.sink] { sink->Close("coordinator shutting down"); });
  {
    std::lock_guard<std::mutex> l(effects_mu_);
    effects_q_.push_back(std::move(closes));
  }
  effects_cv_.notify_one();
}

// ------------------------------------------------------------------ helpers

absl::Status Engine::Event(Txn& tx, std::optional<int64_t> batch_id,
                           std::optional<int64_t> job_id, absl::string_view kind,
                           absl::string_view detail) {
  return tx.store().AddEvent(tx.now(), batch_id, job_id, kind, detail);
}

absl::StatusOr<BatchInfo*> Engine::NamedBatch(const std::string& name) {
  if (BatchInfo* b = batches_.ByName(name)) return b;
  return absl::NotFoundError(absl::StrCat("no batch '", name, "'"));
}

void Engine::NoteReady(int64_t ready_at) {
  if (ready_at <= Now()) {
    dispatch_dirty_ = true;
  } else if (next_ready_at_ == 0 || ready_at < next_ready_at_) {
    next_ready_at_ = ready_at;
  }
}

void Engine::Push(Txn& tx, const std::string& worker, const v1::CoordinatorMessage& m) {
  auto w = workers_.find(worker);
  if (w == workers_.end() || !w->second.connected) return;
  auto s = sessions_.find(w->second.session_id);
  if (s == sessions_.end()) return;
  tx.After([sink = s->second.sink, m] { sink->Push(m); });
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

absl::Status Engine::FinishAttempt(Txn& tx, int64_t attempt_id, absl::string_view outcome,
                                   std::optional<v1::FailureClass> cls,
                                   const std::string& error, const AttemptReport* report) {
  std::optional<absl::string_view> cls_name;
  if (cls) cls_name = ClassName(*cls);
  RETURN_IF_ERROR(
      tx.store().FinishAttempt(attempt_id, outcome, cls_name, error, tx.now(), report));
  if (auto* o = opt_.observer)
    tx.After([o, out = std::string(outcome), cls] { o->OnAttemptFinished(out, cls); });
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
  RetryDecision d = DecideRetry(policy, cls, failures, retry_after_ms, rng_);
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

absl::Status Engine::CancelJob(Txn& tx, const JobRow& job, const std::string& reason) {
  if (job.current_attempt && (job.state == "leased" || job.state == "running")) {
    RETURN_IF_ERROR(FinishAttempt(tx, *job.current_attempt, "cancelled", std::nullopt, reason,
                                  nullptr));
    if (std::optional<LeaseInfo> lease = leases_.Drop(tx, job.id)) {
      dispatch_dirty_ = true;
      v1::CoordinatorMessage m;
      auto* c = m.mutable_cancel();
      c->set_job_id(job.id);
      c->set_token(lease->token);
      c->set_reason(reason);
      Push(tx, lease->worker, m);
    }
  }
  RETURN_IF_ERROR(tx.store().SetJobCancelled(job.id, tx.now()));
  return Event(tx, job.batch_id, job.id, "cancelled", reason);
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

// --------------------------------------------------------------- operators

absl::StatusOr<BatchInfo*> Engine::EnsureBatch(Txn& tx, const SubmitArgs& a) {
  if (BatchInfo* b = batches_.ByName(a.batch)) {
    const std::string profile = a.profile_json.empty() ? b->profile_json : a.profile_json;
    const RetryPolicy pol = a.policy ? *a.policy : b->policy;
    if (profile != b->profile_json || pol.ToJson() != b->policy.ToJson()) {
      RETURN_IF_ERROR(tx.store().UpdateBatchProfile(b->id, profile, pol.ToJson()));
      RETURN_IF_ERROR(Event(tx, b->id, std::nullopt, "batch_updated", "profile or retry policy"));
      tx.Set(b->profile_json, profile);
      tx.Set(b->policy, pol);
      limit_changes_.ConfigureBatch(tx, *b);
    }
    RETURN_IF_ERROR(ApplyBatchLimits(tx, *b, a.max_running, a.start_rate_per_min));
    return b;
  }
  RetryPolicy pol = a.policy ? *a.policy : RetryPolicy{};
  std::string profile = a.profile_json.empty() ? "{}" : a.profile_json;
  ASSIGN_OR_RETURN(id, tx.store().InsertBatch(a.batch, profile, pol.ToJson(), tx.now()));
  RETURN_IF_ERROR(Event(tx, id, std::nullopt, "batch_created", a.batch));
  batches_.Add(tx, BatchInfo{id, a.batch, profile, pol, false, {}});
  BatchInfo* b = batches_.ById(id);
  limit_changes_.ConfigureBatch(tx, *b);
  RETURN_IF_ERROR(ApplyBatchLimits(tx, *b, a.max_running, a.start_rate_per_min));
  return b;
}

absl::StatusOr<int64_t> Engine::InsertJob(Txn& tx, int64_t batch_id, const SubmitFile& f) {
  ASSIGN_OR_RETURN(id, tx.store().InsertJob(batch_id, f, tx.now()));
  RETURN_IF_ERROR(Event(tx, batch_id, id, "submitted", f.source_name));
  NoteReady(tx.now());
  return id;
}

absl::StatusOr<SubmitItemResult> Engine::SubmitFileTo(Txn& tx, const BatchInfo& batch,
                                                      const SubmitFile& f, bool rerun) {
  SubmitItemResult item{f.source_name, f.dataset_key, SubmitOutcome::kCreated, 0};
  ASSIGN_OR_RETURN(existing_id, tx.store().CurrentJob(batch.id, f.dataset_key));
  if (!existing_id) {
    ASSIGN_OR_RETURN(id, InsertJob(tx, batch.id, f));
    item.job_id = id;
    return item;
  }
  ASSIGN_OR_RETURN(old, tx.store().LoadJob(*existing_id));
  if (!old) return absl::InternalError(absl::StrCat("job ", *existing_id, " vanished"));
  auto state = StateFromName(old->state).value_or(v1::JOB_STATE_UNSPECIFIED);
  const bool same = old->input_sha256 == f.sha256;
  item.job_id = old->id;
  if (same && !rerun) {
    if (state == v1::JOB_STATE_SUCCEEDED) {
      item.outcome = SubmitOutcome::kSkippedSucceeded;
    } else if (InFlight(state)) {
      item.outcome = SubmitOutcome::kSkippedInFlight;
    } else {
      // Gave up or cancelled: the same input runs again, same job.
      RETURN_IF_ERROR(RequeueJob(tx, old->id, batch.id, true, "resubmitted"));
      item.outcome = SubmitOutcome::kRequeued;
    }
    return item;
  }
  // Changed input, or --rerun: the old job is superseded by a new one.
  if (InFlight(state))
    RETURN_IF_ERROR(CancelJob(tx, *old, same ? "superseded by --rerun"
                                             : "superseded by a changed input file"));
  // Marked first, so the new job is the dataset's only current one.
  RETURN_IF_ERROR(tx.store().MarkSuperseded(old->id, -1));
  ASSIGN_OR_RETURN(id, InsertJob(tx, batch.id, f));
  RETURN_IF_ERROR(tx.store().MarkSuperseded(old->id, id));
  item.outcome = SubmitOutcome::kReplaced;
  item.job_id = id;
  return item;
}

void Engine::Submit(SubmitArgs args, Done<SubmitResult> done) {
  auto a = std::make_shared<SubmitArgs>(std::move(args));
  Post<SubmitResult>(
      [this, a](Txn& tx) -> absl::StatusOr<SubmitResult> {
        ASSIGN_OR_RETURN(batch, EnsureBatch(tx, *a));
        SubmitResult out;
        for (const SubmitFile& f : a->files) {
          ASSIGN_OR_RETURN(item, SubmitFileTo(tx, *batch, f, a->rerun));
          out.push_back(std::move(item));
        }
        return out;
      },
      std::move(done));
}

void Engine::Retry(RetryOrder order, Done<int64_t> done) {
  Post<int64_t>(
      [this, order](Txn& tx) -> absl::StatusOr<int64_t> {
        std::vector<std::pair<int64_t, int64_t>> ids;  // (job, batch)
        if (order.job.given()) {
          ASSIGN_OR_RETURN(job, tx.store().FindJob(order.job));
          if (!job) return absl::NotFoundError("no such job");
          if (job->superseded)
            return absl::FailedPreconditionError(absl::StrCat(
                "job ", job->id, " was superseded by a newer submission of its dataset"));
          if (job->state != "needs_attention" && job->state != "cancelled")
            return absl::FailedPreconditionError(absl::StrCat(
                "job ", job->id, " is ", job->state, "; only needs_attention or cancelled "
                "jobs can be retried"));
          ids.push_back({job->id, job->batch_id});
        } else {
          ASSIGN_OR_RETURN(b, NamedBatch(order.batch));
          std::optional<absl::string_view> cls;
          if (order.failure_class) cls = ClassName(*order.failure_class);
          ASSIGN_OR_RETURN(found, tx.store().JobsNeedingAttention(b->id, cls));
          for (int64_t id : found) ids.push_back({id, b->id});
        }
        for (auto [job, batch] : ids)
          RETURN_IF_ERROR(RequeueJob(tx, job, batch, true, "retried by operator"));
        return static_cast<int64_t>(ids.size());
      },
      std::move(done));
}

void Engine::Cancel(CancelOrder order, Done<int64_t> done) {
  Post<int64_t>(
      [this, order](Txn& tx) -> absl::StatusOr<int64_t> {
        std::vector<JobRow> jobs;
        if (order.job.given()) {
          ASSIGN_OR_RETURN(job, tx.store().FindJob(order.job));
          if (!job) return absl::NotFoundError("no such job");
          auto st = StateFromName(job->state).value_or(v1::JOB_STATE_UNSPECIFIED);
          if (!InFlight(st))
            return absl::FailedPreconditionError(
                absl::StrCat("job ", job->id, " is already ", job->state));
          jobs.push_back(*job);
        } else {
          ASSIGN_OR_RETURN(b, NamedBatch(order.batch));
          ASSIGN_OR_RETURN(ids, tx.store().JobsInFlight(b->id));
          for (int64_t id : ids) {
            ASSIGN_OR_RETURN(j, tx.store().LoadJob(id));
            if (j) jobs.push_back(*j);
          }
        }
        for (const auto& j : jobs) RETURN_IF_ERROR(CancelJob(tx, j, "cancelled by operator"));
        return static_cast<int64_t>(jobs.size());
      },
      std::move(done));
}

void Engine::SetPaused(std::string batch, bool paused, Done<bool> done) {
  Post<bool>(
      [this, batch, paused](Txn& tx) -> absl::StatusOr<bool> {
        ASSIGN_OR_RETURN(b, NamedBatch(batch));
        RETURN_IF_ERROR(tx.store().SetBatchPaused(b->id, paused));
        RETURN_IF_ERROR(Event(tx, b->id, std::nullopt, paused ? "paused" : "resumed", ""));
        tx.Set(b->paused, paused);
        dispatch_dirty_ = true;
        return true;
      },
      std::move(done));
}

void Engine::DrainWorker(std::string worker, bool drain, Done<bool> done) {
  Post<bool>(
      [this, worker, drain](Txn& tx) -> absl::StatusOr<bool> {
        auto it = workers_.find(worker);
        if (it == workers_.end())
          return absl::NotFoundError(absl::StrCat("no worker '", worker, "'"));
        RETURN_IF_ERROR(tx.store().SetWorkerDraining(worker, drain));
        tx.Set(it->second.draining, drain);
        dispatch_dirty_ = true;
        v1::CoordinatorMessage m;
        m.mutable_drain()->set_reason(drain ? "drained by operator" : "undrained by operator");
        m.mutable_drain()->set_undrain(!drain);
        Push(tx, worker, m);
        return true;
      },
      std::move(done));
}

absl::Status Engine::ApplyBatchLimits(Txn& tx, BatchInfo& b, std::optional<int> max_running,
                                      std::optional<double> start_rate_per_min) {
  LimitConfig next = b.limits;
  if (max_running) next.max_running = *max_running;
  if (start_rate_per_min) next.start_rate_per_min = *start_rate_per_min;
  if (next.max_running < 0 || next.start_rate_per_min < 0 ||
      !std::isfinite(next.start_rate_per_min))
    return absl::InvalidArgumentError("limits must be 0 (none) or positive");
  if (next == b.limits) return absl::OkStatus();
  RETURN_IF_ERROR(tx.store().SetBatchLimits(b.id, next));
  RETURN_IF_ERROR(Event(tx, b.id, std::nullopt, "limits",
                        absl::StrCat("max_running=", next.max_running,
                                     " start_rate_per_min=", next.start_rate_per_min)));
  tx.Set(b.limits, next);
  limit_changes_.ConfigureBatch(tx, b);
  dispatch_dirty_ = true;
  return absl::OkStatus();
}

void Engine::SetLimits(LimitsOrder order, Done<std::vector<LimitView>> done) {
  Post<std::vector<LimitView>>(
      [this, order](Txn& tx) -> absl::StatusOr<std::vector<LimitView>> {
        if (!order.batch.empty() && !order.provider.empty())
          return absl::InvalidArgumentError("limits: give a batch or a provider, not both");
        if (!order.batch.empty()) {
          BatchInfo* b = batches_.ByName(order.batch);
          if (!b) return absl::NotFoundError(absl::StrCat("no batch named ", order.batch));
          RETURN_IF_ERROR(
              ApplyBatchLimits(tx, *b, order.max_running, order.start_rate_per_min));
        } else if (!order.provider.empty()) {
          LimitConfig next = limits_.ProviderConfig(order.provider);
          if (order.max_running) next.max_running = *order.max_running;
          if (order.start_rate_per_min) next.start_rate_per_min = *order.start_rate_per_min;
          if (next.max_running < 0 || next.start_rate_per_min < 0 ||
              !std::isfinite(next.start_rate_per_min))
            return absl::InvalidArgumentError("limits must be 0 (none) or positive");
          RETURN_IF_ERROR(tx.store().SetProviderLimits(order.provider, next));
          RETURN_IF_ERROR(Event(tx, std::nullopt, std::nullopt, "provider_limits",
                                absl::StrCat(order.provider, " max_running=", next.max_running,
                                             " start_rate_per_min=", next.start_rate_per_min)));
          limit_changes_.ConfigureProvider(tx, order.provider, next);
          ReportProviderLimit(tx, order.provider);
          dispatch_dirty_ = true;
        }
        return limits_.View(tx.now());
      },
      std::move(done));
}

void Engine::ListWorkers(Done<std::vector<WorkerView>> done) {
  Post<std::vector<WorkerView>>(
      [this](Txn&) -> absl::StatusOr<std::vector<WorkerView>> {
        std::vector<WorkerView> out;
        for (const auto& [name, w] : workers_)
          out.push_back(WorkerView{name, w.slots, leases_.InUse(name), w.connected, w.last_seen,
                                   w.draining});
        return out;
      },
      std::move(done));
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
        auto known = workers_.find(worker);
        WorkerMem w = known == workers_.end() ? WorkerMem{} : known->second;
        // A worker that reconnects replaces its old session.
        if (w.connected) {
          auto old = sessions_.find(w.session_id);
          if (old != sessions_.end()) {
            tx.After([old_sink = old->second.sink] {
              old_sink->Close("replaced by a newer session");
            });
            tx.Erase(sessions_, w.session_id);
          }
        }
        const int64_t id = next_session_id_++;  // (ids are never reused, even after a rollback)
        tx.Insert(sessions_, id, Session{id, worker, slots, sink, principal});
        w.slots = slots;
        w.connected = true;  // a drained worker stays drained until undrained
        w.last_seen = tx.now();
        w.session_id = id;
        tx.Insert(workers_, worker, w);
        if (w.draining) {
          // Tell it again: it may have restarted since.
          v1::CoordinatorMessage m;
          m.mutable_drain()->set_reason("drained by operator");
          tx.After([sink, m] { sink->Push(m); });
        }
        dispatch_dirty_ = true;
        spdlog::info("worker {} connected with {} slots ({} leases held)", worker, slots,
                     leases_.InUse(worker));
        return id;
      },
      std::move(done));
}

void Engine::SetCapacity(int64_t session_id, int slots) {
  PostRaw([this, session_id, slots] {
    auto s = sessions_.find(session_id);
    if (s == sessions_.end()) return;
    s->second.slots = slots;
    WorkerMem& w = workers_[s->second.worker];
    w.slots = slots;
    w.last_seen = Now();
    dispatch_dirty_ = true;
  });
}

void Engine::CloseSession(int64_t session_id) {
  PostRaw([this, session_id] {
    auto s = sessions_.find(session_id);
    if (s == sessions_.end()) return;
    const std::string worker = s->second.worker;
    // The stream is gone whatever the database says: nothing more is pushed on it.
    sessions_.erase(s);
    if (workers_[worker].session_id != session_id) return;  // already replaced
    auto st = Atomically([&](Txn& tx) -> absl::Status {
      RETURN_IF_ERROR(tx.store().WorkerDisconnected(worker, tx.now()));
      WorkerMem& w = workers_[worker];
      tx.Set(w.connected, false);
      tx.Set(w.last_seen, tx.now());
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
        const int64_t expires = tx.now() + opt_.lease_period_ms;
        const bool starts_running = hb.running && !l->running;
        tx.Set(workers_[l->worker].last_seen, tx.now());
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
  static constexpr absl::string_view kOutcome[] = {"", "succeeded", "failed", "released"};
  const absl::string_view want = kOutcome[static_cast<int>(r.outcome)];
  // (A result we judged invalid was recorded as an invalid_output failure.)
  const bool same = at->outcome == want ||
                    (want == "succeeded" && at->outcome == "failed" &&
                     at->failure_class == ClassName(v1::FAILURE_CLASS_INVALID_OUTPUT));
  if (at->outcome == "leased" || at->outcome == "running" || !same)
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
    RETURN_IF_ERROR(FinishAttempt(tx, r.token, "failed", v1::FAILURE_CLASS_INVALID_OUTPUT, err,
                                  &r.attempt));
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
  RETURN_IF_ERROR(FinishAttempt(tx, r.token, "succeeded", std::nullopt, "", &r.attempt));
  RETURN_IF_ERROR(tx.store().SetJobSucceeded(r.job_id, tx.now()));
  RETURN_IF_ERROR(Event(tx, lease.batch_id, r.job_id, "succeeded", worker));
  limit_changes_.Succeeded(tx, lease.batch_id);
  ReportProviderLimit(tx, limits_.ProviderOfBatch(lease.batch_id));
  DropLease(tx, r.job_id);
  reply.job_state = v1::JOB_STATE_SUCCEEDED;
  return reply;
}

void Engine::Complete(CompletionReport report, std::string worker, Done<CompletionReply> done,
                      std::optional<CheckedResult> checked, int64_t principal) {
  using Outcome = CompletionReport::Outcome;
  Post<CompletionReply>(
      [this, r = std::move(report), worker, checked,
       principal](Txn& tx) -> absl::StatusOr<CompletionReply> {
        if (r.outcome == Outcome::kNone)
          return absl::InvalidArgumentError("complete: no outcome given");
        const LeaseInfo* held = leases_.Find(r.job_id);
        if (!held || held->token != r.token) return CompleteUnheld(tx, r);
        RETURN_IF_ERROR(CheckHolder(r.job_id, *held, principal));
        const LeaseInfo lease = *held;
        if (r.outcome == Outcome::kSucceeded)
          return CompleteSucceeded(tx, r, lease, worker, checked);
        CompletionReply reply;
        if (r.outcome == Outcome::kReleased) {
          RETURN_IF_ERROR(FinishAttempt(tx, r.token, "released", std::nullopt, r.reason,
                                        &r.attempt));
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
            FinishAttempt(tx, r.token, "failed", r.failure_class, r.reason, &r.attempt));
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
    RETURN_IF_ERROR(FinishAttempt(tx, lease->token, "expired", v1::FAILURE_CLASS_INFRA, why,
                                  nullptr));
    ASSIGN_OR_RETURN(next, FailJob(tx, *job, lease->token, v1::FAILURE_CLASS_INFRA, why, 0));
    (void)next;
    spdlog::warn("[job={}] {}", job_id, why);
  }
  return absl::OkStatus();
}

absl::Status Engine::Dispatch() {
  dispatch_dirty_ = false;
  // Free slots per connected, non-draining worker.
  std::vector<std::pair<const Session*, int>> free;
  int total = 0;
  for (auto& [id, s] : sessions_) {
    const WorkerMem& w = workers_[s.worker];
    if (w.draining || w.session_id != id) continue;
    int f = s.slots - leases_.InUse(s.worker);
    if (f > 0) {
      free.push_back({&s, f});
      total += f;
    }
  }
  if (total == 0) return absl::OkStatus();
  const int64_t now = Now();
  // Batches that may not start anything now: paused, or held by a fleet
  // limit (then ask again when its start-rate token or retry-after is due).
  std::vector<int64_t> blocked;
  for (const auto& [id, b] : batches_.all()) {
    if (b.paused) {
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
    ASSIGN_OR_RETURN(budget_ok, opt_.usage->MayStart(*db_, batch_id, running[batch_id], now));  // costsrv
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
    auto s = Txn::Run(*db_, now, group_effects_,
                      [&](Txn& tx) { return LeaseTo(tx, job_id, *session); });
    if (!s.ok()) spdlog::error("[job={}] lease failed: {}", job_id, s.ToString());
    else ++running[batch_id];  // costsrv
  }
  if (held_back) NoteReady(now);
  return absl::OkStatus();
}

absl::Status Engine::LeaseTo(Txn& tx, int64_t job_id, const Session& session) {
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

  v1::CoordinatorMessage m;
  v1::Lease* l = m.mutable_lease();
  l->set_job_id(job_id);
  l->set_token(token);
  l->set_attempt_number(number);
  l->set_batch(b ? b->name : "");
  l->set_dataset_key(job->dataset_key);
  l->set_dataset_name(job->dataset_name);
  l->set_metadata_sha256(job->input_sha256);
  l->set_profile_json(b ? b->profile_json : "{}");
  l->set_lease_expires_at_ms(expires);
  ASSIGN_OR_RETURN(metadata, tx.store().ReadInput(job->input_id));
  l->set_metadata(std::move(metadata));
  // The repair loop: the last attempt's validation errors go to the next
  // (a first attempt has none to look for).
  if (number > 1) {
    ASSIGN_OR_RETURN(errors, tx.store().PreviousErrors(job_id, token));
    for (auto& e : absl::StrSplit(errors, '\n', absl::SkipEmpty()))
      l->add_previous_errors(std::string(e));
  }
  leases_.Grant(tx, job_id,
                LeaseInfo{token, session.worker, expires, false, job->batch_id, now,
                          session.principal});
  tx.After([sink = session.sink, m = std::move(m)] { sink->Push(m); });
  spdlog::debug("[job={}] leased to {} (token {})", job_id, session.worker, token);
  return absl::OkStatus();
}

// ------------------------------------------------------------- costsrv: cost

absl::Status Engine::ReportUsage(absl::StatusOr<std::vector<UsageGrowth>> grew) {
  if (!grew.ok()) return grew.status();
  if (auto* o = opt_.observer; o && !grew->empty())
    AfterCommit([o, g = std::move(*grew)] {
      for (const auto& x : g) o->OnModelUsage(x.added, x.usd);
    });
  return absl::OkStatus();
}

void Engine::SetBudget(std::string batch, double budget_usd, Done<bool> done) {
  Post<bool>(
      [this, batch, budget_usd]() -> absl::StatusOr<bool> {
        for (auto& [id, b] : batches_) {
          if (b.name != batch) continue;
          RETURN_IF_ERROR(opt_.usage->SetBudget(*db_, id, budget_usd, Now()));
          dispatch_dirty_ = true;
          return true;
        }
        return absl::NotFoundError(absl::StrCat("no batch '", batch, "'"));
      },
      std::move(done));
}

}  // namespace assessq
