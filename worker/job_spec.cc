#include "worker/job_spec.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "worker/gateway/egress_policy.h"

namespace assessq {
namespace {

using nlohmann::json;

absl::Status Bad(absl::string_view what) { return absl::InvalidArgumentError(what); }

// Reads optional fields with type checks that name the field.
class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}
  absl::Status Str(const char* k, std::string& out) {
    if (!j_.contains(k)) return absl::OkStatus();
    if (!j_[k].is_string()) return Bad(absl::StrCat(where_, ".", k, " must be a string"));
    out = j_[k].get<std::string>();
    return absl::OkStatus();
  }
  // Str for each {key, member} pair in turn; the first bad field is the error.
  absl::Status Strs(std::initializer_list<std::pair<const char*, std::string*>> fields) {
    for (const auto& [k, out] : fields) {
      if (auto s = Str(k, *out); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  absl::Status Bool(const char* k, bool& out) {
    if (!j_.contains(k)) return absl::OkStatus();
    if (!j_[k].is_boolean()) return Bad(absl::StrCat(where_, ".", k, " must be true or false"));
    out = j_[k].get<bool>();
    return absl::OkStatus();
  }
  absl::Status Int(const char* k, int64_t& out, int64_t lo, int64_t hi) {
    if (!j_.contains(k)) return absl::OkStatus();
    if (!j_[k].is_number_integer())
      return Bad(absl::StrCat(where_, ".", k, " must be an integer"));
    int64_t v = j_[k].get<int64_t>();
    if (v < lo || v > hi)
      return Bad(absl::StrCat(where_, ".", k, " must be between ", lo, " and ", hi));
    out = v;
    return absl::OkStatus();
  }
  absl::Status Num(const char* k, double& out, double lo, double hi) {
    if (!j_.contains(k)) return absl::OkStatus();
    if (!j_[k].is_number()) return Bad(absl::StrCat(where_, ".", k, " must be a number"));
    double v = j_[k].get<double>();
    if (v < lo || v > hi)
      return Bad(absl::StrCat(where_, ".", k, " must be between ", lo, " and ", hi));
    out = v;
    return absl::OkStatus();
  }
  absl::Status StrList(const char* k, std::vector<std::string>& out) {
    if (!j_.contains(k)) return absl::OkStatus();
    if (!j_[k].is_array()) return Bad(absl::StrCat(where_, ".", k, " must be an array of strings"));
    out.clear();
    for (const auto& v : j_[k]) {
      if (!v.is_string()) return Bad(absl::StrCat(where_, ".", k, " must be an array of strings"));
      out.push_back(v.get<std::string>());
    }
    return absl::OkStatus();
  }
  absl::Status StrMap(const char* k, std::map<std::string, std::string>& out) {
    if (!j_.contains(k)) return absl::OkStatus();
    if (!j_[k].is_object()) return Bad(absl::StrCat(where_, ".", k, " must be an object"));
    for (auto& [key, v] : j_[k].items()) {
      if (!v.is_string())
        return Bad(absl::StrCat(where_, ".", k, ".", key, " must be a string"));
      out[key] = v.get<std::string>();
    }
    return absl::OkStatus();
  }
  // Rejects keys this reader does not know, so typos are not ignored.
  absl::Status Only(std::initializer_list<const char*> keys) {
    for (auto& [k, v] : j_.items()) {
      bool known = false;
      for (const char* kk : keys) known |= k == kk;
      if (!known) return Bad(absl::StrCat(where_, ": unknown setting '", k, "'"));
    }
    return absl::OkStatus();
  }

 private:
  const json& j_;
  std::string where_;
};

#define TRY(expr)                              \
  do {                                         \
    if (auto _s = (expr); !_s.ok()) return _s; \
  } while (0)

absl::Status ReadBudget(const json& j, const std::string& where, BudgetLimit& b) {
  if (!j.is_object()) return Bad(absl::StrCat(where, " must be an object"));
  Reader r(j, where);
  TRY(r.Only({"max_tokens", "max_usd"}));
  TRY(r.Int("max_tokens", b.max_tokens, 0, int64_t{1} << 40));
  TRY(r.Num("max_usd", b.max_usd, 0, 1e6));
  return absl::OkStatus();
}

// `budget`: the profile's limits only (a job's cap, not a worker's ceiling).
absl::Status ReadLimits(const json& j, const std::string& where, Limits& l, bool budget = false) {
  if (!j.is_object()) return Bad(absl::StrCat(where, " must be an object"));
  Reader r(j, where);
  if (budget)
    TRY(r.Only({"memory_mb", "cpus", "pids", "timeout_s", "grace_s", "output_mb", "tmp_mb",
                "home_mb", "nofile", "log_kb", "result_kb", "done_grace_s", "budget"}));
  else
    TRY(r.Only({"memory_mb", "cpus", "pids", "timeout_s", "grace_s", "output_mb", "tmp_mb",
                "home_mb", "nofile", "log_kb", "result_kb", "done_grace_s"}));
  if (budget && j.contains("budget")) TRY(ReadBudget(j["budget"], where + ".budget", l.budget));
  TRY(r.Int("memory_mb", l.memory_mb, 16, 1 << 20));
  TRY(r.Num("cpus", l.cpus, 0.01, 1024));
  TRY(r.Int("pids", l.pids, 8, 1 << 22));
  TRY(r.Int("timeout_s", l.timeout_s, 1, 7 * 86400));
  TRY(r.Int("grace_s", l.grace_s, 0, 3600));
  TRY(r.Int("output_mb", l.output_mb, 1, 1 << 16));
  TRY(r.Int("tmp_mb", l.tmp_mb, 1, 1 << 20));
  TRY(r.Int("home_mb", l.home_mb, 1, 1 << 20));
  TRY(r.Int("nofile", l.nofile, 64, 1 << 20));
  TRY(r.Int("log_kb", l.log_kb, 1, 1 << 20));
  TRY(r.Int("result_kb", l.result_kb, 1, 64 << 10));
  TRY(r.Int("done_grace_s", l.done_grace_s, 0, 3600));  // only ever shortens a job: no ceiling
  return absl::OkStatus();
}

// A name that becomes a file name under /run/secrets.
bool PlainName(const std::string& n) {
  if (n.empty() || n.size() > 64 || n == "." || n == "..") return false;
  for (char c : n)
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

std::string NormalPath(const std::string& p) {
  return std::filesystem::path(p).lexically_normal().string();
}

}  // namespace

absl::StatusOr<Profile> ParseProfile(const std::string& text, const Profile& defaults) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Bad("profile is not a JSON object");
  Profile p = defaults;
  Reader r(j, "profile");
  TRY(r.Only({"image", "command", "env", "prompt_template", "output_file", "user",
              "read_only_rootfs", "runtime", "credential", "limits", "network", "name",
              "description", "schema", "done_when"}));
  TRY(r.Strs({{"image", &p.image}, {"prompt_template", &p.prompt_template},
               {"output_file", &p.output_file}, {"user", &p.user}, {"runtime", &p.runtime},
               {"credential", &p.credential}}));
  TRY(r.StrList("command", p.command));
  TRY(r.StrMap("env", p.env));
  TRY(r.Bool("read_only_rootfs", p.read_only_rootfs));
  if (j.contains("done_when")) {
    std::string when;
    TRY(r.Str("done_when", when));
    auto w = ParseDoneWhen(when);
    if (!w.ok()) return w.status();
    p.done_when = *w;
  }
  if (j.contains("limits")) TRY(ReadLimits(j["limits"], "profile.limits", p.limits, /*budget=*/true));
  if (j.contains("network")) {
    const json& n = j["network"];
    if (!n.is_object()) return Bad("profile.network must be an object");
    Reader nr(n, "profile.network");
    TRY(nr.Only({"mode", "allow", "deny", "model", "allow_from_metadata"}));
    TRY(nr.Str("mode", p.network.mode));
    TRY(nr.StrList("allow", p.network.allow));
    TRY(nr.StrList("deny", p.network.deny));
    TRY(nr.Str("model", p.network.model));
    TRY(nr.StrList("allow_from_metadata", p.network.allow_from_metadata));
  }
  if (p.image.empty()) return Bad("profile.image is required");
  if (p.command.empty()) return Bad("profile.command is required (an array of strings)");
  if (p.output_file.empty() || p.output_file.find('/') != std::string::npos ||
      p.output_file == "." || p.output_file == "..")
    return Bad("profile.output_file must be a plain file name");
  if (auto u = ParseUserIds(p.user, "profile.user"); !u.ok()) return u.status();
  if (p.network.mode != "none" && p.network.mode != "gateway")
    return Bad(absl::StrCat("profile.network.mode '", p.network.mode,
                            "' is not supported (none or gateway)"));
  for (const auto& list : {p.network.allow, p.network.deny})
    for (const auto& rule : list)
      if (auto r = gateway::ParseRule(rule); !r.ok())
        return Bad(absl::StrCat("profile.network: ", r.status().message()));
  if (p.network.mode == "none" && (!p.network.allow.empty() || !p.network.model.empty() ||
                                   !p.network.allow_from_metadata.empty()))
    return Bad("profile.network: allow rules, allow_from_metadata and a model need mode \"gateway\"");
  if (p.network.allow_from_metadata.size() > 16)
    return Bad("profile.network.allow_from_metadata: at most 16 fields");
  for (const auto& f : p.network.allow_from_metadata)
    if (f.empty() || f.size() > 64)
      return Bad("profile.network.allow_from_metadata: each field name must be 1 to 64 characters");
  if (!p.credential.empty() && !PlainName(p.credential))
    return Bad("profile.credential must be a plain name (letters, digits, . _ -)");
  for (const auto& [k, v] : p.env) {
    if (k.empty() || k.find('=') != std::string::npos)
      return Bad(absl::StrCat("profile.env: bad variable name '", k, "'"));
  }
  return p;
}

absl::StatusOr<LocalPolicy> ParseLocalPolicy(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Bad("policy is not a JSON object");
  LocalPolicy p;
  Reader r(j, "policy");
  TRY(r.Only({"allowed_images", "max", "allow_root", "allow_writable_rootfs", "runtime",
              "credentials", "file_credentials", "min_free_disk_mb", "min_free_mem_mb",
              "model_providers", "egress", "netbridge_path", "apparmor_profile"}));
  TRY(r.Strs({{"netbridge_path", &p.netbridge_path}, {"apparmor_profile", &p.apparmor_profile}}));
  if (!p.apparmor_profile.empty() &&
      (p.apparmor_profile == "unconfined" ||
       p.apparmor_profile.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789._-") != std::string::npos))
    return Bad("policy.apparmor_profile must name a loaded AppArmor profile ([A-Za-z0-9._-]), "
               "not \"unconfined\"");
  if (j.contains("model_providers")) {
    if (!j["model_providers"].is_object()) return Bad("policy.model_providers must be an object");
    for (auto& [name, v] : j["model_providers"].items()) {
      if (!v.is_object()) return Bad(absl::StrCat("policy.model_providers.", name, " must be an object"));
      ModelProvider m;
      std::string where = absl::StrCat("policy.model_providers.", name);
      Reader mr(v, where);
      TRY(mr.Only({"host", "port", "tls", "ca_file", "header", "credential", "base_url_env", "key_env",
                   "allow"}));
      TRY(mr.StrList("allow", m.allow));
      for (const auto& a : m.allow)
        if (auto r = gateway::ParseModelApiRule(a); !r.ok())
          return Bad(absl::StrCat(where, ".allow: ", r.status().message()));
      TRY(mr.Strs({{"host", &m.host}, {"ca_file", &m.ca_file}, {"header", &m.header},
                   {"credential", &m.credential}, {"base_url_env", &m.base_url_env},
                   {"key_env", &m.key_env}}));
      int64_t port = m.port;
      TRY(mr.Int("port", port, 1, 65535));
      m.port = static_cast<int>(port);
      TRY(mr.Bool("tls", m.tls));
      if (m.host.empty()) return Bad(absl::StrCat(where, ".host is required"));
      if (m.header != "x-api-key" && m.header != "authorization")
        return Bad(absl::StrCat(where, ".header must be x-api-key or authorization"));
      p.model_providers[name] = m;
    }
  }
  if (j.contains("egress")) {
    const json& e = j["egress"];
    if (!e.is_object()) return Bad("policy.egress must be an object");
    Reader er(e, "policy.egress");
    TRY(er.Only({"forbidden_hosts", "open_ranges", "resolver_overrides", "max_connections",
                 "max_total_mb", "idle_timeout_s", "max_names_per_wildcard"}));
    TRY(er.StrList("forbidden_hosts", p.egress.forbidden_hosts));
    TRY(er.StrList("open_ranges", p.egress.open_ranges));
    int64_t mc = p.egress.max_connections, it = p.egress.idle_timeout_s;
    TRY(er.Int("max_connections", mc, 1, 10000));
    TRY(er.Int("max_total_mb", p.egress.max_total_mb, 1, 1 << 30));
    TRY(er.Int("idle_timeout_s", it, 1, 86400));
    int64_t mn = p.egress.max_names_per_wildcard;
    TRY(er.Int("max_names_per_wildcard", mn, 1, 100000));
    p.egress.max_names_per_wildcard = static_cast<int>(mn);
    p.egress.max_connections = static_cast<int>(mc);
    p.egress.idle_timeout_s = static_cast<int>(it);
    if (e.contains("resolver_overrides")) {
      if (!e["resolver_overrides"].is_object())
        return Bad("policy.egress.resolver_overrides must be an object of name -> [addresses]");
      for (auto& [name, v] : e["resolver_overrides"].items()) {
        std::vector<std::string> addrs;
        Reader rr(e["resolver_overrides"], "policy.egress.resolver_overrides");
        TRY(rr.StrList(name.c_str(), addrs));
        p.egress.resolver_overrides[name] = addrs;
      }
    }
  }
  TRY(r.StrList("allowed_images", p.allowed_images));
  if (j.contains("max")) TRY(ReadLimits(j["max"], "policy.max", p.max));
  TRY(r.Bool("allow_root", p.allow_root));
  TRY(r.Bool("allow_writable_rootfs", p.allow_writable_rootfs));
  TRY(r.Str("runtime", p.runtime));
  TRY(r.StrMap("credentials", p.credentials));
  TRY(r.Int("min_free_disk_mb", p.min_free_disk_mb, 0, 1 << 30));
  TRY(r.Int("min_free_mem_mb", p.min_free_mem_mb, 0, 1 << 30));
  if (j.contains("file_credentials")) {
    const json& fc = j["file_credentials"];
    if (!fc.is_object())
      return Bad("policy.file_credentials must be an object of name -> {\"file\": PATH, "
                 "\"allow_in_container\": true}");
    std::set<std::string> model_files;
    for (const auto& [n, f] : p.credentials) model_files.insert(NormalPath(f));
    for (auto& [name, v] : fc.items()) {
      std::string where = absl::StrCat("policy.file_credentials.", name);
      if (!PlainName(name))
        return Bad(absl::StrCat(where, ": the name must be a plain file name (letters, digits, . _ -)"));
      if (!v.is_object()) return Bad(absl::StrCat(where, " must be an object"));
      FileCredential c;
      Reader cr(v, where);
      TRY(cr.Only({"file", "allow_in_container"}));
      TRY(cr.Str("file", c.file));
      TRY(cr.Bool("allow_in_container", c.allow_in_container));
      if (c.file.empty() || c.file[0] != '/')
        return Bad(absl::StrCat(where, ".file must be an absolute path"));
      if (p.credentials.count(name))
        return Bad(absl::StrCat(where, ": the name is also a model key in policy.credentials; "
                                       "use another name"));
      if (model_files.count(NormalPath(c.file)))
        return Bad(absl::StrCat(where, ".file is a model key file of policy.credentials; "
                                       "a model key is never put in a container"));
      p.file_credentials[name] = c;
    }
  }
  return p;
}

absl::StatusOr<UserIds> ParseUserIds(const std::string& user, const std::string& field) {
  auto bad = [&] {
    return Bad(absl::StrCat(field, " must be UID:GID, two decimal numbers such as 10001:10001 "
                                   "(user and group names are not resolved)"));
  };
  std::vector<std::string> parts = absl::StrSplit(user, ':');
  if (parts.size() != 2) return bad();
  uint32_t v[2];
  for (int i = 0; i < 2; ++i) {
    const std::string& s = parts[i];
    // Digits only: no sign, space or base prefix; at most 9 (below 2^32-1,
    // which means "no id" to the kernel).
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
      return bad();
    if (!absl::SimpleAtoi(s, &v[i])) return bad();
  }
  return UserIds{v[0], v[1]};
}

absl::StatusOr<std::string> UrlHost(const std::string& url_in) {
  if (url_in.size() > kMaxMetadataUrl) return Bad("URL too long");
  std::string url(absl::StripAsciiWhitespace(url_in));
  if (url.empty()) return Bad("empty");
  size_t colon = url.find("://");
  if (colon == std::string::npos) return Bad("not an http(s) URL");
  std::string scheme = absl::AsciiStrToLower(url.substr(0, colon));
  if (scheme != "http" && scheme != "https") return Bad("not an http(s) URL");
  std::string rest = url.substr(colon + 3);
  std::string authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string::npos) return Bad("user info in the URL");
  std::string host = authority;
  if (auto c = authority.find(':'); c != std::string::npos) {
    host = authority.substr(0, c);
    std::string port = authority.substr(c + 1);
    int n = 0;
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        !absl::SimpleAtoi(port, &n) || n < 1 || n > 65535)
      return Bad("bad port");
  }
  host = absl::AsciiStrToLower(host);
  if (host.empty() || host.size() > 253) return Bad("bad host");
  std::vector<std::string> labels = absl::StrSplit(host, '.');
  if (labels.size() < 2) return Bad("host is not a qualified name");
  for (const auto& l : labels) {
    if (l.empty() || l.size() > 63 || l.front() == '-' || l.back() == '-') return Bad("bad host");
    for (char c : l)
      if (!(absl::ascii_isdigit(c) || (c >= 'a' && c <= 'z') || c == '-')) return Bad("bad host");
  }
  // Every spelling of an address (127.0.0.1, 0x7f.1, 0177.0.0.1, 127.1) is
  // refused, and so is any name whose top-level label does not start with a
  // letter (1.2.3.4.5, example.123).
  if (gateway::ParseIpLiteral(host)) return Bad("IP literal");
  if (!absl::ascii_isalpha(labels.back().front()))
    return Bad("IP literal or numeric top-level label");
  return host;
}

MetadataHosts MetadataAllowHosts(const std::string& metadata_json,
                                 const std::vector<std::string>& fields,
                                 const NetworkPolicy& network,
                                 const std::vector<std::string>& forbidden_hosts) {
  MetadataHosts out;
  json j = json::parse(metadata_json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    out.refused.push_back("metadata: not a JSON object");
    return out;
  }
  gateway::EgressPolicy pol;
  for (const auto& text : forbidden_hosts)
    if (auto r = gateway::ParseRule(text); r.ok()) pol.forbidden.push_back(*r);
  for (bool deny : {false, true})
    for (const auto& text : deny ? network.deny : network.allow)
      if (auto r = gateway::ParseRule(text); r.ok()) {
        if (deny) r->deny = true;
        pol.rules.push_back(*r);
      }
  for (const auto& field : fields) {
    if (!j.contains(field)) continue;
    const json& v = j[field];
    if (!v.is_string()) {
      out.refused.push_back(absl::StrCat(field, ": not a string"));
      continue;
    }
    if (absl::StripAsciiWhitespace(v.get<std::string>()).empty()) continue;
    auto host = UrlHost(v.get<std::string>());
    if (!host.ok()) {
      out.refused.push_back(absl::StrCat(field, ": ", host.status().message()));
      continue;
    }
    // Decided as the gateway will decide a request to it on port 443.
    gateway::HostDecision d = gateway::DecideHost(pol, *host, 443);
    if (d.allowed) continue;  // a static rule already allows it
    if (absl::StartsWith(d.rule, "forbidden") || absl::StartsWith(d.rule, "deny")) {
      out.refused.push_back(absl::StrCat(field, ": ", d.rule));
      continue;
    }
    if (std::find(out.hosts.begin(), out.hosts.end(), *host) != out.hosts.end()) continue;
    if (out.hosts.size() >= kMaxMetadataHosts) {
      out.refused.push_back(absl::StrCat(field, ": more than ", kMaxMetadataHosts, " hosts"));
      continue;
    }
    out.hosts.push_back(*host);
  }
  return out;
}

bool ImageAllowed(const std::string& image, const std::vector<std::string>& allowed) {
  for (const auto& a : allowed) {
    if (!a.empty() && a.back() == '*') {
      if (image.compare(0, a.size() - 1, a, 0, a.size() - 1) == 0) return true;
    } else if (a == image) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<JobSpec> DecideJobSpec(const Profile& p, const LocalPolicy& pol,
                                      const JobVars& vars) {
  if (!ImageAllowed(p.image, pol.allowed_images))
    return absl::FailedPreconditionError(
        absl::StrCat("image '", p.image, "' is not allowed by this worker's policy"));
  const Limits& l = p.limits;
  const Limits& m = pol.max;
  auto over = [](const char* what, auto asked, auto max) {
    return absl::FailedPreconditionError(absl::StrCat(
        "profile asks for ", what, "=", asked, " but this worker allows at most ", max));
  };
  if (l.memory_mb > m.memory_mb) return over("memory_mb", l.memory_mb, m.memory_mb);
  if (l.cpus > m.cpus) return over("cpus", l.cpus, m.cpus);
  if (l.pids > m.pids) return over("pids", l.pids, m.pids);
  if (l.timeout_s > m.timeout_s) return over("timeout_s", l.timeout_s, m.timeout_s);
  if (l.grace_s > m.grace_s) return over("grace_s", l.grace_s, m.grace_s);
  if (l.output_mb > m.output_mb) return over("output_mb", l.output_mb, m.output_mb);
  if (l.tmp_mb > m.tmp_mb) return over("tmp_mb", l.tmp_mb, m.tmp_mb);
  if (l.home_mb > m.home_mb) return over("home_mb", l.home_mb, m.home_mb);
  if (l.nofile > m.nofile) return over("nofile", l.nofile, m.nofile);
  if (l.log_kb > m.log_kb) return over("log_kb", l.log_kb, m.log_kb);
  if (l.result_kb > m.result_kb) return over("result_kb", l.result_kb, m.result_kb);
  if (!p.read_only_rootfs && !pol.allow_writable_rootfs)
    return absl::FailedPreconditionError(
        "profile asks for a writable root filesystem; this worker's policy forbids it");
  // Numbers, not strings: "00:00" is root too. Group 0 is refused as well:
  // without a user namespace it is the host's root group on every mount.
  auto ids = ParseUserIds(p.user, "profile.user");
  if (!ids.ok()) return ids.status();
  if ((ids->uid == 0 || ids->gid == 0) && !pol.allow_root)
    return absl::FailedPreconditionError(absl::StrCat(
        "profile.user '", p.user, "' is ", ids->uid == 0 ? "uid 0 (root)" : "gid 0 (group root)",
        "; this worker's policy forbids it (policy.allow_root)"));
  std::string cred_file;
  if (!p.credential.empty()) {
    bool model_key = pol.credentials.count(p.credential) > 0;
    for (const auto& [name, m] : pol.model_providers) model_key |= m.credential == p.credential;
    if (model_key)
      return absl::FailedPreconditionError(absl::StrCat(
          "profile.credential '", p.credential,
          "' is a model provider's key (policy.credentials): only the egress gateway uses "
          "those, they are never put in a container; name a model in profile.network.model"));
    auto it = pol.file_credentials.find(p.credential);
    if (it == pol.file_credentials.end())
      return absl::FailedPreconditionError(absl::StrCat(
          "profile.credential '", p.credential, "': this worker's policy has no "
          "policy.file_credentials entry of that name"));
    if (!it->second.allow_in_container)
      return absl::FailedPreconditionError(absl::StrCat(
          "profile.credential '", p.credential, "': policy.file_credentials.", p.credential,
          ".allow_in_container is not true, so this worker puts no such file in a container"));
    for (const auto& [name, f] : pol.credentials)
      if (NormalPath(f) == NormalPath(it->second.file))
        return absl::FailedPreconditionError(absl::StrCat(
            "profile.credential '", p.credential, "': its file is a model key file of "
            "policy.credentials; a model key is never put in a container"));
    cred_file = it->second.file;
  }

  std::optional<ModelProvider> model;
  std::string model_secret;
  if (!p.network.model.empty()) {
    auto it = pol.model_providers.find(p.network.model);
    if (it == pol.model_providers.end())
      return absl::FailedPreconditionError(absl::StrCat(
          "profile needs model provider '", p.network.model, "', which this worker does not have"));
    model = it->second;
    auto c = pol.credentials.find(model->credential);
    if (c == pol.credentials.end())
      return absl::FailedPreconditionError(absl::StrCat(
          "model provider '", p.network.model, "' names credential '", model->credential,
          "', which this worker does not have"));
    model_secret = c->second;
  }
  if (p.network.mode == "gateway" && pol.netbridge_path.empty())
    return absl::FailedPreconditionError(
        "profile needs the egress gateway; this worker has no netbridge_path in its policy");

  JobSpec s;
  for (const auto& [name, f] : pol.credentials) s.model_key_files.push_back(f);
  s.model = model;
  s.model_secret_file = model_secret;
  s.image = p.image;
  s.env = p.env;
  s.user = absl::StrCat(ids->uid, ":", ids->gid);  // canonical: what Docker and the inspect see
  s.read_only_rootfs = p.read_only_rootfs;
  s.runtime = pol.runtime.empty() ? p.runtime : pol.runtime;
  s.apparmor_profile = pol.apparmor_profile;
  s.done_when = p.done_when;
  s.limits = l;
  s.network = p.network;
  if (!p.network.allow_from_metadata.empty()) {
    MetadataHosts mh = MetadataAllowHosts(vars.metadata, p.network.allow_from_metadata, p.network,
                                          pol.egress.forbidden_hosts);
    for (const auto& h : mh.hosts) s.network.allow.push_back(h);
    s.metadata_hosts = std::move(mh.hosts);
    s.metadata_refused = std::move(mh.refused);
  }
  s.output_file = p.output_file;
  s.credential_file = cred_file;
  s.credential_name = p.credential;
  std::string prev = vars.previous_errors.empty()
                         ? ""
                         : absl::StrCat("- ", absl::StrJoin(vars.previous_errors, "\n- "));
  std::vector<std::pair<absl::string_view, std::string>> subst = {
      {"{input}", kInputPath},
      {"{output}", kOutputDir},
      {"{output_file}", absl::StrCat(kOutputDir, "/", p.output_file)},
      {"{dataset}", vars.dataset_key},
      {"{name}", vars.dataset_name},
      {"{prompt_file}", kPromptPath},
      {"{previous_errors}", prev},
  };
  if (!p.prompt_template.empty()) s.prompt = absl::StrReplaceAll(p.prompt_template, subst);
  for (const auto& a : p.command) s.argv.push_back(absl::StrReplaceAll(a, subst));
  if (p.network.mode == "gateway") {
    // The agent runs behind the in-container bridge; its only way out is the
    // proxy on loopback. A model provider is reached through the same port,
    // with a placeholder key the gateway replaces.
    std::vector<std::string> argv = {kNetbridgePath, "--socket", kNetSocket, "--port",
                                     std::to_string(kProxyPort), "--"};
    argv.insert(argv.end(), s.argv.begin(), s.argv.end());
    s.argv = std::move(argv);
    std::string proxy = absl::StrCat("http://127.0.0.1:", kProxyPort);
    for (const char* k : {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}) s.env[k] = proxy;
    s.env["NO_PROXY"] = "";
    s.env["no_proxy"] = "";
    if (s.model) {
      s.env[s.model->base_url_env] = proxy;
      s.env[s.model->key_env] = kPlaceholderKey;
    }
  }
  return s;
}

}  // namespace assessq
