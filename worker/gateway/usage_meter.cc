#include "worker/gateway/usage_meter.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace assessq::gateway {
namespace {

constexpr size_t kKeyBytes = 40;
constexpr size_t kScalarBytes = 24;
constexpr size_t kTypeBytes = 40;
constexpr size_t kFieldNameBytes = 16;
constexpr size_t kEventNameBytes = 40;

// The usage object's fields, by index.
int FieldIndex(const std::string& key) {
  if (key == "input_tokens") return 0;
  if (key == "output_tokens") return 1;
  if (key == "cache_creation_input_tokens") return 2;
  if (key == "cache_read_input_tokens") return 3;
  return -1;
}

std::optional<int64_t>& FieldRef(JsonUsageScanner::Fields& f, int i) {
  switch (i) {
    case 0: return f.input;
    case 1: return f.output;
    case 2: return f.cache_write;
    default: return f.cache_read;
  }
}

}  // namespace

namespace internal {

// The first of two bytes in [p, end), or end, for a caller that searches
// the same [p, end) again and again from a growing p: the next `b` is found
// once and kept until p passes it (a chunk with no `b` is searched for it
// once), so each search is one memchr (vectorised by the C library) for
// `a` up to the kept `b`. The meter's hot path: `a` '\n' and `b` '\r' for
// line ends (a stream with LF line ends has no CR), `a` '"' and `b` '\\'
// for a JSON string's end.
class FirstOf {
 public:
  FirstOf(const char* end, char a, char b) : end_(end), a_(a), b_(b) {}
  const char* Next(const char* p) {
    if (!b_known_ || b_at_ < p) {
      const void* y = std::memchr(p, b_, static_cast<size_t>(end_ - p));
      b_at_ = y ? static_cast<const char*>(y) : end_;
      b_known_ = true;
    }
    const void* x = std::memchr(p, a_, static_cast<size_t>(b_at_ - p));
    return x ? static_cast<const char*>(x) : b_at_;
  }

 private:
  const char* end_;
  const char* b_at_ = nullptr;
  bool b_known_ = false;
  char a_, b_;
};

}  // namespace internal

namespace {

using internal::FirstOf;

// A server-sent event's name that the meter reads the data of (both names
// are 13 bytes: most names are refused by their length alone).
bool IsUsageEvent(const char* p, size_t n) {
  return n == 13 && std::memcmp(p, "message_", 8) == 0 &&
         (std::memcmp(p + 8, "start", 5) == 0 || std::memcmp(p + 8, "delta", 5) == 0);
}

// [p, p + n) begins with the literal `lit` (a memcmp of a constant size
// the compiler turns into a few loads and compares: no library call).
template <size_t N>
bool Begins(const char* p, size_t n, const char (&lit)[N]) {
  return n >= N - 1 && std::memcmp(p, lit, N - 1) == 0;
}

bool IsDelimiter(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == '}' || c == ']' ||
         c == ':' || c == '"' || c == '{' || c == '[';
}

}  // namespace

std::string SafeModelName(absl::string_view raw) {
  std::string out;
  out.reserve(std::min(raw.size(), kMeterModelBytes));
  for (char c : raw.substr(0, kMeterModelBytes)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += u > 0x20 && u < 0x7f ? c : '_';
  }
  return out;
}

// ---------------------------------------------------------- JSON scanner

// Field by field, keeping the strings' capacity: called once per streamed
// event (the nesting bits need no clearing: each level's is set on opening).
void JsonUsageScanner::Reset() {
  depth_ = 0;
  expect_key_ = complete_ = broken_ = in_key_ = value_cut_ = false;
  lex_ = Lex::kBetween;
  unicode_left_ = 0;
  for (int i = 0; i < 3; ++i) {
    keys_[i].clear();
    key_cut_[i] = false;
  }
  target_ = Target::kNone;
  field_ = -1;
  value_.clear();
  type_.clear();
  model_.reset();
  msg_model_.reset();
  usage_ = Fields();
  msg_usage_ = Fields();
  changes_ = 0;
}

JsonUsageScanner::Target JsonUsageScanner::TargetHere(int* field) const {
  *field = -1;
  const size_t d = depth_;
  if (d == 0 || d > 3) return Target::kNone;
  for (size_t i = 1; i <= d; ++i)
    if (!is_object_[i] || key_cut_[i - 1]) return Target::kNone;
  if (expect_key_) return Target::kNone;  // a value where a key belongs: malformed
  if (d == 1) {
    if (keys_[0] == "type") return Target::kType;
    if (keys_[0] == "model") return Target::kModel;
    return Target::kNone;
  }
  if (d == 2) {
    if (keys_[0] == "usage") {
      *field = FieldIndex(keys_[1]);
      return *field < 0 ? Target::kNone : Target::kUsage;
    }
    if (keys_[0] == "message" && keys_[1] == "model") return Target::kMsgModel;
    return Target::kNone;
  }
  if (keys_[0] == "message" && keys_[1] == "usage") {
    *field = FieldIndex(keys_[2]);
    return *field < 0 ? Target::kNone : Target::kMsgUsage;
  }
  return Target::kNone;
}

void JsonUsageScanner::StartValue(char c) {
  target_ = TargetHere(&field_);
  value_.clear();
  value_cut_ = false;
  if (c != '"') value_ += c;
}

void JsonUsageScanner::Capture(char c) {
  const size_t cap = target_ == Target::kType ? kTypeBytes
                     : (target_ == Target::kModel || target_ == Target::kMsgModel) ? kMeterModelBytes
                                                                                 : kScalarBytes;
  if (value_.size() < cap) value_ += c;
  else value_cut_ = true;
}

void JsonUsageScanner::EndString() {
  if (in_key_) {
    in_key_ = false;
    expect_key_ = false;
    return;
  }
  switch (target_) {
    case Target::kType:
      type_ = value_;
      ++changes_;
      break;
    case Target::kModel:
      model_ = value_;
      ++changes_;
      break;
    case Target::kMsgModel:
      msg_model_ = value_;
      ++changes_;
      break;
    default:
      break;  // a count as a string is not a count
  }
  target_ = Target::kNone;
  if (depth_ == 0) complete_ = true;
}

void JsonUsageScanner::EndScalar() {
  if ((target_ == Target::kUsage || target_ == Target::kMsgUsage) && !value_cut_ && !value_.empty()) {
    int64_t v = 0;
    bool digits = true;
    for (char c : value_) {
      if (c < '0' || c > '9') {
        digits = false;
        break;
      }
      v = std::min<int64_t>(kMeterMaxTokens, v * 10 + (c - '0'));
    }
    if (digits) {
      FieldRef(target_ == Target::kUsage ? usage_ : msg_usage_, field_) = v;
      ++changes_;
    }
  }
  target_ = Target::kNone;
  if (depth_ == 0) complete_ = true;
}

void JsonUsageScanner::CloseContainer() {
  if (depth_ == 0) return;  // tolerant: a stray close
  --depth_;
  expect_key_ = false;
  if (depth_ == 0) complete_ = true;
}

void JsonUsageScanner::Feed(absl::string_view d) {
  const char* p = d.data();
  const char* end = p + d.size();
  FirstOf string_end(end, '"', '\\');
  while (p < end && !broken_ && !complete_) {
    switch (lex_) {
      case Lex::kString: {
        const bool capture = in_key_ ? depth_ <= 3 : target_ != Target::kNone;
        // The fast path: a run of ordinary bytes.
        const char* q = string_end.Next(p);
        if (capture) {
          for (const char* r = p; r < q; ++r) {
            if (in_key_) {
              std::string& k = keys_[depth_ - 1];
              if (k.size() < kKeyBytes) k += *r;
              else key_cut_[depth_ - 1] = true;
            } else {
              Capture(*r);
            }
          }
        }
        p = q;
        if (p == end) break;
        if (*p == '\\') {
          lex_ = Lex::kEscape;
        } else {
          lex_ = Lex::kBetween;
          EndString();
        }
        ++p;
        break;
      }
      case Lex::kEscape: {
        char c = *p++;
        if (c == 'u') {
          lex_ = Lex::kUnicode;
          unicode_left_ = 4;
          c = '?';
        } else {
          lex_ = Lex::kString;
          if (c != '"' && c != '\\' && c != '/') c = '?';
        }
        if (in_key_) {
          if (depth_ <= 3) {
            std::string& k = keys_[depth_ - 1];
            if (k.size() < kKeyBytes) k += c;
            else key_cut_[depth_ - 1] = true;
          }
        } else if (target_ != Target::kNone) {
          Capture(c);
        }
        break;
      }
      case Lex::kUnicode:
        ++p;
        if (--unicode_left_ == 0) lex_ = Lex::kString;
        break;
      case Lex::kScalar: {
        const char c = *p;
        if (IsDelimiter(c)) {
          lex_ = Lex::kBetween;
          EndScalar();
          break;  // the delimiter is read again, between tokens
        }
        if (target_ != Target::kNone) Capture(c);
        ++p;
        break;
      }
      case Lex::kBetween: {
        const char c = *p++;
        switch (c) {
          case ' ':
          case '\t':
          case '\r':
          case '\n':
            break;
          case '{':
          case '[':
            if (depth_ >= kMeterMaxDepth) {
              broken_ = true;
              break;
            }
            ++depth_;
            is_object_[depth_] = c == '{';
            expect_key_ = c == '{';
            if (depth_ <= 3) {
              keys_[depth_ - 1].clear();
              key_cut_[depth_ - 1] = false;
            }
            break;
          case '}':
          case ']':
            CloseContainer();
            break;
          case ',':
            if (depth_ > 0 && is_object_[depth_]) expect_key_ = true;
            break;
          case ':':
            expect_key_ = false;
            break;
          case '"':
            lex_ = Lex::kString;
            if (depth_ > 0 && is_object_[depth_] && expect_key_) {
              in_key_ = true;
              if (depth_ <= 3) {
                keys_[depth_ - 1].clear();
                key_cut_[depth_ - 1] = false;
              }
            } else {
              StartValue(c);
            }
            break;
          default:
            lex_ = Lex::kScalar;
            StartValue(c);
            break;
        }
        break;
      }
    }
  }
}

// ------------------------------------------------------------------ meter

void UsageMeter::Stop(std::string why) {
  if (unreadable_.empty()) unreadable_ = std::move(why);
  stage_ = Stage::kDone;
}

void UsageMeter::Set(const std::string& model, const TokenCounts& c) {
  seen_ = true;
  std::string safe = SafeModelName(model);
  if (safe == model_ && c == counts_) return;
  model_ = std::move(safe);
  counts_ = c;
  ++changes_;
}

void UsageMeter::Feed(absl::string_view data) {
  while (!data.empty()) {
    switch (stage_) {
      case Stage::kDone:
        return;
      case Stage::kBody:
        Body(data);
        return;
      case Stage::kHead: {
        const size_t old = head_.size();
        const size_t take = std::min(data.size(), kMeterHeadCap + 4 - std::min(old, kMeterHeadCap));
        head_.append(data.data(), take);
        const size_t p = head_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
        if (p == std::string::npos) {
          if (head_.size() >= kMeterHeadCap) {
            Stop("the response head is larger than 64 KiB");
            head_.clear();
            head_.shrink_to_fit();
            return;
          }
          data.remove_prefix(take);
          break;
        }
        const size_t head_end = p + 4;
        data.remove_prefix(head_end - old);  // the rest is the body (or the next head)
        head_.resize(head_end);
        ParseHead();
        break;
      }
    }
  }
}

void UsageMeter::ParseHead() {
  std::vector<absl::string_view> lines = absl::StrSplit(head_, "\r\n");
  int status = 0;
  absl::string_view sl = lines.empty() ? absl::string_view() : lines[0];
  if (sl.size() < 12 || !absl::StartsWith(sl, "HTTP/1.") || sl[8] != ' ' ||
      !absl::SimpleAtoi(sl.substr(9, 3), &status)) {
    head_.clear();
    Stop("not an HTTP/1.x response");
    return;
  }
  if (status >= 100 && status < 200 && status != 101) {  // an interim answer: the real head follows
    head_.clear();
    return;
  }
  status_ = status;
  std::string type, encoding, te;
  std::optional<int64_t> length;
  for (size_t i = 1; i < lines.size(); ++i) {
    auto colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(lines[i].substr(0, colon)));
    std::string value = absl::AsciiStrToLower(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (name == "content-type") type = value;
    else if (name == "content-encoding") encoding = value;
    else if (name == "transfer-encoding") te = value;
    else if (name == "content-length") {
      int64_t n = 0;
      if (absl::SimpleAtoi(value, &n) && n >= 0) length = n;
    }
  }
  head_.clear();
  head_.shrink_to_fit();
  stage_ = Stage::kBody;
  if (status < 200 || status > 299) {
    stage_ = Stage::kDone;  // errors carry no usage
    return;
  }
  if (absl::StartsWith(type, "application/json")) kind_ = Kind::kJson;
  else if (absl::StartsWith(type, "text/event-stream")) kind_ = Kind::kSse;
  else {
    stage_ = Stage::kDone;  // not a model answer (e.g. a file download)
    return;
  }
  if (!encoding.empty() && encoding != "identity") {
    Stop(absl::StrCat("the body is compressed (content-encoding ", SafeModelName(encoding),
                      "): its usage cannot be read"));
    return;
  }
  chunked_ = absl::EndsWith(te, "chunked");
  if (!chunked_ && !te.empty() && te != "identity") {
    Stop("unknown transfer-encoding: its usage cannot be read");
    return;
  }
  if (!chunked_ && length) length_left_ = *length;
  if (length_left_ && *length_left_ == 0) stage_ = Stage::kDone;
}

void UsageMeter::Body(absl::string_view data) {
  if (!chunked_) {
    bool last = false;
    if (length_left_) {
      if (static_cast<int64_t>(data.size()) >= *length_left_) {
        data = data.substr(0, static_cast<size_t>(*length_left_));
        last = true;
      }
      *length_left_ -= static_cast<int64_t>(data.size());
    }
    Content(data);
    if (last) stage_ = Stage::kDone;
    return;
  }
  size_t i = 0;
  const size_t n = data.size();
  auto malformed = [&] { Stop("malformed chunked body"); };
  while (i < n && stage_ == Stage::kBody) {
    const char c = data[i];
    switch (chunk_) {
      case Chunk::kSize: {
        int v = -1;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        if (v >= 0) {
          if (++chunk_digits_ > 15) return malformed();
          chunk_left_ = chunk_left_ * 16 + v;
          ++i;
          break;
        }
        if (chunk_digits_ == 0) return malformed();
        if (c == ';' || c == ' ' || c == '\t') chunk_ = Chunk::kExt;
        else if (c == '\r' || c == '\n') chunk_ = Chunk::kSizeLf;
        else return malformed();
        if (c != '\n') ++i;  // a bare LF is read again as the line's end
        break;
      }
      case Chunk::kSizeLf:
        if (c != '\n') return malformed();
        ++i;
        chunk_digits_ = 0;
        if (chunk_left_ == 0) {
          chunk_ = Chunk::kTrailer;
          trailer_line_empty_ = true;
        } else {
          chunk_ = Chunk::kData;
        }
        break;
      case Chunk::kExt:
        if (c == '\r') chunk_ = Chunk::kSizeLf;
        else if (c == '\n') {
          chunk_ = Chunk::kSizeLf;
          break;  // read again as the size line's end
        }
        ++i;
        break;
      case Chunk::kData: {
        const size_t take = static_cast<size_t>(std::min<int64_t>(chunk_left_, static_cast<int64_t>(n - i)));
        Content(data.substr(i, take));
        i += take;
        chunk_left_ -= static_cast<int64_t>(take);
        if (chunk_left_ == 0) chunk_ = Chunk::kDataCr;
        break;
      }
      case Chunk::kDataCr:
        if (c == '\r') chunk_ = Chunk::kDataLf;
        else if (c == '\n') chunk_ = Chunk::kSize;
        else return malformed();
        ++i;
        break;
      case Chunk::kDataLf:
        if (c != '\n') return malformed();
        chunk_ = Chunk::kSize;
        ++i;
        break;
      case Chunk::kTrailer:
        if (c == '\n') {
          if (trailer_line_empty_) {
            chunk_ = Chunk::kDone;
            stage_ = Stage::kDone;
          }
          trailer_line_empty_ = true;
        } else if (c != '\r') {
          trailer_line_empty_ = false;
        }
        ++i;
        break;
      case Chunk::kDone:
        return;
    }
  }
}

void UsageMeter::Content(absl::string_view data) {
  if (data.empty()) return;
  if (kind_ == Kind::kJson) {
    scan_.Feed(data);
    if (scan_.changes() != scan_seen_) {
      scan_seen_ = scan_.changes();
      ApplyJson();
    }
    if (scan_.broken()) Stop(absl::StrCat("the JSON body is nested deeper than ", kMeterMaxDepth, " levels"));
  } else if (kind_ == Kind::kSse) {
    Sse(data);
  }
}

void UsageMeter::ApplyJson() {
  const auto& u = scan_.usage();
  if (!scan_.model() && !u.input && !u.output && !u.cache_write && !u.cache_read) return;
  TokenCounts c;
  c.input = u.input.value_or(0);
  c.output = u.output.value_or(0);
  c.cache_write = u.cache_write.value_or(0);
  c.cache_read = u.cache_read.value_or(0);
  Set(scan_.model().value_or(""), c);
}

void UsageMeter::Sse(absl::string_view data) {
  const char* p = data.data();
  const char* end = p + data.size();
  FirstOf line_end(end, '\n', '\r');
  while (p < end && stage_ != Stage::kDone) {
    if (last_cr_) {
      last_cr_ = false;
      if (*p == '\n') {
        ++p;
        continue;
      }
    }
    if (line_ == Line::kData || line_ == Line::kSkip) {
      const char* q = line_end.Next(p);
      if (line_ == Line::kData && q > p) {
        scan_.Feed(absl::string_view(p, static_cast<size_t>(q - p)));
        if (scan_.broken()) {
          Stop(absl::StrCat("an event's JSON is nested deeper than ", kMeterMaxDepth, " levels"));
          return;
        }
      }
      p = q;
      if (p == end) return;
      last_cr_ = *p == '\r';
      ++p;
      SseLineEnd();
      continue;
    }
    if (line_ == Line::kName && field_name_.empty() && !saw_colon_) {
      p = SseLines(p, end, line_end);
      if (p == end || stage_ == Stage::kDone) return;
      // Left to the byte loop below: a line cut by the chunk's end, or of
      // another form than the fast path's.
      const size_t left = static_cast<size_t>(end - p);
      if (Begins(p, left, "data: ")) {  // cut by the chunk's end
        p += 6;
        SseStartData();
        continue;
      }
    }
    const char c = *p++;
    if (c == '\r' || c == '\n') {
      last_cr_ = c == '\r';
      SseLineEnd();
      continue;
    }
    switch (line_) {
      case Line::kName:
        if (c == ':') {
          saw_colon_ = true;
          line_ = Line::kSpace;
        } else if (field_name_.size() < kFieldNameBytes) {
          field_name_ += c;
        } else {
          name_cut_ = true;
        }
        break;
      case Line::kSpace:
      case Line::kEvent: {
        Line next;
        if (line_ == Line::kEvent) next = Line::kEvent;
        else if (name_cut_) next = Line::kSkip;
        else if (field_name_ == "event") next = Line::kEvent;
        else if (field_name_ == "data") next = Line::kData;
        else next = Line::kSkip;  // comments (":..."), id, retry
        const bool space_consumed = line_ == Line::kSpace && c == ' ';
        if (line_ == Line::kSpace && next == Line::kEvent) event_name_.clear();
        if (line_ == Line::kSpace && next == Line::kData) {
          SseStartData();
          next = line_;
        }
        line_ = next;
        if (space_consumed) break;
        if (line_ == Line::kEvent) {
          if (event_name_.size() < kEventNameBytes) event_name_ += c;
        } else {
          --p;  // the first byte of the value, read again in its state
        }
        break;
      }
      default:
        break;
    }
  }
}

// At a line's start, between lines: the whole lines of the forms a provider
// sends ("event: NAME", "data: VALUE", blank) that end in this chunk, each
// with one search for its end. The same effect as the byte loop's, which
// takes over (at the returned line start) for a line cut by the chunk's end
// and for any other form; returns end when all was read.
const char* UsageMeter::SseLines(const char* p, const char* end, FirstOf& line_end) {
  // The most frequent event of every stream (each piece of the text), known
  // whole without a search for its line's end.
  static constexpr char kTextEvent[] = "event: content_block_delta";
  constexpr size_t kTextEventBytes = sizeof kTextEvent - 1;
  while (p < end && stage_ != Stage::kDone) {
    const char* q;
    const size_t left = static_cast<size_t>(end - p);
    if (*p == '\n' || *p == '\r') {
      q = p;
      if (data_in_event_) SseDispatch();  // a blank line ends the event
      else event_name_.clear();           // (nothing of it was read)
    } else if (left > kTextEventBytes && (p[kTextEventBytes] == '\n' || p[kTextEventBytes] == '\r') &&
               Begins(p, left, kTextEvent)) {
      q = p + kTextEventBytes;
      event_name_.assign(kTextEvent + 7, kTextEventBytes - 7);
    } else {
      q = line_end.Next(p);
      if (q == end) return p;
      const size_t n = static_cast<size_t>(q - p);
      if (Begins(p, n, "data: ")) {
        // Another event's data (known by its event line) is skipped unread.
        if (event_name_.empty() || IsUsageEvent(event_name_.data(), event_name_.size())) {
          SseStartData();
          if (n > 6) {
            scan_.Feed(absl::string_view(p + 6, n - 6));
            if (scan_.broken()) {
              Stop(absl::StrCat("an event's JSON is nested deeper than ", kMeterMaxDepth, " levels"));
              return end;
            }
          }
          line_ = Line::kName;
        }
      } else if (Begins(p, n, "event: ")) {
        event_name_.assign(p + 7, std::min<size_t>(n - 7, kEventNameBytes));
      } else {
        return p;
      }
    }
    p = q + 1;
    if (*q == '\r') {
      if (p == end) last_cr_ = true;
      else if (*p == '\n') ++p;
    }
  }
  return p;
}

void UsageMeter::SseStartData() {
  if (!event_name_.empty() && !IsUsageEvent(event_name_.data(), event_name_.size())) {
    line_ = Line::kSkip;  // known to be another event: its data is not read at all
    return;
  }
  if (data_in_event_) scan_.Feed("\n");  // data lines of one event are joined by a line feed
  data_in_event_ = true;
  line_ = Line::kData;
}

void UsageMeter::SseLineEnd() {
  if (line_ == Line::kName && field_name_.empty() && !saw_colon_) {
    SseDispatch();  // a blank line ends the event
  } else if (line_ == Line::kSpace && field_name_ == "event" && !name_cut_) {
    event_name_.clear();  // "event:" with an empty value
  } else if (line_ == Line::kSpace && field_name_ == "data" && !name_cut_) {
    if (data_in_event_) scan_.Feed("\n");  // "data:" with an empty value
    data_in_event_ = true;
  }
  line_ = Line::kName;
  field_name_.clear();
  name_cut_ = false;
  saw_colon_ = false;
}

void UsageMeter::SseDispatch() {
  if (!data_in_event_) {  // nothing was scanned (another event's data is skipped)
    event_name_.clear();
    return;
  }
  const std::string& type = event_name_.empty() ? scan_.type() : event_name_;
  if (scan_.complete()) {
    if (type == "message_start") {
      const auto& u = scan_.message_usage();
      TokenCounts c;
      c.input = u.input.value_or(0);
      c.output = u.output.value_or(0);
      c.cache_write = u.cache_write.value_or(0);
      c.cache_read = u.cache_read.value_or(0);
      Set(scan_.message_model().value_or(model_), c);
    } else if (type == "message_delta") {
      // Cumulative: each count given replaces the one before.
      const auto& u = scan_.usage();
      TokenCounts c = counts_;
      if (u.input) c.input = *u.input;
      if (u.output) c.output = *u.output;
      if (u.cache_write) c.cache_write = *u.cache_write;
      if (u.cache_read) c.cache_read = *u.cache_read;
      if (u.input || u.output || u.cache_write || u.cache_read) Set(model_, c);
    }
  }
  scan_.Reset();
  event_name_.clear();
  data_in_event_ = false;
}

void UsageMeter::Finish() {
  if (kind_ == Kind::kSse && unreadable_.empty() && data_in_event_ && scan_.complete()) SseDispatch();
  if (stage_ == Stage::kHead && !head_.empty()) Stop("the response ended inside its head");
  stage_ = Stage::kDone;
}

}  // namespace assessq::gateway
