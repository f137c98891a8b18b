// The byte relay between a job's connection and its upstream, both ways at
// once, under the job's byte budget and an idle timeout. Between two plain
// sockets the bytes move with splice(2) through a pipe, never through the
// gateway's memory; otherwise (the model route's TLS stream, or
// RelayOptions::splice off) through a user-space buffer, with the same limits
// and byte counts either way. The model route's relay reads the response
// head first and shows it to an observer (rate limits), then the body (the
// usage meter) as it passes.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <cstdint>
#include <functional>
#include <memory>

#include "absl/strings/string_view.h"
#include "worker/gateway/byte_budget.h"

namespace assessq::gateway {

// One direction of a relayed connection.
struct Flow {
  int64_t bytes = 0;  // taken from the source and admitted by the job's budget
  bool cut = false;   // stopped by the job's byte limit
};

struct RelayOptions {
  ByteBudget* budget = nullptr;  // the job's; outlives the relay
  bool splice = true;            // GatewayOptions::splice
  int idle_timeout_ms = 120000;  // both sockets close when nothing moved this long
};

// Sees the model route's response as it passes: `head` the response head
// (up to the blank line, or the first 64 KiB; empty if the upstream sent
// nothing) before it goes to the job; `body`, if set, every later byte read
// from the upstream once it is written on (so a relay whose body is observed
// copies, never splices).
struct ResponseObserver {
  std::function<void(absl::string_view head)> head;
  std::function<void(absl::string_view bytes)> body;
};

struct RelayResult {
  Flow up, down;
};

// Relays `job` <-> `up` until both directions end (or one is cut by the
// budget, or the connection idles), then closes both sockets. `up_limit` >=
// 0: forward only that many more bytes from the job (the rest of one
// request's body); anything after it (a pipelined request) is never read.
// With an observer, the response head is read whole first and observed.
// Instantiated for plain TCP and TLS upstreams.
template <typename Up>
asio::awaitable<RelayResult> Relay(std::shared_ptr<asio::local::stream_protocol::socket> job,
                                   std::shared_ptr<Up> up, RelayOptions opt, int64_t up_limit = -1,
                                   const ResponseObserver* observer = nullptr);

extern template asio::awaitable<RelayResult> Relay<asio::ip::tcp::socket>(
    std::shared_ptr<asio::local::stream_protocol::socket>, std::shared_ptr<asio::ip::tcp::socket>,
    RelayOptions, int64_t, const ResponseObserver*);
extern template asio::awaitable<RelayResult> Relay<asio::ssl::stream<asio::ip::tcp::socket>>(
    std::shared_ptr<asio::local::stream_protocol::socket>,
    std::shared_ptr<asio::ssl::stream<asio::ip::tcp::socket>>, RelayOptions, int64_t,
    const ResponseObserver*);

}  // namespace assessq::gateway
