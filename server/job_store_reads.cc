// The read side's statements (Queries: status, listings, job detail,
// results, export, fleet gauges), each filling its answer from the
// connection's current snapshot; the engine's are in job_store.cc.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/job_store.h"
#include "server/model.h"
#include "server/usage_store.h"

namespace assessq {

namespace {
#define SUMMARY_SELECT                                                                 \
  "SELECT j.id, b.name, j.dataset_key, j.dataset_name, j.source_name, j.state, j.attempts, " \
  "coalesce(j.last_failure_class,''), coalesce(j.last_error,''), coalesce(j.worker,''), "     \
  "j.created_at, j.updated_at, j.ready_at, j.input_sha256 "
constexpr char kSummaryCols[] = SUMMARY_SELECT "FROM jobs j JOIN batches b ON b.id=j.batch_id ";

void FillSummary(const Stmt& st, v1::JobSummary* s) {
  s->set_job_id(st.Int(0));
  s->set_batch(st.Text(1));
  s->set_dataset_key(st.Text(2));
  s->set_dataset_name(st.Text(3));
  s->set_source_name(st.Text(4));
  s->set_state(StateFromName(st.Text(5)).value_or(v1::JOB_STATE_UNSPECIFIED));
  s->set_attempts(static_cast<int32_t>(st.Int(6)));
  s->set_last_failure_class(ClassFromName(st.Text(7)).value_or(v1::FAILURE_CLASS_UNSPECIFIED));
  s->set_last_error(st.Text(8));
  s->set_worker(st.Text(9));
  s->set_created_at_ms(st.Int(10));
  s->set_updated_at_ms(st.Int(11));
  s->set_ready_at_ms(st.Int(12));
  s->set_input_sha256(st.Text(13));
}

// Steps `st` to its end, calling `fn` with each row.
template <typename Fn>
absl::Status EachRow(Stmt* st, Fn fn) {
  while (true) {
    ASSIGN_OR_RETURN(row, st->Step());
    if (!row) break;
    fn(*st);
  }
  return absl::OkStatus();
}

// Sets counts[column 0] = column 1 for each row (a name and a count).
template <typename Map>
absl::Status CountsInto(Stmt* st, Map& counts) {
  return EachRow(st, [&](const Stmt& r) { counts[r.Text(0)] = r.Int(1); });
}

}  // namespace

absl::Status JobStore::Ping() {
  ASSIGN_OR_RETURN(st, db_.Prepare("SELECT count(*) FROM schema_version"));
  return st->Step().status();
}

absl::StatusOr<v1::StatusResponse> JobStore::Status(const std::string& batch, int64_t now) {
  Db& db = db_;
  v1::StatusResponse resp;
  ASSIGN_OR_RETURN(bs, db.Prepare(
                           "SELECT id, name, paused, created_at FROM batches "
                           "WHERE ?='' OR name=? ORDER BY id"));
  bs->Bind(1, batch).Bind(2, batch);
  std::vector<std::pair<int64_t, v1::BatchStatus>> out;
  while (true) {
    ASSIGN_OR_RETURN(row, bs->Step());
    if (!row) break;
    v1::BatchStatus b;
    b.set_name(bs->Text(1));
    b.set_paused(bs->Int(2) != 0);
    b.set_created_at_ms(bs->Int(3));
    out.push_back({bs->Int(0), std::move(b)});
  }
  if (!batch.empty() && out.empty())
    return absl::NotFoundError(absl::StrCat("no batch '", batch, "'"));
  for (auto& [id, b] : out) {
    for (int s = v1::JOB_STATE_QUEUED; s <= v1::JOB_STATE_CANCELLED; ++s)
      (*b.mutable_counts())[std::string(StateName(static_cast<v1::JobState>(s)))] = 0;
    ASSIGN_OR_RETURN(c, db.Prepare(
                            "SELECT state, count(*) FROM jobs WHERE batch_id=? AND "
                            "superseded_by IS NULL GROUP BY state"));
    c->Bind(1, id);
    RETURN_IF_ERROR(CountsInto(c, *b.mutable_counts()));
    int64_t total = 0, remaining = 0;
    for (const auto& [state, n] : b.counts()) {
      total += n;
      auto st = StateFromName(state);
      if (st && InFlight(*st)) remaining += n;
    }
    b.set_total(total);
    // Attempts by failure class, and the flags of the batch's results.
    for (auto [sql, counts] :
         {std::pair{"SELECT a.failure_class, count(*) FROM attempts a JOIN jobs j ON "
                    "j.id=a.job_id WHERE j.batch_id=? AND a.failure_class IS NOT NULL "
                    "GROUP BY a.failure_class",
                    b.mutable_failure_counts()},
          std::pair{"SELECT e.value, count(*) FROM results r JOIN jobs j ON j.id=r.job_id, "
                    "json_each(r.flags_json) e WHERE j.batch_id=? AND j.superseded_by IS NULL "
                    "GROUP BY e.value",
                    b.mutable_flag_counts()}}) {
      ASSIGN_OR_RETURN(st, db.Prepare(sql));
      st->Bind(1, id);
      RETURN_IF_ERROR(CountsInto(st, *counts));
    }
    // Requests the egress gateways denied, from the attempts' network logs.
    ASSIGN_OR_RETURN(dn, db.Prepare(
                             "SELECT count(*) FROM attempts a JOIN jobs j ON j.id=a.job_id, "
                             "json_each(CASE WHEN json_valid(a.netlog_json) THEN a.netlog_json "
                             "ELSE '[]' END) e WHERE j.batch_id=? AND a.netlog_json IS NOT NULL "
                             "AND a.netlog_json<>'' AND json_extract(e.value,'$.decision')='deny'"));
    dn->Bind(1, id);
    ASSIGN_OR_RETURN(dnrow, dn->Step());
    b.set_denied_requests(dnrow ? dn->Int(0) : 0);
    // Throughput over the last ten minutes (or since the batch began).
    constexpr int64_t kWindow = 10 * 60 * 1000;
    int64_t since = std::max(now - kWindow, b.created_at_ms());
    ASSIGN_OR_RETURN(t, db.Prepare(
                            "SELECT count(*) FROM events WHERE batch_id=? AND "
                            "kind='succeeded' AND ts>=?"));
    t->Bind(1, id).Bind(2, since);
    ASSIGN_OR_RETURN(trow, t->Step());
    int64_t done = trow ? t->Int(0) : 0;
    double minutes = std::max(1.0, static_cast<double>(now - since)) / 60000.0;
    double rate = done / minutes;
    b.set_throughput_per_min(rate);
    b.set_eta_seconds(remaining == 0 ? 0 : rate > 0 ? static_cast<int64_t>(remaining / rate * 60) : -1);
    if (usage_) RETURN_IF_ERROR(usage_->FillBatchSpend(db, id, total, b.mutable_spend()));
    resp.add_batches()->Swap(&b);
  }
  return resp;
}

absl::StatusOr<v1::ListJobsResponse> JobStore::ListJobs(const v1::ListJobsRequest& req) {
  std::string sql = absl::StrCat(kSummaryCols,
                                 "WHERE j.superseded_by IS NULL AND j.id>? "
                                 "AND (?='' OR b.name=?) AND (?='' OR j.state=?) "
                                 "AND (?='' OR j.last_failure_class=?) ORDER BY j.id LIMIT ?");
  ASSIGN_OR_RETURN(st, db_.Prepare(sql));
  std::string state = req.state() ? std::string(StateName(req.state())) : "";
  std::string cls = std::string(ClassName(req.failure_class()));
  st->Bind(1, req.after_job_id()).Bind(2, req.batch()).Bind(3, req.batch());
  st->Bind(4, state).Bind(5, state).Bind(6, cls).Bind(7, cls);
  st->Bind(8, static_cast<int64_t>(req.limit() > 0 ? req.limit() : 1000));
  v1::ListJobsResponse resp;
  while (true) {
    ASSIGN_OR_RETURN(row, st->Step());
    if (!row) break;
    FillSummary(*st, resp.add_jobs());
  }
  return resp;
}

absl::StatusOr<v1::JobDetail> JobStore::ShowJob(const JobKey& key) {
  Db& db = db_;
  ASSIGN_OR_RETURN(id, ResolveJob(key));
  v1::JobDetail d;
  ASSIGN_OR_RETURN(st, db.Prepare(absl::StrCat(kSummaryCols, "WHERE j.id=?")));
  st->Bind(1, id);
  ASSIGN_OR_RETURN(row, st->Step());
  if (!row) return absl::NotFoundError(absl::StrCat("no job ", id));
  FillSummary(*st, d.mutable_job());
  ASSIGN_OR_RETURN(at, db.Prepare(
                           "SELECT id, number, worker, leased_at, coalesce(started_at,0), "
                           "coalesce(ended_at,0), outcome, coalesce(failure_class,''), "
                           "coalesce(exit_code,0), coalesce(error,''), coalesce(log_tail,''), "
                           "coalesce(netlog_json,''), coalesce(details_json,'') "
                           "FROM attempts WHERE job_id=? ORDER BY id"));
  at->Bind(1, id);
  RETURN_IF_ERROR(EachRow(at, [&](const Stmt& r) {
    auto* a = d.add_attempts();
    a->set_attempt_id(r.Int(0));
    a->set_number(static_cast<int32_t>(r.Int(1)));
    a->set_worker(r.Text(2));
    a->set_outcome(r.Text(6));
    a->set_failure_class(ClassFromName(r.Text(7)).value_or(v1::FAILURE_CLASS_UNSPECIFIED));
    a->set_leased_at_ms(r.Int(3));
    a->set_started_at_ms(r.Int(4));
    a->set_ended_at_ms(r.Int(5));
    a->set_exit_code(static_cast<int32_t>(r.Int(8)));
    a->set_error(r.Text(9));
    a->set_log_tail(r.Text(10));
    a->set_netlog_json(r.Text(11));
    a->set_details_json(r.Text(12));
  }));
  if (usage_) RETURN_IF_ERROR(usage_->FillAttempts(db, &d));  // usage, cost, agent's figure
  ASSIGN_OR_RETURN(fl, db.Prepare("SELECT flags_json FROM results WHERE job_id=?"));
  fl->Bind(1, id);
  ASSIGN_OR_RETURN(flrow, fl->Step());
  if (flrow) {
    auto flags = nlohmann::json::parse(fl->Text(0), nullptr, false);
    if (flags.is_array())
      for (const auto& f : flags)
        if (f.is_string()) d.add_flags(f.get<std::string>());
  }
  ASSIGN_OR_RETURN(ev, db.Prepare(
                           "SELECT id, ts, kind, detail FROM events WHERE job_id=? ORDER BY id"));
  ev->Bind(1, id);
  RETURN_IF_ERROR(EachRow(ev, [&](const Stmt& r) {
    auto* e = d.add_events();
    e->set_id(r.Int(0));
    e->set_ts_ms(r.Int(1));
    e->set_kind(r.Text(2));
    e->set_detail(r.Text(3));
  }));
  return d;
}

absl::StatusOr<JobStore::CheckInputs> JobStore::ResultInputs(int64_t job_id) {
  static constexpr char kSql[] =
      "SELECT b.name, j.dataset_key, j.dataset_name, b.profile_json, i.content FROM jobs j "
      "JOIN batches b ON b.id=j.batch_id JOIN inputs i ON i.id=j.input_id WHERE j.id=?";
  ASSIGN_OR_RETURN(st, db_.Prepare(kSql));
  st->Bind(1, job_id);
  ASSIGN_OR_RETURN(row, st->Step());
  if (!row) return absl::NotFoundError(absl::StrCat("no job ", job_id));
  return CheckInputs{st->Text(0), st->Text(1), st->Text(2), st->Text(3), st->Text(4)};
}

absl::StatusOr<v1::ResultResponse> JobStore::GetResult(const JobKey& key) {
  ASSIGN_OR_RETURN(id, ResolveJob(key));
  ASSIGN_OR_RETURN(st, db_.Prepare(
                           "SELECT attempt_id, result_json, stored_at FROM results WHERE job_id=?"));
  st->Bind(1, id);
  ASSIGN_OR_RETURN(row, st->Step());
  if (!row) return absl::NotFoundError(absl::StrCat("job ", id, " has no stored result"));
  v1::ResultResponse r;
  r.set_job_id(id);
  r.set_attempt_id(st->Int(0));
  r.set_result_json(st->Text(1));
  r.set_stored_at_ms(st->Int(2));
  return r;
}

absl::Status JobStore::Export(const v1::ExportRequest& req,
                              const std::function<bool(v1::ExportRecord)>& sink) {
  Db& db = db_;
  ASSIGN_OR_RETURN(b, db.Prepare("SELECT id FROM batches WHERE name=?"));
  b->Bind(1, req.batch());
  ASSIGN_OR_RETURN(brow, b->Step());
  if (!brow) return absl::NotFoundError(absl::StrCat("no batch '", req.batch(), "'"));
  ASSIGN_OR_RETURN(st, db.Prepare(
                           SUMMARY_SELECT
                           ", coalesce(r.result_json,''), coalesce(r.flags_json,'[]'), "
                           "coalesce((SELECT a.details_json FROM attempts a WHERE a.id=r.attempt_id),''), "
                           "coalesce((SELECT max(a.ended_at)-min(a.leased_at) FROM attempts a "
                           "WHERE a.job_id=j.id),0) "
                           "FROM jobs j JOIN batches b ON b.id=j.batch_id "
                           "LEFT JOIN results r ON r.job_id=j.id "
                           "WHERE b.name=? AND j.superseded_by IS NULL "
                           "AND (? OR j.state='succeeded') ORDER BY j.id"));
  st->Bind(1, req.batch()).Bind(2, req.include_unfinished() ? 1 : 0);
  while (true) {
    ASSIGN_OR_RETURN(row, st->Step());
    if (!row) break;
    v1::ExportRecord rec;
    FillSummary(*st, rec.mutable_job());
    rec.set_result_json(st->Text(14));
    auto flags = nlohmann::json::parse(st->Text(15), nullptr, false);
    if (flags.is_array())
      for (const auto& f : flags)
        if (f.is_string()) rec.add_flags(f.get<std::string>());
    rec.set_details_json(st->Text(16));
    rec.set_duration_ms(st->Int(17));
    rec.set_attempts(rec.job().attempts());
    rec.set_worker(rec.job().worker());
    if (!sink(std::move(rec))) break;
  }
  return absl::OkStatus();
}

absl::StatusOr<FleetSnapshot> JobStore::Fleet(int64_t now) {
  Db& db = db_;
  FleetSnapshot f;
  for (int s = v1::JOB_STATE_QUEUED; s <= v1::JOB_STATE_CANCELLED; ++s)
    f.jobs_by_state[std::string(StateName(static_cast<v1::JobState>(s)))] = 0;
  ASSIGN_OR_RETURN(c, db.Prepare("SELECT state, count(*) FROM jobs WHERE superseded_by IS NULL "
                                 "GROUP BY state"));
  RETURN_IF_ERROR(CountsInto(c, f.jobs_by_state));
  ASSIGN_OR_RETURN(q, db.Prepare("SELECT count(*), coalesce(min(ready_at),0) FROM jobs "
                                 "WHERE state='queued' AND ready_at<=? AND superseded_by IS NULL"));
  q->Bind(1, now);
  ASSIGN_OR_RETURN(qrow, q->Step());
  if (qrow) {
    f.queued_ready = q->Int(0);
    f.oldest_ready_at_ms = q->Int(1);
  }
  q->Reset();
  ASSIGN_OR_RETURN(a, db.Prepare("SELECT coalesce(min(a.leased_at),0) FROM jobs j JOIN attempts a "
                                 "ON a.id=j.current_attempt WHERE j.state IN ('leased','running')"));
  ASSIGN_OR_RETURN(arow, a->Step());
  if (arow) f.oldest_lease_at_ms = a->Int(0);
  a->Reset();
  ASSIGN_OR_RETURN(w, db.Prepare("SELECT count(*), coalesce(sum(draining),0), coalesce(sum(slots),0) "
                                 "FROM workers WHERE connected=1"));
  ASSIGN_OR_RETURN(wrow, w->Step());
  if (wrow) {
    f.workers_connected = w->Int(0);
    f.workers_draining = w->Int(1);
    f.worker_slots = w->Int(2);
  }
  w->Reset();
  return f;
}

}  // namespace assessq
