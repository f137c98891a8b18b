// The engine's single writer and the two threads beside it. Work posted
// from any thread runs on the writer thread, one item after another; each
// round's items, and then the owner's own step (`Hooks::step`: expiry,
// dispatch), share one SQLite transaction (group commit: one fsync for all
// that arrived meanwhile). The effects the round's Txns asked for (gRPC
// replies, pushes to workers) run after its COMMIT, in commit order, on the
// effects thread, so the writer goes straight on to the next round. WAL
// checkpoints run on a third thread with a connection of their own, so the
// writer never stalls on one. A failed BEGIN or COMMIT aborts the process:
// memory would be ahead of the database, which is the truth to restart from.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/db.h"
#include "server/txn.h"

namespace assessq {

class CommitLoop {
 public:
  struct Hooks {
    std::function<int64_t()> now;      // milliseconds since the epoch
    std::function<int64_t()> wake_at;  // when `step` is next due without new work
    std::function<bool()> step_now;    // `step` is due at once
    std::function<void()> step;        // after each round's work, in its transaction
    std::function<std::vector<Txn::Action>()> on_stop;  // effects after the last round
  };
  // `db` is the writer's connection; checkpoints open `db_path` again.
  CommitLoop(Db& db, std::string db_path, Hooks hooks);
  ~CommitLoop();  // stops: runs what was posted, then every effect queued
  // Turns the writer's automatic checkpoints off and starts the threads.
  absl::Status Start();

  void Post(std::function<void()> fn);
  // Writer thread only: runs `op` as a Txn of the round under way.
  absl::Status Atomically(int64_t now, const std::function<absl::Status(Txn&)>& op) {
    return Txn::Run(db_, now, effects_, op);
  }
  // Writer thread only: an effect of the round under way, not tied to a Txn.
  void After(Txn::Action effect) { effects_.push_back(std::move(effect)); }

 private:
  void Run();
  void RunEffects();
  void Checkpoint();
  void Queue(std::vector<Txn::Action> effects);

  Db& db_;
  std::string db_path_;
  Hooks hooks_;
  std::vector<Txn::Action> effects_;  // of the round under way (writer thread)

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable checkpoint_cv_;  // its own, so it never takes the writer's wake-up
  std::vector<std::function<void()>> pending_;  // guarded by mu_
  bool stop_ = false;                           // guarded by mu_

  std::mutex effects_mu_;
  std::condition_variable effects_cv_;
  std::deque<std::vector<Txn::Action>> effects_q_;  // guarded by effects_mu_
  bool effects_stop_ = false;                       // guarded by effects_mu_

  std::thread writer_, effects_thread_, checkpointer_;
};

}  // namespace assessq
