#include "client/cli_context.h"

#include <cstdio>
#include <ctime>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/address.h"
#include "common/status_util.h"
#include "common/terminal_escape.h"

namespace assessq::cli {

absl::Status Context::Connect() {
  if (coordinator.empty()) coordinator = DefaultCoordinatorAddress();
  auto t = LoadToken(token_file);
  if (!t.ok()) return t.status();
  bearer_token = *t;
  auto ch = MakeChannel(coordinator, tls);
  if (!ch.ok()) return ch.status();
  channel = *ch;
  stub = v1::OperatorService::NewStub(channel);
  // A coordinator that is still starting answers within a moment: wait for
  // the channel (gRPC retries the connection with a short backoff) rather
  // than fail the first call.
  auto deadline = std::chrono::system_clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(connect_timeout_s * 1000));
  if (channel->WaitForConnected(deadline)) return absl::OkStatus();
  // One fail-fast call to learn gRPC's last connection error.
  grpc::ClientContext probe;
  probe.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::StatusRequest req;
  v1::StatusResponse resp;
  grpc::Status st = stub->Status(&probe, req, &resp);
  if (st.error_code() != grpc::StatusCode::UNAVAILABLE) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      "coordinator unavailable: nothing answers at ", coordinator, " (waited ",
      connect_timeout_s, " s; last error: ", st.error_message(),
      "). Start it with `coordinatord --db FILE --listen ", coordinator,
      "`, or point --coordinator / ASSESSQ_COORDINATOR at a running one."));
}

std::unique_ptr<grpc::ClientContext> Context::Call(int timeout_s) const {
  auto c = std::make_unique<grpc::ClientContext>();
  AddAuth(*c, bearer_token);
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
  return c;
}

int Fail(const absl::Status& s) {
  std::cerr << "assessctl: " << SafeText(s.message()) << "\n";
  return kExitError;
}

int Fail(const grpc::Status& s) {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE)
    std::cerr << "assessctl: coordinator unavailable: " << SafeText(s.error_message()) << "\n";
  else
    std::cerr << "assessctl: " << SafeText(s.error_message()) << "\n";
  return kExitError;
}

bool Connected(Context& ctx, int& exit_code) {
  if (auto s = ctx.Connect(); !s.ok()) {
    exit_code = Fail(s);
    return false;
  }
  return true;
}

void PrintJson(const nlohmann::json& j) {
  std::cout << EscapeJsonForTerminal(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace))
            << "\n";
}

std::string JsonLine(const nlohmann::json& j) {
  return EscapeJsonForTerminal(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

int PrintCount(const Context& ctx, const char* what, int64_t n) {
  if (ctx.json()) PrintJson({{what, n}});
  else std::cout << n << " job(s) " << what << "\n";
  return kExitOk;
}

std::string Safe(absl::string_view s) { return EscapeForTerminal(s, EscapeMode::kLine); }
std::string SafeText(absl::string_view s) { return EscapeForTerminal(s, EscapeMode::kText); }

namespace {
// Display width of UTF-8 text: one column per code point (combining marks
// and wide CJK are rare in this data and ignored).
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xc0) != 0x80) ++n;
  return n;
}
}  // namespace

void Table::Print() const {
  std::vector<std::vector<std::string>> rows;
  rows.reserve(rows_.size());
  for (const auto& r : rows_) {
    std::vector<std::string> safe;
    for (const auto& c : r) safe.push_back(Safe(c));
    rows.push_back(std::move(safe));
  }
  std::vector<size_t> w(header_.size(), 0);
  for (size_t i = 0; i < header_.size(); ++i) w[i] = Width(header_[i]);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], Width(r[i]));
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (size_t i = 0; i < w.size(); ++i) {
      std::string cell = i < r.size() ? r[i] : "";
      out += cell;
      if (i + 1 < w.size()) out += std::string(w[i] - Width(cell) + 2, ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::cout << out << "\n";
  };
  line(header_);
  for (const auto& r : rows) line(r);
}

std::string FormatTime(int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string FormatDuration(int64_t ms) {
  if (ms < 0) return "-";
  if (ms < 60000) return absl::StrFormat("%.1fs", ms / 1000.0);
  int64_t s = ms / 1000;
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

nlohmann::json JobJson(const v1::JobSummary& j) {
  return {{"job_id", j.job_id()},
          {"batch", j.batch()},
          {"dataset_key", j.dataset_key()},
          {"dataset_name", j.dataset_name()},
          {"source_name", j.source_name()},
          {"state", StateName(j.state())},
          {"attempts", j.attempts()},
          {"last_failure_class", ClassName(j.last_failure_class())},
          {"last_error", j.last_error()},
          {"worker", j.worker()},
          {"input_sha256", j.input_sha256()},
          {"created_at", FormatTime(j.created_at_ms())},
          {"updated_at", FormatTime(j.updated_at_ms())}};
}

absl::StatusOr<v1::JobState> ParseStateFlag(const std::string& s) {
  if (s.empty()) return v1::JOB_STATE_UNSPECIFIED;
  if (auto st = StateFromName(absl::AsciiStrToLower(s))) return *st;
  return absl::InvalidArgumentError(absl::StrCat("unknown state '", s, "'"));
}

absl::StatusOr<v1::FailureClass> ParseClassFlag(const std::string& s) {
  if (s.empty()) return v1::FAILURE_CLASS_UNSPECIFIED;
  if (auto c = ClassFromName(absl::AsciiStrToLower(s))) return *c;
  return absl::InvalidArgumentError(absl::StrCat("unknown class '", s, "'"));
}

absl::StatusOr<v1::JobRef> ParseJobRef(const std::string& arg, const std::string& batch) {
  v1::JobRef ref;
  if (!batch.empty()) {
    ref.set_batch(batch);
    ref.set_dataset_key(arg);
    return ref;
  }
  int64_t id = 0;
  if (!absl::SimpleAtoi(arg, &id) || id <= 0)
    return absl::InvalidArgumentError(absl::StrCat(
        "'", arg, "' is not a job id (to name a dataset, add --batch NAME)"));
  ref.set_job_id(id);
  return ref;
}

nlohmann::json LimitJson(const v1::LimitStatus& l) {
  return {{"scope", l.scope()},
          {"name", l.name()},
          {"provider", l.provider()},
          {"max_running", l.max_running()},
          {"start_rate_per_min", l.start_rate_per_min()},
          {"running", l.running()},
          {"current_limit", l.current_limit()},
          {"hold_until", l.hold_until_ms() > 0 ? FormatTime(l.hold_until_ms()) : ""},
          {"reason", l.reason()}};
}

std::string DescribeLimit(const v1::LimitStatus& l) {
  std::string limit = l.current_limit() > 0 ? absl::StrCat(l.current_limit()) : "none";
  return Safe(absl::StrCat(l.scope(), " ", l.name(), ": running ", l.running(), ", limit ",
                           limit, " (", l.reason(), ")"));
}

}  // namespace assessq::cli
