// The egress gateway: the only way out of a job's container. workerd serves
// one listener per job on a Unix socket private to that job (bind-mounted into
// the container, where a static bridge exposes it as 127.0.0.1:PORT), so every
// request is attributed to its job. It proxies absolute-form HTTP and CONNECT
// tunnels to hosts the job's rules allow, resolving each name once, checking
// every address, connecting only to a checked address, and requiring the TLS
// server name (CONNECT) or Host header (HTTP) to match the target. Requests in
// origin form go to the model provider: the gateway strips whatever key the
// agent sent, adds the real one from the worker's configuration, and makes the
// upstream TLS connection itself with certificate verification, so the
// container never holds the key. It records a network log per job and notes
// the provider's rate-limit answers (429/529/5xx, retry-after). The model
// route forwards only the provider API's own methods and paths. Every
// refusal carries `x-deny-reason: TOKEN` and a short plain-text body. The
// network log has a byte budget as well as an entry cap (long fields are
// cut, what is dropped is counted and said), names under a wildcard rule are
// bounded per job, and workerd's own lines about a job's refused requests
// are rate-limited and cut. Once a connection is a pure byte relay between
// two plain sockets (a CONNECT tunnel after its ClientHello check, a
// plain-HTTP exchange after its head), the bytes move with splice(2) through
// a pipe, never through the gateway's memory, under the same limits (per-job
// bytes, idle time, the request body's length) and byte counts as the
// buffered copy the TLS model route keeps.
//
// The pieces: gateway.cc (the job's listener), connection.h (one
// connection's steps), upstream.h (resolve, connect), relay.h, byte_budget.h,
// netlog.h; the pure decisions and parsers in egress_policy.h and
// http_head.h.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "worker/gateway/egress_policy.h"
#include "worker/gateway/job_budget.h"

namespace asio {
class io_context;
}

namespace assessq::gateway {

struct ModelRoute {
  std::string host;            // e.g. api.anthropic.com
  int port = 443;
  bool tls = true;
  std::string ca_file;         // empty: the system's trust store
  std::string header = "x-api-key";  // or "authorization" (sent as Bearer)
  std::string secret;          // the real key; never reaches the job
  // The provider API's methods and paths this route forwards; others are
  // refused (method_not_allowed / path_not_allowed).
  std::vector<ModelApiRule> api = DefaultModelApiRules();
  std::string provider;  // its name in the worker policy: the job's usage is reported under it
};

struct JobLimits {
  int max_connections = 64;
  int64_t max_total_bytes = int64_t{4} << 30;
  int idle_timeout_ms = 120000;
  // Distinct names a job may have resolved under each wildcard rule.
  int max_names_per_wildcard = 64;
  // The network log: entries past either cap are counted, not kept; one
  // closing entry says how many were dropped. With the closing entry the
  // log stays under netlog_max_bytes + kNetlogNoteBytes (serialised).
  int netlog_max_entries = 10000;
  int64_t netlog_max_bytes = int64_t{1} << 20;
  // workerd's own log lines about this job's refused requests, per minute;
  // the rest are counted and said in one line.
  int log_lines_per_minute = 30;
};

// Every string field of a network log entry is cut to this many bytes (with
// a marker saying how many were cut); the closing entry's size bound.
inline constexpr size_t kNetlogFieldBytes = 256;
inline constexpr size_t kNetlogNoteBytes = 1024;

struct JobConfig {
  int64_t job_id = 0;
  std::string socket_path;  // created by the gateway, mode 0666 in a private dir
  EgressPolicy policy;
  std::optional<ModelRoute> model;
  JobLimits limits;
  // The job's cap on its model usage (job_budget.h); once reached, its model
  // requests are refused with 402 and x-deny-reason: job_budget_exhausted.
  BudgetCap budget;
};

struct RateSignal {
  int status = 0;           // last 429/529/5xx seen from the provider, 0 if none
  int64_t retry_after_ms = 0;
  int count = 0;
};

// The network log as JSON text for the coordinator. Its hosts, paths and
// headers are the agent's bytes: invalid UTF-8 is replaced (U+FFFD), never
// thrown on (nlohmann's default, which would end workerd).
std::string NetlogText(const nlohmann::json& netlog);

class JobGateway {
 public:
  virtual ~JobGateway() = default;
  virtual void Stop() = 0;                 // closes the listener and every connection
  // Array of entries so far; if any were dropped (a cap), the last entry is
  // {"decision":"truncated", "dropped_entries":N, ...} saying so.
  virtual nlohmann::json Netlog() = 0;
  virtual RateSignal rate_signal() = 0;
  virtual int denied() = 0;
  // The job's model usage so far, per model, as the provider's responses
  // said it (usage_meter.h), and whether its budget refused a request.
  virtual UsageSnapshot usage() = 0;
};

struct GatewayOptions {
  // Exactly one (Create refuses more): a connection's sockets never race.
  int threads = 1;
  // Relays between two plain sockets (CONNECT tunnels, plain HTTP, the
  // model route without TLS: its requests, and its responses when `meter`
  // is off) move bytes with splice(2), never through the gateway's memory;
  // false: through a user-space buffer (as the TLS model route and a
  // metered response always do). Limits and byte counts are the same
  // either way.
  bool splice = true;
  // Model responses are read for their usage (usage_meter.h) as they pass.
  // false only for gateway_bench's side-by-side figures: then no usage is
  // counted and no budget can be reached.
  bool meter = true;
  // Test-only: names answered without DNS (worker policy `resolver_overrides`).
  std::map<std::string, std::vector<std::string>> resolver_overrides;
};

class Gateway {
 public:
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(GatewayOptions opt);
  ~Gateway();
  absl::StatusOr<std::shared_ptr<JobGateway>> StartJob(JobConfig cfg);

 private:
  Gateway() = default;
  GatewayOptions opt_;
  std::unique_ptr<asio::io_context> io_;
  std::vector<std::thread> threads_;
};

}  // namespace assessq::gateway
