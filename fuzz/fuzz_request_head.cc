// libFuzzer target: the gateway's request-head parser and, on what it
// accepts, what the gateway runs next: the target-form parsers (CONNECT
// authority, absolute URI, Host header), the bridge's self-target checks,
// and the head rewrite sent upstream. Checks the invariants the gateway
// relies on; above all that no credential the job sent survives the rewrite.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"

#include "worker/gateway/http_head.h"

using namespace assessq::gateway;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

// What a parsed authority may hold: a non-empty host without separators or
// whitespace, a port in range.
void CheckAuthority(const Authority& a) {
  Check(!a.host.empty());
  for (char c : a.host) {
    unsigned char u = static_cast<unsigned char>(c);
    Check(u > 0x20 && u != 0x7f && c != '/' && c != '@' && c != '?' && c != '#' && c != '\\');
  }
  Check(a.port >= 1 && a.port <= 65535);
}

void Targets(absl::string_view t) {
  if (auto a = ParseConnectTarget(t); a.ok()) CheckAuthority(*a);
  if (auto u = ParseAbsoluteUri(t); u.ok()) {
    CheckAuthority(u->first);
    Check(!u->second.empty() && u->second[0] == '/');
    Check(u->second.find('#') == std::string::npos);
  }
  if (auto h = ParseHostHeader(t, 80); h.ok()) CheckAuthority(*h);
  // The bridge's own address: only a target that parses as one.
  if (IsSelfAuthority(t)) {
    auto a = ParseConnectTarget(t);
    Check(a.ok() && a->port == kBridgePort);
  }
  if (auto self = SelfTarget(t)) {
    auto u = ParseAbsoluteUri(t);
    Check(u.ok() && u->first.port == kBridgePort && *self == u->second);
  }
  // The model route takes origin form and the bridge's own URL, nothing else.
  if (auto m = ModelRouteTarget(t)) Check(!m->empty() && (*m)[0] == '/' && (*m == t || SelfTarget(t) == *m));
}

// The upstream head: it parses again (when within the parser's limits),
// with the job's method, version and body length, one host (the one given),
// the route's headers exactly once each (the key, accept-encoding: the
// gateway's replace the job's), `connection: close`, and none of the job's
// credential or hop-by-hop headers.
void Rewrite(const RequestHead& h) {
  const std::string kKey = "sk-the-real-key";
  std::string out =
      RewriteRequestHead(h, "/p", "up.test", {{"x-api-key", kKey}, {"accept-encoding", "identity"}});
  Check(absl::EndsWith(out, "connection: close\r\n\r\n"));
  auto again = ParseRequestHead(out);
  if (out.size() > kMaxHeadBytes || h.headers.size() + 4 > kMaxHeaders) return;
  Check(again.ok() && again->has_value() && (*again)->head_bytes == out.size());
  const RequestHead& r = **again;
  Check(r.method == h.method && r.version == h.version && r.target == "/p");
  Check(r.Header("content-length") == h.Header("content-length"));
  int hosts = 0, keys = 0, connections = 0, encodings = 0;
  for (const auto& [k, v] : r.headers) {
    Check(k != "authorization" && k != "proxy-authorization" && k != "te" && k != "upgrade" &&
          k != "keep-alive" && k != "proxy-connection");
    hosts += k == "host";
    keys += k == "x-api-key";
    connections += k == "connection";
    encodings += k == "accept-encoding";
    if (k == "host") Check(v == "up.test");
    if (k == "x-api-key") Check(v == kKey);
    if (k == "connection") Check(v == "close");
    if (k == "accept-encoding") Check(v == "identity");
  }
  Check(hosts == 1 && keys == 1 && connections == 1 && encodings == 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = ParseRequestHead(in);
  if (r.ok() && r->has_value()) {
    const RequestHead& h = **r;
    Check(h.head_bytes <= size && h.head_bytes <= kMaxHeadBytes);
    Check(in.substr(h.head_bytes - 4, 4) == "\r\n\r\n");
    Check(h.version == "HTTP/1.1" || h.version == "HTTP/1.0");
    Check(!h.method.empty() && !h.target.empty());
    Check(h.headers.size() <= kMaxHeaders);
    int lengths = 0;
    bool chunked = false;
    for (const auto& [k, v] : h.headers) {
      Check(!k.empty());
      for (char c : k) Check(!(c >= 'A' && c <= 'Z') && static_cast<unsigned char>(c) > 0x20 && c != ':');
      for (char c : v) Check(c != '\r' && c != '\n' && c != '\0');
      lengths += k == "content-length";
      chunked |= k == "transfer-encoding";
    }
    Check(lengths <= 1 && !(lengths && chunked));
    for (char c : h.target) Check(static_cast<unsigned char>(c) > 0x20 && c != 0x7f);
    Targets(h.target);
    Rewrite(h);
    if (auto host = h.Header("host")) Targets(*host);
  } else if (r.ok()) {
    // "Need more" only while there is no blank line and room is left.
    Check(in.find("\r\n\r\n") == absl::string_view::npos && size <= kMaxHeadBytes);
  }
  // The target parsers on raw input too.
  Targets(in.substr(0, 9000));
  return 0;
}
