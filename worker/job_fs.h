// The host side of one job's files, under STATE_DIR/jobs/JOB-LEASETOKEN (mode
// 0711 inside the 0700 jobs dir, set explicitly whatever the umask): the
// metadata file (and rendered prompt) the container sees
// read-only; a fresh tmpfs with size= for the output directory, owned by the
// container's user and private to this job; and a separate small tmpfs for
// a file-mode credential copy (file 0400, never on disk, removed with the
// job; refused if it is a model key file under another path); and, for a
// gateway job, the directory of its gateway socket, mounted read-only. Each
// tmpfs is its own filesystem, so the agent cannot hard-link a secret into
// its output. Needs root (mount); the worker runs as root to reach Docker.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/hardening.h"
#include "worker/job_spec.h"

namespace assessq {

class JobFs {
 public:
  // Creates the job directory and its mounts.
  static absl::StatusOr<std::unique_ptr<JobFs>> Create(const std::string& jobs_dir,
                                                       const std::string& name,
                                                       const JobSpec& spec,
                                                       const std::string& metadata,
                                                       const std::string& netbridge = "");
  ~JobFs();  // unmounts and removes everything

  // The bind mounts the container gets.
  const std::vector<BindMount>& mounts() const { return mounts_; }
  const std::string& output_dir() const { return out_; }
  // The gateway's socket path on the host ("" unless the job uses the gateway).
  const std::string& net_socket() const { return net_socket_; }
  const std::string& root() const { return root_; }

  // Removes a job directory left by a crash (unmounting what is mounted).
  static void RemoveStale(const std::string& dir);

 private:
  JobFs() = default;
  std::string root_, out_, secrets_, net_socket_;
  std::vector<BindMount> mounts_;
};

}  // namespace assessq
