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
