// Output of running attempts as workers stream it in (about once a second),
// kept in memory only for `assessctl logs -f`: the last `max_bytes` of each
// attempt, keyed by its fencing token, with absolute byte offsets so a
// follower that falls behind learns how much it missed. Display only: the
// attempt's record is the tail the worker reports on completion.
//
// Bound to the lease: the engine Opens a token when it leases the attempt
// (with the worker token the lease is bound to) and Closes it when the lease
// ends; Append is refused (FAILED_PRECONDITION, as Heartbeat and Complete
// refuse it) for a token that is not open, for another job, or from another
// worker token. A closed attempt's output stays readable until evicted.
//
// Bounded: streams idle for `idle_ms` are dropped, at most `max_streams` are
// kept, and all of them together hold at most `max_total_bytes`. Past a cap,
// finished attempts go first (stalest first); then running ones lose the
// oldest bytes of the largest stream (a follower is told how many it
// missed), so one chatty attempt cannot push out the others.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace assessq {

class LiveLogs {
 public:
  struct Options {
    size_t max_bytes = 1 << 20;          // per attempt
    size_t max_streams = 4096;
    int64_t idle_ms = 10 * 60 * 1000;
    size_t max_total_bytes = 256 << 20;  // all attempts together
  };
  LiveLogs() : LiveLogs(Options{}) {}
  explicit LiveLogs(Options o) : opt_(o) {}

  // The lease on attempt `token` of `job_id`, bound to worker token
  // `principal` (0: not bound), begins / ends.
  void Open(int64_t job_id, int64_t token, int64_t principal);
  void Close(int64_t token, int64_t now_ms);

  // Data at `offset` of attempt `token`'s output, from worker token
  // `principal` (0: not checked). Overlaps are trimmed, gaps are noted as
  // skipped bytes. FAILED_PRECONDITION when the lease is not open, is for
  // another job, or is bound to another worker token.
  absl::Status Append(int64_t job_id, int64_t token, int64_t principal, int64_t offset,
                      const std::string& data, int64_t now_ms);

  struct Chunk {
    std::string data;
    int64_t next_offset = 0;
    int64_t skipped = 0;  // bytes between `offset` and data no longer kept
  };
  // Up to `max` bytes from `offset`; nullopt if nothing was ever appended
  // for the attempt (or it was dropped).
  std::optional<Chunk> Read(int64_t token, int64_t offset, size_t max = 256 * 1024) const;

  // Bytes held in all streams (for tests and metrics).
  size_t total_bytes() const;

 private:
  struct Lease {
    int64_t job_id = 0;
    int64_t principal = 0;
  };
  struct Stream {
    int64_t job_id = 0;
    int64_t base = 0;  // offset of buf[0]
    std::string buf;
    int64_t touched_ms = 0;
    bool finished = false;  // its lease ended
  };
  // Drops buf's first `n` bytes.
  void TrimFront(Stream& s, size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Evict(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options opt_;
  mutable absl::Mutex mu_;
  std::map<int64_t, Lease> leases_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, Stream> streams_ ABSL_GUARDED_BY(mu_);
  size_t total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace assessq
