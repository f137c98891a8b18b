#include "server/migrations.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace assessq {
namespace {

// One migration. `rebuild`: it rebuilds tables that others reference, so it
// runs with foreign keys off (SQLite's documented procedure) and must leave
// no violation behind (checked before its commit).
struct Step {
  std::string sql;
  bool rebuild = false;
};

// The jobs columns from `state` to `updated_at` as v1 created them; v4's
// rebuild keeps them as they are around the columns it adds. Part of shipped
// migrations: never edit.
constexpr char kJobsV1StateColumns[] = R"sql(  state TEXT NOT NULL CHECK(state IN
    ('queued','leased','running','succeeded','needs_attention','cancelled')),
  ready_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  retry_epoch INTEGER NOT NULL DEFAULT 0,
  current_attempt INTEGER,
  worker TEXT,
  last_failure_class TEXT,
  last_error TEXT,
  superseded_by INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL)sql";

// Append only: never edit a migration that has shipped.
const std::vector<Step>& Steps() {
  static const std::vector<Step> steps = {
      // v1: the queue, attempts, results, workers, tokens, event log.
      {absl::StrCat(R"sql(
CREATE TABLE batches(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  profile_json TEXT NOT NULL,
  retry_policy_json TEXT NOT NULL,
  paused INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL);
CREATE TABLE inputs(
  sha256 TEXT PRIMARY KEY,
  content BLOB NOT NULL,
  size INTEGER NOT NULL);
CREATE TABLE jobs(
  id INTEGER PRIMARY KEY,
  batch_id INTEGER NOT NULL REFERENCES batches(id),
  dataset_key TEXT NOT NULL,
  source_name TEXT NOT NULL,
  dataset_name TEXT NOT NULL,
  input_sha256 TEXT NOT NULL REFERENCES inputs(sha256),
)sql", kJobsV1StateColumns, R"sql();
CREATE INDEX jobs_ready ON jobs(ready_at, id) WHERE state = 'queued';
CREATE INDEX jobs_batch_state ON jobs(batch_id, state);
CREATE UNIQUE INDEX jobs_current_key ON jobs(batch_id, dataset_key)
  WHERE superseded_by IS NULL;
CREATE TABLE attempts(
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  number INTEGER NOT NULL,
  retry_epoch INTEGER NOT NULL,
  worker TEXT NOT NULL,
  leased_at INTEGER NOT NULL,
  started_at INTEGER,
  ended_at INTEGER,
  outcome TEXT NOT NULL,
  failure_class TEXT,
  exit_code INTEGER,
  error TEXT,
  log_tail TEXT,
  netlog_json TEXT,
  details_json TEXT);
CREATE INDEX attempts_job ON attempts(job_id);
CREATE TABLE results(
  job_id INTEGER PRIMARY KEY REFERENCES jobs(id),
  attempt_id INTEGER NOT NULL UNIQUE REFERENCES attempts(id),
  result_json TEXT NOT NULL,
  stored_at INTEGER NOT NULL);
CREATE TABLE workers(
  name TEXT PRIMARY KEY,
  slots INTEGER NOT NULL,
  connected INTEGER NOT NULL,
  draining INTEGER NOT NULL DEFAULT 0,
  last_seen INTEGER NOT NULL);
CREATE TABLE tokens(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK(role IN ('operator','worker')),
  hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE events(
  id INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  batch_id INTEGER,
  job_id INTEGER,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL);
CREATE INDEX events_job ON events(job_id);
CREATE INDEX events_batch_kind_ts ON events(batch_id, kind, ts);
)sql")},
      // v2: trust flags stored with each result.
      {R"sql(
ALTER TABLE results ADD COLUMN flags_json TEXT NOT NULL DEFAULT '[]';
)sql"},
      // v3: fleet-wide start limits per batch and per model provider.
      {R"sql(
ALTER TABLE batches ADD COLUMN max_running INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN start_rate_per_min REAL NOT NULL DEFAULT 0;
CREATE TABLE provider_limits(
  name TEXT PRIMARY KEY,
  max_running INTEGER NOT NULL DEFAULT 0,
  start_rate_per_min REAL NOT NULL DEFAULT 0);
)sql"},
      // v4, rebuilt with foreign keys off (see Step::rebuild):
      // - inputs are rows of their own (id), without a unique sha256 index:
      //   that random-keyed index was what made the queue slower as it grew
      //   (one random B-tree page per submitted file); jobs point at their
      //   input by id. Resubmitting a file to its batch is still recognised by
      //   comparing it with the job's own input_sha256; a file submitted to
      //   another batch is stored again.
      // - each attempt records the token (id) whose session took the lease,
      //   the only one that may renew or complete it;
      // - each lease's expiry is stored, and when the coordinator was last
      //   alive: a restart resumes each lease's clock where it stopped
      //   instead of granting a fresh period.
      {absl::StrCat(R"sql(
CREATE TABLE inputs_v4(
  id INTEGER PRIMARY KEY,
  sha256 TEXT NOT NULL,
  content BLOB NOT NULL,
  size INTEGER NOT NULL);
INSERT INTO inputs_v4(id, sha256, content, size) SELECT rowid, sha256, content, size FROM inputs;
CREATE TABLE jobs_v4(
  id INTEGER PRIMARY KEY,
  batch_id INTEGER NOT NULL REFERENCES batches(id),
  dataset_key TEXT NOT NULL,
  source_name TEXT NOT NULL,
  dataset_name TEXT NOT NULL,
  input_sha256 TEXT NOT NULL,
  input_id INTEGER NOT NULL REFERENCES inputs(id),
)sql", kJobsV1StateColumns, R"sql(,
  lease_expires_at INTEGER);
INSERT INTO jobs_v4(id, batch_id, dataset_key, source_name, dataset_name, input_sha256, input_id,
                    state, ready_at, attempts, retry_epoch, current_attempt, worker,
                    last_failure_class, last_error, superseded_by, created_at, updated_at)
  SELECT j.id, j.batch_id, j.dataset_key, j.source_name, j.dataset_name, j.input_sha256, i.rowid,
         j.state, j.ready_at, j.attempts, j.retry_epoch, j.current_attempt, j.worker,
         j.last_failure_class, j.last_error, j.superseded_by, j.created_at, j.updated_at
  FROM jobs j JOIN inputs i ON i.sha256 = j.input_sha256;
DROP TABLE jobs;
ALTER TABLE jobs_v4 RENAME TO jobs;
DROP TABLE inputs;
ALTER TABLE inputs_v4 RENAME TO inputs;
CREATE INDEX jobs_ready ON jobs(ready_at, id) WHERE state = 'queued';
CREATE INDEX jobs_batch_state ON jobs(batch_id, state);
CREATE UNIQUE INDEX jobs_current_key ON jobs(batch_id, dataset_key)
  WHERE superseded_by IS NULL;
ALTER TABLE attempts ADD COLUMN token_id INTEGER;
CREATE TABLE engine_clock(id INTEGER PRIMARY KEY CHECK(id = 1), alive_at INTEGER NOT NULL);
)sql"),
       /*rebuild=*/true},
      // v5: cost. Each attempt's model usage (cumulative per provider and
      // model, as the egress gateway counted it), whether the gateway refused
      // a request at the job's cap, the agent's own cost figure; each batch's
      // budget (0: none) and own price table ('': the coordinator's).
      {R"sql(
CREATE TABLE attempt_usage(
  attempt_id INTEGER NOT NULL REFERENCES attempts(id),
  provider TEXT NOT NULL,
  model TEXT NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cache_write_tokens INTEGER NOT NULL DEFAULT 0,
  cache_read_tokens INTEGER NOT NULL DEFAULT 0,
  duration_ms INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(attempt_id, provider, model)) WITHOUT ROWID;
ALTER TABLE attempts ADD COLUMN budget_exhausted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN agent_cost_usd REAL;
ALTER TABLE batches ADD COLUMN budget_usd REAL NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN prices_json TEXT NOT NULL DEFAULT '';
)sql"},
  };
  return steps;
}

absl::StatusOr<int> CurrentVersion(Db& db) {
  if (auto s = db.Exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
      !s.ok())
    return s;
  auto st = db.Prepare("SELECT max(version) FROM schema_version");
  if (!st.ok()) return st.status();
  auto row = (*st)->Step();
  if (!row.ok()) return row.status();
  int v = (*st)->IsNull(0) ? 0 : static_cast<int>((*st)->Int(0));
  (*st)->Reset();
  return v;
}

}  // namespace

int LatestSchemaVersion() { return static_cast<int>(Steps().size()); }

absl::Status Migrate(Db& db) { return MigrateTo(db, LatestSchemaVersion()); }

absl::Status MigrateTo(Db& db, int target) {
  auto v = CurrentVersion(db);
  if (!v.ok()) return v.status();
  if (*v > LatestSchemaVersion())
    return absl::FailedPreconditionError(absl::StrCat(
        "database schema version ", *v, " is newer than this coordinator (",
        LatestSchemaVersion(), "); upgrade coordinatord"));
  for (int next = *v + 1; next <= std::min(target, LatestSchemaVersion()); ++next) {
    const Step& step = Steps()[next - 1];
    // PRAGMA foreign_keys has no effect inside a transaction: set it around.
    if (step.rebuild)
      if (auto e = db.Exec("PRAGMA foreign_keys=OFF"); !e.ok()) return e;
    auto s = InTransaction(db, [&]() -> absl::Status {
      if (auto e = db.Exec(step.sql); !e.ok()) return e;
      if (step.rebuild) {
        auto check = db.Prepare("PRAGMA foreign_key_check");
        if (!check.ok()) return check.status();
        auto row = (*check)->Step();
        if (!row.ok()) return row.status();
        const bool violation = *row;
        const std::string table = violation ? (*check)->Text(0) : "";
        (*check)->Reset();
        if (violation)
          return absl::FailedPreconditionError(
              absl::StrCat("foreign key violation in table ", table, " after the rebuild"));
      }
      return db.Exec(absl::StrCat("INSERT INTO schema_version(version) VALUES(", next, ")"));
    });
    if (step.rebuild) (void)db.Exec("PRAGMA foreign_keys=ON");
    if (!s.ok())
      return absl::Status(s.code(), absl::StrCat("migration to v", next, ": ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace assessq
