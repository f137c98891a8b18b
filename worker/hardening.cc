#include "worker/hardening.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "worker/seccomp_profile.h"

namespace assessq {
namespace {

using nlohmann::json;

std::string TmpfsOpts(int64_t mb, const std::string& user, bool exec) {
  std::vector<std::string> ug = absl::StrSplit(user, ':');
  return absl::StrCat("rw,", exec ? "exec" : "noexec", ",nosuid,nodev,size=", mb,
                      "m,mode=0700,uid=", ug[0], ",gid=", ug[1]);
}

std::map<std::string, std::string> WantedTmpfs(const JobSpec& s) {
  // /tmp allows exec: Python wheels and datasets' remote code unpack there.
  return {{"/tmp", TmpfsOpts(s.limits.tmp_mb, s.user, true)},
          {kHomeDir, TmpfsOpts(s.limits.home_mb, s.user, true)}};
}

int64_t Bytes(int64_t mb) { return mb * 1024 * 1024; }

// "seccomp=X" or the older "seccomp:X" (both accepted by Engine 20.10):
// returns true and X when `opt` names `key`.
bool OptValue(const std::string& opt, const std::string& key, std::string* value) {
  if (opt.size() <= key.size() || opt.compare(0, key.size(), key) != 0) return false;
  char sep = opt[key.size()];
  if (sep != '=' && sep != ':') return false;
  *value = opt.substr(key.size() + 1);
  return true;
}

std::string Shorten(const std::string& s, size_t max = 80) {
  return s.size() <= max ? s : absl::StrCat(s.substr(0, max), "... (", s.size(), " bytes)");
}

// Whatever the job's mount list says: only the output directory may be
// writable, and the gateway socket's directory never is (connecting to a
// socket needs no write; a writable one would let the agent plant files).
void ReadOnlyMounts(const json& got_mounts, std::vector<std::string>& bad) {
  if (!got_mounts.is_array()) return;
  for (const auto& m : got_mounts) {
    if (!m.is_object()) continue;
    std::string dst = m.contains("Destination") && m["Destination"].is_string()
                          ? m["Destination"].get<std::string>()
                          : "?";
    bool rw = !m.contains("RW") || m["RW"] != false;
    if (!rw || dst == kOutputDir) continue;
    bad.push_back(dst == kNetDir
                      ? absl::StrCat("Mounts: the gateway socket directory ", kNetDir,
                                     " must be read-only, daemon has it writable")
                      : absl::StrCat("Mounts: ", dst, " must be read-only (only ", kOutputDir,
                                     " is writable), daemon has it writable"));
  }
}

}  // namespace

json BuildCreateBody(const JobSpec& s, const std::vector<BindMount>& mounts,
                     const std::map<std::string, std::string>& labels) {
  json env = json::array();
  for (const auto& [k, v] : s.env) env.push_back(absl::StrCat(k, "=", v));
  env.push_back(absl::StrCat("HOME=", kHomeDir));
  json jm = json::array();
  for (const auto& m : mounts)
    jm.push_back({{"Type", "bind"},
                  {"Source", m.source},
                  {"Target", m.target},
                  {"ReadOnly", m.read_only},
                  {"BindOptions", {{"Propagation", "rprivate"}}}});
  json tmpfs = json::object();
  for (const auto& [k, v] : WantedTmpfs(s)) tmpfs[k] = v;
  json secopt = {"no-new-privileges:true", absl::StrCat("seccomp=", SeccompProfileText())};
  if (!s.apparmor_profile.empty()) secopt.push_back(absl::StrCat("apparmor=", s.apparmor_profile));
  json host = {
      {"CapDrop", {"ALL"}},
      {"CapAdd", json::array()},
      {"SecurityOpt", secopt},
      {"Privileged", false},
      {"ReadonlyRootfs", s.read_only_rootfs},
      {"Tmpfs", tmpfs},
      {"PidsLimit", s.limits.pids},
      {"Memory", Bytes(s.limits.memory_mb)},
      {"MemorySwap", Bytes(s.limits.memory_mb)},
      {"NanoCpus", static_cast<int64_t>(std::llround(s.limits.cpus * 1e9))},
      {"Ulimits",
       {{{"Name", "nofile"}, {"Soft", s.limits.nofile}, {"Hard", s.limits.nofile}},
        {{"Name", "core"}, {"Soft", 0}, {"Hard", 0}}}},
      {"IpcMode", "private"},
      {"PidMode", ""},
      {"UTSMode", ""},
      {"UsernsMode", ""},
      {"Init", true},
      {"NetworkMode", "none"},
      {"Mounts", jm},
      {"Devices", json::array()},
      {"AutoRemove", false},
      {"LogConfig", {{"Type", "json-file"}, {"Config", {{"max-size", "4m"}, {"max-file", "1"}}}}},
  };
  if (!s.runtime.empty()) host["Runtime"] = s.runtime;
  return {
      {"Image", s.image},
      {"Cmd", s.argv},
      {"Entrypoint", json::array()},
      {"Env", env},
      {"User", s.user},
      {"WorkingDir", kHomeDir},
      {"Labels", labels},
      {"NetworkDisabled", true},
      {"AttachStdin", false},
      {"OpenStdin", false},
      {"Tty", false},
      {"StopSignal", "SIGTERM"},
      {"StopTimeout", s.limits.grace_s},
      {"HostConfig", host},
  };
}

std::vector<std::string> VerifyInspect(const json& in, const JobSpec& s,
                                       const std::vector<BindMount>& mounts) {
  std::vector<std::string> bad;
  auto get = [&](const json& j, const char* k) -> json {
    return j.is_object() && j.contains(k) ? j[k] : json(nullptr);
  };
  const json hc = get(in, "HostConfig");
  const json cfg = get(in, "Config");
  auto expect = [&](const char* what, const json& got, const json& want) {
    if (got != want) bad.push_back(absl::StrCat(what, ": wanted ", want.dump(), ", daemon has ", got.dump()));
  };

  // Capabilities: all dropped, none added.
  json capdrop = get(hc, "CapDrop");
  bool drops_all = false;
  if (capdrop.is_array())
    for (const auto& c : capdrop)
      if (c.is_string() && (c == "ALL" || c == "all" || c == "CAP_ALL")) drops_all = true;
  if (!drops_all) bad.push_back(absl::StrCat("CapDrop: wanted ALL, daemon has ", capdrop.dump()));
  json capadd = get(hc, "CapAdd");
  if (!(capadd.is_null() || (capadd.is_array() && capadd.empty())))
    bad.push_back(absl::StrCat("CapAdd: wanted none, daemon has ", capadd.dump()));
  expect("Privileged", get(hc, "Privileged"), false);

  // no-new-privileges on; exactly our seccomp profile; the AppArmor profile
  // the policy names (or none asked for); nothing unconfined.
  json secopt = get(hc, "SecurityOpt");
  bool nnp = false;
  int seccomps = 0, apparmors = 0;
  if (secopt.is_array()) {
    for (const auto& o : secopt) {
      if (!o.is_string()) continue;
      std::string v = o.get<std::string>(), value;
      if (v == "no-new-privileges" || v == "no-new-privileges:true" ||
          v == "no-new-privileges=true")
        nnp = true;
      if (OptValue(v, "seccomp", &value)) {
        ++seccomps;
        json got = json::parse(value, nullptr, false);
        if (value == "unconfined")
          bad.push_back("SecurityOpt seccomp: 'unconfined' is not allowed");
        else if (got.is_discarded() || got != SeccompProfile())
          bad.push_back(absl::StrCat(
              "SecurityOpt seccomp: wanted assessq's profile (deploy/seccomp/assessq.json), daemon has ",
              Shorten(value)));
      } else if (OptValue(v, "apparmor", &value)) {
        ++apparmors;
        if (value != s.apparmor_profile)
          bad.push_back(absl::StrCat("SecurityOpt apparmor: wanted ",
                                     s.apparmor_profile.empty() ? "none" : "'" + s.apparmor_profile + "'",
                                     ", daemon has '", Shorten(value), "'"));
      } else if (absl::StrContains(v, "unconfined")) {
        bad.push_back(absl::StrCat("SecurityOpt: '", Shorten(v), "' is not allowed"));
      }
    }
  }
  if (!nnp) bad.push_back(absl::StrCat("SecurityOpt: no-new-privileges missing, daemon has ", Shorten(secopt.dump())));
  if (seccomps == 0)
    bad.push_back("SecurityOpt seccomp: assessq's profile missing (the daemon would apply its default)");
  if (seccomps > 1) bad.push_back(absl::StrCat("SecurityOpt seccomp: ", seccomps, " profiles, wanted one"));
  if (!s.apparmor_profile.empty() && apparmors == 0)
    bad.push_back(absl::StrCat("SecurityOpt apparmor: '", s.apparmor_profile, "' requested but missing"));
  if (apparmors > 1) bad.push_back(absl::StrCat("SecurityOpt apparmor: ", apparmors, " profiles, wanted one"));
  // Before start, Engine 20.10 shows the requested profile here (or "").
  json aa = get(in, "AppArmorProfile");
  if (aa == "unconfined") bad.push_back("AppArmorProfile: 'unconfined' is not allowed");
  if (!s.apparmor_profile.empty() && aa != s.apparmor_profile)
    bad.push_back(absl::StrCat("AppArmorProfile: wanted '", s.apparmor_profile, "', daemon has ", aa.dump()));

  expect("ReadonlyRootfs", get(hc, "ReadonlyRootfs"), s.read_only_rootfs);
  json want_tmpfs = json::object();
  for (const auto& [k, v] : WantedTmpfs(s)) want_tmpfs[k] = v;
  expect("Tmpfs", get(hc, "Tmpfs"), want_tmpfs);
  expect("PidsLimit", get(hc, "PidsLimit"), s.limits.pids);
  expect("Memory", get(hc, "Memory"), Bytes(s.limits.memory_mb));
  expect("MemorySwap", get(hc, "MemorySwap"), Bytes(s.limits.memory_mb));
  expect("NanoCpus", get(hc, "NanoCpus"), static_cast<int64_t>(std::llround(s.limits.cpus * 1e9)));

  // Ulimits: nofile and core exactly.
  json ul = get(hc, "Ulimits");
  auto find_ul = [&](const char* name) -> json {
    if (ul.is_array())
      for (const auto& u : ul)
        if (get(u, "Name") == name) return u;
    return nullptr;
  };
  json nofile = find_ul("nofile"), core = find_ul("core");
  if (nofile.is_null() || get(nofile, "Soft") != s.limits.nofile ||
      get(nofile, "Hard") != s.limits.nofile)
    bad.push_back(absl::StrCat("Ulimits nofile: wanted ", s.limits.nofile, ", daemon has ", nofile.dump()));
  if (core.is_null() || get(core, "Soft") != 0 || get(core, "Hard") != 0)
    bad.push_back(absl::StrCat("Ulimits core: wanted 0, daemon has ", core.dump()));

  expect("IpcMode", get(hc, "IpcMode"), "private");
  json pid = get(hc, "PidMode");
  if (!(pid.is_null() || pid == "")) bad.push_back(absl::StrCat("PidMode: wanted private, daemon has ", pid.dump()));
  json userns = get(hc, "UsernsMode");
  if (!(userns.is_null() || userns == "")) bad.push_back(absl::StrCat("UsernsMode: daemon has ", userns.dump()));
  expect("Init", get(hc, "Init"), true);
  expect("NetworkMode", get(hc, "NetworkMode"), "none");
  if (!s.runtime.empty()) expect("Runtime", get(hc, "Runtime"), s.runtime);
  json devices = get(hc, "Devices");
  if (!(devices.is_null() || (devices.is_array() && devices.empty())))
    bad.push_back(absl::StrCat("Devices: wanted none, daemon has ", devices.dump()));
  json binds = get(hc, "Binds");
  if (!(binds.is_null() || (binds.is_array() && binds.empty())))
    bad.push_back(absl::StrCat("Binds: wanted none, daemon has ", binds.dump()));
  expect("User", get(cfg, "User"), s.user);

  // Exactly the job's own mounts (an image VOLUME would add one: refused).
  json got_mounts = get(in, "Mounts");
  std::vector<std::string> want_m, have_m;
  for (const auto& m : mounts)
    want_m.push_back(absl::StrCat("bind ", m.source, " -> ", m.target, m.read_only ? " ro" : " rw"));
  if (got_mounts.is_array()) {
    for (const auto& m : got_mounts) {
      std::string type = get(m, "Type").is_string() ? get(m, "Type").get<std::string>() : "?";
      std::string src = get(m, "Source").is_string() ? get(m, "Source").get<std::string>() : "?";
      std::string dst = get(m, "Destination").is_string() ? get(m, "Destination").get<std::string>() : "?";
      bool rw = get(m, "RW") == true;
      have_m.push_back(absl::StrCat(type, " ", src, " -> ", dst, rw ? " rw" : " ro"));
    }
  }
  std::sort(want_m.begin(), want_m.end());
  std::sort(have_m.begin(), have_m.end());
  if (want_m != have_m)
    bad.push_back(absl::StrCat("Mounts: wanted [", absl::StrJoin(want_m, "; "), "], daemon has [",
                               absl::StrJoin(have_m, "; "), "]"));
  ReadOnlyMounts(got_mounts, bad);
  return bad;
}

std::vector<std::string> VerifyStarted(const json& in, const JobSpec& s) {
  std::vector<std::string> bad;
  json aa = in.is_object() && in.contains("AppArmorProfile") ? in["AppArmorProfile"] : json(nullptr);
  if (aa == "unconfined") bad.push_back("AppArmorProfile: the container runs 'unconfined'");
  if (!s.apparmor_profile.empty() && aa != s.apparmor_profile)
    bad.push_back(absl::StrCat("AppArmorProfile: '", s.apparmor_profile,
                               "' requested but not applied (daemon has ", aa.dump(),
                               "; is AppArmor enabled on this host?)"));
  return bad;
}

}  // namespace assessq
