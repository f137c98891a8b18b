#include "absl/strings/string_view.h"
#include "server/engine.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
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

namespace {
#define JOB_COLS                                                                     \
  "SELECT id, batch_id, dataset_key, dataset_name, input_sha256, state, retry_epoch, " \
  "current_attempt, coalesce(worker,''), superseded_by IS NOT NULL, attempts, "       \
  "input_id, ready_at FROM jobs "

std::string OutcomeFor(const v1::CompleteRequest& r) {
  switch (r.outcome_case()) {
    case v1::CompleteRequest::kResultJson: return "succeeded";
    case v1::CompleteRequest::kFailure: return "failed";
    case v1::CompleteRequest::kRelease: return "released";
    default: return "";
  }
}
}  // namespace

#define RETURN_IF_ERROR(expr)              \
  do {                                     \
    if (auto _s = (expr); !_s.ok()) return _s; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr)             \
  auto lhs##_or = (expr);                       \
  if (!lhs##_or.ok()) return lhs##_or.status(); \
  auto lhs = std::move(*lhs##_or)

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
  auto db = Db::Open(e->opt_.db_path, {});
  if (!db.ok()) return db.status();
  e->db_ = std::move(*db);
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
  ASSIGN_OR_RETURN(bs, db_->Prepare(
                           "SELECT id, name, profile_json, retry_policy_json, paused, "
                           "max_running, start_rate_per_min FROM batches"));
  while (true) {
    ASSIGN_OR_RETURN(row, bs->Step());
    if (!row) break;
    auto pol = RetryPolicy::FromJson(bs->Text(3));
    if (!pol.ok()) return pol.status();
    BatchInfo b{bs->Int(0), bs->Text(1), bs->Text(2), *pol, bs->Int(4) != 0,
                LimitConfig{static_cast<int>(bs->Int(5)), bs->Double(6)}};
    limits_.ConfigureBatch(b.id, b.name, FleetLimits::ProviderOf(b.profile_json), b.limits);
    batches_.emplace(b.id, std::move(b));
  }
  ASSIGN_OR_RETURN(pl, db_->Prepare(
                           "SELECT name, max_running, start_rate_per_min FROM provider_limits"));
  while (true) {
    ASSIGN_OR_RETURN(row, pl->Step());
    if (!row) break;
    limits_.ConfigureProvider(pl->Text(0),
                              LimitConfig{static_cast<int>(pl->Int(1)), pl->Double(2)});
  }
  for (const auto& v : limits_.View(Now()))
    if (v.scope == "provider") ReportProviderLimit(v.name);
  // Leases survive a restart with the time they had left when the
  // coordinator stopped (their clocks stand still while it is down), so
  // connected workers renew them as before and a dead worker's run out one
  // lease period after its last heartbeat, however often we restart. Leases
  // stored without an expiry (before schema v4) get a fresh period.
  int64_t now = Now();
  int64_t downtime = 0;
  ASSIGN_OR_RETURN(ck, db_->Prepare("SELECT alive_at FROM engine_clock WHERE id=1"));
  ASSIGN_OR_RETURN(ckrow, ck->Step());
  if (ckrow) downtime = std::max<int64_t>(0, now - ck->Int(0));
  ck->Reset();
  ASSIGN_OR_RETURN(ls, db_->Prepare(
                           "SELECT j.id, j.current_attempt, coalesce(j.worker,''), j.state, "
                           "j.batch_id, coalesce(a.token_id, 0), coalesce(j.lease_expires_at, 0) "
                           "FROM jobs j LEFT JOIN attempts a ON a.id=j.current_attempt "
                           "WHERE j.state IN ('leased','running')"));
  while (true) {
    ASSIGN_OR_RETURN(row, ls->Step());
    if (!row) break;
    int64_t job = ls->Int(0);
    const int64_t stored = ls->Int(6);
    const int64_t expires = stored > 0 ? stored + downtime : now + opt_.lease_period_ms;
    LeaseInfo li{ls->Int(1), ls->Text(2), expires, ls->Text(3) == "running",
                 ls->Int(4), 0, ls->Int(5)};
    limits_.OnStart(li.batch_id, now, /*recovered=*/true);
    expiries_.insert({li.expires_at, job});
    ++in_use_[li.worker];
    live_logs_.Open(job, li.token, li.principal);
    leases_.emplace(job, std::move(li));
  }
  ASSIGN_OR_RETURN(ws, db_->Prepare("SELECT name, slots, draining, last_seen FROM workers"));
  while (true) {
    ASSIGN_OR_RETURN(row, ws->Step());
    if (!row) break;
    WorkerMem& w = workers_[ws->Text(0)];
    w.slots = static_cast<int>(ws->Int(1));
    w.draining = ws->Int(2) != 0;
    w.last_seen = ws->Int(3);
  }
  RETURN_IF_ERROR(db_->Exec("UPDATE workers SET connected=0"));
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

absl::Status Engine::Atomically(const std::function<absl::Status()>& fn) {
  RETURN_IF_ERROR(db_->Run("SAVEPOINT op"));
  const size_t mark = after_commit_.size();
  std::vector<std::function<void()>> outer;
  outer.swap(undo_);
  absl::Status s = fn();
  if (!s.ok()) {
    (void)db_->Run("ROLLBACK TO op");
    after_commit_.erase(after_commit_.begin() + static_cast<std::ptrdiff_t>(mark),
                        after_commit_.end());
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (*it)();
    undo_.clear();
  }
  for (auto& u : undo_) outer.push_back(std::move(u));
  undo_ = std::move(outer);
  if (auto r = db_->Run("RELEASE op"); !r.ok() && s.ok()) return r;
  return s;
}

template <typename T>
void Engine::Post(std::function<absl::StatusOr<T>()> fn, Done<T> done) {
  PostRaw([this, fn = std::move(fn), done = std::move(done)]() mutable {
    absl::StatusOr<T> r = absl::UnknownError("not run");
    absl::Status s = Atomically([&]() -> absl::Status {
      r = fn();
      return r.status();
    });
    if (!s.ok() && r.ok()) r = s;
    AfterCommit([r = std::move(r), done = std::move(done)]() mutable {
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
      if (!expiries_.empty()) wake = std::min(wake, expiries_.begin()->first);
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
    if (!expiries_.empty() && expiries_.begin()->first <= now) {
      if (auto s = Atomically([&] { return ExpireLeases(); }); !s.ok()) spdlog::error("lease expiry: {}", s.ToString());
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
      auto s = Atomically([&]() -> absl::Status {
        ASSIGN_OR_RETURN(st, db_->Prepare(
                                 "INSERT INTO engine_clock(id, alive_at) VALUES(1, ?) "
                                 "ON CONFLICT(id) DO UPDATE SET alive_at=excluded.alive_at"));
        st->Bind(1, now);
        return st->Run();
      });
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
    undo_.clear();
    if (!after_commit_.empty()) {
      std::vector<std::function<void()>> effects;
      effects.swap(after_commit_);
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

absl::Status Engine::Event(std::optional<int64_t> batch_id, std::optional<int64_t> job_id,
                           absl::string_view kind, absl::string_view detail) {
  ASSIGN_OR_RETURN(st, db_->Prepare(
                           "INSERT INTO events(ts, batch_id, job_id, kind, detail) "
                           "VALUES(?,?,?,?,?)"));
  st->Bind(1, Now()).Bind(2, batch_id).Bind(3, job_id).Bind(4, kind).Bind(5, detail);
  return st->Run();
}

Engine::BatchInfo* Engine::BatchById(int64_t id) {
  auto it = batches_.find(id);
  return it == batches_.end() ? nullptr : &it->second;
}

int Engine::InUse(const std::string& worker) const {
  auto it = in_use_.find(worker);
  return it == in_use_.end() ? 0 : it->second;
}

void Engine::NoteReady(int64_t ready_at) {
  if (ready_at <= Now()) {
    dispatch_dirty_ = true;
  } else if (next_ready_at_ == 0 || ready_at < next_ready_at_) {
    next_ready_at_ = ready_at;
  }
}

absl::StatusOr<std::optional<Engine::JobRow>> Engine::LoadJob(int64_t id) {
  ASSIGN_OR_RETURN(st, db_->Prepare(JOB_COLS "WHERE id=?"));
  st->Bind(1, id);
  ASSIGN_OR_RETURN(row, st->Step());
  if (!row) return std::optional<JobRow>();
  JobRow j{st->Int(0),  st->Int(1),  st->Text(2), st->Text(3), st->Text(4),
           st->Text(5), st->Int(6), std::nullopt, st->Text(8), st->Int(9) != 0,
           st->Int(10), st->Int(11), st->Int(12)};
  if (!st->IsNull(7)) j.current_attempt = st->Int(7);
  st->Reset();
  return std::optional<JobRow>(std::move(j));
}

absl::StatusOr<std::string> Engine::ReadInput(const JobRow& job) {
  ASSIGN_OR_RETURN(in, db_->Prepare("SELECT content FROM inputs WHERE id=?"));
  in->Bind(1, job.input_id);
  ASSIGN_OR_RETURN(row, in->Step());
  std::string content = row ? in->Text(0) : std::string();
  in->Reset();
  return content;
}

absl::StatusOr<std::optional<Engine::JobRow>> Engine::FindJob(const v1::JobRef& ref) {
  if (ref.job_id() > 0) return LoadJob(ref.job_id());
  ASSIGN_OR_RETURN(st, db_->Prepare(
                           "SELECT j.id FROM jobs j JOIN batches b ON b.id=j.batch_id "
                           "WHERE b.name=? AND j.dataset_key=? AND j.superseded_by IS NULL"));
  st->Bind(1, ref.batch()).Bind(2, ref.dataset_key());
  ASSIGN_OR_RETURN(row, st->Step());
  if (!row) return std::optional<JobRow>();
  int64_t id = st->Int(0);
  st->Reset();
  return LoadJob(id);
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

void Engine::DropLease(int64_t job_id) {
  auto it = leases_.find(job_id);
  if (it == leases_.end()) return;
  OnRollback([this, job_id, l = it->second] {
    leases_[job_id] = l;
    live_logs_.Open(job_id, l.token, l.principal);
    ++in_use_[l.worker];
    expiries_.insert({l.expires_at, job_id});
    limits_.OnStart(l.batch_id, 0, /*recovered=*/true);
  });
  limits_.OnEnd(it->second.batch_id);
  live_logs_.Close(it->second.token, Now());
  expiries_.erase({it->second.expires_at, job_id});
  if (--in_use_[it->second.worker] <= 0) in_use_.erase(it->second.worker);
  leases_.erase(it);
  dispatch_dirty_ = true;  // a slot came free
}

absl::Status Engine::FinishAttempt(int64_t attempt_id, absl::string_view outcome,
                                   std::optional<v1::FailureClass> cls,
                                   const std::string& error,
                                   const v1::CompleteRequest* r) {
  ASSIGN_OR_RETURN(st, db_->Prepare(
                           "UPDATE attempts SET outcome=?, failure_class=?, error=?, ended_at=?, "
                           "exit_code=?, log_tail=?, netlog_json=?, details_json=?, "
                           "started_at=coalesce(started_at, ?) WHERE id=?"));
  st->Bind(1, outcome);
  if (cls) st->Bind(2, ClassName(*cls)); else st->BindNull(2);
  st->Bind(3, error).Bind(4, Now());
  if (r) {
    st->Bind(5, r->exit_code()).Bind(6, r->log_tail()).Bind(7, r->netlog_json())
        .Bind(8, r->details_json());
    if (r->started_at_ms() > 0) st->Bind(9, r->started_at_ms()); else st->BindNull(9);
  } else {
    st->BindNull(5).BindNull(6).BindNull(7).BindNull(8).BindNull(9);
  }
  st->Bind(10, attempt_id);
  RETURN_IF_ERROR(st->Run());
  // costsrv: the attempt's final usage and the agent's own cost figure.
  if (r) RETURN_IF_ERROR(ReportUsage(opt_.usage->RecordCompletion(*db_, attempt_id, *r)));
  if (auto* o = opt_.observer) AfterCommit([o, out = std::string(outcome), cls] { o->OnAttemptFinished(out, cls); });
  return absl::OkStatus();
}

absl::Status Engine::RequeueJob(int64_t job_id, int64_t batch_id, bool new_epoch,
                                absl::string_view why) {
  ASSIGN_OR_RETURN(st, db_->Prepare(
                           "UPDATE jobs SET state='queued', ready_at=?, current_attempt=NULL, "
                           "retry_epoch=retry_epoch+?, updated_at=? WHERE id=?"));
  int64_t now = Now();
  st->Bind(1, now).Bind(2, new_epoch ? 1 : 0).Bind(3, now).Bind(4, job_id);
  RETURN_IF_ERROR(st->Run());
  RETURN_IF_ERROR(Event(batch_id, job_id, "requeued", why));
  NoteReady(now);
  return absl::OkStatus();
}

absl::StatusOr<v1::JobState> Engine::FailJob(const JobRow& job, int64_t attempt_id,
                                             v1::FailureClass cls, const std::string& error,
                                             int64_t retry_after_ms) {
  BatchInfo* b = BatchById(job.batch_id);
  RetryPolicy policy = b ? b->policy : RetryPolicy{};
  ASSIGN_OR_RETURN(cnt, db_->Prepare(
                            "SELECT count(*) FROM attempts WHERE job_id=? AND retry_epoch=? "
                            "AND failure_class=?"));
  cnt->Bind(1, job.id).Bind(2, job.retry_epoch).Bind(3, ClassName(cls));
  ASSIGN_OR_RETURN(row, cnt->Step());
  int failures = row ? static_cast<int>(cnt->Int(0)) : 1;
  cnt->Reset();
  // A worker's number: capped before it delays anything.
  retry_after_ms = FleetLimits::CapRetryAfter(retry_after_ms);
  RetryDecision d = DecideRetry(policy, cls, failures, retry_after_ms, rng_, error);
  int64_t now = Now();
  if (cls == v1::FAILURE_CLASS_MODEL_API) {
    // The whole fleet slows down for this provider (AIMD), not just this job.
    auto lease = leases_.find(job.id);
    int64_t leased_at = lease == leases_.end() ? 0 : lease->second.leased_at;
    OnRollback([this, m = limits_.Save(job.batch_id)] { limits_.Restore(m); });
    const std::string provider = limits_.ProviderOfBatch(job.batch_id);
    int before = limits_.ProviderLimit(provider);
    limits_.OnModelApiFailure(job.batch_id, leased_at, retry_after_ms, now,
                              absl::StrCat("job ", job.id, ": ", TruncateUtf8(error, 120)), job.id);
    int after = limits_.ProviderLimit(provider);
    if (after != before) {
      ReportProviderLimit(provider);
      spdlog::warn("[job={}] model API pushed back; fleet limit for {} {} -> {}, "
                   "retry-after {} ms", job.id, provider,
                   before == 0 ? std::string("none") : absl::StrCat(before), after,
                   retry_after_ms);
    }
    dispatch_dirty_ = true;
  }
  ASSIGN_OR_RETURN(up, db_->Prepare(
                           "UPDATE jobs SET state=?, ready_at=?, current_attempt=NULL, "
                           "last_failure_class=?, last_error=?, updated_at=? WHERE id=?"));
  v1::JobState next = d.give_up ? v1::JOB_STATE_NEEDS_ATTENTION : v1::JOB_STATE_QUEUED;
  up->Bind(1, StateName(next)).Bind(2, now + d.delay_ms).Bind(3, ClassName(cls))
      .Bind(4, TruncateUtf8(error, 4000)).Bind(5, now).Bind(6, job.id);
  RETURN_IF_ERROR(up->Run());
  RETURN_IF_ERROR(Event(job.batch_id, job.id, "failed",
                        absl::StrCat(ClassName(cls), ": ", TruncateUtf8(error, 500))));
  if (d.give_up) {
    RETURN_IF_ERROR(Event(job.batch_id, job.id, "needs_attention",
                          absl::StrCat(ClassName(cls), " after ", failures, " attempt(s)")));
    spdlog::warn("[job={}] needs attention: {} after {} attempt(s): {}", job.id,
                 ClassName(cls), failures, TruncateUtf8(error, 200));
  } else {
    NoteReady(now + d.delay_ms);
    spdlog::info("[job={}] attempt {} failed ({}), retry in {} ms", job.id, attempt_id,
                 ClassName(cls), d.delay_ms);
  }
  (void)attempt_id;
  return next;
}

absl::Status Engine::CancelJob(const JobRow& job, const std::string& reason) {
  int64_t now = Now();
  if (job.current_attempt && (job.state == "leased" || job.state == "running")) {
    RETURN_IF_ERROR(FinishAttempt(*job.current_attempt, "cancelled", std::nullopt, reason,
                                  nullptr));
    auto lease = leases_.find(job.id);
    if (lease != leases_.end()) {
      const std::string worker = lease->second.worker;
      int64_t token = lease->second.token;
      DropLease(job.id);
      auto w = workers_.find(worker);
      if (w != workers_.end() && w->second.connected) {
        auto s = sessions_.find(w->second.session_id);
        if (s != sessions_.end()) {
          v1::CoordinatorMessage m;
          auto* c = m.mutable_cancel();
          c->set_job_id(job.id);
          c->set_token(token);
          c->set_reason(reason);
          auto sink = s->second.sink;
          AfterCommit([sink, m] { sink->Push(m); });
        }
      }
    }
  }
  ASSIGN_OR_RETURN(st, db_->Prepare(
                           "UPDATE jobs SET state='cancelled', current_attempt=NULL, "
                           "updated_at=? WHERE id=?"));
  st->Bind(1, now).Bind(2, job.id);
  RETURN_IF_ERROR(st->Run());
  return Event(job.batch_id, job.id, "cancelled", reason);
}

// --------------------------------------------------------------- operators

absl::StatusOr<Engine::BatchInfo*> Engine::EnsureBatch(const SubmitArgs& a) {
  for (auto& [id, b] : batches_) {
    if (b.name != a.batch) continue;
    bool changed = false;
    if (!a.profile_json.empty() && a.profile_json != b.profile_json) changed = true;
    if (a.policy && a.policy->ToJson() != b.policy.ToJson()) changed = true;
    if (changed) {
      ASSIGN_OR_RETURN(st, db_->Prepare(
                               "UPDATE batches SET profile_json=?, retry_policy_json=? WHERE id=?"));
      std::string profile = a.profile_json.empty() ? b.profile_json : a.profile_json;
      RetryPolicy pol = a.policy ? *a.policy : b.policy;
      st->Bind(1, profile).Bind(2, pol.ToJson()).Bind(3, id);
      RETURN_IF_ERROR(st->Run());
      RETURN_IF_ERROR(Event(id, std::nullopt, "batch_updated", "profile or retry policy"));
      OnRollback([this, &b, old_profile = b.profile_json, old_policy = b.policy] {
        b.profile_json = old_profile;
        b.policy = old_policy;
        limits_.ConfigureBatch(b.id, b.name, FleetLimits::ProviderOf(b.profile_json), b.limits);
      });
      limits_.ConfigureBatch(b.id, b.name, FleetLimits::ProviderOf(profile), b.limits);
      b.profile_json = profile;
      b.policy = pol;
    }
    RETURN_IF_ERROR(ApplyBatchLimits(b, a.max_running, a.start_rate_per_min));
    return &b;
  }
  ASSIGN_OR_RETURN(st, db_->Prepare(
                           "INSERT INTO batches(name, profile_json, retry_policy_json, "
                           "created_at) VALUES(?,?,?,?)"));
  RetryPolicy pol = a.policy ? *a.policy : RetryPolicy{};
  std::string profile = a.profile_json.empty() ? "{}" : a.profile_json;
  st->Bind(1, a.batch).Bind(2, profile).Bind(3, pol.ToJson()).Bind(4, Now());
  RETURN_IF_ERROR(st->Run());
  int64_t id = db_->LastInsertId();
  RETURN_IF_ERROR(Event(id, std::nullopt, "batch_created", a.batch));
  auto [it, _] = batches_.emplace(id, BatchInfo{id, a.batch, profile, pol, false, {}});
  OnRollback([this, id] { batches_.erase(id); });
  limits_.ConfigureBatch(id, a.batch, FleetLimits::ProviderOf(profile), {});
  RETURN_IF_ERROR(ApplyBatchLimits(it->second, a.max_running, a.start_rate_per_min));
  return &it->second;
}

absl::StatusOr<int64_t> Engine::InsertJob(int64_t batch_id, const SubmitFile& f) {
  // Each job's input is a row of its own, by id: no index on the (random)
  // sha256 to maintain, which is what made submits and leases slower as the
  // queue grew.
  ASSIGN_OR_RETURN(in, db_->Prepare("INSERT INTO inputs(sha256, content, size) VALUES(?,?,?)"));
  in->Bind(1, f.sha256).BindBlob(2, f.content).Bind(3, static_cast<int64_t>(f.content.size()));
  RETURN_IF_ERROR(in->Run());
  const int64_t input_id = db_->LastInsertId();
  ASSIGN_OR_RETURN(st, db_->Prepare(
                           "INSERT INTO jobs(batch_id, dataset_key, source_name, dataset_name, "
                           "input_sha256, input_id, state, ready_at, created_at, updated_at) "
                           "VALUES(?,?,?,?,?,?,'queued',?,?,?)"));
  int64_t now = Now();
  st->Bind(1, batch_id).Bind(2, f.dataset_key).Bind(3, f.source_name).Bind(4, f.dataset_name)
      .Bind(5, f.sha256).Bind(6, input_id).Bind(7, now).Bind(8, now).Bind(9, now);
  RETURN_IF_ERROR(st->Run());
  int64_t id = db_->LastInsertId();
  RETURN_IF_ERROR(Event(batch_id, id, "submitted", f.source_name));
  NoteReady(now);
  return id;
}

void Engine::Submit(SubmitArgs args, Done<v1::SubmitResponse> done) {
  auto a = std::make_shared<SubmitArgs>(std::move(args));
  Post<v1::SubmitResponse>(
      [this, a]() -> absl::StatusOr<v1::SubmitResponse> {
        ASSIGN_OR_RETURN(batch, EnsureBatch(*a));
        // costsrv: the batch's budget and prices.
        RETURN_IF_ERROR(opt_.usage->ApplySubmit(*db_, batch->id, a->budget_usd, a->prices_json, Now()));
        dispatch_dirty_ = true;
        v1::SubmitResponse resp;
        ASSIGN_OR_RETURN(find, db_->Prepare(
                                   "SELECT id FROM jobs WHERE batch_id=? AND dataset_key=? "
                                   "AND superseded_by IS NULL"));
        for (const SubmitFile& f : a->files) {
          auto* item = resp.add_items();
          item->set_source_name(f.source_name);
          item->set_dataset_key(f.dataset_key);
          find->Bind(1, batch->id).Bind(2, f.dataset_key);
          ASSIGN_OR_RETURN(found, find->Step());
          std::optional<int64_t> existing_id;
          if (found) existing_id = find->Int(0);
          find->Reset();
          if (!existing_id) {
            ASSIGN_OR_RETURN(id, InsertJob(batch->id, f));
            item->set_outcome(v1::SubmitItem::OUTCOME_CREATED);
            item->set_job_id(id);
            continue;
          }
          ASSIGN_OR_RETURN(old, LoadJob(*existing_id));
          auto state = StateFromName(old->state).value_or(v1::JOB_STATE_UNSPECIFIED);
          bool same = old->input_sha256 == f.sha256;
          if (same && !a->rerun) {
            if (state == v1::JOB_STATE_SUCCEEDED) {
              item->set_outcome(v1::SubmitItem::OUTCOME_SKIPPED_SUCCEEDED);
              item->set_job_id(old->id);
              continue;
            }
            if (InFlight(state)) {
              item->set_outcome(v1::SubmitItem::OUTCOME_SKIPPED_IN_FLIGHT);
              item->set_job_id(old->id);
              continue;
            }
            // Gave up or cancelled: the same input runs again, same job.
            RETURN_IF_ERROR(RequeueJob(old->id, batch->id, true, "resubmitted"));
            item->set_outcome(v1::SubmitItem::OUTCOME_REQUEUED);
            item->set_job_id(old->id);
            continue;
          }
          // Changed input, or --rerun: the old job is superseded by a new one.
          if (InFlight(state))
            RETURN_IF_ERROR(CancelJob(*old, same ? "superseded by --rerun"
                                                 : "superseded by a changed input file"));
          ASSIGN_OR_RETURN(mark, db_->Prepare("UPDATE jobs SET superseded_by=-1 WHERE id=?"));
          mark->Bind(1, old->id);
          RETURN_IF_ERROR(mark->Run());
          ASSIGN_OR_RETURN(id, InsertJob(batch->id, f));
          ASSIGN_OR_RETURN(link, db_->Prepare("UPDATE jobs SET superseded_by=? WHERE id=?"));
          link->Bind(1, id).Bind(2, old->id);
          RETURN_IF_ERROR(link->Run());
          item->set_outcome(v1::SubmitItem::OUTCOME_REPLACED);
          item->set_job_id(id);
        }
        return resp;
      },
      std::move(done));
}

void Engine::Retry(v1::RetryRequest req, Done<int64_t> done) {
  Post<int64_t>(
      [this, req]() -> absl::StatusOr<int64_t> {
        std::vector<std::pair<int64_t, int64_t>> ids;  // (job, batch)
        if (req.has_job() && (req.job().job_id() > 0 || !req.job().dataset_key().empty())) {
          ASSIGN_OR_RETURN(job, FindJob(req.job()));
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
          BatchInfo* b = nullptr;
          for (auto& [id, bi] : batches_)
            if (bi.name == req.batch()) b = &bi;
          if (!b) return absl::NotFoundError(absl::StrCat("no batch '", req.batch(), "'"));
          std::string sql =
              "SELECT id FROM jobs WHERE batch_id=? AND state='needs_attention' AND "
              "superseded_by IS NULL";
          if (req.failure_class() != v1::FAILURE_CLASS_UNSPECIFIED)
            sql += " AND last_failure_class=?";
          ASSIGN_OR_RETURN(st, db_->Prepare(sql));
          st->Bind(1, b->id);
          if (req.failure_class() != v1::FAILURE_CLASS_UNSPECIFIED)
            st->Bind(2, ClassName(req.failure_class()));
          while (true) {
            ASSIGN_OR_RETURN(row, st->Step());
            if (!row) break;
            ids.push_back({st->Int(0), b->id});
          }
        }
        for (auto [job, batch] : ids)
          RETURN_IF_ERROR(RequeueJob(job, batch, true, "retried by operator"));
        return static_cast<int64_t>(ids.size());
      },
      std::move(done));
}

void Engine::Cancel(v1::CancelRequest req, Done<int64_t> done) {
  Post<int64_t>(
      [this, req]() -> absl::StatusOr<int64_t> {
        std::vector<JobRow> jobs;
        if (req.has_job() && (req.job().job_id() > 0 || !req.job().dataset_key().empty())) {
          ASSIGN_OR_RETURN(job, FindJob(req.job()));
          if (!job) return absl::NotFoundError("no such job");
          auto st = StateFromName(job->state).value_or(v1::JOB_STATE_UNSPECIFIED);
          if (!InFlight(st))
            return absl::FailedPreconditionError(
                absl::StrCat("job ", job->id, " is already ", job->state));
          jobs.push_back(*job);
        } else {
          BatchInfo* b = nullptr;
          for (auto& [id, bi] : batches_)
            if (bi.name == req.batch()) b = &bi;
          if (!b) return absl::NotFoundError(absl::StrCat("no batch '", req.batch(), "'"));
          ASSIGN_OR_RETURN(st, db_->Prepare(
                                   "SELECT id FROM jobs "
                                   "WHERE batch_id=? AND state IN ('queued','leased','running')"));
          st->Bind(1, b->id);
          std::vector<int64_t> ids;
          while (true) {
            ASSIGN_OR_RETURN(row, st->Step());
            if (!row) break;
            ids.push_back(st->Int(0));
          }
          for (int64_t id : ids) {
            ASSIGN_OR_RETURN(j, LoadJob(id));
            if (j) jobs.push_back(*j);
          }
        }
        for (const auto& j : jobs) RETURN_IF_ERROR(CancelJob(j, "cancelled by operator"));
        return static_cast<int64_t>(jobs.size());
      },
      std::move(done));
}

void Engine::SetPaused(std::string batch, bool paused, Done<bool> done) {
  Post<bool>(
      [this, batch, paused]() -> absl::StatusOr<bool> {
        for (auto& [id, b] : batches_) {
          if (b.name != batch) continue;
          ASSIGN_OR_RETURN(st, db_->Prepare("UPDATE batches SET paused=? WHERE id=?"));
          st->Bind(1, paused ? 1 : 0).Bind(2, id);
          RETURN_IF_ERROR(st->Run());
          RETURN_IF_ERROR(Event(id, std::nullopt, paused ? "paused" : "resumed", ""));
          OnRollback([&b, old = b.paused] { b.paused = old; });
          b.paused = paused;
          dispatch_dirty_ = true;
          return true;
        }
        return absl::NotFoundError(absl::StrCat("no batch '", batch, "'"));
      },
      std::move(done));
}

void Engine::DrainWorker(std::string worker, bool drain, Done<bool> done) {
  Post<bool>(
      [this, worker, drain]() -> absl::StatusOr<bool> {
        auto it = workers_.find(worker);
        if (it == workers_.end())
          return absl::NotFoundError(absl::StrCat("no worker '", worker, "'"));
        ASSIGN_OR_RETURN(st, db_->Prepare("UPDATE workers SET draining=? WHERE name=?"));
        st->Bind(1, drain ? 1 : 0).Bind(2, worker);
        RETURN_IF_ERROR(st->Run());
        OnRollback([w = &it->second, old = it->second.draining] { w->draining = old; });
        it->second.draining = drain;
        dispatch_dirty_ = true;
        auto s = sessions_.find(it->second.session_id);
        if (it->second.connected && s != sessions_.end()) {
          v1::CoordinatorMessage m;
          m.mutable_drain()->set_reason(drain ? "drained by operator" : "undrained by operator");
          m.mutable_drain()->set_undrain(!drain);
          auto sink = s->second.sink;
          AfterCommit([sink, m] { sink->Push(m); });
        }
        return true;
      },
      std::move(done));
}

absl::Status Engine::ApplyBatchLimits(BatchInfo& b, std::optional<int> max_running,
                                      std::optional<double> start_rate_per_min) {
  LimitConfig next = b.limits;
  if (max_running) next.max_running = *max_running;
  if (start_rate_per_min) next.start_rate_per_min = *start_rate_per_min;
  if (next.max_running < 0 || next.start_rate_per_min < 0 ||
      !std::isfinite(next.start_rate_per_min))
    return absl::InvalidArgumentError("limits must be 0 (none) or positive");
  if (next == b.limits) return absl::OkStatus();
  ASSIGN_OR_RETURN(st, db_->Prepare(
                           "UPDATE batches SET max_running=?, start_rate_per_min=? WHERE id=?"));
  st->Bind(1, static_cast<int64_t>(next.max_running)).Bind(2, next.start_rate_per_min)
      .Bind(3, b.id);
  RETURN_IF_ERROR(st->Run());
  RETURN_IF_ERROR(Event(b.id, std::nullopt, "limits",
                        absl::StrCat("max_running=", next.max_running,
                                     " start_rate_per_min=", next.start_rate_per_min)));
  OnRollback([this, &b, old = b.limits] {
    b.limits = old;
    limits_.ConfigureBatch(b.id, b.name, FleetLimits::ProviderOf(b.profile_json), old);
  });
  b.limits = next;
  limits_.ConfigureBatch(b.id, b.name, FleetLimits::ProviderOf(b.profile_json), next);
  dispatch_dirty_ = true;
  return absl::OkStatus();
}

namespace {
v1::LimitStatus ToProto(const LimitView& v) {
  v1::LimitStatus l;
  l.set_scope(v.scope);
  l.set_name(v.name);
  l.set_provider(v.provider);
  l.set_max_running(v.config.max_running);
  l.set_start_rate_per_min(v.config.start_rate_per_min);
  l.set_running(v.running);
  l.set_current_limit(v.effective_limit);
  l.set_hold_until_ms(v.hold_until_ms);
  l.set_reason(v.reason);
  return l;
}
}  // namespace

void Engine::ReportProviderLimit(const std::string& provider) {
  if (!opt_.observer) return;
  int limit = limits_.ProviderLimit(provider);
  auto it = reported_limits_.find(provider);
  if (it != reported_limits_.end() && it->second == limit) return;
  reported_limits_[provider] = limit;
  // (Not undone on rollback: the next change reports the value in force.)
  AfterCommit([o = opt_.observer, provider, limit] { o->OnModelApiLimit(provider, limit); });
}

void Engine::SetLimits(v1::LimitsRequest req, Done<v1::LimitsResponse> done) {
  Post<v1::LimitsResponse>(
      [this, req]() -> absl::StatusOr<v1::LimitsResponse> {
        std::optional<int> max_running;
        std::optional<double> rate;
        if (req.has_max_running()) max_running = req.max_running();
        if (req.has_start_rate_per_min()) rate = req.start_rate_per_min();
        if (!req.batch().empty() && !req.provider().empty())
          return absl::InvalidArgumentError("limits: give a batch or a provider, not both");
        if (!req.batch().empty()) {
          BatchInfo* found = nullptr;
          for (auto& [id, b] : batches_)
            if (b.name == req.batch()) found = &b;
          if (!found) return absl::NotFoundError(absl::StrCat("no batch named ", req.batch()));
          RETURN_IF_ERROR(ApplyBatchLimits(*found, max_running, rate));
        } else if (!req.provider().empty()) {
          LimitConfig old = limits_.ProviderConfig(req.provider());
          LimitConfig next = old;
          if (max_running) next.max_running = *max_running;
          if (rate) next.start_rate_per_min = *rate;
          if (next.max_running < 0 || next.start_rate_per_min < 0 ||
              !std::isfinite(next.start_rate_per_min))
            return absl::InvalidArgumentError("limits must be 0 (none) or positive");
          ASSIGN_OR_RETURN(st, db_->Prepare(
                                   "INSERT INTO provider_limits(name, max_running, "
                                   "start_rate_per_min) VALUES(?,?,?) ON CONFLICT(name) DO "
                                   "UPDATE SET max_running=excluded.max_running, "
                                   "start_rate_per_min=excluded.start_rate_per_min"));
          st->Bind(1, req.provider()).Bind(2, static_cast<int64_t>(next.max_running))
              .Bind(3, next.start_rate_per_min);
          RETURN_IF_ERROR(st->Run());
          RETURN_IF_ERROR(Event(std::nullopt, std::nullopt, "provider_limits",
                                absl::StrCat(req.provider(), " max_running=", next.max_running,
                                             " start_rate_per_min=", next.start_rate_per_min)));
          OnRollback([this, m = limits_.ProviderState(req.provider())] {
            limits_.Restore(m);
          });
          limits_.ConfigureProvider(req.provider(), next);
          ReportProviderLimit(req.provider());
          dispatch_dirty_ = true;
        }
        v1::LimitsResponse resp;
        for (const auto& v : limits_.View(Now())) *resp.add_limits() = ToProto(v);
        return resp;
      },
      std::move(done));
}

void Engine::ListWorkers(Done<v1::WorkersResponse> done) {
  Post<v1::WorkersResponse>(
      [this]() -> absl::StatusOr<v1::WorkersResponse> {
        v1::WorkersResponse r;
        for (const auto& [name, w] : workers_) {
          auto* wi = r.add_workers();
          wi->set_name(name);
          wi->set_slots(w.slots);
          wi->set_in_use(InUse(name));
          wi->set_connected(w.connected);
          wi->set_last_seen_ms(w.last_seen);
          wi->set_draining(w.draining);
        }
        return r;
      },
      std::move(done));
}

// ------------------------------------------------------------------ workers

void Engine::OpenSession(std::string worker, int slots, std::shared_ptr<SessionSink> sink,
                         Done<int64_t> done, int64_t principal) {
  Post<int64_t>(
      [this, worker, slots, sink, principal]() -> absl::StatusOr<int64_t> {
        // A worker name holding leases of another token cannot be taken over.
        if (principal != 0)
          for (const auto& [job, l] : leases_)
            if (l.worker == worker && l.principal != 0 && l.principal != principal)
              return absl::PermissionDeniedError(absl::StrCat(
                  "worker name '", worker, "' holds leases taken with another token"));
        ASSIGN_OR_RETURN(st, db_->Prepare(
                                 "INSERT INTO workers(name, slots, connected, draining, last_seen) "
                                 "VALUES(?,?,1,0,?) ON CONFLICT(name) DO UPDATE SET "
                                 "slots=excluded.slots, connected=1, "
                                 "last_seen=excluded.last_seen"));
        st->Bind(1, worker).Bind(2, slots).Bind(3, Now());
        RETURN_IF_ERROR(st->Run());
        WorkerMem& w = workers_[worker];
        // A worker that reconnects replaces its old session.
        if (w.connected) {
          auto old = sessions_.find(w.session_id);
          if (old != sessions_.end()) {
            auto old_sink = old->second.sink;
            AfterCommit([old_sink] { old_sink->Close("replaced by a newer session"); });
            sessions_.erase(old);
          }
        }
        int64_t id = next_session_id_++;
        sessions_[id] = Session{id, worker, slots, sink, principal};
        w.slots = slots;
        w.connected = true;  // a drained worker stays drained until undrained
        w.last_seen = Now();
        w.session_id = id;
        if (w.draining) {
          // Tell it again: it may have restarted since.
          v1::CoordinatorMessage m;
          m.mutable_drain()->set_reason("drained by operator");
          AfterCommit([sink, m] { sink->Push(m); });
        }
        dispatch_dirty_ = true;
        spdlog::info("worker {} connected with {} slots ({} leases held)", worker, slots,
                     InUse(worker));
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
    std::string worker = s->second.worker;
    sessions_.erase(s);
    WorkerMem& w = workers_[worker];
    if (w.session_id != session_id) return;  // already replaced
    w.connected = false;
    w.last_seen = Now();
    auto st = db_->Prepare("UPDATE workers SET connected=0, last_seen=? WHERE name=?");
    if (st.ok()) {
      (*st)->Bind(1, Now()).Bind(2, worker);
      (void)(*st)->Run();
    }
    spdlog::info("worker {} disconnected ({} leases held until renewed or expired)", worker,
                 InUse(worker));
  });
}

void Engine::Heartbeat(v1::HeartbeatRequest req, Done<v1::HeartbeatResponse> done,
                       int64_t principal) {
  Post<v1::HeartbeatResponse>(
      [this, req, principal]() -> absl::StatusOr<v1::HeartbeatResponse> {
        auto it = leases_.find(req.job_id());
        if (it == leases_.end() || it->second.token != req.token())
          return absl::FailedPreconditionError(absl::StrCat(
              "job ", req.job_id(), ": lease ", req.token(), " is not held (stale token)"));
        LeaseInfo& l = it->second;
        RETURN_IF_ERROR(CheckHolder(req.job_id(), l, principal));
        // costsrv: the attempt's usage so far (cumulative).
        if (req.has_usage()) RETURN_IF_ERROR(ReportUsage(opt_.usage->Record(*db_, req.token(), req.usage())));
        int64_t now = Now();
        const int64_t expires = now + opt_.lease_period_ms;
        if (req.running() && !l.running) {
          ASSIGN_OR_RETURN(j, db_->Prepare(
                                  "UPDATE jobs SET state='running', updated_at=?, "
                                  "lease_expires_at=? WHERE id=?"));
          j->Bind(1, now).Bind(2, expires).Bind(3, req.job_id());
          RETURN_IF_ERROR(j->Run());
          ASSIGN_OR_RETURN(a, db_->Prepare(
                                  "UPDATE attempts SET outcome='running', started_at=? WHERE id=?"));
          a->Bind(1, now).Bind(2, req.token());
          RETURN_IF_ERROR(a->Run());
          l.running = true;
        } else {
          ASSIGN_OR_RETURN(j, db_->Prepare("UPDATE jobs SET lease_expires_at=? WHERE id=?"));
          j->Bind(1, expires).Bind(2, req.job_id());
          RETURN_IF_ERROR(j->Run());
        }
        expiries_.erase({l.expires_at, req.job_id()});
        l.expires_at = expires;
        expiries_.insert({l.expires_at, req.job_id()});
        workers_[l.worker].last_seen = now;
        v1::HeartbeatResponse r;
        r.set_lease_expires_at_ms(l.expires_at);
        return r;
      },
      std::move(done));
}

void Engine::Complete(v1::CompleteRequest req, std::string worker,
                      Done<v1::CompleteResponse> done, std::optional<CheckedResult> checked,
                      int64_t principal) {
  Post<v1::CompleteResponse>(
      [this, req, worker, checked, principal]() -> absl::StatusOr<v1::CompleteResponse> {
        std::string want = OutcomeFor(req);
        if (want.empty()) return absl::InvalidArgumentError("complete: no outcome given");
        v1::CompleteResponse resp;
        auto lease = leases_.find(req.job_id());
        if (lease == leases_.end() || lease->second.token != req.token()) {
          // Not held (any more). An outbox re-send of a completion we already
          // recorded is answered as a duplicate; anything else is stale.
          ASSIGN_OR_RETURN(at, db_->Prepare(
                                   "SELECT job_id, outcome, coalesce(failure_class,'') "
                                   "FROM attempts WHERE id=?"));
          at->Bind(1, req.token());
          ASSIGN_OR_RETURN(found, at->Step());
          if (!found || at->Int(0) != req.job_id()) {
            at->Reset();
            return absl::FailedPreconditionError(absl::StrCat(
                "job ", req.job_id(), ": no lease with token ", req.token()));
          }
          const std::string outcome = at->Text(1);
          const std::string recorded_class = at->Text(2);
          at->Reset();
          // (A result we judged invalid was recorded as an invalid_output failure.)
          const bool same = outcome == want ||
                            (want == "succeeded" && outcome == "failed" &&
                             recorded_class == ClassName(v1::FAILURE_CLASS_INVALID_OUTPUT));
          if (outcome == "leased" || outcome == "running" || !same)
            return absl::FailedPreconditionError(absl::StrCat(
                "job ", req.job_id(), ": lease ", req.token(), " is no longer held (attempt ",
                outcome, ")"));
          ASSIGN_OR_RETURN(done_job, LoadJob(req.job_id()));
          resp.set_duplicate(true);
          resp.set_job_state(done_job ? StateFromName(done_job->state).value_or(
                                            v1::JOB_STATE_UNSPECIFIED)
                                      : v1::JOB_STATE_UNSPECIFIED);
          return resp;
        }
        RETURN_IF_ERROR(CheckHolder(req.job_id(), lease->second, principal));
        // The job's row, read only on the paths that need more than its id
        // and batch (a stored success with a checked result needs neither).
        std::optional<JobRow> job_row;
        auto load_job = [&]() -> absl::StatusOr<const JobRow*> {
          if (!job_row) {
            ASSIGN_OR_RETURN(j, LoadJob(req.job_id()));
            if (!j) return absl::InternalError(absl::StrCat("job ", req.job_id(), " vanished"));
            job_row = std::move(*j);
          }
          return &*job_row;
        };
        struct {
          int64_t id;
          int64_t batch_id;
        } const job{req.job_id(), lease->second.batch_id};
        int64_t now = Now();
        if (want == "succeeded") {
          CheckedResult check;
          if (checked) {
            check = *checked;
          } else {
            ASSIGN_OR_RETURN(row, load_job());
            BatchInfo* b = BatchById(job.batch_id);
            ResultContext ctx{b ? b->name : "", row->dataset_key, row->dataset_name,
                              b ? b->profile_json : "{}", ""};
            ASSIGN_OR_RETURN(md, ReadInput(*row));
            ctx.metadata = std::move(md);
            ctx.netlog_json = req.netlog_json();
            check = opt_.checker(ctx, req.result_json());
          }
          const std::vector<std::string>& errors = check.errors;
          if (!errors.empty()) {
            std::string err = absl::StrJoin(errors, "\n");
            RETURN_IF_ERROR(FinishAttempt(req.token(), "failed",
                                          v1::FAILURE_CLASS_INVALID_OUTPUT, err, &req));
            ASSIGN_OR_RETURN(row, load_job());
            ASSIGN_OR_RETURN(next, FailJob(*row, req.token(), v1::FAILURE_CLASS_INVALID_OUTPUT,
                                           err, 0));
            DropLease(job.id);
            resp.set_job_state(next);
            for (auto& e : errors) resp.add_validation_errors(e);
            return resp;
          }
          nlohmann::json flags = nlohmann::json::array();
          for (auto& f : check.flags) flags.push_back(f);
          ASSIGN_OR_RETURN(ins, db_->Prepare(
                                    "INSERT INTO results(job_id, attempt_id, result_json, "
                                    "stored_at, flags_json) VALUES(?,?,?,?,?)"));
          ins->Bind(1, job.id).Bind(2, req.token()).Bind(3, req.result_json()).Bind(4, now)
              .Bind(5, flags.dump());
          RETURN_IF_ERROR(ins->Run());
          RETURN_IF_ERROR(FinishAttempt(req.token(), "succeeded", std::nullopt, "", &req));
          ASSIGN_OR_RETURN(up, db_->Prepare(
                                   "UPDATE jobs SET state='succeeded', current_attempt=NULL, "
                                   "updated_at=? WHERE id=?"));
          up->Bind(1, now).Bind(2, job.id);
          RETURN_IF_ERROR(up->Run());
          RETURN_IF_ERROR(Event(job.batch_id, job.id, "succeeded", worker));
          OnRollback([this, m = limits_.Save(job.batch_id)] { limits_.Restore(m); });
          limits_.OnSuccess(job.batch_id);
          ReportProviderLimit(limits_.ProviderOfBatch(job.batch_id));
          DropLease(job.id);
          resp.set_job_state(v1::JOB_STATE_SUCCEEDED);
          return resp;
        }
        if (want == "released") {
          RETURN_IF_ERROR(FinishAttempt(req.token(), "released", std::nullopt,
                                        req.release().reason(), &req));
          ASSIGN_OR_RETURN(dec, db_->Prepare(
                                    "UPDATE jobs SET attempts=max(0, attempts-1) WHERE id=?"));
          dec->Bind(1, job.id);
          RETURN_IF_ERROR(dec->Run());
          RETURN_IF_ERROR(RequeueJob(job.id, job.batch_id, false,
                                     absl::StrCat("released by ", worker, ": ",
                                                  req.release().reason())));
          DropLease(job.id);
          resp.set_job_state(v1::JOB_STATE_QUEUED);
          return resp;
        }
        auto cls = req.failure().failure_class();
        if (cls == v1::FAILURE_CLASS_UNSPECIFIED)
          return absl::InvalidArgumentError("failure without a failure class");
        RETURN_IF_ERROR(FinishAttempt(req.token(), "failed", cls, req.failure().reason(), &req));
        ASSIGN_OR_RETURN(row, load_job());
        ASSIGN_OR_RETURN(next, FailJob(*row, req.token(), cls, req.failure().reason(),
                                       req.failure().retry_after_ms()));
        DropLease(job.id);
        resp.set_job_state(next);
        return resp;
      },
      std::move(done));
}

// ------------------------------------------------------ expiry and dispatch

absl::Status Engine::ExpireLeases() {
  int64_t now = Now();
  while (!expiries_.empty() && expiries_.begin()->first <= now) {
    int64_t job_id = expiries_.begin()->second;
    auto lease = leases_.find(job_id);
    if (lease == leases_.end()) {
      expiries_.erase(expiries_.begin());
      continue;
    }
    std::string worker = lease->second.worker;
    int64_t token = lease->second.token;
    ASSIGN_OR_RETURN(job, LoadJob(job_id));
    DropLease(job_id);
    if (!job) continue;
    std::string why = absl::StrCat("lease expired: worker ", worker,
                                   " stopped renewing it (lost worker)");
    RETURN_IF_ERROR(FinishAttempt(token, "expired", v1::FAILURE_CLASS_INFRA, why, nullptr));
    ASSIGN_OR_RETURN(next, FailJob(*job, token, v1::FAILURE_CLASS_INFRA, why, 0));
    (void)next;
    spdlog::warn("[job={}] {}", job_id, why);
  }
  return absl::OkStatus();
}

absl::Status Engine::Dispatch() {
  dispatch_dirty_ = false;
  // Free slots per connected, non-draining worker.
  std::vector<std::pair<Session*, int>> free;
  int total = 0;
  for (auto& [id, s] : sessions_) {
    const WorkerMem& w = workers_[s.worker];
    if (w.draining || w.session_id != id) continue;
    int f = s.slots - InUse(s.worker);
    if (f > 0) {
      free.push_back({&s, f});
      total += f;
    }
  }
  if (total == 0) return absl::OkStatus();
  int64_t now = Now();
  // costsrv: a batch's budget holds its new starts (server/budget.h).
  RETURN_IF_ERROR(opt_.usage->BeginRound(*db_, now));
  std::map<int64_t, int> running;  // batch -> leases held
  for (const auto& [job, l] : leases_) ++running[l.batch_id];
  // Batches that may not start anything now: paused, or held by a fleet
  // limit (then ask again when its start-rate token or retry-after is due).
  nlohmann::json blocked = nlohmann::json::array();
  for (auto& [id, b] : batches_) {
    ASSIGN_OR_RETURN(budget_ok, opt_.usage->MayStart(*db_, id, running[id], now));  // costsrv
    if (b.paused || !budget_ok) {
      blocked.push_back(id);
      continue;
    }
    FleetLimits::Allowance a = limits_.Allow(id, now);
    if (a.starts > 0) continue;
    blocked.push_back(id);
    if (a.retry_at_ms > 0) NoteReady(a.retry_at_ms);
  }
  ASSIGN_OR_RETURN(q, db_->Prepare(
                          "SELECT id, batch_id FROM jobs WHERE state='queued' AND ready_at<=? "
                          "AND batch_id NOT IN (SELECT value FROM json_each(?)) "
                          "ORDER BY ready_at, id LIMIT ?"));
  q->Bind(1, now).Bind(2, blocked.dump()).Bind(3, total);
  std::vector<std::pair<int64_t, int64_t>> ids;  // (job, batch)
  while (true) {
    ASSIGN_OR_RETURN(row, q->Step());
    if (!row) break;
    ids.push_back({q->Int(0), q->Int(1)});
  }
  q->Reset();
  // The earliest job not yet ready sets the next wake-up.
  ASSIGN_OR_RETURN(nx, db_->Prepare(
                           "SELECT min(ready_at) FROM jobs WHERE state='queued' AND ready_at>?"));
  nx->Bind(1, now);
  ASSIGN_OR_RETURN(nrow, nx->Step());
  if (nrow && !nx->IsNull(0)) NoteReady(nx->Int(0));
  nx->Reset();

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
    auto s = Atomically([&] { return LeaseTo(job_id, *session, now); });
    if (!s.ok()) spdlog::error("[job={}] lease failed: {}", job_id, s.ToString());
    else ++running[batch_id];  // costsrv
  }
  if (held_back) NoteReady(now);
  return absl::OkStatus();
}

absl::Status Engine::LeaseTo(int64_t job_id, Session& sess, int64_t now) {
  Session* session = &sess;
  {
    ASSIGN_OR_RETURN(job, LoadJob(job_id));
    if (!job) return absl::NotFoundError(absl::StrCat("job ", job_id, " vanished"));
    BatchInfo* b = BatchById(job->batch_id);
    const int number = static_cast<int>(job->attempts) + 1;
    const int64_t ready_at = job->ready_at;
    ASSIGN_OR_RETURN(ins, db_->Prepare(
                              "INSERT INTO attempts(job_id, number, retry_epoch, worker, "
                              "leased_at, outcome, token_id) VALUES(?,?,?,?,?,'leased',?)"));
    ins->Bind(1, job_id).Bind(2, number).Bind(3, job->retry_epoch).Bind(4, session->worker)
        .Bind(5, now);
    if (session->principal != 0) ins->Bind(6, session->principal); else ins->BindNull(6);
    RETURN_IF_ERROR(ins->Run());
    int64_t token = db_->LastInsertId();
    ASSIGN_OR_RETURN(up, db_->Prepare(
                             "UPDATE jobs SET state='leased', current_attempt=?, worker=?, "
                             "attempts=attempts+1, updated_at=?, lease_expires_at=? WHERE id=?"));
    up->Bind(1, token).Bind(2, session->worker).Bind(3, now)
        .Bind(4, now + opt_.lease_period_ms).Bind(5, job_id);
    RETURN_IF_ERROR(up->Run());
    RETURN_IF_ERROR(Event(job->batch_id, job_id, "leased",
                          absl::StrCat(session->worker, " token ", token)));
    if (auto* o = opt_.observer) AfterCommit([o, job_id, ready_at, now] { o->OnLeased(job_id, ready_at, now); });

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
    l->set_lease_expires_at_ms(now + opt_.lease_period_ms);
    // costsrv: the job's cap (profile limits.budget) and the prices in force.
    RETURN_IF_ERROR(opt_.usage->FillLease(*db_, job->batch_id, b ? b->profile_json : "{}", l));
    ASSIGN_OR_RETURN(metadata, ReadInput(*job));
    l->set_metadata(std::move(metadata));
    // The repair loop: the last attempt's validation errors go to the next
    // (a first attempt has none to look for).
    if (number > 1) {
      ASSIGN_OR_RETURN(pe, db_->Prepare(
                               "SELECT error FROM attempts WHERE job_id=? AND id<? AND "
                               "failure_class='invalid_output' ORDER BY id DESC LIMIT 1"));
      pe->Bind(1, job_id).Bind(2, token);
      ASSIGN_OR_RETURN(perow, pe->Step());
      if (perow)
        for (auto& e : absl::StrSplit(pe->Text(0), '\n', absl::SkipEmpty()))
          l->add_previous_errors(std::string(e));
      pe->Reset();
    }

    LeaseInfo li{token, session->worker, now + opt_.lease_period_ms, false, job->batch_id, now,
                 session->principal};
    expiries_.insert({li.expires_at, job_id});
    leases_[job_id] = li;
    live_logs_.Open(job_id, token, li.principal);
    ++in_use_[li.worker];
    limits_.OnStart(li.batch_id, now);
    OnRollback([this, job_id, li] {
      live_logs_.Close(li.token, Now());
      leases_.erase(job_id);
      if (--in_use_[li.worker] <= 0) in_use_.erase(li.worker);
      expiries_.erase({li.expires_at, job_id});
      limits_.UndoStart(li.batch_id);
    });
    auto sink = session->sink;
    AfterCommit([sink, m = std::move(m)] { sink->Push(m); });
    spdlog::debug("[job={}] leased to {} (token {})", job_id, session->worker, token);
  }
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
