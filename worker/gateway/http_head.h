// The gateway's pure HTTP text, written to be fuzzed. Parsers for what a job
// sends: an HTTP/1.x request head (request line and headers, with strict
// limits), the target's forms (CONNECT authority, absolute URI, origin form,
// the bridge's own address), and the server name of a TLS ClientHello. What
// the gateway writes: the request head it sends upstream (credential and
// hop-by-hop headers stripped) and its own refusals. What it reads back from
// the model provider: a response's status and retry-after. No I/O; every
// input is untrusted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/gateway/egress_policy.h"

namespace assessq::gateway {

inline constexpr size_t kMaxHeadBytes = 32 * 1024;
inline constexpr size_t kMaxHeaders = 100;

struct RequestHead {
  std::string method;
  std::string target;
  std::string version;  // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  size_t head_bytes = 0;  // bytes of the head including the blank line
  std::optional<std::string> Header(absl::string_view lower_name) const;
};

// Returns nullopt (in the StatusOr) when `data` does not yet hold a whole
// head; an error when it never will (malformed, too large).
absl::StatusOr<std::optional<RequestHead>> ParseRequestHead(absl::string_view data);

struct Authority {
  std::string host;  // brackets removed for IPv6
  int port = 0;
};
// "host:port" (CONNECT); the port is required.
absl::StatusOr<Authority> ParseConnectTarget(absl::string_view target);
// "http://host[:port]/path?q" -> authority (default port 80) and origin form.
absl::StatusOr<std::pair<Authority, std::string>> ParseAbsoluteUri(absl::string_view target);
// How many body bytes follow a request head: its Content-Length, 0 with no
// body headers, nullopt for Transfer-Encoding (the body's end is in the
// stream). An error for a Content-Length that is not a plain decimal number.
absl::StatusOr<std::optional<int64_t>> RequestBodyLength(const RequestHead& h);
// A Host header value: "host[:port]".
absl::StatusOr<Authority> ParseHostHeader(absl::string_view value, int default_port);

// The SNI host name of a TLS ClientHello record. Returns nullopt (in the
// StatusOr) when more bytes are needed; an error when it is not a
// ClientHello or has no server name.
absl::StatusOr<std::optional<std::string>> ParseClientHelloSni(absl::string_view data);

// "127.0.0.1:3128" / "localhost:3128" (a CONNECT target): the in-container
// bridge's own address (kBridgePort).
bool IsSelfAuthority(absl::string_view target);
// "http://127.0.0.1:3128/p" or "http://localhost:3128/p" (the model base URL
// in absolute form) -> "/p"; nullopt for any other target.
std::optional<std::string> SelfTarget(absl::string_view target);
// The model route's origin-form target for a request that goes to the model
// route: `target` itself in origin form ("/..."), or SelfTarget's path;
// nullopt for every other request (a proxied one).
std::optional<std::string> ModelRouteTarget(absl::string_view target);

// The body bytes still to come after `rest` (what arrived with the head) for
// a body of `body_length` bytes; `rest` is cut to the body, so a request
// pipelined behind it goes nowhere.
int64_t TakeBodyStart(int64_t body_length, std::string& rest);

// The request head sent upstream: `h`'s method and version with `path`, its
// headers except hop-by-hop ones (host, connection, keep-alive,
// proxy-connection, te, upgrade) and the credential headers (authorization,
// proxy-authorization, x-api-key: whatever key the job sent never leaves),
// and the headers `add` names (the gateway's own replace the job's), then
// `host: host_header`, the `add` headers (the model route's real key, its
// accept-encoding) and `connection: close`.
std::string RewriteRequestHead(const RequestHead& h, absl::string_view path, absl::string_view host_header,
                               const std::vector<std::pair<std::string, std::string>>& add);

// What a model provider's response head says about rate limits: its status
// ("HTTP/1.1 429 ..."; 0 if unreadable) and, for 429, 529 and 5xx
// (`limited`), its retry-after in milliseconds (seconds, bounded to a day;
// 0 when absent or not a positive number).
struct ResponseSignal {
  int status = 0;
  bool limited = false;
  int64_t retry_after_ms = 0;
};
ResponseSignal ParseResponseSignal(absl::string_view head);

// Cuts `s` to at most `max` bytes (at a UTF-8 character boundary), saying
// how many were cut.
std::string CutText(absl::string_view s, size_t max);

// The gateway's own answer. A refusal names its reason twice: as a token in
// `x-deny-reason` (what a client such as Claude Code recognises, e.g.
// host_not_allowed) and as a short sentence (cut to 400 bytes) in the body.
std::string GatewayReply(int code, absl::string_view phrase, absl::string_view token, absl::string_view why);

}  // namespace assessq::gateway
