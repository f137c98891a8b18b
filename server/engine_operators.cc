// The engine's operator commands (server/engine.h): submit, retry, cancel,
// pause, drain, limits, the worker list. Each runs as one Txn on the engine
// thread, like the worker-facing operations in engine.cc.
#include <cmath>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "server/engine.h"
#include "server/engine_wire.h"
#include "server/model.h"

namespace assessq {

absl::StatusOr<BatchInfo*> Engine::NamedBatch(const std::string& name) {
  if (BatchInfo* b = batches_.ByName(name)) return b;
  return absl::NotFoundError(absl::StrCat("no batch '", name, "'"));
}

absl::Status Engine::CancelJob(Txn& tx, const JobRow& job, const std::string& reason) {
  if (job.current_attempt && (job.state == "leased" || job.state == "running")) {
    RETURN_IF_ERROR(FinishAttempt(tx, *job.current_attempt, AttemptOutcome::kCancelled,
                                  std::nullopt, reason,
                                  nullptr));
    if (std::optional<LeaseInfo> lease = leases_.Drop(tx, job.id)) {
      dispatch_dirty_ = true;
      Push(tx, lease->worker, CancelMessage(job.id, lease->token, reason));
    }
  }
  RETURN_IF_ERROR(tx.store().SetJobEnded(job.id, "cancelled", tx.now()));
  return Event(tx, job.batch_id, job.id, "cancelled", reason);
}

absl::StatusOr<BatchInfo*> Engine::EnsureBatch(Txn& tx, const SubmitArgs& a) {
  if (BatchInfo* b = batches_.ByName(a.batch)) {
    const std::string profile = a.profile_json.empty() ? b->profile_json : a.profile_json;
    const RetryPolicy pol = a.policy ? *a.policy : b->policy;
    if (profile != b->profile_json || pol.ToJson() != b->policy.ToJson()) {
      RETURN_IF_ERROR(tx.store().UpdateBatchProfile(b->id, profile, pol.ToJson()));
      RETURN_IF_ERROR(Event(tx, b->id, std::nullopt, "batch_updated", "profile or retry policy"));
      tx.Set(b->profile_json, profile);
      tx.Set(b->policy, pol);
      limit_changes_.ConfigureBatch(tx, *b);
    }
    RETURN_IF_ERROR(ApplyBatchLimits(tx, *b, a.max_running, a.start_rate_per_min));
    return b;
  }
  RetryPolicy pol = a.policy ? *a.policy : RetryPolicy{};
  std::string profile = a.profile_json.empty() ? "{}" : a.profile_json;
  ASSIGN_OR_RETURN(id, tx.store().InsertBatch(a.batch, profile, pol.ToJson(), tx.now()));
  RETURN_IF_ERROR(Event(tx, id, std::nullopt, "batch_created", a.batch));
  batches_.Add(tx, BatchInfo{id, a.batch, profile, pol, false, {}});
  BatchInfo* b = batches_.ById(id);
  limit_changes_.ConfigureBatch(tx, *b);
  RETURN_IF_ERROR(ApplyBatchLimits(tx, *b, a.max_running, a.start_rate_per_min));
  return b;
}

absl::StatusOr<int64_t> Engine::InsertJob(Txn& tx, int64_t batch_id, const SubmitFile& f) {
  ASSIGN_OR_RETURN(id, tx.store().InsertJob(batch_id, f, tx.now()));
  RETURN_IF_ERROR(Event(tx, batch_id, id, "submitted", f.source_name));
  NoteReady(tx.now());
  return id;
}

absl::StatusOr<SubmitItemResult> Engine::SubmitFileTo(Txn& tx, const BatchInfo& batch,
                                                      const SubmitFile& f, bool rerun) {
  SubmitItemResult item{f.source_name, f.dataset_key, SubmitOutcome::kCreated, 0};
  ASSIGN_OR_RETURN(existing_id, tx.store().CurrentJob(batch.id, f.dataset_key));
  if (!existing_id) {
    ASSIGN_OR_RETURN(id, InsertJob(tx, batch.id, f));
    item.job_id = id;
    return item;
  }
  ASSIGN_OR_RETURN(old, tx.store().LoadJob(*existing_id));
  if (!old) return absl::InternalError(absl::StrCat("job ", *existing_id, " vanished"));
  auto state = StateFromName(old->state).value_or(v1::JOB_STATE_UNSPECIFIED);
  const bool same = old->input_sha256 == f.sha256;
  item.job_id = old->id;
  if (same && !rerun) {
    if (state == v1::JOB_STATE_SUCCEEDED) {
      item.outcome = SubmitOutcome::kSkippedSucceeded;
    } else if (InFlight(state)) {
      item.outcome = SubmitOutcome::kSkippedInFlight;
    } else {
      // Gave up or cancelled: the same input runs again, same job.
      RETURN_IF_ERROR(RequeueJob(tx, old->id, batch.id, true, "resubmitted"));
      item.outcome = SubmitOutcome::kRequeued;
    }
    return item;
  }
  // Changed input, or --rerun: the old job is superseded by a new one.
  if (InFlight(state))
    RETURN_IF_ERROR(CancelJob(tx, *old, same ? "superseded by --rerun"
                                             : "superseded by a changed input file"));
  // Marked first, so the new job is the dataset's only current one.
  RETURN_IF_ERROR(tx.store().MarkSuperseded(old->id, -1));
  ASSIGN_OR_RETURN(id, InsertJob(tx, batch.id, f));
  RETURN_IF_ERROR(tx.store().MarkSuperseded(old->id, id));
  item.outcome = SubmitOutcome::kReplaced;
  item.job_id = id;
  return item;
}

void Engine::Submit(SubmitArgs args, Done<SubmitResult> done) {
  auto a = std::make_shared<SubmitArgs>(std::move(args));
  Post<SubmitResult>(
      [this, a](Txn& tx) -> absl::StatusOr<SubmitResult> {
        ASSIGN_OR_RETURN(batch, EnsureBatch(tx, *a));
        // The batch's budget and prices.
        RETURN_IF_ERROR(
            opt_.usage->ApplySubmit(tx.db(), batch->id, a->budget_usd, a->prices_json, tx.now()));
        dispatch_dirty_ = true;
        SubmitResult out;
        for (const SubmitFile& f : a->files) {
          ASSIGN_OR_RETURN(item, SubmitFileTo(tx, *batch, f, a->rerun));
          out.push_back(std::move(item));
        }
        return out;
      },
      std::move(done));
}

void Engine::Retry(RetryOrder order, Done<int64_t> done) {
  Post<int64_t>(
      [this, order](Txn& tx) -> absl::StatusOr<int64_t> {
        std::vector<std::pair<int64_t, int64_t>> ids;  // (job, batch)
        if (order.job.given()) {
          ASSIGN_OR_RETURN(job, tx.store().FindJob(order.job));
          if (!job) return absl::NotFoundError("no such job");
          if (job->superseded)
            return absl::FailedPreconditionError(absl::StrCat(
                "job ", job->id, " was superseded by a newer submission of its dataset"));
          if (job->state != "needs_attention" && job->state != "cancelled")
            return absl::FailedPreconditionError(absl::StrCat(
                "job ", job->id, " is ", job->state, "; only needs_attention or cancelled "
                "jobs can be retried"));
          ids.push_back({job->id, job->batch_id});
        } else {
          ASSIGN_OR_RETURN(b, NamedBatch(order.batch));
          std::optional<absl::string_view> cls;
          if (order.failure_class) cls = ClassName(*order.failure_class);
          ASSIGN_OR_RETURN(found, tx.store().JobsNeedingAttention(b->id, cls));
          for (int64_t id : found) ids.push_back({id, b->id});
        }
        for (auto [job, batch] : ids)
          RETURN_IF_ERROR(RequeueJob(tx, job, batch, true, "retried by operator"));
        return static_cast<int64_t>(ids.size());
      },
      std::move(done));
}

void Engine::Cancel(CancelOrder order, Done<int64_t> done) {
  Post<int64_t>(
      [this, order](Txn& tx) -> absl::StatusOr<int64_t> {
        std::vector<JobRow> jobs;
        if (order.job.given()) {
          ASSIGN_OR_RETURN(job, tx.store().FindJob(order.job));
          if (!job) return absl::NotFoundError("no such job");
          auto st = StateFromName(job->state).value_or(v1::JOB_STATE_UNSPECIFIED);
          if (!InFlight(st))
            return absl::FailedPreconditionError(
                absl::StrCat("job ", job->id, " is already ", job->state));
          jobs.push_back(*job);
        } else {
          ASSIGN_OR_RETURN(b, NamedBatch(order.batch));
          ASSIGN_OR_RETURN(ids, tx.store().JobsInFlight(b->id));
          for (int64_t id : ids) {
            ASSIGN_OR_RETURN(j, tx.store().LoadJob(id));
            if (j) jobs.push_back(*j);
          }
        }
        for (const auto& j : jobs) RETURN_IF_ERROR(CancelJob(tx, j, "cancelled by operator"));
        return static_cast<int64_t>(jobs.size());
      },
      std::move(done));
}

void Engine::SetPaused(std::string batch, bool paused, Done<bool> done) {
  Post<bool>(
      [this, batch, paused](Txn& tx) -> absl::StatusOr<bool> {
        ASSIGN_OR_RETURN(b, NamedBatch(batch));
        RETURN_IF_ERROR(tx.store().SetBatchPaused(b->id, paused));
        RETURN_IF_ERROR(Event(tx, b->id, std::nullopt, paused ? "paused" : "resumed", ""));
        tx.Set(b->paused, paused);
        dispatch_dirty_ = true;
        return true;
      },
      std::move(done));
}

void Engine::DrainWorker(std::string worker, bool drain, Done<bool> done) {
  Post<bool>(
      [this, worker, drain](Txn& tx) -> absl::StatusOr<bool> {
        if (!workers_.Known(worker))
          return absl::NotFoundError(absl::StrCat("no worker '", worker, "'"));
        RETURN_IF_ERROR(tx.store().SetWorkerDraining(worker, drain));
        workers_.SetDraining(tx, worker, drain);
        dispatch_dirty_ = true;
        Push(tx, worker,
             DrainMessage(drain ? "drained by operator" : "undrained by operator", !drain));
        return true;
      },
      std::move(done));
}

absl::Status Engine::ApplyBatchLimits(Txn& tx, BatchInfo& b, std::optional<int> max_running,
                                      std::optional<double> start_rate_per_min) {
  LimitConfig next = b.limits;
  if (max_running) next.max_running = *max_running;
  if (start_rate_per_min) next.start_rate_per_min = *start_rate_per_min;
  if (next.max_running < 0 || next.start_rate_per_min < 0 ||
      !std::isfinite(next.start_rate_per_min))
    return absl::InvalidArgumentError("limits must be 0 (none) or positive");
  if (next == b.limits) return absl::OkStatus();
  RETURN_IF_ERROR(tx.store().SetBatchLimits(b.id, next));
  RETURN_IF_ERROR(Event(tx, b.id, std::nullopt, "limits",
                        absl::StrCat("max_running=", next.max_running,
                                     " start_rate_per_min=", next.start_rate_per_min)));
  tx.Set(b.limits, next);
  limit_changes_.ConfigureBatch(tx, b);
  dispatch_dirty_ = true;
  return absl::OkStatus();
}

void Engine::SetLimits(LimitsOrder order, Done<std::vector<LimitView>> done) {
  Post<std::vector<LimitView>>(
      [this, order](Txn& tx) -> absl::StatusOr<std::vector<LimitView>> {
        if (!order.batch.empty() && !order.provider.empty())
          return absl::InvalidArgumentError("limits: give a batch or a provider, not both");
        if (!order.batch.empty()) {
          BatchInfo* b = batches_.ByName(order.batch);
          if (!b) return absl::NotFoundError(absl::StrCat("no batch named ", order.batch));
          RETURN_IF_ERROR(
              ApplyBatchLimits(tx, *b, order.max_running, order.start_rate_per_min));
        } else if (!order.provider.empty()) {
          LimitConfig next = limits_.ProviderConfig(order.provider);
          if (order.max_running) next.max_running = *order.max_running;
          if (order.start_rate_per_min) next.start_rate_per_min = *order.start_rate_per_min;
          if (next.max_running < 0 || next.start_rate_per_min < 0 ||
              !std::isfinite(next.start_rate_per_min))
            return absl::InvalidArgumentError("limits must be 0 (none) or positive");
          RETURN_IF_ERROR(tx.store().SetProviderLimits(order.provider, next));
          RETURN_IF_ERROR(Event(tx, std::nullopt, std::nullopt, "provider_limits",
                                absl::StrCat(order.provider, " max_running=", next.max_running,
                                             " start_rate_per_min=", next.start_rate_per_min)));
          limit_changes_.ConfigureProvider(tx, order.provider, next);
          ReportProviderLimit(tx, order.provider);
          dispatch_dirty_ = true;
        }
        return limits_.View(tx.now());
      },
      std::move(done));
}

void Engine::ListWorkers(Done<std::vector<WorkerView>> done) {
  Post<std::vector<WorkerView>>(
      [this](Txn&) -> absl::StatusOr<std::vector<WorkerView>> {
        return workers_.Views(leases_);
      },
      std::move(done));
}

void Engine::SetBudget(std::string batch, double budget_usd, Done<bool> done) {
  Post<bool>(
      [this, batch, budget_usd](Txn& tx) -> absl::StatusOr<bool> {
        ASSIGN_OR_RETURN(b, NamedBatch(batch));
        RETURN_IF_ERROR(opt_.usage->SetBudget(tx.db(), b->id, budget_usd, tx.now()));
        dispatch_dirty_ = true;
        return true;
      },
      std::move(done));
}

}  // namespace assessq
