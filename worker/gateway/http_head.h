// Parsers for what a job sends the gateway, written to be fuzzed: an HTTP/1.x
// request head (request line and headers, with strict limits), the target's
// forms (CONNECT authority, absolute URI, origin form), and the server name
// of a TLS ClientHello. Pure; no I/O; every input is untrusted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

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

}  // namespace assessq::gateway
