#include "worker/worker_loop.h"

#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <chrono>
#include <fstream>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/call_failure.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "common/utf8.h"

namespace assessq {
namespace {

int64_t MemAvailableMb() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb / 1024;
  return -1;
}

int64_t DiskFreeMb(const std::string& path) {
  struct statvfs s;
  if (statvfs(path.c_str(), &s) != 0) return -1;
  return static_cast<int64_t>(s.f_bavail) * static_cast<int64_t>(s.f_frsize) / (1024 * 1024);
}

}  // namespace

Worker::Worker(WorkerOptions opt, std::unique_ptr<Executor> executor)
    : opt_(std::move(opt)), executor_(std::move(executor)), outbox_(opt_.state_dir + "/outbox") {}

Worker::~Worker() {
  stop_threads_ = true;
  if (api_) api_->Stop();
  for (auto* t : {&heartbeat_, &delivery_, &housekeeping_})
    if (t->joinable()) t->join();
}

absl::Status Worker::Start() {
  if (auto s = outbox_.Init(); !s.ok()) return s;
  if (auto s = executor_->Check(); !s.ok())
    return absl::UnavailableError(absl::StrCat("container backend: ", s.message()));
  // Nothing runs yet, so everything labelled as ours is left from a crash.
  if (auto s = executor_->Reap([](int64_t) { return false; }); !s.ok())
    spdlog::warn("reap at start: {}", s.ToString());
  auto api = ApiClient::Create(opt_.api);
  if (!api.ok()) return api.status();
  api_ = std::move(*api);
  {
    // Say Hello with capacity 0 if the host is already short of resources.
    int64_t disk = DiskFreeMb(opt_.state_dir), mem = MemAvailableMb();
    bool healthy = (disk < 0 || disk >= opt_.policy.min_free_disk_mb) &&
                   (mem < 0 || mem >= opt_.policy.min_free_mem_mb);
    absl::MutexLock l(&mu_);
    outbox_dirty_ = true;  // deliver what an earlier run left
    healthy_ = healthy;
    if (!healthy) {
      spdlog::warn("host short of resources ({} MiB disk free, {} MiB memory available); "
                   "taking no leases",
                   disk, mem);
      api_->SetCapacity(0);
      capacity_sent_ = 0;
    }
  }
  api_->Start([this](const v1::CoordinatorMessage& m) { OnMessage(m); });
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });
  delivery_ = std::thread([this] { DeliveryLoop(); });
  housekeeping_ = std::thread([this] { HousekeepingLoop(); });
  spdlog::info("workerd {} started: {} slot(s), state in {}", opt_.api.worker_name,
               opt_.api.slots, opt_.state_dir);
  return absl::OkStatus();
}

int Worker::running() const {
  absl::MutexLock l(&mu_);
  return static_cast<int>(running_.size());
}

WorkerState Worker::state() const {
  WorkerState s;
  s.slots = opt_.api.slots;
  s.draining = draining_;
  s.drained_by_coordinator = drained_by_coordinator_;
  absl::MutexLock l(&mu_);
  s.running = static_cast<int>(running_.size());
  s.host_healthy = healthy_;
  s.capacity = s.draining || !healthy_ ? 0 : opt_.api.slots;
  return s;
}

void Worker::OnMessage(const v1::CoordinatorMessage& m) {
  if (m.has_welcome()) {
    absl::MutexLock l(&mu_);
    lease_period_ms_ = m.welcome().lease_period_ms();
    capacity_sent_ = -1;  // a new session: tell it again if reduced
    return;
  }
  if (m.has_lease()) {
    drained_by_coordinator_ = false;  // it leases to us: undrained
    if (draining_) {
      // Raced with our capacity drop: hand it straight back.
      v1::CompleteRequest r;
      r.set_job_id(m.lease().job_id());
      r.set_token(m.lease().token());
      r.mutable_release()->set_reason("worker is draining");
      Report(r);
      return;
    }
    {
      absl::MutexLock l(&mu_);
      running_[m.lease().token()] = Running{m.lease().job_id(), std::make_shared<StopSignal>()};
    }
    std::thread([this, lease = m.lease()] { RunJob(lease); }).detach();
    return;
  }
  if (m.has_cancel()) {
    absl::MutexLock l(&mu_);
    auto it = running_.find(m.cancel().token());
    if (it != running_.end() && it->second.job == m.cancel().job_id()) {
      spdlog::info("[job={}] cancelled by coordinator: {}", m.cancel().job_id(), m.cancel().reason());
      it->second.stop->Stop(absl::StrCat("cancelled: ", m.cancel().reason()));
    }
    return;
  }
  if (m.has_drain() && m.drain().undrain()) {
    drained_by_coordinator_ = false;
    spdlog::info("coordinator undrained this worker: leases resume");
    return;
  }
  if (m.has_drain()) {
    // The coordinator stops leasing to us itself; undrain resumes it. Running
    // jobs carry on either way.
    drained_by_coordinator_ = true;
    spdlog::info("coordinator asks this worker to drain: {} (no new leases until undrained; "
                 "running jobs carry on)",
                 m.drain().reason());
  }
}

void Worker::RunJob(v1::Lease lease) {
  const int64_t job = lease.job_id();
  std::shared_ptr<StopSignal> stop;
  {
    absl::MutexLock l(&mu_);
    stop = running_[lease.token()].stop;
  }
  if (opt_.observer) opt_.observer->OnJobStarted(job);
  // Tell the coordinator at once that the job is running.
  v1::HeartbeatRequest hb;
  hb.set_job_id(job);
  hb.set_token(lease.token());
  hb.set_running(true);
  if (auto h = api_->Heartbeat(hb); ClassifyCall(h.status()) == CallFailure::kLeaseNotHeld)
    stop->Stop("lease lost before start");

  v1::CompleteRequest r;
  r.set_job_id(job);
  r.set_token(lease.token());
  auto fail = [&](v1::FailureClass c, std::string why) {
    r.mutable_failure()->set_failure_class(c);
    r.mutable_failure()->set_reason(std::move(why));
  };
  JobRequest req;
  req.job_id = job;
  req.lease_token = lease.token();
  req.batch = lease.batch();
  req.dataset_key = lease.dataset_key();
  req.dataset_name = lease.dataset_name();
  req.metadata = lease.metadata();
  // Output as it is written, for `assessctl logs -f` (best effort).
  auto offset = std::make_shared<int64_t>(0);
  req.on_output = [this, job, lease_token = lease.token(), offset](const std::string& chunk,
                                                                    int64_t skipped) {
    *offset += skipped;
    v1::LogAppendRequest a;
    a.set_job_id(job);
    a.set_token(lease_token);
    a.set_offset(*offset);
    a.set_data(chunk);
    *offset += static_cast<int64_t>(chunk.size());
    if (auto s = api_->AppendLog(a); !s.ok())
      spdlog::debug("[job={}] log append: {}", job, s.ToString());
  };
  absl::StatusOr<Profile> profile =
      lease.profile_json().empty() || lease.profile_json() == "{}"
          ? absl::StatusOr<Profile>(opt_.default_profile)
          : ParseProfile(lease.profile_json(), opt_.default_profile);
  bool report = true;
  if (Sha256Hex(lease.metadata()) != lease.metadata_sha256()) {
    fail(v1::FAILURE_CLASS_INFRA, "metadata does not match its SHA-256 (corrupted in transit)");
  } else if (!profile.ok()) {
    fail(v1::FAILURE_CLASS_INPUT, absl::StrCat("batch profile: ", profile.status().message()));
  } else {
    JobVars vars{lease.dataset_key(), lease.dataset_name(),
                 {lease.previous_errors().begin(), lease.previous_errors().end()},
                 lease.metadata()};
    auto spec = DecideJobSpec(*profile, opt_.policy, vars);
    if (!spec.ok()) {
      // Another worker's policy may allow it: infra, retried elsewhere.
      fail(v1::FAILURE_CLASS_INFRA, absl::StrCat("refused by worker policy: ", spec.status().message()));
    } else {
      req.spec = *spec;
      // The job's cap: the lease's (with the coordinator's prices), else
      // the profile's limits.budget (tokens; money needs prices).
      if (lease.has_budget()) {
        req.budget = lease.budget();
      } else {
        req.budget.set_max_tokens(spec->limits.budget.max_tokens);
        req.budget.set_max_usd(spec->limits.budget.max_usd);
      }
      req.on_usage = [this, lease_token = lease.token()](const v1::Usage& u) {
        absl::MutexLock l(&mu_);
        if (auto it = running_.find(lease_token); it != running_.end()) it->second.usage = u;
      };
      JobOutcome o = executor_->Run(req, *stop);
      *r.mutable_usage() = o.usage;
      r.set_exit_code(o.exit_code);
      r.set_log_tail(o.log_tail);
      r.set_details_json(o.details_json);
      r.set_netlog_json(o.netlog_json);
      r.set_started_at_ms(o.started_at_ms);
      r.set_ended_at_ms(o.ended_at_ms);
      switch (o.kind) {
        case JobOutcome::kSucceeded:
          r.set_result_json(o.result_json);
          spdlog::info("[job={}] finished: result {} bytes", job, o.result_json.size());
          break;
        case JobOutcome::kFailed:
          fail(o.failure_class, o.reason);
          r.mutable_failure()->set_retry_after_ms(o.retry_after_ms);
          spdlog::info("[job={}] failed ({}): {}", job, v1::FailureClass_Name(o.failure_class),
                       o.reason);
          break;
        case JobOutcome::kCancelled: {
          absl::MutexLock l(&mu_);
          if (running_[lease.token()].release) {
            r.mutable_release()->set_reason("worker stopped; job handed back");
          } else {
            report = false;  // the lease is gone (cancelled or lost): nothing to report
          }
          spdlog::info("[job={}] stopped: {}", job, o.reason);
          break;
        }
      }
    }
  }
  if (r.ended_at_ms() == 0) r.set_ended_at_ms(NowMs());
  // Proto strings must be UTF-8: container output and daemon messages may not be.
  r.set_log_tail(SanitizeUtf8(r.log_tail()));
  r.set_details_json(SanitizeUtf8(r.details_json()));
  if (r.has_failure()) r.mutable_failure()->set_reason(SanitizeUtf8(r.failure().reason()));
  if (r.has_result_json() && !IsValidUtf8(r.result_json())) {
    r.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_INVALID_OUTPUT);
    r.mutable_failure()->set_reason("/: the output file is not valid UTF-8");
  }
  if (opt_.observer) opt_.observer->OnJobFinished(r, report);
  if (report) Report(r);
  absl::MutexLock l(&mu_);
  running_.erase(lease.token());
}

void Worker::Report(const v1::CompleteRequest& r) {
  if (auto s = outbox_.Put(r); !s.ok()) {
    // Without a durable copy, deliver directly; a crash now loses only this
    // report, and the lease then expires and the job runs again.
    spdlog::error("[job={}] outbox: {}; delivering directly", r.job_id(), s.ToString());
    (void)api_->Complete(r);
    return;
  }
  absl::MutexLock l(&mu_);
  outbox_dirty_ = true;
}

void Worker::DeliveryLoop() {
  int backoff_ms = 100;
  while (!stop_threads_) {
    {
      absl::MutexLock l(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&outbox_dirty_), absl::Milliseconds(backoff_ms));
      outbox_dirty_ = false;
    }
    const DeliveryRound round =
        outbox_.Deliver([this](const v1::CompleteRequest& r) { return api_->Complete(r); });
    const bool failed = round.kept > 0;
    if (failed) {
      backoff_ms = std::min(backoff_ms * 2, 5000);
      absl::MutexLock l(&mu_);
      outbox_dirty_ = true;
    } else {
      backoff_ms = 1000;
    }
  }
}

void Worker::HeartbeatLoop() {
  while (!stop_threads_) {
    int64_t period;
    std::vector<std::tuple<int64_t, int64_t, v1::Usage>> leases;
    {
      absl::MutexLock l(&mu_);
      period = lease_period_ms_;
      for (const auto& [lease_token, r] : running_)
        leases.push_back({r.job, lease_token, r.usage});
    }
    for (const auto& [job, lease_token, usage] : leases) {
      v1::HeartbeatRequest hb;
      hb.set_job_id(job);
      hb.set_token(lease_token);
      hb.set_running(true);
      *hb.mutable_usage() = usage;  // cumulative: the attempt's usage so far
      auto h = api_->Heartbeat(hb, static_cast<int>(std::max<int64_t>(period / 3, 1000)));
      if (ClassifyCall(h.status()) == CallFailure::kLeaseNotHeld) {
        absl::MutexLock l(&mu_);
        auto it = running_.find(lease_token);
        if (it != running_.end() && it->second.job == job) {
          spdlog::warn("[job={}] lease lost ({}); stopping it", job, h.status().message());
          it->second.stop->Stop("lease lost");
        }
      }
    }
    // Sleep in short steps so a new lease period (from Welcome) applies at once.
    int64_t until = NowMs() + std::max<int64_t>(period / 3, 100);
    while (!stop_threads_ && NowMs() < until) {
      {
        absl::MutexLock l(&mu_);
        if (lease_period_ms_ != period) break;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  }
}

int Worker::CapacityNow() {
  if (draining_) return 0;
  absl::MutexLock l(&mu_);
  return healthy_ ? opt_.api.slots : 0;
}

void Worker::HousekeepingLoop() {
  int64_t next_reap = NowMs() + opt_.reap_interval_ms;
  while (!stop_threads_) {
    int64_t disk = DiskFreeMb(opt_.state_dir), mem = MemAvailableMb();
    bool healthy = (disk < 0 || disk >= opt_.policy.min_free_disk_mb) &&
                   (mem < 0 || mem >= opt_.policy.min_free_mem_mb);
    {
      absl::MutexLock l(&mu_);
      if (healthy != healthy_)
        spdlog::warn("host {}: {} MiB disk free, {} MiB memory available", healthy ? "recovered" : "short of resources; taking no leases", disk, mem);
      healthy_ = healthy;
    }
    int cap = CapacityNow();
    bool send;
    {
      absl::MutexLock l(&mu_);
      send = cap != capacity_sent_ && !(capacity_sent_ == -1 && cap == opt_.api.slots);
      capacity_sent_ = cap;
    }
    if (send) api_->SetCapacity(cap);
    if (NowMs() >= next_reap) {
      // Asked per leftover, after it was found: a lease registered meanwhile
      // (before its files exist) counts as live.
      auto is_live = [this](int64_t job) {
        absl::MutexLock l(&mu_);
        for (const auto& [lease_token, r] : running_)
          if (r.job == job) return true;
        return false;
      };
      if (auto s = executor_->Reap(is_live); !s.ok()) spdlog::warn("reap: {}", s.ToString());
      next_reap = NowMs() + opt_.reap_interval_ms;
    }
    for (int i = 0; i < opt_.health_interval_ms / 100 && !stop_threads_; ++i) {
      if (draining_ && CapacityNow() != capacity_sent_) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
}

void Worker::Drain() {
  if (draining_.exchange(true)) return;
  spdlog::info("draining: no new leases; {} job(s) finishing", running());
  if (api_) api_->SetCapacity(0);
  absl::MutexLock l(&mu_);
  capacity_sent_ = 0;
}

void Worker::Abort() {
  Drain();
  absl::MutexLock l(&mu_);
  spdlog::warn("stopping {} running job(s) and handing them back", running_.size());
  for (auto& [lease_token, r] : running_) {
    r.release = true;
    r.stop->Stop("worker shutting down");
  }
}

void Worker::Wait(int64_t outbox_grace_ms) {
  {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](std::map<int64_t, Running>* m) { return m->empty(); }, &running_));
  }
  int64_t until = NowMs() + outbox_grace_ms;
  while (NowMs() < until && !outbox_.Pending().empty()) absl::SleepFor(absl::Milliseconds(100));
}

}  // namespace assessq
