// What a job runs and under which limits: the batch profile (the operator's
// request), the worker's local policy (the host owner's ceiling), and the
// JobSpec that results from checking one against the other. A profile that
// asks for more than the policy allows is refused with an error naming the
// setting; nothing is silently clipped. Pure: parsing and decisions only,
// unit-tested without I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace assessq {

struct Limits {
  int64_t memory_mb = 2048;   // memory and memory+swap (no swap)
  double cpus = 1.0;
  int64_t pids = 256;
  int64_t timeout_s = 1800;   // hard deadline: killed
  int64_t grace_s = 10;       // SIGTERM this long before the hard deadline
  int64_t output_mb = 16;     // the output filesystem's size
  int64_t tmp_mb = 256;       // /tmp tmpfs
  int64_t home_mb = 256;      // home tmpfs
  int64_t nofile = 1024;
  int64_t log_kb = 256;       // captured log tail
  int64_t result_kb = 1024;   // the assessment file's cap
};

struct NetworkPolicy {
  std::string mode = "none";  // "none" (the gateway adds "gateway")
};

struct Profile {
  std::string image;
  std::vector<std::string> command;  // placeholders: {input} {output} {output_file}
                                     // {dataset} {name} {prompt_file}
  std::map<std::string, std::string> env;  // non-secret settings only
  std::string prompt_template;             // rendered into {prompt_file}
  std::string output_file = "assessment.json";
  std::string user = "10001:10001";
  bool read_only_rootfs = true;  // Claude Code needs false; a policy may forbid it
  std::string runtime;           // e.g. "runsc"; empty: the daemon's default
  std::string credential;        // name of a credential in the worker policy
  Limits limits;
  NetworkPolicy network;
};

// The ceilings a worker applies when its policy file names none.
inline Limits DefaultMaxLimits() {
  Limits m;
  m.memory_mb = 4096;
  m.cpus = 2;
  m.pids = 1024;
  m.timeout_s = 3600;
  m.grace_s = 60;
  m.output_mb = 64;
  m.tmp_mb = 2048;
  m.home_mb = 2048;
  m.nofile = 4096;
  m.log_kb = 1024;
  m.result_kb = 4096;
  return m;
}

struct LocalPolicy {
  std::vector<std::string> allowed_images = {"assessq-*"};  // exact, or prefix ending in '*'
  Limits max = DefaultMaxLimits();                          // ceilings
  bool allow_root = false;
  bool allow_writable_rootfs = true;
  std::string runtime;                      // forced runtime, overrides the profile
  std::map<std::string, std::string> credentials;  // name -> file (mode 0600)
  int64_t min_free_disk_mb = 1024;
  int64_t min_free_mem_mb = 256;
};

// The fully decided job: profile checked against policy, placeholders filled.
struct JobSpec {
  std::string image;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string user;
  bool read_only_rootfs = true;
  std::string runtime;
  Limits limits;
  NetworkPolicy network;
  std::string output_file;
  std::string prompt;             // rendered prompt ("" if no template)
  std::string credential_file;    // host file to copy in ("" if none)
  std::string credential_name;
};

// Fixed paths inside the container.
inline constexpr char kInputDir[] = "/input";
inline constexpr char kInputPath[] = "/input/metadata.json";
inline constexpr char kPromptPath[] = "/input/prompt.txt";
inline constexpr char kOutputDir[] = "/output";
inline constexpr char kSecretsDir[] = "/run/secrets";

absl::StatusOr<Profile> ParseProfile(const std::string& json, const Profile& defaults);
absl::StatusOr<LocalPolicy> ParseLocalPolicy(const std::string& json);

// The profile the coordinator stores as "{}" means: the worker's default.
struct JobVars {
  std::string dataset_key;
  std::string dataset_name;
  std::vector<std::string> previous_errors;
};
absl::StatusOr<JobSpec> DecideJobSpec(const Profile& p, const LocalPolicy& policy,
                                      const JobVars& vars);

bool ImageAllowed(const std::string& image, const std::vector<std::string>& allowed);

}  // namespace assessq
