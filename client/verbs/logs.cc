// `assessctl logs JOB [--attempt N]`: the captured stdout/stderr tail of a
// job's attempt (the latest by default). `assessctl netlog JOB`: every
// request the job's gateway saw (time, method, host, port, address, decision,
// rule or reason, bytes each way, duration), as a table or `-o json`. The
// output is printed escaped (newlines and tabs kept, every other control
// and bidi override written out visibly, cli_context.h); `-o json` carries
// it exactly.
#include <chrono>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli_context.h"
#include "common/terminal_escape.h"

namespace assessq::cli {
namespace {

// Fetches the job and picks the attempt (0: the latest).
bool LoadAttempt(Context& ctx, const std::string& job, const std::string& batch, int number,
                 v1::JobDetail& d, const v1::Attempt*& a, int& exit_code) {
  auto ref = ParseJobRef(job, batch);
  if (!ref.ok()) {
    exit_code = Fail(ref.status());
    return false;
  }
  if (auto s = ctx.Connect(); !s.ok()) {
    exit_code = Fail(s);
    return false;
  }
  auto call = ctx.Call();
  auto st = ctx.stub->ShowJob(call.get(), *ref, &d);
  if (!st.ok()) {
    exit_code = Fail(st);
    return false;
  }
  a = nullptr;
  for (const auto& at : d.attempts())
    if (number == 0 || at.number() == number) a = &at;
  if (!a) {
    exit_code = Fail(absl::NotFoundError(
        number ? absl::StrCat("job has no attempt ", number) : "job has no attempts yet"));
    return false;
  }
  return true;
}

bool Terminal(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_NEEDS_ATTENTION ||
         s == v1::JOB_STATE_CANCELLED;
}

// `logs -f`: prints the latest attempt's output as the worker streams it in,
// moves on to the next attempt if the job is retried, and returns once the
// job has finished and everything is printed.
int Follow(Context& ctx, const std::string& job, const std::string& batch) {
  auto ref = ParseJobRef(job, batch);
  if (!ref.ok()) return Fail(ref.status());
  if (auto s = ctx.Connect(); !s.ok()) return Fail(s);
  int64_t attempt = 0, offset = 0;
  // One escaper per attempt's output: a character split between two reads
  // is escaped as one.
  TerminalEscaper escaper(EscapeMode::kText);
  while (true) {
    v1::LogReadRequest req;
    *req.mutable_job() = *ref;
    req.set_attempt_id(attempt);
    req.set_offset(offset);
    v1::LogReadResponse r;
    auto call = ctx.Call(30);
    auto st = ctx.stub->ReadLog(call.get(), req, &r);
    if (!st.ok()) return Fail(st);
    if (attempt == 0 && r.attempt_id() != 0) attempt = r.attempt_id();
    if (r.skipped() > 0 && !ctx.json())
      std::cout << escaper.Finish() << "\n[... " << r.skipped() << " bytes not kept ...]\n";
    if (!r.data().empty()) {
      if (ctx.json())
        std::cout << JsonLine({{"attempt_id", r.attempt_id()}, {"offset", offset},
                               {"skipped", r.skipped()}, {"data", r.data()}})
                  << "\n";
      else
        std::cout << escaper.Feed(r.data());
      std::cout.flush();
    }
    offset = r.next_offset();
    if (r.ended() && r.data().empty()) {
      if (!ctx.json()) std::cout << escaper.Finish() << std::flush;
      if (Terminal(r.job_state())) return kExitOk;
      if (attempt != 0) {
        if (!ctx.json())
          std::cout << "\n[attempt " << attempt << " " << Safe(r.outcome())
                    << "; waiting for the next one]\n";
        // Follow the next attempt once there is one.
        attempt = 0;
        offset = 0;
        v1::LogReadRequest peek = req;
        while (true) {
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
          peek.set_attempt_id(0);
          peek.set_offset(0);
          v1::LogReadResponse p;
          auto c2 = ctx.Call(30);
          auto s2 = ctx.stub->ReadLog(c2.get(), peek, &p);
          if (!s2.ok()) return Fail(s2);
          if (Terminal(p.job_state()) && p.attempt_id() == r.attempt_id()) return kExitOk;
          if (p.attempt_id() != r.attempt_id()) break;
        }
        continue;
      }
    }
    if (r.data().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace

void RegisterLogs(CLI::App& app, Context& ctx, int& exit_code) {
  for (bool net : {false, true}) {
    auto* cmd = app.add_subcommand(net ? "netlog" : "logs",
                                   net ? "the requests a job's egress gateway saw"
                                       : "the output tail of a job's attempt");
    auto job = std::make_shared<std::string>();
    auto batch = std::make_shared<std::string>();
    auto attempt = std::make_shared<int>(0);
    auto follow = std::make_shared<bool>(false);
    cmd->add_option("job", *job, "job id, or dataset key with --batch")->required();
    if (!net)
      cmd->add_flag("-f,--follow", *follow,
                    "print the running attempt's output as it is written, until the job ends");
    cmd->add_option("--batch", *batch, "look the dataset key up in this batch");
    cmd->add_option("--attempt", *attempt, "attempt number (default: the latest)");
    cmd->callback([&ctx, &exit_code, job, batch, attempt, net, follow] {
      if (*follow) {
        exit_code = Follow(ctx, *job, *batch);
        return;
      }
      v1::JobDetail d;
      const v1::Attempt* a;
      if (!LoadAttempt(ctx, *job, *batch, *attempt, d, a, exit_code)) return;
      if (!net) {
        if (ctx.json())
          PrintJson({{"job_id", d.job().job_id()}, {"attempt", a->number()}, {"log_tail", a->log_tail()}});
        else
          std::cout << SafeText(a->log_tail())
                    << (a->log_tail().empty() || a->log_tail().back() == '\n' ? "" : "\n");
        exit_code = kExitOk;
        return;
      }
      auto log = nlohmann::json::parse(a->netlog_json().empty() ? "[]" : a->netlog_json(), nullptr, false);
      if (log.is_discarded() || !log.is_array()) log = nlohmann::json::array();
      if (ctx.json()) {
        PrintJson(log);
      } else {
        // The job's effective allow list, as the worker recorded it.
        auto det = nlohmann::json::parse(a->details_json(), nullptr, false);
        if (det.is_object() && det.contains("allow") && det["allow"].is_array()) {
          std::vector<std::string> rules, added;
          for (const auto& r : det["allow"]) rules.push_back(r.is_string() ? r.get<std::string>() : "?");
          if (det.contains("allow_from_metadata") && det["allow_from_metadata"].is_array())
            for (const auto& h : det["allow_from_metadata"]) added.push_back(h.is_string() ? h.get<std::string>() : "?");
          std::cout << "allow list (" << rules.size() << " rules): " << Safe(absl::StrJoin(rules, ", "))
                    << "\nfrom the dataset's metadata: "
                    << (added.empty() ? std::string("none") : Safe(absl::StrJoin(added, ", "))) << "\n\n";
        }
        Table t({"TIME", "METHOD", "HOST", "PORT", "ADDRESS", "DECISION", "RULE/REASON", "UP", "DOWN", "MS"});
        for (const auto& e : log) {
          auto s = [&](const char* k) { return e.contains(k) && e[k].is_string() ? e[k].get<std::string>() : std::string(); };
          auto n = [&](const char* k) { return e.contains(k) && e[k].is_number() ? absl::StrCat(e[k].get<int64_t>()) : std::string(); };
          t.Add({FormatTime(e.value("ts", int64_t{0})), s("method"), s("host"), n("port"), s("address"),
                 s("decision"), s("reason"), n("bytes_up"), n("bytes_down"), n("duration_ms")});
        }
        t.Print();
      }
      exit_code = kExitOk;
    });
  }
}

}  // namespace assessq::cli
