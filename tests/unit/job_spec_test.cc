// Tests worker/job_spec: the profile x policy decision without Docker.
// ParseUserIds and DecideJobSpec refuse root in every spelling ("00:00",
// "0:0", "10001:000", ...) and every non-numeric spelling ("0", "0000",
// " 0", "+0", "root"); DecideJobSpec's every other refusal (image, each
// limit, writable root, model provider, gateway without a bridge); a profile
// can never have a model key (policy.credentials) put in a container, and a
// file credential needs policy.file_credentials with allow_in_container; the
// policy parser refuses file credentials that alias a model key; and the
// job's metadata hosts (network.allow_from_metadata) are parsed strictly,
// never IP literals, forbidden or denied hosts, at most kMaxMetadataHosts.
// The shipped Claude profile and example policy parse and decide.
#include "worker/job_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace assessq {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using nlohmann::json;

Profile BaseProfile() {
  Profile p;
  p.image = "assessq-test:1";
  p.command = {"/agent", "{input}", "{output_file}"};
  return p;
}

LocalPolicy BasePolicy() {
  LocalPolicy pol;
  pol.netbridge_path = "/usr/lib/assessq/assessq-netbridge";
  pol.credentials = {{"anthropic", "/etc/assessq/anthropic.key"}};
  pol.model_providers["anthropic"] = ModelProvider{};
  pol.model_providers["anthropic"].host = "api.anthropic.com";
  pol.model_providers["anthropic"].credential = "anthropic";
  pol.file_credentials["claude"] = {"/etc/assessq/claude.json", true};
  pol.file_credentials["closed"] = {"/etc/assessq/closed.json", false};
  return pol;
}

// ---- user ids --------------------------------------------------------------

TEST(ParseUserIdsTest, NumbersAreComparedAsNumbers) {
  struct Case {
    const char* user;
    uint32_t uid, gid;
  } cases[] = {{"10001:10001", 10001, 10001}, {"0:0", 0, 0},       {"00:00", 0, 0},
               {"000000000:0", 0, 0},         {"010001:07", 10001, 7}, {"999999999:1", 999999999, 1}};
  for (const auto& c : cases) {
    auto u = ParseUserIds(c.user, "profile.user");
    ASSERT_TRUE(u.ok()) << c.user << ": " << u.status();
    EXPECT_EQ(u->uid, c.uid) << c.user;
    EXPECT_EQ(u->gid, c.gid) << c.user;
  }
}

TEST(ParseUserIdsTest, EverythingButTwoDecimalNumbersIsRefused) {
  for (const char* user :
       {"", "0", "0000", " 0", "+0", "-0", "root", "root:root", "0:root", "root:0", ":", "0:",
        ":0", "0:0:0", " 0:0", "0:0 ", "+0:0", "0:+0", "-1:0", "0x0:0", "0:0x0", "1e3:1",
        "1000000000:1", "1:4294967295", "\xd9\xa0:\xd9\xa0" /* Arabic-Indic zeros */, "0:0\n",
        "0\0:0", "10001:10001 "}) {
    auto u = ParseUserIds(user, "profile.user");
    EXPECT_FALSE(u.ok()) << "'" << user << "' was accepted";
    EXPECT_THAT(u.status().message(), HasSubstr("profile.user must be UID:GID")) << user;
    EXPECT_THAT(u.status().message(), HasSubstr("not resolved")) << user;
  }
}

TEST(DecideJobSpecTest, RootIsRefusedInEverySpelling) {
  struct Case {
    const char* user;
    const char* why;
  } cases[] = {{"0:0", "uid 0 (root)"},         {"00:00", "uid 0 (root)"},
               {"000:10001", "uid 0 (root)"},   {"0:10001", "uid 0 (root)"},
               {"10001:0", "gid 0 (group root)"}, {"10001:000", "gid 0 (group root)"},
               {"000000000:000000000", "uid 0 (root)"}};
  for (const auto& c : cases) {
    Profile p = BaseProfile();
    p.user = c.user;
    auto s = DecideJobSpec(p, BasePolicy(), {});
    ASSERT_FALSE(s.ok()) << c.user << " was accepted";
    EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition) << c.user;
    EXPECT_THAT(s.status().message(), HasSubstr(c.why)) << c.user;
    EXPECT_THAT(s.status().message(), HasSubstr("policy.allow_root")) << c.user;
    // A policy that allows root gets the canonical numbers, as Docker will.
    LocalPolicy root_ok = BasePolicy();
    root_ok.allow_root = true;
    auto ok = DecideJobSpec(p, root_ok, {});
    ASSERT_TRUE(ok.ok()) << c.user << ": " << ok.status();
    EXPECT_TRUE(ok->user == "0:0" || ok->user == "0:10001" || ok->user == "10001:0") << ok->user;
  }
}

TEST(DecideJobSpecTest, NonNumericUsersAreRefusedEvenIfTheParserWasBypassed) {
  for (const char* user : {"0", "0000", " 0", "+0", "root", "root:root", "+0:0", " 0:0"}) {
    Profile p = BaseProfile();
    p.user = user;
    LocalPolicy pol = BasePolicy();
    pol.allow_root = true;  // still: a name is never resolved
    auto s = DecideJobSpec(p, pol, {});
    ASSERT_FALSE(s.ok()) << "'" << user << "' was accepted";
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.status().message(), HasSubstr("profile.user must be UID:GID"));
  }
}

TEST(DecideJobSpecTest, UserIsCanonical) {
  Profile p = BaseProfile();
  p.user = "0010001:010002";
  auto s = DecideJobSpec(p, BasePolicy(), {});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->user, "10001:10002");
}

TEST(ParseProfileTest, RootSpellingsInAProfileFile) {
  for (const char* user : {"0", "0000", " 0", "+0", "root", "root:root"}) {
    json j = {{"image", "assessq-test:1"}, {"command", {"/agent"}}, {"user", user}};
    auto p = ParseProfile(j.dump(), Profile{});
    EXPECT_FALSE(p.ok()) << user;
    EXPECT_THAT(p.status().message(), HasSubstr("profile.user")) << user;
  }
  // Numeric root parses; the decision refuses it (the policy may allow it).
  json j = {{"image", "assessq-test:1"}, {"command", {"/agent"}}, {"user", "00:00"}};
  auto p = ParseProfile(j.dump(), Profile{});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(DecideJobSpec(*p, BasePolicy(), {}).ok());
}

// ---- every other refusal ---------------------------------------------------

TEST(DecideJobSpecTest, EveryLimitAboveItsCeilingIsRefusedByName) {
  struct Case {
    const char* name;
    void (*raise)(Limits&);
  } cases[] = {
      {"memory_mb", [](Limits& l) { l.memory_mb = DefaultMaxLimits().memory_mb + 1; }},
      {"cpus", [](Limits& l) { l.cpus = DefaultMaxLimits().cpus + 0.5; }},
      {"pids", [](Limits& l) { l.pids = DefaultMaxLimits().pids + 1; }},
      {"timeout_s", [](Limits& l) { l.timeout_s = DefaultMaxLimits().timeout_s + 1; }},
      {"grace_s", [](Limits& l) { l.grace_s = DefaultMaxLimits().grace_s + 1; }},
      {"output_mb", [](Limits& l) { l.output_mb = DefaultMaxLimits().output_mb + 1; }},
      {"tmp_mb", [](Limits& l) { l.tmp_mb = DefaultMaxLimits().tmp_mb + 1; }},
      {"home_mb", [](Limits& l) { l.home_mb = DefaultMaxLimits().home_mb + 1; }},
      {"nofile", [](Limits& l) { l.nofile = DefaultMaxLimits().nofile + 1; }},
      {"log_kb", [](Limits& l) { l.log_kb = DefaultMaxLimits().log_kb + 1; }},
      {"result_kb", [](Limits& l) { l.result_kb = DefaultMaxLimits().result_kb + 1; }},
  };
  for (const auto& c : cases) {
    Profile p = BaseProfile();
    c.raise(p.limits);
    auto s = DecideJobSpec(p, BasePolicy(), {});
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(s.status().message(), HasSubstr(absl::StrCat("asks for ", c.name, "=")));
  }
  // At the ceiling exactly: allowed.
  Profile p = BaseProfile();
  p.limits = DefaultMaxLimits();
  EXPECT_TRUE(DecideJobSpec(p, BasePolicy(), {}).ok());
}

TEST(DecideJobSpecTest, OtherRefusals) {
  struct Case {
    const char* name;
    void (*change)(Profile&, LocalPolicy&);
    const char* message;
  } cases[] = {
      {"image", [](Profile& p, LocalPolicy&) { p.image = "evil/agent:1"; },
       "image 'evil/agent:1' is not allowed"},
      {"image prefix", [](Profile& p, LocalPolicy& pol) { pol.allowed_images = {"assessq-offline*"}; },
       "is not allowed"},
      {"writable root", [](Profile& p, LocalPolicy& pol) {
         p.read_only_rootfs = false;
         pol.allow_writable_rootfs = false;
       }, "writable root filesystem"},
      {"unknown model", [](Profile& p, LocalPolicy&) {
         p.network.mode = "gateway";
         p.network.model = "openai";
       }, "model provider 'openai'"},
      {"model without key", [](Profile& p, LocalPolicy& pol) {
         p.network.mode = "gateway";
         p.network.model = "anthropic";
         pol.credentials.clear();
       }, "names credential 'anthropic'"},
      {"gateway without bridge", [](Profile& p, LocalPolicy& pol) {
         p.network.mode = "gateway";
         pol.netbridge_path.clear();
       }, "netbridge_path"},
  };
  for (const auto& c : cases) {
    Profile p = BaseProfile();
    LocalPolicy pol = BasePolicy();
    c.change(p, pol);
    auto s = DecideJobSpec(p, pol, {});
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition) << c.name;
    EXPECT_THAT(s.status().message(), HasSubstr(c.message)) << c.name;
  }
}

TEST(DecideJobSpecTest, ModelKeyStaysWithTheGateway) {
  Profile p = BaseProfile();
  p.network.mode = "gateway";
  p.network.model = "anthropic";
  auto s = DecideJobSpec(p, BasePolicy(), {});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->model_secret_file, "/etc/assessq/anthropic.key");
  EXPECT_EQ(s->credential_file, "");  // nothing is copied into the container
  EXPECT_EQ(s->env.at("ANTHROPIC_API_KEY"), kPlaceholderKey);
  EXPECT_THAT(s->model_key_files, ElementsAre("/etc/assessq/anthropic.key"));
}

// ---- credentials -----------------------------------------------------------

TEST(DecideJobSpecTest, CredentialRefusals) {
  struct Case {
    const char* name;
    const char* credential;
    void (*change)(LocalPolicy&);
    std::vector<const char*> message;
  } cases[] = {
      // The attack of issue 14: the model key by its policy name.
      {"model key by name", "anthropic", [](LocalPolicy&) {},
       {"profile.credential 'anthropic'", "model provider's key", "never put in a container"}},
      // A model provider's credential that only the provider names.
      {"provider's credential", "shared", [](LocalPolicy& pol) {
         pol.credentials.erase("anthropic");
         pol.credentials["shared"] = "/etc/assessq/shared.key";
         pol.model_providers["anthropic"].credential = "shared";
       }, {"model provider's key"}},
      {"provider names a missing key", "ghost", [](LocalPolicy& pol) {
         pol.model_providers["anthropic"].credential = "ghost";
       }, {"model provider's key"}},
      {"no such file credential", "nope", [](LocalPolicy&) {},
       {"profile.credential 'nope'", "no policy.file_credentials entry"}},
      {"not opted in", "closed", [](LocalPolicy&) {},
       {"policy.file_credentials.closed.allow_in_container is not true"}},
      // A policy built around the parser: a file credential that is a model key.
      {"same file as a model key", "claude", [](LocalPolicy& pol) {
         pol.file_credentials["claude"].file = "/etc/assessq/./anthropic.key";
       }, {"model key file", "never put in a container"}},
  };
  for (const auto& c : cases) {
    Profile p = BaseProfile();
    p.credential = c.credential;
    LocalPolicy pol = BasePolicy();
    c.change(pol);
    auto s = DecideJobSpec(p, pol, {});
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition) << c.name;
    for (const char* m : c.message) EXPECT_THAT(s.status().message(), HasSubstr(m)) << c.name;
  }
}

TEST(DecideJobSpecTest, OptedInFileCredentialIsCopied) {
  Profile p = BaseProfile();
  p.credential = "claude";
  auto s = DecideJobSpec(p, BasePolicy(), {});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->credential_file, "/etc/assessq/claude.json");
  EXPECT_EQ(s->credential_name, "claude");
  EXPECT_THAT(s->model_key_files, ElementsAre("/etc/assessq/anthropic.key"));
}

TEST(ParseLocalPolicyTest, FileCredentials) {
  auto ok = ParseLocalPolicy(R"({
    "credentials": {"anthropic": "/etc/assessq/anthropic.key"},
    "file_credentials": {"claude": {"file": "/etc/assessq/claude.json", "allow_in_container": true},
                         "off": {"file": "/etc/assessq/off.json"}}})");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->file_credentials.at("claude").allow_in_container);
  EXPECT_FALSE(ok->file_credentials.at("off").allow_in_container);

  struct Case {
    const char* policy;
    const char* message;
  } cases[] = {
      {R"({"file_credentials": []})", "policy.file_credentials must be an object"},
      {R"({"file_credentials": {"claude": "/etc/x"}})", "policy.file_credentials.claude must be an object"},
      {R"({"file_credentials": {"../x": {"file": "/etc/x", "allow_in_container": true}}})",
       "policy.file_credentials.../x: the name must be a plain file name"},
      {R"({"file_credentials": {"a/b": {"file": "/etc/x"}}})", "plain file name"},
      {R"({"file_credentials": {"..": {"file": "/etc/x"}}})", "plain file name"},
      {R"({"file_credentials": {"c": {"file": "etc/x"}}})", "policy.file_credentials.c.file must be an absolute path"},
      {R"({"file_credentials": {"c": {}}})", "policy.file_credentials.c.file must be an absolute path"},
      {R"({"file_credentials": {"c": {"file": "/x", "allow_in_container": "yes"}}})",
       "policy.file_credentials.c.allow_in_container must be true or false"},
      {R"({"file_credentials": {"c": {"file": "/x", "mode": "ro"}}})",
       "policy.file_credentials.c: unknown setting 'mode'"},
      {R"({"credentials": {"anthropic": "/k"},
           "file_credentials": {"anthropic": {"file": "/x", "allow_in_container": true}}})",
       "policy.file_credentials.anthropic: the name is also a model key in policy.credentials"},
      {R"({"credentials": {"anthropic": "/etc/assessq/anthropic.key"},
           "file_credentials": {"c": {"file": "/etc/assessq//anthropic.key", "allow_in_container": true}}})",
       "policy.file_credentials.c.file is a model key file of policy.credentials"},
  };
  for (const auto& c : cases) {
    auto p = ParseLocalPolicy(c.policy);
    ASSERT_FALSE(p.ok()) << c.policy;
    EXPECT_THAT(p.status().message(), HasSubstr(c.message)) << c.policy;
  }
}

TEST(ParseProfileTest, NetworkAndCredentialFields) {
  struct Case {
    json profile;
    const char* message;
  } cases[] = {
      {{{"network", {{"allow_from_metadata", {"Link"}}}}}, "need mode \"gateway\""},
      {{{"network", {{"mode", "gateway"}, {"allow_from_metadata", "Link"}}}},
       "profile.network.allow_from_metadata must be an array of strings"},
      {{{"network", {{"mode", "gateway"}, {"allow_from_metadata", {""}}}}},
       "profile.network.allow_from_metadata: each field name"},
      {{{"network", {{"mode", "gateway"}, {"allow_from_metadata", json(std::vector<std::string>(17, "L"))}}}},
       "at most 16 fields"},
      {{{"credential", "../anthropic"}}, "profile.credential must be a plain name"},
  };
  for (auto& c : cases) {
    c.profile["image"] = "assessq-test:1";
    c.profile["command"] = {"/agent"};
    auto p = ParseProfile(c.profile.dump(), Profile{});
    ASSERT_FALSE(p.ok()) << c.profile.dump();
    EXPECT_THAT(p.status().message(), HasSubstr(c.message)) << c.profile.dump();
  }
}

// Every plain string setting of a profile, a policy and a policy's model
// provider lands in its own field, and a non-string is refused by its name.
TEST(ParseProfileTest, EveryStringSettingIsReadIntoItsFieldOrRefusedByName) {
  const json profile = {{"image", "img:1"},          {"command", {"/agent"}},
                        {"prompt_template", "tmpl"}, {"output_file", "out.json"},
                        {"user", "1000:1000"},       {"runtime", "runsc"},
                        {"credential", "cred"}};
  auto p = ParseProfile(profile.dump(), Profile{});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->image, "img:1");
  EXPECT_EQ(p->prompt_template, "tmpl");
  EXPECT_EQ(p->output_file, "out.json");
  EXPECT_EQ(p->user, "1000:1000");
  EXPECT_EQ(p->runtime, "runsc");
  EXPECT_EQ(p->credential, "cred");
  for (const char* k :
       {"image", "prompt_template", "output_file", "user", "runtime", "credential"}) {
    json bad = profile;
    bad[k] = 7;
    auto r = ParseProfile(bad.dump(), Profile{});
    ASSERT_FALSE(r.ok()) << k;
    EXPECT_EQ(r.status().message(), absl::StrCat("profile.", k, " must be a string"));
  }

  const json policy = {
      {"netbridge_path", "/bridge"},
      {"apparmor_profile", "assessq"},
      {"model_providers",
       {{"m", {{"host", "h.example"}, {"ca_file", "/ca"}, {"header", "authorization"},
               {"credential", "c"}, {"base_url_env", "B"}, {"key_env", "K"}}}}}};
  auto pol = ParseLocalPolicy(policy.dump());
  ASSERT_TRUE(pol.ok()) << pol.status();
  EXPECT_EQ(pol->netbridge_path, "/bridge");
  EXPECT_EQ(pol->apparmor_profile, "assessq");
  const ModelProvider& m = pol->model_providers.at("m");
  EXPECT_EQ(m.host, "h.example");
  EXPECT_EQ(m.ca_file, "/ca");
  EXPECT_EQ(m.header, "authorization");
  EXPECT_EQ(m.credential, "c");
  EXPECT_EQ(m.base_url_env, "B");
  EXPECT_EQ(m.key_env, "K");
  for (const char* k : {"netbridge_path", "apparmor_profile"}) {
    json bad = policy;
    bad[k] = 7;
    auto r = ParseLocalPolicy(bad.dump());
    ASSERT_FALSE(r.ok()) << k;
    EXPECT_EQ(r.status().message(), absl::StrCat("policy.", k, " must be a string"));
  }
  for (const char* k : {"host", "ca_file", "header", "credential", "base_url_env", "key_env"}) {
    json bad = policy;
    bad["model_providers"]["m"][k] = 7;
    auto r = ParseLocalPolicy(bad.dump());
    ASSERT_FALSE(r.ok()) << k;
    EXPECT_EQ(r.status().message(), absl::StrCat("policy.model_providers.m.", k, " must be a string"));
  }
}

// limits.budget: a job's cap on its model usage (the coordinator puts it on
// the lease); bad values are refused naming the field; a worker policy's
// ceilings have no budget.
TEST(ParseProfileTest, LimitsBudget) {
  json ok = {{"image", "assessq-test:1"}, {"command", {"/agent"}},
             {"limits", {{"budget", {{"max_tokens", 200000}, {"max_usd", 1.5}}}}}};
  auto p = ParseProfile(ok.dump(), Profile{});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->limits.budget.max_tokens, 200000);
  EXPECT_DOUBLE_EQ(p->limits.budget.max_usd, 1.5);
  auto none = ParseProfile(R"({"image":"assessq-test:1","command":["/agent"]})", Profile{});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->limits.budget.max_tokens, 0);
  EXPECT_EQ(none->limits.budget.max_usd, 0);
  struct Case {
    json budget;
    const char* message;
  } cases[] = {
      {json::array(), "profile.limits.budget must be an object"},
      {{{"max_tokens", -1}}, "profile.limits.budget.max_tokens must be between 0 and"},
      {{{"max_tokens", 1.5}}, "profile.limits.budget.max_tokens must be an integer"},
      {{{"max_usd", "3"}}, "profile.limits.budget.max_usd must be a number"},
      {{{"max_usd", -0.5}}, "profile.limits.budget.max_usd must be between 0 and"},
      {{{"max_dollars", 3}}, "profile.limits.budget: unknown setting 'max_dollars'"},
  };
  for (auto& c : cases) {
    json prof = ok;
    prof["limits"]["budget"] = c.budget;
    auto r = ParseProfile(prof.dump(), Profile{});
    ASSERT_FALSE(r.ok()) << prof.dump();
    EXPECT_THAT(r.status().message(), HasSubstr(c.message)) << prof.dump();
  }
  auto policy = ParseLocalPolicy(R"({"max":{"budget":{"max_tokens":5}}})");
  ASSERT_FALSE(policy.ok());
  EXPECT_THAT(policy.status().message(), HasSubstr("policy.max: unknown setting 'budget'"));
}

// ---- hosts from the job's metadata -----------------------------------------

TEST(UrlHostTest, Strict) {
  struct Case {
    const char* url;
    const char* host;  // nullptr: refused
    const char* why;
  } cases[] = {
      {"https://catalog.ldc.upenn.edu/LDC2004T18", "catalog.ldc.upenn.edu", ""},
      {"HTTPS://Catalog.LDC.UPenn.edu", "catalog.ldc.upenn.edu", ""},
      {"  http://example.org:8080/x?y#z  ", "example.org", ""},
      {"https://hf.co/datasets/x", "hf.co", ""},
      {"https://xn--mgbh0fb.xn--ngbrx/", "xn--mgbh0fb.xn--ngbrx", ""},
      {"https://evil.com#@good.com", "evil.com", ""},
      {"https://a.b.example.com?q=1", "a.b.example.com", ""},
      {"ftp://example.org/x", nullptr, "not an http(s) URL"},
      {"mailto:someone@example.org", nullptr, "not an http(s) URL"},
      {"javascript://example.org/%0aalert(1)", nullptr, "not an http(s) URL"},
      {"example.org/x", nullptr, "not an http(s) URL"},
      {"//example.org/x", nullptr, "not an http(s) URL"},
      {"https://user:pw@example.org/", nullptr, "user info"},
      {"https://example.org\\@evil.com/", nullptr, "user info"},
      {"https://example.org:0/", nullptr, "bad port"},
      {"https://example.org:65536/", nullptr, "bad port"},
      {"https://example.org:/", nullptr, "bad port"},
      {"https://example.org:+443/", nullptr, "bad port"},
      {"http://127.0.0.1/", nullptr, "IP literal"},
      {"http://10.0.0.1:8080/", nullptr, "IP literal"},
      {"http://169.254.169.254/latest/meta-data", nullptr, "IP literal"},
      {"http://2130706433/", nullptr, "not a qualified name"},
      {"http://127.1/", nullptr, "IP literal"},
      {"http://0x7f.0.0.1/", nullptr, "IP literal"},
      {"http://0177.0.0.1/", nullptr, "IP literal"},
      {"http://1.2.3.4.5/", nullptr, "numeric top-level label"},
      {"http://example.123/", nullptr, "numeric top-level label"},
      {"http://example.0x7f/", nullptr, "numeric top-level label"},
      {"http://[::1]/", nullptr, "bad"},
      {"http://[::ffff:127.0.0.1]:80/", nullptr, "bad"},
      {"https://localhost/", nullptr, "not a qualified name"},
      {"https://metadata/", nullptr, "not a qualified name"},
      {"https://example.org./", nullptr, "bad host"},
      {"https://.example.org/", nullptr, "bad host"},
      {"https://exa mple.org/", nullptr, "bad host"},
      {"https://ex_ample.org/", nullptr, "bad host"},
      {"https://-example.org/", nullptr, "bad host"},
      {"https://example-.org/", nullptr, "bad host"},
      {"https://\xd9\x85\xd8\xab\xd8\xa7\xd9\x84.com/", nullptr, "bad host"},
      {"https://exa%6dple.org/", nullptr, "bad host"},
      {"https://example.org\x1b]52;c;AAAA\x07/", nullptr, "bad host"},
      {"https:///x", nullptr, "bad host"},
      {"", nullptr, "empty"},
  };
  for (const auto& c : cases) {
    auto h = UrlHost(c.url);
    if (c.host) {
      ASSERT_TRUE(h.ok()) << c.url << ": " << h.status();
      EXPECT_EQ(*h, c.host) << c.url;
    } else {
      ASSERT_FALSE(h.ok()) << c.url << " gave " << *h;
      EXPECT_THAT(h.status().message(), HasSubstr(c.why)) << c.url;
      // The reason never repeats the URL (it goes into the attempt's details).
      if (std::string(c.url).size() > 8)
        EXPECT_THAT(std::string(h.status().message()), ::testing::Not(HasSubstr(c.url)));
    }
  }
  EXPECT_FALSE(UrlHost("https://example.org/" + std::string(kMaxMetadataUrl, 'a')).ok());
}

TEST(MetadataAllowHostsTest, Table) {
  NetworkPolicy net;
  net.mode = "gateway";
  net.allow = {"github.com", "*.huggingface.co"};
  net.deny = {"!bad.example.org"};
  const std::vector<std::string> forbidden = {"*.internal", "evil.example"};
  const std::vector<std::string> fields = {"Link", "HF Link", "Paper Link"};
  struct Case {
    const char* name;
    json metadata;
    std::vector<std::string> hosts;
    std::vector<std::string> refused;
  } cases[] = {
      {"catalogue links",
       {{"Link", "https://catalog.ldc.upenn.edu/LDC2004T18"},
        {"HF Link", "https://hf.co/datasets/x"},
        {"Paper Link", "https://aclanthology.org/L14-1.pdf"}},
       {"catalog.ldc.upenn.edu", "hf.co", "aclanthology.org"},
       {}},
      {"already allowed: not added",
       {{"Link", "https://github.com/x/y"}, {"HF Link", "https://cdn.huggingface.co/x"}},
       {},
       {}},
      {"duplicates once", {{"Link", "https://zenodo.org/a"}, {"Paper Link", "https://ZENODO.org/b"}},
       {"zenodo.org"}, {}},
      {"empty and missing fields", {{"Link", ""}, {"HF Link", "   "}}, {}, {}},
      {"other fields ignored", {{"Homepage", "https://ignored.example.com/"}}, {}, {}},
      {"IP literal", {{"Link", "http://169.254.169.254/"}}, {}, {"Link: IP literal"}},
      {"forbidden wildcard", {{"Link", "https://metadata.google.internal/"}},
       {}, {"Link: forbidden by worker policy: !*.internal"}},
      {"forbidden exact", {{"Paper Link", "https://EVIL.example/paper"}},
       {}, {"Paper Link: forbidden by worker policy: !evil.example"}},
      {"profile deny wins", {{"Link", "https://bad.example.org/"}}, {},
       {"Link: deny rule !bad.example.org"}},
      {"not a string", {{"Link", {"https://a.example.com"}}, {"HF Link", 3}}, {},
       {"Link: not a string", "HF Link: not a string"}},
      {"not http", {{"Link", "mailto:x@example.org"}}, {}, {"Link: not an http(s) URL"}},
      {"single label", {{"Link", "http://localhost:8080/"}}, {}, {"Link: host is not a qualified name"}},
  };
  for (const auto& c : cases) {
    MetadataHosts m = MetadataAllowHosts(c.metadata.dump(), fields, net, forbidden);
    EXPECT_EQ(m.hosts, c.hosts) << c.name;
    EXPECT_EQ(m.refused, c.refused) << c.name;
  }
  MetadataHosts bad = MetadataAllowHosts("not json", fields, net, forbidden);
  EXPECT_THAT(bad.hosts, IsEmpty());
  EXPECT_THAT(bad.refused, ElementsAre("metadata: not a JSON object"));
  MetadataHosts arr = MetadataAllowHosts("[\"https://a.example.com\"]", fields, net, forbidden);
  EXPECT_THAT(arr.hosts, IsEmpty());
}

TEST(MetadataAllowHostsTest, Bounded) {
  NetworkPolicy net;
  net.mode = "gateway";
  json md = json::object();
  std::vector<std::string> fields;
  for (int i = 0; i < 12; ++i) {
    std::string f = absl::StrCat("F", i);
    fields.push_back(f);
    md[f] = absl::StrCat("https://h", i, ".example.com/");
  }
  MetadataHosts m = MetadataAllowHosts(md.dump(), fields, net, {});
  ASSERT_EQ(m.hosts.size(), kMaxMetadataHosts);
  EXPECT_EQ(m.hosts.front(), "h0.example.com");
  EXPECT_EQ(m.refused.size(), 12 - kMaxMetadataHosts);
  EXPECT_THAT(m.refused.front(), HasSubstr("more than 8 hosts"));
}

TEST(DecideJobSpecTest, MetadataHostsJoinTheJobsAllowList) {
  Profile p = BaseProfile();
  p.network.mode = "gateway";
  p.network.allow = {"github.com"};
  p.network.allow_from_metadata = {"Link", "Paper Link"};
  LocalPolicy pol = BasePolicy();
  pol.egress.forbidden_hosts = {"*.internal"};
  JobVars vars;
  vars.metadata = json({{"Link", "https://github.com/a/b"},
                        {"Paper Link", "https://aclanthology.org/x.pdf"},
                        {"HF Link", "https://hf.co/datasets/x"}})
                      .dump();
  auto s = DecideJobSpec(p, pol, vars);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->network.allow, ElementsAre("github.com", "aclanthology.org"));
  EXPECT_THAT(s->metadata_hosts, ElementsAre("aclanthology.org"));
  EXPECT_THAT(s->metadata_refused, IsEmpty());

  vars.metadata = json({{"Link", "https://x.internal/"}}).dump();
  s = DecideJobSpec(p, pol, vars);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->network.allow, ElementsAre("github.com"));
  EXPECT_THAT(s->metadata_refused, ElementsAre("Link: forbidden by worker policy: !*.internal"));

  // Without the profile field the metadata plays no part.
  p.network.allow_from_metadata.clear();
  vars.metadata = json({{"Link", "https://aclanthology.org/"}}).dump();
  s = DecideJobSpec(p, pol, vars);
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(s->network.allow, ElementsAre("github.com"));
}

// ---- the shipped files -----------------------------------------------------

std::string ReadSource(const std::string& rel) {
  std::ifstream f(std::string(SOURCE_DIR) + "/" + rel);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(ShippedFilesTest, ClaudeProfileAndExamplePolicy) {
  auto pol = ParseLocalPolicy(ReadSource("deploy/agent/claude/worker-policy.example.json"));
  ASSERT_TRUE(pol.ok()) << pol.status();
  pol->netbridge_path = "/usr/lib/assessq/assessq-netbridge";
  auto p = ParseProfile(ReadSource("deploy/agent/claude/profile.json"), Profile{});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->network.allow_from_metadata, ElementsAre("Link", "HF Link", "Paper Link"));
  JobVars vars;
  vars.metadata = json({{"Link", "https://example.edu/corpus"}}).dump();
  auto s = DecideJobSpec(*p, *pol, vars);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->credential_file, "");
  EXPECT_THAT(s->metadata_hosts, ElementsAre("example.edu"));
  // The attack of issue 14 against the shipped files: refused.
  p->credential = "anthropic";
  auto attack = DecideJobSpec(*p, *pol, vars);
  ASSERT_FALSE(attack.ok());
  EXPECT_THAT(attack.status().message(), HasSubstr("never put in a container"));
}

}  // namespace
}  // namespace assessq
