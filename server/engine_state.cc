#include "server/engine_state.h"

namespace assessq {

// ---------------------------------------------------------------- leases

const LeaseInfo* LeaseTable::Find(int64_t job_id) const {
  auto it = leases_.find(job_id);
  return it == leases_.end() ? nullptr : &it->second;
}

int LeaseTable::InUse(const std::string& worker) const {
  auto it = in_use_.find(worker);
  return it == in_use_.end() ? 0 : it->second;
}

bool LeaseTable::HeldByOtherToken(const std::string& worker, int64_t principal) const {
  for (const auto& [job, l] : leases_)
    if (l.worker == worker && l.principal != 0 && l.principal != principal) return true;
  return false;
}

std::map<int64_t, int> LeaseTable::ByBatch() const {
  std::map<int64_t, int> out;
  for (const auto& [job, l] : leases_) ++out[l.batch_id];
  return out;
}

std::optional<std::pair<int64_t, int64_t>> LeaseTable::FirstExpiry() const {
  if (expiries_.empty()) return std::nullopt;
  return *expiries_.begin();
}

void LeaseTable::Insert(int64_t job_id, const LeaseInfo& li) {
  leases_[job_id] = li;
  expiries_.insert({li.expires_at, job_id});
  ++in_use_[li.worker];
  logs_.Open(job_id, li.token, li.principal);
}

void LeaseTable::Remove(int64_t job_id) {
  auto it = leases_.find(job_id);
  if (it == leases_.end()) return;
  expiries_.erase({it->second.expires_at, job_id});
  if (--in_use_[it->second.worker] <= 0) in_use_.erase(it->second.worker);
  leases_.erase(it);
}

void LeaseTable::Recover(int64_t job_id, LeaseInfo li, int64_t now) {
  limits_.OnStart(li.batch_id, now, /*recovered=*/true);
  Insert(job_id, li);
}

void LeaseTable::Grant(Txn& tx, int64_t job_id, LeaseInfo li) {
  Insert(job_id, li);
  limits_.OnStart(li.batch_id, tx.now());
  tx.Recorded([this, job_id, li, now = tx.now()] {
    logs_.Close(li.token, now);
    Remove(job_id);
    limits_.UndoStart(li.batch_id);
  });
}

std::optional<LeaseInfo> LeaseTable::Drop(Txn& tx, int64_t job_id) {
  const LeaseInfo* held = Find(job_id);
  if (!held) return std::nullopt;
  LeaseInfo li = *held;
  limits_.OnEnd(li.batch_id);
  logs_.Close(li.token, tx.now());
  Remove(job_id);
  tx.Recorded([this, job_id, li] {
    Insert(job_id, li);
    limits_.OnStart(li.batch_id, 0, /*recovered=*/true);
  });
  return li;
}

void LeaseTable::Renew(Txn& tx, int64_t job_id, int64_t expires_at, bool running) {
  auto it = leases_.find(job_id);
  if (it == leases_.end()) return;
  const LeaseInfo old = it->second;
  expiries_.erase({old.expires_at, job_id});
  it->second.expires_at = expires_at;
  it->second.running = running;
  expiries_.insert({expires_at, job_id});
  tx.Recorded([this, job_id, old] {
    auto it = leases_.find(job_id);
    if (it == leases_.end()) return;
    expiries_.erase({it->second.expires_at, job_id});
    it->second = old;
    expiries_.insert({old.expires_at, job_id});
  });
}

// --------------------------------------------------------------- batches

BatchInfo* BatchTable::ById(int64_t id) {
  auto it = batches_.find(id);
  return it == batches_.end() ? nullptr : &it->second;
}

BatchInfo* BatchTable::ByName(const std::string& name) {
  for (auto& [id, b] : batches_)
    if (b.name == name) return &b;
  return nullptr;
}

// --------------------------------------------------------------- workers

void WorkerTable::Load(const std::string& name, int slots, bool draining, int64_t last_seen) {
  Worker& w = workers_[name];
  w.slots = slots;
  w.draining = draining;
  w.last_seen = last_seen;
}

const WorkerTable::Session& WorkerTable::Connect(Txn& tx, const std::string& worker, int slots,
                                                 std::shared_ptr<SessionSink> sink,
                                                 int64_t principal) {
  auto known = workers_.find(worker);
  Worker w = known == workers_.end() ? Worker{} : known->second;
  if (w.connected) {
    auto old = sessions_.find(w.session_id);
    if (old != sessions_.end()) {
      tx.After([old_sink = old->second.sink] { old_sink->Close("replaced by a newer session"); });
      tx.Erase(sessions_, w.session_id);
    }
  }
  const int64_t id = next_session_id_++;
  tx.Insert(sessions_, id, Session{id, worker, slots, std::move(sink), principal});
  w.slots = slots;
  w.connected = true;  // a drained worker stays drained until undrained
  w.last_seen = tx.now();
  w.session_id = id;
  tx.Insert(workers_, worker, w);
  return sessions_.at(id);
}

std::string WorkerTable::EndSession(int64_t session_id) {
  auto s = sessions_.find(session_id);
  if (s == sessions_.end()) return "";
  std::string worker = s->second.worker;
  sessions_.erase(s);
  auto w = workers_.find(worker);
  if (w == workers_.end() || w->second.session_id != session_id) return "";  // replaced
  return worker;
}

void WorkerTable::Disconnected(Txn& tx, const std::string& worker) {
  Worker& w = workers_[worker];
  tx.Set(w.connected, false);
  tx.Set(w.last_seen, tx.now());
}

bool WorkerTable::SetCapacity(int64_t session_id, int slots, int64_t now) {
  auto s = sessions_.find(session_id);
  if (s == sessions_.end()) return false;
  s->second.slots = slots;
  Worker& w = workers_[s->second.worker];
  w.slots = slots;
  w.last_seen = now;
  return true;
}

void WorkerTable::Seen(Txn& tx, const std::string& worker) {
  tx.Set(workers_[worker].last_seen, tx.now());
}

void WorkerTable::SetDraining(Txn& tx, const std::string& worker, bool draining) {
  tx.Set(workers_[worker].draining, draining);
}

bool WorkerTable::Draining(const std::string& worker) const {
  auto w = workers_.find(worker);
  return w != workers_.end() && w->second.draining;
}

std::shared_ptr<SessionSink> WorkerTable::SinkOf(const std::string& worker) const {
  auto w = workers_.find(worker);
  if (w == workers_.end() || !w->second.connected) return nullptr;
  auto s = sessions_.find(w->second.session_id);
  return s == sessions_.end() ? nullptr : s->second.sink;
}

std::vector<std::pair<const WorkerTable::Session*, int>> WorkerTable::FreeSlots(
    const LeaseTable& leases) const {
  std::vector<std::pair<const Session*, int>> free;
  for (const auto& [id, s] : sessions_) {
    auto w = workers_.find(s.worker);
    if (w == workers_.end() || w->second.draining || w->second.session_id != id) continue;
    const int f = s.slots - leases.InUse(s.worker);
    if (f > 0) free.push_back({&s, f});
  }
  return free;
}

std::vector<WorkerView> WorkerTable::Views(const LeaseTable& leases) const {
  std::vector<WorkerView> out;
  for (const auto& [name, w] : workers_)
    out.push_back(
        WorkerView{name, w.slots, leases.InUse(name), w.connected, w.last_seen, w.draining});
  return out;
}

std::vector<std::shared_ptr<SessionSink>> WorkerTable::Sinks() const {
  std::vector<std::shared_ptr<SessionSink>> out;
  for (const auto& [id, s] : sessions_) out.push_back(s.sink);
  return out;
}

// ---------------------------------------------------------- fleet limits

void LimitsChanges::Succeeded(Txn& tx, int64_t batch_id) {
  tx.Recorded([this, m = limits_.Save(batch_id)] { limits_.Restore(m); });
  limits_.OnSuccess(batch_id);
}

void LimitsChanges::ModelApiFailed(Txn& tx, int64_t batch_id, int64_t leased_at_ms,
                                   int64_t retry_after_ms, const std::string& detail,
                                   int64_t job_id) {
  tx.Recorded([this, m = limits_.Save(batch_id)] { limits_.Restore(m); });
  limits_.OnModelApiFailure(batch_id, leased_at_ms, retry_after_ms, tx.now(), detail, job_id);
}

void LimitsChanges::ConfigureBatch(Txn& tx, const BatchInfo& b) {
  FleetLimits next = limits_;
  next.ConfigureBatch(b.id, b.name, FleetLimits::ProviderOf(b.profile_json), b.limits);
  tx.Set(limits_, std::move(next));
}

void LimitsChanges::ConfigureProvider(Txn& tx, const std::string& provider, LimitConfig c) {
  tx.Recorded([this, m = limits_.ProviderState(provider)] { limits_.Restore(m); });
  limits_.ConfigureProvider(provider, c);
}

}  // namespace assessq
