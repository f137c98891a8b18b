// How a finished container becomes a job outcome: cancellation, then the
// job's model budget (the gateway refused a model request for it: agent,
// reason "budget: ...", which the coordinator never retries), then the OOM
// kill (infra: the limit, not the agent), then the deadline (agent),
// then a failing exit while the model provider was refusing (model_api, with
// its retry-after, so the fleet slows down instead of blaming the agent),
// then any other failing exit (agent); only a clean exit reads the output
// file, whose read status decides the rest (missing: agent; unsafe kind or
// too large: invalid_output; I/O: infra). Pure apart from the read callback;
// unit-tested table-driven (tests/unit/outcome_test.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "worker/executor.h"
#include "worker/job_spec.h"

namespace assessq {

// What the executor saw when the container ended.
struct ContainerEnd {
  bool cancelled = false;       // stopped by the coordinator, a lost lease or a drain
  std::string cancel_reason;
  bool oom_killed = false;      // the daemon's State.OOMKilled
  bool timed_out = false;       // still running at the soft deadline
  int64_t exit_code = -1;
  int model_api_count = 0;      // the gateway's rate signal: refusals seen
  int model_api_status = 0;     // the last refusal's HTTP status
  int64_t model_api_retry_after_ms = 0;
  bool budget_exhausted = false;  // the gateway refused a model request: the job's cap
  std::string budget_why;         // what was spent of which cap
};

// A budget failure's reason starts with this word and a colon; the
// coordinator's retry decision (server/retry_policy.cc) keys on it.
inline constexpr char kBudgetReason[] = "budget";

struct Verdict {
  JobOutcome::Kind kind = JobOutcome::kFailed;
  v1::FailureClass failure_class = v1::FAILURE_CLASS_UNSPECIFIED;
  std::string reason;
  int64_t retry_after_ms = 0;
  std::string result_json;  // kSucceeded
};

// `read_output` is called only when the container exited cleanly.
Verdict ClassifyFinished(const ContainerEnd& end, const Limits& limits,
                         const std::function<absl::StatusOr<std::string>()>& read_output);

}  // namespace assessq
