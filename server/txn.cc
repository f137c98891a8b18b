#include "server/txn.h"

namespace assessq {

absl::Status Txn::Run(Db& db, int64_t now, std::vector<Action>& group_effects,
                      const std::function<absl::Status(Txn&)>& op) {
  if (auto s = db.Run("SAVEPOINT op"); !s.ok()) return s;
  Txn tx(db, now);
  absl::Status s = op(tx);
  if (s.ok()) {
    if (auto r = db.Run("RELEASE op"); !r.ok()) s = r;
  }
  if (!s.ok()) {
    (void)db.Run("ROLLBACK TO op");
    (void)db.Run("RELEASE op");
    for (auto it = tx.undo_.rbegin(); it != tx.undo_.rend(); ++it) (*it)();
    return s;
  }
  for (auto& e : tx.effects_) group_effects.push_back(std::move(e));
  return absl::OkStatus();
}

}  // namespace assessq
