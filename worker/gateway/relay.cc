#include "worker/gateway/relay.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/experimental/awaitable_operators.hpp>
#include <atomic>
#include <chrono>
#include <string>
#include <type_traits>

#include "common/clock.h"

namespace assessq::gateway {
namespace relay_internal {

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

}  // namespace relay_internal

namespace {

using relay_internal::KernelPipe;

using asio::awaitable;
using asio::use_awaitable;
using namespace asio::experimental::awaitable_operators;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;
using Activity = std::shared_ptr<std::atomic<int64_t>>;  // when a byte last moved (ms)

// Takes a SIGPIPE that a splice(2) into a closed socket left pending on this
// (io) thread, where it is blocked (Gateway::Create): none piles up.
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

// Where one direction of a relay stopped. A cut ends the connection both
// ways at once; otherwise `to` is half-closed (the other direction goes on).
template <typename From, typename To>
void EndFlow(From& from, To& to, const Flow& f) {
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
// budget are never written: the flow is cut. `observe`, if set, sees every
// byte read, once it is written on.
template <typename From, typename To>
awaitable<void> CopyFlow(From& from, To& to, Flow& f, ByteBudget& budget, Activity activity, int64_t limit,
                         const std::function<void(absl::string_view)>* observe = nullptr) {
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
    int64_t ok = budget.Take(static_cast<int64_t>(n));
    f.bytes += ok;
    if (ok > 0)
      co_await asio::async_write(to, asio::buffer(buf.data(), static_cast<size_t>(ok)),
                                 asio::redirect_error(use_awaitable, ec));
    // Scanned in place once written on (no copy, no delay of the bytes).
    if (observe) (*observe)(absl::string_view(buf.data(), n));
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
awaitable<void> SpliceFlow(From& from, To& to, Flow& f, ByteBudget& budget, Activity activity, int64_t limit) {
  KernelPipe p;
  std::error_code ec;
  if (!p.ok()) {
    co_await CopyFlow(from, to, f, budget, activity, limit);
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
    int64_t left = budget.Left();
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
      int64_t ok = budget.Take(n);
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
        int64_t ok = budget.Take(r);
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
// through a buffer otherwise, and when its bytes must be seen (`observe`).
template <typename From, typename To>
awaitable<void> Forward(From& from, To& to, Flow& f, const RelayOptions& opt, Activity activity,
                        int64_t limit = -1, const std::function<void(absl::string_view)>* observe = nullptr) {
  if constexpr (kPlainSocket<From> && kPlainSocket<To>) {
    if (opt.splice && !observe) co_return co_await SpliceFlow(from, to, f, *opt.budget, activity, limit);
  }
  co_await CopyFlow(from, to, f, *opt.budget, activity, limit, observe);
}

// The response direction when it is observed: the head is read whole
// (the request body keeps flowing up meanwhile: the provider answers only
// once it has the whole body), observed, passed on whole or not at all
// (the budget), then the rest is forwarded (and observed, if asked).
template <typename Up>
awaitable<void> ForwardObserved(Up& up, local::socket& job, Flow& down, const RelayOptions& opt,
                                Activity activity, const ResponseObserver& observer) {
  std::string head;
  std::error_code ec;
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
    std::array<char, 8192> tmp;
    size_t n = co_await up.async_read_some(asio::buffer(tmp), asio::redirect_error(use_awaitable, ec));
    if (ec || n == 0) break;
    *activity = NowMs();
    head.append(tmp.data(), n);
  }
  observer.head(head);
  if (head.empty()) co_return;
  if (!opt.budget->TakeAll(static_cast<int64_t>(head.size()))) {
    down.cut = true;
    EndFlow(up, job, down);
    co_return;
  }
  co_await asio::async_write(job, asio::buffer(head), asio::redirect_error(use_awaitable, ec));
  down.bytes += static_cast<int64_t>(head.size());
  if (!ec) co_await Forward(up, job, down, opt, activity, -1, observer.body ? &observer.body : nullptr);
}

// Closes both sockets when nothing moved for the idle timeout.
awaitable<void> Idle(std::function<void()> close_all, Activity activity, int idle_timeout_ms) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  while (true) {
    int64_t left = activity->load() + idle_timeout_ms - NowMs();
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

}  // namespace

template <typename Up>
awaitable<RelayResult> Relay(std::shared_ptr<local::socket> job, std::shared_ptr<Up> up, RelayOptions opt,
                             int64_t up_limit, const ResponseObserver* observer) {
  RelayResult r;
  // Idle time is per connection: a busy neighbour keeps no stalled one alive.
  auto activity = std::make_shared<std::atomic<int64_t>>(NowMs());
  auto close_all = [job, up] {
    std::error_code ec;
    job->close(ec);
    up->lowest_layer().close(ec);
  };
  auto down = [&]() -> awaitable<void> {
    if (observer) return ForwardObserved(*up, *job, r.down, opt, activity, *observer);
    return Forward(*up, *job, r.down, opt, activity);
  };
  co_await ((Forward(*job, *up, r.up, opt, activity, up_limit) && down()) ||
            Idle(close_all, activity, opt.idle_timeout_ms));
  close_all();
  co_return r;
}

template awaitable<RelayResult> Relay<tcp::socket>(std::shared_ptr<local::socket>, std::shared_ptr<tcp::socket>,
                                                   RelayOptions, int64_t, const ResponseObserver*);
template awaitable<RelayResult> Relay<asio::ssl::stream<tcp::socket>>(
    std::shared_ptr<local::socket>, std::shared_ptr<asio::ssl::stream<tcp::socket>>, RelayOptions, int64_t,
    const ResponseObserver*);

}  // namespace assessq::gateway
