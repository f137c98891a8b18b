// Helpers of the gateway tests and benchmark: a private network namespace
// (so no packet can leave this machine whatever the gateway does), a test CA
// made with the openssl CLI, small threaded test servers (HTTP, HTTPS, echo,
// bulk) that count every connection and keep every byte they receive, a raw
// client for the gateway's Unix socket, a ClientHello builder, and the real
// assessq-netbridge run as a child (TCP 127.0.0.1:PORT -> the job's socket)
// so libcurl can use the gateway as an ordinary HTTP proxy.
#pragma once

#include <openssl/ssl.h>
#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.h"

namespace gwtest {

// unshare(CLONE_NEWNET) for the calling process (call before any thread
// starts), brings lo up and adds `extra_local` addresses (CIDR, on lo).
// The namespace has no route anywhere but itself. Returns "" or an error.
std::string EnterPrivateNetns(const std::vector<std::string>& extra_local);

// A second private namespace, "far", for the test servers, joined to the
// test's by a veth pair (near side 10.200.0.1/24 and fd00:200::1/64, far
// side 10.200.0.2/24 and fd00:200::2/64), so that what the gateway reaches
// there is not an address of its own host. `far_addrs` (CIDR) are added on
// the far side and routed to it from the near side. Call after
// EnterPrivateNetns, before any thread starts. Returns "" or an error.
std::string MakeFarNetns(const std::vector<std::string>& far_addrs);
// After MakeFarNetns: limits the veth pair to `mbit` Mbit/s each way (a
// token bucket, `tc qdisc ... tbf`, on both ends), like a build machine's
// uplink; "" on success, else what failed.
std::string ShapeFarLink(int mbit);
inline constexpr char kFarAddr[] = "10.200.0.2";
// A program run in the far namespace (after MakeFarNetns), its output to
// `log`; killed (SIGKILL) and reaped with this object.
class FarProcess {
 public:
  FarProcess(const std::vector<std::string>& argv, const std::string& log);
  ~FarProcess();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};
inline constexpr char kFarAddr6[] = "fd00:200::2";

// A fresh short temp dir (Unix socket paths are limited), removed on exit:
// the shared test support's.
using aqtest::TempDir;

// Runs a shell command; returns its exit status (and output in *out).
int Sh(const std::string& cmd, std::string* out = nullptr);

// A CA and certificates it signs, made with the openssl CLI.
struct TestCa {
  std::string dir, ca_pem, ca_key;
  // Makes dir/name.pem and dir/name.key for the SAN list ("DNS:a.test,IP:127.0.0.1").
  // self_signed: not issued by the CA (a rogue certificate).
  std::pair<std::string, std::string> Issue(const std::string& name, const std::string& san,
                                            bool self_signed = false) const;
};
TestCa MakeTestCa(const std::string& dir);

SSL_CTX* ServerTlsContext(const std::string& cert, const std::string& key);

// A threaded TCP server on addr:port (port 0: any). Every accepted
// connection is counted and everything it sends is kept.
class TestServer {
 public:
  enum class Mode {
    kHttp,    // reads a head (+ Content-Length body), answers `response`
    kEcho,    // echoes until EOF
    kBulk,    // reads a head, answers 200 with `bulk_bytes` bytes
    kSilent,  // accepts, reads and keeps bytes, never answers
    kQuick,   // reads a head, answers `response` and closes, one connection
              // at a time on the accepting thread, keeping nothing (for
              // latency figures: no thread start per connection)
    kUrgent,  // on the first bytes received: sends "a", "!" as TCP urgent
              // data (MSG_OOB), then "c", and keeps reading until EOF
  };
  // far: listen in the far namespace (MakeFarNetns).
  TestServer(const std::string& addr, int port, Mode mode, SSL_CTX* tls = nullptr, bool far = false);
  ~TestServer();
  int port() const { return port_; }
  int connections() const { return connections_.load(); }
  std::vector<std::string> received();  // per connection
  std::string all_received();
  void set_response(const std::string& r);
  void set_bulk_bytes(size_t n) { bulk_bytes_ = n; }
  int tls_failures() const { return tls_failures_.load(); }

 private:
  void Accept();
  void Handle(int fd, size_t index);
  void ServeQuick(int fd);
  std::string addr_;
  int port_ = 0, listen_fd_ = -1, stop_pipe_[2] = {-1, -1};
  Mode mode_;
  SSL_CTX* tls_;
  std::atomic<int> connections_{0}, tls_failures_{0};
  std::atomic<size_t> bulk_bytes_{0};
  std::mutex mu_;
  std::vector<std::string> received_;
  std::string response_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
  std::vector<int> fds_;
};

// A connection to a Unix socket (the gateway's), with a receive timeout.
class UnixClient {
 public:
  explicit UnixClient(const std::string& path, int timeout_ms = 5000);
  ~UnixClient();
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool Send(const std::string& data);
  // Reads until `until` appears (returns what was read), EOF or timeout.
  std::string ReadUntil(const std::string& until);
  // Reads until EOF or timeout; *eof tells which.
  std::string ReadAll(bool* eof = nullptr);
  void ShutdownWrite();

 private:
  int fd_ = -1;
};

// Sends `request` on a new connection and returns everything until EOF.
std::string Exchange(const std::string& socket_path, const std::string& request,
                     int timeout_ms = 5000);

// The status code of an HTTP response ("HTTP/1.1 403 ..." -> 403), 0 if none.
int StatusOf(const std::string& response);

// Reads from `fd` until the end of an HTTP head (or EOF/error); returns what
// it read (which may run past the head).
std::string ReadHttpHead(int fd);

// An OpenSSL client's first flight (a ClientHello) with this SNI ("" = none).
std::string MakeClientHello(const std::string& sni);

// The real assessq-netbridge as a child: 127.0.0.1:port -> socket. It runs
// `cat` as its "agent" with stdin on a pipe; closing the pipe ends it.
class Netbridge {
 public:
  Netbridge(const std::string& binary, const std::string& socket, int port);
  ~Netbridge();
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool ready() const { return ready_; }
  // False once the bridge process has exited (*status: its wait status).
  bool Alive(int* status = nullptr);

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1, port_, status_ = -1;
  bool ready_ = false;
};

// libcurl, one request.
struct CurlResult {
  int curl_code = -1;  // CURLcode
  long status = 0;
  long connect_status = 0;  // CURLINFO_HTTP_CONNECTCODE
  std::string body, headers, error;
};
struct CurlOptions {
  std::string url, proxy, cainfo, connect_to, method, post_body;
  std::vector<std::string> headers;
  long timeout_s = 10;
};
CurlResult Curl(const CurlOptions& o);

// Milliseconds since an arbitrary point (steady clock).
int64_t NowMs();

}  // namespace gwtest
