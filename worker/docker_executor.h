// Runs a job in a fresh hardened container through the Docker Engine API:
// prepares the job's files (JobFs), creates the container from the hardened
// request, inspects it and refuses to start it unless every hardening setting
// is in force, starts it, enforces the soft (SIGTERM) and hard (SIGKILL)
// deadlines and cancellation, collects a capped log tail, reads the one
// output file safely, and removes the container and files. Every container
// carries labels (worker, job, token) so crashes leave nothing unaccounted.
#pragma once

#include <memory>
#include <string>

#include "worker/docker/docker_client.h"
#include "worker/executor.h"

namespace assessq {

struct DockerExecutorOptions {
  std::string worker_name;
  std::string jobs_dir;  // STATE_DIR/jobs
  std::string docker_socket = "/var/run/docker.sock";
};

class DockerExecutor final : public Executor {
 public:
  static absl::StatusOr<std::unique_ptr<DockerExecutor>> Create(DockerExecutorOptions opt);
  absl::Status Check() override;
  JobOutcome Run(const JobRequest& req, StopSignal& stop) override;
  absl::Status Reap(const std::set<int64_t>& live_jobs) override;

 private:
  explicit DockerExecutor(DockerExecutorOptions opt) : opt_(std::move(opt)) {}
  DockerExecutorOptions opt_;
  std::unique_ptr<docker::DockerClient> docker_;
};

}  // namespace assessq
