// The engine's in-memory tables: the leases held (with their expiries, the
// leases per worker, the live logs opened for them and the fleet limits'
// running counts), the batches, the workers and their sessions, and the
// fleet limits' other changes. Each change takes the operation's Txn and
// records its own inverse there, so a rolled-back operation leaves them as
// they were. Engine thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "assessq/v1/assessq.pb.h"
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
  // Leases held per batch.
  std::map<int64_t, int> ByBatch() const;
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

// Where the engine pushes messages for one worker session. Push must not
// block; it is called on the effects thread, after the commit.
class SessionSink {
 public:
  virtual ~SessionSink() = default;
  virtual void Push(const v1::CoordinatorMessage& m) = 0;
  virtual void Close(const std::string& reason) = 0;
};

struct WorkerView {
  std::string name;
  int slots = 0;
  int in_use = 0;
  bool connected = false;
  int64_t last_seen_ms = 0;
  bool draining = false;
};

// The workers known (from the database and since) and their sessions: a
// worker has at most one session, the one its last hello opened.
class WorkerTable {
 public:
  struct Session {
    int64_t id = 0;
    std::string worker;
    int slots = 0;
    std::shared_ptr<SessionSink> sink;
    int64_t principal = 0;
  };

  void Load(const std::string& name, int slots, bool draining, int64_t last_seen);
  bool Known(const std::string& name) const { return workers_.count(name) > 0; }
  // Opens a session for `worker` (replacing, and closing after the commit,
  // any session it had); returns it.
  const Session& Connect(Txn& tx, const std::string& worker, int slots,
                         std::shared_ptr<SessionSink> sink, int64_t principal);
  // The session's stream ended: gone at once (not transactional: the stream
  // is gone whatever the database says). Returns the worker when that was
  // its current session ("" otherwise).
  std::string EndSession(int64_t session_id);
  void Disconnected(Txn& tx, const std::string& worker);
  // A worker's new capacity (not stored); false for an unknown session.
  bool SetCapacity(int64_t session_id, int slots, int64_t now);
  void Seen(Txn& tx, const std::string& worker);
  void SetDraining(Txn& tx, const std::string& worker, bool draining);
  bool Draining(const std::string& worker) const;
  // The current session's sink of a connected worker (null: none).
  std::shared_ptr<SessionSink> SinkOf(const std::string& worker) const;
  // Current sessions of workers not draining with their free slots.
  std::vector<std::pair<const Session*, int>> FreeSlots(const LeaseTable& leases) const;
  std::vector<WorkerView> Views(const LeaseTable& leases) const;
  std::vector<std::shared_ptr<SessionSink>> Sinks() const;

 private:
  struct Worker {
    int slots = 0;
    bool connected = false;
    bool draining = false;
    int64_t last_seen = 0;
    int64_t session_id = 0;
  };
  std::map<int64_t, Session> sessions_;
  std::map<std::string, Worker> workers_;
  int64_t next_session_id_ = 1;  // never reused, even after a rollback
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
