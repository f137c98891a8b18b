// The egress gateway's decisions, apart from any socket: host names are
// normalised (case, trailing dot, IDNA to A-labels) and matched against the
// profile's allow and deny rules with Docker Sandboxes' semantics
// (`example.com` matches only itself, `*.example.com` only its subdomains,
// deny wins, everything else is denied); IP literals are recognised in every
// spelling inet_aton accepts (decimal, octal, hex, short) and as IPv6, and are
// denied unless a rule names that exact address; and every resolved address
// is classified, refusing loopback, private, link-local, metadata, multicast,
// reserved and IPv6 forms that embed IPv4, unless the worker's local policy
// opens a specific range. The model route's own rules: which methods and
// paths of the provider's API it forwards (nothing else reaches the provider
// with the real key), and how many distinct names a job may have resolved
// under each wildcard rule. Pure; unit-tested without I/O.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace assessq::gateway {

// The port the in-container bridge listens on (127.0.0.1): the proxy and the
// model base URL.
inline constexpr int kBridgePort = 3128;

// An IPv4 or IPv6 address (IPv4 kept as IPv4, not mapped).
struct IpAddr {
  bool v6 = false;
  uint8_t bytes[16] = {0};  // v4 uses the first 4
  std::string ToString() const;
  bool operator==(const IpAddr& o) const;
};

struct Cidr {
  IpAddr base;
  int prefix = 0;
  bool Contains(const IpAddr& a) const;
};
absl::StatusOr<Cidr> ParseCidr(const std::string& text);

// A host name: lower case, no trailing dot, IDNA A-labels. Errors for names
// that are not valid host names.
absl::StatusOr<std::string> NormalizeHost(const std::string& host);

// Parses an IP literal in any spelling ("2130706433", "0177.0.0.1",
// "0x7f.1", "127.1", "::1", "[::ffff:127.0.0.1]"); nullopt if not a literal.
std::optional<IpAddr> ParseIpLiteral(const std::string& host);

struct Rule {
  std::string pattern;  // normalised; "*.example.com", "example.com", an IP
                        // literal, or any of these with ":port"
  std::optional<int> port;
  bool deny = false;
};

struct EgressPolicy {
  std::vector<Rule> rules;               // from the profile (allow + deny)
  std::vector<Rule> forbidden;           // from the worker policy: never allowed
  std::vector<Cidr> open_ranges;         // worker policy only: test hosts
  std::vector<IpAddr> self_addresses;    // the worker host's own: never reachable
  std::vector<int> default_ports = {80, 443};  // for names without ":port"
};

// Parses "host", "*.host", "host:port", "!host" (deny), "[v6]:port".
absl::StatusOr<Rule> ParseRule(const std::string& text);

struct HostDecision {
  bool allowed = false;
  std::string rule;            // the rule that decided, or the reason
  bool explicit_port = false;  // the allowing rule names this exact port (raw TCP allowed)
};

// Decides a request for host:port before any resolution.
HostDecision DecideHost(const EgressPolicy& p, const std::string& normalized_host, int port);

// The addresses of this host's interfaces (getifaddrs).
std::vector<IpAddr> LocalAddresses();

// Classifies a resolved (or literal) address: empty when usable, otherwise
// the reason it is refused.
std::string ClassifyAddress(const EgressPolicy& p, const IpAddr& a);

// One method and path of a model provider's API that the model route
// forwards: "POST /v1/messages" (that exact path, any query string), or
// "GET /v1/models/*" (the path's sub-paths: "/v1/models/x", never
// "/v1/models" itself, a "." or ".." segment, or a percent-escape).
struct ModelApiRule {
  std::string method;  // upper case, as sent
  std::string path;    // without the trailing "*" for a prefix rule
  bool prefix = false;
};
absl::StatusOr<ModelApiRule> ParseModelApiRule(const std::string& text);
// The Anthropic Messages API, what Claude Code's model calls use:
// POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models and
// GET /v1/models/*. Not the file, batch or any other endpoint.
std::vector<std::string> DefaultModelApi();
std::vector<ModelApiRule> DefaultModelApiRules();

// Why a refusal happened, as the token the gateway sends in `x-deny-reason`
// and records in the network log.
struct ModelRequestDecision {
  bool allowed = false;
  std::string deny_reason;  // "path_not_allowed" or "method_not_allowed"
  std::string why;          // a sentence for the log and the reply body
};
// Decides an origin-form model request (`target` is "/path?query").
ModelRequestDecision DecideModelRequest(const std::vector<ModelApiRule>& allow,
                                        const std::string& method, const std::string& target);

// Under a wildcard rule (`*.example.com`) the job chooses the names the
// worker's resolver looks up, a channel out through DNS. This counts the
// distinct names each wildcard rule let through for one job and refuses a
// new one past `max_per_rule`; names already admitted stay admitted. Exact
// rules (one fixed name) are not counted.
class WildcardNames {
 public:
  explicit WildcardNames(int max_per_rule) : max_(max_per_rule) {}
  // Whether `host`, which `rule` allowed, may be resolved. *count (if set)
  // is the rule's distinct names afterwards (0 for a rule that is no
  // wildcard).
  bool Admit(const std::string& rule, const std::string& host, int* count = nullptr);
  int max_per_rule() const { return max_; }

 private:
  int max_;
  std::map<std::string, std::set<std::string>> seen_;
};

}  // namespace assessq::gateway
