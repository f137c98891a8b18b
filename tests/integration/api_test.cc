// The coordinator's gRPC surface, called directly: the stock health and
// reflection services, server-side intake of file names, fencing tokens
// (stale ones are refused and change nothing), a worker that vanishes while
// holding a lease, and TLS on loopback TCP (with client certificates).
#include <google/protobuf/descriptor.pb.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/integration/harness.h"
#include "tests/integration/lease_taker.h"
#include "tests/integration/operator_rpc.h"
#include "worker/api_client.h"

namespace aqtest {
namespace {
namespace fs = std::filesystem;
namespace v1 = assessq::v1;
namespace refl = grpc::reflection::v1alpha;

// A coordinator in its own temp dir with an operator and a worker token.
struct Env {
  explicit Env(double lease_seconds = 30, CoordinatorOptions opt = {}) {
    opt.lease_seconds = lease_seconds;
    coord = std::make_unique<Coordinator>(dir.path(), opt);
    op_file = coord->CreateToken("operator", "ops");
    wk_file = coord->CreateToken("worker", "workers");
    op = ReadToken(op_file);
    wk = ReadToken(wk_file);
  }
  ~Env() {
    workers.clear();
    if (coord) {
      try {
        coord->Stop();
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
      if (::testing::Test::HasFailure())
        std::cerr << "coordinatord log tail:\n" << Tail(coord->log()) << "\n";
    }
  }

  v1::SubmitResponse Submit(const std::string& batch,
                            const std::vector<std::pair<std::string, std::string>>& files,
                            int64_t backoff_ms = 50,
                            std::map<std::string, int> max_attempts = {}) {
    v1::SubmitRequest req;
    req.set_batch(batch);
    for (const auto& [name, content] : files) {
      auto* f = req.add_files();
      f->set_source_name(name);
      f->set_content(content);
    }
    req.mutable_retry_policy()->set_backoff_base_ms(backoff_ms);
    req.mutable_retry_policy()->set_backoff_max_ms(backoff_ms * 2);
    for (const auto& [cls, n] : max_attempts)
      (*req.mutable_retry_policy()->mutable_max_attempts())[cls] = n;
    return SubmitRpc(*coord, op, req);
  }

  v1::JobDetail Show(int64_t job) { return ShowJobRpc(*coord, op, job); }

  grpc::Status Result(int64_t job, v1::ResultResponse* out) {
    v1::JobRef ref;
    ref.set_job_id(job);
    auto ctx = Ctx(op);
    return coord->OperatorStub()->GetResult(ctx.get(), ref, out);
  }

  Child* StartSim(const std::string& name, int slots, int work_ms) {
    workers.push_back(Child::Spawn(
        {BinPath("assessq-simworker"), "--coordinator", coord->address(), "--token-file",
         wk_file, "--name", name, "--slots", std::to_string(slots), "--work-ms",
         std::to_string(work_ms)},
        dir.Join(name + ".log")));
    return workers.back().get();
  }

  TempDir dir;
  std::unique_ptr<Coordinator> coord;
  std::string op_file, wk_file, op, wk;
  std::vector<std::unique_ptr<Child>> workers;
};

std::string Meta(const std::string& name) { return nlohmann::json{{"Name", name}}.dump(); }

// An in-process worker on the test's coordinator (the worker token unless
// another is given).
class TestWorker : public LeaseTaker {
 public:
  TestWorker(const Env& env, const std::string& name, int slots, const std::string& token = "")
      : LeaseTaker(env.coord->address(), token.empty() ? env.wk : token, name, slots) {}
};

// Heartbeats one lease every 100 ms until destroyed, so it stays held.
class KeepAlive {
 public:
  KeepAlive(assessq::ApiClient& api, int64_t job, int64_t token) {
    thread_ = std::thread([this, &api, job, token] {
      std::unique_lock<std::mutex> l(mu_);
      while (!stop_) {
        l.unlock();
        v1::HeartbeatRequest hb;
        hb.set_job_id(job);
        hb.set_token(token);
        hb.set_running(true);
        auto r = api.Heartbeat(hb);
        if (!r.ok() && r.status().code() == absl::StatusCode::kFailedPrecondition) lost_ = true;
        if (r.ok()) {
          expires_at_ms_ = r->lease_expires_at_ms();
          last_ok_ms_ = NowMs();
          ++answered_;
        }
        l.lock();
        cv_.wait_for(l, std::chrono::milliseconds(100), [&] { return stop_; });
      }
    });
  }
  ~KeepAlive() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  bool lost() const { return lost_; }
  int answered() const { return answered_; }  // heartbeats the coordinator answered
  int64_t expires_at_ms() const { return expires_at_ms_; }  // the last answer's lease expiry
  int64_t last_ok_ms() const { return last_ok_ms_; }        // when it came

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<bool> lost_{false};
  std::atomic<int> answered_{0};
  std::atomic<int64_t> expires_at_ms_{0}, last_ok_ms_{0};
  std::thread thread_;
};

v1::CompleteRequest Success(const v1::Lease& l, const std::string& json) {
  v1::CompleteRequest c;
  c.set_job_id(l.job_id());
  c.set_token(l.token());
  c.set_result_json(json);
  return c;
}

// What a stale call must not change: the job, its attempts, events, result.
std::string Fingerprint(const v1::JobDetail& d) {
  std::string s = std::to_string(d.job().state()) + "|" + std::to_string(d.job().attempts()) +
                  "|" + d.job().worker() + "|" + std::to_string(d.job().updated_at_ms());
  for (const auto& a : d.attempts())
    s += "|" + std::to_string(a.attempt_id()) + ":" + a.outcome() + ":" +
         std::to_string(a.failure_class()) + ":" + std::to_string(a.ended_at_ms());
  s += "|events=" + std::to_string(d.events_size());
  return s;
}

// ------------------------------------------------------------------ stock services

TEST(ApiTest, HealthServiceReportsServing) {
  Env env;
  env.coord->Start();
  auto ch = env.coord->NewChannel();
  auto h = CheckHealth(ch, "");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, grpc::health::v1::HealthCheckResponse::SERVING);
  // No token is needed for health; unknown services are NOT_FOUND.
  auto unknown = CheckHealth(ch, "no.such.Service");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound) << unknown.status();
}

TEST(ApiTest, ReflectionListsBothServices) {
  Env env;
  env.coord->Start();
  auto stub = refl::ServerReflection::NewStub(env.coord->NewChannel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&ctx);

  refl::ServerReflectionRequest list;
  list.set_list_services("*");
  ASSERT_TRUE(stream->Write(list));
  refl::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_TRUE(resp.has_list_services_response()) << resp.DebugString();
  std::set<std::string> names;
  for (const auto& s : resp.list_services_response().service()) names.insert(s.name());
  EXPECT_TRUE(names.count("assessq.v1.OperatorService")) << resp.DebugString();
  EXPECT_TRUE(names.count("assessq.v1.WorkerService")) << resp.DebugString();

  // The descriptor of the worker service comes back too.
  refl::ServerReflectionRequest sym;
  sym.set_file_containing_symbol("assessq.v1.WorkerService");
  ASSERT_TRUE(stream->Write(sym));
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_TRUE(resp.has_file_descriptor_response()) << resp.DebugString();
  bool found = false;
  for (const auto& bytes : resp.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto fd;
    ASSERT_TRUE(fd.ParseFromString(bytes));
    if (fd.name() != "assessq/v1/assessq.proto") continue;
    for (const auto& svc : fd.service()) {
      if (svc.name() != "WorkerService") continue;
      std::set<std::string> methods;
      for (const auto& m : svc.method()) methods.insert(m.name());
      EXPECT_EQ(methods, (std::set<std::string>{"Session", "Heartbeat", "Complete", "AppendLog"}));
      found = true;
    }
  }
  EXPECT_TRUE(found);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// ------------------------------------------------------------------ intake

TEST(ApiTest, SubmitDerivesKeysFromFileNamesNeverPaths) {
  Env env;
  env.coord->Start();
  auto r = env.Submit("paths", {{"../../etc/passwd.json", Meta("p")},
                                {"dir/ma’aks copy.json", Meta("m")},
                                {"..", Meta("dots")},
                                {"sub/", Meta("empty")},
                                {"a\\b.json", Meta("backslash")},
                                {"ok.json", "[1]"},
                                {"twice.json", Meta("1")},
                                {"other/twice.json", Meta("2")}});
  ASSERT_EQ(r.items_size(), 8);
  EXPECT_EQ(r.items(0).outcome(), v1::SubmitItem::OUTCOME_CREATED);
  EXPECT_EQ(r.items(0).dataset_key(), "passwd");
  EXPECT_EQ(r.items(1).outcome(), v1::SubmitItem::OUTCOME_CREATED);
  EXPECT_EQ(r.items(1).dataset_key(), "ma’aks copy");
  for (int i : {2, 3, 4, 5, 7}) {
    EXPECT_EQ(r.items(i).outcome(), v1::SubmitItem::OUTCOME_REJECTED) << r.items(i).DebugString();
    EXPECT_FALSE(r.items(i).error().empty());
    EXPECT_EQ(r.items(i).job_id(), 0);
  }
  EXPECT_EQ(r.items(6).outcome(), v1::SubmitItem::OUTCOME_CREATED);
  EXPECT_NE(r.items(7).error().find("appears twice"), std::string::npos) << r.items(7).error();
  EXPECT_EQ(r.items(2).source_name(), "..");
}

// ------------------------------------------------------------------ fencing

// A worker session driven by hand (no ApiClient, so no fallback to the
// RPCs): for tests of what the coordinator does with each message on it.
// Sends Hello at once; cancelled when destroyed; every read is bounded by a
// 60 s deadline, so a missing answer fails the test instead of hanging it.
class RawSession {
 public:
  RawSession(const Env& env, const std::string& token, const std::string& worker)
      : stub_(v1::WorkerService::NewStub(env.coord->NewChannel())) {
    ctx_.AddMetadata("authorization", "Bearer " + token);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stream_ = stub_->Session(&ctx_);
    v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_name(worker);
    hello.mutable_hello()->set_slots(1);
    hello_sent_ = stream_->Write(hello);
  }
  ~RawSession() { ctx_.TryCancel(); }

  bool hello_sent() const { return hello_sent_; }
  v1::WorkerService::Stub& stub() { return *stub_; }
  bool Send(const v1::WorkerMessage& m) { return stream_->Write(m); }

  // The next lease (an empty one if the session ends first).
  v1::Lease NextLease() {
    v1::CoordinatorMessage m;
    while (stream_->Read(&m))
      if (m.has_lease()) return m.lease();
    return v1::Lease();
  }
  v1::HeartbeatAck Beat(const v1::HeartbeatRequest& hb) {
    v1::WorkerMessage w;
    *w.mutable_heartbeat() = hb;
    EXPECT_TRUE(Send(w));
    v1::CoordinatorMessage a;
    while (stream_->Read(&a))
      if (a.has_heartbeat_ack()) return a.heartbeat_ack();
    ADD_FAILURE() << "the session ended without answering heartbeat " << hb.seq();
    return v1::HeartbeatAck();
  }
  v1::CompleteAck Complete(const v1::CompleteRequest& req, uint64_t seq) {
    v1::WorkerMessage w;
    w.mutable_complete()->set_seq(seq);
    *w.mutable_complete()->mutable_request() = req;
    EXPECT_TRUE(Send(w));
    v1::CoordinatorMessage a;
    while (stream_->Read(&a))
      if (a.has_complete_ack()) return a.complete_ack();
    ADD_FAILURE() << "the session ended without answering completion " << seq;
    return v1::CompleteAck();
  }
  // Reads until the coordinator ends the session; what came meanwhile goes
  // to `got`; returns how it ended.
  grpc::Status ReadToEnd(std::vector<v1::CoordinatorMessage>* got) {
    v1::CoordinatorMessage m;
    while (stream_->Read(&m)) got->push_back(m);
    return stream_->Finish();
  }

 private:
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>> stream_;
  bool hello_sent_ = false;
};

v1::HeartbeatRequest Beat(int64_t job, int64_t token, bool running, uint64_t seq) {
  v1::HeartbeatRequest hb;
  hb.set_job_id(job);
  hb.set_token(token);
  hb.set_running(running);
  hb.set_seq(seq);
  return hb;
}

// A heartbeat sent on the session (what ApiClient does while the session is
// up) is fenced exactly as the RPC: a held lease is renewed and marked
// running, a stale or unknown token gets FAILED_PRECONDITION; each answer
// comes back on the session with the request's seq. Driven here on a raw
// stream, so the test does not depend on ApiClient choosing the session.
TEST(ApiTest, HeartbeatOnTheSessionIsAnsweredThereAndFenced) {
  Env env(5.0);
  env.coord->Start();
  auto sub = env.Submit("beat", {{"b.json", Meta("b")}});
  const int64_t job = sub.items(0).job_id();

  RawSession session(env, env.wk, "raw");
  ASSERT_TRUE(session.hello_sent());
  v1::Lease lease = session.NextLease();
  ASSERT_EQ(lease.job_id(), job);
  auto beat = [&](int64_t token, bool running, uint64_t seq) {
    return session.Beat(Beat(job, token, running, seq));
  };
  const int64_t before_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
  v1::HeartbeatAck ok = beat(lease.token(), true, 7);
  EXPECT_EQ(ok.seq(), 7u);
  EXPECT_EQ(ok.code(), 0) << ok.error();
  EXPECT_EQ(ok.job_id(), job);
  EXPECT_EQ(ok.token(), lease.token());
  EXPECT_GE(ok.lease_expires_at_ms(), before_ms + 4000);  // renewed for a lease period (5 s)
  EXPECT_EQ(env.Show(job).job().state(), v1::JOB_STATE_RUNNING);

  v1::HeartbeatAck stale = beat(lease.token() + 1000, false, 8);
  EXPECT_EQ(stale.seq(), 8u);
  EXPECT_EQ(stale.code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_NE(stale.error().find("not held"), std::string::npos) << stale.error();
  EXPECT_EQ(stale.lease_expires_at_ms(), 0);

  // The lease stays held by the good token only: after more than one lease
  // period of session heartbeats, the attempt is still the first one.
  // (Until the expiry the first answer announced is 2 s past.)
  uint64_t seq = 100;
  PollUntil(
      [&] {
        EXPECT_EQ(beat(lease.token(), false, seq++).code(), 0);
        return NowMs() > ok.lease_expires_at_ms() + 2000;
      },
      20000, 500);
  v1::JobDetail d = env.Show(job);
  EXPECT_EQ(d.job().state(), v1::JOB_STATE_RUNNING);
  ASSERT_EQ(d.attempts_size(), 1);
  EXPECT_EQ(d.attempts(0).outcome(), "running");
}


// A completion sent on the session (what ApiClient does while it is up) is
// answered there with the same seq and fenced exactly as the RPC: stored
// once, a re-send is a duplicate, a stale token is FAILED_PRECONDITION and an
// oversized upload INVALID_ARGUMENT.
TEST(ApiTest, CompleteOnTheSessionIsAnsweredThereAndFenced) {
  Env env(30.0);
  env.coord->Start();
  auto sub = env.Submit("sc", {{"s.json", Meta("s")}});
  const int64_t job = sub.items(0).job_id();
  RawSession session(env, env.wk, "raw-complete");
  ASSERT_TRUE(session.hello_sent());
  v1::Lease lease = session.NextLease();
  ASSERT_EQ(lease.job_id(), job);
  auto complete = [&](const v1::CompleteRequest& req, uint64_t seq) {
    return session.Complete(req, seq);
  };
  v1::CompleteRequest big = Success(lease, std::string(9 << 20, ' '));
  v1::CompleteAck too_big = complete(big, 1);
  EXPECT_EQ(too_big.seq(), 1u);
  EXPECT_EQ(too_big.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT)) << too_big.error();

  const std::string json = ValidAssessment("s", "stored once");
  v1::CompleteAck ok = complete(Success(lease, json), 2);
  EXPECT_EQ(ok.seq(), 2u);
  ASSERT_EQ(ok.code(), 0) << ok.error();
  EXPECT_EQ(ok.response().job_state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_FALSE(ok.response().duplicate());
  v1::CompleteAck again = complete(Success(lease, json), 3);
  ASSERT_EQ(again.code(), 0) << again.error();
  EXPECT_TRUE(again.response().duplicate());
  v1::CompleteRequest stale = Success(lease, json);
  stale.set_token(lease.token() + 1000);
  v1::CompleteAck refused = complete(stale, 4);
  EXPECT_EQ(refused.code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));

  v1::ResultResponse r;
  ASSERT_TRUE(env.Result(job, &r).ok());
  EXPECT_EQ(r.attempt_id(), lease.token());
  EXPECT_EQ(nlohmann::json::parse(r.result_json()), nlohmann::json::parse(json));
  v1::JobDetail d = env.Show(job);
  ASSERT_EQ(d.attempts_size(), 1);
  EXPECT_EQ(d.attempts(0).outcome(), "succeeded");
}

// A lease belongs to the worker token whose session took it: another worker
// token cannot renew it or complete it, on the session or by RPC
// (FAILED_PRECONDITION: not held, do not retry), or take over the worker's
// name while it holds leases (PERMISSION_DENIED); across a coordinator
// restart too.
TEST(ApiTest, LeaseIsBoundToTheTokenThatTookIt) {
  Env env(30.0);
  env.coord->Start();
  auto sub = env.Submit("bound", {{"b.json", Meta("b")}});
  const int64_t job = sub.items(0).job_id();
  TestWorker owner(env, "owner", 1);
  v1::Lease l = owner.NextLease();
  ASSERT_EQ(l.job_id(), job);
  const std::string other = ReadToken(env.coord->CreateToken("worker", "other-host"));

  auto expect_denied = [&](const std::string& what) {
    TestWorker intruder(env, "intruder", 0, other);
    v1::HeartbeatRequest hb;
    hb.set_job_id(job);
    hb.set_token(l.token());
    hb.set_running(true);
    absl::Status s;
    PollUntil([&] { return intruder.api().connected(); }, 5000, 50);
    ASSERT_TRUE(intruder.api().connected()) << what;
    s = intruder.api().Heartbeat(hb).status();  // on its session
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << what << ": " << s;
    EXPECT_NE(s.message().find("another worker token"), absl::string_view::npos) << s;
    // The RPC, on its own channel.
    auto stub = v1::WorkerService::NewStub(env.coord->NewChannel());
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + other);
    v1::HeartbeatResponse hr;
    EXPECT_EQ(stub->Heartbeat(&ctx, hb, &hr).error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << what;
    s = intruder.api().Complete(Success(l, ValidAssessment("b", "forged"))).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << what << ": " << s;
    EXPECT_NE(s.message().find("another worker token"), absl::string_view::npos) << s;
    // A session that says it is "owner" is refused.
    RawSession takeover(env, other, "owner");
    std::vector<v1::CoordinatorMessage> got;
    EXPECT_EQ(takeover.ReadToEnd(&got).error_code(), grpc::StatusCode::PERMISSION_DENIED) << what;
    for (const auto& m : got) ADD_FAILURE() << what << ": takeover got " << m.DebugString();
    // Nothing changed.
    v1::JobDetail d = env.Show(job);
    EXPECT_EQ(d.job().state(), v1::JOB_STATE_LEASED) << what;
    ASSERT_EQ(d.attempts_size(), 1) << what;
    EXPECT_EQ(d.attempts(0).outcome(), "leased") << what;
    v1::ResultResponse r;
    EXPECT_EQ(env.Result(job, &r).error_code(), grpc::StatusCode::NOT_FOUND) << what;
  };
  expect_denied("before a restart");
  env.coord->Restart();
  PollUntil([&] { return owner.api().connected(); }, 10000, 50);
  expect_denied("after a restart");

  // The owner's token still can.
  auto c = owner.api().Complete(Success(l, ValidAssessment("b", "real")));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->job_state(), v1::JOB_STATE_SUCCEEDED);
}

// Live output is bound to the lease like heartbeats and completions: only
// the worker token that holds the attempt's lease may append to it. Another
// worker token (with the right job and token), a stale token, the right
// token under another job's id, and the holder after the lease ended are
// all refused with FAILED_PRECONDITION, and change nothing a follower reads;
// across a coordinator restart too.
TEST(ApiTest, AppendLogIsBoundToTheLease) {
  Env env(30.0);
  env.coord->Start();
  auto sub = env.Submit("live", {{"l.json", Meta("l")}, {"m.json", Meta("m")}});
  const int64_t job = sub.items(0).job_id();
  TestWorker owner(env, "owner", 1);
  v1::Lease l = owner.NextLease();
  ASSERT_EQ(l.job_id(), job);
  const std::string other = ReadToken(env.coord->CreateToken("worker", "other-host"));
  auto stub = v1::WorkerService::NewStub(env.coord->NewChannel());
  auto append = [&](const std::string& token, int64_t job_id, int64_t lease_token,
                    int64_t offset, const std::string& data) {
    v1::LogAppendRequest a;
    a.set_job_id(job_id);
    a.set_token(lease_token);
    a.set_offset(offset);
    a.set_data(data);
    v1::Empty e;
    auto ctx = Ctx(token);
    return stub->AppendLog(ctx.get(), a, &e);
  };
  auto read = [&]() {
    v1::LogReadRequest r;
    r.mutable_job()->set_job_id(job);
    v1::LogReadResponse resp;
    auto ctx = Ctx(env.op);
    auto st = env.coord->OperatorStub()->ReadLog(ctx.get(), r, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.data();
  };
  auto expect_refused = [&](const grpc::Status& st, const std::string& says,
                            const std::string& what) {
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << what << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(says), std::string::npos) << what << ": "
                                                                 << st.error_message();
  };

  grpc::Status ok = append(env.wk, job, l.token(), 0, "owner line\n");
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(read(), "owner line\n");
  std::string kept = "owner line\n";
  auto intruders = [&](const std::string& when) {
    expect_refused(append(other, job, l.token(), static_cast<int64_t>(kept.size()),
                          "forged \x1b]0;owned\x07\n"),
                   "another worker token", "another worker token " + when);
    expect_refused(append(env.wk, job, l.token() + 1000, 0, "stale\n"), "not held",
                   "a stale token " + when);
    expect_refused(append(env.wk, sub.items(1).job_id(), l.token(), 0, "wrong job\n"),
                   "not held", "another job's id " + when);
  };
  intruders("before a restart");
  EXPECT_EQ(read(), kept) << "refused appends must change nothing";

  // After a restart the recovered lease is still bound to its token.
  env.coord->Restart();
  PollUntil([&] { return owner.api().connected(); }, 10000, 50);
  intruders("after a restart");
  ok = append(env.wk, job, l.token(), 0, "after restart\n");
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(read(), "after restart\n");

  // Once the lease ends the holder cannot append either; the output stays.
  auto c = owner.api().Complete(Success(l, ValidAssessment("l", "done")));
  ASSERT_TRUE(c.ok()) << c.status();
  expect_refused(append(env.wk, job, l.token(), 14, "late\n"), "not held", "after completion");
  EXPECT_EQ(read(), "after restart\n");
}

// Revoking a worker token shuts it out within the token cache's lifetime,
// on the session it already has open too: its heartbeats there end the
// session, as its unary calls are refused.
TEST(ApiTest, RevokedWorkerTokenLosesItsOpenSession) {
  Env env(30.0);
  env.coord->Start();
  auto sub = env.Submit("revoke", {{"r.json", Meta("r")}});
  const int64_t job = sub.items(0).job_id();
  const std::string doomed = ReadToken(env.coord->CreateToken("worker", "doomed-host"));
  RawSession session(env, doomed, "doomed");
  ASSERT_TRUE(session.hello_sent());
  v1::Lease lease = session.NextLease();
  ASSERT_EQ(lease.job_id(), job);
  v1::HeartbeatAck first = session.Beat(Beat(job, lease.token(), false, 1));
  EXPECT_EQ(first.code(), 0) << first.error();

  auto r = aqtest::Run({BinPath("coordinatord"), "--db", env.coord->db(), "token", "revoke",
                        "doomed-host"},
               30000);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  // Until the token cache has let go of it (at most its lifetime, 5 s): a
  // call with it is refused as unauthenticated (not "not held": the lease
  // token is stale on purpose, so the call changes nothing).
  PollUntil(
      [&] {
        grpc::ClientContext pctx;
        pctx.AddMetadata("authorization", "Bearer " + doomed);
        pctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        v1::HeartbeatResponse presp;
        return session.stub()
                   .Heartbeat(&pctx, Beat(job, lease.token() + 1000, false, 0), &presp)
                   .error_code() == grpc::StatusCode::UNAUTHENTICATED;
      },
      15000, 100);
  v1::WorkerMessage beat;
  *beat.mutable_heartbeat() = Beat(job, lease.token(), false, 2);
  session.Send(beat);
  std::vector<v1::CoordinatorMessage> got;
  EXPECT_EQ(session.ReadToEnd(&got).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  bool acked = false;
  for (const auto& m : got) acked = acked || m.has_heartbeat_ack();
  EXPECT_FALSE(acked) << "a revoked token's heartbeat was answered";
  // And its calls are refused.
  grpc::ClientContext uctx;
  uctx.AddMetadata("authorization", "Bearer " + doomed);
  v1::HeartbeatResponse hr;
  EXPECT_EQ(session.stub().Heartbeat(&uctx, beat.heartbeat(), &hr).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

// A restart resumes each lease's clock where it stopped: a dead worker's
// lease runs out about one lease period after its last heartbeat even when
// the coordinator restarts every second (each restart used to grant a fresh
// period, so restarts in a row kept it alive forever).
TEST(ApiTest, DeadWorkersLeaseRunsOutThroughRestartsInARow) {
  Env env(3.0);
  env.coord->Start();
  auto sub = env.Submit("dead", {{"d.json", Meta("d")}});
  const int64_t job = sub.items(0).job_id();
  auto last_beat = std::chrono::steady_clock::now();
  {
    TestWorker w(env, "doomed", 1);
    v1::Lease l = w.NextLease();
    ASSERT_EQ(l.job_id(), job);
    v1::HeartbeatRequest hb;
    hb.set_job_id(job);
    hb.set_token(l.token());
    hb.set_running(true);
    ASSERT_TRUE(w.api().Heartbeat(hb).ok());
    last_beat = std::chrono::steady_clock::now();
  }  // the worker is gone without a word
  bool expired = false;
  int restarts = 0;
  // A restart every 700 ms until the lease has run out (ten at most).
  PollUntil(
      [&] {
        env.coord->Restart();
        ++restarts;
        v1::JobDetail d = env.Show(job);
        expired = d.attempts_size() >= 1 && d.attempts(0).outcome() == "expired";
        return expired || restarts >= 10;
      },
      60000, 700);
  const double after_s = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                       last_beat).count();
  ASSERT_TRUE(expired) << "the dead worker's lease was still held after " << restarts
                       << " restarts, " << after_s << " s after its last heartbeat";
  // One period (3 s), plus the time the coordinator was down, plus slack.
  EXPECT_LT(after_s, 8.0) << restarts << " restarts";
}

// ... while a live worker keeps its lease through an outage longer than the
// lease period: the clock stood still while the coordinator was down.
TEST(ApiTest, LiveWorkerKeepsItsLeaseThroughALongOutage) {
  Env env(3.0);
  env.coord->Start();
  auto sub = env.Submit("live", {{"l.json", Meta("l")}});
  const int64_t job = sub.items(0).job_id();
  TestWorker w(env, "survivor", 1);
  v1::Lease l = w.NextLease();
  ASSERT_EQ(l.job_id(), job);
  KeepAlive keep(w.api(), job, l.token());
  PollUntil([&] { return keep.answered() >= 1; }, 10000, 20);  // the lease is renewed
  env.coord->Kill();
  // Down until the lease's last announced expiry is 1.5 s past (> one lease period).
  PollUntil([&] { return NowMs() > keep.expires_at_ms() + 1500; }, 20000, 50);
  env.coord->Start();
  // Up until the keep-alive has been answered more than a lease period (3 s)
  // after the restart, or has lost the lease.
  const int64_t up_ms = NowMs();
  PollUntil([&] { return keep.lost() || keep.last_ok_ms() > up_ms + 3500; }, 20000, 50);
  EXPECT_FALSE(keep.lost());
  v1::JobDetail d = env.Show(job);
  ASSERT_EQ(d.attempts_size(), 1) << d.DebugString();
  EXPECT_EQ(d.attempts(0).outcome(), "running");
  EXPECT_EQ(d.job().state(), v1::JOB_STATE_RUNNING);
}

TEST(ApiTest, StaleFencingTokenIsRefusedAndChangesNothing) {
  Env env(1.0);
  env.coord->Start();
  auto sub = env.Submit("fence", {{"f.json", Meta("f")}});
  const int64_t job = sub.items(0).job_id();
  TestWorker w(env, "fencer", 1);

  // Attempt 1: never renewed, so it expires after one lease period; the job
  // is leased again (same worker, new token).
  v1::Lease l1 = w.NextLease();
  ASSERT_EQ(l1.job_id(), job);
  v1::Lease l2 = w.NextLease();
  ASSERT_EQ(l2.job_id(), job);
  ASSERT_NE(l2.token(), l1.token());
  EXPECT_EQ(l2.attempt_number(), 2);
  // Mark it running first (that changes the job), then keep it held.
  v1::HeartbeatRequest start;
  start.set_job_id(job);
  start.set_token(l2.token());
  start.set_running(true);
  ASSERT_TRUE(w.api().Heartbeat(start).ok());
  KeepAlive keep(w.api(), job, l2.token());

  v1::JobDetail before = env.Show(job);
  ASSERT_EQ(before.attempts_size(), 2);
  EXPECT_EQ(before.attempts(0).outcome(), "expired");
  EXPECT_EQ(before.attempts(0).failure_class(), v1::FAILURE_CLASS_INFRA);

  auto expect_stale = [&](const absl::Status& s, const std::string& what) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << what << ": " << s;
  };
  v1::HeartbeatRequest hb;
  hb.set_job_id(job);
  hb.set_token(l1.token());
  expect_stale(w.api().Heartbeat(hb).status(), "heartbeat, old token");
  hb.set_running(true);
  expect_stale(w.api().Heartbeat(hb).status(), "heartbeat running, old token");
  hb.set_token(l2.token() + 1000);
  expect_stale(w.api().Heartbeat(hb).status(), "heartbeat, unknown token");

  expect_stale(w.api().Complete(Success(l1, ValidAssessment("f", "stale"))).status(),
               "complete result, old token");
  v1::CompleteRequest fail = Success(l1, "");
  fail.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_AGENT);
  fail.mutable_failure()->set_reason("late failure");
  expect_stale(w.api().Complete(fail).status(), "complete failure, old token");
  v1::CompleteRequest rel = Success(l1, "");
  rel.mutable_release()->set_reason("late release");
  expect_stale(w.api().Complete(rel).status(), "complete release, old token");
  v1::CompleteRequest bogus = Success(l2, ValidAssessment("f", "bogus"));
  bogus.set_token(l2.token() + 1000);
  expect_stale(w.api().Complete(bogus).status(), "complete, unknown token");
  v1::CompleteRequest wrong_job = Success(l2, ValidAssessment("f", "bogus"));
  wrong_job.set_job_id(job + 1000);
  expect_stale(w.api().Complete(wrong_job).status(), "complete, token of another job");

  v1::JobDetail after = env.Show(job);
  EXPECT_EQ(Fingerprint(after), Fingerprint(before)) << "stale calls changed the job";
  v1::ResultResponse res;
  EXPECT_EQ(env.Result(job, &res).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_FALSE(keep.lost()) << "the current lease must stay held";

  // The current token completes; a retry of it is a duplicate.
  auto done = w.api().Complete(Success(l2, ValidAssessment("f", "fresh")));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->job_state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_FALSE(done->duplicate());
  auto again = w.api().Complete(Success(l2, ValidAssessment("f", "fresh")));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate());
  // After completion neither token is held.
  hb.set_token(l2.token());
  expect_stale(w.api().Heartbeat(hb).status(), "heartbeat after completion");
  expect_stale(w.api().Complete(Success(l1, ValidAssessment("f", "stale"))).status(),
               "old token after completion");

  ASSERT_TRUE(env.Result(job, &res).ok());
  EXPECT_EQ(res.attempt_id(), l2.token());
  EXPECT_EQ(res.result_json(), ValidAssessment("f", "fresh"));
  v1::JobDetail final_d = env.Show(job);
  ASSERT_EQ(final_d.attempts_size(), 2);
  EXPECT_EQ(final_d.attempts(0).outcome(), "expired");
  EXPECT_EQ(final_d.attempts(1).outcome(), "succeeded");
  int succeeded = 0;
  for (const auto& e : final_d.events()) succeeded += e.kind() == "succeeded";
  EXPECT_EQ(succeeded, 1);
}

// A token whose attempt the coordinator recorded as an agent failure is
// stale: a later success with it is refused (FAILED_PRECONDITION), not
// answered as a duplicate; only a result that was itself recorded as an
// invalid_output failure is a duplicate (see the repair-loop test).
// Regression: engine.cc at b402d9a took any (success, recorded failed) pair
// for an outbox retry and answered OK with duplicate=true.
TEST(ApiTest, SuccessWithTheTokenOfAnAgentFailedAttemptIsRefused) {
  Env env(5.0);
  env.coord->Start();
  auto sub = env.Submit("fence2", {{"g.json", Meta("g")}}, 50, {{"agent", 5}});
  const int64_t job = sub.items(0).job_id();
  TestWorker w(env, "fencer", 1);
  v1::Lease l1 = w.NextLease();
  v1::CompleteRequest fail = Success(l1, "");
  fail.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_AGENT);
  fail.mutable_failure()->set_reason("agent exited 1");
  auto f = w.api().Complete(fail);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->job_state(), v1::JOB_STATE_QUEUED);
  v1::Lease l2 = w.NextLease();
  v1::HeartbeatRequest start;
  start.set_job_id(job);
  start.set_token(l2.token());
  start.set_running(true);
  ASSERT_TRUE(w.api().Heartbeat(start).ok());
  KeepAlive keep(w.api(), job, l2.token());
  v1::JobDetail before = env.Show(job);

  auto late = w.api().Complete(Success(l1, ValidAssessment("g", "late")));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition)
      << (late.ok() ? "OK, duplicate=" + std::to_string(late->duplicate()) +
                          ", job_state=" + std::to_string(late->job_state())
                    : late.status().ToString());
  // What does hold: nothing changed and nothing was stored.
  EXPECT_EQ(Fingerprint(env.Show(job)), Fingerprint(before));
  v1::ResultResponse res;
  EXPECT_EQ(env.Result(job, &res).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(ApiTest, CancelAndDrainArePushedToTheWorkerAndFenceTheLease) {
  Env env(30);
  env.coord->Start();
  auto sub = env.Submit("push", {{"p.json", Meta("p")}});
  const int64_t job = sub.items(0).job_id();
  TestWorker w(env, "pushed", 1);
  v1::Lease l = w.NextLease();
  v1::HeartbeatRequest hb;
  hb.set_job_id(job);
  hb.set_token(l.token());
  hb.set_running(true);
  ASSERT_TRUE(w.api().Heartbeat(hb).ok());

  v1::CancelRequest cancel;
  cancel.mutable_job()->set_job_id(job);
  v1::CountResponse count;
  auto ctx = Ctx(env.op);
  ASSERT_TRUE(env.coord->OperatorStub()->Cancel(ctx.get(), cancel, &count).ok());
  EXPECT_EQ(count.count(), 1);
  v1::CoordinatorMessage n = w.NextNotice();
  ASSERT_TRUE(n.has_cancel()) << n.DebugString();
  EXPECT_EQ(n.cancel().job_id(), job);
  EXPECT_EQ(n.cancel().token(), l.token());
  // The cancelled lease is fenced off.
  EXPECT_EQ(w.api().Heartbeat(hb).status().code(), absl::StatusCode::kFailedPrecondition);
  auto late = w.api().Complete(Success(l, ValidAssessment("p", "after cancel")));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition) << late.status();
  v1::ResultResponse res;
  EXPECT_EQ(env.Result(job, &res).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(env.Show(job).job().state(), v1::JOB_STATE_CANCELLED);

  v1::DrainRequest drain;
  drain.set_worker("pushed");
  v1::Empty e;
  auto ctx2 = Ctx(env.op);
  ASSERT_TRUE(env.coord->OperatorStub()->DrainWorker(ctx2.get(), drain, &e).ok());
  n = w.NextNotice();
  EXPECT_TRUE(n.has_drain()) << n.DebugString();
}

// A release hands the job back without using an attempt: the next lease
// carries the same attempt number, and the released attempt stays in the
// history.
TEST(ApiTest, ReleaseHandsTheJobBackWithoutUsingAnAttempt) {
  Env env(30);
  env.coord->Start();
  auto sub = env.Submit("release", {{"q.json", Meta("q")}});
  const int64_t job = sub.items(0).job_id();
  TestWorker w(env, "releaser", 1);
  v1::Lease l1 = w.NextLease();
  EXPECT_EQ(l1.attempt_number(), 1);
  v1::CompleteRequest rel = Success(l1, "");
  rel.mutable_release()->set_reason("host short of disk");
  auto r = w.api().Complete(rel);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->job_state(), v1::JOB_STATE_QUEUED);
  v1::Lease l2 = w.NextLease();
  EXPECT_EQ(l2.job_id(), job);
  EXPECT_NE(l2.token(), l1.token());
  EXPECT_EQ(l2.attempt_number(), 1) << "a released attempt is not counted";
  auto ok = w.api().Complete(Success(l2, ValidAssessment("q")));
  ASSERT_TRUE(ok.ok()) << ok.status();
  v1::JobDetail d = env.Show(job);
  EXPECT_EQ(d.job().attempts(), 1);
  ASSERT_EQ(d.attempts_size(), 2);
  EXPECT_EQ(d.attempts(0).outcome(), "released");
  EXPECT_EQ(d.attempts(0).error(), "host short of disk");
  EXPECT_EQ(d.attempts(1).outcome(), "succeeded");
}

// A live worker's lease outlives a coordinator crash: the coordinator
// restores it with a fresh period, the worker's client reconnects, renews
// and completes it, and the job is never handed to anyone else.
TEST(ApiTest, LeaseSurvivesACoordinatorCrash) {
  Env env(3.0);
  env.coord->Start();
  auto sub = env.Submit("survive", {{"s.json", Meta("s")}, {"t.json", Meta("t")}});
  const int64_t job = sub.items(0).job_id();
  TestWorker w(env, "survivor", 1);
  v1::Lease l = w.NextLease();
  ASSERT_EQ(l.job_id(), job);
  v1::HeartbeatRequest hb;
  hb.set_job_id(job);
  hb.set_token(l.token());
  hb.set_running(true);
  ASSERT_TRUE(w.api().Heartbeat(hb).ok());

  env.coord->Kill();
  env.coord->Start();
  // Renew as soon as the coordinator answers again (the channel reconnects).
  absl::Status last;
  ASSERT_TRUE(PollUntil(
      [&] {
        last = w.api().Heartbeat(hb, 1000).status();
        return last.ok();
      },
      20000, 50))
      << last;
  ASSERT_TRUE(PollUntil([&] { return w.api().connected(); }, 20000, 20));
  auto done = w.api().Complete(Success(l, ValidAssessment("s", "survived")));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->job_state(), v1::JOB_STATE_SUCCEEDED);
  v1::JobDetail d = env.Show(job);
  ASSERT_EQ(d.attempts_size(), 1) << d.DebugString();
  EXPECT_EQ(d.attempts(0).outcome(), "succeeded");
  // The reconnected session gets the other job.
  v1::Lease next = w.NextLease();
  EXPECT_EQ(next.job_id(), sub.items(1).job_id());
}

// An invalid assessment is recorded as an invalid_output failure (not
// stored), a retry of the same upload is a duplicate, and the next attempt's
// lease carries the validation errors (the repair loop).
TEST(ApiTest, InvalidResultIsRefusedAndItsErrorsGoToTheNextAttempt) {
  Env env(30);
  env.coord->Start();
  auto sub = env.Submit("repair", {{"r.json", Meta("r")}}, 50, {{"invalid_output", 3}});
  const int64_t job = sub.items(0).job_id();
  TestWorker w(env, "repairer", 1);
  v1::Lease l1 = w.NextLease();
  EXPECT_EQ(l1.previous_errors_size(), 0);
  nlohmann::json bad = nlohmann::json::parse(ValidAssessment("r"));
  bad["درجة_الجودة"] = 95;                 // the grade says جيد: band mismatch
  bad["الاسم_الأصلي"] = "not the metadata Name";
  auto c = w.api().Complete(Success(l1, bad.dump()));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->job_state(), v1::JOB_STATE_QUEUED);
  ASSERT_GE(c->validation_errors_size(), 2);
  std::string all;
  for (const auto& e : c->validation_errors()) all += e + "\n";
  EXPECT_NE(all.find("/تقدير_الجودة"), std::string::npos) << all;
  EXPECT_NE(all.find("/الاسم_الأصلي"), std::string::npos) << all;
  auto again = w.api().Complete(Success(l1, bad.dump()));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate());

  v1::Lease l2 = w.NextLease();
  EXPECT_EQ(l2.job_id(), job);
  std::vector<std::string> prev(l2.previous_errors().begin(), l2.previous_errors().end());
  std::vector<std::string> got(c->validation_errors().begin(), c->validation_errors().end());
  EXPECT_EQ(prev, got);
  v1::ResultResponse res;
  EXPECT_EQ(env.Result(job, &res).error_code(), grpc::StatusCode::NOT_FOUND);

  auto ok = w.api().Complete(Success(l2, ValidAssessment("r", "repaired")));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->job_state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(ok->validation_errors_size(), 0);
  v1::JobDetail d = env.Show(job);
  ASSERT_EQ(d.attempts_size(), 2);
  EXPECT_EQ(d.attempts(0).outcome(), "failed");
  EXPECT_EQ(d.attempts(0).failure_class(), v1::FAILURE_CLASS_INVALID_OUTPUT);
  EXPECT_NE(d.attempts(0).error().find("/الاسم_الأصلي"), std::string::npos);
  EXPECT_EQ(d.attempts(1).outcome(), "succeeded");
  ASSERT_TRUE(env.Result(job, &res).ok());
  EXPECT_EQ(res.attempt_id(), l2.token());
}

// ------------------------------------------------------------------ lost worker

TEST(ApiTest, VanishedWorkerLeaseExpiresAndTheJobRunsElsewhere) {
  Env env(1.0);
  env.coord->Start();
  auto sub = env.Submit("vanish", {{"v.json", Meta("v")}}, 100);
  const int64_t job = sub.items(0).job_id();
  Child* a = env.StartSim("sim-a", 1, 600000);  // "works" for ten minutes

  v1::JobDetail d;
  ASSERT_TRUE(PollUntil(
      [&] {
        d = env.Show(job);
        return d.job().state() == v1::JOB_STATE_RUNNING;
      },
      30000, 10))
      << d.DebugString();
  ASSERT_EQ(d.attempts_size(), 1);
  const int64_t t1 = d.attempts(0).attempt_id();
  EXPECT_EQ(d.attempts(0).worker(), "sim-a");
  a->Kill(SIGKILL);
  const int64_t killed_at = NowMs();
  env.StartSim("sim-b", 1, 10);

  ASSERT_TRUE(PollUntil(
      [&] {
        d = env.Show(job);
        return d.job().state() == v1::JOB_STATE_SUCCEEDED;
      },
      30000, 50))
      << d.DebugString();
  ASSERT_EQ(d.attempts_size(), 2) << d.DebugString();
  const auto& lost = d.attempts(0);
  EXPECT_EQ(lost.outcome(), "expired");
  EXPECT_EQ(lost.failure_class(), v1::FAILURE_CLASS_INFRA);
  EXPECT_NE(lost.error().find("lease expired"), std::string::npos) << lost.error();
  // Within about one lease period (1 s) of the kill; 2 s of slack for a
  // loaded machine.
  EXPECT_LE(lost.ended_at_ms(), killed_at + 1000 + 2000)
      << "expired " << lost.ended_at_ms() - killed_at << " ms after the kill";
  EXPECT_EQ(d.attempts(1).worker(), "sim-b");
  EXPECT_EQ(d.attempts(1).outcome(), "succeeded");
  v1::ResultResponse res;
  ASSERT_TRUE(env.Result(job, &res).ok());
  EXPECT_EQ(res.attempt_id(), d.attempts(1).attempt_id());
  const std::string stored = res.result_json();

  // The vanished worker's completion, arriving late with its old token.
  auto c = assessq::ApiClient::Create({env.coord->address(), env.wk, {}, "sim-a", 1});
  ASSERT_TRUE(c.ok());
  v1::CompleteRequest late;
  late.set_job_id(job);
  late.set_token(t1);
  late.set_result_json(ValidAssessment("v", "late"));
  auto r = (*c)->Complete(late);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  ASSERT_TRUE(env.Result(job, &res).ok());
  EXPECT_EQ(res.attempt_id(), d.attempts(1).attempt_id());
  EXPECT_EQ(res.result_json(), stored);
  EXPECT_EQ(env.Show(job).attempts_size(), 2);
}

// ------------------------------------------------------------------ TLS

struct Pki {
  std::string ca, ca_key, server, server_key, client, client_key, rogue_client,
      rogue_client_key;
};

void Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = aqtest::Run(argv, 60000);
  if (r.exit_code != 0) throw std::runtime_error("openssl failed: " + r.Describe());
}

// A CA, a server certificate for 127.0.0.1/localhost and a client
// certificate it signed; plus a client certificate from an unrelated CA.
Pki MakePki(const TempDir& dir) {
  Pki p;
  const std::string d = dir.Join("pki");
  fs::create_directories(d);
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt",
                                       "ec_paramgen_curve:prime256v1", "-nodes"};
  auto ca = [&](const std::string& name, const std::string& cn) {
    std::vector<std::string> a = {"req", "-x509"};
    a.insert(a.end(), ec.begin(), ec.end());
    a.insert(a.end(), {"-keyout", d + "/" + name + ".key", "-out", d + "/" + name + ".pem",
                       "-days", "2", "-subj", "/CN=" + cn});
    Openssl(a);
  };
  auto leaf = [&](const std::string& name, const std::string& ca_name, const std::string& cn,
                  const std::string& ext) {
    std::vector<std::string> a = {"req"};
    a.insert(a.end(), ec.begin(), ec.end());
    a.insert(a.end(), {"-keyout", d + "/" + name + ".key", "-out", d + "/" + name + ".csr",
                       "-subj", "/CN=" + cn});
    Openssl(a);
    WriteFile(d + "/" + name + ".ext", ext);
    Openssl({"x509", "-req", "-in", d + "/" + name + ".csr", "-CA", d + "/" + ca_name + ".pem",
             "-CAkey", d + "/" + ca_name + ".key", "-CAcreateserial", "-out",
             d + "/" + name + ".pem", "-days", "2", "-extfile", d + "/" + name + ".ext"});
  };
  ca("ca", "assessq test CA");
  ca("rogue-ca", "someone else's CA");
  leaf("server", "ca", "127.0.0.1",
       "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
       "extendedKeyUsage=serverAuth\n");
  leaf("client", "ca", "operator-laptop",
       "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
  leaf("rogue", "rogue-ca", "intruder",
       "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
  p.ca = d + "/ca.pem";
  p.ca_key = d + "/ca.key";
  p.server = d + "/server.pem";
  p.server_key = d + "/server.key";
  p.client = d + "/client.pem";
  p.client_key = d + "/client.key";
  p.rogue_client = d + "/rogue.pem";
  p.rogue_client_key = d + "/rogue.key";
  return p;
}

TEST(ApiTest, TlsWithRequiredClientCertificates) {
  TempDir pki_dir;
  Pki pki = MakePki(pki_dir);
  // coordinatord does not report the port it bound, so --listen
  // 127.0.0.1:0 cannot be used: take a free port and pass it.
  const std::string addr = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
  CoordinatorOptions opt;
  opt.listen = addr;
  opt.extra_args = {"--tls-cert", pki.server, "--tls-key", pki.server_key,
                    "--tls-client-ca", pki.ca, "--require-client-cert"};
  opt.client_tls.ca_file = pki.ca;
  opt.client_tls.cert_file = pki.client;
  opt.client_tls.key_file = pki.client_key;
  Env env(30, opt);
  env.coord->Start();  // health over TLS with the client certificate

  auto ctl = [&](const std::vector<std::string>& tls) {
    std::vector<std::string> argv = {BinPath("assessctl"), "--coordinator", addr,
                                     "--token-file", env.op_file};
    argv.insert(argv.end(), tls.begin(), tls.end());
    argv.insert(argv.end(), {"status", "-o", "json"});
    return aqtest::Run(argv, 60000);
  };
  auto ok = ctl({"--tls-ca", pki.ca, "--tls-cert", pki.client, "--tls-key", pki.client_key});
  EXPECT_EQ(ok.exit_code, 0) << ok.Describe();
  EXPECT_TRUE(JsonOut(ok).contains("batches"));
  // By host name too (the certificate names localhost).
  auto by_name = aqtest::Run({BinPath("assessctl"), "--coordinator",
                      "localhost:" + addr.substr(addr.rfind(':') + 1), "--token-file",
                      env.op_file, "--tls-ca", pki.ca, "--tls-cert", pki.client, "--tls-key",
                      pki.client_key, "status"},
                     60000);
  EXPECT_EQ(by_name.exit_code, 0) << by_name.Describe();

  auto no_cert = ctl({"--tls-ca", pki.ca});
  EXPECT_EQ(no_cert.exit_code, 1) << no_cert.Describe();
  EXPECT_NE(no_cert.err.find("unavailable"), std::string::npos) << no_cert.err;
  auto rogue = ctl({"--tls-ca", pki.ca, "--tls-cert", pki.rogue_client, "--tls-key",
                    pki.rogue_client_key});
  EXPECT_EQ(rogue.exit_code, 1) << rogue.Describe();
  auto plaintext = ctl({});
  EXPECT_EQ(plaintext.exit_code, 1) << plaintext.Describe();
  // A client that does not trust the server's CA.
  auto untrusting = ctl({"--tls-ca", pki_dir.Join("pki/rogue-ca.pem"), "--tls-cert",
                         pki.client, "--tls-key", pki.client_key});
  EXPECT_EQ(untrusting.exit_code, 1) << untrusting.Describe();

  // The worker service over the same TLS listener.
  assessq::ApiClientOptions wo{addr, env.wk, opt.client_tls, "tls-worker", 1};
  auto wc = assessq::ApiClient::Create(wo);
  ASSERT_TRUE(wc.ok());
  v1::HeartbeatRequest hb;
  hb.set_job_id(1);
  hb.set_token(1);
  EXPECT_EQ((*wc)->Heartbeat(hb).status().code(), absl::StatusCode::kFailedPrecondition)
      << "reached the engine over TLS";
}

// --require-client-cert without --tls-client-ca cannot verify client
// certificates, so the coordinator refuses to start rather than serve clients
// that present none (regression test: it used to drop the flag silently).
TEST(ApiTest, RequireClientCertWithoutClientCaRefusesToStart) {
  TempDir pki_dir;
  Pki pki = MakePki(pki_dir);
  TempDir dir;
  const std::string addr = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
  auto child = Child::Spawn({BinPath("coordinatord"), "--db", dir.Join("x.db"), "--listen", addr,
                             "--tls-cert", pki.server, "--tls-key", pki.server_key,
                             "--require-client-cert"},
                            dir.Join("coordinatord.log"));
  assessq::ClientTls no_cert;
  no_cert.ca_file = pki.ca;
  bool served = false;
  bool settled = PollUntil(
      [&] {
        if (!child->Running()) return true;
        auto ch = assessq::MakeChannel(addr, no_cert);
        if (ch.ok() && CheckHealth(*ch, "", 500).ok()) served = true;
        return served;
      },
      30000, 50);
  ASSERT_TRUE(settled) << "coordinatord neither exited nor answered:\n"
                       << Tail(dir.Join("coordinatord.log"));
  EXPECT_FALSE(served) << "it started with --require-client-cert and no --tls-client-ca and "
                          "served a client that presented no certificate";
  if (!served) {
    EXPECT_NE(child->exit_status().value_or(0), 0);
    EXPECT_NE(ReadFile(dir.Join("coordinatord.log")).find("--require-client-cert needs"),
              std::string::npos)
        << "the error says what is missing:\n" << Tail(dir.Join("coordinatord.log"));
  }
  child->Kill(SIGKILL);
}

TEST(ApiTest, TcpListenerWithoutTlsRefusesToStart) {
  TempDir dir;
  const std::string addr = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
  auto r = aqtest::Run({BinPath("coordinatord"), "--db", dir.Join("x.db"), "--listen", addr}, 30000);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE((r.out + r.err).find("a TCP listener needs --tls-cert and --tls-key"),
            std::string::npos)
      << r.Describe();
  // A certificate without its key is refused too.
  WriteFile(dir.Join("cert.pem"), "not really a certificate\n");
  r = aqtest::Run({BinPath("coordinatord"), "--db", dir.Join("x.db"), "--listen", addr, "--tls-cert",
           dir.Join("cert.pem")},
          30000);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
}

}  // namespace
}  // namespace aqtest
