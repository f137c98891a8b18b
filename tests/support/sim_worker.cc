// assessq-simworker: a simulated worker for the durability test, the
// benchmark and the report test. It speaks the real worker API through
// worker/api_client: takes leases, heartbeats them, "works" for --work-ms,
// then completes each with a small assessment JSON, retrying the completion
// across coordinator restarts (an in-memory outbox) until it is acknowledged
// or refused as stale. Every acknowledged completion is appended to --ack-log
// as "JOB TOKEN\n" before the next one starts, so a test can check that each
// acknowledged result was stored. With --assess the result is instead the
// offline assessor's real assessment of the leased metadata (assessor/
// rules.h), sent with provenance details like workerd's; --fail-first-every,
// --overclaim-every, --netlog and --deny-every vary the attempts, trust flags
// and (simulated) gateway logs deterministically by job id.
#include <CLI/CLI.hpp>
#include <curl/curl.h>
#include <strings.h>

#include <cstdlib>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <pthread.h>
#include <signal.h>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "assessor/rules.h"
#include "common/channel.h"
#include "common/logging.h"
#include "tests/support/sim_worker_core.h"
#include "tests/support/valid_assessment.h"
#include "worker/api_client.h"

using namespace assessq;

namespace {

// A result that passes the built-in assessment contract, its summary padded
// with Arabic text to about `bytes` bytes.
std::string ValidAssessment(const std::string& name, int bytes) {
  nlohmann::json a = aqtest::ValidAssessmentJson({.name = name,
                                                  .summary = "تقييم محاكى لمجموعة البيانات.",
                                                  .strength = "وصف واضح",
                                                  .weakness = "تقييم محاكى",
                                                  .use = "اختبار النظام",
                                                  .matches = true});
  std::string summary = a["الملخص"];
  while (static_cast<int>(a.dump().size() + summary.size() - a["الملخص"].get<std::string>().size()) < bytes)
    summary += " نص إضافي للحجم.";
  a["الملخص"] = summary;
  return a.dump();
}

// --model-url: each attempt "calls the model" with one POST to a stand-in
// provider, the way an agent's request leaves through the gateway: 2xx is a
// success, 429/529 a model_api failure carrying the provider's retry-after,
// anything else an agent failure.
struct ModelReply {
  long status = 0;
  int64_t retry_after_ms = 0;
  std::string error;
};

size_t HeaderLine(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  auto* r = static_cast<ModelReply*>(out);
  if (line.size() > 12 && strncasecmp(line.c_str(), "retry-after:", 12) == 0)
    r->retry_after_ms = static_cast<int64_t>(std::atof(line.c_str() + 12) * 1000);
  return size * n;
}

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

ModelReply CallModel(const std::string& url, const v1::Lease& lease) {
  ModelReply r;
  CURL* c = curl_easy_init();
  std::string body = nlohmann::json{{"job", lease.job_id()}, {"token", lease.token()}}.dump();
  curl_slist* h = curl_slist_append(nullptr, "content-type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, HeaderLine);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) r.error = curl_easy_strerror(rc);
  else curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r;
}

// --assess and its variations, all keyed on the job id so runs repeat.
struct AssessMode {
  bool on = false;
  int fail_first_every = 0;  // first attempt of every Nth job fails (agent)
  int overclaim_every = 0;   // every Nth job claims the data matches unseen
  bool netlog = false;       // simulated gateway log: GETs to the sources' hosts
  int deny_every = 0;        // plus one denied request on every Nth job
};

bool Every(int64_t id, int n) { return n > 0 && id % n == 0; }

std::string HostOf(const std::string& url) {
  auto p = url.find("://");
  if (p == std::string::npos) return "";
  auto start = p + 3, end = url.find_first_of("/?#:", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// Fills c with the offline assessor's assessment of the lease's metadata (or
// a failure), plus details and, with --netlog, a simulated gateway log.
void Assess(const v1::Lease& lease, const AssessMode& m, int64_t started_ms, v1::CompleteRequest& c) {
  const int64_t id = lease.job_id();
  auto profile = nlohmann::json::parse(lease.profile_json(), nullptr, false);
  std::string image = profile.is_object() && profile.value("image", "") != ""
                          ? profile.value("image", "")
                          : "assessq-offline-assessor:1";
  const int64_t ended_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  nlohmann::json details = {{"container", "assessq-sim-" + std::to_string(id) + "-" +
                                              std::to_string(lease.attempt_number())},
                            {"image", image},
                            {"image_id", "sha256:sim0000000000000000000000000000000000000000000000000000000000"},
                            {"duration_ms", ended_ms - started_ms},
                            {"oom_killed", false},
                            {"log_bytes", 0}};
  c.set_started_at_ms(started_ms);
  c.set_ended_at_ms(ended_ms);
  if (lease.attempt_number() == 1 && Every(id, m.fail_first_every)) {
    c.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_AGENT);
    c.mutable_failure()->set_reason("simulated agent failure on the first attempt");
    c.set_exit_code(1);
    c.set_details_json(details.dump());
    return;
  }
  std::string error;
  std::string text(lease.metadata().begin(), lease.metadata().end());
  auto a = offline::AssessMetadataText(text, &error);
  if (!a) {
    c.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_AGENT);
    c.mutable_failure()->set_reason("assessor: " + error);
    c.set_exit_code(2);
    c.set_details_json(details.dump());
    return;
  }
  if (Every(id, m.overclaim_every))
    (*a)["فحص_البيانات"]["البيانات_تطابق_الوصف"] = true;  // trust flag: unseen match
  nlohmann::json netlog = nlohmann::json::array();
  if (m.netlog) {
    int64_t ts = started_ms + 5;
    for (const auto& url : (*a)["المصادر_المفتوحة"]) {
      std::string host = HostOf(url.get<std::string>());
      if (host.empty()) continue;
      netlog.push_back({{"ts", ts++}, {"job", id}, {"method", "GET"}, {"host", host},
                        {"port", 443}, {"address", "192.0.2.10:443"}, {"rule", "sim-allow"},
                        {"decision", "allow"}, {"reason", "allowed by rule sim-allow"},
                        {"bytes_up", 420}, {"bytes_down", 18000 + id % 97 * 100},
                        {"duration_ms", 12}});
    }
    if (Every(id, m.deny_every))
      netlog.push_back({{"ts", ts++}, {"job", id}, {"method", "CONNECT"},
                        {"host", "telemetry.example.invalid"}, {"port", 443},
                        {"decision", "deny"}, {"reason", "host not in the allowlist"},
                        {"bytes_up", 0}, {"bytes_down", 0}, {"duration_ms", 0}});
    int denied = 0;
    for (const auto& e : netlog) denied += e["decision"] == "deny";
    details["denied_requests"] = denied;
    c.set_netlog_json(netlog.dump());
  }
  c.set_details_json(details.dump());
  c.set_exit_code(0);
  c.set_result_json(a->dump());
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"simulated assessq worker"};
  std::string address, token_file, name = "sim", ack_log;
  int slots = 2, work_ms = 20, result_bytes = 200;
  double fail_rate = 0.0;
  app.add_option("--coordinator", address)->required();
  app.add_option("--token-file", token_file)->required();
  app.add_option("--name", name);
  app.add_option("--slots", slots);
  app.add_option("--work-ms", work_ms);
  app.add_option("--result-bytes", result_bytes);
  app.add_option("--fail-rate", fail_rate, "fraction of attempts that fail as 'agent'");
  app.add_option("--ack-log", ack_log);
  std::string model_url;
  app.add_option("--model-url", model_url,
                 "each attempt POSTs here first: 2xx succeeds, 429/529 fails as model_api "
                 "with the reply's retry-after");
  AssessMode assess;
  app.add_flag("--assess", assess.on, "complete with the offline assessor's assessment of the metadata");
  app.add_option("--fail-first-every", assess.fail_first_every,
                 "with --assess: the first attempt of every Nth job fails as 'agent'");
  app.add_option("--overclaim-every", assess.overclaim_every,
                 "with --assess: every Nth job claims the data matches its description");
  app.add_flag("--netlog", assess.netlog,
               "with --assess: report a simulated gateway log (GETs to the sources' hosts)");
  app.add_option("--deny-every", assess.deny_every,
                 "with --netlog: one denied request on every Nth job");
  CLI11_PARSE(app, argc, argv);
  (void)SetupLogging("text", "warn");
  // SIGTERM/SIGINT are blocked here, before any thread starts (threads
  // inherit the mask), and taken with sigwait below: the stop is the signal.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto token = LoadToken(token_file);
  if (!token.ok()) {
    std::fprintf(stderr, "%s\n", std::string(token.status().message()).c_str());
    return 2;
  }
  auto client = ApiClient::Create({address, *token, {}, name, slots});
  if (!client.ok()) return 2;
  std::FILE* ack = ack_log.empty() ? nullptr : std::fopen(ack_log.c_str(), "a");

  std::mutex ack_mu;
  std::vector<std::mt19937> rngs;
  for (int t = 0; t < slots; ++t) rngs.emplace_back(static_cast<unsigned>(getpid() * 31 + t));
  aqtest::SimWorkerHooks hooks;
  hooks.make_result = [&](int slot, const v1::Lease& lease, v1::CompleteRequest& c) {
    const int64_t started_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
    if (work_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(work_ms));
    std::uniform_real_distribution<double> coin(0, 1);
    ModelReply model;
    if (!model_url.empty()) model = CallModel(model_url, lease);
    if (!model_url.empty() && (model.status == 429 || model.status == 529)) {
      c.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_MODEL_API);
      c.mutable_failure()->set_reason("model API answered HTTP " + std::to_string(model.status));
      c.mutable_failure()->set_retry_after_ms(model.retry_after_ms);
      c.set_exit_code(1);
    } else if (!model_url.empty() && (model.status < 200 || model.status > 299)) {
      c.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_AGENT);
      c.mutable_failure()->set_reason("model call failed: " +
                                      (model.error.empty() ? "HTTP " + std::to_string(model.status)
                                                           : model.error));
      c.set_exit_code(1);
    } else if (assess.on) {
      Assess(lease, assess, started_ms, c);
    } else if (coin(rngs[slot]) < fail_rate) {
      c.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_AGENT);
      c.mutable_failure()->set_reason("simulated agent failure");
      c.set_exit_code(1);
    } else {
      c.set_result_json(ValidAssessment(lease.dataset_name(), result_bytes));
    }
  };
  hooks.on_complete = [&](const v1::CompleteRequest& c,
                          const absl::StatusOr<v1::CompleteResponse>& r) {
    if (r.ok() && ack && c.has_result_json() && !r->duplicate()) {
      std::lock_guard<std::mutex> l(ack_mu);
      std::fprintf(ack, "%lld %lld %s\n", static_cast<long long>(c.job_id()),
                   static_cast<long long>(c.token()),
                   r->job_state() == v1::JOB_STATE_SUCCEEDED ? "stored" : "other");
      std::fflush(ack);
    }
  };
  aqtest::SimWorkerCore worker(std::move(*client),
                               {.slots = slots, .retry_complete = true, .complete_timeout_ms = 5000},
                               std::move(hooks));
  worker.Start();
  int sig = 0;
  sigwait(&stop_signals, &sig);
  worker.Stop();
  if (ack) std::fclose(ack);
  return 0;
}
