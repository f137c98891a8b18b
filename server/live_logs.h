// Output of running attempts as workers stream it in (about once a second),
// kept in memory only for `assessctl logs -f`: the last `max_bytes` of each
// attempt, keyed by its fencing token, with absolute byte offsets so a
// follower that falls behind learns how much it missed. Display only: the
// attempt's record is the tail the worker reports on completion. Streams
// idle for `idle_ms` are dropped, and at most `max_streams` are kept (the
// stalest go first), so a worker cannot grow the coordinator's memory.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace assessq {

class LiveLogs {
 public:
  struct Options {
    size_t max_bytes = 1 << 20;
    size_t max_streams = 4096;
    int64_t idle_ms = 10 * 60 * 1000;
  };
  LiveLogs() : LiveLogs(Options{}) {}
  explicit LiveLogs(Options o) : opt_(o) {}

  // Data at `offset` of attempt `token`'s output. Overlaps are trimmed, gaps
  // are noted as skipped bytes.
  void Append(int64_t job_id, int64_t token, int64_t offset, const std::string& data,
              int64_t now_ms);

  struct Chunk {
    std::string data;
    int64_t next_offset = 0;
    int64_t skipped = 0;  // bytes between `offset` and data no longer kept
  };
  // Up to `max` bytes from `offset`; nullopt if nothing was ever appended
  // for the attempt (or it was dropped).
  std::optional<Chunk> Read(int64_t token, int64_t offset, size_t max = 256 * 1024) const;

 private:
  struct Stream {
    int64_t job_id = 0;
    int64_t base = 0;  // offset of buf[0]
    std::string buf;
    int64_t touched_ms = 0;
  };
  void Evict(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options opt_;
  mutable absl::Mutex mu_;
  std::map<int64_t, Stream> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace assessq
