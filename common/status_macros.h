// Early returns for absl::Status and absl::StatusOr, the one copy every
// module uses: RETURN_IF_ERROR(expr) returns a failed status; and
// ASSIGN_OR_RETURN(name, expr) returns a failed StatusOr's status, else
// declares `name` holding its value (moved out).
#pragma once

#include <utility>

#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    if (auto _s = (expr); !_s.ok()) return _s;   \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr)             \
  auto lhs##_or = (expr);                       \
  if (!lhs##_or.ok()) return lhs##_or.status(); \
  auto lhs = std::move(*lhs##_or)
