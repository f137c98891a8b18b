// Runs a job in a fresh hardened container through the Docker Engine API:
// prepares the job's files (JobFs), creates the container from the hardened
// request, inspects it and refuses to start it unless every hardening setting
// is in force, starts it, enforces the soft (SIGTERM) and hard (SIGKILL)
// deadlines and cancellation, collects a capped log tail, reads the one
// output file safely, and removes the container and files. Every container
// carries labels (worker, instance, job, lease token) so crashes leave nothing
// unaccounted; the reaper removes only containers of its own instance.
#pragma once

#include <memory>
#include <string>

#include "worker/docker/docker_client.h"
#include "worker/executor.h"
#include "worker/gateway/gateway.h"

namespace assessq {

struct DockerExecutorOptions {
  std::string worker_name;
  std::string instance_id;  // this workerd's state dir's id (StateDirClaim)
  std::string jobs_dir;  // STATE_DIR/jobs
  std::string docker_socket = "/var/run/docker.sock";
  std::string netbridge_path;   // static bridge mounted into gateway jobs
  EgressLimits egress;          // the worker policy's egress ceiling
};

class DockerExecutor final : public Executor {
 public:
  static absl::StatusOr<std::unique_ptr<DockerExecutor>> Create(DockerExecutorOptions opt);
  absl::Status Check() override;
  JobOutcome Run(const JobRequest& req, StopSignal& stop) override;
  absl::Status Reap(const std::function<bool(int64_t job)>& is_live) override;

 private:
  explicit DockerExecutor(DockerExecutorOptions opt) : opt_(std::move(opt)) {}
  DockerExecutorOptions opt_;
  // Builds the job's egress rules and model route for its gateway.
  absl::StatusOr<gateway::JobConfig> GatewayConfig(const JobRequest& req,
                                                   const std::string& socket) const;
  std::unique_ptr<docker::DockerClient> docker_;
  std::unique_ptr<gateway::Gateway> gateway_;
};

}  // namespace assessq
