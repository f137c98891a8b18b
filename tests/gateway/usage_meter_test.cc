// The gateway's usage meter and job budget (worker/gateway/usage_meter.h,
// job_budget.h), pure, table-driven: every response form (JSON with
// Content-Length, chunked or to EOF; server-sent events, chunked, with LF,
// CRLF or CR line ends, with and without event lines), each fed whole, split
// at every byte boundary and byte by byte; responses cut short; malformed
// framing; compressed bodies; values that only look like usage (inside the
// content the model wrote); and every refusal path of the budget.
#include "worker/gateway/job_budget.h"
#include "worker/gateway/usage_meter.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace assessq::gateway {
namespace {

std::string Chunked(const std::string& body, size_t piece = 7) {
  std::string out;
  for (size_t i = 0; i < body.size(); i += piece) {
    std::string part = body.substr(i, piece);
    absl::StrAppend(&out, absl::StrFormat("%x", part.size()), i == 0 ? ";ext=1" : "", "\r\n", part, "\r\n");
  }
  return out + "0\r\nx-trailer: 1\r\n\r\n";
}

std::string JsonHead(size_t len) {
  return absl::StrCat("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ", len, "\r\n\r\n");
}

std::string J(const std::string& body) { return JsonHead(body.size()) + body; }

const char kMessage[] =
    R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-test-1",)"
    R"("content":[{"type":"text","text":"a \"usage\":{\"input_tokens\":999} {[ in the text"},)"
    R"({"type":"tool_use","id":"t","name":"Bash","input":{"usage":{"input_tokens":5000},"model":"fake"}}],)"
    R"("stop_reason":"end_turn","usage":{"input_tokens":120,"cache_creation_input_tokens":30,)"
    R"("cache_read_input_tokens":400,"output_tokens":77,"service_tier":"standard",)"
    R"("cache_creation":{"ephemeral_5m_input_tokens":30}}})";

std::string Sse(const std::string& nl, bool event_lines) {
  auto ev = [&](const std::string& type, const std::string& data) {
    return absl::StrCat(event_lines ? absl::StrCat("event: ", type, nl) : "", "data: ", data, nl, nl);
  };
  return absl::StrCat(
      ev("message_start",
         R"({"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"claude-stream-2","content":[],"usage":{"input_tokens":25,"cache_creation_input_tokens":3,"cache_read_input_tokens":1000,"output_tokens":1}}})"),
      ": a comment", nl, nl,
      ev("ping", R"({"type":"ping"})"),
      ev("content_block_start", R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"),
      ev("content_block_delta",
         R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"event: message_delta\ndata: {\"usage\":{\"output_tokens\":99999}}"}})"),
      ev("content_block_stop", R"({"type":"content_block_stop","index":0})"),
      ev("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}})"),
      ev("message_delta", R"({"type":"message_delta","delta":{},"usage":{"output_tokens":42}})"),
      ev("message_stop", R"({"type":"message_stop"})"));
}

std::string SseHead(bool chunked) {
  return absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n",
                      chunked ? "Transfer-Encoding: chunked\r\n" : "", "\r\n");
}

struct Case {
  std::string name;
  std::string response;
  bool seen;
  std::string model;
  TokenCounts counts;
  bool unreadable = false;
  int status = 200;
};

std::vector<Case> Cases() {
  const std::string msg = kMessage;
  const TokenCounts json_counts{120, 77, 30, 400};
  const TokenCounts sse_counts{25, 42, 3, 1000};
  std::vector<Case> c = {
      {"json_content_length", JsonHead(msg.size()) + msg, true, "claude-test-1", json_counts},
      {"json_chunked",
       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + Chunked(msg),
       true, "claude-test-1", json_counts},
      {"json_to_eof", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + msg,
       true, "claude-test-1", json_counts},
      {"json_after_100_continue",
       "HTTP/1.1 100 Continue\r\n\r\n" + JsonHead(msg.size()) + msg, true, "claude-test-1", json_counts},
      {"json_bytes_past_content_length_ignored",
       JsonHead(msg.size()) + msg + R"({"usage":{"input_tokens":7}})", true, "claude-test-1", json_counts},
      {"sse_lf", SseHead(false) + Sse("\n", true), true, "claude-stream-2", sse_counts},
      {"sse_content_length",
       absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: ", Sse("\n", true).size(),
                    "\r\n\r\n", Sse("\n", true), "event: message_delta\ndata: {\"usage\":{\"output_tokens\":1}}\n\n"),
       true, "claude-stream-2", sse_counts},
      {"sse_crlf_chunked", SseHead(true) + Chunked(Sse("\r\n", true), 5), true, "claude-stream-2", sse_counts},
      {"sse_cr", SseHead(false) + Sse("\r", true), true, "claude-stream-2", sse_counts},
      {"sse_without_event_lines", SseHead(false) + Sse("\n", false), true, "claude-stream-2", sse_counts},
      {"sse_cut_after_message_start",
       SseHead(false) + Sse("\n", true).substr(0, Sse("\n", true).find("event: ping")), true,
       "claude-stream-2", TokenCounts{25, 1, 3, 1000}},
      {"sse_cut_inside_a_message_delta",
       SseHead(false) + Sse("\n", true).substr(0, Sse("\n", true).find("\"output_tokens\":42") + 10), true,
       "claude-stream-2", TokenCounts{25, 15, 3, 1000}},
      {"sse_cut_before_the_last_blank_line",
       SseHead(false) + Sse("\n", true).substr(0, Sse("\n", true).find("event: message_stop") - 2), true,
       "claude-stream-2", sse_counts},
      {"json_cut_inside_usage",
       JsonHead(msg.size()) + msg.substr(0, msg.find("\"output_tokens\"")), true, "claude-test-1",
       TokenCounts{120, 0, 30, 400}},
      {"json_cut_before_usage", JsonHead(msg.size()) + msg.substr(0, msg.find("\"usage\":{\"input_tokens\":120")),
       true, "claude-test-1", TokenCounts{}},
      {"json_cut_in_head", JsonHead(msg.size()).substr(0, 20), false, "", {}, true, 0},
      {"error_status_not_counted",
       "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: 44\r\n\r\n"
       R"({"usage":{"input_tokens":1},"model":"x"} )",
       false, "", {}, false, 429},
      {"compressed_unreadable",
       "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n\r\n\x1f\x8b\x08", false,
       "", {}, true},
      {"not_json_or_sse_ignored", "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n" + msg, false, "", {}},
      {"count_tokens_is_not_usage", J(R"({"input_tokens":55})"), false, "", {}},
      {"malformed_chunk_size_keeps_what_was_read",
       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
           absl::StrFormat("%x\r\n", msg.find("\"cache_creation_input")) +
           msg.substr(0, msg.find("\"cache_creation_input")) + "\r\nzz\r\n" + msg + "\r\n0\r\n\r\n",
       true, "claude-test-1", TokenCounts{120, 0, 0, 0}, true},
      {"not_http", "SSH-2.0-OpenSSH\r\n\r\n", false, "", {}, true, 0},
      {"numbers_that_are_not_counts",
       J(R"({"model":"m","usage":{"input_tokens":-5,"output_tokens":1.5,"cache_read_input_tokens":"7",)"
           R"("cache_creation_input_tokens":99999999999999999999}})"),
       true, "m", TokenCounts{0, 0, kMeterMaxTokens, 0}},
      {"model_name_made_safe",
       J("{\"model\":\"evil\\u001b[31m name\\n\xff\",\"usage\":{\"output_tokens\":3}}"), true,
       "evil?[31m_name?_", TokenCounts{0, 3, 0, 0}},
  };
  // The fast path's forms (whole "event: NAME" / "data: VALUE" lines, each
  // found with one search) and the byte loop's (no space after the colon, a
  // line cut by a chunk's end) mixed in one stream; LF, CRLF and CR line
  // ends mixed (the kept position of the next CR is passed and found again);
  // the last event is known by its event line alone (its data has no type).
  const std::string start_data =
      R"({"type":"message_start","message":{"model":"claude-mixed","usage":{"input_tokens":7,"output_tokens":1}}})";
  c.push_back({"sse_mixed_line_forms_and_ends",
               SseHead(false) + "event:message_start\r\ndata: " + start_data + "\n\n" +
                   "event: content_block_delta\rdata:{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":500}}\r\r" +
                   "event: message_delta\ndata:{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\r\n\r\n" +
                   "event: message_delta\r\ndata: {\"usage\":{\"output_tokens\":11}}\n\r\n",
               true, "claude-mixed", TokenCounts{7, 11, 0, 0}});
  // A skipped event's data that is, itself, a message_delta's JSON (and not
  // inside a string): the event line says what the event is, and its data
  // is not read at all; names that only begin or end like a usage event's;
  // an event line alone (a blank line right after it), then an event known
  // by its data's type only.
  c.push_back({"sse_skipped_event_data_looks_like_usage",
               SseHead(false) + "event: message_start\ndata: " + start_data + "\n\n" +
                   "event: content_block_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":777}}\n"
                   "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":778}}\n\n" +
                   "event: message_deltas\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":779}}\n\n" +
                   "event: message_delt\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":780}}\n\n" +
                   "event: content_block_delta\n\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":3}}\n\n",
               true, "claude-mixed", TokenCounts{7, 3, 0, 0}});
  // A usage event's data line longer than a TLS record (text in the message).
  c.push_back({"sse_usage_data_line_of_40_kb",
               SseHead(false) + "event: message_start\r\ndata: " +
                   R"({"type":"message_start","message":{"content":[{"text":")" + std::string(40000, 't') +
                   R"("}],"model":"claude-long","usage":{"input_tokens":70000,"output_tokens":1}}})" + "\r\n\r\n",
               true, "claude-long", TokenCounts{70000, 1, 0, 0}});
  // Backslashes before a string's end and in a row (the kept position of
  // the next backslash is passed and found again).
  const std::string esc =
      R"({"content":[{"text":"a\\"},{"text":"\"\\\\\"b\\"}],"model":"m\\2","usage":{"output_tokens":4}})";
  c.push_back({"json_backslashes_before_string_ends", JsonHead(esc.size()) + esc, true, "m\\2",
               TokenCounts{0, 4, 0, 0}});
  // A later duplicate wins, as in most JSON readers.
  std::string dup = R"({"usage":{"input_tokens":1},"model":"a","usage":{"input_tokens":2,"output_tokens":3}})";
  c.push_back({"duplicate_keys_last_wins", JsonHead(dup.size()) + dup, true, "a", TokenCounts{2, 3, 0, 0}});
  // A body far larger than any buffer: the usage after 2 MiB of text.
  std::string big = R"({"model":"big","content":[{"type":"text","text":")" + std::string(2 << 20, 'x') +
                    R"("}],"usage":{"input_tokens":9,"output_tokens":8}})";
  c.push_back({"json_larger_than_any_buffer", JsonHead(big.size()) + big, true, "big", TokenCounts{9, 8, 0, 0}});
  // Nesting deeper than the cap: the reading stops, saying so.
  std::string deep = R"({"model":"d","content":)" + std::string(kMeterMaxDepth + 10, '[') + "]}";
  c.push_back({"nesting_deeper_than_the_cap", JsonHead(deep.size()) + deep, true, "d", TokenCounts{}, true});
  // A head larger than the cap is not read.
  c.push_back({"head_too_large",
               "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-pad: " + std::string(70000, 'p') + "\r\n\r\n" + msg,
               false, "", {}, true, 0});
  return c;
}

void Check(const Case& c, const UsageMeter& m, const std::string& how) {
  SCOPED_TRACE(c.name + " " + how);
  EXPECT_EQ(m.seen(), c.seen);
  EXPECT_EQ(m.model(), c.model);
  EXPECT_EQ(m.counts().input, c.counts.input);
  EXPECT_EQ(m.counts().output, c.counts.output);
  EXPECT_EQ(m.counts().cache_write, c.counts.cache_write);
  EXPECT_EQ(m.counts().cache_read, c.counts.cache_read);
  EXPECT_EQ(!m.unreadable().empty(), c.unreadable) << m.unreadable();
  EXPECT_EQ(m.status(), c.status);
}

TEST(UsageMeterTest, EveryFormWholeSplitAtEveryByteAndByteByByte) {
  for (const Case& c : Cases()) {
    {
      UsageMeter m;
      m.Feed(c.response);
      m.Finish();
      Check(c, m, "whole");
    }
    if (c.response.size() < 20000) {
      for (size_t cut = 0; cut <= c.response.size(); ++cut) {
        UsageMeter m;
        m.Feed(absl::string_view(c.response).substr(0, cut));
        m.Feed(absl::string_view(c.response).substr(cut));
        m.Finish();
        if (m.model() != c.model || !(m.counts() == c.counts) || m.seen() != c.seen) {
          Check(c, m, absl::StrCat("split at ", cut));
          break;
        }
      }
    }
    UsageMeter m;
    for (char ch : c.response) m.Feed(absl::string_view(&ch, 1));
    m.Finish();
    Check(c, m, "byte by byte");
  }
}

TEST(UsageMeterTest, AStreamedAnswerGrowsAsItsEventsArrive) {
  const std::string all = SseHead(false) + Sse("\n", true);
  UsageMeter m;
  m.Feed(all.substr(0, all.find("event: ping")));
  EXPECT_EQ(m.counts().output, 1);
  EXPECT_EQ(m.counts().input, 25);
  const uint64_t before = m.changes();
  m.Feed(all.substr(all.find("event: ping"), all.find("\"output_tokens\":42") - all.find("event: ping")));
  EXPECT_EQ(m.counts().output, 15);
  EXPECT_GT(m.changes(), before);
}

TEST(UsageMeterTest, SafeModelName) {
  EXPECT_EQ(SafeModelName("claude-opus-4-1@2025"), "claude-opus-4-1@2025");
  EXPECT_EQ(SafeModelName("a b\t\x01\xc3\xa9"), "a_b____");
  EXPECT_EQ(SafeModelName(std::string(300, 'm')).size(), kMeterModelBytes);
}

TEST(JsonUsageScannerTest, TakesValuesOnlyAtTheirPathThroughObjects) {
  struct {
    const char* json;
    std::optional<int64_t> usage_input, msg_input;
    std::optional<std::string> model;
  } cases[] = {
      {R"({"usage":{"input_tokens":4}})", 4, std::nullopt, std::nullopt},
      {R"({"message":{"usage":{"input_tokens":5},"model":"x"}})", std::nullopt, 5, std::nullopt},
      {R"([{"usage":{"input_tokens":4}}])", std::nullopt, std::nullopt, std::nullopt},
      {R"({"a":{"usage":{"input_tokens":4}},"model":"top"})", std::nullopt, std::nullopt, "top"},
      {R"({"usage":[{"input_tokens":4}]})", std::nullopt, std::nullopt, std::nullopt},
      {R"({"us\u0061ge":{"input_tokens":4}})", std::nullopt, std::nullopt, std::nullopt},
      {R"({"usage":{"input_tokens":4,"input_tokens_and_more_than_forty_bytes_of_key_name":9}})", 4, std::nullopt,
       std::nullopt},
      {R"({"model":{"nested":"no"},"x":"model"})", std::nullopt, std::nullopt, std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    JsonUsageScanner s;
    s.Feed(c.json);
    EXPECT_TRUE(s.complete());
    EXPECT_EQ(s.usage().input, c.usage_input);
    EXPECT_EQ(s.message_usage().input, c.msg_input);
    EXPECT_EQ(s.model(), c.model);
  }
}

// ---------------------------------------------------------------- budget

ModelTotals Totals(const std::string& model, TokenCounts t, const std::string& provider = "anthropic") {
  ModelTotals m;
  m.provider = provider;
  m.model = model;
  m.requests = 1;
  m.tokens = t;
  return m;
}

TEST(JobBudgetTest, DecideBudgetEveryPath) {
  const ModelPrice sonnet{"anthropic", "sonnet", 3, 15, 3.75, 0.30};
  const ModelPrice any_haiku{"", "haiku", 1, 5, 1.25, 0.10};
  struct Row {
    std::string name;
    BudgetCap cap;
    std::vector<ModelTotals> usage;
    bool allowed;
    std::string why_has;
  } rows[] = {
      {"no cap", {}, {Totals("sonnet", {1000000, 1000000, 0, 0})}, true, ""},
      {"token cap not reached", {1000, 0, {}}, {Totals("sonnet", {500, 499, 0, 0})}, true, ""},
      {"token cap reached exactly", {1000, 0, {}}, {Totals("sonnet", {500, 400, 50, 50})}, false,
       "1000 tokens of its 1000"},
      {"token cap summed over models", {1000, 0, {}},
       {Totals("sonnet", {400, 0, 0, 0}), Totals("unpriced-x", {600, 0, 0, 0})}, false, "1000 tokens"},
      // $3 per M input: 1M input = $3.
      {"usd cap not reached", {0, 3.5, {sonnet}}, {Totals("sonnet", {1000000, 0, 0, 0})}, true, ""},
      {"usd cap reached", {0, 3.0, {sonnet}}, {Totals("sonnet", {1000000, 0, 0, 0})}, false,
       "$3.0000 of its $3.0000"},
      {"usd counts every kind", {0, 3.0, {sonnet}}, {Totals("sonnet", {0, 100000, 200000, 1000000})}, false,
       "$2.5500"},  // 1.5 + 0.75 + 0.3 = 2.55 < 3: allowed? no: checked below
      {"unpriced model never counts as money", {0, 1.0, {sonnet}},
       {Totals("other-model", {50000000, 0, 0, 0})}, true, ""},
      {"unpriced model counts for the token cap", {1000, 1.0, {sonnet}},
       {Totals("other-model", {1000, 0, 0, 0})}, false, "1000 tokens"},
      {"unpriced named in the usd refusal", {0, 1.0, {sonnet}},
       {Totals("sonnet", {400000, 0, 0, 0}), Totals("other-model", {7, 0, 0, 0})}, false,
       "not counting models without a price: anthropic/other-model"},
      {"price of another provider does not apply", {0, 1.0, {sonnet}},
       {Totals("sonnet", {1000000, 0, 0, 0}, "bedrock")}, true, ""},
      {"price without a provider applies to any", {0, 1.0, {any_haiku}},
       {Totals("haiku", {1000000, 0, 0, 0}, "bedrock")}, false, "$1.0000 of its $1.0000"},
      {"both caps: tokens first", {10, 0.000001, {sonnet}}, {Totals("sonnet", {10, 0, 0, 0})}, false,
       "10 tokens of its 10"},
  };
  for (auto& r : rows) {
    SCOPED_TRACE(r.name);
    if (r.name == "usd counts every kind") {
      // 0.1M out x15 + 0.2M write x3.75 + 1M read x0.3 = 1.5 + 0.75 + 0.3 = 2.55
      BudgetDecision d = DecideBudget(r.cap, r.usage);
      EXPECT_TRUE(d.allowed);
      EXPECT_NEAR(d.usd, 2.55, 1e-9);
      r.cap.max_usd = 2.55;
      d = DecideBudget(r.cap, r.usage);
      EXPECT_FALSE(d.allowed);
      EXPECT_NE(d.why.find(r.why_has), std::string::npos) << d.why;
      continue;
    }
    BudgetDecision d = DecideBudget(r.cap, r.usage);
    EXPECT_EQ(d.allowed, r.allowed) << d.why;
    if (!r.allowed) EXPECT_NE(d.why.find(r.why_has), std::string::npos) << d.why;
  }
}

TEST(JobBudgetTest, FindPriceAsTheCoordinatorsTable) {
  const std::vector<ModelPrice> prices = {
      {"anthropic", "claude-sonnet-4*", 3, 0, 0, 0},      {"anthropic", "claude-sonnet-4-5*", 4, 0, 0, 0},
      {"anthropic", "claude-sonnet-4-5-exact", 5, 0, 0, 0}, {"", "claude-haiku*", 1, 0, 0, 0},
      {"anthropic", "claude-haiku-4", 2, 0, 0, 0},          {"bedrock", "claude-opus", 9, 0, 0, 0}};
  struct {
    const char* provider;
    const char* model;
    double input;  // -1: no price
  } rows[] = {
      {"anthropic", "claude-sonnet-4-20250514", 3},  {"anthropic", "claude-sonnet-4-5-20250929", 4},
      {"anthropic", "claude-sonnet-4-5-exact", 5},   {"anthropic", "claude-haiku-4", 2},
      {"anthropic", "claude-haiku-3", 1},            {"vertex", "claude-haiku-4", 1},
      {"anthropic", "claude-opus", -1},              {"anthropic", "claude-sonnet-", -1},
      {"anthropic", "claude-sonnet-4", 3},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(absl::StrCat(r.provider, "/", r.model));
    const ModelPrice* p = FindPrice(prices, r.provider, r.model);
    if (r.input < 0) EXPECT_EQ(p, nullptr);
    else {
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(p->input, r.input);
    }
  }
}

TEST(JobBudgetTest, JobUsageMovesAResponseBetweenReadingsAndBoundsItsModels) {
  JobUsage u("anthropic", 3);
  u.Move({}, {true, "", {5, 0, 0, 0}});                // usage before the model
  u.Move({true, "", {5, 0, 0, 0}}, {true, "a", {5, 1, 0, 0}});  // then the model
  ASSERT_EQ(u.totals().size(), 2u);
  EXPECT_EQ(u.totals()[0].requests, 0);
  EXPECT_EQ(u.totals()[0].tokens, TokenCounts{});
  EXPECT_EQ(u.totals()[1].model, "a");
  EXPECT_EQ(u.totals()[1].requests, 1);
  EXPECT_EQ(u.totals()[1].tokens, (TokenCounts{5, 1, 0, 0}));
  u.Move({}, {true, "b", {1, 1, 1, 1}});
  u.Move({}, {true, "c", {2, 2, 2, 2}});  // a fourth model: under "(other models)"
  ASSERT_EQ(u.totals().size(), 3u);
  EXPECT_EQ(u.totals()[2].model, kOtherModels);
  EXPECT_EQ(u.totals()[2].requests, 2);
  EXPECT_EQ(u.totals()[2].tokens, (TokenCounts{3, 3, 3, 3}));
  EXPECT_EQ(u.totals()[2].provider, "anthropic");
}

TEST(JobBudgetTest, ResponseMetersFeedTheJobAndTheCapRefusesTheNextRequest) {
  BudgetCap cap;
  cap.max_tokens = 1000;
  JobMeter job("anthropic", cap);
  EXPECT_TRUE(job.Admit().allowed);
  const std::string streamed = SseHead(true) + Chunked(Sse("\r\n", true), 11);  // 25+42+3+1000 tokens
  {
    ResponseMeter r(job);
    for (size_t i = 0; i < streamed.size(); i += 13) r.Feed(absl::string_view(streamed).substr(i, 13));
    UsageSnapshot mid = job.Snapshot();
    ASSERT_EQ(mid.models.size(), 1u);
    EXPECT_EQ(mid.models[0].tokens, (TokenCounts{25, 42, 3, 1000}));
    r.End(1234);
  }
  UsageSnapshot s = job.Snapshot();
  ASSERT_EQ(s.models.size(), 1u);
  EXPECT_EQ(s.models[0].model, "claude-stream-2");
  EXPECT_EQ(s.models[0].provider, "anthropic");
  EXPECT_EQ(s.models[0].requests, 1);
  EXPECT_EQ(s.models[0].duration_ms, 1234);
  EXPECT_FALSE(s.budget_exhausted);
  BudgetDecision d = job.Admit();
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.why, "the job's model budget is spent: 1070 tokens of its 1000");
  job.Admit();
  s = job.Snapshot();
  EXPECT_TRUE(s.budget_exhausted);
  EXPECT_EQ(s.budget_refusals, 2);
  EXPECT_EQ(s.budget_why, d.why);
  // A compressed 2xx answer is counted as unmetered, not as free.
  ResponseMeter z(job);
  z.Feed("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: br\r\n\r\nxx");
  z.End(5);
  EXPECT_EQ(job.Snapshot().unmetered, 1);
}

}  // namespace
}  // namespace assessq::gateway
