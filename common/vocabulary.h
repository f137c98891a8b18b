// The one vocabulary of assessq: job states, failure classes and attempt
// outcomes with the labels SQLite stores, assessctl and the report print and
// the metrics use; and the failure class carried on an absl::Status as a
// typed payload, so a module that fails says which class its failure is
// instead of leaving a status code to be read differently in each place.
// Pure; no I/O. Unit-tested in tests/unit/vocabulary_test.cc.
#pragma once

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "assessq/v1/assessq.pb.h"

namespace assessq {

// queued, leased, running, succeeded, needs_attention, cancelled;
// "unspecified" for anything else.
absl::string_view StateName(v1::JobState s);
std::optional<v1::JobState> StateFromName(absl::string_view name);
bool IsTerminal(v1::JobState s);  // succeeded, needs_attention, cancelled
bool InFlight(v1::JobState s);    // queued, leased, running

// infra, model_api, agent, invalid_output, input; "" for unspecified.
absl::string_view ClassName(v1::FailureClass c);
std::optional<v1::FailureClass> ClassFromName(absl::string_view name);
// Every failure class (not unspecified), in the proto's order.
const std::vector<v1::FailureClass>& FailureClasses();

// How an attempt ended, as the attempts table stores it: leased and running
// while it is open, then succeeded, failed, expired (its lease ran out),
// released (handed back without using an attempt) or cancelled.
enum class AttemptOutcome { kLeased, kRunning, kSucceeded, kFailed, kExpired, kReleased, kCancelled };
absl::string_view OutcomeName(AttemptOutcome o);
std::optional<AttemptOutcome> OutcomeFromName(absl::string_view name);
// The outcome a worker's completion report asks for (succeeded, failed or
// released); nullopt when it names none.
std::optional<AttemptOutcome> OutcomeOfReport(const v1::CompleteRequest& r);

// The failure class as a typed payload on a status: `WithFailureClass`
// returns `s` (not OK) carrying class `c`; `FailureClassOf` reads it back
// (nullopt for OK or a status that carries none).
absl::Status WithFailureClass(absl::Status s, v1::FailureClass c);
std::optional<v1::FailureClass> FailureClassOf(const absl::Status& s);
// Shorthands for the two classes a worker decides before a run starts.
absl::Status InputError(absl::string_view message);  // FailedPrecondition, class input
absl::Status InfraError(absl::string_view message);  // FailedPrecondition, class infra

}  // namespace assessq
