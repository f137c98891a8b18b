// assessq-simworker: a simulated worker for the durability test and the
// benchmark. It speaks the real worker API through worker/api_client: takes
// leases, heartbeats them, "works" for --work-ms, then completes each with a
// small assessment JSON, retrying the completion across coordinator restarts
// (an in-memory outbox) until it is acknowledged or refused as stale. Every
// acknowledged completion is appended to --ack-log as "JOB TOKEN\n" before
// the next one starts, so a test can check that each acknowledged result was
// stored.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/channel.h"
#include "common/logging.h"
#include "worker/api_client.h"

using namespace assessq;

namespace {
std::atomic<bool> g_stop{false};

// A result that passes the built-in assessment contract, its summary padded
// with Arabic text to about `bytes` bytes.
std::string ValidAssessment(const std::string& name, int bytes) {
  nlohmann::json a = {
      {"الاسم", name},
      {"الاسم_الأصلي", name},
      {"درجة_الجودة", 70},
      {"تقدير_الجودة", "جيد"},
      {"الملخص", "تقييم محاكى لمجموعة البيانات."},
      {"فحص_البيانات",
       {{"الطريقة_المستخدمة", "metadata_only"},
        {"عدد_العينات_المفحوصة", 0},
        {"معاينة_العينات", nlohmann::json::array()},
        {"مشاكل_مكتشفة", nlohmann::json::array()},
        {"البيانات_تطابق_الوصف", true}}},
      {"نقاط_القوة", {"وصف واضح"}},
      {"نقاط_الضعف", {"تقييم محاكى"}},
      {"الاستخدامات_الموصى_بها", {"اختبار النظام"}},
      {"تفصيل_الجودة",
       {{"سهولة_الوصول", 70}, {"التوثيق", 70}, {"السلامة_الأخلاقية", 70}, {"الترخيص", 70},
        {"قابلية_إعادة_الإنتاج", 70}, {"المراجعة_العلمية", 70}, {"جودة_البيانات", 70}}},
      {"المصادر_المفتوحة", nlohmann::json::array()},
      {"تم_تحميل_البيانات", false},
  };
  std::string summary = a["الملخص"];
  while (static_cast<int>(a.dump().size() + summary.size() - a["الملخص"].get<std::string>().size()) < bytes)
    summary += " نص إضافي للحجم.";
  a["الملخص"] = summary;
  return a.dump();
}
void OnSignal(int) { g_stop = true; }
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
  CLI11_PARSE(app, argc, argv);
  (void)SetupLogging("text", "warn");
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);

  auto token = LoadToken(token_file);
  if (!token.ok()) {
    std::fprintf(stderr, "%s\n", std::string(token.status().message()).c_str());
    return 2;
  }
  auto client = ApiClient::Create({address, *token, {}, name, slots});
  if (!client.ok()) return 2;
  std::FILE* ack = ack_log.empty() ? nullptr : std::fopen(ack_log.c_str(), "a");

  std::mutex mu;
  std::condition_variable cv;
  std::deque<v1::Lease> todo;
  (*client)->Start([&](const v1::CoordinatorMessage& m) {
    if (m.has_lease()) {
      std::lock_guard<std::mutex> l(mu);
      todo.push_back(m.lease());
      cv.notify_one();
    }
  });

  std::vector<std::thread> threads;
  for (int t = 0; t < slots; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(getpid() * 31 + t));
      std::uniform_real_distribution<double> coin(0, 1);
      while (!g_stop) {
        v1::Lease lease;
        {
          std::unique_lock<std::mutex> l(mu);
          cv.wait_for(l, std::chrono::milliseconds(200), [&] { return !todo.empty(); });
          if (todo.empty()) continue;
          lease = todo.front();
          todo.pop_front();
        }
        v1::HeartbeatRequest hb;
        hb.set_job_id(lease.job_id());
        hb.set_token(lease.token());
        hb.set_running(true);
        auto h = (*client)->Heartbeat(hb);
        if (!h.ok() && h.status().code() == absl::StatusCode::kFailedPrecondition) continue;
        if (work_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(work_ms));
        v1::CompleteRequest c;
        c.set_job_id(lease.job_id());
        c.set_token(lease.token());
        if (coin(rng) < fail_rate) {
          c.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_AGENT);
          c.mutable_failure()->set_reason("simulated agent failure");
          c.set_exit_code(1);
        } else {
          c.set_result_json(ValidAssessment(lease.dataset_name(), result_bytes));
        }
        // Outbox: retry until acknowledged or refused as stale.
        int backoff = 20;
        while (!g_stop) {
          auto r = (*client)->Complete(c, 5000);
          if (r.ok()) {
            if (ack && c.has_result_json() && !r->duplicate()) {
              std::lock_guard<std::mutex> l(mu);
              std::fprintf(ack, "%lld %lld %s\n", static_cast<long long>(c.job_id()),
                           static_cast<long long>(c.token()),
                           r->job_state() == v1::JOB_STATE_SUCCEEDED ? "stored" : "other");
              std::fflush(ack);
            }
            break;
          }
          if (r.status().code() == absl::StatusCode::kFailedPrecondition ||
              r.status().code() == absl::StatusCode::kInvalidArgument)
            break;
          std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
          backoff = std::min(backoff * 2, 1000);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  (*client)->Stop();
  if (ack) std::fclose(ack);
  return 0;
}
