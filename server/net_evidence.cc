#include "server/net_evidence.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace assessq {

using nlohmann::json;

namespace {

const json* Member(const json& o, const char* key) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(key);
  return it == o.end() ? nullptr : &*it;
}

constexpr char kLoadedKey[] = "تم_تحميل_البيانات";
constexpr char kSourcesKey[] = "المصادر_المفتوحة";

}  // namespace

const std::vector<std::string>& DataHostDomains() {
  static const std::vector<std::string> kDomains = {
      "huggingface.co", "hf.co",          "github.com",     "githubusercontent.com",
      "gitlab.com",     "zenodo.org",     "mendeley.com",   "kaggle.com",
      "figshare.com",   "bitbucket.org",  "sourceforge.net", "dataverse.harvard.edu",
      "osf.io",         "pypi.org",       "pythonhosted.org"};
  return kDomains;
}

std::string UrlHost(std::string_view url) {
  std::string u(url.substr(0, 2048));
  absl::AsciiStrToLower(&u);
  size_t start;
  if (absl::StartsWith(u, "https://")) start = 8;
  else if (absl::StartsWith(u, "http://")) start = 7;
  else return "";
  size_t end = u.find_first_of("/?#", start);
  std::string auth = u.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (size_t at = auth.rfind('@'); at != std::string::npos) auth = auth.substr(at + 1);
  std::string host;
  if (!auth.empty() && auth[0] == '[') {
    size_t close = auth.find(']');
    if (close == std::string::npos) return "";
    host = auth.substr(0, close + 1);
  } else {
    host = auth.substr(0, auth.find(':'));
  }
  while (!host.empty() && host.back() == '.') host.pop_back();
  for (char c : host)
    if (static_cast<unsigned char>(c) <= 0x20) return "";
  return host;
}

bool HostWithin(const std::string& host, const std::string& domain) {
  if (host.empty() || domain.empty()) return false;
  if (host == domain) return true;
  return host.size() > domain.size() && absl::EndsWith(host, domain) &&
         host[host.size() - domain.size() - 1] == '.';
}

NetEvidence ParseNetEvidence(std::string_view netlog_json) {
  NetEvidence ev;
  if (netlog_json.empty()) return ev;
  json log = json::parse(netlog_json, nullptr, false);
  if (!log.is_array()) return ev;
  ev.had_gateway = true;
  for (const json& e : log) {
    if (!e.is_object() || e.value("decision", "") != "allow") continue;
    if (e.value("kind", "") == "model") continue;
    const json* h = Member(e, "host");
    if (h == nullptr || !h->is_string()) continue;
    std::string host = h->get<std::string>();
    absl::AsciiStrToLower(&host);
    while (!host.empty() && host.back() == '.') host.pop_back();
    if (host.empty()) continue;
    ev.contacted.insert(host);
    const json* down = Member(e, "bytes_down");
    if (down != nullptr && down->is_number_integer() && down->get<int64_t>() > 0)
      ev.downloaded_from.insert(host);
  }
  return ev;
}

std::vector<std::string> EvidenceFlags(const json& doc, const json& md, const NetEvidence& ev) {
  std::vector<std::string> flags;
  const json* loaded = Member(doc, kLoadedKey);
  if (loaded != nullptr && loaded->is_boolean() && loaded->get<bool>()) {
    std::vector<std::string> data = DataHostDomains();
    for (const char* key : {"Link", "HF Link", "HF_Link"}) {
      const json* l = Member(md, key);
      if (l != nullptr && l->is_string()) {
        std::string h = UrlHost(l->get<std::string>());
        if (!h.empty()) data.push_back(h);
      }
    }
    bool downloaded = false;
    for (const auto& host : ev.downloaded_from)
      for (const auto& d : data)
        if (HostWithin(host, d)) downloaded = true;
    if (!downloaded) flags.push_back("claims_loaded_without_download");
  }
  if (ev.had_gateway) {
    const json* sources = Member(doc, kSourcesKey);
    bool missing = false;
    if (sources != nullptr && sources->is_array())
      for (const json& s : *sources) {
        if (!s.is_string()) continue;
        std::string h = UrlHost(s.get<std::string>());
        if (!h.empty() && !ev.contacted.count(h)) missing = true;
      }
    if (missing) flags.push_back("sources_not_contacted");
  }
  return flags;
}

}  // namespace assessq
