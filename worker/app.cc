#include "worker/app.h"

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/address.h"
#include "common/channel.h"
#include "common/logging.h"
#include "common/metrics_http.h"
#include "common/sha256.h"
#include "worker/docker/docker_client.h"
#include "worker/docker_executor.h"
#include "worker/health_server.h"
#include "worker/metrics.h"
#include "worker/state_dir.h"
#include "worker/worker_loop.h"

namespace assessq {
namespace {
std::atomic<int> g_signals{0};
void OnSignal(int) { g_signals.fetch_add(1); }

// The offline assessor (see docs/offline-assessor.md): the profile of a batch
// submitted without --profile.
Profile BuiltinDefaultProfile() {
  Profile p;
  p.image = "assessq-offline-assessor:1";
  p.command = {"/assessor", "--input", "{input}", "--output", "{output_file}", "--dataset",
               "{dataset}"};
  p.limits.memory_mb = 256;
  p.limits.cpus = 0.5;
  p.limits.pids = 64;
  p.limits.timeout_s = 120;
  p.limits.grace_s = 5;
  p.limits.tmp_mb = 16;
  p.limits.home_mb = 16;
  return p;
}
}  // namespace

// Each relayed gateway connection holds two sockets and two pipes: raise
// the soft descriptor limit to the hard one (often 1,024 of 524,288), so a
// few busy jobs do not run workerd out of descriptors.
void RaiseDescriptorLimit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= r.rlim_max) return;
  const rlim_t was = r.rlim_cur;
  r.rlim_cur = r.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &r) == 0)
    spdlog::debug("descriptor limit raised from {} to {}", was, r.rlim_cur);
}

int WorkerdMain(int argc, char** argv) {
  RaiseDescriptorLimit();
  CLI::App app{"workerd: runs assessq jobs in disposable hardened containers"};
  WorkerOptions wo;
  std::string token_file, policy_file, profile_file, log_format = "text", log_level = "info";
  std::string docker_socket = "/var/run/docker.sock";
  wo.api.address = DefaultCoordinatorAddress();
  wo.api.slots = 2;
  wo.state_dir = "/var/lib/assessq-worker";
  double reap_seconds = 60;
  app.add_option("--coordinator", wo.api.address, "unix:PATH or HOST:PORT");
  app.add_option("--token-file", token_file, "worker token file")->required();
  app.add_option("--slots", wo.api.slots, "jobs run at once")->check(CLI::Range(1, 1000));
  app.add_option("--state-dir", wo.state_dir, "outbox and per-job files (root-only)");
  app.add_option("--name", wo.api.worker_name, "worker name (default: host name + state dir)");
  app.add_option("--policy", policy_file, "local policy JSON (images, ceilings, credentials)");
  app.add_option("--default-profile", profile_file, "profile for batches submitted without one");
  app.add_option("--docker-socket", docker_socket, "Docker Engine API socket");
  app.add_option("--reap-seconds", reap_seconds, "how often to remove leftovers of crashes");
  app.add_option("--tls-ca", wo.api.tls.ca_file, "verify the coordinator with this CA");
  app.add_option("--tls-cert", wo.api.tls.cert_file, "client certificate (PEM)");
  app.add_option("--tls-key", wo.api.tls.key_file, "client key (PEM)");
  app.add_option("--log-format", log_format, "text or json");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  std::string metrics_listen, health_listen;
  app.add_option("--metrics-listen", metrics_listen,
                 "serve Prometheus metrics on HOST:PORT (GET /metrics); empty: off");
  app.add_option("--health-listen", health_listen,
                 "serve the gRPC health service on unix:PATH or HOST:PORT (plaintext; "
                 "NOT_SERVING while draining); empty: off");
  // Every long option above is also a key of the TOML config file; flags
  // given on the command line win over it; unknown keys are errors.
  app.set_config("--config", "", "TOML config file (keys: the long options without --)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  CLI11_PARSE(app, argc, argv);
  if (auto s = SetupLogging(log_format, log_level); !s.ok()) {
    std::cerr << "workerd: " << s.message() << "\n";
    return 2;
  }
  auto die = [](const absl::Status& s) {
    spdlog::critical("{}", s.ToString());
    return 1;
  };
  auto bearer = LoadToken(token_file);
  if (!bearer.ok()) return die(bearer.status());
  wo.api.bearer_token = *bearer;
  if (!policy_file.empty()) {
    auto text = ReadFileToString(policy_file, 1 << 20);
    if (!text.ok()) return die(text.status());
    auto pol = ParseLocalPolicy(*text);
    if (!pol.ok()) return die(absl::Status(pol.status().code(), absl::StrCat(policy_file, ": ", pol.status().message())));
    wo.policy = *pol;
  }
  wo.default_profile = BuiltinDefaultProfile();
  if (!profile_file.empty()) {
    auto text = ReadFileToString(profile_file, 1 << 20);
    if (!text.ok()) return die(text.status());
    auto p = ParseProfile(*text, Profile{});
    if (!p.ok()) return die(absl::Status(p.status().code(), absl::StrCat(profile_file, ": ", p.status().message())));
    wo.default_profile = *p;
  }
  if (wo.api.worker_name.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    wo.api.worker_name = absl::StrCat(host, "-", Sha256Hex(wo.state_dir).substr(0, 6));
  }
  wo.reap_interval_ms = static_cast<int64_t>(reap_seconds * 1000);
  if (wo.policy.netbridge_path.empty()) {
    // Default: the bridge built beside workerd.
    char self[4096] = {0};
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
      std::string dir(self, static_cast<size_t>(n));
      wo.policy.netbridge_path = dir.substr(0, dir.rfind('/')) + "/assessq-netbridge";
    }
  }
  auto metrics = std::make_unique<WorkerMetrics>();
  wo.observer = metrics.get();
  // Held until exit: no second workerd on this state dir.
  auto claim = StateDirClaim::Claim(wo.state_dir);
  if (!claim.ok()) return die(claim.status());
  auto exec = DockerExecutor::Create({wo.api.worker_name, claim->instance_id(),
                                      wo.state_dir + "/jobs", docker_socket,
                                      wo.policy.netbridge_path, wo.policy.egress});
  if (!exec.ok()) return die(exec.status());
  Worker worker(wo, std::move(*exec));
  // The container count has its own Docker client: scrapes never share the
  // executor's.
  auto metrics_docker = docker::DockerClient::Create(docker_socket);
  if (!metrics_docker.ok()) return die(metrics_docker.status());
  WorkerMetrics::Sources sources;
  sources.state = [&worker] { return worker.state(); };
  sources.containers_running = [d = std::shared_ptr<docker::DockerClient>(std::move(*metrics_docker)),
                                filter = absl::StrCat("assessq.instance=", claim->instance_id())]()
      -> absl::StatusOr<int64_t> {
    auto list = d->ListContainers({filter}, /*all=*/false);
    if (!list.ok()) return list.status();
    return static_cast<int64_t>(list->size());
  };
  metrics->SetSources(std::move(sources));
  if (auto s = worker.Start(); !s.ok()) return die(s);
  std::unique_ptr<MetricsHttp> metrics_http;
  if (!metrics_listen.empty()) {
    auto m = MetricsHttp::Start(metrics_listen, metrics->collectables());
    if (!m.ok()) return die(m.status());
    metrics_http = std::move(*m);
    spdlog::info("metrics on http://{}/metrics (port {})", metrics_listen, metrics_http->port());
  }
  std::unique_ptr<HealthServer> health;
  if (!health_listen.empty()) {
    auto h = HealthServer::Start(health_listen);
    if (!h.ok()) return die(h.status());
    health = std::move(*h);
  }

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::atomic<bool> done{false};
  std::thread waiter;
  int handled = 0;
  while (!done) {
    if (health) health->SetServing(WorkerServes(worker.state()));
    int n = g_signals.load();
    if (n > handled) {
      handled = n;
      if (n == 1) {
        spdlog::info("signal: draining (send again to stop running jobs and hand them back)");
        worker.Drain();
        waiter = std::thread([&] {
          worker.Wait();
          done = true;
        });
      } else {
        worker.Abort();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (waiter.joinable()) waiter.join();
  spdlog::info("workerd drained; exiting");
  return 0;
}

}  // namespace assessq
