#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/address.h"
#include "common/channel.h"
#include "server/result_checks.h"

namespace assessq {

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(ServerOptions opt) {
  std::unique_ptr<CoordinatorServer> s(new CoordinatorServer());
  s->opt_ = opt;
  auto addr = ParseAddress(opt.listen);
  if (!addr.ok()) return addr.status();

  // costsrv: the price table, checked before anything starts.
  PriceTable prices;
  if (!opt.prices_file.empty()) {
    auto text = ReadFileToString(opt.prices_file);
    if (!text.ok()) return text.status();
    auto t = PriceTable::Parse(*text, opt.prices_file);
    if (!t.ok()) return t.status();
    prices = std::move(*t);
  }
  auto usage = std::make_shared<UsageStore>(std::move(prices));
  s->queries_ = std::make_unique<Queries>(opt.db_path, nullptr);
  s->queries_->set_usage(usage);
  s->metrics_ = std::make_unique<CoordinatorMetrics>(s->queries_.get());
  EngineOptions eo;
  eo.db_path = opt.db_path;
  eo.lease_period_ms = opt.lease_period_ms;
  eo.observer = s->metrics_.get();
  eo.usage = usage;
  eo.validator = opt.validator;
  if (!eo.validator) {
    auto c = MakeResultChecker();
    if (!c.ok()) return c.status();
    eo.checker = *c;
  }
  auto engine = Engine::Open(eo);
  if (!engine.ok()) return engine.status();
  s->engine_ = std::move(*engine);
  // The engine has created the file: the probe remembers which file it is.
  auto probe = DbProbe::Create(opt.db_path);
  if (!probe.ok()) return probe.status();
  s->auth_ = std::make_unique<Authenticator>(opt.db_path, nullptr);
  s->operator_service_ =
      std::make_unique<OperatorService>(s->engine_.get(), s->queries_.get(), s->auth_.get());
  s->worker_service_ =
      std::make_unique<WorkerService>(s->engine_.get(), s->queries_.get(), s->auth_.get());

  std::shared_ptr<grpc::ServerCredentials> creds;
  if (addr->is_unix) {
    std::error_code ec;
    std::filesystem::path dir = std::filesystem::path(addr->unix_path).parent_path();
    std::filesystem::create_directories(dir, ec);
    if (std::filesystem::is_socket(addr->unix_path, ec))
      std::filesystem::remove(addr->unix_path, ec);
    creds = grpc::InsecureServerCredentials();  // unix socket: file permissions + tokens
  } else if (opt.require_client_cert && opt.tls_client_ca.empty()) {
    return absl::InvalidArgumentError(
        "--require-client-cert needs --tls-client-ca (the CA that signs client certificates)");
  } else if (!opt.tls_cert.empty()) {
    auto cert = ReadFileToString(opt.tls_cert);
    if (!cert.ok()) return cert.status();
    auto key = ReadFileToString(opt.tls_key);
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions so(
        opt.tls_client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
        : opt.require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                  : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    if (!opt.tls_client_ca.empty()) {
      auto ca = ReadFileToString(opt.tls_client_ca);
      if (!ca.ok()) return ca.status();
      so.pem_root_certs = *ca;
    }
    so.pem_key_cert_pairs.push_back({*key, *cert});
    creds = grpc::SslServerCredentials(so);
  } else if (opt.insecure_tcp) {
    // Plaintext bearer tokens must never cross a network: loopback only.
    std::string host = addr->host_port.substr(0, addr->host_port.rfind(':'));
    if (host != "127.0.0.1" && host != "localhost" && host != "[::1]" &&
        host.rfind("127.", 0) != 0)
      return absl::InvalidArgumentError(absl::StrCat(
          "--insecure-tcp listens on loopback only (127.0.0.1, [::1], localhost), not '", host,
          "'; use --tls-cert/--tls-key for other addresses"));
    creds = grpc::InsecureServerCredentials();
  } else {
    return absl::InvalidArgumentError(
        "a TCP listener needs --tls-cert and --tls-key (or --insecure-tcp for loopback tests)");
  }

  // Metrics first: a bad or busy address stops the start before gRPC listens.
  if (!opt.metrics_listen.empty()) {
    auto m = MetricsHttp::Start(opt.metrics_listen, s->metrics_->collectables());
    if (!m.ok()) return m.status();
    s->metrics_http_ = std::move(*m);
    spdlog::info("metrics on http://{}/metrics (port {})", opt.metrics_listen,
                 s->metrics_http_->port());
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder b;
  b.AddListeningPort(addr->grpc_target(), creds, &s->port_);
  b.RegisterService(s->operator_service_.get());
  b.RegisterService(s->worker_service_.get());
  b.SetMaxReceiveMessageSize(kMaxMessageBytes);
  b.SetMaxSendMessageSize(kMaxMessageBytes);
  for (const auto& [name, value] : SharedKeepaliveArgs()) b.AddChannelArgument(name, value);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  s->server_ = b.BuildAndStart();
  if (!s->server_)
    return absl::UnavailableError(absl::StrCat("cannot listen on ", opt.listen));
  if (addr->is_unix) chmod(addr->unix_path.c_str(), 0660);

  // Health: NOT_SERVING while the database is not there, not readable or
  // not the file we opened (a fresh connection each time; see db_probe.h).
  auto* health = s->server_->GetHealthCheckService();
  // Named too, so a probe may ask about one service; all follow the database.
  for (const char* svc :
       {v1::OperatorService::service_full_name(), v1::WorkerService::service_full_name()})
    health->SetServingStatus(svc, true);
  s->health_ = std::thread([p = s.get(), health, probe = *probe] {
    bool last = true;
    while (!p->stopping_) {
      absl::Status st = probe.Check();
      bool ok = st.ok();
      if (ok != last) {
        if (ok)
          spdlog::info("database answers again: health SERVING");
        else
          spdlog::error("database unavailable, health NOT_SERVING: {}", st.ToString());
      }
      last = ok;
      health->SetServingStatus(ok);
      p->metrics_->SetDatabaseUp(ok);
      for (int64_t waited = 0; waited < p->opt_.health_probe_ms && !p->stopping_; waited += 50)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::string where = opt.listen;
  if (!addr->is_unix)  // the port it really got (port 0 picks a free one)
    where = absl::StrCat(addr->host_port.substr(0, addr->host_port.rfind(':')), ":", s->port_);
  spdlog::info("coordinatord listening on {} (db {}, lease {} ms)", where, opt.db_path,
               opt.lease_period_ms);
  return s;
}

void CoordinatorServer::Wait() { server_->Wait(); }

void CoordinatorServer::Shutdown() {
  if (stopping_.exchange(true)) return;
  if (server_) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  if (health_.joinable()) health_.join();
  metrics_http_.reset();  // no scrape may run past this point
}

CoordinatorServer::~CoordinatorServer() {
  Shutdown();
  server_.reset();
  engine_.reset();
  metrics_.reset();
  queries_.reset();
}

}  // namespace assessq
