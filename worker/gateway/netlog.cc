#include "worker/gateway/netlog.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "worker/gateway/gateway.h"
#include "worker/gateway/http_head.h"

namespace assessq::gateway {
namespace {

// A job's string for workerd's own log: printable ASCII as is, every other
// byte as \xNN (no line breaks or terminal escapes from the agent), cut.
std::string LogSafe(const std::string& s, size_t max = 160) {
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < max; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') out += static_cast<char>(c);
    else absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
  }
  if (out.size() >= max && s.size() > max) absl::StrAppend(&out, "...(", s.size(), " bytes)");
  return out;
}

}  // namespace

std::string NetlogText(const nlohmann::json& netlog) {
  return netlog.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void Netlog::Record(Entry& e, bool allowed, const std::string& why, absl::string_view token) {
  e.j["ts"] = e.start;
  e.j["job"] = job_id_;
  e.j["decision"] = allowed ? "allow" : "deny";
  e.j["reason"] = why;
  if (!allowed && !token.empty()) e.j["deny_reason"] = std::string(token);
  e.j["duration_ms"] = NowMs() - e.start;
  // Hosts, paths, server names and reasons are the agent's bytes: each is
  // cut, so one entry stays small whatever the request held.
  for (auto& [k, v] : e.j.items())
    if (v.is_string() && v.get_ref<const std::string&>().size() > kNetlogFieldBytes)
      v = CutText(v.get<std::string>(), kNetlogFieldBytes);
  const size_t size = NetlogText(e.j).size() + 1;  // and its comma
  std::lock_guard<std::mutex> l(mu_);
  if (!allowed) ++denied_;
  // Refusals fill at most three quarters of the log: a flood of them cannot
  // push out the connections that were allowed (the evidence the
  // coordinator's trust flags read).
  const int64_t max_entries = allowed ? lim_.max_entries : lim_.max_entries / 4 * 3;
  const int64_t max_bytes = allowed ? lim_.max_bytes : lim_.max_bytes / 4 * 3;
  if (static_cast<int64_t>(entries_.size()) < max_entries && bytes_ + static_cast<int64_t>(size) <= max_bytes) {
    entries_.push_back(e.j);
    bytes_ += static_cast<int64_t>(size);
  } else {
    ++dropped_;
    if (!allowed) ++dropped_denied_;
  }
  if (!allowed) LogLineLocked(e, why);
}

nlohmann::json Netlog::Entries() {
  std::lock_guard<std::mutex> l(mu_);
  nlohmann::json out = entries_;
  if (dropped_ > 0)
    out.push_back({{"ts", NowMs()},
                   {"job", job_id_},
                   {"decision", "truncated"},
                   {"reason", absl::StrCat("network log cap reached (", lim_.max_entries, " entries or ",
                                           lim_.max_bytes, " bytes): ", dropped_,
                                           " more connection(s) not logged, ", dropped_denied_, " of them denied")},
                   {"dropped_entries", dropped_},
                   {"dropped_denied", dropped_denied_}});
  return out;
}

int Netlog::denied() {
  std::lock_guard<std::mutex> l(mu_);
  return denied_;
}

void Netlog::FlushSuppressed() {
  std::lock_guard<std::mutex> l(mu_);
  FlushSuppressedLocked();
}

// workerd's line about a refused request: fields escaped and cut, at most
// lines_per_minute per job, the rest counted and said once the minute is
// over (or when the job ends).
void Netlog::LogLineLocked(const Entry& e, const std::string& why) {
  const int64_t now = NowMs();
  if (now - line_window_start_ >= 60000) {
    FlushSuppressedLocked();
    line_window_start_ = now;
    lines_in_window_ = 0;
  }
  if (lines_in_window_ >= lim_.lines_per_minute) {
    ++lines_suppressed_;
    return;
  }
  ++lines_in_window_;
  auto str = [&](const char* k) {
    auto it = e.j.find(k);
    return it != e.j.end() && it->is_string() ? LogSafe(it->get<std::string>()) : std::string();
  };
  auto port = e.j.find("port");
  spdlog::info("[job={}] gateway denied {} {}:{}: {}", job_id_, str("method"), str("host"),
               port != e.j.end() && port->is_number() ? port->get<int64_t>() : 0, LogSafe(why, 240));
}

void Netlog::FlushSuppressedLocked() {
  if (lines_suppressed_ == 0) return;
  spdlog::info("[job={}] gateway: {} more refused request(s) not logged here (limit {} lines a "
               "minute); the job's network log counts them",
               job_id_, lines_suppressed_, lim_.lines_per_minute);
  lines_suppressed_ = 0;
}

}  // namespace assessq::gateway
