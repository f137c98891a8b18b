// What a job runs and under which limits: the batch profile (the operator's
// request), the worker's local policy (the host owner's ceiling), and the
// JobSpec that results from checking one against the other. A profile that
// asks for more than the policy allows is refused with an error naming the
// setting; nothing is silently clipped. The model providers' keys
// (policy.credentials) are a namespace of their own that only the egress
// gateway reads: no profile can have one put in a container; a credential
// file in the container needs a policy.file_credentials entry that opts in.
// The user is two numbers, root refused in every spelling. A job's allow list
// may grow by the hosts of its own metadata's links (MetadataAllowHosts).
// Pure: parsing and decisions only, unit-tested without I/O
// (tests/unit/job_spec_test.cc).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/agent_done.h"
#include "worker/gateway/egress_policy.h"

namespace assessq {

// A job's cap on its model usage (profile limits.budget; 0: no cap of that
// kind). The coordinator puts it on the lease with its prices; the gateway
// refuses the job's model requests once it is reached.
struct BudgetLimit {
  int64_t max_tokens = 0;
  double max_usd = 0;
};

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
  int64_t done_grace_s = 10;  // done_when: stopped this long after the agent is done
  BudgetLimit budget;         // profile only (not a policy ceiling)
};

struct NetworkPolicy {
  std::string mode = "none";       // "none", or "gateway": egress only through the job's gateway
  std::vector<std::string> allow;  // host rules: "example.com", "*.example.com", "host:port"
  std::vector<std::string> deny;   // deny rules win
  std::string model;               // a model provider of the worker policy ("" = none)
  // Metadata fields (e.g. "Link", "Paper Link") whose URLs' hosts are added
  // to this job's allow list (MetadataAllowHosts).
  std::vector<std::string> allow_from_metadata;
};

// How the gateway reaches a model provider; the key never enters a container.
struct ModelProvider {
  std::string host;
  int port = 443;
  bool tls = true;
  std::string ca_file;              // empty: system trust store
  std::string header = "x-api-key";  // or "authorization" (Bearer)
  std::string credential;           // name in LocalPolicy.credentials (gateway-only keys)
  std::string base_url_env = "ANTHROPIC_BASE_URL";
  std::string key_env = "ANTHROPIC_API_KEY";
  // The provider API's "METHOD /path" the gateway forwards (a final "/*":
  // the sub-paths); empty: the Anthropic Messages API
  // (gateway::DefaultModelApi). Anything else is refused.
  std::vector<std::string> allow;
};

// The worker's egress ceiling: hosts no profile may allow, and (for test
// hosts only) address ranges and names that bypass the usual checks.
struct EgressLimits {
  std::vector<std::string> forbidden_hosts;
  std::vector<std::string> open_ranges;
  std::map<std::string, std::vector<std::string>> resolver_overrides;
  int max_connections = 64;
  int64_t max_total_mb = 4096;
  int idle_timeout_s = 120;
  int max_names_per_wildcard = 64;  // distinct names per job under each `*.domain` rule
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
  std::string credential;        // name in LocalPolicy.file_credentials ("file mode")
  DoneWhen done_when = DoneWhen::kExit;  // when the agent counts as done (agent_done.h)
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

// A file copied read-only into the container at /run/secrets/NAME ("file
// mode"). The agent can read it and send it to any host it may reach, so a
// policy must say so explicitly: allow_in_container true, per name.
struct FileCredential {
  std::string file;  // host path (mode 0600 or stricter)
  bool allow_in_container = false;
};

struct LocalPolicy {
  std::vector<std::string> allowed_images = {"assessq-*"};  // exact, or prefix ending in '*'
  Limits max = DefaultMaxLimits();                          // ceilings
  bool allow_root = false;
  bool allow_writable_rootfs = true;
  std::string runtime;                      // forced runtime, overrides the profile
  // The model providers' keys, name -> file (mode 0600): read by the egress
  // gateway only, never mounted into a container whatever a profile says.
  std::map<std::string, std::string> credentials;
  // Files a profile may have copied into its container (see FileCredential).
  std::map<std::string, FileCredential> file_credentials;
  int64_t min_free_disk_mb = 1024;
  int64_t min_free_mem_mb = 256;
  std::map<std::string, ModelProvider> model_providers;
  EgressLimits egress;
  std::string netbridge_path;  // static bridge binary mounted into gateway jobs
  std::string apparmor_profile;  // "": the daemon's default; else required and verified
};

// The fully decided job: profile checked against policy, placeholders filled.
struct JobSpec {
  std::string image;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string user;
  bool read_only_rootfs = true;
  std::string runtime;
  std::string apparmor_profile;  // from the policy ("" = the daemon's default)
  DoneWhen done_when = DoneWhen::kExit;
  Limits limits;
  NetworkPolicy network;
  std::string output_file;
  std::string prompt;             // rendered prompt ("" if no template)
  std::string credential_file;    // host file to copy in ("" if none)
  std::string credential_name;
  // Every model key file of the policy: JobFs refuses a credential file that
  // is one of them under another name (a hard or symbolic link).
  std::vector<std::string> model_key_files;
  std::optional<ModelProvider> model;  // resolved from network.model
  std::string model_secret_file;       // the provider's key file (read by the gateway only)
  // The hosts network.allow_from_metadata added to network.allow, and why
  // the metadata's other URLs were not added (field and reason, no value).
  std::vector<std::string> metadata_hosts;
  std::vector<std::string> metadata_refused;
};

// Inside-container paths of the gateway bridge.
inline constexpr char kNetDir[] = "/run/assessq/net";
inline constexpr char kNetSocket[] = "/run/assessq/net/proxy.sock";
inline constexpr char kNetbridgePath[] = "/run/assessq/netbridge";
inline constexpr int kProxyPort = gateway::kBridgePort;
inline constexpr char kPlaceholderKey[] = "assessq-placeholder-the-gateway-adds-the-real-key";

// Fixed paths inside the container.
inline constexpr char kInputDir[] = "/input";
inline constexpr char kInputPath[] = "/input/metadata.json";
inline constexpr char kPromptPath[] = "/input/prompt.txt";
inline constexpr char kOutputDir[] = "/output";
inline constexpr char kSecretsDir[] = "/run/secrets";

// The most hosts one job's metadata may add to its allow list.
inline constexpr size_t kMaxMetadataHosts = 8;
// URLs longer than this are not looked at.
inline constexpr size_t kMaxMetadataUrl = 8192;

absl::StatusOr<Profile> ParseProfile(const std::string& json, const Profile& defaults);
absl::StatusOr<LocalPolicy> ParseLocalPolicy(const std::string& json);

// The profile the coordinator stores as "{}" means: the worker's default.
struct JobVars {
  std::string dataset_key;
  std::string dataset_name;
  std::vector<std::string> previous_errors;
  std::string metadata;  // the dataset's metadata file (JSON), for allow_from_metadata
};
absl::StatusOr<JobSpec> DecideJobSpec(const Profile& p, const LocalPolicy& policy,
                                      const JobVars& vars);

bool ImageAllowed(const std::string& image, const std::vector<std::string>& allowed);

// "UID:GID", both decimal numbers (leading zeros allowed, compared as
// numbers; names are not resolved: a name is refused). `field` names the
// setting in errors.
struct UserIds {
  uint32_t uid = 0;
  uint32_t gid = 0;
};
absl::StatusOr<UserIds> ParseUserIds(const std::string& user, const std::string& field);

// The host of an http(s) URL, parsed strictly: scheme http or https, no
// user info, an ASCII host name of letter-digit-hyphen labels (lower-cased,
// at least two labels, the last starting with a letter, so no IP literal in
// any spelling), an optional numeric port, then nothing or / ? #. Errors say
// why without repeating the URL.
absl::StatusOr<std::string> UrlHost(const std::string& url);

struct MetadataHosts {
  std::vector<std::string> hosts;    // to add, in field order, without duplicates
  std::vector<std::string> refused;  // "FIELD: reason" for each URL not added
};
// The hosts of the URLs in `fields` of the metadata JSON object that may be
// added to a job's allow list: not an IP literal, not matching a forbidden
// host of the worker policy or a deny rule of the profile, not already
// allowed by the profile's rules, at most kMaxMetadataHosts.
MetadataHosts MetadataAllowHosts(const std::string& metadata_json,
                                 const std::vector<std::string>& fields,
                                 const NetworkPolicy& network,
                                 const std::vector<std::string>& forbidden_hosts);

}  // namespace assessq
