// The engine's in-memory tables: the leases held (with their expiries, the
// leases per worker, the live logs opened for them and the fleet limits'
// running counts), the batches, and the fleet limits' other changes. Each
// change takes the operation's Txn and records its own inverse there, so a
// rolled-back operation leaves them as they were. Engine thread only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "server/fleet_limits.h"
#include "server/live_logs.h"
#include "server/retry_policy.h"
#include "server/txn.h"

namespace assessq {

struct LeaseInfo {
  int64_t token = 0;
  std::string worker;
  int64_t expires_at = 0;
  bool running = false;
  int64_t batch_id = 0;
  int64_t leased_at = 0;  // 0: recovered at start-up
  int64_t principal = 0;  // token id the lease is bound to (0: none)
};

class LeaseTable {
 public:
  LeaseTable(LiveLogs& logs, FleetLimits& limits) : logs_(logs), limits_(limits) {}

  const LeaseInfo* Find(int64_t job_id) const;
  bool empty() const { return leases_.empty(); }
  size_t size() const { return leases_.size(); }
  int InUse(const std::string& worker) const;
  // True if `worker` holds a lease bound to a token other than `principal`.
  bool HeldByOtherToken(const std::string& worker, int64_t principal) const;
  // The earliest (expires_at, job id), if any lease is held.
  std::optional<std::pair<int64_t, int64_t>> FirstExpiry() const;

  // A lease found in the database at start-up (no transaction).
  void Recover(int64_t job_id, LeaseInfo li, int64_t now);
  void Grant(Txn& tx, int64_t job_id, LeaseInfo li);
  // Ends the job's lease, if held; returns what it was.
  std::optional<LeaseInfo> Drop(Txn& tx, int64_t job_id);
  void Renew(Txn& tx, int64_t job_id, int64_t expires_at, bool running);

 private:
  void Insert(int64_t job_id, const LeaseInfo& li);
  void Remove(int64_t job_id);
  LiveLogs& logs_;
  FleetLimits& limits_;
  std::unordered_map<int64_t, LeaseInfo> leases_;   // job id -> lease
  std::unordered_map<std::string, int> in_use_;     // worker -> leases held
  std::set<std::pair<int64_t, int64_t>> expiries_;  // (expires_at, job id)
};

struct BatchInfo {
  int64_t id = 0;
  std::string name;
  std::string profile_json;
  RetryPolicy policy;
  bool paused = false;
  LimitConfig limits;
};

class BatchTable {
 public:
  BatchInfo* ById(int64_t id);
  BatchInfo* ByName(const std::string& name);
  void Load(BatchInfo b) { batches_.emplace(b.id, std::move(b)); }
  void Add(Txn& tx, BatchInfo b) { tx.Insert(batches_, b.id, std::move(b)); }
  const std::map<int64_t, BatchInfo>& all() const { return batches_; }

 private:
  std::map<int64_t, BatchInfo> batches_;
};

// The fleet limits' changes other than leases starting and ending (those
// are LeaseTable's).
class LimitsChanges {
 public:
  explicit LimitsChanges(FleetLimits& limits) : limits_(limits) {}
  void Succeeded(Txn& tx, int64_t batch_id);
  void ModelApiFailed(Txn& tx, int64_t batch_id, int64_t leased_at_ms, int64_t retry_after_ms,
                      const std::string& detail, int64_t job_id);
  void ConfigureBatch(Txn& tx, const BatchInfo& b);
  void ConfigureProvider(Txn& tx, const std::string& provider, LimitConfig c);

 private:
  FleetLimits& limits_;
};

}  // namespace assessq
