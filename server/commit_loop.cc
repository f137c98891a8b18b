#include "server/commit_loop.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

namespace assessq {

CommitLoop::CommitLoop(Db& db, std::string db_path, Hooks hooks)
    : db_(db), db_path_(std::move(db_path)), hooks_(std::move(hooks)) {}

absl::Status CommitLoop::Start() {
  // Checkpoints are the checkpointer's, never the writer's.
  if (auto s = db_.Exec("PRAGMA wal_autocheckpoint=0"); !s.ok()) return s;
  effects_thread_ = std::thread([this] { RunEffects(); });
  writer_ = std::thread([this] { Run(); });
  checkpointer_ = std::thread([this] { Checkpoint(); });
  return absl::OkStatus();
}

CommitLoop::~CommitLoop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  checkpoint_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (checkpointer_.joinable()) checkpointer_.join();
  {
    std::lock_guard<std::mutex> l(effects_mu_);
    effects_stop_ = true;
  }
  effects_cv_.notify_all();
  if (effects_thread_.joinable()) effects_thread_.join();
}

void CommitLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> l(mu_);
    pending_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

void CommitLoop::Queue(std::vector<Txn::Action> effects) {
  {
    std::lock_guard<std::mutex> l(effects_mu_);
    effects_q_.push_back(std::move(effects));
  }
  effects_cv_.notify_one();
}

void CommitLoop::Run() {
  std::vector<std::function<void()>> round;
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      const int64_t now = hooks_.now();
      const int64_t wake = std::min(now + 1000, hooks_.wake_at());
      if (pending_.empty() && !stop_ && wake > now && !hooks_.step_now())
        cv_.wait_for(l, std::chrono::milliseconds(wake - now),
                     [&] { return stop_ || !pending_.empty(); });
      if (stop_ && pending_.empty()) break;
      round.swap(pending_);
    }
    if (auto s = db_.Run("BEGIN IMMEDIATE"); !s.ok()) {
      spdlog::critical("cannot begin a transaction: {}", s.ToString());
      std::abort();
    }
    for (auto& fn : round) fn();
    round.clear();
    hooks_.step();
    db_.ResetAll();
    // A failed commit leaves memory ahead of the database; the database is the
    // truth, so stop and let the supervisor restart us from it.
    if (auto s = db_.Run("COMMIT"); !s.ok()) {
      spdlog::critical("commit failed, exiting to recover from the database: {}",
                       s.ToString());
      std::abort();
    }
    if (!effects_.empty()) {
      std::vector<Txn::Action> effects;
      effects.swap(effects_);
      Queue(std::move(effects));
    }
  }
  // After every reply and push already queued.
  Queue(hooks_.on_stop());
}

void CommitLoop::RunEffects() {
  while (true) {
    std::vector<Txn::Action> batch;
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

void CommitLoop::Checkpoint() {
  auto db = Db::Open(db_path_, {});
  if (!db.ok()) {
    spdlog::error("checkpointer: {}; falling back to automatic checkpoints", db.status().ToString());
    Post([this] { (void)db_.Exec("PRAGMA wal_autocheckpoint=1000"); });
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

}  // namespace assessq
