// libFuzzer target: the gateway's request-head parser and, on what it
// accepts, the target-form parsers the gateway runs next (CONNECT authority,
// absolute URI, Host header). Checks the invariants the gateway relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

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
    if (auto host = h.Header("host")) Targets(*host);
  } else if (r.ok()) {
    // "Need more" only while there is no blank line and room is left.
    Check(in.find("\r\n\r\n") == absl::string_view::npos && size <= kMaxHeadBytes);
  }
  // The target parsers on raw input too.
  Targets(in.substr(0, 9000));
  return 0;
}
