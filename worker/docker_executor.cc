#include "worker/docker_executor.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/utf8.h"
#include "worker/hardening.h"
#include "worker/job_fs.h"
#include "worker/output_reader.h"

namespace assessq {
namespace {

using nlohmann::json;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr char kLabelWorker[] = "assessq.worker";
constexpr char kLabelJob[] = "assessq.job";
constexpr char kLabelToken[] = "assessq.token";

JobOutcome Failed(v1::FailureClass cls, std::string reason) {
  JobOutcome o;
  o.kind = JobOutcome::kFailed;
  o.failure_class = cls;
  o.reason = std::move(reason);
  return o;
}

// Docker names allow [a-zA-Z0-9_.-]; the worker name may hold anything else.
std::string SafeName(const std::string& s) {
  std::string out;
  for (char c : s) out += (isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return out.substr(0, 60);
}

}  // namespace

absl::StatusOr<std::unique_ptr<DockerExecutor>> DockerExecutor::Create(
    DockerExecutorOptions opt) {
  std::unique_ptr<DockerExecutor> e(new DockerExecutor(std::move(opt)));
  auto d = docker::DockerClient::Create(e->opt_.docker_socket);
  if (!d.ok()) return d.status();
  e->docker_ = std::move(*d);
  return e;
}

absl::Status DockerExecutor::Check() { return docker_->Ping(); }

JobOutcome DockerExecutor::Run(const JobRequest& req, StopSignal& stop) {
  const JobSpec& spec = req.spec;
  const std::string tag = absl::StrCat(req.job_id, "-", req.token);
  auto jobfs = JobFs::Create(opt_.jobs_dir, tag, spec, req.metadata);
  if (!jobfs.ok())
    return Failed(jobfs.status().code() == absl::StatusCode::kFailedPrecondition
                      ? v1::FAILURE_CLASS_INPUT
                      : v1::FAILURE_CLASS_INFRA,
                  absl::StrCat("preparing job files: ", jobfs.status().message()));
  std::map<std::string, std::string> labels = {{kLabelWorker, opt_.worker_name},
                                               {kLabelJob, absl::StrCat(req.job_id)},
                                               {kLabelToken, absl::StrCat(req.token)}};
  json body = BuildCreateBody(spec, (*jobfs)->mounts(), labels);
  std::string name = absl::StrCat("assessq-", SafeName(opt_.worker_name), "-", tag);
  (void)docker_->RemoveContainer(name, true, true);  // a leftover of a crashed attempt
  auto id = docker_->CreateContainer(name, body);
  if (!id.ok())
    return Failed(v1::FAILURE_CLASS_INFRA, absl::StrCat("docker create: ", id.status().message()));
  struct Cleanup {
    docker::DockerClient* d;
    std::string id;
    ~Cleanup() {
      if (auto s = d->RemoveContainer(id, true, true); !s.ok() && !absl::IsNotFound(s))
        spdlog::warn("remove container {}: {}", id, s.ToString());
    }
  } cleanup{docker_.get(), *id};

  JobOutcome out;
  json details = {{"container", name}, {"image", spec.image}};
  // Verify, don't trust: the daemon must have recorded every setting.
  auto inspect = docker_->InspectContainer(*id);
  if (!inspect.ok())
    return Failed(v1::FAILURE_CLASS_INFRA, absl::StrCat("docker inspect: ", inspect.status().message()));
  std::vector<std::string> mismatch = VerifyInspect(*inspect, spec, (*jobfs)->mounts());
  if (!mismatch.empty()) {
    spdlog::error("[job={}] hardening not in force, refusing to start: {}", req.job_id,
                  absl::StrJoin(mismatch, "; "));
    return Failed(v1::FAILURE_CLASS_INFRA,
                  absl::StrCat("hardening not in force: ", absl::StrJoin(mismatch, "; ")));
  }
  if (inspect->contains("Image")) details["image_id"] = (*inspect)["Image"];
  if (stop.stopped()) {
    out.kind = JobOutcome::kCancelled;
    out.reason = stop.reason();
    return out;
  }
  if (auto s = docker_->StartContainer(*id); !s.ok())
    return Failed(v1::FAILURE_CLASS_INFRA, absl::StrCat("docker start: ", s.message()));
  out.started_at_ms = NowMs();
  spdlog::info("[job={}] started container {} ({})", req.job_id, name, spec.image);

  const int64_t soft_at = out.started_at_ms + (spec.limits.timeout_s - spec.limits.grace_s) * 1000;
  const int64_t hard_at = out.started_at_ms + spec.limits.timeout_s * 1000;
  bool termed = false, timed_out = false, cancelled = false;
  int64_t exit_code = -1;
  while (true) {
    auto w = docker_->WaitContainer(*id, absl::Milliseconds(500));
    if (w.ok()) {
      exit_code = *w;
      break;
    }
    if (!absl::IsDeadlineExceeded(w.status())) {
      // The daemon went away or the container vanished: infra.
      out = Failed(v1::FAILURE_CLASS_INFRA, absl::StrCat("docker wait: ", w.status().message()));
      out.started_at_ms = NowMs();
      return out;
    }
    int64_t now = NowMs();
    if (stop.stopped() && !cancelled) {
      cancelled = true;
      (void)docker_->KillContainer(*id, "SIGKILL");
    } else if (now >= hard_at && !cancelled) {
      timed_out = true;
      (void)docker_->KillContainer(*id, "SIGKILL");
    } else if (now >= soft_at && !termed) {
      termed = true;
      timed_out = true;
      spdlog::info("[job={}] soft deadline: SIGTERM", req.job_id);
      (void)docker_->KillContainer(*id, "SIGTERM");
    }
  }
  out.ended_at_ms = NowMs();
  out.exit_code = static_cast<int>(exit_code);
  details["duration_ms"] = out.ended_at_ms - out.started_at_ms;
  bool oom = false;
  if (auto after = docker_->InspectContainer(*id); after.ok()) {
    const json& st = (*after)["State"];
    oom = st.is_object() && st.value("OOMKilled", false);
  }
  details["oom_killed"] = oom;
  auto logs = docker_->Logs(*id, static_cast<size_t>(spec.limits.log_kb) * 1024);
  if (logs.ok()) {
    out.log_tail = logs->out;
    if (!logs->err.empty()) out.log_tail += absl::StrCat("\n--- stderr ---\n", logs->err);
    out.log_tail = TailUtf8(out.log_tail, static_cast<size_t>(spec.limits.log_kb) * 1024);
    details["log_bytes"] = logs->out_total_bytes + logs->err_total_bytes;
  }
  out.details_json = details.dump();

  if (cancelled) {
    out.kind = JobOutcome::kCancelled;
    out.reason = stop.reason();
    return out;
  }
  auto fail = [&](v1::FailureClass c, std::string why) {
    out.kind = JobOutcome::kFailed;
    out.failure_class = c;
    out.reason = std::move(why);
    return out;
  };
  if (oom)
    return fail(v1::FAILURE_CLASS_INFRA,
                absl::StrCat("out of memory: killed at the ", spec.limits.memory_mb, " MiB limit"));
  if (timed_out)
    return fail(v1::FAILURE_CLASS_AGENT,
                absl::StrCat("timeout: still running at the ",
                             spec.limits.timeout_s - spec.limits.grace_s,
                             " s soft deadline (SIGTERM), hard deadline ", spec.limits.timeout_s,
                             " s (SIGKILL); exit code ", exit_code));
  if (exit_code != 0)
    return fail(v1::FAILURE_CLASS_AGENT, absl::StrCat("agent exited with code ", exit_code));
  auto result = ReadOutputFile((*jobfs)->output_dir(), spec.output_file,
                               static_cast<size_t>(spec.limits.result_kb) * 1024);
  if (!result.ok()) {
    if (absl::IsNotFound(result.status()))
      return fail(v1::FAILURE_CLASS_AGENT,
                  absl::StrCat("no output: ", result.status().message()));
    if (absl::IsPermissionDenied(result.status()) || absl::IsOutOfRange(result.status()))
      return fail(v1::FAILURE_CLASS_INVALID_OUTPUT, std::string(result.status().message()));
    return fail(v1::FAILURE_CLASS_INFRA, std::string(result.status().message()));
  }
  out.kind = JobOutcome::kSucceeded;
  out.result_json = std::move(*result);
  return out;
}

absl::Status DockerExecutor::Reap(const std::set<int64_t>& live_jobs) {
  auto list = docker_->ListContainers({absl::StrCat(kLabelWorker, "=", opt_.worker_name)}, true);
  if (!list.ok()) return list.status();
  int removed = 0;
  for (const auto& c : *list) {
    int64_t job = 0;
    const json& labels = c.contains("Labels") ? c["Labels"] : json::object();
    std::string job_label = labels.is_object() ? labels.value(kLabelJob, "") : "";
    if (absl::SimpleAtoi(job_label, &job) && live_jobs.count(job)) continue;
    std::string id = c.value("Id", "");
    if (id.empty()) continue;
    if (auto s = docker_->RemoveContainer(id, true, true); s.ok() || absl::IsNotFound(s)) ++removed;
  }
  // Job directories whose job is not live (their tmpfs are unmounted first).
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(opt_.jobs_dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string n = it->path().filename().string();
    int64_t job = 0;
    if (!absl::SimpleAtoi(n.substr(0, n.find('-')), &job) || !live_jobs.count(job)) {
      JobFs::RemoveStale(it->path().string());
      ++removed;
    }
  }
  if (removed > 0) spdlog::info("reaped {} container(s)/job dir(s) with no live lease", removed);
  return absl::OkStatus();
}

}  // namespace assessq
