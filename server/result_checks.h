// Chooses how an uploaded result is checked, per batch: the built-in
// assessment contract (schemas/assessment.schema.json plus the rules a schema
// cannot express) by default; the schema a profile names inline under
// "schema"; or, with "schema": "json-object", only that the result is a JSON
// object. The trust flags stored with each result come from the same pass
// (built-in contract only). What a profile asks for, and the schemas it
// names, are worked out once per profile text and cached.
#pragma once

#include "absl/status/statusor.h"
#include "server/engine.h"

namespace assessq {

absl::StatusOr<ResultChecker> MakeResultChecker();

}  // namespace assessq
