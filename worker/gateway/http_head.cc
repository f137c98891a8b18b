#include "worker/gateway/http_head.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace assessq::gateway {
namespace {

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("bad request: ", why));
}

absl::StatusOr<Authority> SplitHostPort(absl::string_view hp, int default_port) {
  Authority a;
  absl::string_view host = hp, port;
  if (absl::StartsWith(hp, "[")) {
    auto close = hp.find(']');
    if (close == absl::string_view::npos) return Bad("unclosed [ in host");
    host = hp.substr(1, close - 1);
    absl::string_view rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return Bad("junk after ]");
      port = rest.substr(1);
    }
  } else {
    auto colon = hp.rfind(':');
    if (colon != absl::string_view::npos) {
      if (hp.find(':') != colon) return Bad("unbracketed IPv6 address");
      host = hp.substr(0, colon);
      port = hp.substr(colon + 1);
    }
  }
  if (host.empty()) return Bad("empty host");
  for (char c : host)
    if (static_cast<unsigned char>(c) <= 0x20 || c == '/' || c == '@' || c == '?' || c == '#' ||
        c == '\\' || c == 0x7f)
      return Bad("invalid character in host");
  a.host = std::string(host);
  if (port.empty()) {
    if (default_port <= 0) return Bad("port required");
    a.port = default_port;
  } else {
    if (port.size() > 5 || !absl::SimpleAtoi(port, &a.port) || a.port < 1 || a.port > 65535 ||
        port.find_first_not_of("0123456789") != absl::string_view::npos)
      return Bad("invalid port");
  }
  return a;
}

}  // namespace

std::optional<std::string> RequestHead::Header(absl::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return std::nullopt;
}

absl::StatusOr<std::optional<int64_t>> RequestBodyLength(const RequestHead& h) {
  if (h.Header("transfer-encoding")) return std::optional<int64_t>();
  auto cl = h.Header("content-length");
  if (!cl) return std::optional<int64_t>(0);
  if (cl->empty() || cl->size() > 18 || cl->find_first_not_of("0123456789") != std::string::npos)
    return Bad("bad Content-Length");
  int64_t n = 0;
  if (!absl::SimpleAtoi(*cl, &n)) return Bad("bad Content-Length");
  return std::optional<int64_t>(n);
}

absl::StatusOr<std::optional<RequestHead>> ParseRequestHead(absl::string_view data) {
  auto end = data.find("\r\n\r\n");
  if (end == absl::string_view::npos) {
    if (data.size() > kMaxHeadBytes) return Bad("request head too large");
    return std::optional<RequestHead>();
  }
  if (end + 4 > kMaxHeadBytes) return Bad("request head too large");
  RequestHead h;
  h.head_bytes = end + 4;
  absl::string_view head = data.substr(0, end);
  auto line_end = head.find("\r\n");
  absl::string_view line = head.substr(0, line_end);
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == absl::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == absl::string_view::npos || sp2 == absl::string_view::npos ||
      line.find(' ', sp2 + 1) != absl::string_view::npos)
    return Bad("malformed request line");
  h.method = std::string(line.substr(0, sp1));
  h.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  h.version = std::string(line.substr(sp2 + 1));
  if (h.method.empty() || h.method.size() > 16) return Bad("bad method");
  for (char c : h.method)
    if (!IsTokenChar(c)) return Bad("bad method");
  if (h.version != "HTTP/1.1" && h.version != "HTTP/1.0") return Bad("unsupported HTTP version");
  if (h.target.empty() || h.target.size() > 8192) return Bad("bad request target");
  for (char c : h.target)
    // RFC 3986: anything outside printable ASCII must be percent-encoded.
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return Bad("bad character in target");
  absl::string_view rest =
      line_end == absl::string_view::npos ? absl::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    auto e = rest.find("\r\n");
    absl::string_view hl = rest.substr(0, e);
    rest = e == absl::string_view::npos ? absl::string_view() : rest.substr(e + 2);
    if (hl.empty()) continue;
    if (hl[0] == ' ' || hl[0] == '\t') return Bad("obsolete header folding");
    auto colon = hl.find(':');
    if (colon == absl::string_view::npos || colon == 0) return Bad("header without a name");
    std::string name = absl::AsciiStrToLower(hl.substr(0, colon));
    for (char c : name)
      if (!IsTokenChar(c)) return Bad("bad header name");
    absl::string_view value = absl::StripAsciiWhitespace(hl.substr(colon + 1));
    for (char c : value)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
        return Bad("control character in a header value");
    if (h.headers.size() >= kMaxHeaders) return Bad("too many headers");
    h.headers.emplace_back(std::move(name), std::string(value));
  }
  // Request smuggling guards: one length, no chunked+length mix.
  int lengths = 0;
  bool chunked = false;
  for (const auto& [k, v] : h.headers) {
    if (k == "content-length") ++lengths;
    if (k == "transfer-encoding") chunked = true;
  }
  if (lengths > 1) return Bad("several Content-Length headers");
  if (lengths && chunked) return Bad("both Content-Length and Transfer-Encoding");
  return std::optional<RequestHead>(std::move(h));
}

absl::StatusOr<Authority> ParseConnectTarget(absl::string_view target) {
  return SplitHostPort(target, 0);
}

absl::StatusOr<std::pair<Authority, std::string>> ParseAbsoluteUri(absl::string_view target) {
  constexpr absl::string_view kHttp = "http://";
  if (target.size() < kHttp.size() ||
      !absl::EqualsIgnoreCase(target.substr(0, kHttp.size()), kHttp))
    return Bad("only http:// absolute URIs are proxied (use CONNECT for https)");
  absl::string_view rest = target.substr(kHttp.size());
  auto slash = rest.find_first_of("/?#");
  absl::string_view auth = rest.substr(0, slash);
  if (auth.find('@') != absl::string_view::npos) return Bad("userinfo in URI");
  auto a = SplitHostPort(auth, 80);
  if (!a.ok()) return a.status();
  std::string path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (path[0] != '/') path = "/" + path;
  if (auto hash = path.find('#'); hash != std::string::npos) path.resize(hash);
  return std::make_pair(*a, path);
}

absl::StatusOr<Authority> ParseHostHeader(absl::string_view value, int default_port) {
  return SplitHostPort(value, default_port);
}

absl::StatusOr<std::optional<std::string>> ParseClientHelloSni(absl::string_view d) {
  auto need = [] { return absl::StatusOr<std::optional<std::string>>(std::optional<std::string>()); };
  if (d.size() < 5) return need();
  auto u8 = [&](size_t i) { return static_cast<uint8_t>(d[i]); };
  if (u8(0) != 0x16) return Bad("not a TLS handshake record");
  if (u8(1) != 0x03) return Bad("not TLS");
  size_t rec_len = (u8(3) << 8) | u8(4);
  if (rec_len < 4 || rec_len > 16384 + 2048) return Bad("bad TLS record length");
  if (d.size() < 5 + rec_len) return need();
  absl::string_view r = d.substr(5, rec_len);
  auto b = [&](size_t i) -> int { return i < r.size() ? static_cast<uint8_t>(r[i]) : -1; };
  if (b(0) != 0x01) return Bad("not a ClientHello");
  size_t hs_len = (static_cast<size_t>(b(1)) << 16) | (b(2) << 8) | b(3);
  if (hs_len + 4 > r.size()) return Bad("ClientHello spans several records (unsupported)");
  size_t p = 4 + 2 + 32;  // version, random
  if (p >= r.size()) return Bad("truncated ClientHello");
  p += 1 + b(p);  // session id
  if (p + 2 > r.size()) return Bad("truncated ClientHello");
  p += 2 + ((b(p) << 8) | b(p + 1));  // cipher suites
  if (p + 1 > r.size()) return Bad("truncated ClientHello");
  p += 1 + b(p);  // compression methods
  if (p + 2 > r.size()) return Bad("ClientHello without extensions (no server name)");
  size_t ext_end = p + 2 + ((b(p) << 8) | b(p + 1));
  p += 2;
  if (ext_end > r.size()) return Bad("truncated extensions");
  std::optional<std::string> sni;
  while (p + 4 <= ext_end) {
    int type = (b(p) << 8) | b(p + 1);
    size_t len = (b(p + 2) << 8) | b(p + 3);
    p += 4;
    if (p + len > ext_end) return Bad("truncated extension");
    if (type == 0) {
      if (sni) return Bad("two server_name extensions");
      size_t q = p;
      if (q + 2 > p + len) return Bad("bad server_name");
      size_t list_end = q + 2 + ((b(q) << 8) | b(q + 1));
      q += 2;
      if (list_end > p + len) return Bad("bad server_name list");
      while (q + 3 <= list_end) {
        int name_type = b(q);
        size_t nlen = (b(q + 1) << 8) | b(q + 2);
        q += 3;
        if (q + nlen > list_end) return Bad("bad server name");
        if (name_type == 0) {
          if (sni) return Bad("two host names in server_name");
          sni = std::string(r.substr(q, nlen));
        }
        q += nlen;
      }
    }
    p += len;
  }
  if (!sni || sni->empty()) return Bad("ClientHello has no server name (SNI)");
  for (char c : *sni)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return Bad("invalid character in server name");
  return sni;
}

bool IsSelfAuthority(absl::string_view target) {
  auto a = ParseConnectTarget(target);
  if (!a.ok()) return false;
  std::string host = absl::AsciiStrToLower(a->host);
  return (host == "127.0.0.1" || host == "localhost") && a->port == kBridgePort;
}

std::optional<std::string> SelfTarget(absl::string_view target) {
  auto uri = ParseAbsoluteUri(target);
  if (!uri.ok()) return std::nullopt;
  const Authority& a = uri->first;
  std::string host = absl::AsciiStrToLower(a.host);
  if ((host == "127.0.0.1" || host == "localhost") && a.port == kBridgePort) return uri->second;
  return std::nullopt;
}

std::optional<std::string> ModelRouteTarget(absl::string_view target) {
  if (!target.empty() && target[0] == '/') return std::string(target);
  return SelfTarget(target);
}

int64_t TakeBodyStart(int64_t body_length, std::string& rest) {
  if (static_cast<int64_t>(rest.size()) >= body_length) {
    rest.resize(static_cast<size_t>(body_length));
    return 0;
  }
  return body_length - static_cast<int64_t>(rest.size());
}

std::string RewriteRequestHead(const RequestHead& h, absl::string_view path, absl::string_view host_header,
                               const std::vector<std::pair<std::string, std::string>>& add) {
  std::string out = absl::StrCat(h.method, " ", path, " ", h.version, "\r\n");
  for (const auto& header : h.headers) {
    const std::string& k = header.first;
    if (k == "host" || k == "connection" || k == "keep-alive" || k == "proxy-connection" ||
        k == "proxy-authorization" || k == "x-api-key" || k == "authorization" || k == "te" ||
        k == "upgrade" || std::any_of(add.begin(), add.end(), [&](const auto& a) { return a.first == k; }))
      continue;  // the gateway's own headers (`add`) replace the job's
    absl::StrAppend(&out, k, ": ", header.second, "\r\n");
  }
  absl::StrAppend(&out, "host: ", host_header, "\r\n");
  for (const auto& [k, v] : add) absl::StrAppend(&out, k, ": ", v, "\r\n");
  absl::StrAppend(&out, "connection: close\r\n\r\n");
  return out;
}

ResponseSignal ParseResponseSignal(absl::string_view head) {
  ResponseSignal r;
  if (head.size() > 12 && absl::StartsWith(head, "HTTP/")) (void)absl::SimpleAtoi(head.substr(9, 3), &r.status);
  r.limited = r.status == 429 || r.status == 529 || r.status >= 500;
  if (!r.limited) return r;
  std::string lower = absl::AsciiStrToLower(head.substr(0, head.find("\r\n\r\n")));
  if (auto p = lower.find("\r\nretry-after:"); p != std::string::npos) {
    double secs = 0;
    auto eol = lower.find("\r\n", p + 2);
    absl::string_view value = absl::string_view(lower).substr(p + 14, eol == std::string::npos ? eol : eol - p - 14);
    // The provider's number, bounded before it is converted (a day at most;
    // the coordinator caps it again).
    if (absl::SimpleAtod(absl::StripAsciiWhitespace(value), &secs) && secs > 0)
      r.retry_after_ms = static_cast<int64_t>(std::min(secs, 86400.0) * 1000);
  }
  return r;
}

std::string CutText(absl::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return absl::StrCat(s.substr(0, n), "...[", s.size() - n, " more bytes cut]");
}

std::string GatewayReply(int code, absl::string_view phrase, absl::string_view token, absl::string_view why) {
  std::string body = absl::StrCat("assessq gateway: ", CutText(why, 400), "\n");
  return absl::StrCat("HTTP/1.1 ", code, " ", phrase, "\r\nContent-Type: text/plain; charset=utf-8\r\n",
                      "X-Assessq-Gateway: ", code == 200 ? "allow" : "deny", "\r\n",
                      token.empty() ? "" : absl::StrCat("x-deny-reason: ", token, "\r\n"),
                      "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
}

}  // namespace assessq::gateway
