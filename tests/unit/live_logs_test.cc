// Tests server/live_logs: appends at offsets (in order, overlapping, with a
// gap), reads from any offset with the bytes no longer kept reported as
// skipped, the per-attempt cap, idle expiry and the stream-count cap; appends
// bound to the open lease (token, job, worker token), and the total memory
// cap (finished attempts evicted first, then the largest running one
// trimmed).
#include "server/live_logs.h"

#include <gtest/gtest.h>

namespace assessq {
namespace {

TEST(LiveLogsTest, AppendsInOrderAndReadsFromAnyOffset) {
  LiveLogs l;
  l.Open(1, 7, 0);
  EXPECT_FALSE(l.Read(7, 0).has_value());
  ASSERT_TRUE(l.Append(1, 7, 0, 0, "hello ", 0).ok());
  ASSERT_TRUE(l.Append(1, 7, 0, 6, "world\n", 0).ok());
  auto c = l.Read(7, 0);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->data, "hello world\n");
  EXPECT_EQ(c->next_offset, 12);
  EXPECT_EQ(c->skipped, 0);
  c = l.Read(7, 6);
  EXPECT_EQ(c->data, "world\n");
  c = l.Read(7, 12);
  EXPECT_EQ(c->data, "");
  EXPECT_EQ(c->next_offset, 12);
  c = l.Read(7, 0, 5);
  EXPECT_EQ(c->data, "hello");
  EXPECT_EQ(c->next_offset, 5);
}

TEST(LiveLogsTest, OverlapsAreTrimmedAndGapsSkipped) {
  LiveLogs l;
  l.Open(1, 7, 0);
  ASSERT_TRUE(l.Append(1, 7, 0, 0, "abcdef", 0).ok());
  ASSERT_TRUE(l.Append(1, 7, 0, 3, "defgh", 0).ok());  // a resend overlapping what we have
  EXPECT_EQ(l.Read(7, 0)->data, "abcdefgh");
  ASSERT_TRUE(l.Append(1, 7, 0, 2, "cd", 0).ok());  // entirely old
  EXPECT_EQ(l.Read(7, 0)->data, "abcdefgh");
  ASSERT_TRUE(l.Append(1, 7, 0, 20, "xyz", 0).ok());  // the worker skipped 12 bytes
  auto c = l.Read(7, 0);
  EXPECT_EQ(c->data, "xyz");
  EXPECT_EQ(c->skipped, 20);
  EXPECT_EQ(c->next_offset, 23);
  EXPECT_EQ(l.Append(1, 7, 0, -1, "bad", 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(l.Read(7, 20)->data, "xyz");
}

TEST(LiveLogsTest, KeepsOnlyTheLastMaxBytes) {
  LiveLogs l({.max_bytes = 10});
  l.Open(1, 7, 0);
  ASSERT_TRUE(l.Append(1, 7, 0, 0, "0123456789abcdef", 0).ok());
  auto c = l.Read(7, 0);
  EXPECT_EQ(c->data, "6789abcdef");
  EXPECT_EQ(c->skipped, 6);
  EXPECT_EQ(c->next_offset, 16);
}

TEST(LiveLogsTest, IdleStreamsExpireAndTheStreamCountIsCapped) {
  LiveLogs l({.max_bytes = 100, .max_streams = 2, .idle_ms = 1000});
  for (int64_t t : {1, 2, 3}) l.Open(t, t, 0);
  ASSERT_TRUE(l.Append(1, 1, 0, 0, "a", 0).ok());
  ASSERT_TRUE(l.Append(2, 2, 0, 0, "b", 10).ok());
  ASSERT_TRUE(l.Append(3, 3, 0, 0, "c", 20).ok());  // evicts the stalest (1)
  EXPECT_FALSE(l.Read(1, 0).has_value());
  EXPECT_TRUE(l.Read(2, 0).has_value());
  EXPECT_TRUE(l.Read(3, 0).has_value());
  ASSERT_TRUE(l.Append(3, 3, 0, 1, "d", 2000).ok());  // 2 idle for > 1 s
  EXPECT_FALSE(l.Read(2, 0).has_value());
  EXPECT_EQ(l.Read(3, 0)->data, "cd");
}

TEST(LiveLogsTest, AppendsAreBoundToTheOpenLease) {
  LiveLogs l;
  struct Case {
    const char* name;
    int64_t job, token, principal;
    absl::StatusCode want;
    const char* says;
  };
  l.Open(/*job=*/1, /*token=*/7, /*principal=*/40);
  l.Open(2, 8, 0);  // a lease bound to no worker token (in-process tests)
  const std::vector<Case> cases = {
      {"the holder", 1, 7, 40, absl::StatusCode::kOk, ""},
      {"unchecked caller", 1, 7, 0, absl::StatusCode::kOk, ""},
      {"another worker token", 1, 7, 41, absl::StatusCode::kFailedPrecondition,
       "another worker token"},
      {"a token never leased", 1, 9, 40, absl::StatusCode::kFailedPrecondition, "not held"},
      {"another job's id", 2, 7, 40, absl::StatusCode::kFailedPrecondition, "not held"},
      {"unbound lease, any token", 2, 8, 41, absl::StatusCode::kOk, ""},
  };
  int64_t offset = 0;
  std::string kept;
  for (const auto& c : cases) {
    absl::Status s = l.Append(c.job, c.token, c.principal, c.token == 7 ? offset : 0,
                              c.name, 0);
    EXPECT_EQ(s.code(), c.want) << c.name << ": " << s;
    EXPECT_NE(s.message().find(c.says), absl::string_view::npos) << c.name << ": " << s;
    if (s.ok() && c.token == 7) {
      kept += c.name;
      offset += static_cast<int64_t>(std::string(c.name).size());
    }
  }
  EXPECT_EQ(l.Read(7, 0)->data, kept) << "refused appends changed nothing";
  EXPECT_FALSE(l.Read(9, 0).has_value());
  // The lease ends: further appends are refused, the output stays readable.
  l.Close(7, 5);
  EXPECT_EQ(l.Append(1, 7, 40, offset, "late", 6).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(l.Read(7, 0)->data, kept);
}

TEST(LiveLogsTest, TotalCapEvictsFinishedFirstThenTrimsTheLargestRunning) {
  LiveLogs l({.max_bytes = 60, .max_streams = 100, .idle_ms = 1 << 30, .max_total_bytes = 100});
  for (int64_t t : {1, 2, 3, 4}) l.Open(t, t, 0);
  ASSERT_TRUE(l.Append(1, 1, 0, 0, std::string(50, 'a'), 0).ok());
  ASSERT_TRUE(l.Append(2, 2, 0, 0, std::string(50, 'b'), 1).ok());
  EXPECT_EQ(l.total_bytes(), 100u);
  // 2 finishes after 1 was last written: still the finished one goes first,
  // though the running one is staler.
  l.Close(2, 2);
  ASSERT_TRUE(l.Append(3, 3, 0, 0, std::string(40, 'c'), 3).ok());
  EXPECT_FALSE(l.Read(2, 0).has_value()) << "the finished attempt is evicted";
  EXPECT_EQ(l.Read(1, 0)->data, std::string(50, 'a'));
  EXPECT_EQ(l.Read(3, 0)->data, std::string(40, 'c'));
  EXPECT_EQ(l.total_bytes(), 90u);
  // Only running attempts: the largest (1, 50 bytes) loses its oldest bytes,
  // down to the cap, and a follower learns how many.
  ASSERT_TRUE(l.Append(4, 4, 0, 0, std::string(30, 'd'), 4).ok());
  EXPECT_EQ(l.total_bytes(), 100u);
  auto c1 = l.Read(1, 0);
  EXPECT_EQ(c1->data, std::string(30, 'a'));
  EXPECT_EQ(c1->skipped, 20);
  EXPECT_EQ(c1->next_offset, 50);
  EXPECT_EQ(l.Read(3, 0)->data, std::string(40, 'c'));
  EXPECT_EQ(l.Read(4, 0)->data, std::string(30, 'd'));
  // One chatty attempt cannot push the others out: it is trimmed itself.
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(l.Append(4, 4, 0, 30 + i * 50, std::string(50, 'e'), 5 + i).ok());
  EXPECT_LE(l.total_bytes(), 100u);
  EXPECT_EQ(l.Read(3, 0)->data.size(), 30u) << "trimmed down to an equal share at most";
  EXPECT_EQ(l.Read(1, 0)->data.size(), 30u);
  EXPECT_GE(l.Read(4, 0)->data.size(), 30u);
  EXPECT_EQ(l.Read(4, 0)->next_offset, 30 + 20 * 50);
}

}  // namespace
}  // namespace assessq
