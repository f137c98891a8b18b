// The coordinator's caps on a completion report (CompleteRequest, by RPC or
// on the worker's session): a report with any field over its cap is refused
// whole. workerd shrinks a report's attachments to fit before it stores or
// sends one (FitReport, worker/api_client.h), so both sides use these
// numbers, and the outbox's read limit follows from them.
#pragma once

#include <cstddef>

namespace assessq {

inline constexpr size_t kReportResultCap = size_t{8} << 20;
inline constexpr size_t kReportLogTailCap = size_t{256} << 10;
inline constexpr size_t kReportNetlogCap = size_t{4} << 20;
inline constexpr size_t kReportDetailsCap = size_t{1} << 20;
// Not refused by the coordinator (it stores the first 4000 bytes), but
// bounded by workerd so the whole report is.
inline constexpr size_t kReportReasonCap = size_t{16} << 10;
// A report within the caps serialises to less than this (the fields above
// plus numbers and tags); the outbox reads no file larger.
inline constexpr size_t kReportMaxBytes = kReportResultCap + kReportLogTailCap + kReportNetlogCap +
                                          kReportDetailsCap + 2 * kReportReasonCap + (size_t{64} << 10);

}  // namespace assessq
