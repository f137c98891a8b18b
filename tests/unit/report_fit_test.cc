// A completion report always fits the coordinator's caps (FitReport,
// worker/api_client.h) and the outbox always reads back what it stored
// (worker/outbox.h): oversized attachments (network log, log tail, details,
// a failure reason) are cut, table-driven, while the result is kept byte for
// byte; a result over its own cap becomes an invalid_output failure; a file
// in the outbox that is not a report it wrote is moved aside once instead of
// being re-read at every delivery round.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/report_caps.h"
#include "common/utf8.h"
#include "worker/api_client.h"
#include "worker/outbox.h"

namespace assessq {
namespace {

namespace fs = std::filesystem;

// A network log as the gateway's: `n` entries with a `pad`-byte reason.
std::string Netlog(int n, size_t pad) {
  nlohmann::json log = nlohmann::json::array();
  for (int i = 0; i < n; ++i)
    log.push_back({{"ts", i}, {"decision", "deny"}, {"host", "evil.test"}, {"reason", std::string(pad, 'r')}});
  return log.dump();
}

v1::CompleteRequest Report() {
  v1::CompleteRequest r;
  r.set_job_id(7);
  r.set_token(99);
  r.set_result_json(std::string(R"({"الاسم":"x","pad":")") + std::string(1 << 20, 'p') + "\"}");
  r.set_exit_code(0);
  r.set_log_tail("log\n");
  r.set_netlog_json("[]");
  r.set_details_json(R"({"container":"c","image":"assessq-test-agent:1","denied_requests":10000})");
  return r;
}

bool Fits(const v1::CompleteRequest& r) {
  return r.log_tail().size() <= kReportLogTailCap && r.netlog_json().size() <= kReportNetlogCap &&
         r.result_json().size() <= kReportResultCap && r.details_json().size() <= kReportDetailsCap &&
         r.failure().reason().size() <= kReportReasonCap && r.ByteSizeLong() <= kReportMaxBytes;
}

TEST(FitReport, OversizedAttachmentsAreCutAndTheResultIsKept) {
  struct Case {
    const char* what;
    std::function<void(v1::CompleteRequest&)> grow;
    const char* cut;  // in the report_cut note; "" when nothing is cut
  };
  const Case cases[] = {
      {"fits already", [](v1::CompleteRequest&) {}, ""},
      {"netlog of 2,000 entries of 28 KB",
       [](v1::CompleteRequest& r) { r.set_netlog_json(Netlog(2000, 28 << 10)); }, "netlog"},
      {"netlog one byte over", [](v1::CompleteRequest& r) {
         std::string s = Netlog(1, kReportNetlogCap);
         r.set_netlog_json(s.substr(0, kReportNetlogCap + 1));
       }, "netlog"},
      {"netlog that is not JSON", [](v1::CompleteRequest& r) { r.set_netlog_json(std::string(5 << 20, '[')); },
       "netlog"},
      {"log tail of 3 MiB", [](v1::CompleteRequest& r) {
         r.set_log_tail(std::string(3 << 20, 'a') + "THE END\n");
       }, "log tail"},
      {"log tail of multi-byte characters", [](v1::CompleteRequest& r) {
         std::string s;
         while (s.size() < (kReportLogTailCap + 10)) s += "تقييم ";
         r.set_log_tail(s);
       }, "log tail"},
      {"details of 2 MiB", [](v1::CompleteRequest& r) {
         r.set_details_json(nlohmann::json{{"image", "assessq-test-agent:1"}, {"big", std::string(2 << 20, 'd')}}.dump());
       }, "details"},
      {"details that are not JSON", [](v1::CompleteRequest& r) { r.set_details_json(std::string(2 << 20, '{')); },
       "details"},
      {"everything at once", [](v1::CompleteRequest& r) {
         r.set_netlog_json(Netlog(3000, 20 << 10));
         r.set_log_tail(std::string(1 << 20, 'a'));
         r.set_details_json(nlohmann::json{{"x", std::string(3 << 20, 'd')}}.dump());
       }, "netlog"},
  };
  for (const auto& c : cases) {
    v1::CompleteRequest r = Report();
    c.grow(r);
    const std::string result = r.result_json();
    const std::string tail = r.log_tail();
    std::string cut = FitReport(&r);
    EXPECT_TRUE(Fits(r)) << c.what;
    EXPECT_TRUE(r.has_result_json()) << c.what;
    EXPECT_EQ(r.result_json(), result) << c.what << ": the result changed";
    EXPECT_TRUE(IsValidUtf8(r.log_tail())) << c.what;
    if (std::string(c.cut).empty()) {
      EXPECT_EQ(cut, "") << c.what;
      continue;
    }
    EXPECT_TRUE(absl::StrContains(cut, c.cut)) << c.what << ": " << cut;
    // The network log stays a JSON array, and says what it lost.
    auto log = nlohmann::json::parse(r.netlog_json(), nullptr, false);
    ASSERT_TRUE(log.is_array()) << c.what;
    if (absl::StrContains(cut, "netlog")) EXPECT_EQ(log.back()["decision"], "truncated") << c.what;
    if (absl::StrContains(cut, "log tail")) {
      EXPECT_TRUE(absl::StartsWith(r.log_tail(), "[... ")) << c.what;
      EXPECT_EQ(r.log_tail().substr(r.log_tail().size() - 8), tail.substr(tail.size() - 8)) << c.what;
    }
    auto d = nlohmann::json::parse(r.details_json(), nullptr, false);
    ASSERT_TRUE(d.is_object()) << c.what;
    EXPECT_TRUE(absl::StrContains(d.value("report_cut", ""), c.cut)) << c.what << ": " << d.dump().substr(0, 300);
  }
}

TEST(FitReport, AFailureKeepsItsClassAndAResultOverItsOwnCapBecomesInvalidOutput) {
  v1::CompleteRequest r = Report();
  r.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_MODEL_API);
  r.mutable_failure()->set_reason(std::string(1 << 20, 'x'));
  r.mutable_failure()->set_retry_after_ms(7000);
  r.set_netlog_json(Netlog(2000, 28 << 10));
  FitReport(&r);
  EXPECT_TRUE(Fits(r));
  EXPECT_EQ(r.failure().failure_class(), v1::FAILURE_CLASS_MODEL_API);
  EXPECT_EQ(r.failure().retry_after_ms(), 7000);
  v1::CompleteRequest big = Report();
  big.set_result_json(std::string(kReportResultCap + 1, 'r'));
  FitReport(&big);
  EXPECT_TRUE(Fits(big));
  ASSERT_TRUE(big.has_failure());
  EXPECT_EQ(big.failure().failure_class(), v1::FAILURE_CLASS_INVALID_OUTPUT);
  EXPECT_TRUE(absl::StrContains(big.failure().reason(), "larger than")) << big.failure().reason();
}

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / absl::StrCat("aq-outbox-", getpid(), "-", rand());
    ASSERT_TRUE(Outbox(dir_.string()).Init().ok());
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(OutboxTest, AReportWithHugeAttachmentsIsStoredFittedAndReadBack) {
  Outbox box(dir_.string());
  v1::CompleteRequest r = Report();
  // 2,000 refused requests of 8 KB targets and 20 KB Host headers, unbounded.
  r.set_netlog_json(Netlog(2000, 28 << 10));
  r.set_log_tail(std::string(2 << 20, 'l'));
  ASSERT_TRUE(box.Put(r).ok());
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_LE(fs::file_size(e.path()), kReportMaxBytes) << e.path();
  std::vector<std::string> problems;
  auto pending = box.Pending(&problems);
  EXPECT_TRUE(problems.empty());
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_TRUE(Fits(pending[0]));
  EXPECT_EQ(pending[0].result_json(), r.result_json());
}

// The job's model usage rides in the stored report: read back after a
// restart (a new Outbox on the same directory) exactly, even when the
// attachments were cut to fit.
TEST_F(OutboxTest, TheUsageInAReportSurvivesARestartAndFitting) {
  v1::CompleteRequest r = Report();
  r.set_log_tail(std::string(2 << 20, 'l'));
  v1::ModelUsage* m = r.mutable_usage()->add_models();
  m->set_provider("anthropic");
  m->set_model("claude-x");
  m->set_requests(3);
  m->set_input_tokens(1234);
  m->set_output_tokens(567);
  m->set_cache_write_tokens(89);
  m->set_cache_read_tokens(100000);
  m->set_duration_ms(4321);
  r.mutable_usage()->set_budget_exhausted(true);
  ASSERT_TRUE(Outbox(dir_.string()).Put(r).ok());
  Outbox after(dir_.string());
  ASSERT_TRUE(after.Init().ok());
  auto pending = after.Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].usage().SerializeAsString(), r.usage().SerializeAsString());
}

TEST_F(OutboxTest, AFileItCannotReadIsMovedAsideOnce) {
  Outbox box(dir_.string());
  ASSERT_TRUE(box.Put(Report()).ok());
  {
    std::ofstream big(dir_ / "8-1.pb", std::ios::binary);
    std::string chunk(1 << 20, 'x');
    for (size_t n = 0; n <= kReportMaxBytes; n += chunk.size()) big << chunk;
  }
  std::vector<std::string> problems;
  auto pending = box.Pending(&problems);
  ASSERT_EQ(pending.size(), 1u) << "the good report is still delivered";
  EXPECT_EQ(pending[0].job_id(), 7);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_TRUE(fs::exists(dir_ / "8-1.pb.unreadable"));
  EXPECT_FALSE(fs::exists(dir_ / "8-1.pb"));
  problems.clear();
  EXPECT_EQ(box.Pending(&problems).size(), 1u);
  EXPECT_TRUE(problems.empty()) << "read again";
}

}  // namespace
}  // namespace assessq
