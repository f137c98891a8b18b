// Names of job states and failure classes as stored in SQLite and printed by
// assessctl, and their mapping to the proto enums. Pure; no I/O.
#pragma once

#include "absl/strings/string_view.h"
#include <optional>
#include <string>
#include <string_view>

#include "assessq/v1/assessq.pb.h"

namespace assessq {

absl::string_view StateName(v1::JobState s);
std::optional<v1::JobState> StateFromName(absl::string_view name);
absl::string_view ClassName(v1::FailureClass c);
std::optional<v1::FailureClass> ClassFromName(absl::string_view name);

bool IsTerminal(v1::JobState s);  // succeeded, needs_attention, cancelled
bool InFlight(v1::JobState s);    // queued, leased, running

}  // namespace assessq
