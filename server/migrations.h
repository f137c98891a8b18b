// The coordinator's schema as an ordered list of migrations. Migrate() brings
// a database of any earlier version up to date, one transaction per step, and
// refuses a database written by a newer coordinator.
#pragma once

#include "absl/status/status.h"
#include "server/db.h"

namespace assessq {

int LatestSchemaVersion();
absl::Status Migrate(Db& db);
// Migrate, but stop at `version` (tests build databases of older versions).
absl::Status MigrateTo(Db& db, int version);

}  // namespace assessq
