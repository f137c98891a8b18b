// workerd's claim on its state directory: an exclusive lock (flock on
// STATE_DIR/lock, held for the process's life) so two workerd processes never
// share one, and the instance id stored beside it (STATE_DIR/instance-id,
// made once). The id labels and names every container this workerd creates,
// and its reaper removes only containers with its own id: another workerd on
// the same dockerd, even one with the same --name, is never touched.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace assessq {

class StateDirClaim {
 public:
  // Creates `dir` (0700) if missing, takes the lock, reads or makes the id.
  // FAILED_PRECONDITION if another process holds the lock.
  static absl::StatusOr<StateDirClaim> Claim(const std::string& dir);
  StateDirClaim(StateDirClaim&& o) noexcept : fd_(o.fd_), id_(std::move(o.id_)) { o.fd_ = -1; }
  StateDirClaim& operator=(StateDirClaim&&) = delete;
  StateDirClaim(const StateDirClaim&) = delete;
  ~StateDirClaim();

  // 16 lowercase hex digits.
  const std::string& instance_id() const { return id_; }

 private:
  StateDirClaim(int fd, std::string id) : fd_(fd), id_(std::move(id)) {}
  int fd_ = -1;
  std::string id_;
};

// True if `id` is 16 lowercase hex digits (what Claim makes and accepts).
bool ValidInstanceId(const std::string& id);

}  // namespace assessq
