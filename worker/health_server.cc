#include "worker/health_server.h"

#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/address.h"

namespace assessq {

bool WorkerServes(const WorkerState& s) { return !s.draining && !s.drained_by_coordinator; }

absl::StatusOr<std::unique_ptr<HealthServer>> HealthServer::Start(const std::string& listen) {
  auto addr = ParseAddress(listen);
  if (!addr.ok()) return addr.status();
  if (addr->is_unix) {
    std::error_code ec;
    std::filesystem::create_directories(
        std::filesystem::path(addr->unix_path).parent_path(), ec);
    if (std::filesystem::is_socket(addr->unix_path, ec))
      std::filesystem::remove(addr->unix_path, ec);
  }
  std::unique_ptr<HealthServer> h(new HealthServer());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  b.AddListeningPort(addr->grpc_target(), grpc::InsecureServerCredentials(), &h->port_);
  b.RegisterCallbackGenericService(&h->unimplemented_);
  h->server_ = b.BuildAndStart();
  if (!h->server_)
    return absl::UnavailableError(absl::StrCat("cannot serve health on ", listen));
  if (addr->is_unix) chmod(addr->unix_path.c_str(), 0660);
  h->SetServing(true);
  spdlog::info("health service on {}", listen);
  return h;
}

void HealthServer::SetServing(bool serving) {
  if (serving_ == static_cast<int>(serving)) return;
  if (serving_ != -1)
    spdlog::info("health: {}", serving ? "SERVING" : "NOT_SERVING (draining)");
  serving_ = serving;
  server_->GetHealthCheckService()->SetServingStatus(serving);
}

HealthServer::~HealthServer() {
  if (server_) {
    server_->GetHealthCheckService()->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
}

}  // namespace assessq
