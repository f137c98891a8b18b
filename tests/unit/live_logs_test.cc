// Tests server/live_logs: appends at offsets (in order, overlapping, with a
// gap), reads from any offset with the bytes no longer kept reported as
// skipped, the per-attempt cap, idle expiry and the stream-count cap.
#include "server/live_logs.h"

#include <gtest/gtest.h>

namespace assessq {
namespace {

TEST(LiveLogsTest, AppendsInOrderAndReadsFromAnyOffset) {
  LiveLogs l;
  EXPECT_FALSE(l.Read(7, 0).has_value());
  l.Append(1, 7, 0, "hello ", 0);
  l.Append(1, 7, 6, "world\n", 0);
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
  l.Append(1, 7, 0, "abcdef", 0);
  l.Append(1, 7, 3, "defgh", 0);  // a resend overlapping what we have
  EXPECT_EQ(l.Read(7, 0)->data, "abcdefgh");
  l.Append(1, 7, 2, "cd", 0);  // entirely old
  EXPECT_EQ(l.Read(7, 0)->data, "abcdefgh");
  l.Append(1, 7, 20, "xyz", 0);  // the worker skipped 12 bytes
  auto c = l.Read(7, 0);
  EXPECT_EQ(c->data, "xyz");
  EXPECT_EQ(c->skipped, 20);
  EXPECT_EQ(c->next_offset, 23);
  l.Append(1, 7, -1, "bad", 0);
  EXPECT_EQ(l.Read(7, 20)->data, "xyz");
}

TEST(LiveLogsTest, KeepsOnlyTheLastMaxBytes) {
  LiveLogs l({.max_bytes = 10});
  l.Append(1, 7, 0, "0123456789abcdef", 0);
  auto c = l.Read(7, 0);
  EXPECT_EQ(c->data, "6789abcdef");
  EXPECT_EQ(c->skipped, 6);
  EXPECT_EQ(c->next_offset, 16);
}

TEST(LiveLogsTest, IdleStreamsExpireAndTheStreamCountIsCapped) {
  LiveLogs l({.max_bytes = 100, .max_streams = 2, .idle_ms = 1000});
  l.Append(1, 1, 0, "a", 0);
  l.Append(2, 2, 0, "b", 10);
  l.Append(3, 3, 0, "c", 20);  // evicts the stalest (1)
  EXPECT_FALSE(l.Read(1, 0).has_value());
  EXPECT_TRUE(l.Read(2, 0).has_value());
  EXPECT_TRUE(l.Read(3, 0).has_value());
  l.Append(3, 3, 1, "d", 2000);  // 2 idle for > 1 s
  EXPECT_FALSE(l.Read(2, 0).has_value());
  EXPECT_EQ(l.Read(3, 0)->data, "cd");
}

}  // namespace
}  // namespace assessq
