#include "server/queries.h"

#include "common/status_macros.h"
#include "server/engine_wire.h"

namespace assessq {

Queries::Queries(std::string db_path, Clock clock)
    : path_(std::move(db_path)), clock_(std::move(clock)) {
  if (!clock_) clock_ = SystemNowMs;
}
Queries::~Queries() = default;

absl::StatusOr<std::unique_ptr<Db>> Queries::Acquire() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!pool_.empty()) {
      auto db = std::move(pool_.back());
      pool_.pop_back();
      return db;
    }
  }
  return Db::Open(path_, {.read_only = true, .synchronous_full = false});
}

void Queries::Release(std::unique_ptr<Db> db) {
  std::lock_guard<std::mutex> l(mu_);
  if (pool_.size() < 8) pool_.push_back(std::move(db));
}

class Queries::Snapshot {
 public:
  explicit Snapshot(Queries* q) : q_(q) {}
  ~Snapshot() {
    if (db_) {
      db_->ResetAll();
      (void)db_->Exec("COMMIT");
      q_->Release(std::move(db_));
    }
  }
  absl::Status Open() {
    auto db = q_->Acquire();
    if (!db.ok()) return db.status();
    db_ = std::move(*db);
    // One snapshot for the whole answer, so counts add up.
    return db_->Exec("BEGIN");
  }
  Db& db() { return *db_; }

 private:
  Queries* q_;
  std::unique_ptr<Db> db_;
};

template <typename Fn>
auto Queries::InSnapshot(Fn&& fn) -> decltype(fn(std::declval<JobStore&>())) {
  Snapshot snap(this);
  RETURN_IF_ERROR(snap.Open());
  JobStore store(snap.db(), usage_.get());
  return fn(store);
}

absl::Status Queries::Ping() {
  return InSnapshot([](JobStore& s) { return s.Ping(); });
}

absl::StatusOr<v1::StatusResponse> Queries::Status(const std::string& batch) {
  return InSnapshot([&](JobStore& s) { return s.Status(batch, clock_()); });
}

absl::StatusOr<v1::ListJobsResponse> Queries::ListJobs(const v1::ListJobsRequest& req) {
  return InSnapshot([&](JobStore& s) { return s.ListJobs(req); });
}

absl::StatusOr<v1::JobDetail> Queries::ShowJob(const v1::JobRef& ref) {
  return InSnapshot([&](JobStore& s) { return s.ShowJob(FromProto(ref)); });
}

absl::StatusOr<v1::ResultResponse> Queries::GetResult(const v1::JobRef& ref) {
  return InSnapshot([&](JobStore& s) { return s.GetResult(FromProto(ref)); });
}

absl::Status Queries::Export(const v1::ExportRequest& req,
                             const std::function<bool(v1::ExportRecord)>& sink) {
  return InSnapshot([&](JobStore& s) { return s.Export(req, sink); });
}

absl::StatusOr<ResultContext> Queries::ResultContextFor(int64_t job_id) {
  return InSnapshot([&](JobStore& s) -> absl::StatusOr<ResultContext> {
    ASSIGN_OR_RETURN(in, s.ResultInputs(job_id));
    return ResultContext{in.batch, in.dataset_key, in.dataset_name, in.profile_json,
                         in.metadata};
  });
}

absl::StatusOr<FleetSnapshot> Queries::Fleet() {
  return InSnapshot([&](JobStore& s) { return s.Fleet(clock_()); });
}

}  // namespace assessq
