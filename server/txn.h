// One engine operation as a transaction over both of the engine's stores:
// its SQL writes (a savepoint inside the group commit) and its changes to the
// engine's in-memory tables, with the effects (gRPC replies, pushes to
// workers, observer calls) it wants to happen once it is durable.
//
// Txn::Run opens the savepoint and runs the operation. If the operation
// fails, its SQL is rolled back, every in-memory change made through the Txn
// is reverted (newest first) and its effects are dropped; if it succeeds its
// effects join the group's, which run only after the group's COMMIT. Memory
// is changed only through the Txn (Set, Insert, Erase here; the tables of
// server/engine_state.h record their own inverses), so the order of the
// statements and the changes inside an operation does not matter.
// Engine thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "server/db.h"
#include "server/job_store.h"

namespace assessq {

class Txn {
 public:
  using Action = std::function<void()>;

  // Runs `op` in a savepoint on `db`; on success appends its effects to
  // `group_effects` (run after the group commits). Returns `op`'s status, or
  // the savepoint's error.
  static absl::Status Run(Db& db, int64_t now, std::vector<Action>& group_effects,
                          const std::function<absl::Status(Txn&)>& op);

  // The SQL side; its writes belong to this transaction. `db()` is for the
  // other stores (server/usage_store.h), whose writes belong to it too.
  JobStore& store() { return store_; }
  Db& db() { return db_; }
  int64_t now() const { return now_; }

  // Memory: each records how to go back.
  template <typename T, typename V>
  void Set(T& slot, V&& value) {
    undo_.push_back([&slot, old = slot]() mutable { slot = std::move(old); });
    slot = std::forward<V>(value);
  }
  // For a map: key -> value (replacing any), or the key removed.
  template <typename Map, typename K, typename V>
  void Insert(Map& map, const K& key, V&& value) {
    auto it = map.find(key);
    if (it == map.end())
      undo_.push_back([&map, key] { map.erase(key); });
    else
      undo_.push_back([&map, key, old = it->second] { map.insert_or_assign(key, old); });
    map.insert_or_assign(key, std::forward<V>(value));
  }
  template <typename Map, typename K>
  void Erase(Map& map, const K& key) {
    auto it = map.find(key);
    if (it == map.end()) return;
    undo_.push_back([&map, key, old = it->second] { map.insert_or_assign(key, old); });
    map.erase(it);
  }
  // Runs after the group commit that makes this transaction durable, in
  // order, off the engine thread; never if it rolls back.
  void After(Action effect) { effects_.push_back(std::move(effect)); }

 private:
  // The in-memory tables' own compound changes (server/engine_state.h):
  // `inverse` undoes the change the table has just made. Nothing else
  // registers an inverse.
  friend class LeaseTable;
  friend class LimitsChanges;
  void Recorded(Action inverse) { undo_.push_back(std::move(inverse)); }

  Txn(Db& db, int64_t now) : db_(db), store_(db), now_(now) {}
  Db& db_;
  JobStore store_;
  int64_t now_;
  std::vector<Action> undo_;
  std::vector<Action> effects_;
};

}  // namespace assessq
