// The Prometheus endpoint both daemons share: `--metrics-listen HOST:PORT`
// (off when empty) serves GET /metrics in the text exposition format through
// prometheus-cpp's Exposer (civetweb), from whatever Collectables the daemon
// registers. HOST is an IPv4 address, a bracketed IPv6 address or
// `localhost`; port 0 picks a free one (port() says which). Parsing the
// address is pure; starting the listener is the only I/O, and its failures
// (address in use, bad address) come back as a Status, never an exception.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace assessq {

// "HOST:PORT" -> civetweb's listening_ports spelling ("127.0.0.1:9464",
// "[::1]:9464"); InvalidArgument with the reason otherwise.
absl::StatusOr<std::string> CivetListeningPort(const std::string& host_port);

class MetricsHttp {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsHttp>> Start(
      const std::string& host_port,
      const std::vector<std::weak_ptr<prometheus::Collectable>>& collectables);
  ~MetricsHttp();
  MetricsHttp(const MetricsHttp&) = delete;
  MetricsHttp& operator=(const MetricsHttp&) = delete;

  // The bound TCP port (0 if civetweb cannot say).
  int port() const { return port_; }

 private:
  MetricsHttp() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace assessq
