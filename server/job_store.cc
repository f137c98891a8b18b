// The engine's statements (the write side); the read side's are in
// job_store_reads.cc.
#include "server/job_store.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace assessq {
namespace {
// Steps `st` to its end, making a T of each row.
template <typename T, typename Make>
absl::StatusOr<std::vector<T>> Rows(Stmt* st, Make make) {
  std::vector<T> out;
  while (true) {
    ASSIGN_OR_RETURN(row, st->Step());
    if (!row) break;
    out.push_back(make(*st));
  }
  st->Reset();
  return out;
}
// Column 0 of every row, as ids.
absl::StatusOr<std::vector<int64_t>> Ids(Stmt* st) {
  return Rows<int64_t>(st, [](const Stmt& r) { return r.Int(0); });
}
}  // namespace

// ------------------------------------------------------------- loading

absl::StatusOr<std::vector<BatchRow>> JobStore::Batches() {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "SELECT id, name, profile_json, retry_policy_json, paused, "
                           "max_running, start_rate_per_min FROM batches"));
  return Rows<BatchRow>(st, [](const Stmt& r) {
    return BatchRow{r.Int(0), r.Text(1), r.Text(2), r.Text(3), r.Int(4) != 0,
                    LimitConfig{static_cast<int>(r.Int(5)), r.Double(6)}};
  });
}

absl::StatusOr<std::vector<std::pair<std::string, LimitConfig>>> JobStore::ProviderLimits() {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "SELECT name, max_running, start_rate_per_min FROM provider_limits"));
  return Rows<std::pair<std::string, LimitConfig>>(st, [](const Stmt& r) {
    return std::make_pair(r.Text(0), LimitConfig{static_cast<int>(r.Int(1)), r.Double(2)});
  });
}

absl::StatusOr<std::vector<HeldLeaseRow>> JobStore::HeldLeases() {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "SELECT j.id, j.current_attempt, coalesce(j.worker,''), j.state, "
                           "j.batch_id, coalesce(a.token_id, 0), coalesce(j.lease_expires_at, 0) "
                           "FROM jobs j LEFT JOIN attempts a ON a.id=j.current_attempt "
                           "WHERE j.state IN ('leased','running')"));
  return Rows<HeldLeaseRow>(st, [](const Stmt& r) {
    return HeldLeaseRow{r.Int(0), r.Int(1), r.Text(2), r.Text(3) == "running",
                        r.Int(4), r.Int(5), r.Int(6)};
  });
}

absl::StatusOr<std::vector<WorkerRow>> JobStore::Workers() {
  ASSIGN_OR_RETURN(st, db_.Prepare("SELECT name, slots, draining, last_seen FROM workers"));
  return Rows<WorkerRow>(st, [](const Stmt& r) {
    return WorkerRow{r.Text(0), static_cast<int>(r.Int(1)), r.Int(2) != 0, r.Int(3)};
  });
}

absl::Status JobStore::MarkAllWorkersDisconnected() {
  return db_.Exec("UPDATE workers SET connected=0");
}

absl::StatusOr<std::optional<int64_t>> JobStore::AliveAt() {
  ASSIGN_OR_RETURN(st, db_.Prepare("SELECT alive_at FROM engine_clock WHERE id=1"));
  ASSIGN_OR_RETURN(row, st->Step());
  std::optional<int64_t> at;
  if (row) at = st->Int(0);
  st->Reset();
  return at;
}

absl::Status JobStore::SetAliveAt(int64_t now) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "INSERT INTO engine_clock(id, alive_at) VALUES(1, ?) "
                           "ON CONFLICT(id) DO UPDATE SET alive_at=excluded.alive_at"));
  st->Bind(1, now);
  return st->Run();
}

absl::Status JobStore::AddEvent(int64_t now, std::optional<int64_t> batch_id,
                                std::optional<int64_t> job_id, absl::string_view kind,
                                absl::string_view detail) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "INSERT INTO events(ts, batch_id, job_id, kind, detail) "
                           "VALUES(?,?,?,?,?)"));
  st->Bind(1, now).Bind(2, batch_id).Bind(3, job_id).Bind(4, kind).Bind(5, detail);
  return st->Run();
}

// ---------------------------------------------------------------- jobs

absl::StatusOr<std::optional<JobRow>> JobStore::LoadJob(int64_t id) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "SELECT id, batch_id, dataset_key, dataset_name, input_sha256, state, "
                           "retry_epoch, current_attempt, coalesce(worker,''), "
                           "superseded_by IS NOT NULL, attempts, input_id, ready_at "
                           "FROM jobs WHERE id=?"));
  st->Bind(1, id);
  ASSIGN_OR_RETURN(row, st->Step());
  if (!row) return std::optional<JobRow>();
  JobRow j;
  j.id = st->Int(0);
  j.batch_id = st->Int(1);
  j.dataset_key = st->Text(2);
  j.dataset_name = st->Text(3);
  j.input_sha256 = st->Text(4);
  j.state = st->Text(5);
  j.retry_epoch = st->Int(6);
  if (!st->IsNull(7)) j.current_attempt = st->Int(7);
  j.worker = st->Text(8);
  j.superseded = st->Int(9) != 0;
  j.attempts = st->Int(10);
  j.input_id = st->Int(11);
  j.ready_at = st->Int(12);
  st->Reset();
  return std::optional<JobRow>(std::move(j));
}

absl::StatusOr<std::optional<int64_t>> JobStore::FindJobId(const JobKey& key) {
  Stmt* st;
  if (key.job_id > 0) {
    ASSIGN_OR_RETURN(by_id, db_.Prepare("SELECT id FROM jobs WHERE id=?"));
    st = by_id;
    st->Bind(1, key.job_id);
  } else {
    ASSIGN_OR_RETURN(by_key, db_.Prepare(
                                 "SELECT j.id FROM jobs j JOIN batches b ON b.id=j.batch_id "
                                 "WHERE b.name=? AND j.dataset_key=? AND j.superseded_by IS NULL"));
    st = by_key;
    st->Bind(1, key.batch).Bind(2, key.dataset_key);
  }
  ASSIGN_OR_RETURN(row, st->Step());
  std::optional<int64_t> id;
  if (row) id = st->Int(0);
  st->Reset();
  return id;
}

absl::StatusOr<std::optional<JobRow>> JobStore::FindJob(const JobKey& key) {
  ASSIGN_OR_RETURN(id, FindJobId(key));
  if (!id) return std::optional<JobRow>();
  return LoadJob(*id);
}

absl::StatusOr<int64_t> JobStore::ResolveJob(const JobKey& key) {
  ASSIGN_OR_RETURN(id, FindJobId(key));
  if (id) return *id;
  if (key.job_id > 0) return absl::NotFoundError(absl::StrCat("no job ", key.job_id));
  return absl::NotFoundError(
      absl::StrCat("no dataset '", key.dataset_key, "' in batch '", key.batch, "'"));
}

absl::StatusOr<std::optional<int64_t>> JobStore::CurrentJob(int64_t batch_id,
                                                            absl::string_view dataset_key) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "SELECT id FROM jobs WHERE batch_id=? AND dataset_key=? "
                           "AND superseded_by IS NULL"));
  st->Bind(1, batch_id).Bind(2, dataset_key);
  ASSIGN_OR_RETURN(row, st->Step());
  std::optional<int64_t> id;
  if (row) id = st->Int(0);
  st->Reset();
  return id;
}

absl::StatusOr<std::string> JobStore::ReadInput(int64_t input_id) {
  ASSIGN_OR_RETURN(st, db_.Prepare("SELECT content FROM inputs WHERE id=?"));
  st->Bind(1, input_id);
  ASSIGN_OR_RETURN(row, st->Step());
  std::string content = row ? st->Text(0) : std::string();
  st->Reset();
  return content;
}

absl::StatusOr<int64_t> JobStore::InsertJob(int64_t batch_id, const NewJob& f, int64_t now) {
  // Each job's input is a row of its own, by id: no index on the (random)
  // sha256 to maintain, which is what made submits and leases slower as the
  // queue grew.
  ASSIGN_OR_RETURN(in, db_.Prepare("INSERT INTO inputs(sha256, content, size) VALUES(?,?,?)"));
  in->Bind(1, f.sha256).BindBlob(2, f.content).Bind(3, static_cast<int64_t>(f.content.size()));
  RETURN_IF_ERROR(in->Run());
  const int64_t input_id = db_.LastInsertId();
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "INSERT INTO jobs(batch_id, dataset_key, source_name, dataset_name, "
                           "input_sha256, input_id, state, ready_at, created_at, updated_at) "
                           "VALUES(?,?,?,?,?,?,'queued',?,?,?)"));
  st->Bind(1, batch_id).Bind(2, f.dataset_key).Bind(3, f.source_name).Bind(4, f.dataset_name)
      .Bind(5, f.sha256).Bind(6, input_id).Bind(7, now).Bind(8, now).Bind(9, now);
  RETURN_IF_ERROR(st->Run());
  return db_.LastInsertId();
}

absl::Status JobStore::MarkSuperseded(int64_t old_job, int64_t by) {
  ASSIGN_OR_RETURN(st, db_.Prepare("UPDATE jobs SET superseded_by=? WHERE id=?"));
  st->Bind(1, by).Bind(2, old_job);
  return st->Run();
}

absl::Status JobStore::RequeueJob(int64_t job_id, bool new_epoch, int64_t now) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "UPDATE jobs SET state='queued', ready_at=?, current_attempt=NULL, "
                           "retry_epoch=retry_epoch+?, updated_at=? WHERE id=?"));
  st->Bind(1, now).Bind(2, new_epoch ? 1 : 0).Bind(3, now).Bind(4, job_id);
  return st->Run();
}

absl::Status JobStore::SetJobFailed(int64_t job_id, absl::string_view state, int64_t ready_at,
                                    absl::string_view failure_class, absl::string_view error,
                                    int64_t now) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "UPDATE jobs SET state=?, ready_at=?, current_attempt=NULL, "
                           "last_failure_class=?, last_error=?, updated_at=? WHERE id=?"));
  st->Bind(1, state).Bind(2, ready_at).Bind(3, failure_class).Bind(4, error).Bind(5, now)
      .Bind(6, job_id);
  return st->Run();
}

absl::Status JobStore::SetJobEnded(int64_t job_id, absl::string_view state, int64_t now) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "UPDATE jobs SET state=?, current_attempt=NULL, updated_at=? WHERE id=?"));
  st->Bind(1, state).Bind(2, now).Bind(3, job_id);
  return st->Run();
}

absl::Status JobStore::UncountAttempt(int64_t job_id) {
  ASSIGN_OR_RETURN(st, db_.Prepare("UPDATE jobs SET attempts=max(0, attempts-1) WHERE id=?"));
  st->Bind(1, job_id);
  return st->Run();
}

absl::Status JobStore::MarkJobRunning(int64_t job_id, int64_t attempt_id, int64_t now,
                                      int64_t lease_expires_at) {
  ASSIGN_OR_RETURN(j, db_.Prepare(
                          "UPDATE jobs SET state='running', updated_at=?, "
                          "lease_expires_at=? WHERE id=?"));
  j->Bind(1, now).Bind(2, lease_expires_at).Bind(3, job_id);
  RETURN_IF_ERROR(j->Run());
  ASSIGN_OR_RETURN(a, db_.Prepare("UPDATE attempts SET outcome='running', started_at=? WHERE id=?"));
  a->Bind(1, now).Bind(2, attempt_id);
  return a->Run();
}

absl::Status JobStore::RenewLease(int64_t job_id, int64_t lease_expires_at) {
  ASSIGN_OR_RETURN(st, db_.Prepare("UPDATE jobs SET lease_expires_at=? WHERE id=?"));
  st->Bind(1, lease_expires_at).Bind(2, job_id);
  return st->Run();
}

absl::StatusOr<std::vector<int64_t>> JobStore::JobsNeedingAttention(
    int64_t batch_id, std::optional<absl::string_view> failure_class) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "SELECT id FROM jobs WHERE batch_id=? AND state='needs_attention' "
                           "AND superseded_by IS NULL AND (?='' OR last_failure_class=?)"));
  const absl::string_view cls = failure_class.value_or("");
  st->Bind(1, batch_id).Bind(2, cls).Bind(3, cls);
  return Ids(st);
}

absl::StatusOr<std::vector<int64_t>> JobStore::JobsInFlight(int64_t batch_id) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "SELECT id FROM jobs "
                           "WHERE batch_id=? AND state IN ('queued','leased','running')"));
  st->Bind(1, batch_id);
  return Ids(st);
}

absl::StatusOr<std::vector<std::pair<int64_t, int64_t>>> JobStore::ReadyJobs(
    int64_t now, const std::vector<int64_t>& blocked, int limit) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "SELECT id, batch_id FROM jobs WHERE state='queued' AND ready_at<=? "
                           "AND batch_id NOT IN (SELECT value FROM json_each(?)) "
                           "ORDER BY ready_at, id LIMIT ?"));
  st->Bind(1, now).Bind(2, nlohmann::json(blocked).dump()).Bind(3, limit);
  return Rows<std::pair<int64_t, int64_t>>(
      st, [](const Stmt& r) { return std::make_pair(r.Int(0), r.Int(1)); });
}

absl::StatusOr<std::optional<int64_t>> JobStore::NextReadyAt(int64_t now) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "SELECT min(ready_at) FROM jobs WHERE state='queued' AND ready_at>?"));
  st->Bind(1, now);
  ASSIGN_OR_RETURN(row, st->Step());
  std::optional<int64_t> at;
  if (row && !st->IsNull(0)) at = st->Int(0);
  st->Reset();
  return at;
}

// ------------------------------------------------------------ attempts

absl::StatusOr<int64_t> JobStore::LeaseJob(const JobRow& job, int number,
                                           const std::string& worker, int64_t now,
                                           int64_t lease_expires_at, int64_t principal) {
  ASSIGN_OR_RETURN(ins, db_.Prepare(
                            "INSERT INTO attempts(job_id, number, retry_epoch, worker, "
                            "leased_at, outcome, token_id) VALUES(?,?,?,?,?,'leased',?)"));
  ins->Bind(1, job.id).Bind(2, number).Bind(3, job.retry_epoch).Bind(4, worker).Bind(5, now);
  if (principal != 0) ins->Bind(6, principal); else ins->BindNull(6);
  RETURN_IF_ERROR(ins->Run());
  const int64_t token = db_.LastInsertId();
  ASSIGN_OR_RETURN(up, db_.Prepare(
                           "UPDATE jobs SET state='leased', current_attempt=?, worker=?, "
                           "attempts=attempts+1, updated_at=?, lease_expires_at=? WHERE id=?"));
  up->Bind(1, token).Bind(2, worker).Bind(3, now).Bind(4, lease_expires_at).Bind(5, job.id);
  RETURN_IF_ERROR(up->Run());
  return token;
}

absl::Status JobStore::FinishAttempt(int64_t attempt_id, absl::string_view outcome,
                                     std::optional<absl::string_view> failure_class,
                                     absl::string_view error, int64_t now,
                                     const AttemptReport* r) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "UPDATE attempts SET outcome=?, failure_class=?, error=?, ended_at=?, "
                           "exit_code=?, log_tail=?, netlog_json=?, details_json=?, "
                           "started_at=coalesce(started_at, ?) WHERE id=?"));
  st->Bind(1, outcome).Bind(2, failure_class).Bind(3, error).Bind(4, now);
  if (r) {
    st->Bind(5, r->exit_code).Bind(6, r->log_tail).Bind(7, r->netlog_json)
        .Bind(8, r->details_json);
    if (r->started_at_ms > 0) st->Bind(9, r->started_at_ms); else st->BindNull(9);
  } else {
    st->BindNull(5).BindNull(6).BindNull(7).BindNull(8).BindNull(9);
  }
  st->Bind(10, attempt_id);
  return st->Run();
}

absl::StatusOr<std::optional<RecordedAttempt>> JobStore::Attempt(int64_t attempt_id) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "SELECT job_id, outcome, coalesce(failure_class,'') "
                           "FROM attempts WHERE id=?"));
  st->Bind(1, attempt_id);
  ASSIGN_OR_RETURN(row, st->Step());
  std::optional<RecordedAttempt> a;
  if (row) a = RecordedAttempt{st->Int(0), st->Text(1), st->Text(2)};
  st->Reset();
  return a;
}

absl::StatusOr<int> JobStore::CountFailures(const JobRow& job, absl::string_view failure_class) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "SELECT count(*) FROM attempts WHERE job_id=? AND retry_epoch=? "
                           "AND failure_class=?"));
  st->Bind(1, job.id).Bind(2, job.retry_epoch).Bind(3, failure_class);
  ASSIGN_OR_RETURN(row, st->Step());
  int failures = row ? static_cast<int>(st->Int(0)) : 1;
  st->Reset();
  return failures;
}

absl::StatusOr<std::string> JobStore::PreviousErrors(int64_t job_id, int64_t before_attempt) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "SELECT error FROM attempts WHERE job_id=? AND id<? AND "
                           "failure_class='invalid_output' ORDER BY id DESC LIMIT 1"));
  st->Bind(1, job_id).Bind(2, before_attempt);
  ASSIGN_OR_RETURN(row, st->Step());
  std::string errors = row ? st->Text(0) : std::string();
  st->Reset();
  return errors;
}

absl::Status JobStore::InsertResult(int64_t job_id, int64_t attempt_id,
                                    absl::string_view result_json, absl::string_view flags_json,
                                    int64_t now) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "INSERT INTO results(job_id, attempt_id, result_json, "
                           "stored_at, flags_json) VALUES(?,?,?,?,?)"));
  st->Bind(1, job_id).Bind(2, attempt_id).Bind(3, result_json).Bind(4, now).Bind(5, flags_json);
  return st->Run();
}

// ------------------------------------------------------------- batches

absl::StatusOr<int64_t> JobStore::InsertBatch(absl::string_view name,
                                              absl::string_view profile_json,
                                              absl::string_view retry_policy_json, int64_t now) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "INSERT INTO batches(name, profile_json, retry_policy_json, "
                           "created_at) VALUES(?,?,?,?)"));
  st->Bind(1, name).Bind(2, profile_json).Bind(3, retry_policy_json).Bind(4, now);
  RETURN_IF_ERROR(st->Run());
  return db_.LastInsertId();
}

absl::Status JobStore::UpdateBatchProfile(int64_t id, absl::string_view profile_json,
                                          absl::string_view retry_policy_json) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "UPDATE batches SET profile_json=?, retry_policy_json=? WHERE id=?"));
  st->Bind(1, profile_json).Bind(2, retry_policy_json).Bind(3, id);
  return st->Run();
}

absl::Status JobStore::SetBatchPaused(int64_t id, bool paused) {
  ASSIGN_OR_RETURN(st, db_.Prepare("UPDATE batches SET paused=? WHERE id=?"));
  st->Bind(1, paused ? 1 : 0).Bind(2, id);
  return st->Run();
}

absl::Status JobStore::SetBatchLimits(int64_t id, const LimitConfig& c) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "UPDATE batches SET max_running=?, start_rate_per_min=? WHERE id=?"));
  st->Bind(1, static_cast<int64_t>(c.max_running)).Bind(2, c.start_rate_per_min).Bind(3, id);
  return st->Run();
}

absl::Status JobStore::SetProviderLimits(absl::string_view provider, const LimitConfig& c) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "INSERT INTO provider_limits(name, max_running, "
                           "start_rate_per_min) VALUES(?,?,?) ON CONFLICT(name) DO "
                           "UPDATE SET max_running=excluded.max_running, "
                           "start_rate_per_min=excluded.start_rate_per_min"));
  st->Bind(1, provider).Bind(2, static_cast<int64_t>(c.max_running)).Bind(3, c.start_rate_per_min);
  return st->Run();
}

// ------------------------------------------------------------- workers

absl::Status JobStore::WorkerConnected(absl::string_view name, int slots, int64_t now) {
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "INSERT INTO workers(name, slots, connected, draining, last_seen) "
                           "VALUES(?,?,1,0,?) ON CONFLICT(name) DO UPDATE SET "
                           "slots=excluded.slots, connected=1, "
                           "last_seen=excluded.last_seen"));
  st->Bind(1, name).Bind(2, slots).Bind(3, now);
  return st->Run();
}

absl::Status JobStore::WorkerDisconnected(absl::string_view name, int64_t now) {
  ASSIGN_OR_RETURN(st, db_.Prepare("UPDATE workers SET connected=0, last_seen=? WHERE name=?"));
  st->Bind(1, now).Bind(2, name);
  return st->Run();
}

absl::Status JobStore::SetWorkerDraining(absl::string_view name, bool draining) {
  ASSIGN_OR_RETURN(st, db_.Prepare("UPDATE workers SET draining=? WHERE name=?"));
  st->Bind(1, draining ? 1 : 0).Bind(2, name);
  return st->Run();
}

}  // namespace assessq
