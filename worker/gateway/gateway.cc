#include "worker/gateway/gateway.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <asio.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "worker/gateway/connection.h"

namespace assessq::gateway {
namespace {

using asio::awaitable;
using asio::use_awaitable;
using local = asio::local::stream_protocol;

}  // namespace

// A job's listener: accepts the job's connections (at most max_connections
// at once) and serves each as a Connection; Stop closes the listener and
// every socket and waits for the connections to log.
class JobGatewayImpl final : public JobGateway, public std::enable_shared_from_this<JobGatewayImpl> {
 public:
  JobGatewayImpl(asio::io_context& io, JobConfig cfg, const GatewayOptions& gopt)
      : io_(io), job_(std::make_shared<JobState>(std::move(cfg), gopt)), acceptor_(io) {}

  absl::Status Listen() {
    const std::string& path = job_->cfg.socket_path;
    std::error_code ec;
    std::filesystem::remove(path, ec);
    acceptor_.open(local(), ec);
    if (!ec) acceptor_.bind(local::endpoint(path), ec);
    if (!ec) acceptor_.listen(64, ec);
    if (ec) return absl::InternalError(absl::StrCat("gateway listen ", path, ": ", ec.message()));
    // The container's user must connect; the directory around it is private
    // to this job's mount.
    chmod(path.c_str(), 0666);
    asio::co_spawn(io_, [self = shared_from_this()]() { return self->AcceptLoop(); }, asio::detached);
    return absl::OkStatus();
  }

  void Stop() override {
    asio::post(io_, [self = shared_from_this()] {
      std::error_code ec;
      self->stopped_ = true;
      self->acceptor_.close(ec);
      self->job_->sockets.CloseAll();
      self->job_->netlog.FlushSuppressed();
      std::lock_guard<std::mutex> l(self->mu_);
      self->stop_ran_ = true;
      self->idle_cv_.notify_all();
    });
    // Wait (bounded) until every connection has ended and logged, so the
    // network log read next has the connections that were still open (a
    // tunnel held to the end would otherwise be missing from it).
    if (io_.get_executor().running_in_this_thread()) return;
    std::unique_lock<std::mutex> l(mu_);
    idle_cv_.wait_for(l, std::chrono::seconds(3), [&] { return stop_ran_ && active_ == 0; });
  }

  nlohmann::json Netlog() override { return job_->netlog.Entries(); }
  RateSignal rate_signal() override {
    std::lock_guard<std::mutex> l(job_->mu);
    return job_->rate;
  }
  int denied() override { return job_->netlog.denied(); }
  UsageSnapshot usage() override { return job_->meter.Snapshot(); }

 private:
  awaitable<void> AcceptLoop() {
    while (!stopped_) {
      std::error_code ec;
      local::socket s = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (stopped_ || ec == asio::error::operation_aborted) co_return;
        // Out of descriptors (or another error that leaves the connection
        // queued): do not spin on the io thread every job shares.
        asio::steady_timer t(io_, std::chrono::milliseconds(50));
        co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      auto sock = std::make_shared<local::socket>(std::move(s));
      asio::co_spawn(io_, [self = shared_from_this(), sock]() { return self->Serve(sock); }, asio::detached);
    }
  }

  awaitable<void> Serve(std::shared_ptr<local::socket> c) {
    job_->sockets.Track(c);
    bool too_many;
    {
      std::lock_guard<std::mutex> l(mu_);
      too_many = active_ >= job_->cfg.limits.max_connections;
      ++active_;
    }
    struct Leave {
      JobGatewayImpl* g;
      ~Leave() {
        std::lock_guard<std::mutex> l(g->mu_);
        --g->active_;
        g->idle_cv_.notify_all();
      }
    } leave{this};
    Connection conn(job_, c);
    if (too_many) co_return co_await conn.RefuseTooMany();
    co_await conn.Serve();
  }

  asio::io_context& io_;
  std::shared_ptr<JobState> job_;
  local::acceptor acceptor_;
  std::atomic<bool> stopped_{false};
  std::mutex mu_;
  int active_ = 0;                   // guarded by mu_
  bool stop_ran_ = false;            // guarded by mu_
  std::condition_variable idle_cv_;  // active_ or stop_ran_ changed
};

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(GatewayOptions opt) {
  // A relay's two directions and Stop share sockets without a strand: with
  // two io threads one could close a descriptor another is about to splice
  // into (and a reused number would reach another job's socket).
  if (opt.threads != 1)
    return absl::InvalidArgumentError("gateway: exactly one io thread is supported");
  std::unique_ptr<Gateway> g(new Gateway());
  g->opt_ = std::move(opt);
  g->io_ = std::make_unique<asio::io_context>();
  auto guard = std::make_shared<asio::executor_work_guard<asio::io_context::executor_type>>(
      g->io_->get_executor());
  for (int i = 0; i < std::max(1, g->opt_.threads); ++i)
    g->threads_.emplace_back([io = g->io_.get(), guard] {
      // splice(2) into a socket whose peer has gone raises SIGPIPE (there is
      // no MSG_NOSIGNAL for it), which would end workerd: blocked on the io
      // threads, it only makes splice fail with EPIPE (see DrainSigpipe in relay.cc).
      sigset_t pipe_only;
      sigemptyset(&pipe_only);
      sigaddset(&pipe_only, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
      io->run();
    });
  return g;
}

Gateway::~Gateway() {
  io_->stop();
  for (auto& t : threads_) t.join();
}

absl::StatusOr<std::shared_ptr<JobGateway>> Gateway::StartJob(JobConfig cfg) {
  auto j = std::make_shared<JobGatewayImpl>(*io_, std::move(cfg), opt_);
  if (auto s = j->Listen(); !s.ok()) return s;
  return std::static_pointer_cast<JobGateway>(j);
}

}  // namespace assessq::gateway
