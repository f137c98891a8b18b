// Trust flags from evidence the agent cannot forge: the egress gateway's
// network log of the attempt, written by workerd outside the container. A
// result that says data was loaded while the job downloaded nothing from a
// data host, or that lists sources the job never contacted, is flagged for a
// reviewer. Pure: parsing and decisions only, unit-tested without I/O.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace assessq {

struct NetEvidence {
  bool had_gateway = false;                // a network log exists: the job had egress
  std::set<std::string> contacted;         // hosts of allowed connections (lowercase)
  std::set<std::string> downloaded_from;   // ... of those that received bytes
};

// The evidence in a network log (a JSON array of gateway entries: host,
// decision, kind, bytes_down). Empty or unparsable text: no gateway. Entries
// of the model route (kind "model") are not evidence of anything fetched.
NetEvidence ParseNetEvidence(std::string_view netlog_json);

// Hosts that serve datasets (a host matches when it is one of these or a
// subdomain of one), besides the hosts of the dataset's own Link and HF Link.
const std::vector<std::string>& DataHostDomains();

// The host of an http(s) URL, lowercased, without port, userinfo or a
// trailing dot; "" when `url` is not an http(s) URL with a host.
std::string UrlHost(std::string_view url);

// True if `host` is `domain` or a subdomain of it.
bool HostWithin(const std::string& host, const std::string& domain);

// The flags, in this order, each at most once (parsed result `doc` and
// metadata `md`, both objects):
//   claims_loaded_without_download  تم_تحميل_البيانات true, but no allowed
//                                   connection received bytes from a data host
//                                   (the metadata's Link / HF Link hosts, their
//                                   subdomains, DataHostDomains()); also when
//                                   the job had no network at all
//   sources_not_contacted           (jobs with a gateway) an المصادر_المفتوحة
//                                   URL whose host no allowed connection
//                                   reached
std::vector<std::string> EvidenceFlags(const nlohmann::json& doc, const nlohmann::json& md,
                                       const NetEvidence& ev);

}  // namespace assessq
