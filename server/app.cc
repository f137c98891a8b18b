#include "server/app.h"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include "common/logging.h"
#include "server/auth.h"
#include "server/server.h"

namespace assessq {
namespace {
volatile std::sig_atomic_t g_signal = 0;
void OnSignal(int sig) { g_signal = sig; }
}  // namespace

int CoordinatordMain(int argc, char** argv) {
  CLI::App app{"coordinatord: the assessq job queue and assessment store"};
  ServerOptions so;
  so.db_path = "assessq.db";
  std::string log_format = "text", log_level = "info";
  double lease_seconds = 30;
  app.add_option("--db", so.db_path, "SQLite database file (created if missing)");
  app.add_option("--listen", so.listen, "unix:PATH or HOST:PORT");
  app.add_option("--lease-seconds", lease_seconds, "lease period; heartbeats renew it")
      ->check(CLI::Range(0.2, 3600.0));
  app.add_option("--tls-cert", so.tls_cert, "server certificate (PEM) for TCP");
  app.add_option("--tls-key", so.tls_key, "server private key (PEM)");
  app.add_option("--tls-client-ca", so.tls_client_ca, "verify client certificates with this CA");
  app.add_flag("--require-client-cert", so.require_client_cert, "reject clients without one");
  app.add_flag("--insecure-tcp", so.insecure_tcp, "TCP without TLS (loopback testing only)");
  app.add_option("--log-format", log_format, "text or json");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.add_option("--metrics-listen", so.metrics_listen,
                 "serve Prometheus metrics on HOST:PORT (GET /metrics); empty: off");
  app.add_option("--health-probe-ms", so.health_probe_ms,
                 "how often the database probe behind the gRPC health service runs")
      ->check(CLI::Range(int64_t{50}, int64_t{600000}));
  app.add_option("--prices", so.prices_file,
                 "price table JSON (USD per million tokens per provider and model; see "
                 "deploy/config/prices.example.json); unset: tokens shown as price unknown");
  // Every long option above is also a key of the TOML config file; flags
  // given on the command line win over it; unknown keys are errors.
  app.set_config("--config", "", "TOML config file (keys: the long options without --)");
  app.allow_config_extras(CLI::config_extras_mode::error);

  auto* token = app.add_subcommand("token", "manage API tokens");
  token->require_subcommand(1);
  auto* create = token->add_subcommand("create", "create a token and print it once");
  std::string role = "operator", name;
  create->add_option("--role", role, "operator or worker")->required();
  create->add_option("--name", name, "who the token is for (default: the role)");
  std::string out_file;
  create->add_option("--out", out_file, "write the token to this file (mode 0600)");
  auto* revoke = token->add_subcommand("revoke", "revoke every token with this name");
  std::string revoke_name;
  revoke->add_option("name", revoke_name)->required();

  CLI11_PARSE(app, argc, argv);
  if (auto s = SetupLogging(log_format, log_level); !s.ok()) {
    std::cerr << "coordinatord: " << s.message() << "\n";
    return 2;
  }

  if (create->parsed()) {
    auto r = RoleFromName(role);
    if (!r.ok()) {
      std::cerr << "coordinatord: " << r.status().message() << "\n";
      return 2;
    }
    auto t = CreateToken(so.db_path, *r, name.empty() ? role : name);
    if (!t.ok()) {
      std::cerr << "coordinatord: " << t.status().message() << "\n";
      return 1;
    }
    if (!out_file.empty()) {
      std::FILE* f = std::fopen(out_file.c_str(), "wx");
      if (!f) f = std::fopen(out_file.c_str(), "w");
      if (!f) {
        std::perror(out_file.c_str());
        return 1;
      }
      ::chmod(out_file.c_str(), 0600);
      std::fprintf(f, "%s\n", t->c_str());
      std::fclose(f);
    } else {
      std::cout << *t << "\n";
    }
    return 0;
  }
  if (revoke->parsed()) {
    auto s = RevokeToken(so.db_path, revoke_name);
    if (!s.ok()) {
      std::cerr << "coordinatord: " << s.message() << "\n";
      return 1;
    }
    return 0;
  }

  so.lease_period_ms = static_cast<int64_t>(lease_seconds * 1000);
  auto server = CoordinatorServer::Start(so);
  if (!server.ok()) {
    spdlog::critical("{}", server.status().ToString());
    return 1;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  while (!g_signal) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  spdlog::info("signal {}: shutting down", static_cast<int>(g_signal));
  (*server)->Shutdown();
  server->reset();
  return 0;
}

}  // namespace assessq
