#include "worker/outcome.h"

#include "absl/strings/str_cat.h"

namespace assessq {

Verdict ClassifyFinished(const ContainerEnd& e, const Limits& l,
                         const std::function<absl::StatusOr<std::string>()>& read_output) {
  Verdict v;
  auto fail = [&](v1::FailureClass c, std::string why) {
    v.kind = JobOutcome::kFailed;
    v.failure_class = c;
    v.reason = std::move(why);
    return v;
  };
  if (e.cancelled) {
    v.kind = JobOutcome::kCancelled;
    v.reason = e.cancel_reason;
    return v;
  }
  if (e.budget_exhausted)
    return fail(v1::FAILURE_CLASS_AGENT,
                absl::StrCat(kBudgetReason, ": ", e.budget_why,
                             "; the gateway refused the job's further model requests"));
  if (e.oom_killed)
    return fail(v1::FAILURE_CLASS_INFRA,
                absl::StrCat("out of memory: killed at the ", l.memory_mb, " MiB limit"));
  if (e.timed_out)
    return fail(v1::FAILURE_CLASS_AGENT,
                absl::StrCat("timeout: still running at the ", l.timeout_s - l.grace_s,
                             " s soft deadline (SIGTERM), hard deadline ", l.timeout_s,
                             " s (SIGKILL); exit code ", e.exit_code));
  if (e.exit_code != 0 && e.model_api_count > 0) {
    // The agent gave up because the provider refused it: the fleet should
    // slow down, not count it against the agent.
    v.retry_after_ms = e.model_api_retry_after_ms;
    return fail(v1::FAILURE_CLASS_MODEL_API,
                absl::StrCat("model provider answered ", e.model_api_status, " (",
                             e.model_api_count, " time(s)); agent exited with code ",
                             e.exit_code));
  }
  if (e.exit_code != 0)
    return fail(v1::FAILURE_CLASS_AGENT, absl::StrCat("agent exited with code ", e.exit_code));
  absl::StatusOr<std::string> result = read_output();
  if (!result.ok()) {
    if (absl::IsNotFound(result.status()))
      return fail(v1::FAILURE_CLASS_AGENT, absl::StrCat("no output: ", result.status().message()));
    if (absl::IsPermissionDenied(result.status()) || absl::IsOutOfRange(result.status()))
      return fail(v1::FAILURE_CLASS_INVALID_OUTPUT, std::string(result.status().message()));
    return fail(v1::FAILURE_CLASS_INFRA, std::string(result.status().message()));
  }
  v.kind = JobOutcome::kSucceeded;
  v.result_json = std::move(*result);
  return v;
}

}  // namespace assessq
