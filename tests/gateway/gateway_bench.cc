// gateway_bench: the egress gateway against a direct connection, side by
// side. Two figures per path: the time of an N MiB download (median and
// fastest of --runs, and the ratio to direct), and the time to the first
// byte of a 1-byte response on a fresh connection (p50/p99 of --conns, and
// what the gateway adds to direct). The paths: direct TCP; the job's Unix
// socket with an absolute-form HTTP request and with a CONNECT tunnel; and
// both again through the real assessq-netbridge (TCP 127.0.0.1:3128 ->
// socket -> gateway -> TCP), as a container's agent goes. Runs are
// interleaved (one of each path per round) so that a busy machine slows
// every path alike. CPU time is printed too, which a busy machine changes
// far less than wall time: "CPU" is every thread on every side (this
// process: client, servers, gateway; plus the netbridge process), "relay CPU"
// only the gateway's io thread and the netbridge process. Not a ctest test. Needs root: the servers run in a
// second private network namespace behind a veth pair (the gateway does not
// connect to its own host's addresses), all on this machine.
//   gateway_bench [--mb N] [--runs N] [--conns N] [--no-throughput] [--no-latency]
//                 [--copy] [--netbridge PATH] [--only TEXT] [--rate-mbit N]
// --copy: the gateway relays through a user-space buffer instead of
// splice(2) (GatewayOptions::splice = false); --netbridge: another bridge
// binary (e.g. an older build) to compare with; --only: direct and the
// paths whose name contains TEXT (e.g. for a profile of one path);
// --rate-mbit: limit the veth pair to N Mbit/s each way, as a real uplink is
// (unshaped, the "network" is a 2-3 GB/s memory copy and the relays' CPU
// decides the ratio).
//
// The model route with usage metering on and off, side by side (issue 16):
// two gateways (GatewayOptions::meter true and false) relay the same
// streamed Messages API answer (server-sent events, as the provider sends
// them) from an HTTPS stand-in to a job socket: the time of an N MiB stream
// and of its first byte on a fresh connection (p50/p99), and metered /
// unmetered for each (the ratio of the medians, and the median of each
// round's own ratio; the two sides' order alternates round by round), and
// the CPU of the meter alone on the same stream. --model-only runs only
// this part; --no-model skips it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <csignal>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/gateway/gw_test_util.h"
#include "worker/gateway/gateway.h"
#include "worker/gateway/usage_meter.h"

using namespace assessq::gateway;
using Clock = std::chrono::steady_clock;

namespace {

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string LoadAvg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return absl::StrCat(a, " ", b, " ", c);
}

// Reads until EOF; returns the body size (after the head). *first: when the
// first byte arrived (nullptr: not wanted).
size_t ReadResponse(int fd, Clock::time_point* first = nullptr, std::string* all = nullptr) {
  std::vector<char> buf(1 << 16);
  size_t total = 0, head_end = 0;
  std::string head;
  while (true) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    if (first && head.empty()) *first = Clock::now();
    if (all) all->append(buf.data(), static_cast<size_t>(n));
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

// As curl and every proxy does: no Nagle delay on a request/response socket.
int TcpConnect(const char* addr, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      std::perror("send");
      std::exit(1);
    }
    off += static_cast<size_t>(n);
  }
}

// The ids of this process's threads.
std::vector<int> Threads() {
  std::vector<int> out;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') out.push_back(std::atoi(e->d_name));
    closedir(d);
  }
  return out;
}

// CPU time so far of the relay: the given threads of this process (the
// gateway's) and the whole netbridge process (ended threads too), in ms.
double RelayCpuMs(const std::vector<int>& tids, pid_t bridge) {
  double ms = 0;
  for (int t : tids) {
    std::ifstream f("/proc/self/task/" + std::to_string(t) + "/schedstat");
    double ns = 0;
    f >> ns;  // time on a CPU, ns
    ms += ns / 1e6;
  }
  clockid_t c;
  timespec ts{};
  if (bridge > 0 && clock_getcpuclockid(bridge, &c) == 0 && clock_gettime(c, &ts) == 0)
    ms += static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
  return ms;
}

// CPU time so far of this process (all its threads, ended ones too) and of
// the netbridge process, in ms.
double CpuMs(pid_t other) {
  auto read = [](clockid_t c) {
    timespec t{};
    if (clock_gettime(c, &t) != 0) return 0.0;
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
  };
  double ms = read(CLOCK_PROCESS_CPUTIME_ID);
  clockid_t c;
  if (other > 0 && clock_getcpuclockid(other, &c) == 0) ms += read(c);
  return ms;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// How a path opens a connection that is ready for the HTTP request: an fd,
// and the request to send on it.
struct Path {
  std::string name;
  std::function<int()> open;  // returns a connected fd (tunnel established)
  bool absolute_form;         // the request names the host (a proxy request)
};

// A streamed Messages API answer of about `bytes` bytes: message_start,
// text deltas, message_delta, message_stop (as the provider sends them).
std::string SseAnswer(size_t bytes, int64_t* output_tokens) {
  std::string body =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\","
      "\"role\":\"assistant\",\"model\":\"claude-bench\",\"content\":[],\"usage\":{\"input_tokens\":1200,"
      "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":30000,\"output_tokens\":1}}}\n\n";
  int64_t n = 0;
  while (body.size() < bytes) {
    absl::StrAppend(&body,
                    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                    "{\"type\":\"text_delta\",\"text\":\"",
                    std::string(160, 'w'), " ", n, "\"}}\n\n");
    ++n;
  }
  absl::StrAppend(&body, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                         "\"end_turn\"},\"usage\":{\"output_tokens\":", n, "}}\n\nevent: message_stop\ndata: "
                         "{\"type\":\"message_stop\"}\n\n");
  *output_tokens = n;
  return absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: ", body.size(),
                      "\r\nConnection: close\r\n\r\n", body);
}

// The model route, metered and not, side by side (see the header).
void ModelRouteBench(const gwtest::TempDir& dir, int mb, int runs, int conns) {
  gwtest::TestCa ca = gwtest::MakeTestCa(dir.path());
  auto [cert, key] = ca.Issue("model", "DNS:model.bench");
  SSL_CTX* tls = gwtest::ServerTlsContext(cert, key);
  int64_t big_tokens = 0, small_tokens = 0;
  gwtest::TestServer big(gwtest::kFarAddr, 0, gwtest::TestServer::Mode::kHttp, tls, true);
  big.set_response(SseAnswer(static_cast<size_t>(mb) << 20, &big_tokens));
  gwtest::TestServer small(gwtest::kFarAddr, 0, gwtest::TestServer::Mode::kHttp, tls, true);
  small.set_response(SseAnswer(2048, &small_tokens));
  struct Side {
    const char* name;
    std::unique_ptr<Gateway> gw;
    std::shared_ptr<JobGateway> big, small;
    std::vector<int> threads;
    std::string big_sock, small_sock;
  } sides[2] = {{"model route, metering off"}, {"model route, metering on"}};
  for (int i = 0; i < 2; ++i) {
    GatewayOptions go;
    go.resolver_overrides = {{"model.bench", {gwtest::kFarAddr}}};
    go.meter = i == 1;
    std::vector<int> before = Threads();
    auto g = Gateway::Create(go);
    if (!g.ok()) std::exit(1);
    for (int t : Threads())
      if (std::find(before.begin(), before.end(), t) == before.end()) sides[i].threads.push_back(t);
    sides[i].gw = std::move(*g);
    for (bool is_big : {true, false}) {
      JobConfig cfg;
      cfg.job_id = 10 + i * 2 + is_big;
      cfg.socket_path = dir.Join(absl::StrCat("model-", i, is_big ? "-big" : "-small", ".sock"));
      cfg.policy.open_ranges.push_back(*ParseCidr(std::string(gwtest::kFarAddr) + "/32"));
      cfg.limits.max_total_bytes = int64_t{1} << 40;
      cfg.limits.max_connections = 1000;
      ModelRoute m;
      m.host = "model.bench";
      m.port = is_big ? big.port() : small.port();
      m.ca_file = ca.ca_pem;
      m.secret = "bench-key";
      m.provider = "anthropic";
      cfg.model = m;
      auto j = sides[i].gw->StartJob(cfg);
      if (!j.ok()) {
        std::fprintf(stderr, "%s\n", j.status().ToString().c_str());
        std::exit(1);
      }
      (is_big ? sides[i].big : sides[i].small) = *j;
      (is_big ? sides[i].big_sock : sides[i].small_sock) = cfg.socket_path;
    }
  }
  const std::string req = "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:3128\r\nContent-Type: application/json\r\n"
                          "Content-Length: 15\r\n\r\n{\"stream\":true}";
  auto exchange = [&](const std::string& sock, Clock::time_point* first) {
    gwtest::UnixClient c(sock, 30000);
    if (!c.ok()) std::exit(1);
    SendAll(c.fd(), req);
    return ReadResponse(c.fd(), first);
  };
  const size_t big_len = SseAnswer(static_cast<size_t>(mb) << 20, &big_tokens).size();
  std::vector<double> ms[2], cpu[2], time_ratio, cpu_ratio;
  for (int r = -1; r < runs; ++r) {
    // The order alternates round by round (a run right after the other
    // side's finds the caches and the scheduler otherwise than the first).
    for (int i : {r % 2 == 0 ? 0 : 1, r % 2 == 0 ? 1 : 0}) {
      double c0 = RelayCpuMs(sides[i].threads, 0);
      auto t0 = Clock::now();
      size_t got = exchange(sides[i].big_sock, nullptr);
      auto t1 = Clock::now();
      double c1 = RelayCpuMs(sides[i].threads, 0);
      if (got == 0 || got + 200 < big_len - big_len / 100) {
        std::fprintf(stderr, "%s: got %zu bytes\n", sides[i].name, got);
        std::exit(1);
      }
      if (r >= 0) {
        ms[i].push_back(Ms(t0, t1));
        cpu[i].push_back(c1 - c0);
      }
    }
    if (r >= 0) {  // the round's own ratio: both sides ran within a few ms of each other
      time_ratio.push_back(ms[1].back() / ms[0].back());
      cpu_ratio.push_back(cpu[1].back() / cpu[0].back());
    }
  }
  // The meter alone on the same stream, in the TLS records' 16 KiB pieces,
  // each copied into a buffer first (hot in the cache, as the relay's is
  // when the meter reads it): the CPU that metering adds to the relay,
  // without the noise of two relays on a shared machine.
  std::vector<double> meter_ms;
  {
    const std::string stream = SseAnswer(static_cast<size_t>(mb) << 20, &big_tokens);
    std::vector<char> buf(16384);
    for (int r = -1; r < runs; ++r) {
      UsageMeter m;
      double t = 0;
      for (size_t off = 0; off < stream.size(); off += buf.size()) {
        const size_t n = std::min(buf.size(), stream.size() - off);
        std::memcpy(buf.data(), stream.data() + off, n);
        auto t0 = Clock::now();
        m.Feed(absl::string_view(buf.data(), n));
        t += Ms(t0, Clock::now());
      }
      m.Finish();
      if (m.counts().output != big_tokens) {
        std::fprintf(stderr, "the meter alone read %lld output tokens, not %lld\n",
                     static_cast<long long>(m.counts().output), static_cast<long long>(big_tokens));
        std::exit(1);
      }
      if (r >= 0) meter_ms.push_back(t);
    }
  }
  std::vector<double> first[2];
  for (int r = -10; r < conns; ++r) {
    for (int i : {r % 2 == 0 ? 0 : 1, r % 2 == 0 ? 1 : 0}) {
      Clock::time_point f{};
      auto t0 = Clock::now();
      (void)exchange(sides[i].small_sock, &f);
      if (r >= 0) first[i].push_back(Ms(t0, f));
    }
  }
  std::printf("\nmodel route (HTTPS stand-in, streamed server-sent events): %d MiB stream x %d interleaved runs, "
              "first byte of a 2 KiB stream x %d interleaved connections\n", mb, runs, conns);
  std::printf("%-30s %10s %8s %11s %10s %10s %10s\n", "path", "median", "MiB/s", "relay CPU", "TTFB p50",
              "TTFB p90", "TTFB p99");
  for (int i : {0, 1})
    std::printf("%-30s %8.2fms %8.0f %9.2fms %8.3fms %8.3fms %8.3fms\n", sides[i].name, Percentile(ms[i], 0.5),
                mb / (Percentile(ms[i], 0.5) / 1000.0), Percentile(cpu[i], 0.5), Percentile(first[i], 0.5),
                Percentile(first[i], 0.9), Percentile(first[i], 0.99));
  std::printf("metered / unmetered: stream time %.3fx, relay CPU %.3fx, TTFB p50 %.3fx, p99 %.3fx (target: within 5%%)\n",
              Percentile(ms[1], 0.5) / Percentile(ms[0], 0.5), Percentile(cpu[1], 0.5) / Percentile(cpu[0], 0.5),
              Percentile(first[1], 0.5) / Percentile(first[0], 0.5),
              Percentile(first[1], 0.99) / Percentile(first[0], 0.99));
  std::printf("median of the rounds' own ratios: stream time %.3fx, relay CPU %.3fx\n", Percentile(time_ratio, 0.5),
              Percentile(cpu_ratio, 0.5));
  std::printf("the meter alone on this stream (16 KiB pieces, hot buffer): median %.3f ms, min %.3f ms = %.1f%% of "
              "the unmetered relay CPU\n",
              Percentile(meter_ms, 0.5), *std::min_element(meter_ms.begin(), meter_ms.end()),
              100.0 * Percentile(meter_ms, 0.5) / Percentile(cpu[0], 0.5));
  // The metered side did meter: every stream's usage, exactly.
  UsageSnapshot u = sides[1].big->usage(), off = sides[0].big->usage();
  const int64_t streams = runs + 1;
  bool exact = u.models.size() == 1 && u.models[0].requests == streams &&
               u.models[0].tokens.output == streams * big_tokens && u.models[0].tokens.input == streams * 1200 &&
               u.models[0].tokens.cache_read == streams * 30000 && off.models.empty();
  std::printf("metered side counted %lld stream(s), %lld output tokens (expected %lld); unmetered side counted %zu "
              "model(s): %s\n",
              static_cast<long long>(u.models.empty() ? 0 : u.models[0].requests),
              static_cast<long long>(u.models.empty() ? 0 : u.models[0].tokens.output),
              static_cast<long long>(streams * big_tokens), off.models.size(), exact ? "exact" : "WRONG");
  for (auto& s : sides) {
    s.big->Stop();
    s.small->Stop();
  }
}

}  // namespace

int main(int argc, char** argv) {
  int mb = 10, runs = 9, conns = 500, rate_mbit = 0;
  bool throughput = true, latency = true, copy = false, model = true, model_only = false;
  std::string netbridge = ASSESSQ_NETBRIDGE, only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mb" && i + 1 < argc) mb = std::atoi(argv[++i]);
    else if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--conns" && i + 1 < argc) conns = std::atoi(argv[++i]);
    else if (a == "--no-throughput") throughput = false;
    else if (a == "--no-latency") latency = false;
    else if (a == "--copy") copy = true;
    else if (a == "--netbridge" && i + 1 < argc) netbridge = argv[++i];
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else if (a == "--rate-mbit" && i + 1 < argc) rate_mbit = std::atoi(argv[++i]);
    else if (a == "--no-model") model = false;
    else if (a == "--model-only") model_only = true;
    else {
      std::fprintf(stderr, "usage: gateway_bench [--mb N] [--runs N] [--conns N] [--no-throughput] [--no-latency] [--copy] [--netbridge PATH] [--only TEXT] [--rate-mbit N] [--no-model] [--model-only]\n");
      return 2;
    }
  }
  if (mb <= 0 || runs <= 0 || conns <= 1) return 2;
  signal(SIGPIPE, SIG_IGN);
  std::string ns = gwtest::EnterPrivateNetns({});
  if (ns.empty()) ns = gwtest::MakeFarNetns({});
  if (!ns.empty()) {
    std::fprintf(stderr, "gateway_bench needs root (private network namespaces): %s\n", ns.c_str());
    return 1;
  }
  if (rate_mbit > 0) {
    if (std::string e = gwtest::ShapeFarLink(rate_mbit); !e.empty()) {
      std::fprintf(stderr, "gateway_bench: cannot shape the link: %s\n", e.c_str());
      return 1;
    }
  }
  std::printf("servers in a second network namespace behind a veth pair (%s); load average %s; %ld CPUs\n",
              gwtest::kFarAddr, LoadAvg().c_str(), sysconf(_SC_NPROCESSORS_ONLN));
  if (rate_mbit > 0)
    std::printf("the veth pair is limited to %d Mbit/s each way (tc tbf), like a build machine's uplink\n",
                rate_mbit);
  gwtest::TestServer bulk(gwtest::kFarAddr, 0, gwtest::TestServer::Mode::kBulk, nullptr, true);
  const size_t bytes = static_cast<size_t>(mb) << 20;
  bulk.set_bulk_bytes(bytes);
  gwtest::TestServer tiny(gwtest::kFarAddr, 0, gwtest::TestServer::Mode::kQuick, nullptr, true);
  tiny.set_response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx");
  gwtest::TempDir dir;
  GatewayOptions go;
  go.resolver_overrides = {{"bench.test", {gwtest::kFarAddr}}};
  go.splice = !copy;
  std::printf("gateway relays with %s; bridge %s\n", copy ? "a user-space copy (--copy)" : "splice(2)",
              netbridge.c_str());
  std::vector<int> before = Threads();
  auto gw = Gateway::Create(go);
  std::vector<int> gw_threads;  // the gateway's io thread(s): the ones Create started
  for (int t : Threads())
    if (std::find(before.begin(), before.end(), t) == before.end()) gw_threads.push_back(t);
  if (!gw.ok()) {
    std::fprintf(stderr, "%s\n", gw.status().ToString().c_str());
    return 1;
  }
  JobConfig cfg;
  cfg.job_id = 1;
  cfg.socket_path = dir.Join("proxy.sock");
  cfg.policy.rules.push_back(*ParseRule(absl::StrCat("bench.test:", bulk.port())));
  cfg.policy.rules.push_back(*ParseRule(absl::StrCat("bench.test:", tiny.port())));
  cfg.policy.open_ranges.push_back(*ParseCidr(std::string(gwtest::kFarAddr) + "/32"));
  cfg.limits.max_total_bytes = int64_t{1} << 40;
  cfg.limits.max_connections = 1000;
  auto job = (*gw)->StartJob(cfg);
  if (!job.ok()) {
    std::fprintf(stderr, "%s\n", job.status().ToString().c_str());
    return 1;
  }
  const int bridge_port = 3128;
  gwtest::Netbridge bridge(netbridge, cfg.socket_path, bridge_port);
  if (!bridge.ready()) {
    std::fprintf(stderr, "netbridge did not start\n");
    return 1;
  }

  // A path, for a server port: opens the connection (and the tunnel).
  auto connect_via = [&](int port, bool unix_socket, bool tunnel) -> int {
    int fd;
    if (unix_socket) {
      gwtest::UnixClient c(cfg.socket_path, 30000);
      if (!c.ok()) {
        std::fprintf(stderr, "cannot connect to %s\n", cfg.socket_path.c_str());
        std::exit(1);
      }
      fd = dup(c.fd());
    } else {
      fd = TcpConnect("127.0.0.1", bridge_port);
    }
    if (tunnel) {
      SendAll(fd, absl::StrCat("CONNECT bench.test:", port, " HTTP/1.1\r\nHost: bench.test:", port, "\r\n\r\n"));
      std::string h = gwtest::ReadHttpHead(fd);
      if (gwtest::StatusOf(h) != 200) {
        std::fprintf(stderr, "CONNECT refused: %s\n", h.c_str());
        std::exit(1);
      }
    }
    return fd;
  };
  auto paths = [&](int port) {
    std::vector<Path> all{
        {"direct TCP", [port] { return TcpConnect(gwtest::kFarAddr, port); }, false},
        {"gateway socket, absolute-form HTTP", [=] { return connect_via(port, true, false); }, true},
        {"gateway socket, CONNECT tunnel", [=] { return connect_via(port, true, true); }, false},
        {"netbridge -> gateway, absolute-form", [=] { return connect_via(port, false, false); }, true},
        {"netbridge -> gateway, CONNECT", [=] { return connect_via(port, false, true); }, false},
    };
    std::vector<Path> out;
    for (auto& p : all)
      if (out.empty() || p.name.find(only) != std::string::npos) out.push_back(std::move(p));
    return out;
  };
  auto request = [](const Path& p, int port, const char* path) {
    std::string host = absl::StrCat("bench.test:", port);
    if (p.absolute_form)
      return absl::StrCat("GET http://", host, path, " HTTP/1.1\r\nHost: ", host, "\r\n\r\n");
    return absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host, "\r\nConnection: close\r\n\r\n");
  };

  if (model) ModelRouteBench(dir, mb, runs, conns);
  if (model_only) {
    (*job)->Stop();
    return 0;
  }
  if (throughput) {
    auto ps = paths(bulk.port());
    std::vector<std::vector<double>> ms(ps.size()), cpu(ps.size()), relay(ps.size());
    // One warm-up round, then `runs` rounds of every path in turn.
    for (int r = -1; r < runs; ++r) {
      for (size_t i = 0; i < ps.size(); ++i) {
        std::string req = request(ps[i], bulk.port(), "/blob");
        double c0 = CpuMs(bridge.pid()), r0 = RelayCpuMs(gw_threads, bridge.pid());
        auto t0 = Clock::now();
        int fd = ps[i].open();
        SendAll(fd, req);
        size_t got = ReadResponse(fd);
        auto t1 = Clock::now();
        close(fd);
        double c1 = CpuMs(bridge.pid()), r1 = RelayCpuMs(gw_threads, bridge.pid());
        if (got != bytes) {
          std::fprintf(stderr, "%s: got %zu of %zu bytes\n", ps[i].name.c_str(), got, bytes);
          return 1;
        }
        if (r >= 0) {
          ms[i].push_back(Ms(t0, t1));
          cpu[i].push_back(c1 - c0);
          relay[i].push_back(r1 - r0);
        }
      }
    }
    std::printf("\n%d MiB download, %d interleaved runs per path (after a warm-up round); "
                "time: wall clock; CPU: all threads on every side\n", mb, runs);
    std::printf("%-38s %9s %9s %9s %8s %9s %9s %9s %10s\n", "path", "median", "min", "max", "MiB/s",
                "x direct", "CPU", "x direct", "relay CPU");
    double direct_med = 0, direct_cpu = 0;
    for (size_t i = 0; i < ps.size(); ++i) {
      double med = Percentile(ms[i], 0.5);
      double lo = *std::min_element(ms[i].begin(), ms[i].end());
      double hi = *std::max_element(ms[i].begin(), ms[i].end());
      double c = Percentile(cpu[i], 0.5);
      if (i == 0) direct_med = med, direct_cpu = c;
      std::printf("%-38s %7.2fms %7.2fms %7.2fms %8.0f %8.2fx %7.2fms %8.2fx %8.2fms\n", ps[i].name.c_str(), med,
                  lo, hi, mb / (med / 1000.0), med / direct_med, c, c / direct_cpu, Percentile(relay[i], 0.5));
    }
  }

  if (latency) {
    auto ps = paths(tiny.port());
    std::vector<std::vector<double>> ms(ps.size());
    std::vector<double> cpu(ps.size()), relay(ps.size());
    for (int r = -10; r < conns; ++r) {  // 10 warm-up rounds
      for (size_t i = 0; i < ps.size(); ++i) {
        std::string req = request(ps[i], tiny.port(), "/one");
        double c0 = CpuMs(bridge.pid()), r0 = RelayCpuMs(gw_threads, bridge.pid());
        auto t0 = Clock::now();
        int fd = ps[i].open();
        SendAll(fd, req);
        Clock::time_point first{};
        std::string all;
        size_t got = ReadResponse(fd, &first, &all);
        close(fd);
        if (r >= 0) {
          cpu[i] += CpuMs(bridge.pid()) - c0;
          relay[i] += RelayCpuMs(gw_threads, bridge.pid()) - r0;
        }
        if (got != 1 || gwtest::StatusOf(all) != 200) {
          std::fprintf(stderr, "%s: bad answer: %s\n", ps[i].name.c_str(), all.c_str());
          return 1;
        }
        if (r >= 0) ms[i].push_back(Ms(t0, first));
      }
    }
    std::printf("\nfirst byte of a 1-byte response on a fresh connection (connect + request + answer), "
                "%d interleaved connections per path\n", conns);
    std::printf("%-38s %9s %9s %9s %11s %11s %10s %10s\n", "path", "p50", "p90", "p99", "added p50",
                "added p99", "CPU/conn", "relay/conn");
    double d50 = 0, d99 = 0;
    for (size_t i = 0; i < ps.size(); ++i) {
      double p50 = Percentile(ms[i], 0.5), p90 = Percentile(ms[i], 0.9), p99 = Percentile(ms[i], 0.99);
      if (i == 0) d50 = p50, d99 = p99;
      std::printf("%-38s %7.3fms %7.3fms %7.3fms %+9.3fms %+9.3fms %8.3fms %8.3fms\n", ps[i].name.c_str(), p50,
                  p90, p99, p50 - d50, p99 - d99, cpu[i] / conns, relay[i] / conns);
    }
  }
  std::printf("\nload average at the end: %s\n", LoadAvg().c_str());
  (*job)->Stop();
  return 0;
}
