// The coordinator's names for job states, failure classes and attempt
// outcomes are the shared vocabulary (common/vocabulary.h); this header
// stays so the engine, queries and metrics keep one include while they are
// restructured.
#pragma once

#include "common/vocabulary.h"
