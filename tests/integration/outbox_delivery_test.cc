// The worker's durable outbox against the real coordinator when the worker's
// bearer token is revoked: its reports are parked (kept on disk, out of the
// queue) instead of being retried ahead of every later report forever, and
// when the worker starts again with a new token (same state dir) the parked
// reports go back in the queue: those whose lease was taken with the old
// token are refused as stale and dropped, and the new token's report is
// delivered behind them. Real coordinatord, gRPC over a unix socket, the
// real ApiClient and Outbox on a real directory.
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>

#include "common/call_failure.h"
#include "tests/integration/harness.h"
#include "tests/integration/lease_taker.h"
#include "worker/api_client.h"
#include "worker/outbox.h"

namespace aqtest {
namespace {
namespace v1 = assessq::v1;

// The real API client, collecting the leases it is sent.
class Leaser : public LeaseTaker {
 public:
  Leaser(const Coordinator& c, const std::string& bearer_token, const std::string& name,
         int slots)
      : LeaseTaker(c.address(), bearer_token, name, slots) {}
};

v1::CompleteRequest Success(const v1::Lease& l) {
  v1::CompleteRequest r;
  r.set_job_id(l.job_id());
  r.set_token(l.token());
  r.set_result_json(ValidAssessment(l.dataset_name(), "from the outbox"));
  return r;
}

TEST(OutboxDeliveryTest, ARevokedTokenParksItsReportsAndDoesNotBlockLaterOnes) {
  TempDir dir;
  Coordinator coord(dir.path(), {.lease_seconds = 30});
  const std::string op = ReadToken(coord.CreateToken("operator", "ops"));
  const std::string old_token = ReadToken(coord.CreateToken("worker", "host-old"));
  const std::string new_token = ReadToken(coord.CreateToken("worker", "host-new"));
  coord.Start();

  v1::SubmitRequest sub;
  sub.set_batch("revoked");
  for (const char* name : {"a", "b", "c"}) {
    auto* f = sub.add_files();
    f->set_source_name(std::string(name) + ".json");
    f->set_content(nlohmann::json{{"Name", name}}.dump());
  }
  v1::SubmitResponse subbed;
  ASSERT_TRUE(coord.OperatorStub()->Submit(Ctx(op).get(), sub, &subbed).ok());

  const std::string outbox_dir = dir.Join("state/outbox");
  std::vector<v1::Lease> old_leases;
  {
    // The worker with the old token takes two jobs; their reports wait in
    // its outbox (the coordinator did not answer them yet).
    Leaser w(coord, old_token, "host-old", 2);
    old_leases = {w.NextLease(), w.NextLease()};
    assessq::Outbox box(outbox_dir);
    ASSERT_TRUE(box.Init().ok());
    for (const auto& l : old_leases) ASSERT_TRUE(box.Put(Success(l)).ok());

    auto r = aqtest::Run({BinPath("coordinatord"), "--db", coord.db(), "token", "revoke", "host-old"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    // Revoked once the coordinator's token cache has let it go.
    v1::HeartbeatRequest hb;
    hb.set_job_id(old_leases[0].job_id());
    hb.set_token(old_leases[0].token());
    ASSERT_TRUE(PollUntil(
        [&] {
          return assessq::ClassifyCall(w.api().Heartbeat(hb, 2000).status()) ==
                 assessq::CallFailure::kCredentials;
        },
        20000, 200));

    // One round: both reports are sent and parked; none is left to block
    // the queue, and the round did not stop at the first refusal.
    std::vector<int64_t> sent;
    assessq::DeliveryRound round = box.Deliver([&](const v1::CompleteRequest& req) {
      sent.push_back(req.job_id());
      return w.api().Complete(req);
    });
    EXPECT_EQ(sent.size(), 2u);
    EXPECT_EQ(round.parked, 2);
    EXPECT_EQ(round.kept, 0);
    EXPECT_FALSE(round.stopped);
    EXPECT_TRUE(box.Pending().empty());
    EXPECT_EQ(box.Parked().size(), 2u);
  }

  // The worker starts again with a new token on the same state dir.
  assessq::Outbox box(outbox_dir);
  ASSERT_TRUE(box.Init().ok());
  EXPECT_TRUE(box.Parked().empty());
  EXPECT_EQ(box.Pending().size(), 2u);
  Leaser w(coord, new_token, "host-new", 1);
  const v1::Lease fresh = w.NextLease();
  ASSERT_TRUE(box.Put(Success(fresh)).ok());
  assessq::DeliveryRound round =
      box.Deliver([&](const v1::CompleteRequest& req) { return w.api().Complete(req); });
  // The old token's leases are not the new token's: refused for good.
  EXPECT_EQ(round.dropped, 2);
  EXPECT_EQ(round.delivered, 1);
  EXPECT_TRUE(box.Pending().empty());
  EXPECT_TRUE(box.Parked().empty());

  v1::JobRef ref;
  ref.set_job_id(fresh.job_id());
  v1::JobDetail d;
  ASSERT_TRUE(coord.OperatorStub()->ShowJob(Ctx(op).get(), ref, &d).ok());
  EXPECT_EQ(d.job().state(), v1::JOB_STATE_SUCCEEDED);
  for (const auto& l : old_leases) {
    ref.set_job_id(l.job_id());
    ASSERT_TRUE(coord.OperatorStub()->ShowJob(Ctx(op).get(), ref, &d).ok());
    EXPECT_NE(d.job().state(), v1::JOB_STATE_SUCCEEDED);
  }
  coord.Stop();
}

}  // namespace
}  // namespace aqtest
