#include "worker/gateway/gateway.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ssl.hpp>
#include <chrono>
#include <filesystem>
#include <list>
#include <optional>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "worker/gateway/http_head.h"

namespace assessq::gateway {
namespace {

using asio::awaitable;
using asio::use_awaitable;
using namespace asio::experimental::awaitable_operators;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Cuts `s` to at most `max` bytes (at a UTF-8 character boundary), saying
// how many were cut.
std::string CutText(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return absl::StrCat(s.substr(0, n), "...[", s.size() - n, " more bytes cut]");
}

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

// The gateway's own answer. A refusal names its reason twice: as a token in
// `x-deny-reason` (what a client such as Claude Code recognises, e.g.
// host_not_allowed) and as a short sentence in the body.
std::string Reply(int code, absl::string_view phrase, absl::string_view token, const std::string& why) {
  std::string body = absl::StrCat("assessq gateway: ", CutText(why, 400), "\n");
  return absl::StrCat("HTTP/1.1 ", code, " ", phrase, "\r\nContent-Type: text/plain; charset=utf-8\r\n",
                      "X-Assessq-Gateway: ", code == 200 ? "allow" : "deny", "\r\n",
                      token.empty() ? "" : absl::StrCat("x-deny-reason: ", token, "\r\n"),
                      "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
}

// The deny_reason token of a failed Resolve: blocked address or no answer.
const char* ResolveToken(const absl::Status& s) {
  return absl::IsPermissionDenied(s) ? "address_forbidden" : "resolve_failed";
}

// One log entry, filled in as the request proceeds.
struct Entry {
  nlohmann::json j;
  int64_t start = NowMs();
};

// One direction of a relayed connection.
struct Flow {
  int64_t bytes = 0;  // taken from the source and admitted by the job's budget
  bool cut = false;   // stopped by the job's byte limit
};

// A pipe for splice(2), closed with its owner (also when a coroutine frame
// is destroyed unfinished). The kernel's default size (64 KiB): 256 KiB and
// 1 MiB made no difference gateway_bench could see.
struct KernelPipe {
  int r = -1, w = -1;
  size_t size = 0;
  KernelPipe() {
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return;
    r = p[0];
    w = p[1];
    int got = fcntl(w, F_GETPIPE_SZ);
    size = got > 0 ? static_cast<size_t>(got) : size_t{4096};
  }
  ~KernelPipe() {
    if (r >= 0) close(r);
    if (w >= 0) close(w);
  }
  KernelPipe(const KernelPipe&) = delete;
  KernelPipe& operator=(const KernelPipe&) = delete;
  bool ok() const { return r >= 0; }
};

// Takes a SIGPIPE that a splice(2) into a closed socket left pending on this
// (io) thread, where it is blocked: none piles up.
void DrainSigpipe() {
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  const timespec zero{0, 0};
  while (sigtimedwait(&pipe_only, nullptr, &zero) > 0) {
  }
}

// A socket whose descriptor carries the stream's bytes as they are (not a
// TLS stream): both ends of a spliced flow must be one.
template <typename S>
constexpr bool kPlainSocket = std::is_same_v<S, tcp::socket> || std::is_same_v<S, local::socket>;

}  // namespace

class JobGatewayImpl final : public JobGateway,
                             public std::enable_shared_from_this<JobGatewayImpl> {
 public:
  JobGatewayImpl(asio::io_context& io, JobConfig cfg, const GatewayOptions& gopt)
      : io_(io), cfg_(std::move(cfg)), gopt_(gopt), acceptor_(io),
        names_(cfg_.limits.max_names_per_wildcard),
        meter_(cfg_.model ? cfg_.model->provider : std::string(), cfg_.budget) {
    // Taken when the job starts: the worker host is never a destination.
    auto self = LocalAddresses();
    cfg_.policy.self_addresses.insert(cfg_.policy.self_addresses.end(), self.begin(), self.end());
  }

  // Lines suppressed after Stop (connections that ended later) are said too.
  ~JobGatewayImpl() override { FlushSuppressedLocked(); }

  absl::Status Listen() {
    std::error_code ec;
    std::filesystem::remove(cfg_.socket_path, ec);
    acceptor_.open(local(), ec);
    if (!ec) acceptor_.bind(local::endpoint(cfg_.socket_path), ec);
    if (!ec) acceptor_.listen(64, ec);
    if (ec) return absl::InternalError(absl::StrCat("gateway listen ", cfg_.socket_path, ": ", ec.message()));
    // The container's user must connect; the directory around it is private
    // to this job's mount.
    chmod(cfg_.socket_path.c_str(), 0666);
    asio::co_spawn(io_, [self = shared_from_this()]() { return self->AcceptLoop(); }, asio::detached);
    return absl::OkStatus();
  }

  void Stop() override {
    asio::post(io_, [self = shared_from_this()] {
      std::error_code ec;
      self->stopped_ = true;
      self->acceptor_.close(ec);
      std::lock_guard<std::mutex> l(self->mu_);
      for (auto& c : self->closers_) c(true);
      self->closers_.clear();
      self->FlushSuppressedLocked();
      self->stop_ran_ = true;
      self->idle_cv_.notify_all();
    });
    // Wait (bounded) until every connection has ended and logged, so the
    // network log read next has the connections that were still open (a
    // tunnel held to the end would otherwise be missing from it).
    if (io_.get_executor().running_in_this_thread()) return;
    std::unique_lock<std::mutex> l(mu_);
    idle_cv_.wait_for(l, std::chrono::seconds(3), [&] { return stop_ran_ && active_ == 0; });
  }

  nlohmann::json Netlog() override {
    std::lock_guard<std::mutex> l(mu_);
    nlohmann::json out = netlog_;
    if (dropped_ > 0)
      out.push_back({{"ts", NowMs()},
                     {"job", cfg_.job_id},
                     {"decision", "truncated"},
                     {"reason", absl::StrCat("network log cap reached (", cfg_.limits.netlog_max_entries,
                                             " entries or ", cfg_.limits.netlog_max_bytes,
                                             " bytes): ", dropped_, " more connection(s) not logged, ",
                                             dropped_denied_, " of them denied")},
                     {"dropped_entries", dropped_},
                     {"dropped_denied", dropped_denied_}});
    return out;
  }
  RateSignal rate_signal() override {
    std::lock_guard<std::mutex> l(mu_);
    return rate_;
  }
  int denied() override {
    std::lock_guard<std::mutex> l(mu_);
    return denied_;
  }
  UsageSnapshot usage() override { return meter_.Snapshot(); }

 private:
  awaitable<void> AcceptLoop() {
    while (!stopped_) {
      std::error_code ec;
      local::socket s = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (stopped_ || ec == asio::error::operation_aborted) co_return;
        // Out of descriptors (or another error that leaves the connection
        // queued): do not spin on the io thread every job shares.
        asio::steady_timer t(io_, std::chrono::milliseconds(50));
        co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      auto sock = std::make_shared<local::socket>(std::move(s));
      asio::co_spawn(io_, [self = shared_from_this(), sock]() { return self->Serve(sock); },
                     asio::detached);
    }
  }

  // Records a connection's entry (within the log's caps) and, for a
  // refusal, a line in workerd's own log (rate-limited). `token` is the
  // refusal's deny_reason.
  void Log(Entry& e, bool allowed, const std::string& why, absl::string_view token = "") {
    e.j["ts"] = e.start;
    e.j["job"] = cfg_.job_id;
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
    const JobLimits& lim = cfg_.limits;
    const int64_t max_entries = allowed ? lim.netlog_max_entries : lim.netlog_max_entries / 4 * 3;
    const int64_t max_bytes = allowed ? lim.netlog_max_bytes : lim.netlog_max_bytes / 4 * 3;
    if (static_cast<int64_t>(netlog_.size()) < max_entries &&
        netlog_bytes_ + static_cast<int64_t>(size) <= max_bytes) {
      netlog_.push_back(e.j);
      netlog_bytes_ += static_cast<int64_t>(size);
    } else {
      ++dropped_;
      if (!allowed) ++dropped_denied_;
    }
    if (!allowed) LogLineLocked(e, why);
  }

  // workerd's line about a refused request: fields escaped and cut, at most
  // log_lines_per_minute per job, the rest counted and said once the minute
  // is over (or when the job ends).
  void LogLineLocked(const Entry& e, const std::string& why) {
    const int64_t now = NowMs();
    if (now - line_window_start_ >= 60000) {
      FlushSuppressedLocked();
      line_window_start_ = now;
      lines_in_window_ = 0;
    }
    if (lines_in_window_ >= cfg_.limits.log_lines_per_minute) {
      ++lines_suppressed_;
      return;
    }
    ++lines_in_window_;
    auto str = [&](const char* k) {
      auto it = e.j.find(k);
      return it != e.j.end() && it->is_string() ? LogSafe(it->get<std::string>()) : std::string();
    };
    auto port = e.j.find("port");
    spdlog::info("[job={}] gateway denied {} {}:{}: {}", cfg_.job_id, str("method"), str("host"),
                 port != e.j.end() && port->is_number() ? port->get<int64_t>() : 0,
                 LogSafe(why, 240));
  }
  void FlushSuppressedLocked() {
    if (lines_suppressed_ == 0) return;
    spdlog::info("[job={}] gateway: {} more refused request(s) not logged here (limit {} lines a "
                 "minute); the job's network log counts them",
                 cfg_.job_id, lines_suppressed_, cfg_.limits.log_lines_per_minute);
    lines_suppressed_ = 0;
  }

  // Registers a way to close a socket when the job's gateway stops. Each
  // closer closes its socket if asked and says whether the socket still
  // exists; the gone ones are dropped whenever the list has doubled, so a job
  // that opens many connections does not grow it without end.
  template <typename Sock>
  void Track(std::shared_ptr<Sock> s) {
    std::lock_guard<std::mutex> l(mu_);
    if (closers_.size() >= prune_at_) {
      closers_.remove_if([](const auto& closer) { return !closer(false); });
      prune_at_ = std::max<size_t>(64, 2 * closers_.size());
    }
    std::weak_ptr<Sock> w = s;
    closers_.push_back([w](bool close) {
      auto p = w.lock();
      if (p && close) {
        std::error_code ec;
        p->lowest_layer().close(ec);
      }
      return static_cast<bool>(p);
    });
  }

  // Refuses a request with `token` in x-deny-reason and `why` in the body.
  awaitable<void> Deny(std::shared_ptr<local::socket> c, Entry& e, int code, absl::string_view phrase,
                       absl::string_view token, const std::string& why) {
    Log(e, false, why, token);
    std::error_code ec;
    co_await asio::async_write(*c, asio::buffer(Reply(code, phrase, token, why)),
                               asio::redirect_error(use_awaitable, ec));
  }

  awaitable<void> DenyBudget(std::shared_ptr<local::socket> c, Entry& e) {
    e.j["limit"] = "total bytes";
    co_await Deny(c, e, 403, "Forbidden", "budget_exhausted", BudgetSpent());
  }

  // Resolves once (or from the test override), checks every address.
  awaitable<absl::StatusOr<std::vector<IpAddr>>> Resolve(const std::string& host) {
    std::vector<IpAddr> out;
    if (auto lit = ParseIpLiteral(host)) {
      out.push_back(*lit);
    } else if (auto it = gopt_.resolver_overrides.find(host); it != gopt_.resolver_overrides.end()) {
      for (const auto& a : it->second)
        if (auto ip = ParseIpLiteral(a)) out.push_back(*ip);
    } else {
      tcp::resolver r(io_);
      std::error_code ec;
      auto res = co_await r.async_resolve(host, "0", asio::redirect_error(use_awaitable, ec));
      if (ec) co_return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", ec.message()));
      for (const auto& ep : res) {
        auto addr = ep.endpoint().address();
        IpAddr ip;
        if (addr.is_v4()) {
          auto b = addr.to_v4().to_bytes();
          std::copy(b.begin(), b.end(), ip.bytes);
        } else {
          ip.v6 = true;
          auto b = addr.to_v6().to_bytes();
          std::copy(b.begin(), b.end(), ip.bytes);
        }
        bool dup = false;
        for (const auto& o : out) dup |= o == ip;
        if (!dup) out.push_back(ip);
      }
    }
    if (out.empty()) co_return absl::UnavailableError(absl::StrCat("no address for ", host));
    for (const auto& ip : out) {
      std::string why = ClassifyAddress(cfg_.policy, ip);
      if (!why.empty())
        co_return absl::PermissionDeniedError(absl::StrCat(host, " resolves to a blocked address: ", why));
    }
    co_return out;
  }

  static tcp::endpoint Endpoint(const IpAddr& ip, int port) {
    if (ip.v6) {
      asio::ip::address_v6::bytes_type b;
      std::copy(ip.bytes, ip.bytes + 16, b.begin());
      return tcp::endpoint(asio::ip::address_v6(b), static_cast<uint16_t>(port));
    }
    asio::ip::address_v4::bytes_type b;
    std::copy(ip.bytes, ip.bytes + 4, b.begin());
    return tcp::endpoint(asio::ip::address_v4(b), static_cast<uint16_t>(port));
  }

  // Connects to the first checked address that answers.
  awaitable<absl::StatusOr<std::pair<std::shared_ptr<tcp::socket>, IpAddr>>> Connect(
      const std::vector<IpAddr>& addrs, int port) {
    std::string last;
    for (const auto& ip : addrs) {
      auto s = std::make_shared<tcp::socket>(io_);
      Track(s);
      std::error_code ec;
      asio::steady_timer t(io_, std::chrono::seconds(10));
      t.async_wait([w = std::weak_ptr<tcp::socket>(s)](std::error_code e) {
        if (!e)
          if (auto p = w.lock()) p->close(e);
      });
      co_await s->async_connect(Endpoint(ip, port), asio::redirect_error(use_awaitable, ec));
      t.cancel();
      if (!ec) {
        // A relay forwards what arrives when it arrives, as the job's own
        // socket would send it (curl and undici set TCP_NODELAY too).
        s->set_option(tcp::no_delay(true), ec);
        co_return std::make_pair(s, ip);
      }
      last = ec.message();
    }
    co_return absl::UnavailableError(absl::StrCat("connect failed: ", last));
  }

  // The job's byte budget (max_total_bytes): every byte the gateway
  // forwards for the job, either way, on all its connections together (the
  // gateway's own answers aside). Takes up to `want` bytes from it and
  // returns how many may be moved.
  int64_t TakeBudget(int64_t want) {
    int64_t cur = total_bytes_.load();
    while (true) {
      int64_t ok = std::clamp<int64_t>(cfg_.limits.max_total_bytes - cur, 0, want);
      if (ok == 0 || total_bytes_.compare_exchange_weak(cur, cur + ok)) return ok;
    }
  }

  // A head (a request's, a ClientHello, a response's) goes whole or not at
  // all: whether it fits, and taking it.
  bool BudgetFits(int64_t n) const { return total_bytes_.load() + n <= cfg_.limits.max_total_bytes; }
  bool TakeBudgetAll(int64_t n) {
    int64_t cur = total_bytes_.load();
    while (cur + n <= cfg_.limits.max_total_bytes)
      if (total_bytes_.compare_exchange_weak(cur, cur + n)) return true;
    return false;
  }
  std::string BudgetSpent() const {
    return absl::StrCat("the job's byte limit (", cfg_.limits.max_total_bytes, " bytes) is spent");
  }

  // Where one direction of a relay stopped. A cut ends the connection both
  // ways at once; otherwise `to` is half-closed (the other direction goes on).
  template <typename From, typename To>
  static void EndFlow(From& from, To& to, const Flow& f) {
    std::error_code ec;
    if (f.cut) {
      from.lowest_layer().shutdown(asio::socket_base::shutdown_both, ec);
      to.lowest_layer().shutdown(asio::socket_base::shutdown_both, ec);
    } else {
      to.lowest_layer().shutdown(asio::socket_base::shutdown_send, ec);
    }
  }

  // One direction through a user-space buffer: for anything that is not a
  // plain socket pair (the model route's own TLS stream). Moves from -> to
  // until EOF; with `limit` >= 0 only that many bytes, then stops reading
  // without a half-close (the peer still answers). Bytes beyond the job's
  // budget are never written: the flow is cut.
  template <typename From, typename To>
  awaitable<void> CopyFlow(From& from, To& to, Flow& f, std::shared_ptr<std::atomic<int64_t>> activity,
                           int64_t limit, ResponseMeter* meter = nullptr) {
    std::array<char, 65536> buf;  // 4x fewer reads/writes per MiB than 16 KiB (gateway_bench)
    while (true) {
      std::error_code ec;
      size_t want = buf.size();
      if (limit >= 0) {
        if (limit == 0) co_return;
        want = static_cast<size_t>(std::min<int64_t>(limit, static_cast<int64_t>(want)));
      }
      size_t n = co_await from.async_read_some(asio::buffer(buf.data(), want), asio::redirect_error(use_awaitable, ec));
      if (ec || n == 0) break;
      if (limit > 0) limit -= static_cast<int64_t>(n);
      *activity = NowMs();
      int64_t ok = TakeBudget(static_cast<int64_t>(n));
      f.bytes += ok;
      if (ok > 0)
        co_await asio::async_write(to, asio::buffer(buf.data(), static_cast<size_t>(ok)),
                                   asio::redirect_error(use_awaitable, ec));
      // Scanned in place once written on (no copy, no delay of the bytes).
      if (meter) meter->Feed(absl::string_view(buf.data(), static_cast<size_t>(n)));
      if (ok < static_cast<int64_t>(n)) {
        f.cut = true;
        break;
      }
      if (ec) break;
    }
    EndFlow(from, to, f);
  }

  // The same contract as CopyFlow, zero-copy: splice(2) from -> a pipe -> to,
  // both sockets non-blocking, waiting for readiness on the sockets
  // themselves (no user buffer, no copy of the bytes into the gateway). Falls
  // back to CopyFlow when no pipe can be had (out of descriptors).
  template <typename From, typename To>
  awaitable<void> SpliceFlow(From& from, To& to, Flow& f, std::shared_ptr<std::atomic<int64_t>> activity,
                             int64_t limit) {
    KernelPipe p;
    std::error_code ec;
    if (!p.ok()) {
      co_await CopyFlow(from, to, f, activity, limit);
      co_return;
    }
    from.native_non_blocking(true, ec);
    if (!ec) to.native_non_blocking(true, ec);
    size_t held = 0;  // admitted bytes in the pipe, not yet written to `to`
    bool failed = static_cast<bool>(ec);
    constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
    int turns = 0;  // pipe fills since this flow last let the io thread go
    // Set when `from` was reported readable: a splice that still finds
    // nothing then is stuck at TCP urgent data (splice(2) stops at the
    // urgent mark and says EAGAIN while epoll keeps reporting the socket
    // readable), which an ordinary recv reads past.
    bool woke_readable = false;
    int idle_wakes = 0;  // wakes in a row that moved nothing
    while (!failed) {
      // A flow that never has to wait would keep the io thread (every other
      // connection, the idle timers, Stop) to itself: it yields now and then.
      if (++turns == 32) {
        turns = 0;
        co_await asio::post(co_await asio::this_coro::executor, use_awaitable);
      }
      // Empty the pipe first. The descriptors are read afresh after every
      // wait: a socket closed meanwhile (idle timeout, Stop) reads as -1.
      while (held > 0) {
        ssize_t n = ::splice(p.r, nullptr, to.native_handle(), nullptr, held, kFlags);
        if (n > 0) {
          held -= static_cast<size_t>(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
          co_await to.async_wait(asio::socket_base::wait_write, asio::redirect_error(use_awaitable, ec));
          if (!ec) continue;
        }
        if (n < 0 && errno == EPIPE) DrainSigpipe();
        failed = true;  // the destination is gone
        break;
      }
      if (failed || f.cut) break;
      if (limit == 0) co_return;  // the bounded body is through; no half-close
      int64_t left = cfg_.limits.max_total_bytes - total_bytes_.load();
      if (left <= 0) {
        // The budget is spent: the end of the stream may still pass, a byte
        // may not.
        char b;
        ssize_t n = ::recv(from.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) f.cut = true;
        if (n >= 0) break;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) break;
        co_await from.async_wait(asio::socket_base::wait_read, asio::redirect_error(use_awaitable, ec));
        if (ec) break;
        continue;
      }
      int64_t want = std::min<int64_t>(static_cast<int64_t>(p.size), left);
      if (limit > 0) want = std::min(want, limit);
      ssize_t n = ::splice(from.native_handle(), nullptr, p.w, nullptr, static_cast<size_t>(want), kFlags);
      if (n > 0) {
        *activity = NowMs();
        if (limit > 0) limit -= n;
        // One io thread admits all of it; with more, a neighbour may have
        // taken some of the budget since `left` was read.
        int64_t ok = TakeBudget(n);
        f.bytes += ok;
        held = static_cast<size_t>(ok);  // the rest, if any, dies with the pipe
        if (ok < n) f.cut = true;
        continue;
      }
      if (n == 0) break;  // EOF
      if (errno == EINTR) continue;
      if (errno != EAGAIN) break;  // reset, or closed under us
      if (woke_readable) {
        woke_readable = false;
        char buf[4096];
        ssize_t r = ::recv(from.native_handle(), buf,
                           static_cast<size_t>(std::min<int64_t>(want, sizeof buf)), MSG_DONTWAIT);
        if (r == 0) break;  // EOF
        if (r > 0) {
          idle_wakes = 0;
          *activity = NowMs();
          if (limit > 0) limit -= r;
          int64_t ok = TakeBudget(r);
          f.bytes += ok;
          if (ok < r) f.cut = true;
          // The pipe is empty here, and far larger than `buf`.
          if (ok > 0 && ::write(p.w, buf, static_cast<size_t>(ok)) != ok) break;
          held = static_cast<size_t>(ok);
          continue;
        }
        if (errno != EAGAIN && errno != EINTR) break;
        // Readable, yet nothing to read: never spin on it.
        if (++idle_wakes >= 2) {
          asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(10));
          co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
          if (ec) break;
        }
      }
      co_await from.async_wait(asio::socket_base::wait_read, asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      woke_readable = true;
    }
    EndFlow(from, to, f);
  }

  // One direction of a relay: spliced between two plain sockets, copied
  // through a buffer otherwise.
  template <typename From, typename To>
  // A metered flow (a model response) is copied: its bytes must be seen.
  awaitable<void> Forward(From& from, To& to, Flow& f, std::shared_ptr<std::atomic<int64_t>> activity,
                          int64_t limit = -1, ResponseMeter* meter = nullptr) {
    if constexpr (kPlainSocket<From> && kPlainSocket<To>) {
      if (gopt_.splice && !meter) co_return co_await SpliceFlow(from, to, f, activity, limit);
    }
    co_await CopyFlow(from, to, f, activity, limit, meter);
  }

  static void Record(Entry& e, const Flow& up, const Flow& down) {
    e.j["bytes_up"] = e.j.value("bytes_up", int64_t{0}) + up.bytes;
    e.j["bytes_down"] = e.j.value("bytes_down", int64_t{0}) + down.bytes;
    if (up.cut || down.cut) e.j["limit"] = "total bytes";
  }

  // Closes both sockets when nothing moved for the idle timeout.
  awaitable<void> Idle(std::function<void()> close_all, std::shared_ptr<std::atomic<int64_t>> activity) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    while (true) {
      int64_t left = activity->load() + cfg_.limits.idle_timeout_ms - NowMs();
      if (left <= 0) {
        close_all();
        co_return;
      }
      t.expires_after(std::chrono::milliseconds(left));
      std::error_code ec;
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
    }
  }

  template <typename Up>
  // `up_limit` >= 0: forward only that many more bytes from the job (the
  // rest of one request's body); anything after it (a pipelined request) is
  // never read, let alone sent on.
  awaitable<void> Relay(std::shared_ptr<local::socket> c, std::shared_ptr<Up> up, Entry& e,
                        int64_t up_limit = -1) {
    Flow fup, fdown;
    // Idle time is per connection: a busy neighbour keeps no stalled one alive.
    auto activity = std::make_shared<std::atomic<int64_t>>(NowMs());
    auto close_all = [c, up] {
      std::error_code ec;
      c->close(ec);
      up->lowest_layer().close(ec);
    };
    co_await ((Forward(*c, *up, fup, activity, up_limit) && Forward(*up, *c, fdown, activity)) ||
              Idle(close_all, activity));
    close_all();
    Record(e, fup, fdown);
  }

  // "http://127.0.0.1:PORT/p" or "http://localhost:PORT/p" (the bridge's own
  // address inside the container) -> "/p".
  static std::optional<std::string> SelfTarget(const std::string& target) {
    auto uri = ParseAbsoluteUri(target);
    if (!uri.ok()) return std::nullopt;
    const Authority& a = uri->first;
    std::string host = absl::AsciiStrToLower(a.host);
    if ((host == "127.0.0.1" || host == "localhost") && a.port == kBridgePort) return uri->second;
    return std::nullopt;
  }

  // Reads one request head from the job (idle-timed); nullopt when the
  // connection ended first or the head was refused (answered 400).
  awaitable<std::optional<RequestHead>> ReadHead(std::shared_ptr<local::socket> c, std::string& buf,
                                                 Entry& e) {
    while (true) {
      auto parsed = ParseRequestHead(buf);
      if (!parsed.ok()) {
        if (!e.j.contains("method")) e.j["method"] = "?";
        co_await Deny(c, e, 400, "Bad Request", "bad_request", std::string(parsed.status().message()));
        co_return std::nullopt;
      }
      if (*parsed) co_return *parsed;
      std::array<char, 4096> tmp;
      std::error_code ec;
      asio::steady_timer t(io_, std::chrono::milliseconds(cfg_.limits.idle_timeout_ms));
      t.async_wait([w = std::weak_ptr<local::socket>(c)](std::error_code er) {
        if (!er)
          if (auto p = w.lock()) p->close(er);
      });
      size_t n = co_await c->async_read_some(asio::buffer(tmp), asio::redirect_error(use_awaitable, ec));
      t.cancel();
      if (ec || n == 0) co_return std::nullopt;
      buf.append(tmp.data(), n);
    }
  }

  // "127.0.0.1:3128" / "localhost:3128": the bridge's own address.
  static bool IsSelfAuthority(const std::string& target) {
    auto a = ParseConnectTarget(target);
    if (!a.ok()) return false;
    std::string host = absl::AsciiStrToLower(a->host);
    return (host == "127.0.0.1" || host == "localhost") && a->port == kBridgePort;
  }

  awaitable<void> HandleSelfConnect(std::shared_ptr<local::socket> c, std::string rest, Entry& e) {
    e.j["via"] = "connect";
    std::error_code ec;
    co_await asio::async_write(*c, asio::buffer(std::string("HTTP/1.1 200 Connection Established\r\n\r\n")),
                               asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    std::string buf = std::move(rest);
    std::optional<RequestHead> inner = co_await ReadHead(c, buf, e);
    if (!inner) co_return;
    e.j["method"] = inner->method;
    std::string body = buf.substr(inner->head_bytes);
    if (!inner->target.empty() && inner->target[0] == '/') {
      co_await HandleModel(c, *inner, std::move(body), e);
    } else if (auto self = SelfTarget(inner->target)) {
      RequestHead h = *inner;
      h.target = *self;
      co_await HandleModel(c, h, std::move(body), e);
    } else {
      e.j["kind"] = "model";
      e.j["host"] = "127.0.0.1";
      e.j["port"] = kBridgePort;
      co_await Deny(c, e, 400, "Bad Request", "model_route_only",
                    "a tunnel to the bridge carries model requests only (origin form)");
    }
  }

  struct Target {
    std::string host;  // normalised
    int port;
    std::string rule;
    bool explicit_port;
  };

  // Rules first: a name no rule allows never reaches a resolver.
  absl::StatusOr<Target> Decide(const std::string& raw_host, int port, Entry& e) {
    auto host = NormalizeHost(raw_host);
    if (!host.ok()) return absl::PermissionDeniedError(std::string(host.status().message()));
    HostDecision d = DecideHost(cfg_.policy, *host, port);
    if (!d.allowed) return absl::PermissionDeniedError(d.rule);
    // Under a wildcard the job picks the names the resolver looks up: a
    // bounded number of them per rule.
    int count = 0;
    bool admitted;
    {
      std::lock_guard<std::mutex> l(mu_);
      admitted = names_.Admit(d.rule, *host, &count);
    }
    if (!admitted)
      return absl::ResourceExhaustedError(absl::StrCat(
          "too many names under ", d.rule, ": this job may have ", names_.max_per_rule(),
          " different names resolved under a wildcard rule"));
    if (count > 0) e.j["wildcard_names"] = count;
    return Target{*host, port, d.rule, d.explicit_port};
  }

  // The deny_reason of a refused Decide.
  static const char* DecideToken(const absl::Status& s) {
    return absl::IsResourceExhausted(s) ? "too_many_names" : "host_not_allowed";
  }

  awaitable<void> Serve(std::shared_ptr<local::socket> c) {
    Track(c);
    Entry e;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (active_ >= cfg_.limits.max_connections) {
        e.j["method"] = "?";
        // Fall through to the reply below, outside the lock.
      }
      ++active_;
    }
    struct Leave {
      JobGatewayImpl* g;
      ~Leave() {
        std::lock_guard<std::mutex> l(g->mu_);
        --g->active_;
        g->idle_cv_.notify_all();
      }
    } leave{this};
    if (e.j.contains("method")) {
      co_await Deny(c, e, 503, "Service Unavailable", "too_many_connections", "too many concurrent connections for this job");
      co_return;
    }
    std::string buf;
    std::optional<RequestHead> head = co_await ReadHead(c, buf, e);
    if (!head) co_return;
    e.j["method"] = head->method;
    std::string rest = buf.substr(head->head_bytes);
    if (head->method == "CONNECT" && IsSelfAuthority(head->target)) {
      // Clients that tunnel every request through HTTPS_PROXY/HTTP_PROXY
      // (undici's EnvHttpProxyAgent, as Claude Code uses) CONNECT to the
      // model base URL, the bridge itself: one plain HTTP request follows
      // inside the tunnel, and it is the model route too.
      co_await HandleSelfConnect(c, std::move(rest), e);
    } else if (head->method == "CONNECT") {
      co_await HandleConnect(c, *head, std::move(rest), e);
    } else if (!head->target.empty() && head->target[0] == '/') {
      co_await HandleModel(c, *head, std::move(rest), e);
    } else if (auto self = SelfTarget(head->target)) {
      // A client that honours HTTP_PROXY sends the model base URL (the bridge
      // itself) to the proxy in absolute form: it is the model route too.
      RequestHead h = *head;
      h.target = *self;
      co_await HandleModel(c, h, std::move(rest), e);
    } else {
      co_await HandleHttp(c, *head, std::move(rest), e);
    }
  }

  awaitable<void> HandleConnect(std::shared_ptr<local::socket> c, const RequestHead& h,
                                std::string rest, Entry& e) {
    e.j["kind"] = "connect";
    auto auth = ParseConnectTarget(h.target);
    if (!auth.ok()) co_return co_await Deny(c, e, 400, "Bad Request", "bad_request", std::string(auth.status().message()));
    e.j["host"] = auth->host;
    e.j["port"] = auth->port;
    auto t = Decide(auth->host, auth->port, e);
    if (!t.ok())
      co_return co_await Deny(c, e, 403, "Forbidden", DecideToken(t.status()), std::string(t.status().message()));
    e.j["rule"] = t->rule;
    auto addrs = co_await Resolve(t->host);
    if (!addrs.ok())
      co_return co_await Deny(c, e, 403, "Forbidden", ResolveToken(addrs.status()),
                              std::string(addrs.status().message()));
    // Read the ClientHello before connecting upstream: fronting is refused
    // without a single packet leaving.
    std::error_code ec;
    co_await asio::async_write(*c, asio::buffer(std::string("HTTP/1.1 200 Connection Established\r\n\r\n")),
                               asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    std::string hello = std::move(rest);
    bool raw_ok = t->explicit_port;
    while (true) {
      if (!hello.empty() && static_cast<uint8_t>(hello[0]) != 0x16 && raw_ok) break;  // raw TCP rule
      auto sni = ParseClientHelloSni(hello);
      if (!sni.ok()) {
        Log(e, false, absl::StrCat("TLS check: ", sni.status().message()), "not_tls");
        co_return;
      }
      if (*sni) {
        auto norm = NormalizeHost(**sni);
        e.j["sni"] = **sni;
        if (!norm.ok() || *norm != t->host) {
          Log(e, false, absl::StrCat("TLS server name '", **sni, "' does not match CONNECT host '",
                                     t->host, "' (fronting)"),
              "sni_mismatch");
          co_return;
        }
        break;
      }
      std::array<char, 4096> tmp;
      size_t n = co_await c->async_read_some(asio::buffer(tmp), asio::redirect_error(use_awaitable, ec));
      if (ec || n == 0 || hello.size() > 32768) {
        Log(e, false, "no TLS ClientHello", "not_tls");
        co_return;
      }
      hello.append(tmp.data(), n);
    }
    if (!BudgetFits(static_cast<int64_t>(hello.size()))) {
      e.j["limit"] = "total bytes";
      Log(e, false, BudgetSpent(), "budget_exhausted");
      co_return;
    }
    auto up = co_await Connect(*addrs, t->port);
    if (!up.ok()) {
      Log(e, false, std::string(up.status().message()), "upstream_unreachable");
      co_return;
    }
    e.j["address"] = up->second.ToString();
    if (!TakeBudgetAll(static_cast<int64_t>(hello.size()))) {  // spent by another connection meanwhile
      e.j["limit"] = "total bytes";
      Log(e, false, BudgetSpent(), "budget_exhausted");
      co_return;
    }
    co_await asio::async_write(*up->first, asio::buffer(hello), asio::redirect_error(use_awaitable, ec));
    e.j["bytes_up"] = static_cast<int64_t>(hello.size());
    if (!ec) co_await Relay(c, up->first, e);
    Log(e, true, t->rule);
  }

  // The body bytes still to come after `rest` (what arrived with the head),
  // which is cut to the body: a pipelined request behind it goes nowhere.
  static int64_t BodyLeft(int64_t body, std::string& rest) {
    if (static_cast<int64_t>(rest.size()) >= body) {
      rest.resize(static_cast<size_t>(body));
      return 0;
    }
    return body - static_cast<int64_t>(rest.size());
  }

  // A chunked body's end is in the stream, so a request pipelined behind it
  // (with any Host header: fronting) would reach the same upstream unchecked.
  // Requests must say their length; clients do for the bodies agents send.
  static constexpr char kChunkedRefused[] =
      "a request body without Content-Length (Transfer-Encoding) is not forwarded: "
      "its end cannot be bounded; send Content-Length";

  static std::string RewriteHead(const RequestHead& h, const std::string& path,
                                 const std::string& host_header,
                                 const std::vector<std::pair<std::string, std::string>>& add) {
    std::string out = absl::StrCat(h.method, " ", path, " ", h.version, "\r\n");
    for (const auto& [k, v] : h.headers) {
      if (k == "host" || k == "connection" || k == "keep-alive" || k == "proxy-connection" ||
          k == "proxy-authorization" || k == "x-api-key" || k == "authorization" || k == "te" ||
          k == "upgrade" ||
          std::any_of(add.begin(), add.end(), [&](const auto& a) { return a.first == k; }))
        continue;  // the gateway's own headers (`add`) replace the agent's
      absl::StrAppend(&out, k, ": ", v, "\r\n");
    }
    absl::StrAppend(&out, "host: ", host_header, "\r\n");
    for (const auto& [k, v] : add) absl::StrAppend(&out, k, ": ", v, "\r\n");
    absl::StrAppend(&out, "connection: close\r\n\r\n");
    return out;
  }

  awaitable<void> HandleHttp(std::shared_ptr<local::socket> c, const RequestHead& h, std::string rest,
                             Entry& e) {
    e.j["kind"] = "http";
    auto uri = ParseAbsoluteUri(h.target);
    if (!uri.ok()) co_return co_await Deny(c, e, 400, "Bad Request", "bad_request", std::string(uri.status().message()));
    const Authority& a = uri->first;
    e.j["host"] = a.host;
    e.j["port"] = a.port;
    auto host_hdr = h.Header("host");
    if (!host_hdr) co_return co_await Deny(c, e, 400, "Bad Request", "bad_request", "no Host header");
    auto ha = ParseHostHeader(*host_hdr, 80);
    auto n1 = NormalizeHost(a.host);
    auto n2 = ha.ok() ? NormalizeHost(ha->host) : absl::StatusOr<std::string>(ha.status());
    if (!n1.ok() || !n2.ok() || *n1 != *n2 || ha->port != a.port)
      co_return co_await Deny(c, e, 400, "Bad Request", "host_mismatch",
                              absl::StrCat("Host header '", *host_hdr, "' does not match the URL (fronting)"));
    auto body = RequestBodyLength(h);
    if (!body.ok()) co_return co_await Deny(c, e, 400, "Bad Request", "bad_request", std::string(body.status().message()));
    if (!body->has_value()) co_return co_await Deny(c, e, 411, "Length Required", "chunked_body_refused", kChunkedRefused);
    auto t = Decide(a.host, a.port, e);
    if (!t.ok())
      co_return co_await Deny(c, e, 403, "Forbidden", DecideToken(t.status()), std::string(t.status().message()));
    e.j["rule"] = t->rule;
    auto addrs = co_await Resolve(t->host);
    if (!addrs.ok())
      co_return co_await Deny(c, e, 403, "Forbidden", ResolveToken(addrs.status()),
                              std::string(addrs.status().message()));
    int64_t left = BodyLeft(**body, rest);
    std::string out = RewriteHead(h, uri->second, *host_hdr, {}) + rest;
    if (!BudgetFits(static_cast<int64_t>(out.size()))) co_return co_await DenyBudget(c, e);
    auto up = co_await Connect(*addrs, t->port);
    if (!up.ok()) co_return co_await Deny(c, e, 502, "Bad Gateway", "upstream_unreachable", std::string(up.status().message()));
    e.j["address"] = up->second.ToString();
    if (!TakeBudgetAll(static_cast<int64_t>(out.size()))) co_return co_await DenyBudget(c, e);
    std::error_code ec;
    co_await asio::async_write(*up->first, asio::buffer(out), asio::redirect_error(use_awaitable, ec));
    e.j["bytes_up"] = static_cast<int64_t>(out.size());
    if (!ec) co_await Relay(c, up->first, e, left);
    Log(e, true, t->rule);
  }

  awaitable<void> HandleModel(std::shared_ptr<local::socket> c, const RequestHead& h, std::string rest,
                              Entry& e) {
    e.j["kind"] = "model";
    if (!cfg_.model) co_return co_await Deny(c, e, 403, "Forbidden", "no_model_provider", "no model provider configured for this job");
    const ModelRoute& m = *cfg_.model;
    e.j["host"] = m.host;
    e.j["port"] = m.port;
    e.j["path"] = h.target;  // cut when logged
    // The provider's API only: a TRACE echoed by an intermediary would hand
    // the job its key, file and batch endpoints outlive the job.
    ModelRequestDecision api = DecideModelRequest(m.api, h.method, h.target);
    if (!api.allowed)
      co_return co_await Deny(c, e, api.deny_reason == "method_not_allowed" ? 405 : 403,
                              api.deny_reason == "method_not_allowed" ? "Method Not Allowed" : "Forbidden",
                              api.deny_reason, api.why);
    auto body = RequestBodyLength(h);
    if (!body.ok()) co_return co_await Deny(c, e, 400, "Bad Request", "bad_request", std::string(body.status().message()));
    if (!body->has_value()) co_return co_await Deny(c, e, 411, "Length Required", "chunked_body_refused", kChunkedRefused);
    int64_t left = BodyLeft(**body, rest);
    // -- cost (issue 16): a job whose model budget is spent goes no further.
    if (BudgetDecision b = meter_.Admit(); !b.allowed)
      co_return co_await Deny(c, e, 402, "Payment Required", "job_budget_exhausted", b.why);
    auto host = NormalizeHost(m.host);
    if (!host.ok()) co_return co_await Deny(c, e, 502, "Bad Gateway", "upstream_unreachable", "bad model host");
    auto addrs = co_await Resolve(*host);
    if (!addrs.ok())
      co_return co_await Deny(c, e, 403, "Forbidden", ResolveToken(addrs.status()),
                              std::string(addrs.status().message()));
    std::string key_value = m.header == "authorization" ? absl::StrCat("Bearer ", m.secret) : m.secret;
    std::string host_header = m.port == (m.tls ? 443 : 80) ? m.host : absl::StrCat(m.host, ":", m.port);
    // accept-encoding: identity, so that the answer's usage can be read.
    std::string out = RewriteHead(h, h.target, host_header,
                                  {{m.header, key_value}, {kAcceptIdentityName, kAcceptIdentityValue}}) +
                      rest;
    if (!BudgetFits(static_cast<int64_t>(out.size()))) co_return co_await DenyBudget(c, e);
    auto up = co_await Connect(*addrs, m.port);
    if (!up.ok()) co_return co_await Deny(c, e, 502, "Bad Gateway", "upstream_unreachable", std::string(up.status().message()));
    e.j["address"] = up->second.ToString();
    e.j["rule"] = "model provider";
    if (!TakeBudgetAll(static_cast<int64_t>(out.size()))) co_return co_await DenyBudget(c, e);
    e.j["bytes_up"] = static_cast<int64_t>(out.size());
    std::error_code ec;
    if (!m.tls) {
      co_await asio::async_write(*up->first, asio::buffer(out), asio::redirect_error(use_awaitable, ec));
      if (!ec) co_await ModelRelay(c, up->first, e, left);
      Log(e, true, "model provider");
      co_return;
    }
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    if (m.ca_file.empty()) ctx.set_default_verify_paths(ec);
    else ctx.load_verify_file(m.ca_file, ec);
    if (ec) co_return co_await Deny(c, e, 502, "Bad Gateway", "upstream_tls_failed", "cannot load trust store");
    auto tls = std::make_shared<asio::ssl::stream<tcp::socket>>(std::move(*up->first), ctx);
    Track(tls);
    SSL_set_tlsext_host_name(tls->native_handle(), m.host.c_str());
    tls->set_verify_callback(asio::ssl::host_name_verification(m.host));
    co_await tls->async_handshake(asio::ssl::stream_base::client, asio::redirect_error(use_awaitable, ec));
    if (ec)
      co_return co_await Deny(c, e, 502, "Bad Gateway", "upstream_tls_failed",
                              absl::StrCat("TLS to the model provider failed: ", ec.message()));
    co_await asio::async_write(*tls, asio::buffer(out), asio::redirect_error(use_awaitable, ec));
    if (!ec) co_await ModelRelay(c, tls, e, left);
    Log(e, true, "model provider");
  }

  // Like Relay, but reads the response head first to see rate limits. The
  // request body keeps flowing up meanwhile (the provider answers only once
  // it has the whole body, often far more than arrived with the head).
  template <typename Up>
  awaitable<void> ModelRelay(std::shared_ptr<local::socket> c, std::shared_ptr<Up> up, Entry& e,
                             int64_t up_limit) {
    Flow fup, fdown;
    auto activity = std::make_shared<std::atomic<int64_t>>(NowMs());
    auto close_all = [c, up] {
      std::error_code ec;
      c->close(ec);
      up->lowest_layer().close(ec);
    };
    // -- cost (issue 16): the response is read for its usage as it passes.
    std::optional<ResponseMeter> rm;
    if (gopt_.meter) rm.emplace(meter_);
    co_await ((Forward(*c, *up, fup, activity, up_limit) && ModelDown(c, up, e, fdown, activity, rm ? &*rm : nullptr)) ||
              Idle(close_all, activity));
    close_all();
    Record(e, fup, fdown);
    if (rm) EndMeter(*rm, e);
  }

  // The request's usage and duration into the job's totals and its log entry.
  static void EndMeter(ResponseMeter& rm, Entry& e) {
    rm.End(NowMs() - e.start);
    const UsageMeter& m = rm.meter();
    if (m.seen())
      e.j["usage"] = {{"model", m.model()},           {"input_tokens", m.counts().input},
                      {"output_tokens", m.counts().output}, {"cache_write_tokens", m.counts().cache_write},
                      {"cache_read_tokens", m.counts().cache_read}};
    if (!m.unreadable().empty()) e.j["usage_unreadable"] = m.unreadable();
  }

  template <typename Up>
  awaitable<void> ModelDown(std::shared_ptr<local::socket> c, std::shared_ptr<Up> up, Entry& e,
                            Flow& down, std::shared_ptr<std::atomic<int64_t>> activity,
                            ResponseMeter* meter) {
    std::string head;
    std::error_code ec;
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
      std::array<char, 8192> tmp;
      size_t n = co_await up->async_read_some(asio::buffer(tmp), asio::redirect_error(use_awaitable, ec));
      if (ec || n == 0) break;
      *activity = NowMs();
      head.append(tmp.data(), n);
    }
    int status = 0;
    if (head.size() > 12 && head.compare(0, 5, "HTTP/") == 0) (void)absl::SimpleAtoi(head.substr(9, 3), &status);
    e.j["status"] = status;
    if (status == 429 || status == 529 || status >= 500) {
      int64_t retry_ms = 0;
      auto end = head.find("\r\n\r\n");
      std::string lower = absl::AsciiStrToLower(head.substr(0, end));
      if (auto p = lower.find("\r\nretry-after:"); p != std::string::npos) {
        double secs = 0;
        auto eol = lower.find("\r\n", p + 2);
        // The provider's number, bounded before it is converted (a day at
        // most; the coordinator caps it again).
        if (absl::SimpleAtod(absl::StripAsciiWhitespace(lower.substr(p + 14, eol - p - 14)), &secs) &&
            secs > 0)
          retry_ms = static_cast<int64_t>(std::min(secs, 86400.0) * 1000);
      }
      std::lock_guard<std::mutex> l(mu_);
      rate_.status = status;
      rate_.retry_after_ms = std::max(rate_.retry_after_ms, retry_ms);
      ++rate_.count;
    }
    if (head.empty()) co_return;
    if (meter) meter->Feed(head);
    if (!TakeBudgetAll(static_cast<int64_t>(head.size()))) {
      down.cut = true;
      EndFlow(*up, *c, down);
      co_return;
    }
    co_await asio::async_write(*c, asio::buffer(head), asio::redirect_error(use_awaitable, ec));
    down.bytes += static_cast<int64_t>(head.size());
    if (!ec) co_await Forward(*up, *c, down, activity, -1, meter);
  }

  asio::io_context& io_;
  JobConfig cfg_;
  const GatewayOptions& gopt_;
  local::acceptor acceptor_;
  std::atomic<bool> stopped_{false};
  std::atomic<int64_t> total_bytes_{0};
  std::mutex mu_;
  nlohmann::json netlog_ = nlohmann::json::array();
  int64_t netlog_bytes_ = 2;  // "[]"
  int64_t dropped_ = 0, dropped_denied_ = 0;  // entries past a cap
  int64_t line_window_start_ = 0;             // workerd's lines: this minute's start
  int lines_in_window_ = 0;
  int64_t lines_suppressed_ = 0;
  WildcardNames names_;                       // guarded by mu_
  RateSignal rate_;
  int denied_ = 0;
  int active_ = 0;
  bool stop_ran_ = false;            // guarded by mu_
  std::condition_variable idle_cv_;  // active_ or stop_ran_ changed
  std::list<std::function<bool(bool close)>> closers_;
  size_t prune_at_ = 64;
  JobMeter meter_;  // the job's model usage and budget (issue 16)
};

std::string NetlogText(const nlohmann::json& netlog) {
  return netlog.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(GatewayOptions opt) {
  // A relay's two directions and Stop share sockets without a strand: with
  // two io threads one could close a descriptor another is about to splice
  // into (and a reused number would reach another job's socket).
  if (opt.threads != 1)
    return absl::InvalidArgumentError("gateway: exactly one io thread is supported");
  std::unique_ptr<Gateway> g(new Gateway());
  g->opt_ = std::move(opt);
  g->io_ = std::make_unique<asio::io_context>();
  auto guard = std::make_shared<asio::executor_work_guard<asio::io_context::executor_type>>(
      g->io_->get_executor());
  for (int i = 0; i < std::max(1, g->opt_.threads); ++i)
    g->threads_.emplace_back([io = g->io_.get(), guard] {
      // splice(2) into a socket whose peer has gone raises SIGPIPE (there is
      // no MSG_NOSIGNAL for it), which would end workerd: blocked on the io
      // threads, it only makes splice fail with EPIPE (see DrainSigpipe).
      sigset_t pipe_only;
      sigemptyset(&pipe_only);
      sigaddset(&pipe_only, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
      io->run();
    });
  return g;
}

Gateway::~Gateway() {
  io_->stop();
  for (auto& t : threads_) t.join();
}

absl::StatusOr<std::shared_ptr<JobGateway>> Gateway::StartJob(JobConfig cfg) {
  auto j = std::make_shared<JobGatewayImpl>(*io_, std::move(cfg), opt_);
  if (auto s = j->Listen(); !s.ok()) return s;
  return std::static_pointer_cast<JobGateway>(j);
}

}  // namespace assessq::gateway
