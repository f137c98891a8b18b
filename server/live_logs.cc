// In-memory output of running attempts (see live_logs.h).
#include "server/live_logs.h"

#include <algorithm>
#include <vector>

namespace assessq {

void LiveLogs::Append(int64_t job_id, int64_t token, int64_t offset, const std::string& data,
                      int64_t now_ms) {
  if (offset < 0) return;
  absl::MutexLock l(&mu_);
  Stream& s = streams_[token];
  s.job_id = job_id;
  s.touched_ms = now_ms;
  int64_t end = s.base + static_cast<int64_t>(s.buf.size());
  if (offset > end) {
    // A gap (the worker skipped output it could not keep up with).
    s.buf.clear();
    s.base = offset;
    end = offset;
  }
  int64_t overlap = end - offset;
  if (overlap < static_cast<int64_t>(data.size()))
    s.buf.append(data, static_cast<size_t>(overlap), std::string::npos);
  if (s.buf.size() > opt_.max_bytes) {
    size_t drop = s.buf.size() - opt_.max_bytes;
    s.buf.erase(0, drop);
    s.base += static_cast<int64_t>(drop);
  }
  Evict(now_ms);
}

void LiveLogs::Evict(int64_t now_ms) {
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (now_ms - it->second.touched_ms > opt_.idle_ms) it = streams_.erase(it);
    else ++it;
  }
  while (streams_.size() > opt_.max_streams) {
    auto stalest = std::min_element(streams_.begin(), streams_.end(), [](auto& a, auto& b) {
      return a.second.touched_ms < b.second.touched_ms;
    });
    streams_.erase(stalest);
  }
}

std::optional<LiveLogs::Chunk> LiveLogs::Read(int64_t token, int64_t offset, size_t max) const {
  absl::MutexLock l(&mu_);
  auto it = streams_.find(token);
  if (it == streams_.end()) return std::nullopt;
  const Stream& s = it->second;
  Chunk c;
  int64_t from = std::max<int64_t>(offset, s.base);
  c.skipped = from - std::max<int64_t>(offset, 0);
  int64_t end = s.base + static_cast<int64_t>(s.buf.size());
  if (from >= end) {
    c.next_offset = std::max(offset, end);
    c.skipped = 0;
    return c;
  }
  c.data = s.buf.substr(static_cast<size_t>(from - s.base), max);
  c.next_offset = from + static_cast<int64_t>(c.data.size());
  return c;
}

}  // namespace assessq
