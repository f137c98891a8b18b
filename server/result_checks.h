// Chooses how an uploaded result is checked, per batch: the built-in
// assessment contract (schemas/assessment.schema.json plus the rules a schema
// cannot express) by default; the schema a profile names inline under
// "schema"; or, with "schema": "json-object", only that the result is a JSON
// object. Compiled schemas are cached by their text. Also the trust flags
// stored with each result.
#pragma once

#include "absl/status/statusor.h"
#include "server/engine.h"

namespace assessq {

absl::StatusOr<ResultValidator> MakeResultValidator();
ResultFlagger MakeResultFlagger();

}  // namespace assessq
