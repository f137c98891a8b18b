// libFuzzer target: host normalisation (IDNA), IP literals, rules and the
// decision the gateway takes before any resolution.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "worker/gateway/egress_policy.h"

using namespace assessq::gateway;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 600) return 0;
  std::string in(reinterpret_cast<const char*>(data), size);
  if (in.find('\0') != std::string::npos) return 0;  // C strings below
  auto n = NormalizeHost(in);
  if (n.ok()) {
    if (n->empty() || n->size() > 253) std::abort();
    for (char c : *n)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == ':'))
        std::abort();
    // A literal that normalises comes out canonical.
    if (auto ip = ParseIpLiteral(in)) {
      if (*n != ip->ToString()) std::abort();
    }
    EgressPolicy p;
    p.rules.push_back(*ParseRule("*.example.com"));
    p.rules.push_back(*ParseRule("example.com:8443"));
    auto d = DecideHost(p, *n, 443);
    if (d.allowed) {
      // Only subdomains of example.com.
      const std::string suffix = ".example.com";
      if (n->size() <= suffix.size() || n->compare(n->size() - suffix.size(), suffix.size(), suffix) != 0)
        std::abort();
    }
    if (auto ip = ParseIpLiteral(*n)) (void)ClassifyAddress(p, *ip);
  }
  if (auto r = ParseRule(in); r.ok()) {
    if (r->port && (*r->port < 1 || *r->port > 65535)) std::abort();
    if (r->pattern.empty()) std::abort();
  }
  (void)ParseCidr(in);
  return 0;
}
