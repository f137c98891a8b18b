#include "server/engine_wire.h"

namespace assessq {

JobKey FromProto(const v1::JobRef& ref) {
  return JobKey{ref.job_id(), ref.batch(), ref.dataset_key()};
}

RetryOrder FromProto(const v1::RetryRequest& req) {
  RetryOrder o{FromProto(req.job()), req.batch(), std::nullopt};
  if (req.failure_class() != v1::FAILURE_CLASS_UNSPECIFIED) o.failure_class = req.failure_class();
  return o;
}

CancelOrder FromProto(const v1::CancelRequest& req) {
  return CancelOrder{FromProto(req.job()), req.batch()};
}

LimitsOrder FromProto(const v1::LimitsRequest& req) {
  LimitsOrder o{req.batch(), req.provider(), std::nullopt, std::nullopt};
  if (req.has_max_running()) o.max_running = req.max_running();
  if (req.has_start_rate_per_min()) o.start_rate_per_min = req.start_rate_per_min();
  return o;
}

HeartbeatReport FromProto(const v1::HeartbeatRequest& req) {
  HeartbeatReport r{req.job_id(), req.token(), req.running(), std::nullopt};
  if (req.has_usage()) r.usage = req.usage();
  return r;
}

CompletionReport FromProto(const v1::CompleteRequest& req) {
  CompletionReport r;
  r.job_id = req.job_id();
  r.token = req.token();
  r.outcome = OutcomeOfReport(req);
  if (req.has_result_json()) r.result_json = req.result_json();
  if (req.has_failure()) {
    r.failure_class = req.failure().failure_class();
    r.reason = req.failure().reason();
    r.retry_after_ms = req.failure().retry_after_ms();
  }
  if (req.has_release()) r.reason = req.release().reason();
  r.attempt = AttemptReport{req.exit_code(), req.log_tail(), req.netlog_json(),
                            req.details_json(), req.started_at_ms()};
  if (req.has_usage()) r.usage = req.usage();
  return r;
}

namespace {
v1::SubmitItem::Outcome ToProto(SubmitOutcome o) {
  switch (o) {
    case SubmitOutcome::kCreated: return v1::SubmitItem::OUTCOME_CREATED;
    case SubmitOutcome::kSkippedSucceeded: return v1::SubmitItem::OUTCOME_SKIPPED_SUCCEEDED;
    case SubmitOutcome::kSkippedInFlight: return v1::SubmitItem::OUTCOME_SKIPPED_IN_FLIGHT;
    case SubmitOutcome::kReplaced: return v1::SubmitItem::OUTCOME_REPLACED;
    case SubmitOutcome::kRequeued: return v1::SubmitItem::OUTCOME_REQUEUED;
  }
  return v1::SubmitItem::OUTCOME_UNSPECIFIED;
}
}  // namespace

v1::SubmitResponse ToProto(const SubmitResult& r) {
  v1::SubmitResponse resp;
  for (const SubmitItemResult& i : r) {
    auto* item = resp.add_items();
    item->set_source_name(i.source_name);
    item->set_dataset_key(i.dataset_key);
    item->set_outcome(ToProto(i.outcome));
    item->set_job_id(i.job_id);
  }
  return resp;
}

v1::CompleteResponse ToProto(const CompletionReply& r) {
  v1::CompleteResponse resp;
  resp.set_job_state(r.job_state);
  resp.set_duplicate(r.duplicate);
  for (const auto& e : r.validation_errors) resp.add_validation_errors(e);
  return resp;
}

v1::HeartbeatResponse ToProto(const HeartbeatReply& r) {
  v1::HeartbeatResponse resp;
  resp.set_lease_expires_at_ms(r.lease_expires_at_ms);
  return resp;
}

v1::WorkersResponse ToProto(const std::vector<WorkerView>& workers) {
  v1::WorkersResponse resp;
  for (const WorkerView& w : workers) {
    auto* wi = resp.add_workers();
    wi->set_name(w.name);
    wi->set_slots(w.slots);
    wi->set_in_use(w.in_use);
    wi->set_connected(w.connected);
    wi->set_last_seen_ms(w.last_seen_ms);
    wi->set_draining(w.draining);
  }
  return resp;
}

v1::LimitsResponse ToProto(const std::vector<LimitView>& limits) {
  v1::LimitsResponse resp;
  for (const LimitView& v : limits) {
    v1::LimitStatus* l = resp.add_limits();
    l->set_scope(v.scope);
    l->set_name(v.name);
    l->set_provider(v.provider);
    l->set_max_running(v.config.max_running);
    l->set_start_rate_per_min(v.config.start_rate_per_min);
    l->set_running(v.running);
    l->set_current_limit(v.effective_limit);
    l->set_hold_until_ms(v.hold_until_ms);
    l->set_reason(v.reason);
  }
  return resp;
}

v1::CoordinatorMessage LeaseMessage(const LeaseGrant& g) {
  v1::CoordinatorMessage m;
  v1::Lease* l = m.mutable_lease();
  l->set_job_id(g.job_id);
  l->set_token(g.token);
  l->set_attempt_number(g.attempt_number);
  l->set_batch(g.batch);
  l->set_dataset_key(g.dataset_key);
  l->set_dataset_name(g.dataset_name);
  l->set_metadata_sha256(g.metadata_sha256);
  l->set_profile_json(g.profile_json);
  l->set_lease_expires_at_ms(g.lease_expires_at_ms);
  l->set_metadata(g.metadata);
  for (const auto& e : g.previous_errors) l->add_previous_errors(e);
  return m;
}

v1::CoordinatorMessage CancelMessage(int64_t job_id, int64_t token, const std::string& reason) {
  v1::CoordinatorMessage m;
  auto* c = m.mutable_cancel();
  c->set_job_id(job_id);
  c->set_token(token);
  c->set_reason(reason);
  return m;
}

v1::CoordinatorMessage DrainMessage(const std::string& reason, bool undrain) {
  v1::CoordinatorMessage m;
  m.mutable_drain()->set_reason(reason);
  if (undrain) m.mutable_drain()->set_undrain(true);
  return m;
}

}  // namespace assessq
