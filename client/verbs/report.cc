// `assessctl report --batch B --out DIR [--all] [--no-attempts] [--jobs N]`:
// writes DIR/index.html, one self-contained right-to-left page (all CSS and
// JS inline, no network needed to open it) with the grade distribution,
// per-criterion averages and score histogram as charts, a sortable,
// filterable table of every dataset, and each assessment in full with its
// trust flags and provenance. Streams the batch through the Export RPC, then
// (unless --no-attempts) fetches each job's attempts with ShowJob, a few at a
// time, for the attempt history, hosts contacted and denied requests; shows
// progress for both on a terminal and prints a summary line at the end. The
// data shaping is client/report/report_data.h; the page is
// client/report/report_template.html.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/cli_context.h"
#include "client/progress.h"
#include "client/report/report_data.h"
#include "client/report/report_template.h"

namespace assessq::cli {
namespace {
namespace fs = std::filesystem;

// How many records the export will stream, for the progress bar (0: unknown).
int64_t ExpectedRecords(Context& ctx, const std::string& batch, bool all) {
  v1::StatusRequest req;
  req.set_batch(batch);
  v1::StatusResponse resp;
  auto call = ctx.Call(30);
  if (!ctx.stub->Status(call.get(), req, &resp).ok()) return 0;
  for (const auto& b : resp.batches()) {
    if (b.name() != batch) continue;
    if (all) return b.total();
    auto it = b.counts().find("succeeded");
    return it == b.counts().end() ? 0 : it->second;
  }
  return 0;
}

// Fills in.attempts for every input with ShowJob, `jobs` calls at a time. A
// job that vanished meanwhile keeps attempts_fetched false; any other error
// stops the report.
grpc::Status FetchAttempts(Context& ctx, std::vector<report::DatasetInput>& inputs, int jobs) {
  Progress progress("attempts", static_cast<int64_t>(inputs.size()), true);
  std::atomic<size_t> next{0};
  std::mutex mu;
  grpc::Status first_error;
  std::atomic<bool> failed{false};
  auto work = [&] {
    while (!failed) {
      size_t i = next++;
      if (i >= inputs.size()) return;
      v1::JobRef ref;
      ref.set_job_id(inputs[i].record.job().job_id());
      v1::JobDetail d;
      auto call = ctx.Call(60);
      auto st = ctx.stub->ShowJob(call.get(), ref, &d);
      std::lock_guard<std::mutex> l(mu);
      if (st.error_code() == grpc::StatusCode::NOT_FOUND) {  // gone meanwhile: no history
        progress.Add(1);
        continue;
      }
      if (!st.ok()) {
        if (!failed.exchange(true)) first_error = st;
        return;
      }
      inputs[i].attempts.assign(d.attempts().begin(), d.attempts().end());
      for (auto& a : inputs[i].attempts) a.clear_log_tail();  // not shown; keep memory down
      inputs[i].attempts_fetched = true;
      progress.Add(1);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, jobs); ++t) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  progress.Done();
  return failed ? first_error : grpc::Status::OK;
}

// Writes `content` to dir/index.html through a temporary file and a rename,
// so a reader never sees half a page.
absl::StatusOr<std::string> WritePage(const std::string& dir, const std::string& content) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat(dir, ": cannot create: ", ec.message()));
  fs::path final_path = fs::path(dir) / "index.html";
  fs::path tmp = fs::path(dir) / ".index.html.tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return absl::UnavailableError(absl::StrCat(tmp.string(), ": cannot write"));
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
    f.flush();
    if (!f) return absl::UnavailableError(absl::StrCat(tmp.string(), ": write failed"));
  }
  fs::rename(tmp, final_path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat(final_path.string(), ": ", ec.message()));
  return final_path.string();
}

}  // namespace

void RegisterReport(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "report", "write a self-contained HTML report (charts, table, every assessment) of a batch");
  struct Opts {
    std::string batch, out;
    bool all = false, no_attempts = false;
    int jobs = 4;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--batch", o->batch, "the batch")->required();
  cmd->add_option("--out", o->out, "directory to write index.html into (created if missing)")
      ->required();
  cmd->add_flag("--all", o->all, "include jobs without a result");
  cmd->add_flag("--no-attempts", o->no_attempts,
                "skip each job's attempt history and network log (hosts, denied requests)");
  cmd->add_option("--jobs", o->jobs, "attempt-history requests in flight at once (default 4)")
      ->check(CLI::Range(1, 32));
  cmd->callback([&ctx, &exit_code, o] {
    if (auto s = ctx.Connect(); !s.ok()) {
      exit_code = Fail(s);
      return;
    }
    std::vector<report::DatasetInput> inputs;
    {
      Progress progress("export", ExpectedRecords(ctx, o->batch, o->all), true);
      v1::ExportRequest req;
      req.set_batch(o->batch);
      req.set_include_unfinished(o->all);
      auto call = ctx.Call(600);
      auto reader = ctx.stub->Export(call.get(), req);
      report::DatasetInput in;
      while (reader->Read(&in.record)) {
        inputs.push_back(std::move(in));
        in = report::DatasetInput{};
        progress.Add(1);
      }
      auto st = reader->Finish();
      progress.Done();
      if (!st.ok()) {
        exit_code = Fail(st);
        return;
      }
    }
    if (!o->no_attempts) {
      if (auto st = FetchAttempts(ctx, inputs, o->jobs); !st.ok()) {
        exit_code = Fail(st);
        return;
      }
    }
    int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    report::Summary s = report::Summarize(inputs);
    report::ojson data = report::ReportJson(o->batch, now, o->all, inputs, s);
    auto page = report::RenderReport(report::kReportTemplate, data);
    if (!page.ok()) {
      exit_code = Fail(page.status());
      return;
    }
    auto path = WritePage(o->out, *page);
    if (!path.ok()) {
      exit_code = Fail(path.status());
      return;
    }
    std::cout << "wrote " << Safe(*path) << ": " << inputs.size() << " dataset(s)";
    if (std::string grades = report::GradeLine(s); !grades.empty())
      std::cout << " (" << Safe(grades) << ")";
    std::cout << "\n";
    exit_code = kExitOk;
  });
}

}  // namespace assessq::cli
