// A job's network log: one JSON entry per connection, within an entry cap
// and a byte cap (long fields cut, refusals at most three quarters of
// either, what is dropped counted and said in a closing entry), and
// workerd's own log lines about the job's refusals, escaped, cut and
// rate-limited. Thread-safe; no sockets.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/string_view.h"
#include "common/clock.h"

namespace assessq::gateway {

// One log entry, filled in as the request proceeds.
struct Entry {
  nlohmann::json j;
  int64_t start = NowMs();
};

struct NetlogLimits {
  int max_entries = 10000;
  int64_t max_bytes = int64_t{1} << 20;
  int lines_per_minute = 30;  // workerd's lines about refusals
};

class Netlog {
 public:
  Netlog(int64_t job_id, NetlogLimits limits) : job_id_(job_id), lim_(limits) {}
  // Lines suppressed after the job's gateway stopped are said too.
  ~Netlog() { FlushSuppressed(); }

  // Completes `e` (ts, job, decision, reason, deny_reason `token` for a
  // refusal, duration; every string field cut to kNetlogFieldBytes) and
  // keeps it within the caps; a refusal also gets a line in workerd's log.
  void Record(Entry& e, bool allowed, const std::string& why, absl::string_view token = "");
  // The entries so far, plus the closing "truncated" entry if any dropped.
  nlohmann::json Entries();
  int denied();
  // Says how many refusal lines were suppressed, if any.
  void FlushSuppressed();

 private:
  void LogLineLocked(const Entry& e, const std::string& why);
  void FlushSuppressedLocked();

  const int64_t job_id_;
  const NetlogLimits lim_;
  std::mutex mu_;
  nlohmann::json entries_ = nlohmann::json::array();
  int64_t bytes_ = 2;  // "[]"
  int64_t dropped_ = 0, dropped_denied_ = 0;  // entries past a cap
  int denied_ = 0;
  int64_t line_window_start_ = 0;  // workerd's lines: this minute's start
  int lines_in_window_ = 0;
  int64_t lines_suppressed_ = 0;
};

}  // namespace assessq::gateway
