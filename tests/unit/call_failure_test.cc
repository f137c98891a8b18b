// The retry classifier (common/call_failure.h) over every status code, the
// outbox's disposition for every class (worker/outbox.h), and one delivery
// round over a real outbox directory with a scripted coordinator: a report
// refused for the worker's token is parked and the reports behind it are
// still delivered; an unreachable coordinator ends the round in order.
#include "common/call_failure.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/support/process.h"
#include "worker/outbox.h"

namespace assessq {
namespace {
namespace fs = std::filesystem;

TEST(CallFailureTest, EveryCodeHasOneMeaning) {
  using C = absl::StatusCode;
  // Each meaning with the codes that carry it; together every absl::StatusCode.
  const std::map<CallFailure, std::vector<C>> codes = {
      {CallFailure::kNone, {C::kOk}},
      {CallFailure::kTransient,
       {C::kUnavailable, C::kDeadlineExceeded, C::kAborted, C::kCancelled, C::kResourceExhausted}},
      {CallFailure::kLeaseNotHeld, {C::kFailedPrecondition}},
      {CallFailure::kRejected, {C::kInvalidArgument, C::kNotFound, C::kAlreadyExists, C::kOutOfRange}},
      {CallFailure::kCredentials, {C::kUnauthenticated, C::kPermissionDenied}},
      {CallFailure::kFault, {C::kInternal, C::kUnknown, C::kDataLoss, C::kUnimplemented}},
  };
  size_t n = 0;
  for (const auto& [want, list] : codes) {
    for (C code : list) {
      ++n;
      absl::Status s(code, code == C::kOk ? "" : "why");
      EXPECT_EQ(ClassifyCall(s), want) << absl::StatusCodeToString(code);
      // Tagged, it reads back the same, and keeps its code and message.
      absl::Status t = TagCallFailure(s);
      EXPECT_EQ(ClassifyCall(t), want) << absl::StatusCodeToString(code);
      EXPECT_EQ(t.code(), code);
      EXPECT_EQ(t.message(), s.message());
    }
  }
  EXPECT_EQ(n, 17u);  // every absl::StatusCode
  EXPECT_EQ(ClassifyCall(absl::Status(static_cast<C>(99), "new code")), CallFailure::kFault);
  // The payload, not the code, decides once a status is tagged.
  absl::Status lease_lost = TagCallFailure(absl::FailedPreconditionError("stale"));
  absl::Status moved(absl::StatusCode::kInternal, "rewrapped");
  moved.SetPayload("type.assessq.dev/assessq.CallFailure", *lease_lost.GetPayload(
                                                                "type.assessq.dev/assessq.CallFailure"));
  EXPECT_EQ(ClassifyCall(moved), CallFailure::kLeaseNotHeld);
}

TEST(CallFailureTest, RetryableAndNames) {
  const struct {
    CallFailure f;
    const char* name;
    bool retryable;
  } cases[] = {
      {CallFailure::kNone, "", false},
      {CallFailure::kTransient, "transient", true},
      {CallFailure::kLeaseNotHeld, "lease_not_held", false},
      {CallFailure::kRejected, "rejected", false},
      {CallFailure::kCredentials, "credentials", false},
      {CallFailure::kFault, "fault", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(std::string(CallFailureName(c.f)), c.name);
    EXPECT_EQ(IsRetryable(c.f), c.retryable) << c.name;
  }
}

TEST(CallFailureTest, OutboxDispositionForEveryClass) {
  // Each disposition with the classes that lead to it; together every class.
  const std::map<Disposition, std::vector<CallFailure>> classes = {
      {Disposition::kRemove,
       {CallFailure::kNone, CallFailure::kLeaseNotHeld, CallFailure::kRejected}},
      {Disposition::kPark, {CallFailure::kCredentials}},
      {Disposition::kKeepAndGoOn, {CallFailure::kFault}},
      {Disposition::kKeepAndStop, {CallFailure::kTransient}},
  };
  size_t n = 0;
  for (const auto& [want, list] : classes)
    for (CallFailure f : list) {
      ++n;
      EXPECT_EQ(DispositionFor(f), want) << CallFailureName(f);
    }
  EXPECT_EQ(n, 6u);  // every CallFailure
}

class OutboxRoundTest : public ::testing::Test {
 protected:
  v1::CompleteRequest Report(int64_t job) {
    v1::CompleteRequest r;
    r.set_job_id(job);
    r.set_token(job * 10);
    r.set_result_json("{}");
    return r;
  }
  aqtest::TempDir tmp_{"aq-outbox"};
  std::string dir_ = tmp_.path();
};

// The coordinator answers each job with a scripted status.
Outbox::SendFn Scripted(std::map<int64_t, absl::Status> answers, std::vector<int64_t>* sent) {
  return [answers, sent](const v1::CompleteRequest& r) -> absl::StatusOr<v1::CompleteResponse> {
    sent->push_back(r.job_id());
    auto it = answers.find(r.job_id());
    if (it != answers.end() && !it->second.ok()) return it->second;
    return v1::CompleteResponse();
  };
}

TEST_F(OutboxRoundTest, ARefusedTokenParksItsReportAndTheOthersAreStillDelivered) {
  Outbox box(dir_ + "/outbox");
  ASSERT_TRUE(box.Init().ok());
  for (int64_t job : {1, 2, 3, 4}) {
    ASSERT_TRUE(box.Put(Report(job)).ok());
    // Distinct modification times keep Pending's order (oldest first).
    fs::last_write_time(absl::StrCat(dir_, "/outbox/", job, "-", job * 10, ".pb"),
                        fs::file_time_type::clock::now() + std::chrono::seconds(job));
  }
  std::vector<int64_t> sent;
  DeliveryRound r = box.Deliver(Scripted({{1, absl::UnauthenticatedError("revoked token")},
                                          {2, absl::FailedPreconditionError("stale")},
                                          {3, absl::InternalError("db")}},
                                         &sent));
  EXPECT_EQ(sent, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(r.parked, 1);
  EXPECT_EQ(r.dropped, 1);
  EXPECT_EQ(r.kept, 1);
  EXPECT_EQ(r.delivered, 1);
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(box.Parked(), (std::vector<std::string>{"1-10.pb"}));
  ASSERT_EQ(box.Pending().size(), 1u);
  EXPECT_EQ(box.Pending()[0].job_id(), 3);

  // A new start (with, say, a new token) puts the parked report back.
  Outbox again(dir_ + "/outbox");
  ASSERT_TRUE(again.Init().ok());
  EXPECT_TRUE(again.Parked().empty());
  EXPECT_EQ(again.Pending().size(), 2u);
}

TEST_F(OutboxRoundTest, AnUnreachableCoordinatorEndsTheRoundInOrder) {
  Outbox box(dir_ + "/outbox");
  ASSERT_TRUE(box.Init().ok());
  for (int64_t job : {1, 2}) {
    ASSERT_TRUE(box.Put(Report(job)).ok());
    fs::last_write_time(absl::StrCat(dir_, "/outbox/", job, "-", job * 10, ".pb"),
                        fs::file_time_type::clock::now() + std::chrono::seconds(job));
  }
  std::vector<int64_t> sent;
  DeliveryRound r = box.Deliver(Scripted({{1, absl::UnavailableError("down")}}, &sent));
  EXPECT_EQ(sent, (std::vector<int64_t>{1}));
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.kept, 1);
  EXPECT_EQ(box.Pending().size(), 2u);
  EXPECT_TRUE(box.Parked().empty());
}

}  // namespace
}  // namespace assessq
