// The egress gateway's pure decisions (worker/gateway/egress_policy.h), with
// no I/O: host normalisation, rule parsing and matching, IP literals in every
// spelling, the classification of resolved addresses, the model route's
// methods and paths (every refusal), and the bound on names per wildcard.
#include "worker/gateway/egress_policy.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"

namespace assessq::gateway {
namespace {

EgressPolicy Policy(const std::vector<std::string>& allow, const std::vector<std::string>& deny = {},
                    const std::vector<std::string>& forbidden = {},
                    const std::vector<std::string>& open = {}) {
  EgressPolicy p;
  // Parses each text as a rule (a test failure names one that does not
  // parse) and hands it to `add`.
  auto each_rule = [](const std::vector<std::string>& texts, auto&& add) {
    for (const auto& t : texts) {
      auto r = ParseRule(t);
      EXPECT_TRUE(r.ok()) << t << ": " << r.status();
      if (r.ok()) add(*r);
    }
  };
  each_rule(allow, [&](auto r) { p.rules.push_back(r); });
  each_rule(deny, [&](auto r) {
    r.deny = true;
    p.rules.push_back(r);
  });
  each_rule(forbidden, [&](auto r) { p.forbidden.push_back(r); });
  for (const auto& o : open) {
    auto c = ParseCidr(o);
    EXPECT_TRUE(c.ok()) << o << ": " << c.status();
    if (c.ok()) p.open_ranges.push_back(*c);
  }
  return p;
}

// DecideHost on the normalised form of `host`, as the gateway does.
HostDecision Decide(const EgressPolicy& p, const std::string& host, int port) {
  auto n = NormalizeHost(host);
  if (!n.ok()) return {false, std::string(n.status().message())};
  return DecideHost(p, *n, port);
}

// Expects Decide(p, host, port).allowed to be `allowed` for every host.
void ExpectDecided(const EgressPolicy& p, int port, bool allowed,
                   std::initializer_list<const char*> hosts) {
  for (const char* host : hosts)
    EXPECT_EQ(Decide(p, host, port).allowed, allowed) << host << " port " << port;
}

IpAddr Ip(const std::string& text) {
  auto a = ParseIpLiteral(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddr{});
}

// ------------------------------------------------------------ normalisation

// Expects NormalizeHost(host) to succeed with `normal` for every pair.
void ExpectNormalized(std::initializer_list<std::pair<const char*, const char*>> cases) {
  for (const auto& [host, normal] : cases) {
    auto n = NormalizeHost(host);
    ASSERT_TRUE(n.ok()) << host << ": " << n.status();
    EXPECT_EQ(*n, normal) << host;
  }
}

TEST(NormalizeHost, LowerCasesAndDropsOneTrailingDot) {
  ExpectNormalized({
      {"Example.COM", "example.com"},
      {"example.com.", "example.com"},
      {"EXAMPLE.com.", "example.com"},
      {"a-b_c.example", "a-b_c.example"},
  });
}

TEST(NormalizeHost, IdnaToALabels) {
  ExpectNormalized({
      {"BÜCHER.example", "xn--bcher-kva.example"},
      {"bücher.example", "xn--bcher-kva.example"},
      {"xn--bcher-kva.example", "xn--bcher-kva.example"},
  });
  // NFC input: "u" + combining diaeresis is the same name.
  EXPECT_EQ(*NormalizeHost("bu\xcc\x88" "cher.example"), "xn--bcher-kva.example");
  // UTS#46 maps the ideographic full stop to a dot: one name, one rule.
  EXPECT_EQ(*NormalizeHost("allowed\xe3\x80\x82test"), "allowed.test");
}

TEST(NormalizeHost, RejectsWhatIsNotAHostName) {
  for (const char* bad : {"", ".", "a..b", ".a.b", "exa mple.com", "ex/ample.com", "a@b.com",
                          "a:b", "a\\b.com", "a\tb", "a%2eb", "\x7f", "a\r\nb"}) {
    EXPECT_FALSE(NormalizeHost(bad).ok()) << "'" << bad << "' -> " << NormalizeHost(bad).value_or("");
  }
  EXPECT_FALSE(NormalizeHost(std::string(300, 'a')).ok());
  std::string long_name;
  for (int i = 0; i < 60; ++i) long_name += "abcd.";  // 300 chars
  EXPECT_FALSE(NormalizeHost(long_name + "com").ok());
}

TEST(NormalizeHost, IpLiteralsBecomeCanonical) {
  ExpectNormalized({
      {"0x7f.1", "127.0.0.1"},
      {"2130706433", "127.0.0.1"},
      {"[::1]", "::1"},
      {"::FFFF:7F00:1", "::ffff:127.0.0.1"},
  });
}

// A literal spelled with a trailing dot (the DNS root) is the same literal:
// the dot goes first, so it is never a name a name rule could allow.
TEST(NormalizeHost, TrailingDotLiteralsAreNeverAllowedByNameRules) {
  EgressPolicy p = Policy({"*.example.com", "example.com", "*.7f.1", "localhost"});
  for (const char* h : {"127.0.0.1.", "0x7f.1.", "2130706433.", "0177.0.0.1."}) {
    auto n = NormalizeHost(h);
    ASSERT_TRUE(n.ok()) << h;
    EXPECT_EQ(*n, "127.0.0.1") << h;
    EXPECT_FALSE(DecideHost(p, *n, 80).allowed) << h << " -> " << *n;
    // Whatever it became, the gateway's resolver sees a literal of 127.0.0.1
    // (or nothing): never a different address.
    if (auto ip = ParseIpLiteral(*n)) EXPECT_EQ(ip->ToString(), "127.0.0.1") << h;
  }
}

// ------------------------------------------------------------------ rules

TEST(ParseRule, Forms) {
  constexpr int kNoPort = 0;  // the rule has no port (0 is never a valid one)
  struct Case {
    const char* text;
    const char* pattern;
    std::optional<int> port;   // checked when set
    std::optional<bool> deny;  // checked when set
  };
  const Case cases[] = {
      {"Example.COM", "example.com", kNoPort, false},
      {"*.Example.com:8443", "*.example.com", 8443, std::nullopt},
      {"!bad.example.com", "bad.example.com", std::nullopt, true},
      {"[::1]:8080", "::1", 8080, std::nullopt},
      {"::1", "::1", kNoPort, std::nullopt},
      {"0x7f.1:80", "127.0.0.1", 80, std::nullopt},
      {"BÜCHER.example", "xn--bcher-kva.example", std::nullopt, std::nullopt},
  };
  for (const Case& c : cases) {
    auto r = ParseRule(c.text);
    ASSERT_TRUE(r.ok()) << c.text;
    EXPECT_EQ(r->pattern, c.pattern) << c.text;
    if (c.port == kNoPort) EXPECT_FALSE(r->port.has_value()) << c.text;
    else if (c.port) EXPECT_EQ(r->port, *c.port) << c.text;
    if (c.deny) EXPECT_EQ(r->deny, *c.deny) << c.text;
  }
}

TEST(ParseRule, RejectsBadRules) {
  for (const char* bad : {"", "*.", "*.127.0.0.1", "*.1", "example.com:0", "example.com:65536",
                          "example.com:x", "example.com:", "[::1", "[::1]x", "[::1]:", "a b.com",
                          "*.[::1]"}) {
    EXPECT_FALSE(ParseRule(bad).ok()) << "'" << bad << "'";
  }
}

TEST(DecideHost, ExactNameMatchesOnlyItself) {
  EgressPolicy p = Policy({"example.com"});
  ExpectDecided(p, 443, true, {"example.com", "EXAMPLE.com."});
  ExpectDecided(p, 443, false, {
      "sub.example.com", "a.b.example.com", "badexample.com", "example.com.evil.test",
      "example.co"});
}

TEST(DecideHost, WildcardMatchesSubdomainsOnly) {
  EgressPolicy p = Policy({"*.example.com"});
  ExpectDecided(p, 443, true, {"a.example.com", "a.b.example.com", "A.B.Example.COM."});
  ExpectDecided(p, 443, false, {
      "example.com", "badexample.com", "a.badexample.com", "example.com.evil.test", ".example.com"});
}

TEST(DecideHost, IdnaNamesMatchTheirALabelRules) {
  EgressPolicy p = Policy({"bücher.example"});
  ExpectDecided(p, 443, true, {"BÜCHER.example", "xn--bcher-kva.example"});
  EXPECT_FALSE(Decide(p, "bucher.example", 443).allowed);
}

TEST(DecideHost, DenyWinsWhateverTheOrder) {
  EgressPolicy p = Policy({"*.example.com", "bad.example.com"}, {"bad.example.com"});
  EXPECT_TRUE(Decide(p, "good.example.com", 443).allowed);
  auto d = Decide(p, "bad.example.com", 443);
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(absl::StrContains(d.rule, "deny rule")) << d.rule;
  // A deny rule without a port denies every port.
  EXPECT_FALSE(Decide(p, "bad.example.com", 8080).allowed);
  // A wildcard deny.
  EgressPolicy q = Policy({"*.example.com"}, {"*.internal.example.com"});
  EXPECT_TRUE(Decide(q, "api.example.com", 443).allowed);
  EXPECT_FALSE(Decide(q, "db.internal.example.com", 443).allowed);
  // "!" in the allow list is a deny too.
  EgressPolicy r = Policy({"*.example.com", "!bad.example.com"});
  EXPECT_FALSE(Decide(r, "bad.example.com", 443).allowed);
  // A deny with a port only denies that port.
  EgressPolicy s = Policy({"example.com", "example.com:8080"}, {"example.com:443"});
  EXPECT_FALSE(Decide(s, "example.com", 443).allowed);
  EXPECT_TRUE(Decide(s, "example.com", 80).allowed);
  EXPECT_TRUE(Decide(s, "example.com", 8080).allowed);
}

TEST(DecideHost, WorkerForbiddenWinsOverProfileAllow) {
  EgressPolicy p = Policy({"metadata.example", "*.corp.example", "open.example"}, {},
                          {"metadata.example", "*.corp.example"});
  auto d = Decide(p, "metadata.example", 443);
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(absl::StartsWith(d.rule, "forbidden by worker policy")) << d.rule;
  EXPECT_FALSE(Decide(p, "db.corp.example", 443).allowed);
  EXPECT_TRUE(Decide(p, "open.example", 443).allowed);
  // Forbidden names are forbidden on every port, even one a rule names.
  EgressPolicy q = Policy({"metadata.example:8080"}, {}, {"metadata.example"});
  EXPECT_FALSE(Decide(q, "metadata.example", 8080).allowed);
  // Spelling does not matter.
  EXPECT_FALSE(Decide(p, "METADATA.example.", 443).allowed);
}

TEST(DecideHost, NothingIsAllowedByDefault) {
  EgressPolicy p;
  auto d = Decide(p, "example.com", 443);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, "no rule allows it");
}

TEST(DecideHost, DefaultPortsAndExplicitPorts) {
  EgressPolicy p = Policy({"example.com", "api.example.com:8443"});
  EXPECT_TRUE(Decide(p, "example.com", 80).allowed);
  EXPECT_TRUE(Decide(p, "example.com", 443).allowed);
  EXPECT_FALSE(Decide(p, "example.com", 8080).allowed);
  EXPECT_FALSE(Decide(p, "example.com", 22).allowed);
  EXPECT_TRUE(Decide(p, "api.example.com", 8443).allowed);
  EXPECT_FALSE(Decide(p, "api.example.com", 443).allowed);
  EXPECT_FALSE(Decide(p, "api.example.com", 80).allowed);
  EgressPolicy q = Policy({"example.com"});
  q.default_ports = {443};
  EXPECT_FALSE(Decide(q, "example.com", 80).allowed);
  EXPECT_TRUE(Decide(q, "example.com", 443).allowed);
}

// ------------------------------------------------------------ IP literals

TEST(ParseIpLiteral, EverySpellingOfLoopbackIsOneAddress) {
  const std::vector<std::string> v4 = {"127.0.0.1",  "2130706433", "0177.0.0.1", "0x7f.1",
                                       "0x7f000001", "127.1",      "0x7F.0.0.1", "127.0.1",
                                       "017700000001", "0x7f.0x0.0x0.0x1", "[127.0.0.1]",
                                       "127.0.0.1%eth0"};
  for (const auto& s : v4) {
    auto a = ParseIpLiteral(s);
    ASSERT_TRUE(a.has_value()) << s;
    EXPECT_FALSE(a->v6) << s;
    EXPECT_EQ(a->ToString(), "127.0.0.1") << s;
  }
  const std::vector<std::string> mapped = {"[::ffff:127.0.0.1]", "::ffff:7f00:1", "::FFFF:7F00:0001",
                                           "0:0:0:0:0:ffff:7f00:1", "[::ffff:7f00:1]"};
  for (const auto& s : mapped) {
    auto a = ParseIpLiteral(s);
    ASSERT_TRUE(a.has_value()) << s;
    EXPECT_TRUE(a->v6) << s;
    EXPECT_EQ(a->ToString(), "::ffff:127.0.0.1") << s;
  }
  for (const std::string s : {"[::1]", "::1", "0:0:0:0:0:0:0:1", "[0::1]", "fe80::1%eth0"}) {
    auto a = ParseIpLiteral(s);
    ASSERT_TRUE(a.has_value()) << s;
    EXPECT_TRUE(a->v6);
  }
  EXPECT_EQ(Ip("[::1]").ToString(), "::1");
  EXPECT_EQ(Ip("fe80::1%eth0").ToString(), "fe80::1");
}

TEST(ParseIpLiteral, NamesAreNotLiterals) {
  for (const char* s : {"example.com", "localhost", "1.2.3.4.5", "256.0.0.1", "0x100000000",
                        "08.0.0.1", "1e1", "abc", "", "[]", "1.2.3.4 ", " 1.2.3.4",
                        "1.2.3.4x", "::1::", "[::1", "deadbeef.example", "face.b00c"}) {
    EXPECT_FALSE(ParseIpLiteral(s).has_value()) << "'" << s << "'";
  }
}

TEST(DecideHost, IpLiteralsAreDeniedUnlessARuleNamesThatAddress) {
  EgressPolicy p = Policy({"example.com", "*.example.com", "localhost"});
  const std::vector<std::string> spellings = {
      "127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "0x7f000001", "127.1",
      "[::1]", "::1", "[::ffff:127.0.0.1]", "::ffff:7f00:1", "169.254.169.254", "0xa9fea9fe",
      "10.0.0.1", "012.1", "[fe80::1]"};
  for (const auto& s : spellings) {
    for (int port : {80, 443}) {
      auto d = Decide(p, s, port);
      EXPECT_FALSE(d.allowed) << s << ":" << port;
      EXPECT_EQ(d.rule, "no rule allows it") << s;
    }
  }
  // A rule naming the address allows it in every spelling, and nothing else.
  EgressPolicy q = Policy({"127.0.0.1"});
  for (const std::string s : {"127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "0x7f000001",
                              "127.1"})
    EXPECT_TRUE(Decide(q, s, 80).allowed) << s;
  EXPECT_FALSE(Decide(q, "127.0.0.2", 80).allowed);
  // IPv4 and its IPv4-mapped IPv6 form are different literals: the mapped
  // form is never allowed by an IPv4 rule (and is a blocked range anyway).
  ExpectDecided(q, 80, false, {"[::ffff:127.0.0.1]", "::ffff:7f00:1", "[::1]"});
  EgressPolicy r = Policy({"[::1]:8080"});
  ExpectDecided(r, 8080, true, {"[::1]", "0:0::1"});
  EXPECT_FALSE(Decide(r, "[::1]", 80).allowed);
  EXPECT_FALSE(Decide(r, "127.0.0.1", 8080).allowed);
}

// ---------------------------------------------------------------- ranges

struct Case {
  const char* addr;
  bool blocked;
};

TEST(ClassifyAddress, EveryBlockedRangeAndItsEdges) {
  EgressPolicy p;
  const std::vector<Case> cases = {
      // 'this' network, private, CGNAT, loopback, link-local/metadata.
      {"0.0.0.0", true}, {"0.255.255.255", true}, {"1.0.0.0", false},
      {"9.255.255.255", false}, {"10.0.0.0", true}, {"10.255.255.255", true}, {"11.0.0.0", false},
      {"100.63.255.255", false}, {"100.64.0.0", true}, {"100.127.255.255", true},
      {"100.128.0.0", false},
      {"126.255.255.255", false}, {"127.0.0.1", true}, {"127.255.255.255", true},
      {"128.0.0.0", false},
      {"169.253.255.255", false}, {"169.254.0.0", true}, {"169.254.169.254", true},
      {"169.254.255.255", true}, {"169.255.0.0", false},
      {"172.15.255.255", false}, {"172.16.0.0", true}, {"172.17.0.1", true},
      {"172.31.255.255", true}, {"172.32.0.0", false},
      {"192.167.255.255", false}, {"192.168.0.0", true}, {"192.168.255.255", true},
      {"192.169.0.0", false},
      // IETF protocol assignments, benchmarking, multicast, reserved, broadcast.
      {"192.0.0.0", true}, {"192.0.0.170", true}, {"192.0.0.255", true}, {"192.0.1.0", false},
      {"198.17.255.255", false}, {"198.18.0.0", true}, {"198.19.255.255", true},
      {"198.20.0.0", false},
      {"223.255.255.255", false}, {"224.0.0.1", true}, {"239.255.255.255", true},
      {"240.0.0.0", true}, {"255.255.255.255", true},
      // 6to4 relay anycast.
      {"192.88.98.255", false}, {"192.88.99.0", true}, {"192.88.99.255", true},
      {"192.88.100.0", false},
      // Public (and documentation) addresses are usable.
      {"8.8.8.8", false}, {"1.1.1.1", false}, {"203.0.113.7", false}, {"198.51.100.7", false},
      // IPv6.
      {"::", true}, {"::1", true}, {"::2", true},
      {"fc00::", true}, {"fd12:3456::1", true}, {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
      {"fe00::", false}, {"fe80::1", true}, {"febf:ffff::1", true},
      // Site-local (deprecated, still routed by some stacks).
      {"fec0::1", true}, {"feff:ffff::1", true},
      {"ff02::1", true}, {"ff0e::1", true},
      {"100::", true}, {"100::ffff:ffff:ffff:ffff", true}, {"100:0:0:1::", false},
      {"2606:4700:4700::1111", false}, {"2001:4860:4860::8888", false},
      // IPv6 forms that embed IPv4: mapped (even of a public address),
      // compatible, NAT64 (well-known and local-use), 6to4, Teredo.
      {"::ffff:127.0.0.1", true}, {"::ffff:8.8.8.8", true}, {"::ffff:169.254.169.254", true},
      // IPv4-translated (::ffff:0:a.b.c.d, SIIT).
      {"::ffff:0:127.0.0.1", true}, {"::ffff:0:8.8.8.8", true}, {"::fffe:0:8.8.8.8", false},
      {"::127.0.0.1", true}, {"::8.8.8.8", true}, {"::a9fe:a9fe", true},
      {"64:ff9b::7f00:1", true}, {"64:ff9b::a9fe:a9fe", true}, {"64:ff9b::8.8.8.8", true},
      {"64:ff9b:1::a00:1", true}, {"64:ff9b:1:ffff::1", true}, {"64:ff9b:2::1", false},
      {"2002:7f00:1::", true}, {"2002:a9fe:a9fe::1", true}, {"2002:0808:0808::1", true},
      {"2003::1", false},
      {"2001:0:4136:e378:8000:63bf:3fff:fdd2", true}, {"2001::1", true},
      {"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", true}, {"2001:4860::1", false},
  };
  for (const auto& c : cases) {
    IpAddr a = Ip(c.addr);
    std::string why = ClassifyAddress(p, a);
    EXPECT_EQ(!why.empty(), c.blocked) << c.addr << ": '" << why << "'";
    if (c.blocked) EXPECT_TRUE(absl::StartsWith(why, a.ToString() + " is ")) << why;
  }
}

TEST(ClassifyAddress, ReasonsNameTheRange) {
  EgressPolicy p;
  EXPECT_TRUE(absl::StrContains(ClassifyAddress(p, Ip("169.254.169.254")), "metadata"));
  EXPECT_TRUE(absl::StrContains(ClassifyAddress(p, Ip("127.0.0.1")), "loopback"));
  EXPECT_TRUE(absl::StrContains(ClassifyAddress(p, Ip("::ffff:10.0.0.1")), "IPv4-mapped"));
  EXPECT_TRUE(absl::StrContains(ClassifyAddress(p, Ip("64:ff9b::a00:1")), "NAT64"));
  EXPECT_TRUE(absl::StrContains(ClassifyAddress(p, Ip("2002:a00:1::")), "6to4"));
  EXPECT_TRUE(absl::StrContains(ClassifyAddress(p, Ip("2001:0:a00:1::")), "Teredo"));
}

TEST(ClassifyAddress, OpenRangesOpenExactlyTheGivenRange) {
  EgressPolicy p = Policy({}, {}, {}, {"127.0.0.1/32", "10.1.2.0/24", "fd00:aa::/64"});
  EXPECT_EQ(ClassifyAddress(p, Ip("127.0.0.1")), "");
  EXPECT_NE(ClassifyAddress(p, Ip("127.0.0.2")), "");
  EXPECT_NE(ClassifyAddress(p, Ip("127.0.0.0")), "");
  EXPECT_EQ(ClassifyAddress(p, Ip("10.1.2.0")), "");
  EXPECT_EQ(ClassifyAddress(p, Ip("10.1.2.255")), "");
  EXPECT_NE(ClassifyAddress(p, Ip("10.1.1.255")), "");
  EXPECT_NE(ClassifyAddress(p, Ip("10.1.3.0")), "");
  EXPECT_EQ(ClassifyAddress(p, Ip("fd00:aa::1")), "");
  EXPECT_NE(ClassifyAddress(p, Ip("fd00:ab::1")), "");
  // An open IPv4 range does not open its IPv6 spellings.
  EXPECT_NE(ClassifyAddress(p, Ip("::ffff:127.0.0.1")), "");
  EXPECT_NE(ClassifyAddress(p, Ip("::ffff:10.1.2.3")), "");
  EXPECT_NE(ClassifyAddress(p, Ip("64:ff9b::a01:203")), "");
  EXPECT_NE(ClassifyAddress(p, Ip("::1")), "");
  // Other blocked ranges stay blocked.
  EXPECT_NE(ClassifyAddress(p, Ip("169.254.169.254")), "");
  EXPECT_NE(ClassifyAddress(p, Ip("192.168.1.1")), "");
  // Prefix lengths that are not a multiple of 8.
  EgressPolicy q = Policy({}, {}, {}, {"10.0.0.64/27"});
  EXPECT_NE(ClassifyAddress(q, Ip("10.0.0.63")), "");
  EXPECT_EQ(ClassifyAddress(q, Ip("10.0.0.64")), "");
  EXPECT_EQ(ClassifyAddress(q, Ip("10.0.0.95")), "");
  EXPECT_NE(ClassifyAddress(q, Ip("10.0.0.96")), "");
}

TEST(ParseCidr, FormsAndErrors) {
  auto c = ParseCidr("10.0.0.0/8");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->prefix, 8);
  EXPECT_FALSE(c->base.v6);
  c = ParseCidr("203.0.113.5");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->prefix, 32);
  c = ParseCidr("::1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->prefix, 128);
  c = ParseCidr("0.0.0.0/0");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->Contains(Ip("8.8.8.8")));
  EXPECT_FALSE(c->Contains(Ip("::1")));  // families never mix
  for (const char* bad : {"", "/8", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.0/x",
                          "::/129", "example.com/8", "0x7f.1/32", "127.1/32"})
    EXPECT_FALSE(ParseCidr(bad).ok()) << bad;
}

// ------------------------------------------------------------ model API

TEST(ModelApi, DefaultsAreTheMessagesApiAndEveryOtherRequestIsRefusedWithItsReason) {
  const auto api = DefaultModelApiRules();
  struct Case {
    const char* method;
    const char* target;
    const char* want;  // "" allowed, else the deny reason
  };
  const Case cases[] = {
      {"POST", "/v1/messages", ""},
      {"POST", "/v1/messages?beta=true", ""},  // a query string on a matched path
      {"POST", "/v1/messages/count_tokens", ""},
      {"POST", "/v1/messages/count_tokens?beta=true", ""},
      {"GET", "/v1/models", ""},
      {"GET", "/v1/models?limit=20", ""},
      {"GET", "/v1/models/claude-sonnet-4-5", ""},
      // Another method on a known path.
      {"TRACE", "/v1/messages", "method_not_allowed"},
      {"GET", "/v1/messages", "method_not_allowed"},
      {"DELETE", "/v1/models/x", "method_not_allowed"},
      {"post", "/v1/messages", "method_not_allowed"},  // methods are case-sensitive
      {"OPTIONS", "/v1/messages/count_tokens", "method_not_allowed"},
      // Endpoints that are not the Messages API (they outlive the job).
      {"POST", "/v1/files", "path_not_allowed"},
      {"GET", "/v1/files/file_1/content", "path_not_allowed"},
      {"POST", "/v1/messages/batches", "path_not_allowed"},
      {"GET", "/v1/messages/batches/b1/results", "path_not_allowed"},
      {"TRACE", "/", "path_not_allowed"},
      {"POST", "/v1/complete", "path_not_allowed"},
      {"GET", "/api/claude_code/organizations/metrics_enabled", "path_not_allowed"},
      {"POST", "/v1/messages/", "path_not_allowed"},
      {"POST", "/v1/messagesX", "path_not_allowed"},
      {"GET", "/v1/models/", "path_not_allowed"},  // a sub-path needs a name
      // Spellings an intermediary might resolve to another endpoint.
      {"POST", "/v1/messages/../files", "path_not_allowed"},
      {"GET", "/v1/models/../files", "path_not_allowed"},
      {"GET", "/v1/models/./x", "path_not_allowed"},
      {"GET", "/v1/models/%2e%2e/files", "path_not_allowed"},
      {"POST", "/v1//messages", "path_not_allowed"},
      {"POST", "//v1/messages", "path_not_allowed"},
      {"POST", "/v1/messages#frag", "path_not_allowed"},
      {"POST", "/v1\\messages", "path_not_allowed"},
      {"POST", "/V1/MESSAGES", "path_not_allowed"},
      {"POST", "*", "path_not_allowed"},
      {"POST", "", "path_not_allowed"},
  };
  for (const auto& c : cases) {
    ModelRequestDecision d = DecideModelRequest(api, c.method, c.target);
    EXPECT_EQ(d.allowed, std::string(c.want).empty()) << c.method << " " << c.target;
    EXPECT_EQ(d.deny_reason, c.want) << c.method << " " << c.target << ": " << d.why;
    if (!d.allowed) EXPECT_FALSE(d.why.empty()) << c.method << " " << c.target;
  }
}

TEST(ModelApi, AProviderListReplacesTheDefaults) {
  std::vector<ModelApiRule> api;
  for (const char* t : {"POST /v1/chat/completions", "GET /v1/models"}) {
    auto r = ParseModelApiRule(t);
    ASSERT_TRUE(r.ok()) << t << ": " << r.status();
    api.push_back(*r);
  }
  EXPECT_TRUE(DecideModelRequest(api, "POST", "/v1/chat/completions").allowed);
  EXPECT_TRUE(DecideModelRequest(api, "GET", "/v1/models").allowed);
  EXPECT_EQ(DecideModelRequest(api, "POST", "/v1/messages").deny_reason, "path_not_allowed");
  EXPECT_EQ(DecideModelRequest(api, "GET", "/v1/models/x").deny_reason, "path_not_allowed");
  EXPECT_EQ(DecideModelRequest({}, "POST", "/v1/messages").deny_reason, "path_not_allowed");
}

TEST(ModelApi, RuleParsing) {
  auto r = ParseModelApiRule("GET /v1/models/*");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/v1/models/");
  EXPECT_TRUE(r->prefix);
  r = ParseModelApiRule("POST /v1/messages");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->prefix);
  for (const char* bad : {"", "POST", "/v1/messages", " /v1/messages", "post /v1/messages",
                          "POST v1/messages", "POST /v1/messages?beta=true", "POST /v1/*/x",
                          "POST /v1/mess*", "POST /v1/%2e", "POST /v1/../files", "POST /v1//m",
                          "POST /v1/m x", "POST /v1/.", "POST /v1/m#f"}) {
    auto b = ParseModelApiRule(bad);
    EXPECT_FALSE(b.ok()) << "'" << bad << "'";
    if (!b.ok()) EXPECT_TRUE(absl::StrContains(b.status().message(), "model API rule")) << b.status();
  }
}

// --------------------------------------------------------- wildcard names

TEST(WildcardNames, DistinctNamesPerWildcardRuleAreBounded) {
  WildcardNames n(3);
  int count = -1;
  EXPECT_TRUE(n.Admit("*.example.com", "a.example.com", &count));
  EXPECT_EQ(count, 1);
  EXPECT_TRUE(n.Admit("*.example.com", "b.example.com", &count));
  EXPECT_TRUE(n.Admit("*.example.com", "a.example.com", &count));  // seen: no new name
  EXPECT_EQ(count, 2);
  EXPECT_TRUE(n.Admit("*.example.com", "c.example.com", &count));
  EXPECT_EQ(count, 3);
  EXPECT_FALSE(n.Admit("*.example.com", "d.example.com", &count)) << "the fourth name";
  EXPECT_EQ(count, 3);
  EXPECT_FALSE(n.Admit("*.example.com", "secret-data-0001.example.com"));
  // Names already admitted stay admitted.
  EXPECT_TRUE(n.Admit("*.example.com", "b.example.com"));
  // Each wildcard rule has its own bound (with a port it is another rule).
  EXPECT_TRUE(n.Admit("*.other.org", "x.other.org"));
  EXPECT_TRUE(n.Admit("*.example.com:8443", "d.example.com"));
  // An exact rule names one fixed host: never counted.
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(n.Admit("example.com", "example.com", &count));
    EXPECT_EQ(count, 0);
  }
}

}  // namespace
}  // namespace assessq::gateway
