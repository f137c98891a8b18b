#include "common/metrics_http.h"

#include <arpa/inet.h>
#include <prometheus/exposer.h>

#include <exception>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace assessq {

absl::StatusOr<std::string> CivetListeningPort(const std::string& host_port) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address '", host_port, "': ", why,
                     " (want HOST:PORT, HOST an IPv4 address, [IPv6] or localhost)"));
  };
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad("no host");
  std::string host = host_port.substr(0, colon), port_text = host_port.substr(colon + 1);
  int port = -1;
  if (port_text.empty() || !absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535)
    return bad("bad port");
  unsigned char buf[sizeof(struct in6_addr)];
  if (host == "localhost") host = "127.0.0.1";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), buf) != 1)
      return bad("bad IPv6 address");
  } else if (inet_pton(AF_INET, host.c_str(), buf) != 1) {
    return bad("host is not an IP address");
  }
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<std::unique_ptr<MetricsHttp>> MetricsHttp::Start(
    const std::string& host_port,
    const std::vector<std::weak_ptr<prometheus::Collectable>>& collectables) {
  auto spec = CivetListeningPort(host_port);
  if (!spec.ok()) return spec.status();
  std::unique_ptr<MetricsHttp> m(new MetricsHttp());
  try {
    m->exposer_ = std::make_unique<prometheus::Exposer>(*spec, 2);
    for (const auto& c : collectables) m->exposer_->RegisterCollectable(c);
    auto ports = m->exposer_->GetListeningPorts();
    if (!ports.empty()) m->port_ = ports.front();
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", host_port, ": ", e.what()));
  }
  return m;
}

MetricsHttp::~MetricsHttp() = default;

}  // namespace assessq
