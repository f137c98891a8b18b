// What every assessctl verb shares: the global flags (coordinator address,
// bearer token, TLS, output format), the operator stub they dial, and the small
// helpers for printing tables, JSON and errors the same way everywhere.
// Whatever came from the coordinator (an agent's output, names from metadata
// files, worker names, error messages) goes out through Safe/SafeText,
// Table, PrintJson/JsonLine or Fail, all of which escape what a terminal
// would act on (common/terminal_escape.h); `-o json` parses to the exact
// values.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "assessq/v1/assessq.grpc.pb.h"
#include "common/channel.h"
#include "common/vocabulary.h"

namespace assessq::cli {

// Exit codes: 0 ok, 1 error, 2 usage, 3 partial (some inputs rejected).
inline constexpr int kExitOk = 0, kExitError = 1, kExitUsage = 2, kExitPartial = 3;

struct Context {
  std::string coordinator;
  std::string token_file;
  ClientTls tls;
  std::string output = "table";  // table or json
  double connect_timeout_s = 5;   // how long Connect waits for an answer
  std::string bearer_token;  // the operator's credential, from token_file
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::OperatorService::Stub> stub;

  bool json() const { return output == "json"; }
  // Loads the bearer token, dials the coordinator and waits (at most
  // connect_timeout_s) until it answers; call before any RPC. If nothing
  // answers, the error names the address and says how to start coordinatord.
  absl::Status Connect();
  // A ClientContext with auth and a deadline.
  std::unique_ptr<grpc::ClientContext> Call(int timeout_s = 60) const;
};

// Prints "assessctl: <message>" to stderr and returns kExitError.
int Fail(const absl::Status& s);
int Fail(const grpc::Status& s);

// ctx.Connect(); on failure prints it (Fail), sets exit_code, returns false.
bool Connected(Context& ctx, int& exit_code);

// One unary operator call, e.g. Unary(ctx, &v1::OperatorService::Stub::Cancel,
// req, &resp, exit_code); on failure prints it (Fail), sets exit_code,
// returns false. Call after Connected.
template <typename Req, typename Resp>
bool Unary(const Context& ctx,
           grpc::Status (v1::OperatorService::Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*),
           const Req& req, Resp* resp, int& exit_code, int timeout_s = 60) {
  auto call = ctx.Call(timeout_s);
  grpc::Status st = (ctx.stub.get()->*rpc)(call.get(), req, resp);
  if (st.ok()) return true;
  exit_code = Fail(st);
  return false;
}

// Connected, then Unary: the whole of a verb that makes one call.
template <typename Req, typename Resp>
bool ConnectAndCall(Context& ctx,
                    grpc::Status (v1::OperatorService::Stub::*rpc)(grpc::ClientContext*,
                                                                  const Req&, Resp*),
                    const Req& req, Resp* resp, int& exit_code, int timeout_s = 60) {
  return Connected(ctx, exit_code) && Unary(ctx, rpc, req, resp, exit_code, timeout_s);
}

// Pretty-printed JSON (2-space indent), with DEL, C1 and bidi controls
// also written as \uXXXX: valid JSON, the exact same values.
void PrintJson(const nlohmann::json& j);
// The same on one line, without the newline (`logs -f -o json`, JSONL).
std::string JsonLine(const nlohmann::json& j);

// `{"<what>": n}` with -o json, else "n job(s) <what>"; returns kExitOk.
int PrintCount(const Context& ctx, const char* what, int64_t n);

// Untrusted text for the terminal: one line (names, cells, paths), or
// multi-line text that keeps its newlines and tabs (logs, error lists).
std::string Safe(absl::string_view s);
std::string SafeText(absl::string_view s);

// A plain text table: header, rows, columns padded to their widest cell
// (by display width, so Arabic and other UTF-8 text lines up). Every cell is
// printed through Safe(), so no cell can hold a control or a line break.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

std::string FormatTime(int64_t ms);       // ISO-8601 UTC, "-" for 0
std::string FormatDuration(int64_t ms);   // 1h02m, 3m04s, 5.2s
// The shared labels (common/vocabulary.h) as strings, for table cells.
inline std::string StateName(v1::JobState s) { return std::string(assessq::StateName(s)); }
inline std::string ClassName(v1::FailureClass c) { return std::string(assessq::ClassName(c)); }
nlohmann::json JobJson(const v1::JobSummary& j);
// A fleet-wide limit (status, limits): JSON, and one human line (escaped).
nlohmann::json LimitJson(const v1::LimitStatus& l);
std::string DescribeLimit(const v1::LimitStatus& l);
// A --state / --class flag: a label of the shared vocabulary, in any case
// ("" is no filter: UNSPECIFIED); InvalidArgument "unknown state 'x'" /
// "unknown class 'x'" otherwise.
absl::StatusOr<v1::JobState> ParseStateFlag(const std::string& s);
absl::StatusOr<v1::FailureClass> ParseClassFlag(const std::string& s);
// A job argument: a numeric id, or with --batch a dataset key.
absl::StatusOr<v1::JobRef> ParseJobRef(const std::string& arg, const std::string& batch);

// For verbs that act on one job or a whole batch (cancel, retry): fills
// req.job from a JOB argument, or req.batch from --batch alone.
template <typename Req>
absl::Status FillJobOrBatch(const std::string& job, const std::string& batch, const char* verb,
                            Req& req) {
  if (!job.empty()) {
    auto ref = ParseJobRef(job, batch);
    if (!ref.ok()) return ref.status();
    *req.mutable_job() = *ref;
    return absl::OkStatus();
  }
  if (batch.empty())
    return absl::InvalidArgumentError(std::string(verb) + " needs a JOB or --batch");
  req.set_batch(batch);
  return absl::OkStatus();
}

// Each verb registers its subcommand and returns nothing; the callback sets
// the exit code.
using VerbRegistrar = void (*)(CLI::App& app, Context& ctx, int& exit_code);
void RegisterSubmit(CLI::App&, Context&, int&);
void RegisterStatus(CLI::App&, Context&, int&);
void RegisterList(CLI::App&, Context&, int&);
void RegisterShow(CLI::App&, Context&, int&);
void RegisterResult(CLI::App&, Context&, int&);
void RegisterRetry(CLI::App&, Context&, int&);
void RegisterCancel(CLI::App&, Context&, int&);
void RegisterExport(CLI::App&, Context&, int&);
void RegisterWorkers(CLI::App&, Context&, int&);
void RegisterPause(CLI::App&, Context&, int&);
void RegisterWait(CLI::App&, Context&, int&);
void RegisterLogs(CLI::App&, Context&, int&);
void RegisterLimits(CLI::App&, Context&, int&);
void RegisterHealth(CLI::App&, Context&, int&);
void RegisterBudget(CLI::App&, Context&, int&);  // costsrv

int AssessctlMain(int argc, char** argv);

}  // namespace assessq::cli
