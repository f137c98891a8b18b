// Tests server/migrations together with the connection set-up in server/db:
// a fresh database migrates to LatestSchemaVersion with every table in
// place, running Migrate again changes nothing, a database written by a newer
// coordinator (higher schema_version) is refused with FAILED_PRECONDITION and
// left untouched, and connections run in WAL mode with synchronous=FULL and
// foreign keys on.
#include "server/migrations.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/db.h"
#include "server/engine.h"

#include "tests/support/process.h"

namespace assessq {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class MigrationsTest : public ::testing::Test {
 protected:
  std::unique_ptr<Db> OpenDb() {
    auto db = Db::Open(path_, {});
    EXPECT_TRUE(db.ok()) << db.status();
    return db.ok() ? std::move(*db) : nullptr;
  }

  static std::string Text(Db& db, const std::string& sql) {
    auto st = db.Prepare(sql);
    EXPECT_TRUE(st.ok()) << st.status();
    if (!st.ok()) return "<error>";
    auto row = (*st)->Step();
    EXPECT_TRUE(row.ok()) << row.status();
    std::string v = row.ok() && *row ? (*st)->Text(0) : "<no row>";
    (*st)->Reset();
    return v;
  }
  static int64_t Int(Db& db, const std::string& sql) { return std::stoll(Text(db, sql)); }

  aqtest::TempDir tmp_{"assessq_migrations_test"};
  fs::path dir_ = tmp_.path();
  std::string path_ = (dir_ / "coordinator.db").string();
};

TEST_F(MigrationsTest, FreshDatabaseMigratesToLatest) {
  ASSERT_GE(LatestSchemaVersion(), 1);
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(Migrate(*db).ok());
  EXPECT_EQ(Int(*db, "SELECT max(version) FROM schema_version"), LatestSchemaVersion());
  EXPECT_EQ(Int(*db, "SELECT count(*) FROM schema_version"), LatestSchemaVersion());
  for (const char* table :
       {"batches", "inputs", "jobs", "attempts", "results", "workers", "tokens", "events"}) {
    EXPECT_EQ(Int(*db, absl::StrCat("SELECT count(*) FROM sqlite_master WHERE type='table' "
                                    "AND name='", table, "'")),
              1)
        << table;
  }
  // The schema enforces what the engine relies on: a valid row goes in, an
  // unknown state or a missing input does not.
  ASSERT_TRUE(db->Exec("INSERT INTO batches(name, profile_json, retry_policy_json, created_at) "
                       "VALUES('b', '{}', '{}', 1); "
                       "INSERT INTO inputs(id, sha256, content, size) VALUES(1, 'h', 'x', 1)")
                  .ok());
  const std::string job = "INSERT INTO jobs(batch_id, dataset_key, source_name, dataset_name, "
                          "input_sha256, input_id, state, ready_at, created_at, updated_at) "
                          "VALUES(1, 'k', 'k.json', 'K', 'h', ";
  EXPECT_FALSE(db->Exec(job + "1, 'bogus', 0, 0, 0)").ok());
  EXPECT_FALSE(db->Exec(job + "2, 'queued', 0, 0, 0)").ok()) << "input 2 does not exist";
  EXPECT_TRUE(db->Exec(job + "1, 'queued', 0, 0, 0)").ok());
}

TEST_F(MigrationsTest, RerunningIsANoOp) {
  {
    auto db = OpenDb();
    ASSERT_TRUE(Migrate(*db).ok());
    ASSERT_TRUE(db->Exec("INSERT INTO batches(name, profile_json, retry_policy_json, created_at) "
                         "VALUES('keep-me', '{}', '{}', 1)")
                    .ok());
    ASSERT_TRUE(Migrate(*db).ok());
    EXPECT_EQ(Int(*db, "SELECT count(*) FROM schema_version"), LatestSchemaVersion());
  }
  // Again on a new connection, as after a restart.
  auto db = OpenDb();
  const std::string schema = Text(*db, "SELECT group_concat(sql, ';') FROM sqlite_master");
  ASSERT_TRUE(Migrate(*db).ok());
  EXPECT_EQ(Int(*db, "SELECT count(*) FROM schema_version"), LatestSchemaVersion());
  EXPECT_EQ(Int(*db, "SELECT max(version) FROM schema_version"), LatestSchemaVersion());
  EXPECT_EQ(Text(*db, "SELECT group_concat(sql, ';') FROM sqlite_master"), schema);
  EXPECT_EQ(Text(*db, "SELECT name FROM batches"), "keep-me");
}

// v4 rebuilds jobs and inputs (inputs by id, no sha256 index); a database
// written by a v3 coordinator keeps every row, the foreign keys hold, and the
// engine leases its jobs with their metadata.
TEST_F(MigrationsTest, V4FillsInputIdsOfOlderJobs) {
  {
    auto db = OpenDb();
    ASSERT_TRUE(MigrateTo(*db, 3).ok());
    ASSERT_EQ(Int(*db, "SELECT max(version) FROM schema_version"), 3);
    ASSERT_TRUE(db->Exec("INSERT INTO batches(name, profile_json, retry_policy_json, created_at) "
                         "VALUES('b', '{}', '{}', 1); "
                         "INSERT INTO inputs VALUES('h1', '{\"Name\": \"One\"}', 15); "
                         "INSERT INTO inputs VALUES('h2', '{\"Name\": \"Two\"}', 15); "
                         "INSERT INTO jobs(batch_id, dataset_key, source_name, dataset_name, "
                         "input_sha256, state, ready_at, created_at, updated_at) VALUES "
                         "(1, 'two', 'two.json', 'Two', 'h2', 'queued', 0, 0, 0), "
                         "(1, 'one', 'one.json', 'One', 'h1', 'queued', 0, 0, 0), "
                         "(1, 'old', 'old.json', 'Old', 'h1', 'succeeded', 0, 0, 0); "
                         "INSERT INTO attempts(job_id, number, retry_epoch, worker, leased_at, "
                         "outcome) VALUES(3, 1, 0, 'w', 0, 'succeeded'); "
                         "INSERT INTO results(job_id, attempt_id, result_json, stored_at) "
                         "VALUES(3, 1, '{}', 0); "
                         "INSERT INTO events(ts, batch_id, job_id, kind, detail) "
                         "VALUES(0, 1, 3, 'succeeded', 'w')")
                    .ok());
  }
  {
    auto db = OpenDb();
    ASSERT_TRUE(Migrate(*db).ok());
    EXPECT_EQ(Int(*db, "SELECT count(*) FROM jobs j JOIN inputs i ON i.id=j.input_id "
                       "WHERE i.sha256=j.input_sha256"),
              3);
    // The rebuilt jobs table kept its rows, ids and everything that points
    // at them; the foreign keys hold and are enforced again.
    EXPECT_EQ(Text(*db, "SELECT group_concat(id || ':' || dataset_key || ':' || state, ' ') "
                        "FROM (SELECT * FROM jobs ORDER BY id)"),
              "1:two:queued 2:one:queued 3:old:succeeded");
    EXPECT_EQ(Int(*db, "SELECT count(*) FROM results r JOIN attempts a ON a.id=r.attempt_id "
                       "JOIN jobs j ON j.id=r.job_id AND j.id=a.job_id"),
              1);
    EXPECT_EQ(Text(*db, "SELECT count(*) FROM pragma_foreign_key_check"), "0");
    EXPECT_EQ(Int(*db, "PRAGMA foreign_keys"), 1);
    EXPECT_FALSE(db->Exec("INSERT INTO results(job_id, attempt_id, result_json, stored_at) "
                          "VALUES(99, 98, '{}', 0)")
                     .ok());
    // The queue's indexes are back, and the input has no sha256 index.
    EXPECT_EQ(Int(*db, "SELECT count(*) FROM sqlite_master WHERE type='index' AND name IN "
                       "('jobs_ready','jobs_batch_state','jobs_current_key')"),
              3);
    EXPECT_EQ(Int(*db, "SELECT count(*) FROM sqlite_master WHERE type='index' "
                       "AND tbl_name='inputs'"),
              0);
  }
  EngineOptions o;
  o.db_path = path_;
  auto e = Engine::Open(std::move(o));
  ASSERT_TRUE(e.ok()) << e.status();
  struct Sink : SessionSink {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<v1::Lease> leases;
    void Push(const v1::CoordinatorMessage& m) override {
      std::lock_guard<std::mutex> l(mu);
      if (m.has_lease()) leases.push_back(m.lease());
      cv.notify_all();
    }
    void Close(const std::string&) override {}
  };
  auto sink = std::make_shared<Sink>();
  auto sid = (*e)->Sync<int64_t>([&](auto done) { (*e)->OpenSession("w", 2, sink, done); });
  ASSERT_TRUE(sid.ok()) << sid.status();
  std::unique_lock<std::mutex> l(sink->mu);
  ASSERT_TRUE(sink->cv.wait_for(l, std::chrono::seconds(10), [&] { return sink->leases.size() == 2; }));
  // Any further lease would have been sent before an engine call queued now
  // is answered.
  l.unlock();
  (void)(*e)->Sync<std::vector<WorkerView>>([&](auto done) { (*e)->ListWorkers(done); });
  l.lock();
  EXPECT_EQ(sink->leases.size(), 2u) << "the succeeded job is not leased";
  for (const auto& lease : sink->leases)
    EXPECT_EQ(lease.metadata(), lease.dataset_key() == "one" ? R"({"Name": "One"})"
                                                             : R"({"Name": "Two"})")
        << lease.dataset_key();
}

TEST_F(MigrationsTest, NewerDatabaseIsRefusedAndLeftAlone) {
  const int newer = LatestSchemaVersion() + 1;
  {
    auto db = OpenDb();
    ASSERT_TRUE(db->Exec("CREATE TABLE schema_version(version INTEGER NOT NULL)").ok());
    ASSERT_TRUE(db->Exec(absl::StrCat("INSERT INTO schema_version VALUES(", newer, ")")).ok());
  }
  auto db = OpenDb();
  absl::Status s = Migrate(*db);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(absl::StrCat(newer)));
  EXPECT_THAT(std::string(s.message()), HasSubstr("newer"));
  EXPECT_EQ(Int(*db, "SELECT count(*) FROM sqlite_master WHERE name='jobs'"), 0);
  EXPECT_EQ(Int(*db, "SELECT max(version) FROM schema_version"), newer);

  // The engine refuses to start on it too.
  EngineOptions o;
  o.db_path = path_;
  auto e = Engine::Open(std::move(o));
  EXPECT_EQ(e.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(MigrationsTest, ConnectionsUseWalWithFullSync) {
  auto db = OpenDb();
  ASSERT_TRUE(Migrate(*db).ok());
  EXPECT_EQ(Text(*db, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(Int(*db, "PRAGMA synchronous"), 2);  // FULL
  EXPECT_EQ(Int(*db, "PRAGMA foreign_keys"), 1);
  // WAL is a property of the file: a later connection sees it too.
  auto again = OpenDb();
  EXPECT_EQ(Text(*again, "PRAGMA journal_mode"), "wal");
  auto ro = Db::Open(path_, {.read_only = true, .synchronous_full = false});
  ASSERT_TRUE(ro.ok()) << ro.status();
  EXPECT_EQ(Text(**ro, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(Int(**ro, "PRAGMA synchronous"), 1);  // NORMAL
}

}  // namespace
}  // namespace assessq
