#include "worker/job_spec.h"

#include <nlohmann/json.hpp>

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

absl::Status ReadLimits(const json& j, const std::string& where, Limits& l) {
  if (!j.is_object()) return Bad(absl::StrCat(where, " must be an object"));
  Reader r(j, where);
  TRY(r.Only({"memory_mb", "cpus", "pids", "timeout_s", "grace_s", "output_mb", "tmp_mb",
              "home_mb", "nofile", "log_kb", "result_kb", "done_grace_s"}));
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

absl::Status ParseUser(const std::string& user) {
  std::vector<std::string> parts = absl::StrSplit(user, ':');
  if (parts.size() != 2) return Bad("user must be UID:GID (numbers)");
  for (const auto& p : parts) {
    if (p.empty() || p.size() > 9 || p.find_first_not_of("0123456789") != std::string::npos)
      return Bad("user must be UID:GID (numbers)");
  }
  return absl::OkStatus();
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
  TRY(r.Str("image", p.image));
  TRY(r.StrList("command", p.command));
  TRY(r.StrMap("env", p.env));
  TRY(r.Str("prompt_template", p.prompt_template));
  TRY(r.Str("output_file", p.output_file));
  TRY(r.Str("user", p.user));
  TRY(r.Bool("read_only_rootfs", p.read_only_rootfs));
  TRY(r.Str("runtime", p.runtime));
  TRY(r.Str("credential", p.credential));
  if (j.contains("done_when")) {
    std::string when;
    TRY(r.Str("done_when", when));
    auto w = ParseDoneWhen(when);
    if (!w.ok()) return w.status();
    p.done_when = *w;
  }
  if (j.contains("limits")) TRY(ReadLimits(j["limits"], "profile.limits", p.limits));
  if (j.contains("network")) {
    const json& n = j["network"];
    if (!n.is_object()) return Bad("profile.network must be an object");
    Reader nr(n, "profile.network");
    TRY(nr.Only({"mode", "allow", "deny", "model"}));
    TRY(nr.Str("mode", p.network.mode));
    TRY(nr.StrList("allow", p.network.allow));
    TRY(nr.StrList("deny", p.network.deny));
    TRY(nr.Str("model", p.network.model));
  }
  if (p.image.empty()) return Bad("profile.image is required");
  if (p.command.empty()) return Bad("profile.command is required (an array of strings)");
  if (p.output_file.empty() || p.output_file.find('/') != std::string::npos ||
      p.output_file == "." || p.output_file == "..")
    return Bad("profile.output_file must be a plain file name");
  TRY(ParseUser(p.user));
  if (p.network.mode != "none" && p.network.mode != "gateway")
    return Bad(absl::StrCat("profile.network.mode '", p.network.mode,
                            "' is not supported (none or gateway)"));
  for (const auto& list : {p.network.allow, p.network.deny})
    for (const auto& rule : list)
      if (auto r = gateway::ParseRule(rule); !r.ok())
        return Bad(absl::StrCat("profile.network: ", r.status().message()));
  if (p.network.mode == "none" && (!p.network.allow.empty() || !p.network.model.empty()))
    return Bad("profile.network: allow rules and a model need mode \"gateway\"");
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
              "credentials", "min_free_disk_mb", "min_free_mem_mb", "model_providers", "egress",
              "netbridge_path", "apparmor_profile"}));
  TRY(r.Str("netbridge_path", p.netbridge_path));
  TRY(r.Str("apparmor_profile", p.apparmor_profile));
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
      TRY(mr.Only({"host", "port", "tls", "ca_file", "header", "credential", "base_url_env", "key_env"}));
      TRY(mr.Str("host", m.host));
      int64_t port = m.port;
      TRY(mr.Int("port", port, 1, 65535));
      m.port = static_cast<int>(port);
      TRY(mr.Bool("tls", m.tls));
      TRY(mr.Str("ca_file", m.ca_file));
      TRY(mr.Str("header", m.header));
      TRY(mr.Str("credential", m.credential));
      TRY(mr.Str("base_url_env", m.base_url_env));
      TRY(mr.Str("key_env", m.key_env));
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
                 "max_total_mb", "idle_timeout_s"}));
    TRY(er.StrList("forbidden_hosts", p.egress.forbidden_hosts));
    TRY(er.StrList("open_ranges", p.egress.open_ranges));
    int64_t mc = p.egress.max_connections, it = p.egress.idle_timeout_s;
    TRY(er.Int("max_connections", mc, 1, 10000));
    TRY(er.Int("max_total_mb", p.egress.max_total_mb, 1, 1 << 30));
    TRY(er.Int("idle_timeout_s", it, 1, 86400));
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
  return p;
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
  if (l.output_mb > m.output_mb) return over("output_mb", l.output_mb, m.output_mb);
  if (l.tmp_mb > m.tmp_mb) return over("tmp_mb", l.tmp_mb, m.tmp_mb);
  if (l.home_mb > m.home_mb) return over("home_mb", l.home_mb, m.home_mb);
  if (l.nofile > m.nofile) return over("nofile", l.nofile, m.nofile);
  if (l.log_kb > m.log_kb) return over("log_kb", l.log_kb, m.log_kb);
  if (l.result_kb > m.result_kb) return over("result_kb", l.result_kb, m.result_kb);
  if (!p.read_only_rootfs && !pol.allow_writable_rootfs)
    return absl::FailedPreconditionError(
        "profile asks for a writable root filesystem; this worker's policy forbids it");
  std::vector<std::string> ug = absl::StrSplit(p.user, ':');
  if ((ug[0] == "0" || ug[1] == "0") && !pol.allow_root)
    return absl::FailedPreconditionError(
        "profile runs as root (uid or gid 0); this worker's policy forbids it");
  std::string cred_file;
  if (!p.credential.empty()) {
    auto it = pol.credentials.find(p.credential);
    if (it == pol.credentials.end())
      return absl::FailedPreconditionError(absl::StrCat(
          "profile needs credential '", p.credential, "', which this worker does not have"));
    cred_file = it->second;
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
  s.model = model;
  s.model_secret_file = model_secret;
  s.image = p.image;
  s.env = p.env;
  s.user = p.user;
  s.read_only_rootfs = p.read_only_rootfs;
  s.runtime = pol.runtime.empty() ? p.runtime : pol.runtime;
  s.apparmor_profile = pol.apparmor_profile;
  s.done_when = p.done_when;
  s.limits = l;
  s.network = p.network;
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
