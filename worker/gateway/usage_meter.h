// The model provider's own count of a response's tokens, read as the
// response passes through the gateway (the agent cannot forge it: the bytes
// come from the provider over the gateway's TLS connection). Fed the
// response from its status line on, in chunks of any size, it decodes the
// head (status, Content-Type, Content-Length, Transfer-Encoding: chunked,
// Content-Encoding), the body's framing, and then either a JSON message (the
// top-level "model" and "usage") or a stream of server-sent events
// (message_start's message.model and message.usage; each message_delta's
// usage, whose counts are cumulative and replace the earlier ones; the data
// of any other event, known by its `event:` line, is skipped unread, a
// whole line at a time with one memchr, so that metering a stream costs
// the relay little: see docs/gateway.md). A
// response cut short counts what arrived: the JSON fields read so far, the
// stream's complete events.
//
// Memory is bounded whatever the input: the head is kept up to 64 KiB (a
// larger one is not read), and the body is never buffered. The JSON scanner
// is a streaming one that keeps only its nesting (one bit per level, up to
// kMeterMaxDepth levels), the keys of the first three levels (cut to 40
// bytes) and the few values it wants (the model cut to 128 bytes, numbers
// saturating at kMeterMaxTokens), so a JSON body of any size is read for
// its usage in one pass with a few hundred bytes of state. A value is taken
// only at its path through objects ("usage" at the top, not a "usage" key
// inside the content the model wrote). A compressed body cannot be read
// (the model route asks the provider for identity); it, a malformed framing
// or nesting deeper than the cap stop the reading, saying why (unreadable()),
// and keep what was read before. Only 2xx responses are read. Pure; no I/O;
// fuzzed (fuzz/fuzz_usage_meter.cc) and unit-tested.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace assessq::gateway {

inline constexpr size_t kMeterHeadCap = 64 * 1024;
inline constexpr size_t kMeterModelBytes = 128;
inline constexpr size_t kMeterMaxDepth = 4096;
inline constexpr int64_t kMeterMaxTokens = int64_t{1} << 40;  // per field of one response

struct TokenCounts {
  int64_t input = 0;
  int64_t output = 0;
  int64_t cache_write = 0;  // cache_creation_input_tokens
  int64_t cache_read = 0;   // cache_read_input_tokens
  int64_t total() const { return input + output + cache_write + cache_read; }
  bool operator==(const TokenCounts&) const = default;
};

// A model name as the gateway reports it: printable ASCII other than space
// kept, every other byte '_', cut to kMeterModelBytes; "" stays "".
std::string SafeModelName(absl::string_view raw);

// A streaming JSON scanner that captures the few values the meter needs.
// Tolerant: it does not validate JSON, only follows strings, nesting and
// keys. Exposed for the tests.
class JsonUsageScanner {
 public:
  struct Fields {
    std::optional<int64_t> input, output, cache_write, cache_read;
  };
  void Feed(absl::string_view data);
  void Reset();
  bool complete() const { return complete_; }  // the top-level value has ended
  bool broken() const { return broken_; }      // nested deeper than kMeterMaxDepth
  const std::string& type() const { return type_; }                // "type"
  const std::optional<std::string>& model() const { return model_; }          // "model"
  const std::optional<std::string>& message_model() const { return msg_model_; }  // "message"."model"
  const Fields& usage() const { return usage_; }                  // "usage".*
  const Fields& message_usage() const { return msg_usage_; }      // "message"."usage".*
  uint64_t changes() const { return changes_; }  // bumped when a captured value is set

 private:
  enum class Target : uint8_t { kNone, kType, kModel, kMsgModel, kUsage, kMsgUsage };
  void StartValue(char c);
  Target TargetHere(int* field) const;
  void EndScalar();
  void EndString();
  void CloseContainer();
  void Capture(char c);

  size_t depth_ = 0;
  std::bitset<kMeterMaxDepth + 1> is_object_;
  bool expect_key_ = false;
  bool complete_ = false;
  bool broken_ = false;
  // Inside a string (key or value), a bare scalar, or between tokens.
  enum class Lex : uint8_t { kBetween, kString, kEscape, kUnicode, kScalar } lex_ = Lex::kBetween;
  int unicode_left_ = 0;
  bool in_key_ = false;
  std::string keys_[3];
  bool key_cut_[3] = {false, false, false};
  Target target_ = Target::kNone;
  int field_ = -1;
  std::string value_;  // the captured string or scalar, bounded
  bool value_cut_ = false;
  std::string type_;
  std::optional<std::string> model_, msg_model_;
  Fields usage_, msg_usage_;
  uint64_t changes_ = 0;
};

namespace internal {
class FirstOf;  // usage_meter.cc: the next of two bytes, one memchr a search
}  // namespace internal

class UsageMeter {
 public:
  // The response's next bytes (head and body as they came from the provider).
  void Feed(absl::string_view data);
  // The stream ended (in full or cut short): a streamed event whose JSON is
  // complete but whose closing blank line never came still counts.
  void Finish();

  int status() const { return status_; }
  bool streamed() const { return kind_ == Kind::kSse; }
  // Some usage or model was read from this response.
  bool seen() const { return seen_; }
  const std::string& model() const { return model_; }  // SafeModelName'd
  const TokenCounts& counts() const { return counts_; }
  // Why the response could not be (fully) read; "" when it could.
  const std::string& unreadable() const { return unreadable_; }
  // Bumped whenever model() or counts() change: cheap to poll per chunk.
  uint64_t changes() const { return changes_; }

 private:
  enum class Stage : uint8_t { kHead, kBody, kDone };
  enum class Kind : uint8_t { kIgnore, kJson, kSse };
  enum class Chunk : uint8_t { kSize, kExt, kSizeLf, kData, kDataCr, kDataLf, kTrailer, kDone };
  void ParseHead();
  void Body(absl::string_view data);
  void Content(absl::string_view data);
  void Sse(absl::string_view data);
  const char* SseLines(const char* p, const char* end, internal::FirstOf& line_end);
  void SseStartData();
  void SseLineEnd();
  void SseDispatch();
  void ApplyJson();
  void Set(const std::string& model, const TokenCounts& c);
  void Stop(std::string why);

  Stage stage_ = Stage::kHead;
  std::string head_;
  int status_ = 0;
  Kind kind_ = Kind::kIgnore;
  bool chunked_ = false;
  std::optional<int64_t> length_left_;
  Chunk chunk_ = Chunk::kSize;
  int64_t chunk_left_ = 0;
  int chunk_digits_ = 0;
  bool trailer_line_empty_ = true;
  // Server-sent events.
  enum class Line : uint8_t { kName, kSpace, kData, kEvent, kSkip } line_ = Line::kName;
  std::string field_name_;
  bool name_cut_ = false;
  bool saw_colon_ = false;
  bool last_cr_ = false;
  bool data_in_event_ = false;
  std::string event_name_;
  JsonUsageScanner scan_;
  uint64_t scan_seen_ = 0;  // JSON kind: scan_.changes() last applied
  // What was read.
  bool seen_ = false;
  std::string model_;
  TokenCounts counts_;
  std::string unreadable_;
  uint64_t changes_ = 0;
};

// The model route's request head: the headers the gateway itself sets
// replace the agent's of the same name. For metering it sets
// accept-encoding: identity, so the provider's answer is readable.
inline constexpr char kAcceptIdentityName[] = "accept-encoding";
inline constexpr char kAcceptIdentityValue[] = "identity";

}  // namespace assessq::gateway
