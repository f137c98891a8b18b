// Tests worker/outcome's ClassifyFinished, table-driven: cancellation wins
// over everything; the job's model budget is agent, reason "budget: ...";
// an OOM kill is infra; the deadline is agent; a failing
// exit while the model provider was refusing is model_api with its
// retry-after; any other failing exit is agent; only a clean exit reads the
// output, whose status decides (missing: agent; symlink/hard link/FIFO or
// too large: invalid_output; I/O: infra; read: succeeded with the text).
#include "worker/outcome.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace assessq {
namespace {

using ::testing::HasSubstr;

TEST(ClassifyFinishedTest, Table) {
  Limits l;
  l.memory_mb = 512;
  l.timeout_s = 300;
  l.grace_s = 20;
  const absl::StatusOr<std::string> ok_output = std::string("{\"a\":1}");
  struct Case {
    const char* name;
    ContainerEnd end;
    absl::StatusOr<std::string> output;
    JobOutcome::Kind kind;
    v1::FailureClass cls;
    const char* reason;
    int64_t retry_after_ms;
    bool reads_output;
  };
  auto end = [](auto f) {
    ContainerEnd e;
    e.exit_code = 0;
    f(e);
    return e;
  };
  Case cases[] = {
      {"success", end([](ContainerEnd&) {}), ok_output, JobOutcome::kSucceeded,
       v1::FAILURE_CLASS_UNSPECIFIED, "", 0, true},
      {"cancelled", end([](ContainerEnd& e) {
         e.cancelled = true;
         e.cancel_reason = "cancelled by operator";
         e.oom_killed = true;
         e.timed_out = true;
         e.exit_code = 137;
       }), ok_output, JobOutcome::kCancelled, v1::FAILURE_CLASS_UNSPECIFIED,
       "cancelled by operator", 0, false},
      // The job's model budget: agent, reason "budget: ..." (never retried
      // by the coordinator), whatever the exit, before OOM and the deadline.
      {"budget", end([](ContainerEnd& e) {
         e.budget_exhausted = true;
         e.budget_why = "the job's model budget is spent: 1070 tokens of its 1000";
         e.exit_code = 137;
         e.oom_killed = true;
         e.timed_out = true;
         e.model_api_count = 2;
       }), ok_output, JobOutcome::kFailed, v1::FAILURE_CLASS_AGENT,
       "budget: the job's model budget is spent: 1070 tokens of its 1000; the gateway refused", 0, false},
      {"budget with exit 0 and an output", end([](ContainerEnd& e) { e.budget_exhausted = true; }),
       ok_output, JobOutcome::kFailed, v1::FAILURE_CLASS_AGENT, "budget: ", 0, false},
      {"budget but cancelled", end([](ContainerEnd& e) {
         e.budget_exhausted = true;
         e.cancelled = true;
         e.cancel_reason = "cancelled by operator";
       }), ok_output, JobOutcome::kCancelled, v1::FAILURE_CLASS_UNSPECIFIED, "cancelled by operator", 0, false},
      {"oom", end([](ContainerEnd& e) {
         e.oom_killed = true;
         e.exit_code = 137;
         e.timed_out = true;
         e.model_api_count = 3;
       }), ok_output, JobOutcome::kFailed, v1::FAILURE_CLASS_INFRA,
       "out of memory: killed at the 512 MiB limit", 0, false},
      {"oom with exit 0", end([](ContainerEnd& e) { e.oom_killed = true; }), ok_output,
       JobOutcome::kFailed, v1::FAILURE_CLASS_INFRA, "out of memory", 0, false},
      {"timeout", end([](ContainerEnd& e) {
         e.timed_out = true;
         e.exit_code = 143;
         e.model_api_count = 2;
       }), ok_output, JobOutcome::kFailed, v1::FAILURE_CLASS_AGENT,
       "timeout: still running at the 280 s soft deadline (SIGTERM), hard deadline 300 s "
       "(SIGKILL); exit code 143", 0, false},
      {"timeout but exit 0", end([](ContainerEnd& e) { e.timed_out = true; }), ok_output,
       JobOutcome::kFailed, v1::FAILURE_CLASS_AGENT, "timeout", 0, false},
      {"model api", end([](ContainerEnd& e) {
         e.exit_code = 1;
         e.model_api_count = 4;
         e.model_api_status = 429;
         e.model_api_retry_after_ms = 30000;
       }), ok_output, JobOutcome::kFailed, v1::FAILURE_CLASS_MODEL_API,
       "model provider answered 429 (4 time(s)); agent exited with code 1", 30000, false},
      {"model refusals but success", end([](ContainerEnd& e) {
         e.model_api_count = 1;
         e.model_api_status = 529;
       }), ok_output, JobOutcome::kSucceeded, v1::FAILURE_CLASS_UNSPECIFIED, "", 0, true},
      {"exit code", end([](ContainerEnd& e) { e.exit_code = 2; }), ok_output,
       JobOutcome::kFailed, v1::FAILURE_CLASS_AGENT, "agent exited with code 2", 0, false},
      {"killed by signal", end([](ContainerEnd& e) { e.exit_code = 137; }), ok_output,
       JobOutcome::kFailed, v1::FAILURE_CLASS_AGENT, "agent exited with code 137", 0, false},
      {"no output", end([](ContainerEnd&) {}),
       absl::NotFoundError("no output file 'assessment.json'"), JobOutcome::kFailed,
       v1::FAILURE_CLASS_AGENT, "no output: no output file 'assessment.json'", 0, true},
      {"symlink output", end([](ContainerEnd&) {}),
       absl::PermissionDeniedError("output 'a' is a symbolic link or crosses a mount; refused"),
       JobOutcome::kFailed, v1::FAILURE_CLASS_INVALID_OUTPUT, "symbolic link", 0, true},
      {"oversized output", end([](ContainerEnd&) {}),
       absl::OutOfRangeError("output 'a' is 9999999 bytes; the cap is 1048576"),
       JobOutcome::kFailed, v1::FAILURE_CLASS_INVALID_OUTPUT, "the cap is 1048576", 0, true},
      {"read error", end([](ContainerEnd&) {}), absl::InternalError("read output: EIO"),
       JobOutcome::kFailed, v1::FAILURE_CLASS_INFRA, "read output: EIO", 0, true},
      {"bad name", end([](ContainerEnd&) {}),
       absl::InvalidArgumentError("output file name must be a plain name"), JobOutcome::kFailed,
       v1::FAILURE_CLASS_INFRA, "plain name", 0, true},
  };
  for (const auto& c : cases) {
    bool read = false;
    Verdict v = ClassifyFinished(c.end, l, [&] {
      read = true;
      return c.output;
    });
    EXPECT_EQ(v.kind, c.kind) << c.name;
    EXPECT_EQ(v.failure_class, c.cls) << c.name << ": " << v1::FailureClass_Name(v.failure_class);
    EXPECT_THAT(v.reason, HasSubstr(c.reason)) << c.name;
    EXPECT_EQ(v.retry_after_ms, c.retry_after_ms) << c.name;
    EXPECT_EQ(read, c.reads_output) << c.name;
    if (c.kind == JobOutcome::kSucceeded) {
      EXPECT_EQ(v.result_json, *c.output) << c.name;
      EXPECT_EQ(v.reason, "") << c.name;
    } else {
      EXPECT_EQ(v.result_json, "") << c.name;
    }
  }
}

}  // namespace
}  // namespace assessq
