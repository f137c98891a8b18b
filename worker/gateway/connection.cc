#include "worker/gateway/connection.h"

#include <asio/ssl.hpp>

#include "absl/strings/str_cat.h"
#include "worker/gateway/relay.h"

namespace assessq::gateway {
namespace {

using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

// The deny_reason token of a failed ResolveChecked: blocked address or no answer.
const char* ResolveToken(const absl::Status& s) {
  return absl::IsPermissionDenied(s) ? "address_forbidden" : "resolve_failed";
}

// The deny_reason of a refused Decide.
const char* DecideToken(const absl::Status& s) {
  return absl::IsResourceExhausted(s) ? "too_many_names" : "host_not_allowed";
}

// A chunked body's end is in the stream, so a request pipelined behind it
// (with any Host header: fronting) would reach the same upstream unchecked.
// Requests must say their length; clients do for the bodies agents send.
constexpr char kChunkedRefused[] =
    "a request body without Content-Length (Transfer-Encoding) is not forwarded: "
    "its end cannot be bounded; send Content-Length";

const std::string kEstablished = "HTTP/1.1 200 Connection Established\r\n\r\n";

}  // namespace

JobState::JobState(JobConfig c, const GatewayOptions& g)
    : cfg(std::move(c)),
      gopt(g),
      budget(cfg.limits.max_total_bytes),
      netlog(cfg.job_id, NetlogLimits{cfg.limits.netlog_max_entries, cfg.limits.netlog_max_bytes,
                                      cfg.limits.log_lines_per_minute}),
      names(cfg.limits.max_names_per_wildcard),
      meter(cfg.model ? cfg.model->provider : std::string(), cfg.budget) {
  // Taken when the job starts: the worker host is never a destination.
  auto self = LocalAddresses();
  cfg.policy.self_addresses.insert(cfg.policy.self_addresses.end(), self.begin(), self.end());
}

awaitable<void> Connection::Refuse(int code, absl::string_view phrase, absl::string_view token,
                                   const std::string& why) {
  job_->netlog.Record(e_, false, why, token);
  if (tunnel_open_) co_return;
  std::error_code ec;
  co_await asio::async_write(*c_, asio::buffer(GatewayReply(code, phrase, token, why)),
                             asio::redirect_error(use_awaitable, ec));
}

awaitable<void> Connection::RefuseBudget() {
  e_.j["limit"] = "total bytes";
  co_await Refuse(403, "Forbidden", "budget_exhausted", job_->budget.SpentReason());
}

awaitable<void> Connection::RefuseTooMany() {
  e_.j["method"] = "?";
  co_await Refuse(503, "Service Unavailable", "too_many_connections", "too many concurrent connections for this job");
}

// Reads one request head from the job (idle-timed); nullopt when the
// connection ended first or the head was refused (answered 400).
awaitable<std::optional<RequestHead>> Connection::ReadHead(std::string& buf) {
  while (true) {
    auto parsed = ParseRequestHead(buf);
    if (!parsed.ok()) {
      if (!e_.j.contains("method")) e_.j["method"] = "?";
      co_await Refuse(400, "Bad Request", "bad_request", std::string(parsed.status().message()));
      co_return std::nullopt;
    }
    if (*parsed) co_return *parsed;
    std::array<char, 4096> tmp;
    std::error_code ec;
    asio::steady_timer t(c_->get_executor(), std::chrono::milliseconds(job_->cfg.limits.idle_timeout_ms));
    t.async_wait([w = std::weak_ptr<Socket>(c_)](std::error_code er) {
      if (!er)
        if (auto p = w.lock()) p->close(er);
    });
    size_t n = co_await c_->async_read_some(asio::buffer(tmp), asio::redirect_error(use_awaitable, ec));
    t.cancel();
    if (ec || n == 0) co_return std::nullopt;
    buf.append(tmp.data(), n);
  }
}

awaitable<void> Connection::Serve() {
  std::string buf;
  std::optional<RequestHead> head = co_await ReadHead(buf);
  if (!head) co_return;
  e_.j["method"] = head->method;
  std::string rest = buf.substr(head->head_bytes);
  if (head->method == "CONNECT" && IsSelfAuthority(head->target)) {
    // Clients that tunnel every request through HTTPS_PROXY/HTTP_PROXY
    // (undici's EnvHttpProxyAgent, as Claude Code uses) CONNECT to the
    // model base URL, the bridge itself: one plain HTTP request follows
    // inside the tunnel, and it is the model route too.
    co_await HandleSelfConnect(std::move(rest));
  } else if (head->method == "CONNECT") {
    co_await HandleConnect(*head, std::move(rest));
  } else if (auto target = ModelRouteTarget(head->target)) {
    // Origin form, or the model base URL (the bridge itself) in absolute
    // form, as a client that honours HTTP_PROXY sends it to the proxy.
    co_await HandleModel(*head, std::move(*target), std::move(rest));
  } else {
    co_await HandleHttp(*head, std::move(rest));
  }
}

awaitable<void> Connection::HandleSelfConnect(std::string rest) {
  e_.j["via"] = "connect";
  std::error_code ec;
  co_await asio::async_write(*c_, asio::buffer(kEstablished), asio::redirect_error(use_awaitable, ec));
  if (ec) co_return;
  std::string buf = std::move(rest);
  std::optional<RequestHead> inner = co_await ReadHead(buf);
  if (!inner) co_return;
  e_.j["method"] = inner->method;
  std::string body = buf.substr(inner->head_bytes);
  if (auto target = ModelRouteTarget(inner->target)) {
    co_await HandleModel(*inner, std::move(*target), std::move(body));
  } else {
    e_.j["kind"] = "model";
    e_.j["host"] = "127.0.0.1";
    e_.j["port"] = kBridgePort;
    co_await Refuse(400, "Bad Request", "model_route_only",
                    "a tunnel to the bridge carries model requests only (origin form)");
  }
}

// Rules first: a name no rule allows never reaches a resolver.
absl::StatusOr<Connection::Target> Connection::Decide(const std::string& raw_host, int port) {
  auto host = NormalizeHost(raw_host);
  if (!host.ok()) return absl::PermissionDeniedError(std::string(host.status().message()));
  HostDecision d = DecideHost(job_->cfg.policy, *host, port);
  if (!d.allowed) return absl::PermissionDeniedError(d.rule);
  // Under a wildcard the job picks the names the resolver looks up: a
  // bounded number of them per rule.
  int count = 0;
  bool admitted;
  {
    std::lock_guard<std::mutex> l(job_->mu);
    admitted = job_->names.Admit(d.rule, *host, &count);
  }
  if (!admitted)
    return absl::ResourceExhaustedError(absl::StrCat("too many names under ", d.rule, ": this job may have ",
                                                     job_->names.max_per_rule(),
                                                     " different names resolved under a wildcard rule"));
  if (count > 0) e_.j["wildcard_names"] = count;
  return Target{*host, port, d.rule, d.explicit_port};
}

// Resolves the target's name and checks every address; nullopt: refused.
awaitable<std::optional<std::vector<IpAddr>>> Connection::Resolve(const std::string& host) {
  auto addrs = co_await ResolveChecked(job_->gopt.resolver_overrides, job_->cfg.policy, host);
  if (addrs.ok()) co_return std::move(*addrs);
  co_await Refuse(403, "Forbidden", ResolveToken(addrs.status()), std::string(addrs.status().message()));
  co_return std::nullopt;
}

// A request body's length, which must be said; nullopt: refused.
awaitable<std::optional<int64_t>> Connection::BodyLength(const RequestHead& h) {
  auto body = RequestBodyLength(h);
  if (!body.ok()) {
    co_await Refuse(400, "Bad Request", "bad_request", std::string(body.status().message()));
    co_return std::nullopt;
  }
  if (!body->has_value()) {
    co_await Refuse(411, "Length Required", "chunked_body_refused", kChunkedRefused);
    co_return std::nullopt;
  }
  co_return **body;
}

awaitable<void> Connection::HandleConnect(const RequestHead& h, std::string rest) {
  e_.j["kind"] = "connect";
  auto auth = ParseConnectTarget(h.target);
  if (!auth.ok()) co_return co_await Refuse(400, "Bad Request", "bad_request", std::string(auth.status().message()));
  e_.j["host"] = auth->host;
  e_.j["port"] = auth->port;
  auto t = Decide(auth->host, auth->port);
  if (!t.ok()) co_return co_await Refuse(403, "Forbidden", DecideToken(t.status()), std::string(t.status().message()));
  e_.j["rule"] = t->rule;
  auto addrs = co_await Resolve(t->host);
  if (!addrs) co_return;
  // Read the ClientHello before connecting upstream: fronting is refused
  // without a single packet leaving.
  std::error_code ec;
  co_await asio::async_write(*c_, asio::buffer(kEstablished), asio::redirect_error(use_awaitable, ec));
  if (ec) co_return;
  tunnel_open_ = true;
  auto hello = co_await ReadCheckedClientHello(*t, std::move(rest));
  if (!hello) co_return;
  co_await Forward(*t, std::move(*addrs), std::move(*hello), -1, nullptr);
}

// The tunnel's first bytes: a ClientHello whose server name is the CONNECT
// host (or, under a rule that names the port, any non-TLS bytes); nullopt:
// refused (fronting, not TLS).
awaitable<std::optional<std::string>> Connection::ReadCheckedClientHello(const Target& t, std::string hello) {
  std::error_code ec;
  while (true) {
    if (!hello.empty() && static_cast<uint8_t>(hello[0]) != 0x16 && t.explicit_port) co_return hello;  // raw TCP rule
    auto sni = ParseClientHelloSni(hello);
    if (!sni.ok()) {
      co_await Refuse(403, "Forbidden", "not_tls", absl::StrCat("TLS check: ", sni.status().message()));
      co_return std::nullopt;
    }
    if (*sni) {
      auto norm = NormalizeHost(**sni);
      e_.j["sni"] = **sni;
      if (norm.ok() && *norm == t.host) co_return hello;
      co_await Refuse(403, "Forbidden", "sni_mismatch",
                      absl::StrCat("TLS server name '", **sni, "' does not match CONNECT host '", t.host,
                                   "' (fronting)"));
      co_return std::nullopt;
    }
    std::array<char, 4096> tmp;
    size_t n = co_await c_->async_read_some(asio::buffer(tmp), asio::redirect_error(use_awaitable, ec));
    if (ec || n == 0 || hello.size() > 32768) {
      co_await Refuse(403, "Forbidden", "not_tls", "no TLS ClientHello");
      co_return std::nullopt;
    }
    hello.append(tmp.data(), n);
  }
}

awaitable<void> Connection::HandleHttp(const RequestHead& h, std::string rest) {
  e_.j["kind"] = "http";
  auto uri = ParseAbsoluteUri(h.target);
  if (!uri.ok()) co_return co_await Refuse(400, "Bad Request", "bad_request", std::string(uri.status().message()));
  const Authority& a = uri->first;
  e_.j["host"] = a.host;
  e_.j["port"] = a.port;
  auto host_hdr = h.Header("host");
  if (!host_hdr) co_return co_await Refuse(400, "Bad Request", "bad_request", "no Host header");
  auto ha = ParseHostHeader(*host_hdr, 80);
  auto n1 = NormalizeHost(a.host);
  auto n2 = ha.ok() ? NormalizeHost(ha->host) : absl::StatusOr<std::string>(ha.status());
  if (!n1.ok() || !n2.ok() || *n1 != *n2 || ha->port != a.port)
    co_return co_await Refuse(400, "Bad Request", "host_mismatch",
                              absl::StrCat("Host header '", *host_hdr, "' does not match the URL (fronting)"));
  auto body = co_await BodyLength(h);
  if (!body) co_return;
  auto t = Decide(a.host, a.port);
  if (!t.ok()) co_return co_await Refuse(403, "Forbidden", DecideToken(t.status()), std::string(t.status().message()));
  e_.j["rule"] = t->rule;
  auto addrs = co_await Resolve(t->host);
  if (!addrs) co_return;
  int64_t left = TakeBodyStart(*body, rest);
  std::string out = RewriteRequestHead(h, uri->second, *host_hdr, {}) + rest;
  co_await Forward(*t, std::move(*addrs), std::move(out), left, nullptr);
}

awaitable<void> Connection::HandleModel(const RequestHead& h, std::string target, std::string rest) {
  e_.j["kind"] = "model";
  if (!job_->cfg.model)
    co_return co_await Refuse(403, "Forbidden", "no_model_provider", "no model provider configured for this job");
  const ModelRoute& m = *job_->cfg.model;
  e_.j["host"] = m.host;
  e_.j["port"] = m.port;
  e_.j["path"] = target;  // cut when logged
  // The provider's API only: a TRACE echoed by an intermediary would hand
  // the job its key, file and batch endpoints outlive the job.
  ModelRequestDecision api = DecideModelRequest(m.api, h.method, target);
  if (!api.allowed) {
    const bool method = api.deny_reason == "method_not_allowed";
    co_return co_await Refuse(method ? 405 : 403, method ? "Method Not Allowed" : "Forbidden", api.deny_reason,
                              api.why);
  }
  auto body = co_await BodyLength(h);
  if (!body) co_return;
  int64_t left = TakeBodyStart(*body, rest);
  // A job whose model budget is spent goes no further.
  if (BudgetDecision b = job_->meter.Admit(); !b.allowed)
    co_return co_await Refuse(402, "Payment Required", "job_budget_exhausted", b.why);
  auto host = NormalizeHost(m.host);
  if (!host.ok()) co_return co_await Refuse(502, "Bad Gateway", "upstream_unreachable", "bad model host");
  auto addrs = co_await Resolve(*host);
  if (!addrs) co_return;
  std::string key_value = m.header == "authorization" ? absl::StrCat("Bearer ", m.secret) : m.secret;
  std::string host_header = m.port == (m.tls ? 443 : 80) ? m.host : absl::StrCat(m.host, ":", m.port);
  // accept-encoding: identity, so that the answer's usage can be read.
  std::string out = RewriteRequestHead(h, target, host_header,
                                       {{m.header, key_value}, {kAcceptIdentityName, kAcceptIdentityValue}}) +
                    rest;
  // A named target: GCC destroys a braced temporary in a co_await
  // expression twice.
  const Target t{*host, m.port, "model provider", false};
  co_await Forward(t, std::move(*addrs), std::move(out), left, &m);
}

// The step every route ends in, once its target is decided and resolved:
// `first` (a rewritten head and the body's start, or a ClientHello) goes
// whole within the byte budget or not at all; connect to a checked address;
// for the model route, TLS with verification; write; relay (up to
// `up_limit` bytes up; the model route's response head observed); log.
awaitable<void> Connection::Forward(const Target& t, std::vector<IpAddr> addrs, std::string first,
                                    int64_t up_limit, const ModelRoute* model) {
  JobState& job = *job_;
  const int64_t n = static_cast<int64_t>(first.size());
  if (!job.budget.Fits(n)) co_return co_await RefuseBudget();
  auto up = co_await ConnectChecked(job.sockets, std::move(addrs), t.port);
  if (!up.ok()) co_return co_await Refuse(502, "Bad Gateway", "upstream_unreachable", std::string(up.status().message()));
  e_.j["address"] = up->second.ToString();
  e_.j["rule"] = t.rule;
  if (!job.budget.TakeAll(n)) co_return co_await RefuseBudget();  // spent by another connection meanwhile
  e_.j["bytes_up"] = n;
  RelayOptions opt{&job.budget, job.gopt.splice, job.cfg.limits.idle_timeout_ms};
  // The model route's response: rate limits from its head, usage (unless
  // the bench turned metering off) from all of it.
  std::optional<ResponseMeter> rm;
  ResponseObserver observer;
  if (model && job.gopt.meter) {
    rm.emplace(job.meter);
    observer.body = [&rm](absl::string_view bytes) { rm->Feed(bytes); };
  }
  observer.head = [this, &rm](absl::string_view head) {
    ObserveModelResponse(head);
    if (rm && !head.empty()) rm->Feed(head);
  };
  const ResponseObserver* observe = model ? &observer : nullptr;
  std::error_code ec;
  std::optional<RelayResult> r;
  if (model && model->tls) {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    if (model->ca_file.empty()) ctx.set_default_verify_paths(ec);
    else ctx.load_verify_file(model->ca_file, ec);
    if (ec) co_return co_await Refuse(502, "Bad Gateway", "upstream_tls_failed", "cannot load trust store");
    auto tls = std::make_shared<asio::ssl::stream<tcp::socket>>(std::move(*up->first), ctx);
    job.sockets.Track(tls);
    SSL_set_tlsext_host_name(tls->native_handle(), model->host.c_str());
    tls->set_verify_callback(asio::ssl::host_name_verification(model->host));
    co_await tls->async_handshake(asio::ssl::stream_base::client, asio::redirect_error(use_awaitable, ec));
    if (ec)
      co_return co_await Refuse(502, "Bad Gateway", "upstream_tls_failed",
                                absl::StrCat("TLS to the model provider failed: ", ec.message()));
    co_await asio::async_write(*tls, asio::buffer(first), asio::redirect_error(use_awaitable, ec));
    if (!ec) r = co_await Relay(c_, tls, opt, up_limit, observe);
  } else {
    co_await asio::async_write(*up->first, asio::buffer(first), asio::redirect_error(use_awaitable, ec));
    if (!ec) r = co_await Relay(c_, up->first, opt, up_limit, observe);
  }
  if (r) {
    e_.j["bytes_up"] = e_.j.value("bytes_up", int64_t{0}) + r->up.bytes;
    e_.j["bytes_down"] = e_.j.value("bytes_down", int64_t{0}) + r->down.bytes;
    if (r->up.cut || r->down.cut) e_.j["limit"] = "total bytes";
    if (rm) EndModelResponse(*rm);
  }
  job.netlog.Record(e_, true, t.rule);
}

// The provider's answer: its status goes in the log; rate limits (429, 529,
// 5xx and retry-after) in the job's rate signal for the worker.
void Connection::ObserveModelResponse(absl::string_view head) {
  ResponseSignal s = ParseResponseSignal(head);
  e_.j["status"] = s.status;
  if (!s.limited) return;
  std::lock_guard<std::mutex> l(job_->mu);
  job_->rate.status = s.status;
  job_->rate.retry_after_ms = std::max(job_->rate.retry_after_ms, s.retry_after_ms);
  ++job_->rate.count;
}

// The response's usage and duration into the job's totals and its log entry.
void Connection::EndModelResponse(ResponseMeter& rm) {
  rm.End(NowMs() - e_.start);
  const UsageMeter& m = rm.meter();
  if (m.seen())
    e_.j["usage"] = {{"model", m.model()},
                     {"input_tokens", m.counts().input},
                     {"output_tokens", m.counts().output},
                     {"cache_write_tokens", m.counts().cache_write},
                     {"cache_read_tokens", m.counts().cache_read}};
  if (!m.unreadable().empty()) e_.j["usage_unreadable"] = m.unreadable();
}

}  // namespace assessq::gateway
