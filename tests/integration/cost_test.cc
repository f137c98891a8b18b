// What a job and a batch cost, end to end with the real coordinatord (a price
// table from --prices), real gRPC and real SQLite, and an in-process worker
// (the real ApiClient) that reports usage the way workerd does: cumulative
// totals in heartbeats and in the completion. Checks: the stored figures
// equal what was reported exactly (a repeated or late heartbeat never adds
// twice or lowers them), the cost comes from the price table, a model without
// a price is shown as "price unknown" (never $0), the agent's own figure is
// kept beside it, the lease carries the profile's job cap with the prices,
// everything survives a SIGKILL of the coordinator, model names are escaped
// on the terminal, and a batch budget holds new starts (status, event) until
// `assessctl budget` raises it, while running jobs finish.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>

#include "tests/integration/harness.h"
#include "tests/integration/lease_taker.h"
#include "tests/integration/operator_rpc.h"
#include "tests/integration/scrape.h"
#include "tests/support/sqlite_reader.h"
#include "worker/api_client.h"

namespace aqtest {
namespace {
namespace v1 = assessq::v1;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPrices[] = R"({"providers":{"anthropic":{
  "claude-sonnet-4-5*": {"input": 3, "output": 15, "cache_write": 3.75, "cache_read": 0.3}}}})";

struct Env {
  explicit Env(int metrics_port = 0) {
    WriteFile(dir.Join("prices.json"), kPrices);
    CoordinatorOptions opt;
    opt.extra_args = {"--prices", dir.Join("prices.json")};
    if (metrics_port > 0)
      opt.extra_args.insert(opt.extra_args.end(),
                            {"--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port)});
    coord = std::make_unique<Coordinator>(dir.path(), opt);
    op_file = coord->CreateToken("operator", "ops");
    wk_file = coord->CreateToken("worker", "workers");
    op = ReadToken(op_file);
    wk = ReadToken(wk_file);
    coord->Start();
  }
  ~Env() {
    if (::testing::Test::HasFailure())
      std::cerr << "coordinatord log tail:\n" << Tail(coord->log()) << "\n";
  }
  v1::SubmitResponse Submit(v1::SubmitRequest req) { return SubmitRpc(*coord, op, req); }
  v1::JobDetail Show(int64_t job) { return ShowJobRpc(*coord, op, job); }
  v1::BatchStatus Status(const std::string& batch) {
    v1::StatusRequest req;
    req.set_batch(batch);
    v1::StatusResponse resp;
    auto ctx = Ctx(op);
    auto st = coord->OperatorStub()->Status(ctx.get(), req, &resp);
    if (!st.ok() || resp.batches_size() != 1)
      throw std::runtime_error("Status: " + st.error_message());
    return resp.batches(0);
  }
  RunResult Ctl(const std::vector<std::string>& args) { return Assessctl(*coord, op_file, args); }

  TempDir dir;
  std::unique_ptr<Coordinator> coord;
  std::string op_file, wk_file, op, wk;
};

v1::SubmitRequest Batch(const std::string& name, int n, const std::string& profile = "") {
  v1::SubmitRequest req;
  req.set_batch(name);
  if (!profile.empty()) req.set_profile_json(profile);
  for (int i = 0; i < n; ++i) {
    auto* f = req.add_files();
    f->set_source_name("d" + std::to_string(i) + ".json");
    f->set_content(nlohmann::json{{"Name", "d" + std::to_string(i)}}.dump());
  }
  return req;
}

// The real API client, collecting the leases it is sent.
class Worker : public LeaseTaker {
 public:
  Worker(const Env& env, const std::string& name, int slots)
      : LeaseTaker(env.coord->address(), env.wk, name, slots) {}
};

// `assessctl submit m.json --batch BATCH FLAG FILE`, FILE (in env.dir)
// holding `content`, is refused with an error that contains `want`.
void ExpectSubmitRefused(Env& env, const std::string& batch, const std::string& flag,
                         const std::string& file, const std::string& content,
                         const std::string& want) {
  WriteFile(env.dir.Join(file), content);
  RunResult r = env.Ctl({"submit", env.dir.Join("m.json"), "--batch", batch, flag,
                         env.dir.Join(file)});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr(want));
}

v1::ModelUsage MU(const std::string& model, int64_t req, int64_t in, int64_t out, int64_t cw,
                  int64_t cr) {
  v1::ModelUsage m;
  m.set_provider("anthropic");
  m.set_model(model);
  m.set_requests(req);
  m.set_input_tokens(in);
  m.set_output_tokens(out);
  m.set_cache_write_tokens(cw);
  m.set_cache_read_tokens(cr);
  m.set_duration_ms(req * 100);
  return m;
}

absl::Status Beat(Worker& w, const v1::Lease& l, const v1::Usage& u) {
  v1::HeartbeatRequest hb;
  hb.set_job_id(l.job_id());
  hb.set_token(l.token());
  hb.set_running(true);
  *hb.mutable_usage() = u;
  return w.api().Heartbeat(hb).status();
}

absl::StatusOr<v1::CompleteResponse> Finish(Worker& w, const v1::Lease& l, const v1::Usage& u,
                                            const std::string& log_tail = "") {
  v1::CompleteRequest c;
  c.set_job_id(l.job_id());
  c.set_token(l.token());
  c.set_result_json(ValidAssessment(l.dataset_name()));
  c.set_log_tail(log_tail);
  *c.mutable_usage() = u;
  return w.api().Complete(c);
}

const v1::ModelUsage* Find(const v1::Usage& u, const std::string& model) {
  for (const auto& m : u.models())
    if (m.model() == model) return &m;
  return nullptr;
}

void ExpectSame(const v1::ModelUsage* got, const v1::ModelUsage& want) {
  ASSERT_NE(got, nullptr) << want.model();
  EXPECT_EQ(got->requests(), want.requests()) << want.model();
  EXPECT_EQ(got->input_tokens(), want.input_tokens()) << want.model();
  EXPECT_EQ(got->output_tokens(), want.output_tokens()) << want.model();
  EXPECT_EQ(got->cache_write_tokens(), want.cache_write_tokens()) << want.model();
  EXPECT_EQ(got->cache_read_tokens(), want.cache_read_tokens()) << want.model();
  EXPECT_EQ(got->duration_ms(), want.duration_ms()) << want.model();
}

TEST(CostTest, ReportedUsageIsStoredExactlyPricedAndSurvivesSigkill) {
  const int port = FreeLoopbackPort();
  Env env(port);
  const std::string profile =
      R"({"limits":{"budget":{"max_usd":0.5,"max_tokens":200000}}})";
  auto sub = env.Submit(Batch("cost", 1, profile));
  const int64_t job = sub.items(0).job_id();
  Worker w(env, "w1", 1);
  v1::Lease l = w.NextLease();
  ASSERT_EQ(l.job_id(), job);
  // The lease carries the profile's cap and the prices to apply it with.
  ASSERT_TRUE(l.has_budget());
  EXPECT_EQ(l.budget().max_tokens(), 200000);
  EXPECT_DOUBLE_EQ(l.budget().max_usd(), 0.5);
  ASSERT_EQ(l.budget().prices_size(), 1);
  EXPECT_EQ(l.budget().prices(0).model(), "claude-sonnet-4-5*");
  EXPECT_DOUBLE_EQ(l.budget().prices(0).output(), 15);

  const std::string sonnet = "claude-sonnet-4-5-20250929";
  const std::string evil = "mystery\x1b]0;pwned\x07-model";
  v1::Usage u1;
  *u1.add_models() = MU(sonnet, 2, 1000, 200, 0, 5000);
  ASSERT_TRUE(Beat(w, l, u1).ok());
  ASSERT_TRUE(Beat(w, l, u1).ok());  // the same totals again: nothing added
  v1::Usage u2;
  *u2.add_models() = MU(sonnet, 5, 4000, 900, 1000, 20000);
  *u2.add_models() = MU(evil, 1, 10, 20, 0, 0);
  ASSERT_TRUE(Beat(w, l, u2).ok());
  ASSERT_TRUE(Beat(w, l, u1).ok());  // a late, smaller report lowers nothing
  {
    v1::JobDetail mid = env.Show(job);
    ASSERT_EQ(mid.attempts_size(), 1);
    ExpectSame(Find(mid.attempts(0).usage(), sonnet), u2.models(0));
  }
  v1::Usage fin;
  *fin.add_models() = MU(sonnet, 7, 5000, 1000, 1000, 30000);
  *fin.add_models() = MU(evil, 1, 10, 20, 0, 0);
  const std::string tail =
      "{\"type\":\"system\",\"subtype\":\"init\"}\n"
      "{\"type\":\"result\",\"subtype\":\"success\",\"total_cost_usd\":0.0421}\n";
  auto done = Finish(w, l, fin, tail);
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->job_state(), v1::JOB_STATE_SUCCEEDED);

  // 5000*3 + 1000*15 + 1000*3.75 + 30000*0.3 = 42750 per million
  const double want_usd = 0.04275;
  auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    v1::JobDetail d = env.Show(job);
    ASSERT_EQ(d.attempts_size(), 1);
    const v1::Attempt& a = d.attempts(0);
    ASSERT_EQ(a.usage().models_size(), 2);
    ExpectSame(Find(a.usage(), sonnet), fin.models(0));
    ExpectSame(Find(a.usage(), evil), fin.models(1));
    EXPECT_NEAR(a.cost().usd(), want_usd, 1e-12);
    EXPECT_TRUE(a.cost().price_unknown());
    EXPECT_THAT(a.cost().unpriced_models(), ::testing::ElementsAre("anthropic/" + evil));
    EXPECT_DOUBLE_EQ(a.agent_reported_cost_usd(), 0.0421);
    v1::BatchStatus b = env.Status("cost");
    EXPECT_NEAR(b.spend().spent().usd(), want_usd, 1e-12);
    EXPECT_TRUE(b.spend().spent().price_unknown());
    EXPECT_NEAR(b.spend().avg_per_finished_usd(), want_usd, 1e-12);
    EXPECT_NEAR(b.spend().projected_usd(), want_usd, 1e-12);
    EXPECT_DOUBLE_EQ(b.spend().agent_reported_usd(), 0.0421);
  };
  check("before the crash");
  // Prometheus: tokens by provider, model and kind, requests, and cost (the
  // priced model only); the hostile name without its control characters.
  std::string raw;
  auto m = aqscrape::Scrape(port, &raw);
  ASSERT_TRUE(m.has_value()) << raw;
  const std::string lab = "model=\"" + sonnet + "\",provider=\"anthropic\"";
  EXPECT_EQ(aqscrape::Value(*m, "assessq_model_tokens_total{kind=\"output\"," + lab + "}"), 1000);
  EXPECT_EQ(aqscrape::Value(*m, "assessq_model_tokens_total{kind=\"cache_read\"," + lab + "}"), 30000);
  EXPECT_EQ(aqscrape::Value(*m, "assessq_model_requests_total{" + lab + "}"), 7);
  EXPECT_NEAR(aqscrape::Value(*m, "assessq_model_cost_usd_total{" + lab + "}"), want_usd, 1e-9);
  EXPECT_EQ(aqscrape::Value(*m, "assessq_model_tokens_total{kind=\"input\",model=\"mystery?]0;pwned?-model\",provider=\"anthropic\"}"), 10);
  EXPECT_EQ(raw.find('\x1b'), std::string::npos);
  EXPECT_EQ(raw.find("assessq_model_cost_usd_total{model=\"mystery"), std::string::npos);
  env.coord->Kill();
  env.coord->Start();
  check("after SIGKILL and a restart");

  // assessctl: the figures, the unknown price, the agent's figure labelled,
  // and the hostile model name escaped (no ESC or BEL reaches the terminal).
  RunResult show = env.Ctl({"show", std::to_string(job)});
  ASSERT_EQ(show.exit_code, 0) << show.Describe();
  std::cout << "--- assessctl show " << job << "\n" << show.out;
  EXPECT_THAT(show.out, HasSubstr("$0.0428"));
  EXPECT_THAT(show.out, HasSubstr("price unknown (anthropic/mystery"));
  EXPECT_THAT(show.out, HasSubstr("the agent's own figure: $0.0421"));
  EXPECT_THAT(show.out, Not(HasSubstr("\x1b")));
  EXPECT_THAT(show.out, Not(HasSubstr("\x07")));
  nlohmann::json sj = JsonOut(env.Ctl({"show", std::to_string(job), "-o", "json"}));
  const auto& aj = sj["attempts"][0];
  EXPECT_NEAR(aj["cost"]["usd"].get<double>(), want_usd, 1e-12);
  EXPECT_TRUE(aj["cost"]["price_unknown"].get<bool>());
  EXPECT_EQ(aj["usage"]["total_tokens"].get<int64_t>(), 5000 + 1000 + 1000 + 30000 + 30);
  EXPECT_EQ(aj["agent_reported_cost_usd"].get<double>(), 0.0421);
  EXPECT_EQ(aj["usage"]["models"][1]["model"].get<std::string>(), evil);  // exact in JSON
  RunResult st = env.Ctl({"status", "--batch", "cost"});
  ASSERT_EQ(st.exit_code, 0) << st.Describe();
  std::cout << "--- assessctl status --batch cost\n" << st.out;
  EXPECT_THAT(st.out, HasSubstr("spent $0.0428 + price unknown"));
  nlohmann::json stj = JsonOut(env.Ctl({"status", "--batch", "cost", "-o", "json"}));
  EXPECT_NEAR(stj["spend"]["spent"]["usd"].get<double>(), want_usd, 1e-12);
  EXPECT_TRUE(stj["spend"]["budget_usd"].is_null());
}

// The cap is the job's, not each attempt's: a job retried after an infra
// failure gets only what its first attempt left.
TEST(CostTest, ARetriedJobsLeaseCarriesWhatItsEarlierAttemptsLeft) {
  Env env;
  v1::SubmitRequest req =
      Batch("capped", 1, R"({"limits":{"budget":{"max_usd":0.5,"max_tokens":200000}}})");
  req.mutable_retry_policy()->set_backoff_base_ms(10);
  req.mutable_retry_policy()->set_backoff_max_ms(10);
  auto sub = env.Submit(req);
  const int64_t job = sub.items(0).job_id();
  Worker w(env, "w1", 1);
  v1::Lease first = w.NextLease();
  ASSERT_EQ(first.job_id(), job);
  EXPECT_EQ(first.budget().max_tokens(), 200000);
  v1::Usage u;
  // 100000*3 + 10000*15 = 450000 per million: $0.45 of the $0.50.
  *u.add_models() = MU("claude-sonnet-4-5-20250929", 3, 100000, 10000, 0, 0);
  ASSERT_TRUE(Beat(w, first, u).ok());
  v1::CompleteRequest c;
  c.set_job_id(first.job_id());
  c.set_token(first.token());
  c.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_INFRA);
  c.mutable_failure()->set_reason("docker went away");
  ASSERT_TRUE(w.api().Complete(c).ok());
  v1::Lease second = w.NextLease(30000);
  ASSERT_EQ(second.job_id(), job);
  ASSERT_NE(second.token(), first.token());
  ASSERT_TRUE(second.has_budget());
  EXPECT_EQ(second.budget().max_tokens(), 200000 - 110000);
  EXPECT_NEAR(second.budget().max_usd(), 0.05, 1e-9);
}

int64_t Events(const Env& env, const std::string& kind) {
  SqliteReader db(env.coord->db());
  return db.Int("SELECT count(*) FROM events WHERE kind='" + kind + "'");
}

TEST(CostTest, BatchBudgetHoldsNewStartsAndARaisedBudgetResumesThem) {
  Env env;
  // Each job may spend at most $1 (its cap); the batch $2.50: two may run.
  v1::SubmitRequest req =
      Batch("budgeted", 4, R"({"limits":{"budget":{"max_usd":1.0}}})");
  req.set_budget_usd(2.5);
  env.Submit(req);
  Worker w(env, "w4", 4);
  v1::Lease a = w.NextLease();
  v1::Lease b = w.NextLease();
  // The dispatcher refused the third start: it says so in an event and status.
  ASSERT_TRUE(PollUntil([&] { return Events(env, "budget_hold") == 1; }, 20000));
  v1::BatchStatus s = env.Status("budgeted");
  EXPECT_TRUE(s.spend().held_by_budget());
  EXPECT_DOUBLE_EQ(s.spend().budget_usd(), 2.5);
  EXPECT_EQ(s.counts().at("queued"), 2);
  EXPECT_EQ(w.pending(), 0u);
  RunResult st = env.Ctl({"status", "--batch", "budgeted"});
  std::cout << "--- assessctl status (held)\n" << st.out;
  EXPECT_THAT(st.out, HasSubstr("HELD"));

  // The running jobs finish ($0.90 each: 60,000 output tokens at $15/M).
  v1::Usage spent;
  *spent.add_models() = MU("claude-sonnet-4-5", 3, 0, 60000, 0, 0);
  ASSERT_TRUE(Beat(w, a, spent).ok());
  ASSERT_TRUE(Finish(w, a, spent).ok());
  ASSERT_TRUE(Finish(w, b, spent).ok());
  s = env.Status("budgeted");
  EXPECT_EQ(s.counts().at("succeeded"), 2);
  EXPECT_NEAR(s.spend().spent().usd(), 1.8, 1e-9);
  // $1.80 spent + the next job's $1 cap passes $2.50: still held.
  EXPECT_TRUE(s.spend().held_by_budget());
  EXPECT_EQ(s.counts().at("queued"), 2);

  // Raised: the remaining two start.
  RunResult up = env.Ctl({"budget", "budgeted", "10"});
  ASSERT_EQ(up.exit_code, 0) << up.Describe();
  EXPECT_THAT(up.out, HasSubstr("budget $10.0000"));
  v1::Lease c = w.NextLease();
  v1::Lease d = w.NextLease();
  EXPECT_NE(c.job_id(), d.job_id());
  ASSERT_TRUE(PollUntil([&] { return Events(env, "budget_resumed") == 1; }, 20000));
  s = env.Status("budgeted");
  EXPECT_FALSE(s.spend().held_by_budget());
  EXPECT_NEAR(s.spend().avg_per_finished_usd(), 0.9, 1e-9);
  EXPECT_NEAR(s.spend().projected_usd(), 3.6, 1e-9);
  nlohmann::json j = JsonOut(env.Ctl({"status", "--batch", "budgeted", "-o", "json"}));
  EXPECT_EQ(j["spend"]["budget_usd"].get<double>(), 10.0);
  EXPECT_FALSE(j["spend"]["held_by_budget"].get<bool>());
  // A bad budget and a bad price table are refused, naming what is wrong.
  RunResult bad = env.Ctl({"budget", "budgeted", "-3"});
  EXPECT_NE(bad.exit_code, 0);
  WriteFile(env.dir.Join("m.json"), R"({"Name":"m"})");
  ExpectSubmitRefused(env, "budgeted", "--prices", "bad-prices.json",
                      R"({"providers":{"anthropic":{"m":{"input":1}}}})",
                      "bad-prices.json: providers.anthropic.m.output: is missing");
}

// `assessctl submit --budget --prices`: the batch's own prices replace the
// coordinator's for its figures and its leases; the budget is stored.
TEST(CostTest, SubmitSetsTheBatchsBudgetAndOwnPrices) {
  Env env;
  WriteFile(env.dir.Join("own.json"), R"({"providers":{"anthropic":{
    "claude-sonnet-4-5": {"input": 1, "output": 30, "cache_write": 0, "cache_read": 0}}}})");
  WriteFile(env.dir.Join("profile.json"), R"({"limits":{"budget":{"max_tokens":1000000}}})");
  WriteFile(env.dir.Join("m.json"), R"({"Name":"m"})");
  RunResult sub = env.Ctl({"submit", env.dir.Join("m.json"), "--batch", "own", "--budget", "5",
                           "--prices", env.dir.Join("own.json"), "--profile",
                           env.dir.Join("profile.json")});
  ASSERT_EQ(sub.exit_code, 0) << sub.Describe();
  Worker w(env, "w", 1);
  v1::Lease l = w.NextLease();
  ASSERT_TRUE(l.has_budget());
  EXPECT_EQ(l.budget().max_tokens(), 1000000);
  ASSERT_EQ(l.budget().prices_size(), 1);
  EXPECT_EQ(l.budget().prices(0).model(), "claude-sonnet-4-5");
  EXPECT_DOUBLE_EQ(l.budget().prices(0).output(), 30);
  v1::Usage u;
  *u.add_models() = MU("claude-sonnet-4-5", 1, 0, 60000, 0, 0);
  ASSERT_TRUE(Finish(w, l, u).ok());
  v1::BatchStatus b = env.Status("own");
  EXPECT_DOUBLE_EQ(b.spend().budget_usd(), 5);
  EXPECT_NEAR(b.spend().spent().usd(), 1.8, 1e-9);  // 60,000 x $30/M, not the default $15/M
  EXPECT_FALSE(b.spend().spent().price_unknown());
  // A profile with a bad cap is refused before anything is sent, naming the field.
  ExpectSubmitRefused(env, "own2", "--profile", "bad-profile.json",
                      R"({"limits":{"budget":{"max_usd":-1}}})",
                      "bad-profile.json: profile.limits.budget.max_usd");
}

TEST(CostTest, CoordinatordRefusesABadPriceFileNamingIt) {
  TempDir dir;
  WriteFile(dir.Join("p.json"), R"({"providers":{"a":{"m":{"input":-1}}}})");
  RunResult r = aqtest::Run({BinPath("coordinatord"), "--db", dir.Join("x.db"), "--listen",
                     "unix:" + dir.Join("c.sock"), "--prices", dir.Join("p.json")},
                    20000);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_THAT(r.out + r.err, HasSubstr("p.json: providers.a.m.input: must be 0 or more"));
}

}  // namespace
}  // namespace aqtest
