// The integration tests' harness: the shared test support (tests/support:
// temp dirs, child processes, run-with-deadline, poll-until, the
// coordinatord/assessctl drivers) plus what only these tests need: a file's
// tail for failure messages and a valid assessment to complete jobs with.
// Infrastructure problems throw std::runtime_error with the child's log
// tail; GoogleTest reports them as failures of the test that hit them.
#pragma once

#include <string>

#include "tests/support/drivers.h"
#include "tests/support/process.h"

namespace aqtest {

// The last `max_bytes` of a file, for failure messages.
inline std::string Tail(const std::string& path, size_t max_bytes = 4000) {
  return TailFile(path, max_bytes);
}

// An assessment that passes the built-in contract (schemas/
// assessment.schema.json and server/validation.cc) for a dataset whose
// metadata Name is `name`; `note` (short, any script) is appended to the
// summary so tests can tell results apart.
std::string ValidAssessment(const std::string& name, const std::string& note = "");

}  // namespace aqtest
