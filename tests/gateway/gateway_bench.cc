// gateway_bench: a 10 MB download from an HTTP server, direct over TCP and
// through the egress gateway (absolute-form HTTP and a CONNECT tunnel on the
// job's Unix socket, and through the real netbridge as a container's agent
// would), side by side. Not a ctest test. Needs root: the server runs in a
// second private network namespace behind a veth pair (as the gateway does
// not connect to its own host's addresses), all on this machine.
//   gateway_bench [--mb N] [--runs N]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <csignal>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/gateway/gw_test_util.h"
#include "worker/gateway/gateway.h"

using namespace assessq::gateway;

namespace {

// Reads until EOF; returns the body size (after the head).
size_t ReadResponse(int fd) {
  std::vector<char> buf(1 << 16);
  size_t total = 0, head_end = 0;
  std::string head;
  while (true) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    if (!head_end) {
      head.append(buf.data(), static_cast<size_t>(n));
      auto p = head.find("\r\n\r\n");
      if (p != std::string::npos) {
        head_end = p + 4;
        total = head.size() - head_end;
      }
    } else {
      total += static_cast<size_t>(n);
    }
  }
  return total;
}

int TcpConnect(const char* addr, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, addr, &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("connect");
    std::exit(1);
  }
  return fd;
}

void SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n <= 0) std::exit(1);
    off += static_cast<size_t>(n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int mb = 10, runs = 7;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--mb") mb = std::atoi(argv[++i]);
    else if (std::string(argv[i]) == "--runs") runs = std::atoi(argv[++i]);
  }
  signal(SIGPIPE, SIG_IGN);
  std::string ns = gwtest::EnterPrivateNetns({});
  if (ns.empty()) ns = gwtest::MakeFarNetns({});
  if (!ns.empty()) {
    std::fprintf(stderr, "gateway_bench needs root (private network namespaces): %s\n", ns.c_str());
    return 1;
  }
  std::printf("server in a second network namespace behind a veth pair (%s)\n", gwtest::kFarAddr);
  gwtest::TestServer server(gwtest::kFarAddr, 0, gwtest::TestServer::Mode::kBulk, nullptr, true);
  const size_t bytes = static_cast<size_t>(mb) << 20;
  server.set_bulk_bytes(bytes);
  gwtest::TempDir dir;
  GatewayOptions go;
  go.resolver_overrides = {{"bench.test", {gwtest::kFarAddr}}};
  auto gw = Gateway::Create(go);
  JobConfig cfg;
  cfg.job_id = 1;
  cfg.socket_path = dir.Join("proxy.sock");
  cfg.policy.rules.push_back(*ParseRule(absl::StrCat("bench.test:", server.port())));
  cfg.policy.open_ranges.push_back(*ParseCidr(std::string(gwtest::kFarAddr) + "/32"));
  cfg.limits.max_total_bytes = int64_t{1} << 40;
  cfg.limits.max_connections = 1000;
  auto job = (*gw)->StartJob(cfg);
  if (!job.ok()) {
    std::fprintf(stderr, "%s\n", job.status().ToString().c_str());
    return 1;
  }
  const int bridge_port = 3128;
  gwtest::Netbridge bridge(ASSESSQ_NETBRIDGE, cfg.socket_path, bridge_port);
  if (!bridge.ready()) {
    std::fprintf(stderr, "netbridge did not start\n");
    return 1;
  }
  const std::string host = absl::StrCat("bench.test:", server.port());
  const std::string direct_req = absl::StrCat("GET /blob HTTP/1.1\r\nHost: ", host, "\r\nConnection: close\r\n\r\n");
  const std::string proxy_req =
      absl::StrCat("GET http://", host, "/blob HTTP/1.1\r\nHost: ", host, "\r\n\r\n");

  struct Mode {
    const char* name;
    std::function<size_t()> run;
  };
  std::vector<Mode> modes = {
      {"direct TCP",
       [&] {
         int fd = TcpConnect(gwtest::kFarAddr, server.port());
         SendAll(fd, direct_req);
         size_t n = ReadResponse(fd);
         close(fd);
         return n;
       }},
      {"gateway Unix socket, absolute-form HTTP",
       [&] {
         gwtest::UnixClient c(cfg.socket_path, 30000);
         c.Send(proxy_req);
         return ReadResponse(c.fd());
       }},
      {"gateway Unix socket, CONNECT tunnel",
       [&] {
         gwtest::UnixClient c(cfg.socket_path, 30000);
         c.Send(absl::StrCat("CONNECT ", host, " HTTP/1.1\r\n\r\n"));
         std::string h = c.ReadUntil("\r\n\r\n");
         c.Send(direct_req);
         return ReadResponse(c.fd());
       }},
      {"netbridge TCP -> gateway (container path)",
       [&] {
         int fd = TcpConnect("127.0.0.1", bridge_port);
         SendAll(fd, proxy_req);
         size_t n = ReadResponse(fd);
         close(fd);
         return n;
       }},
  };
  std::printf("%d MiB download, median of %d runs\n", mb, runs);
  std::printf("%-45s %10s %10s\n", "path", "ms", "MiB/s");
  double direct_rate = 0;
  for (const auto& m : modes) {
    std::vector<double> ms;
    for (int i = 0; i < runs; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      size_t got = m.run();
      auto t1 = std::chrono::steady_clock::now();
      if (got != bytes) {
        std::fprintf(stderr, "%s: got %zu of %zu bytes\n", m.name, got, bytes);
        return 1;
      }
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    double med = ms[ms.size() / 2];
    double rate = mb / (med / 1000.0);
    if (direct_rate == 0) direct_rate = rate;
    std::printf("%-45s %10.2f %10.1f  (%.0f%% of direct; min %.2f ms, max %.2f ms)\n", m.name, med, rate,
                100.0 * rate / direct_rate, ms.front(), ms.back());
  }
  (*job)->Stop();
  return 0;
}
