// The gateway's pure HTTP text (worker/gateway/http_head.h), with no I/O:
// request heads (limits, folding, smuggling guards, versions), CONNECT /
// absolute-URI / Host targets, the server name of real TLS ClientHellos that
// OpenSSL builds in memory (plus truncated and garbage inputs), the bridge's
// own address, the head rewrite that strips the job's credentials, the
// provider's status and retry-after, and the gateway's own replies.
#include "worker/gateway/http_head.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace assessq::gateway {
namespace {

RequestHead MustParse(const std::string& data) {
  auto r = ParseRequestHead(data);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok() || !r->has_value()) {
    ADD_FAILURE() << "no complete head in: " << data;
    return {};
  }
  return **r;
}

bool Rejected(const std::string& data) {
  auto r = ParseRequestHead(data);
  return !r.ok();
}

bool Incomplete(const std::string& data) {
  auto r = ParseRequestHead(data);
  return r.ok() && !r->has_value();
}

// ----------------------------------------------------------- request head

TEST(ParseRequestHead, ParsesAHead) {
  std::string body = "hello";
  std::string data =
      "POST http://a.test/x?y=1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n"
      "X-Mixed-Case:  padded value \t\r\nEmpty:\r\n\r\n" + body;
  RequestHead h = MustParse(data);
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.target, "http://a.test/x?y=1");
  EXPECT_EQ(h.version, "HTTP/1.1");
  EXPECT_EQ(h.head_bytes, data.size() - body.size());
  ASSERT_EQ(h.headers.size(), 4u);
  EXPECT_EQ(h.headers[0].first, "host");
  EXPECT_EQ(h.Header("x-mixed-case"), "padded value");
  EXPECT_EQ(h.Header("empty"), "");
  EXPECT_EQ(h.Header("content-length"), "5");
  EXPECT_FALSE(h.Header("missing").has_value());
  EXPECT_EQ(MustParse("GET / HTTP/1.0\r\n\r\n").version, "HTTP/1.0");
  EXPECT_EQ(MustParse("CONNECT a.test:443 HTTP/1.1\r\n\r\n").method, "CONNECT");
}

TEST(ParseRequestHead, WaitsForTheBlankLine) {
  EXPECT_TRUE(Incomplete(""));
  EXPECT_TRUE(Incomplete("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n"));
  EXPECT_TRUE(Incomplete("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r"));
  // Bare LF line ends never complete a head (and never pass as one).
  EXPECT_TRUE(Incomplete("GET http://a.test/ HTTP/1.1\nHost: a.test\n\n"));
  // Every prefix of a valid head is incomplete, never an error.
  std::string head = "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\n\r\n";
  for (size_t i = 0; i < head.size(); ++i) EXPECT_TRUE(Incomplete(head.substr(0, i))) << i;
  EXPECT_FALSE(Incomplete(head));
}

TEST(ParseRequestHead, SizeLimits) {
  // An unterminated head larger than the limit is an error, not "wait".
  EXPECT_TRUE(Rejected("GET / HTTP/1.1\r\nX: " + std::string(kMaxHeadBytes, 'a')));
  EXPECT_TRUE(Incomplete("GET / HTTP/1.1\r\nX: " + std::string(kMaxHeadBytes - 100, 'a')));
  // A head of exactly the limit (blank line included) is accepted; one more byte is not.
  std::string prefix = "GET / HTTP/1.1\r\nX: ";
  std::string fill(kMaxHeadBytes - prefix.size() - 4, 'a');
  EXPECT_FALSE(Rejected(prefix + fill + "\r\n\r\n"));
  EXPECT_TRUE(Rejected(prefix + fill + "a\r\n\r\n"));
  // Header count.
  std::string many = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i < kMaxHeaders; ++i) absl::StrAppend(&many, "X-", i, ": v\r\n");
  EXPECT_FALSE(Rejected(many + "\r\n"));
  EXPECT_TRUE(Rejected(many + "X-Last: v\r\n\r\n"));
  // Target and method length.
  EXPECT_FALSE(Rejected("GET /" + std::string(8191, 'a') + " HTTP/1.1\r\n\r\n"));
  EXPECT_TRUE(Rejected("GET /" + std::string(8192, 'a') + " HTTP/1.1\r\n\r\n"));
  EXPECT_FALSE(Rejected(std::string(16, 'M') + " / HTTP/1.1\r\n\r\n"));
  EXPECT_TRUE(Rejected(std::string(17, 'M') + " / HTTP/1.1\r\n\r\n"));
}

TEST(ParseRequestHead, RejectsObsoleteFolding) {
  EXPECT_TRUE(Rejected("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n"));
  EXPECT_TRUE(Rejected("GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n"));
  // A header line that starts with whitespace right after the request line.
  EXPECT_TRUE(Rejected("GET / HTTP/1.1\r\n Host: a.test\r\n\r\n"));
}

TEST(ParseRequestHead, SmugglingGuards) {
  EXPECT_TRUE(Rejected("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"));
  EXPECT_TRUE(Rejected("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n"));
  EXPECT_TRUE(Rejected("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"));
  EXPECT_TRUE(Rejected("POST / HTTP/1.1\r\nTRANSFER-ENCODING: chunked\r\nContent-Length: 0\r\n\r\n"));
  // Whitespace before the colon (a classic desync vector) is not a header name.
  EXPECT_TRUE(Rejected("POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n"));
  EXPECT_TRUE(Rejected("POST / HTTP/1.1\r\nContent-Length\t: 5\r\n\r\n"));
  // Bare CR or LF, NUL and DEL inside a header value.
  EXPECT_TRUE(Rejected("GET / HTTP/1.1\r\nX: a\nTransfer-Encoding: chunked\r\n\r\n"));
  EXPECT_TRUE(Rejected("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"));
  EXPECT_TRUE(Rejected(std::string("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 27)));
  EXPECT_TRUE(Rejected("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n"));
  // Tabs inside a value are fine; one Content-Length or chunked alone are fine.
  EXPECT_FALSE(Rejected("GET / HTTP/1.1\r\nX: a\tb\r\n\r\n"));
  EXPECT_FALSE(Rejected("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"));
  EXPECT_FALSE(Rejected("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
}

TEST(ParseRequestHead, BadHeaders) {
  EXPECT_TRUE(Rejected("GET / HTTP/1.1\r\nNoColon\r\n\r\n"));
  EXPECT_TRUE(Rejected("GET / HTTP/1.1\r\n: value\r\n\r\n"));
  EXPECT_TRUE(Rejected("GET / HTTP/1.1\r\nBad Name: v\r\n\r\n"));
  EXPECT_TRUE(Rejected("GET / HTTP/1.1\r\nBad(Name): v\r\n\r\n"));
  EXPECT_TRUE(Rejected("GET / HTTP/1.1\r\nB\xc3\xa4" "d: v\r\n\r\n"));
}

TEST(ParseRequestHead, BadRequestLines) {
  for (const char* bad : {
           "GET / HTTP/2.0\r\n\r\n", "GET / HTTP/1.2\r\n\r\n", "GET / http/1.1\r\n\r\n",
           "GET / HTTP/1\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n", "GET  / HTTP/1.1\r\n\r\n",
           "GET /\r\n\r\n", "GET\r\n\r\n", " GET / HTTP/1.1\r\n\r\n", "\r\nGET / HTTP/1.1\r\n\r\n",
           "GET / HTTP/1.1 extra\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n", "G\xc3\x89T / HTTP/1.1\r\n\r\n",
           "GET /a\x01 HTTP/1.1\r\n\r\n", "GET /a\x7f HTTP/1.1\r\n\r\n",
           "GET\t/ HTTP/1.1\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
           // Bytes >= 0x80 must be percent-encoded (RFC 3986).
           "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", "GET http://\xd9\x85.test/ HTTP/1.1\r\n\r\n",
           "GET /\x80 HTTP/1.1\r\n\r\n", "GET /\xff HTTP/1.1\r\n\r\n"}) {
    EXPECT_TRUE(Rejected(bad)) << "'" << bad << "'";
  }
  // TLS bytes where a request line belongs.
  EXPECT_TRUE(Rejected(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15)));
}

TEST(RequestBodyLength, ContentLengthChunkedOrNone) {
  auto head = [](const std::string& headers) {
    auto h = ParseRequestHead("POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\n" + headers + "\r\n");
    EXPECT_TRUE(h.ok() && h->has_value()) << headers;
    return **h;
  };
  EXPECT_EQ(*RequestBodyLength(head("")), 0);
  EXPECT_EQ(*RequestBodyLength(head("Content-Length: 0\r\n")), 0);
  EXPECT_EQ(*RequestBodyLength(head("Content-Length: 12345\r\n")), 12345);
  EXPECT_FALSE(RequestBodyLength(head("Transfer-Encoding: chunked\r\n"))->has_value());
  for (const char* bad : {"+5", "-1", "5 5", "0x10", "1e3", "99999999999999999999"}) {
    auto r = RequestBodyLength(head(std::string("Content-Length: ") + bad + "\r\n"));
    EXPECT_FALSE(r.ok()) << bad;
  }
}

// ------------------------------------------------------ target forms

TEST(ParseConnectTarget, Forms) {
  auto a = ParseConnectTarget("a.test:443");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "a.test");
  EXPECT_EQ(a->port, 443);
  a = ParseConnectTarget("[::1]:8443");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 8443);
  a = ParseConnectTarget("[::ffff:127.0.0.1]:1");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::ffff:127.0.0.1");
  a = ParseConnectTarget("a.test:65535");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->port, 65535);
  for (const char* bad : {"a.test", "a.test:", ":443", "a.test:0", "a.test:65536", "a.test:-1",
                          "a.test:+443", "a.test:44 3", "a.test:443/", "a.test:0x1bb",
                          "a.test:4430000", "::1:443", "[::1]", "[::1]443", "[::1:443",
                          "[]:443", "user@a.test:443", "a.test/x:443", "a.test?:443",
                          "a.test#:443", "a\\b.test:443", "a b.test:443", "a.test:443:443"}) {
    EXPECT_FALSE(ParseConnectTarget(bad).ok()) << bad;
  }
}

TEST(ParseAbsoluteUri, Forms) {
  auto u = ParseAbsoluteUri("http://a.test/x/y?z=1#frag");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->first.host, "a.test");
  EXPECT_EQ(u->first.port, 80);
  EXPECT_EQ(u->second, "/x/y?z=1");
  u = ParseAbsoluteUri("HTTP://A.Test:8080");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->first.host, "A.Test");
  EXPECT_EQ(u->first.port, 8080);
  EXPECT_EQ(u->second, "/");
  u = ParseAbsoluteUri("http://a.test?q");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->second, "/?q");
  u = ParseAbsoluteUri("http://[::1]:8080/p");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->first.host, "::1");
  EXPECT_EQ(u->first.port, 8080);
  // A fragment never hides an authority.
  u = ParseAbsoluteUri("http://a.test#@evil.test/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->first.host, "a.test");
  EXPECT_EQ(u->second, "/");
  for (const char* bad : {"https://a.test/", "ftp://a.test/", "//a.test/", "/path", "a.test:80",
                          "http://", "http:///x", "http://:80/", "http://u:p@a.test/",
                          "http://a.test@evil.test/", "http://a.test%40evil.test@x/",
                          "http://a.test\\@evil.test/", "http://a.test\\evil.test/",
                          "http://a.test:80:80/", "http://a.test:0/", "http://a.test:99999/",
                          "http://[::1/", "http://[::1]x/", "http://::1/", "http:a.test/"}) {
    EXPECT_FALSE(ParseAbsoluteUri(bad).ok()) << bad;
  }
}

TEST(ParseHostHeader, Forms) {
  auto a = ParseHostHeader("a.test", 80);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->port, 80);
  a = ParseHostHeader("a.test:8080", 80);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->port, 8080);
  a = ParseHostHeader("[::1]", 443);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 443);
  // An empty port is the default port (RFC 3986 allows "host:").
  a = ParseHostHeader("a.test:", 80);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->port, 80);
  for (const char* bad : {"", ":80", "a.test:x", "u@a.test", "a.test/", "a b", "::1",
                          "[::1", "a.test:80:80"}) {
    EXPECT_FALSE(ParseHostHeader(bad, 80).ok()) << "'" << bad << "'";
  }
}

// ------------------------------------------------------- TLS ClientHello

struct HelloOptions {
  std::string sni;  // empty: no server_name extension
  int max_version = 0;
  std::string alpn;  // wire format
  std::string ciphers;
};

// Runs an OpenSSL client against memory BIOs and returns its first flight.
std::string ClientHello(const HelloOptions& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (o.max_version) SSL_CTX_set_max_proto_version(ctx, o.max_version);
  if (!o.ciphers.empty()) SSL_CTX_set_cipher_list(ctx, o.ciphers.c_str());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_connect_state(ssl);
  if (!o.sni.empty()) SSL_set_tlsext_host_name(ssl, o.sni.c_str());
  if (!o.alpn.empty())
    SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(o.alpn.data()),
                        static_cast<unsigned>(o.alpn.size()));
  int rc = SSL_do_handshake(ssl);
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(SSL_get_error(ssl, rc), SSL_ERROR_WANT_READ);
  std::string out;
  char buf[4096];
  int n;
  while ((n = BIO_read(wbio, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

std::string Sni(const std::string& hello) {
  auto r = ParseClientHelloSni(hello);
  if (!r.ok()) return "ERROR: " + std::string(r.status().message());
  if (!r->has_value()) return "NEED-MORE";
  return **r;
}

TEST(ParseClientHelloSni, RealClientHellos) {
  std::string h = ClientHello({.sni = "allowed.test"});
  ASSERT_GT(h.size(), 50u);
  EXPECT_EQ(static_cast<uint8_t>(h[0]), 0x16);
  EXPECT_EQ(Sni(h), "allowed.test");
  EXPECT_EQ(Sni(ClientHello({.sni = "allowed.test", .max_version = TLS1_2_VERSION})), "allowed.test");
  EXPECT_EQ(Sni(ClientHello({.sni = "a.b.c.example.com", .alpn = std::string("\x02h2\x08http/1.1", 12)})),
            "a.b.c.example.com");
  EXPECT_EQ(Sni(ClientHello({.sni = "xn--bcher-kva.example"})), "xn--bcher-kva.example");
  // A long name (the longest DNS name) and many cipher suites.
  std::string longname;
  for (int i = 0; i < 3; ++i) longname += std::string(62, 'a' + i) + ".";
  longname += "test";
  EXPECT_EQ(Sni(ClientHello({.sni = longname, .ciphers = "ALL:COMPLEMENTOFALL"})), longname);
  // Bytes after the record (early data, a second record) do not matter.
  EXPECT_EQ(Sni(h + std::string("\x17\x03\x03\x00\x05hello", 10)), "allowed.test");
}

TEST(ParseClientHelloSni, NoServerNameIsAnError) {
  std::string h = ClientHello({});
  EXPECT_TRUE(absl::StartsWith(Sni(h), "ERROR")) << Sni(h);
}

TEST(ParseClientHelloSni, EveryPrefixNeedsMore) {
  std::string h = ClientHello({.sni = "allowed.test"});
  for (size_t i = 0; i < h.size(); ++i) EXPECT_EQ(Sni(h.substr(0, i)), "NEED-MORE") << i;
}

TEST(ParseClientHelloSni, Garbage) {
  EXPECT_TRUE(absl::StartsWith(Sni("GET / HTTP/1.1\r\n\r\n"), "ERROR"));
  EXPECT_TRUE(absl::StartsWith(Sni(std::string("\x16\x02\x00\x00\x10", 5) + std::string(16, 0)), "ERROR"));
  EXPECT_TRUE(absl::StartsWith(Sni(std::string("\x15\x03\x01\x00\x02\x02\x28", 7)), "ERROR"));
  // Record length 0 and longer than a record may be.
  EXPECT_TRUE(absl::StartsWith(Sni(std::string("\x16\x03\x01\x00\x00", 5)), "ERROR"));
  EXPECT_TRUE(absl::StartsWith(Sni(std::string("\x16\x03\x01\xff\xff", 5)), "ERROR"));
  // A server hello is not a client hello.
  EXPECT_TRUE(absl::StartsWith(
      Sni(std::string("\x16\x03\x03\x00\x04\x02\x00\x00\x00", 9)), "ERROR"));
  // Random bytes after a handshake header: an error or need-more, no crash.
  std::mt19937 rng(42);
  for (int i = 0; i < 2000; ++i) {
    std::string s = std::string("\x16\x03\x01", 3);
    size_t len = rng() % 300;
    s += static_cast<char>(len >> 8);
    s += static_cast<char>(len & 0xff);
    s += '\x01';
    for (size_t k = 0; k + 1 < len; ++k) s += static_cast<char>(rng());
    (void)ParseClientHelloSni(s);
  }
}

TEST(ParseClientHelloSni, CorruptedRealHellosNeverCrashOrLie) {
  std::string h = ClientHello({.sni = "allowed.test"});
  std::mt19937 rng(7);
  for (size_t i = 0; i < h.size(); ++i) {
    for (int v : {0x00, 0xff, static_cast<int>(rng() & 0xff)}) {
      std::string c = h;
      c[i] = static_cast<char>(v);
      auto r = ParseClientHelloSni(c);
      if (r.ok() && r->has_value()) {
        // A corruption may only change the name to another printable name.
        for (char ch : **r) EXPECT_TRUE(ch > 0x20 && ch < 0x7f);
      }
    }
  }
}

// Hand-built ClientHellos for the cases OpenSSL will not produce.
std::string U16(size_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }
std::string U24(size_t v) {
  return {static_cast<char>(v >> 16), static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
}
std::string SniExt(const std::vector<std::pair<int, std::string>>& names) {
  std::string list;
  for (const auto& [type, n] : names) list += static_cast<char>(type) + U16(n.size()) + n;
  std::string body = U16(list.size()) + list;
  return U16(0) + U16(body.size()) + body;
}
std::string Hello(const std::string& extensions) {
  std::string body = std::string("\x03\x03", 2) + std::string(32, 'r') + std::string(1, '\0') +
                     U16(2) + std::string("\x13\x01", 2) + std::string("\x01\x00", 2) +
                     U16(extensions.size()) + extensions;
  std::string hs = "\x01" + U24(body.size()) + body;
  return std::string("\x16\x03\x01", 3) + U16(hs.size()) + hs;
}

TEST(ParseClientHelloSni, HandBuiltCases) {
  EXPECT_EQ(Sni(Hello(SniExt({{0, "allowed.test"}}))), "allowed.test");
  // Another extension before it.
  EXPECT_EQ(Sni(Hello(U16(10) + U16(2) + U16(0x1d) + SniExt({{0, "allowed.test"}}))), "allowed.test");
  // Two server_name extensions, two host names, an empty name.
  EXPECT_TRUE(absl::StartsWith(Sni(Hello(SniExt({{0, "a.test"}}) + SniExt({{0, "b.test"}}))), "ERROR"));
  EXPECT_TRUE(absl::StartsWith(Sni(Hello(SniExt({{0, "a.test"}, {0, "b.test"}}))), "ERROR"));
  EXPECT_TRUE(absl::StartsWith(Sni(Hello(SniExt({{0, ""}}))), "ERROR"));
  // A name type other than host_name is ignored: no host name at all.
  EXPECT_TRUE(absl::StartsWith(Sni(Hello(SniExt({{1, "a.test"}}))), "ERROR"));
  // Names with bytes no host name has.
  for (const std::string& bad : std::vector<std::string>{"a b.test", std::string("a\0b.test", 8),
                                                          "a\x80.test", "a\x7f.test", "a\nb.test"})
    EXPECT_TRUE(absl::StartsWith(Sni(Hello(SniExt({{0, bad}}))), "ERROR")) << bad;
  // No extensions at all.
  EXPECT_TRUE(absl::StartsWith(Sni(Hello("")), "ERROR"));
  // An extension longer than the extensions block.
  EXPECT_TRUE(absl::StartsWith(Sni(Hello(U16(0) + U16(100) + "xx")), "ERROR"));
  // A ClientHello longer than its record (spanning records) is refused.
  std::string h = Hello(SniExt({{0, "allowed.test"}}));
  std::string split = h.substr(0, 5 + 20);
  split[3] = 0;
  split[4] = 20;
  EXPECT_TRUE(absl::StartsWith(Sni(split + h.substr(25)), "ERROR"));
}

// ------------------------------------------------------- the bridge itself

TEST(SelfTargets, OnlyTheBridgesOwnAddressIsSelf) {
  struct Case {
    std::string target;
    bool self_authority;               // as a CONNECT target
    std::optional<std::string> self;   // as an absolute-form target
  };
  const std::string port = absl::StrCat(kBridgePort);
  const std::vector<Case> cases = {
      {"127.0.0.1:" + port, true, std::nullopt},
      {"localhost:" + port, true, std::nullopt},
      {"LocalHost:" + port, true, std::nullopt},
      {"http://127.0.0.1:" + port + "/v1/messages?x=1", false, "/v1/messages?x=1"},
      {"http://LOCALHOST:" + port + "/v1/models", false, "/v1/models"},
      {"HTTP://localhost:" + port, false, "/"},
      {"http://localhost:" + port + "/a#frag", false, "/a"},
      // Refused: another port, another host, another spelling of loopback,
      // another scheme, userinfo, no port.
      {"127.0.0.1:3129", false, std::nullopt},
      {"127.0.0.2:" + port, false, std::nullopt},
      {"0x7f.0.0.1:" + port, false, std::nullopt},
      {"[::1]:" + port, false, std::nullopt},
      {"localhost.:" + port, false, std::nullopt},
      {"localhost", false, std::nullopt},
      {"http://127.0.0.1/v1/messages", false, std::nullopt},
      {"http://127.0.0.1:3129/v1/messages", false, std::nullopt},
      {"http://[::1]:" + port + "/v1/messages", false, std::nullopt},
      {"https://127.0.0.1:" + port + "/v1/messages", false, std::nullopt},
      {"http://user@127.0.0.1:" + port + "/v1/messages", false, std::nullopt},
      {"http://evil.test/http://127.0.0.1:" + port + "/", false, std::nullopt},
      {"/v1/messages", false, std::nullopt},
      {"", false, std::nullopt},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(IsSelfAuthority(c.target), c.self_authority) << c.target;
    EXPECT_EQ(SelfTarget(c.target), c.self) << c.target;
    // The model route: origin form as is, the bridge's own URL as its path.
    std::optional<std::string> model = absl::StartsWith(c.target, "/") ? c.target : c.self;
    EXPECT_EQ(ModelRouteTarget(c.target), model) << c.target;
  }
}

TEST(TakeBodyStart, CutsWhatArrivedToTheBody) {
  struct Case {
    int64_t body;
    std::string rest, want_rest;
    int64_t want_left;
  };
  const std::vector<Case> cases = {
      {0, "", "", 0},
      {0, "GET http://b.test/ HTTP/1.1\r\n\r\n", "", 0},  // a pipelined request goes nowhere
      {5, "hel", "hel", 2},
      {5, "hello", "hello", 0},
      {5, "helloGET / HTTP/1.1\r\n\r\n", "hello", 0},
      {int64_t{1} << 40, "x", "x", (int64_t{1} << 40) - 1},
  };
  for (const Case& c : cases) {
    std::string rest = c.rest;
    EXPECT_EQ(TakeBodyStart(c.body, rest), c.want_left) << c.body << " " << c.rest;
    EXPECT_EQ(rest, c.want_rest);
  }
}

// ------------------------------------------------------ the upstream head

TEST(RewriteRequestHead, StripsEveryCredentialAndHopByHopHeader) {
  // Each header the gateway never passes on, in any case the job sends it;
  // and one the gateway sets itself (accept-encoding: its own replaces the
  // job's).
  const std::vector<std::string> stripped = {
      "Authorization",    "x-api-key", "X-Api-Key", "Proxy-Authorization", "Host",           "Connection",
      "Keep-Alive",       "Proxy-Connection", "TE", "Upgrade",             "AUTHORIZATION", "Accept-Encoding"};
  for (const std::string& name : stripped) {
    RequestHead h = MustParse(absl::StrCat("POST http://a.test/x HTTP/1.1\r\nHost: a.test\r\n", name,
                                           ": sk-agents-own\r\nX-Custom: 1\r\nContent-Length: 2\r\n\r\n"));
    std::string out =
        RewriteRequestHead(h, "/x", "a.test", {{"x-api-key", "sk-real"}, {"accept-encoding", "identity"}});
    EXPECT_FALSE(absl::StrContains(out, "sk-agents-own")) << name << ":\n" << out;
    RequestHead back = MustParse(out);
    std::map<std::string, int> count;
    for (const auto& [k, v] : back.headers) ++count[k];
    for (const char* once : {"host", "x-api-key", "accept-encoding", "connection", "x-custom"})
      EXPECT_EQ(count[once], 1) << once << " in\n" << out;
    EXPECT_EQ(back.Header("x-api-key"), "sk-real");
    EXPECT_EQ(back.Header("accept-encoding"), "identity");
    EXPECT_EQ(back.Header("connection"), "close");
    EXPECT_EQ(back.Header("content-length"), "2");
  }
}

TEST(RewriteRequestHead, KeepsTheRestAndAddsTheRouteHeaders) {
  RequestHead h = MustParse(
      "POST http://a.test:8080/p?q=1 HTTP/1.0\r\nHost: a.test:8080\r\nAccept: */*\r\n"
      "anthropic-version: 2023-06-01\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(RewriteRequestHead(h, "/p?q=1", "a.test:8080", {}),
            "POST /p?q=1 HTTP/1.0\r\naccept: */*\r\nanthropic-version: 2023-06-01\r\ncontent-length: 0\r\n"
            "host: a.test:8080\r\nconnection: close\r\n\r\n");
  EXPECT_EQ(RewriteRequestHead(h, "/v1/messages", "api.test", {{"authorization", "Bearer k"}}),
            "POST /v1/messages HTTP/1.0\r\naccept: */*\r\nanthropic-version: 2023-06-01\r\n"
            "content-length: 0\r\nhost: api.test\r\nauthorization: Bearer k\r\nconnection: close\r\n\r\n");
}

// ------------------------------------------------- the provider's answers

TEST(ParseResponseSignal, StatusAndRetryAfter) {
  struct Case {
    std::string head;
    int status;
    bool limited;
    int64_t retry_after_ms;
  };
  const std::vector<Case> cases = {
      {"HTTP/1.1 200 OK\r\nretry-after: 5\r\n\r\n", 200, false, 0},  // only a limit's retry-after counts
      {"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n\r\n", 429, true, 7000},
      {"HTTP/1.1 429 Too Many Requests\r\nretry-after:1.5\r\n\r\nbody", 429, true, 1500},
      {"HTTP/1.1 529 Overloaded\r\nx: y\r\nRETRY-AFTER:   2  \r\n\r\n", 529, true, 2000},
      {"HTTP/1.1 503 Unavailable\r\n\r\n", 503, true, 0},
      {"HTTP/1.1 500 Oops\r\nretry-after: 3", 500, true, 3000},  // no blank line yet (64 KiB cut)
      {"HTTP/1.1 404 Not Found\r\n\r\n", 404, false, 0},
      // Bounded: a day at most.
      {"HTTP/1.1 429 x\r\nretry-after: 1e12\r\n\r\n", 429, true, 86400000},
      // A retry-after in the body, or a header that only ends in the name.
      {"HTTP/1.1 429 x\r\n\r\nretry-after: 9\r\n", 429, true, 0},
      {"HTTP/1.1 429 x\r\nx-retry-after: 9\r\n\r\n", 429, true, 0},
      // No status: not a response, too short, no number.
      {"", 0, false, 0},
      {"HTTP/1.1 429", 0, false, 0},
      {"SMTP/1.1 429 x\r\n\r\n", 0, false, 0},
      {"HTTP/1.1 abc x\r\n\r\n", 0, false, 0},
  };
  for (const Case& c : cases) {
    ResponseSignal s = ParseResponseSignal(c.head);
    EXPECT_EQ(s.status, c.status) << c.head;
    EXPECT_EQ(s.limited, c.limited) << c.head;
    EXPECT_EQ(s.retry_after_ms, c.retry_after_ms) << c.head;
  }
  // No wait for zero, negative, non-numbers, or a date (which the provider
  // does not send).
  for (const char* value : {"0", "-5", "soon", "nan", "inf-", "", "Wed, 21 Oct 2015 07:28:00 GMT"}) {
    ResponseSignal s = ParseResponseSignal(absl::StrCat("HTTP/1.1 429 x\r\nretry-after: ", value, "\r\n\r\n"));
    EXPECT_EQ(s.status, 429) << value;
    EXPECT_EQ(s.retry_after_ms, 0) << value;
  }
}

// ------------------------------------------------- the gateway's own text

TEST(GatewayReply, ARefusalNamesItsReasonTwice) {
  std::string r = GatewayReply(403, "Forbidden", "host_not_allowed", "no rule allows evil.test");
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 403 Forbidden\r\n")) << r;
  EXPECT_TRUE(absl::StrContains(r, "\r\nx-deny-reason: host_not_allowed\r\n")) << r;
  EXPECT_TRUE(absl::StrContains(r, "\r\nX-Assessq-Gateway: deny\r\n")) << r;
  EXPECT_TRUE(absl::EndsWith(r, "\r\n\r\nassessq gateway: no rule allows evil.test\n")) << r;
  const std::string body = "assessq gateway: no rule allows evil.test\n";
  EXPECT_TRUE(absl::StrContains(r, absl::StrCat("Content-Length: ", body.size(), "\r\n"))) << r;
  // No token: no x-deny-reason header. A long reason is cut.
  EXPECT_FALSE(absl::StrContains(GatewayReply(502, "Bad Gateway", "", "x"), "x-deny-reason"));
  std::string long_reply = GatewayReply(400, "Bad Request", "bad_request", std::string(5000, 'a'));
  EXPECT_LT(long_reply.size(), 700u);
  EXPECT_TRUE(absl::StrContains(long_reply, "more bytes cut]"));
}

TEST(CutText, CutsAtACharacterBoundaryAndSaysSo) {
  struct Case {
    std::string in;
    size_t max;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"short", 10, "short"},
      {"exactly10!", 10, "exactly10!"},
      {"abcdefghijk", 10, "abcdefghij...[1 more bytes cut]"},
      // "é" is two bytes: never cut in half.
      {"abcdefghi\xc3\xa9xyz", 10, "abcdefghi...[5 more bytes cut]"},
      {"\xe2\x82\xac\xe2\x82\xac", 4, "\xe2\x82\xac...[3 more bytes cut]"},
      {"abc", 0, "...[3 more bytes cut]"},
  };
  for (const Case& c : cases) EXPECT_EQ(CutText(c.in, c.max), c.want) << c.in;
}

}  // namespace
}  // namespace assessq::gateway
