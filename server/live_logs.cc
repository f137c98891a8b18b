// In-memory output of running attempts (see live_logs.h).
#include "server/live_logs.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace assessq {

void LiveLogs::Open(int64_t job_id, int64_t token, int64_t principal) {
  absl::MutexLock l(&mu_);
  leases_[token] = Lease{job_id, principal};
  if (auto it = streams_.find(token); it != streams_.end()) it->second.finished = false;
}

void LiveLogs::Close(int64_t token, int64_t now_ms) {
  absl::MutexLock l(&mu_);
  leases_.erase(token);
  if (auto it = streams_.find(token); it != streams_.end()) {
    it->second.finished = true;
    it->second.touched_ms = now_ms;
  }
}

absl::Status LiveLogs::Append(int64_t job_id, int64_t token, int64_t principal, int64_t offset,
                              const std::string& data, int64_t now_ms) {
  if (offset < 0) return absl::InvalidArgumentError("log append: negative offset");
  absl::MutexLock l(&mu_);
  auto lease = leases_.find(token);
  if (lease == leases_.end() || lease->second.job_id != job_id)
    return absl::FailedPreconditionError(absl::StrCat(
        "log append: job ", job_id, ": lease ", token, " is not held (stale token)"));
  if (principal != 0 && lease->second.principal != 0 && lease->second.principal != principal)
    return absl::FailedPreconditionError(absl::StrCat(
        "log append: job ", job_id, ": lease ", token, " was taken with another worker token"));
  Stream& s = streams_[token];
  s.job_id = job_id;
  s.touched_ms = now_ms;
  s.finished = false;
  int64_t end = s.base + static_cast<int64_t>(s.buf.size());
  if (offset > end) {
    // A gap (the worker skipped output it could not keep up with).
    total_ -= s.buf.size();
    s.buf.clear();
    s.base = offset;
    end = offset;
  }
  int64_t overlap = end - offset;
  if (overlap < static_cast<int64_t>(data.size())) {
    size_t before = s.buf.size();
    s.buf.append(data, static_cast<size_t>(overlap), std::string::npos);
    total_ += s.buf.size() - before;
  }
  if (s.buf.size() > opt_.max_bytes) TrimFront(s, s.buf.size() - opt_.max_bytes);
  Evict(now_ms);
  return absl::OkStatus();
}

void LiveLogs::TrimFront(Stream& s, size_t n) {
  n = std::min(n, s.buf.size());
  s.buf.erase(0, n);
  s.base += static_cast<int64_t>(n);
  total_ -= n;
}

void LiveLogs::Evict(int64_t now_ms) {
  auto drop = [&](std::map<int64_t, Stream>::iterator it) {
    total_ -= it->second.buf.size();
    return streams_.erase(it);
  };
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (now_ms - it->second.touched_ms > opt_.idle_ms) it = drop(it);
    else ++it;
  }
  // Finished before running, stalest first.
  auto first_to_go = [&] {
    return std::min_element(streams_.begin(), streams_.end(), [](auto& a, auto& b) {
      if (a.second.finished != b.second.finished) return a.second.finished;
      return a.second.touched_ms < b.second.touched_ms;
    });
  };
  while (streams_.size() > opt_.max_streams) drop(first_to_go());
  while (total_ > opt_.max_total_bytes) {
    auto victim = first_to_go();
    if (!victim->second.finished) break;
    drop(victim);
  }
  // Only running attempts left and still over: the largest loses its oldest
  // bytes, down to the next largest or to the cap, whichever comes first.
  while (total_ > opt_.max_total_bytes) {
    Stream* big = nullptr;
    size_t second = 0;
    for (auto& [token, s] : streams_) {
      if (!big || s.buf.size() > big->buf.size()) {
        if (big) second = std::max(second, big->buf.size());
        big = &s;
      } else {
        second = std::max(second, s.buf.size());
      }
    }
    if (!big || big->buf.empty()) break;
    size_t over = total_ - opt_.max_total_bytes;
    size_t cut = std::min(over, big->buf.size() - second);
    if (cut == 0) cut = std::min(over, std::max<size_t>(1, big->buf.size() / 2));
    TrimFront(*big, cut);
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

size_t LiveLogs::total_bytes() const {
  absl::MutexLock l(&mu_);
  return total_;
}

}  // namespace assessq
