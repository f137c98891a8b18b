// The container's hardening, decided and then verified. BuildCreateBody turns
// a JobSpec plus the job's mounts into the Docker Engine API create request
// (all capabilities dropped, no-new-privileges, non-root user, read-only root
// with size-capped tmpfs, pids/memory/CPU limits, nofile and core ulimits,
// private IPC, assessq's own seccomp profile (worker/seccomp_profile.h), the
// policy's AppArmor profile if it names one, init, no network, only the job's
// own mounts). VerifyInspect compares what the daemon actually recorded with
// that request and lists every setting that differs, so a daemon or runtime
// that ignored an option is caught before the container starts.
// VerifyStarted checks what only a started container shows: Docker 20.10
// records the AppArmor profile it applied at start (empty when the host has
// no AppArmor, whatever was asked). Pure; no I/O.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "worker/job_spec.h"

namespace assessq {

struct BindMount {
  std::string source;  // host path
  std::string target;  // container path
  bool read_only = true;
};

inline constexpr char kHomeDir[] = "/home/agent";

nlohmann::json BuildCreateBody(const JobSpec& spec, const std::vector<BindMount>& mounts,
                               const std::map<std::string, std::string>& labels);

// Empty when the container matches; otherwise one line per differing setting.
std::vector<std::string> VerifyInspect(const nlohmann::json& inspect, const JobSpec& spec,
                                       const std::vector<BindMount>& mounts);

// Empty when the started container runs under the AppArmor profile the spec
// asks for (and never "unconfined"); otherwise one line per problem.
std::vector<std::string> VerifyStarted(const nlohmann::json& inspect, const JobSpec& spec);

}  // namespace assessq
