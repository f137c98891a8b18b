#include "worker/docker_executor.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/utf8.h"
#include <sys/stat.h>

#include "absl/strings/ascii.h"
#include "common/channel.h"
#include "common/vocabulary.h"
#include "worker/agent_done.h"
#include "worker/agent_steps.h"
#include "worker/hardening.h"
#include "worker/job_fs.h"
#include "worker/outcome.h"
#include "worker/output_reader.h"
#include "worker/state_dir.h"

namespace assessq {
namespace {

using nlohmann::json;

// Follows a running container's output for JobRequest::on_output and for
// the agent-done detector (stdout only) by polling the logs endpoint for a
// bounded tail and handing on what is new since the last poll (by the
// daemon's running byte counts; stdout, then stderr).
class OutputFollower {
 public:
  static constexpr size_t kPollTail = 64 * 1024;
  OutputFollower(docker::DockerClient* d, std::string id, const JobRequest& req,
                 AgentDoneDetector& done)
      : d_(d), id_(std::move(id)), req_(req), done_(done) {}
  void Poll() {
    if (!req_.on_output && !done_.active()) return;
    auto logs = d_->Logs(id_, kPollTail);
    if (!logs.ok()) return;
    Deliver(logs->out, logs->out_total_bytes, out_total_, &done_);
    Deliver(logs->err, logs->err_total_bytes, err_total_, nullptr);
  }

 private:
  void Deliver(const std::string& tail, uint64_t total, uint64_t& seen, AgentDoneDetector* done) {
    if (total == seen) return;
    if (total < seen) seen = 0;  // the log file was rotated: start over
    uint64_t fresh = total - seen;
    seen = total;
    std::string chunk = fresh <= tail.size() ? tail.substr(tail.size() - fresh) : tail;
    int64_t skipped = fresh <= tail.size() ? 0 : static_cast<int64_t>(fresh - tail.size());
    if (done) done->Feed(chunk, skipped);
    if (req_.on_output) req_.on_output(chunk, skipped);
  }
  docker::DockerClient* d_;
  std::string id_;
  const JobRequest& req_;
  AgentDoneDetector& done_;
  uint64_t out_total_ = 0, err_total_ = 0;
};

constexpr char kLabelWorker[] = "assessq.worker";
constexpr char kLabelInstance[] = "assessq.instance";
constexpr char kLabelJob[] = "assessq.job";
constexpr char kLabelToken[] = "assessq.token";

JobOutcome Failed(v1::FailureClass cls, std::string reason) {
  JobOutcome o;
  o.kind = JobOutcome::kFailed;
  o.failure_class = cls;
  o.reason = std::move(reason);
  return o;
}

// The gateway's count of a job's model usage, for the coordinator.
v1::Usage UsageProto(const gateway::UsageSnapshot& s) {
  v1::Usage u;
  for (const auto& m : s.models) {
    if (m.requests == 0 && m.tokens.total() == 0) continue;
    v1::ModelUsage* p = u.add_models();
    p->set_provider(m.provider);
    p->set_model(m.model);
    p->set_requests(m.requests);
    p->set_input_tokens(m.tokens.input);
    p->set_output_tokens(m.tokens.output);
    p->set_cache_write_tokens(m.tokens.cache_write);
    p->set_cache_read_tokens(m.tokens.cache_read);
    p->set_duration_ms(m.duration_ms);
  }
  u.set_budget_exhausted(s.budget_exhausted);
  return u;
}

gateway::BudgetCap BudgetOf(const v1::JobBudget& b) {
  gateway::BudgetCap c;
  c.max_tokens = b.max_tokens();
  c.max_usd = b.max_usd();
  for (const auto& p : b.prices())
    c.prices.push_back({p.provider(), p.model(), p.input(), p.output(), p.cache_write(), p.cache_read()});
  return c;
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
  if (!ValidInstanceId(opt.instance_id))
    return absl::InvalidArgumentError("docker executor: instance id must be 16 hex digits");
  std::unique_ptr<DockerExecutor> e(new DockerExecutor(std::move(opt)));
  auto d = docker::DockerClient::Create(e->opt_.docker_socket);
  if (!d.ok()) return d.status();
  e->docker_ = std::move(*d);
  gateway::GatewayOptions go;
  go.resolver_overrides = e->opt_.egress.resolver_overrides;
  auto g = gateway::Gateway::Create(go);
  if (!g.ok()) return g.status();
  e->gateway_ = std::move(*g);
  return e;
}

absl::StatusOr<gateway::JobConfig> DockerExecutor::GatewayConfig(const JobRequest& req,
                                                                 const std::string& socket) const {
  const JobSpec& spec = req.spec;
  gateway::JobConfig c;
  c.job_id = req.job_id;
  c.socket_path = socket;
  for (bool deny : {false, true}) {
    for (const auto& text : deny ? spec.network.deny : spec.network.allow) {
      auto r = gateway::ParseRule(text);
      if (!r.ok()) return WithFailureClass(r.status(), v1::FAILURE_CLASS_INPUT);  // the profile's
      if (deny) r->deny = true;
      c.policy.rules.push_back(*r);
    }
  }
  for (const auto& text : opt_.egress.forbidden_hosts) {
    auto r = gateway::ParseRule(text);
    if (!r.ok()) return absl::InvalidArgumentError(absl::StrCat("policy.egress: ", r.status().message()));
    c.policy.forbidden.push_back(*r);
  }
  for (const auto& text : opt_.egress.open_ranges) {
    auto r = gateway::ParseCidr(text);
    if (!r.ok()) return absl::InvalidArgumentError(absl::StrCat("policy.egress: ", r.status().message()));
    c.policy.open_ranges.push_back(*r);
  }
  c.limits.max_connections = opt_.egress.max_connections;
  c.limits.max_total_bytes = opt_.egress.max_total_mb << 20;
  c.limits.idle_timeout_ms = opt_.egress.idle_timeout_s * 1000;
  c.limits.max_names_per_wildcard = opt_.egress.max_names_per_wildcard;
  c.budget = BudgetOf(req.budget);
  if (spec.model) {
    struct stat st;
    if (stat(spec.model_secret_file.c_str(), &st) != 0 || (st.st_mode & 077) != 0)
      return absl::FailedPreconditionError(
          "the model provider's key file is missing or not mode 0600");
    auto secret = ReadFileToString(spec.model_secret_file, 64 << 10);
    if (!secret.ok()) return absl::FailedPreconditionError("cannot read the model provider's key");
    gateway::ModelRoute m;
    m.host = spec.model->host;
    m.port = spec.model->port;
    m.tls = spec.model->tls;
    m.ca_file = spec.model->ca_file;
    m.header = spec.model->header;
    m.provider = spec.network.model;
    m.secret = std::string(absl::StripAsciiWhitespace(*secret));
    if (!spec.model->allow.empty()) {
      m.api.clear();
      for (const auto& a : spec.model->allow) {
        auto r = gateway::ParseModelApiRule(a);
        if (!r.ok()) return absl::InvalidArgumentError(absl::StrCat("policy.model_providers: ", r.status().message()));
        m.api.push_back(*r);
      }
    }
    c.model = m;
  }
  return c;
}

absl::Status DockerExecutor::Check() { return docker_->Ping(); }

JobOutcome DockerExecutor::Run(const JobRequest& req, StopSignal& stop) {
  const JobSpec& spec = req.spec;
  const std::string tag = absl::StrCat(req.job_id, "-", req.lease_token);
  auto jobfs = JobFs::Create(opt_.jobs_dir, tag, spec, req.metadata, opt_.netbridge_path);
  if (!jobfs.ok())
    return Failed(FailureClassOf(jobfs.status()).value_or(v1::FAILURE_CLASS_INFRA),
                  absl::StrCat("preparing job files: ", jobfs.status().message()));
  // The job's gateway listens before the container exists and stops with it.
  std::shared_ptr<gateway::JobGateway> gw;
  if (spec.network.mode == "gateway") {
    auto cfg = GatewayConfig(req, (*jobfs)->net_socket());
    if (!cfg.ok())
      return Failed(FailureClassOf(cfg.status()).value_or(v1::FAILURE_CLASS_INFRA),
                    absl::StrCat("egress gateway: ", cfg.status().message()));
    auto g = gateway_->StartJob(*cfg);
    if (!g.ok())
      return Failed(v1::FAILURE_CLASS_INFRA, absl::StrCat("egress gateway: ", g.status().message()));
    gw = *g;
  }
  struct StopGateway {
    std::shared_ptr<gateway::JobGateway> g;
    ~StopGateway() {
      if (g) g->Stop();
    }
  } stop_gateway{gw};
  std::map<std::string, std::string> labels = {{kLabelWorker, opt_.worker_name},
                                               {kLabelInstance, opt_.instance_id},
                                               {kLabelJob, absl::StrCat(req.job_id)},
                                               {kLabelToken, absl::StrCat(req.lease_token)}};
  json body = BuildCreateBody(spec, (*jobfs)->mounts(), labels);
  // Unique on the host: job ids and tokens repeat across coordinators, and
  // worker names may too; the instance id does not.
  std::string name = absl::StrCat("assessq-", SafeName(opt_.worker_name), "-",
                                  opt_.instance_id.substr(0, 8), "-", tag);
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
  if (spec.network.mode == "gateway") {
    // The effective allow list (the profile's rules plus this job's
    // metadata hosts), for `assessctl show` and the report.
    details["allow"] = spec.network.allow;
    if (!spec.network.allow_from_metadata.empty()) {
      details["allow_from_metadata"] = spec.metadata_hosts;
      if (!spec.metadata_refused.empty()) details["allow_from_metadata_refused"] = spec.metadata_refused;
    }
  }
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
  if (!spec.apparmor_profile.empty()) {
    // Engine 20.10 records the AppArmor profile it applied only at start (""
    // on a host without AppArmor, whatever was asked): check it now and end
    // the container (removed by `cleanup`) if it is not the one asked for.
    auto started = docker_->InspectContainer(*id);
    std::vector<std::string> why =
        started.ok() ? VerifyStarted(*started, spec)
                     : std::vector<std::string>{absl::StrCat("docker inspect: ", started.status().message())};
    if (!why.empty()) {
      (void)docker_->KillContainer(*id);
      spdlog::error("[job={}] hardening not in force after start, container killed: {}", req.job_id,
                    absl::StrJoin(why, "; "));
      return Failed(v1::FAILURE_CLASS_INFRA,
                    absl::StrCat("hardening not in force: ", absl::StrJoin(why, "; ")));
    }
  }
  out.started_at_ms = NowMs();
  spdlog::info("[job={}] started container {} ({})", req.job_id, name, spec.image);

  const int64_t soft_at = out.started_at_ms + (spec.limits.timeout_s - spec.limits.grace_s) * 1000;
  const int64_t hard_at = out.started_at_ms + spec.limits.timeout_s * 1000;
  bool termed = false, timed_out = false, cancelled = false;
  int64_t exit_code = -1;
  // done_when: once the agent has reported its final result and its output
  // is in place, it is stopped done_grace_s later (leftover background
  // processes do not hold the job to its deadline).
  AgentDoneDetector done(spec.done_when);
  int64_t done_since = 0;
  bool done_stopped = false;
  bool budget_stopped = false;  // the gateway refused for the job's budget: stopped
  OutputFollower follower(docker_.get(), *id, req, done);
  int64_t next_poll = out.started_at_ms + 1000;
  while (true) {
    auto w = docker_->WaitContainer(*id, absl::Milliseconds(500));
    if (w.ok()) {
      exit_code = *w;
      break;
    }
    if (NowMs() >= next_poll) {
      follower.Poll();
      next_poll = NowMs() + 1000;
      bool is_done = done.done() && OutputFilePresent((*jobfs)->output_dir(), spec.output_file);
      if (!is_done) done_since = 0;
      else if (done_since == 0) done_since = NowMs();
      // -- cost (issue 16): the usage so far for heartbeats; a job at its
      // budget is stopped (its further model requests are refused anyway).
      if (gw) {
        gateway::UsageSnapshot u = gw->usage();
        if (req.on_usage) req.on_usage(UsageProto(u));
        if (u.budget_exhausted && !budget_stopped && !stop.stopped()) {
          budget_stopped = true;
          spdlog::info("[job={}] model budget reached ({}): stopping it", req.job_id, u.budget_why);
          (void)docker_->KillContainer(*id, "SIGKILL");
        }
      }
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
    } else if (done_since > 0 && !done_stopped && !termed &&
               now >= done_since + spec.limits.done_grace_s * 1000) {
      done_stopped = true;
      spdlog::info("[job={}] the agent reported its result {} s ago and its output is in place: "
                   "stopping what it left running", req.job_id, spec.limits.done_grace_s);
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
  follower.Poll();  // the last of it, before the outcome is reported
  if (done_stopped) {
    // The agent was done; the worker's SIGKILL is not the agent's failure.
    details["stopped_after_done_s"] = spec.limits.done_grace_s;
    details["exit_code_after_stop"] = exit_code;
    exit_code = 0;
  }
  out.exit_code = static_cast<int>(exit_code);
  details["duration_ms"] = out.ended_at_ms - out.started_at_ms;
  bool oom = false;
  // dockerd records the kernel's OOM kill from an event that can arrive after
  // the exit: a SIGKILL nobody here sent (137) is looked at again for up to
  // 2 s before it is taken for the agent's own.
  const bool killed_by_us = timed_out || cancelled || budget_stopped || done_stopped;
  const int64_t oom_deadline = NowMs() + 2000;
  while (true) {
    if (auto after = docker_->InspectContainer(*id); after.ok()) {
      const json& st = (*after)["State"];
      oom = st.is_object() && st.value("OOMKilled", false);
    }
    if (oom || killed_by_us || out.exit_code != 137 || NowMs() >= oom_deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  details["oom_killed"] = oom;
  auto logs = docker_->Logs(*id, static_cast<size_t>(spec.limits.log_kb) * 1024);
  if (logs.ok()) {
    out.log_tail = logs->out;
    if (!logs->err.empty()) out.log_tail += absl::StrCat("\n--- stderr ---\n", logs->err);
    out.log_tail = TailUtf8(out.log_tail, static_cast<size_t>(spec.limits.log_kb) * 1024);
    details["log_bytes"] = logs->out_total_bytes + logs->err_total_bytes;
    // The agent's own account of its tool calls, if it printed Claude Code's events.
    if (json steps = ClaudeSteps(logs->out); !steps.is_null()) details["agent_steps"] = std::move(steps);
  }
  gateway::RateSignal rate;
  gateway::UsageSnapshot usage;
  if (gw) {
    gw->Stop();
    usage = gw->usage();
    out.usage = UsageProto(usage);
    if (usage.budget_exhausted) details["budget_refusals"] = usage.budget_refusals;
    if (usage.unmetered > 0) details["unmetered_model_responses"] = usage.unmetered;
    out.netlog_json = gateway::NetlogText(gw->Netlog());
    rate = gw->rate_signal();
    details["denied_requests"] = gw->denied();
    if (rate.count > 0) {
      details["model_api_status"] = rate.status;
      details["model_api_retry_after_ms"] = rate.retry_after_ms;
    }
  }
  out.details_json = details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  ContainerEnd end;
  end.cancelled = cancelled;
  if (cancelled) end.cancel_reason = stop.reason();
  end.oom_killed = oom;
  end.timed_out = timed_out;
  end.exit_code = exit_code;
  end.model_api_count = rate.count;
  end.model_api_status = rate.status;
  end.model_api_retry_after_ms = rate.retry_after_ms;
  end.budget_exhausted = usage.budget_exhausted;
  end.budget_why = usage.budget_why;
  Verdict v = ClassifyFinished(end, spec.limits, [&] {
    return ReadOutputFile((*jobfs)->output_dir(), spec.output_file,
                          static_cast<size_t>(spec.limits.result_kb) * 1024);
  });
  out.kind = v.kind;
  out.failure_class = v.failure_class;
  out.reason = std::move(v.reason);
  out.retry_after_ms = v.retry_after_ms;
  out.result_json = std::move(v.result_json);
  return out;
}

absl::Status DockerExecutor::Reap(const std::function<bool(int64_t job)>& is_live) {
  // Only this instance's containers: another workerd on the same dockerd
  // (another state dir), even one of the same name, is none of our business.
  auto list = docker_->ListContainers({absl::StrCat(kLabelInstance, "=", opt_.instance_id)}, true);
  if (!list.ok()) return list.status();
  int removed = 0;
  for (const auto& c : *list) {
    int64_t job = 0;
    const json& labels = c.contains("Labels") ? c["Labels"] : json::object();
    std::string job_label = labels.is_object() ? labels.value(kLabelJob, "") : "";
    if (absl::SimpleAtoi(job_label, &job) && is_live(job)) continue;
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
    if (!absl::SimpleAtoi(n.substr(0, n.find('-')), &job) || !is_live(job)) {
      JobFs::RemoveStale(it->path().string());
      ++removed;
    }
  }
  if (removed > 0) spdlog::info("reaped {} container(s)/job dir(s) with no live lease", removed);
  return absl::OkStatus();
}

}  // namespace assessq
