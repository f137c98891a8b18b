#include "worker/gateway/egress_policy.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace assessq::gateway {

std::string IpAddr::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, buf, sizeof buf);
  return buf;
}

bool IpAddr::operator==(const IpAddr& o) const {
  return v6 == o.v6 && std::memcmp(bytes, o.bytes, v6 ? 16 : 4) == 0;
}

bool Cidr::Contains(const IpAddr& a) const {
  if (a.v6 != base.v6) return false;
  int bits = prefix;
  for (int i = 0; bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((a.bytes[i] & mask) != (base.bytes[i] & mask)) return false;
  }
  return true;
}

absl::StatusOr<Cidr> ParseCidr(const std::string& text) {
  auto slash = text.find('/');
  std::string addr = text.substr(0, slash);
  Cidr c;
  if (inet_pton(AF_INET, addr.c_str(), c.base.bytes) == 1) {
    c.base.v6 = false;
  } else if (inet_pton(AF_INET6, addr.c_str(), c.base.bytes) == 1) {
    c.base.v6 = true;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not an address range"));
  }
  int max = c.base.v6 ? 128 : 32;
  c.prefix = max;
  if (slash != std::string::npos &&
      (!absl::SimpleAtoi(text.substr(slash + 1), &c.prefix) || c.prefix < 0 || c.prefix > max))
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' has a bad prefix length"));
  return c;
}

std::optional<IpAddr> ParseIpLiteral(const std::string& host_in) {
  std::string host = host_in;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (auto pct = host.find('%'); pct != std::string::npos) host = host.substr(0, pct);
  IpAddr a;
  struct in_addr v4;
  // inet_aton takes every historical spelling: 2130706433, 0177.0.0.1, 0x7f.1, 127.1.
  if (!host.empty() && host.find_first_not_of("0123456789abcdefABCDEFxX.") == std::string::npos &&
      inet_aton(host.c_str(), &v4) == 1) {
    a.v6 = false;
    std::memcpy(a.bytes, &v4, 4);
    return a;
  }
  if (inet_pton(AF_INET6, host.c_str(), a.bytes) == 1) {
    a.v6 = true;
    return a;
  }
  return std::nullopt;
}

absl::StatusOr<std::string> NormalizeHost(const std::string& host_in) {
  std::string host = host_in;
  if (host.empty()) return absl::InvalidArgumentError("empty host");
  if (host.size() > 253 + 1) return absl::InvalidArgumentError("host name too long");
  // "1.2.3.4." is the literal 1.2.3.4: drop the root dot first.
  if (host.back() == '.') host.pop_back();
  if (host.empty()) return absl::InvalidArgumentError("empty host");
  if (auto ip = ParseIpLiteral(host)) return ip->ToString();
  char* out = nullptr;
  int rc = idn2_to_ascii_8z(host.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
  if (rc != IDN2_OK) {
    if (out) idn2_free(out);
    return absl::InvalidArgumentError(
        absl::StrCat("'", host_in, "' is not a valid host name: ", idn2_strerror(rc)));
  }
  std::string a(out);
  idn2_free(out);
  a = absl::AsciiStrToLower(a);
  if (a.empty() || a.size() > 253) return absl::InvalidArgumentError("bad host name length");
  for (char c : a)
    if (!(absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_'))
      return absl::InvalidArgumentError(absl::StrCat("'", host_in, "' is not a valid host name"));
  if (a.find("..") != std::string::npos || a.front() == '.')
    return absl::InvalidArgumentError(absl::StrCat("'", host_in, "' has an empty label"));
  return a;
}

absl::StatusOr<Rule> ParseRule(const std::string& text_in) {
  Rule r;
  std::string text = std::string(absl::StripAsciiWhitespace(text_in));
  if (absl::StartsWith(text, "!")) {
    r.deny = true;
    text = text.substr(1);
  }
  std::string host = text;
  // host:port, [v6]:port; a bare IPv6 has several colons and no port.
  if (absl::StartsWith(text, "[")) {
    auto close = text.find(']');
    if (close == std::string::npos) return absl::InvalidArgumentError(absl::StrCat("rule '", text_in, "': unclosed ["));
    host = text.substr(0, close + 1);
    if (close + 1 < text.size()) {
      int port;
      if (text[close + 1] != ':' || !absl::SimpleAtoi(text.substr(close + 2), &port) || port < 1 || port > 65535)
        return absl::InvalidArgumentError(absl::StrCat("rule '", text_in, "': bad port"));
      r.port = port;
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    auto colon = text.find(':');
    host = text.substr(0, colon);
    int port;
    if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 1 || port > 65535)
      return absl::InvalidArgumentError(absl::StrCat("rule '", text_in, "': bad port"));
    r.port = port;
  }
  bool wildcard = absl::StartsWith(host, "*.");
  auto norm = NormalizeHost(wildcard ? host.substr(2) : host);
  if (!norm.ok())
    return absl::InvalidArgumentError(absl::StrCat("rule '", text_in, "': ", norm.status().message()));
  if (wildcard && ParseIpLiteral(*norm))
    return absl::InvalidArgumentError(absl::StrCat("rule '", text_in, "': a wildcard needs a name"));
  r.pattern = wildcard ? absl::StrCat("*.", *norm) : *norm;
  return r;
}

namespace {
bool HostMatches(const Rule& r, const std::string& host) {
  if (absl::StartsWith(r.pattern, "*.")) {
    std::string suffix = r.pattern.substr(1);  // ".example.com": subdomains only
    return host.size() > suffix.size() && absl::EndsWith(host, suffix);
  }
  return r.pattern == host;
}

// Allow rules without a port allow the default ports; deny rules without a
// port deny every port.
bool Matches(const Rule& r, const std::string& host, int port, const std::vector<int>& dports) {
  if (!HostMatches(r, host)) return false;
  if (r.port) return *r.port == port;
  if (r.deny) return true;
  return std::find(dports.begin(), dports.end(), port) != dports.end();
}

std::string RuleText(const Rule& r) {
  bool v6 = r.pattern.find(':') != std::string::npos;
  std::string host = v6 && r.port ? absl::StrCat("[", r.pattern, "]") : r.pattern;
  return absl::StrCat(r.deny ? "!" : "", host, r.port ? absl::StrCat(":", *r.port) : "");
}
}  // namespace

HostDecision DecideHost(const EgressPolicy& p, const std::string& host, int port) {
  for (Rule r : p.forbidden) {
    r.deny = true;
    if (Matches(r, host, port, p.default_ports))
      return {false, absl::StrCat("forbidden by worker policy: ", RuleText(r))};
  }
  for (const auto& r : p.rules)
    if (r.deny && Matches(r, host, port, p.default_ports))
      return {false, absl::StrCat("deny rule ", RuleText(r))};
  for (const auto& r : p.rules)
    if (!r.deny && Matches(r, host, port, p.default_ports))
      return {true, RuleText(r), r.port.has_value()};
  return {false, "no rule allows it"};
}

namespace {
struct Range {
  const char* cidr;
  const char* why;
};
// Never reachable from a job, whatever the rules say.
const Range kBlocked[] = {
    {"0.0.0.0/8", "'this' network"},       {"10.0.0.0/8", "private"},
    {"100.64.0.0/10", "carrier-grade NAT"}, {"127.0.0.0/8", "loopback"},
    {"169.254.0.0/16", "link-local / cloud metadata"},
    {"172.16.0.0/12", "private"},          {"192.168.0.0/16", "private"},
    {"224.0.0.0/4", "multicast"},          {"240.0.0.0/4", "reserved"},
    {"192.0.0.0/24", "IETF protocol assignments"},
    {"198.18.0.0/15", "benchmarking"},
    {"192.88.99.0/24", "6to4 relay anycast"},
    {"::/128", "unspecified"},             {"::1/128", "loopback"},
    {"fc00::/7", "unique local"},          {"fe80::/10", "link-local"},
    {"fec0::/10", "site-local (deprecated)"},
    {"ff00::/8", "multicast"},
    {"::ffff:0:0/96", "IPv4-mapped"},      {"::/96", "IPv4-compatible"},
    {"::ffff:0:0:0/96", "IPv4-translated"},
    {"64:ff9b::/96", "NAT64"},             {"64:ff9b:1::/48", "local NAT64"},
    {"2002::/16", "6to4"},                 {"2001::/32", "Teredo"},
    {"100::/64", "discard"},
};
}  // namespace

std::vector<IpAddr> LocalAddresses() {
  std::vector<IpAddr> out;
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (auto* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    IpAddr a;
    if (i->ifa_addr->sa_family == AF_INET) {
      std::memcpy(a.bytes, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      a.v6 = true;
      std::memcpy(a.bytes, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    out.push_back(a);
  }
  freeifaddrs(list);
  return out;
}

std::string ClassifyAddress(const EgressPolicy& p, const IpAddr& a) {
  for (const auto& self : p.self_addresses)
    if (self == a) return absl::StrCat(a.ToString(), " is an address of the worker host itself");
  for (const auto& open : p.open_ranges)
    if (open.Contains(a)) return "";
  for (const auto& b : kBlocked) {
    auto c = ParseCidr(b.cidr);
    if (c.ok() && c->Contains(a)) return absl::StrCat(a.ToString(), " is ", b.why, " (", b.cidr, ")");
  }
  return "";
}

// ------------------------------------------------------------- model API

absl::StatusOr<ModelApiRule> ParseModelApiRule(const std::string& text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("model API rule '", text, "': ", why, " (want e.g. \"POST /v1/messages\")"));
  };
  auto sp = text.find(' ');
  if (sp == std::string::npos || sp == 0) return bad("needs a method and a path");
  ModelApiRule r;
  r.method = text.substr(0, sp);
  r.path = text.substr(sp + 1);
  for (char c : r.method)
    if (c < 'A' || c > 'Z') return bad("the method must be upper-case letters");
  if (r.path.empty() || r.path[0] != '/') return bad("the path must start with /");
  if (absl::EndsWith(r.path, "/*")) {
    r.prefix = true;
    r.path.pop_back();  // keeps the "/"
  }
  for (char c : r.path)
    if (c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%' || c == '*' || c == '\\')
      return bad("the path may hold no query, escape, wildcard (but a final /*) or space");
  if (r.path.find("//") != std::string::npos || r.path.find("/./") != std::string::npos ||
      r.path.find("/../") != std::string::npos || absl::EndsWith(r.path, "/.") ||
      absl::EndsWith(r.path, "/.."))
    return bad("the path has an empty, . or .. segment");
  return r;
}

std::vector<std::string> DefaultModelApi() {
  return {"POST /v1/messages", "POST /v1/messages/count_tokens", "GET /v1/models",
          "GET /v1/models/*"};
}

std::vector<ModelApiRule> DefaultModelApiRules() {
  std::vector<ModelApiRule> out;
  for (const auto& t : DefaultModelApi()) out.push_back(*ParseModelApiRule(t));
  return out;
}

ModelRequestDecision DecideModelRequest(const std::vector<ModelApiRule>& allow,
                                        const std::string& method, const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  auto refuse = [&](const char* token, std::string why) {
    return ModelRequestDecision{false, token, std::move(why)};
  };
  // Compared byte for byte: no escape, empty, "." or ".." segment, which an
  // intermediary might resolve to another endpoint.
  bool odd = path.empty() || path[0] != '/' || path.find('#') != std::string::npos ||
             path.find('%') != std::string::npos || path.find('\\') != std::string::npos ||
             path.find("//") != std::string::npos;
  for (size_t at = 0; !odd && at < path.size();) {
    size_t next = path.find('/', at + 1);
    std::string seg = path.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    odd = seg == "." || seg == "..";
    at = next == std::string::npos ? path.size() : next;
  }
  if (odd) return refuse("path_not_allowed", "the path is not in plain form (escape, empty, . or .. segment)");
  bool path_known = false;
  for (const auto& r : allow) {
    bool match = r.prefix ? path.size() > r.path.size() && absl::StartsWith(path, r.path)
                          : path == r.path;
    if (!match) continue;
    path_known = true;
    if (r.method == method) return {true, "", ""};
  }
  if (path_known)
    return refuse("method_not_allowed",
                  absl::StrCat(method, " is not allowed on this path of the model API"));
  return refuse("path_not_allowed", "the path is not an endpoint of the model API this job may use");
}

// ------------------------------------------------------- wildcard names

bool WildcardNames::Admit(const std::string& rule, const std::string& host, int* count) {
  if (!absl::StartsWith(rule, "*.")) {
    if (count) *count = 0;
    return true;
  }
  auto& names = seen_[rule];
  bool ok = names.count(host) > 0 || static_cast<int>(names.size()) < max_;
  if (ok) names.insert(host);
  if (count) *count = static_cast<int>(names.size());
  return ok;
}

}  // namespace assessq::gateway
