// The engine's transaction object (server/txn.h) and the in-memory tables
// that change through it (server/engine_state.h), on a real SQLite file with
// the coordinator's schema: an operation that fails, by its own error or by
// a failing SQL statement, leaves the database, every table and the effects
// as they were, whatever the order of its statements and changes; one that
// succeeds keeps them and hands its effects to the group, in order.
#include "server/txn.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "server/db.h"
#include "server/engine_state.h"
#include "server/job_store.h"
#include "server/migrations.h"

namespace assessq {
namespace {

namespace fs = std::filesystem;

class NullSink : public SessionSink {
 public:
  void Push(const v1::CoordinatorMessage&) override {}
  void Close(const std::string&) override {}
};

class TxnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "assessq_txn_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto db = Db::Open((dir_ / "coordinator.db").string(), {});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    ASSERT_TRUE(Migrate(*db_).ok());
    ASSERT_TRUE(db_->Run("BEGIN IMMEDIATE").ok());  // the group, as the commit loop opens it
  }
  void TearDown() override {
    (void)db_->Run("ROLLBACK");
    db_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  absl::Status Run(const std::function<absl::Status(Txn&)>& op) {
    return Txn::Run(*db_, kNow, group_, op);
  }
  size_t BatchRows() {
    auto b = JobStore(*db_).Batches();
    EXPECT_TRUE(b.ok()) << b.status();
    return b.ok() ? b->size() : 0;
  }
  int RunningOf(int64_t batch_id) {
    for (const auto& v : limits_.View(kNow))
      if (v.scope == "batch" && v.name == "b" + std::to_string(batch_id)) return v.running;
    return -1;
  }

  static constexpr int64_t kNow = 1'700'000'000'000;
  fs::path dir_;
  std::unique_ptr<Db> db_;
  std::vector<Txn::Action> group_;
  LiveLogs logs_;
  FleetLimits limits_;
  LeaseTable leases_{logs_, limits_};
  WorkerTable workers_;
};

TEST_F(TxnTest, AFailedOperationLeavesDatabaseMemoryAndEffectsAsTheyWere) {
  int counter = 1;
  std::map<int, std::string> names{{1, "a"}};
  limits_.ConfigureBatch(1, "b1", "default", {});
  bool effect_ran = false;
  // Memory first, then a statement that fails (the batch name is UNIQUE).
  ASSERT_TRUE(Run([&](Txn& tx) { return tx.store().InsertBatch("dup", "{}", "{}", kNow).status(); })
                  .ok());
  ASSERT_EQ(BatchRows(), 1u);
  absl::Status s = Run([&](Txn& tx) -> absl::Status {
    tx.Set(counter, 2);
    tx.Insert(names, 2, std::string("b"));
    tx.Insert(names, 1, std::string("z"));
    tx.Erase(names, 1);
    leases_.Grant(tx, 7, LeaseInfo{70, "w1", kNow + 30000, false, 1, kNow, 0});
    workers_.Connect(tx, "w1", 4, std::make_shared<NullSink>(), 0);
    tx.After([&] { effect_ran = true; });
    if (auto st = tx.store().InsertBatch("other", "{}", "{}", kNow); !st.ok()) return st.status();
    return tx.store().InsertBatch("dup", "{}", "{}", kNow).status();
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(counter, 1);
  EXPECT_EQ(names, (std::map<int, std::string>{{1, "a"}}));
  EXPECT_EQ(leases_.Find(7), nullptr);
  EXPECT_EQ(leases_.InUse("w1"), 0);
  EXPECT_FALSE(leases_.FirstExpiry().has_value());
  EXPECT_EQ(RunningOf(1), 0);
  // The live log opened for the lease is closed again: nobody may append.
  EXPECT_FALSE(logs_.Append(7, 70, 0, 0, "x", kNow).ok());
  EXPECT_FALSE(workers_.Known("w1"));
  EXPECT_TRUE(workers_.Sinks().empty());
  EXPECT_EQ(BatchRows(), 1u);  // "other" rolled back with the savepoint
  EXPECT_TRUE(group_.empty());
  EXPECT_FALSE(effect_ran);
}

TEST_F(TxnTest, AnOperationsOwnErrorRollsBackItsStatementsToo) {
  ASSERT_FALSE(Run([&](Txn& tx) -> absl::Status {
                 if (auto st = tx.store().InsertBatch("x", "{}", "{}", kNow); !st.ok())
                   return st.status();
                 return absl::FailedPreconditionError("changed my mind");
               }).ok());
  EXPECT_EQ(BatchRows(), 0u);
}

TEST_F(TxnTest, ASucceededOperationKeepsItsChangesAndHandsItsEffectsOnInOrder) {
  int counter = 1;
  std::vector<int> order;
  limits_.ConfigureBatch(1, "b1", "default", {});
  ASSERT_TRUE(Run([&](Txn& tx) -> absl::Status {
                tx.Set(counter, 2);
                leases_.Grant(tx, 7, LeaseInfo{70, "w1", kNow + 30000, false, 1, kNow, 0});
                tx.After([&] { order.push_back(1); });
                tx.After([&] { order.push_back(2); });
                return tx.store().InsertBatch("x", "{}", "{}", kNow).status();
              }).ok());
  EXPECT_EQ(counter, 2);
  ASSERT_NE(leases_.Find(7), nullptr);
  EXPECT_EQ(leases_.InUse("w1"), 1);
  EXPECT_EQ(RunningOf(1), 1);
  EXPECT_EQ(BatchRows(), 1u);
  ASSERT_EQ(group_.size(), 2u);
  EXPECT_TRUE(order.empty());  // effects wait for the group's commit
  for (auto& e : group_) e();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST_F(TxnTest, ADroppedOrRenewedLeaseComesBackWhenTheOperationFails) {
  limits_.ConfigureBatch(1, "b1", "default", {});
  ASSERT_TRUE(Run([&](Txn& tx) {
                leases_.Grant(tx, 7, LeaseInfo{70, "w1", kNow + 30000, false, 1, kNow, 0});
                return absl::OkStatus();
              }).ok());
  ASSERT_FALSE(Run([&](Txn& tx) {
                 leases_.Renew(tx, 7, kNow + 60000, true);
                 leases_.Drop(tx, 7);
                 return absl::InternalError("boom");
               }).ok());
  const LeaseInfo* l = leases_.Find(7);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->expires_at, kNow + 30000);
  EXPECT_FALSE(l->running);
  EXPECT_EQ(leases_.InUse("w1"), 1);
  ASSERT_TRUE(leases_.FirstExpiry().has_value());
  EXPECT_EQ(*leases_.FirstExpiry(), std::make_pair(kNow + 30000, int64_t{7}));
  EXPECT_EQ(RunningOf(1), 1);
  EXPECT_TRUE(logs_.Append(7, 70, 0, 0, "x", kNow).ok());  // its live log is open again
}

TEST_F(TxnTest, AReplacedSessionComesBackWhenTheReplacementFails) {
  auto first = std::make_shared<NullSink>();
  int64_t id = 0;
  ASSERT_TRUE(Run([&](Txn& tx) {
                id = workers_.Connect(tx, "w1", 2, first, 0).id;
                return absl::OkStatus();
              }).ok());
  group_.clear();
  ASSERT_FALSE(Run([&](Txn& tx) {
                 workers_.Connect(tx, "w1", 8, std::make_shared<NullSink>(), 0);
                 return absl::InternalError("boom");
               }).ok());
  EXPECT_EQ(workers_.SinkOf("w1"), first);
  auto free = workers_.FreeSlots(leases_);
  ASSERT_EQ(free.size(), 1u);
  EXPECT_EQ(free[0].first->id, id);
  EXPECT_EQ(free[0].second, 2);
  EXPECT_TRUE(group_.empty());  // the old session is not closed
}

}  // namespace
}  // namespace assessq
