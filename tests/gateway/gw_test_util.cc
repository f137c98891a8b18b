#include "tests/gateway/gw_test_util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace gwtest {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int Sh(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::string o;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) o.append(buf, n);
  int st = pclose(p);
  if (out) *out = o;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string EnterPrivateNetns(const std::vector<std::string>& extra_local) {
  if (unshare(CLONE_NEWNET) != 0)
    return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno) +
           " (the gateway tests need root: they run in a private network namespace)";
  std::string out;
  if (Sh("ip link set lo up", &out) != 0) return "ip link set lo up: " + out;
  for (const auto& a : extra_local)
    if (Sh("ip addr add " + a + " dev lo", &out) != 0) return "ip addr add " + a + ": " + out;
  // Nothing but lo: no default route, so nothing can leave.
  if (Sh("ip route show table all | grep -v ' dev lo ' | grep -q .", &out) == 0)
    return "unexpected routes in the private namespace";
  return "";
}

namespace {
int g_near_ns = -1, g_far_ns = -1;
}  // namespace

std::string MakeFarNetns(const std::vector<std::string>& far_addrs) {
  std::string out;
  g_near_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (Sh("ip link add aqgwa type veth peer name aqgwb", &out) != 0) return "veth: " + out;
  if (unshare(CLONE_NEWNET) != 0) return std::string("unshare (far): ") + std::strerror(errno);
  g_far_ns = open("/proc/self/ns/net", O_RDONLY);  // inherited by `ip` below
  if (setns(g_near_ns, CLONE_NEWNET) != 0) return std::string("setns: ") + std::strerror(errno);
  std::string far_path = "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(g_far_ns);
  std::vector<std::string> near_cmds = {
      "ip link set aqgwb netns " + far_path, "ip addr add 10.200.0.1/24 dev aqgwa",
      "ip addr add fd00:200::1/64 dev aqgwa nodad", "ip link set aqgwa up"};
  for (const auto& a : far_addrs) near_cmds.push_back("ip route add " + a + " dev aqgwa");
  for (const auto& c : near_cmds)
    if (Sh(c, &out) != 0) return c + ": " + out;
  if (setns(g_far_ns, CLONE_NEWNET) != 0) return std::string("setns far: ") + std::strerror(errno);
  std::vector<std::string> far_cmds = {
      "ip link set lo up", "ip addr add 10.200.0.2/24 dev aqgwb",
      "ip addr add fd00:200::2/64 dev aqgwb nodad", "ip link set aqgwb up",
      "ip route add default via 10.200.0.1", "ip -6 route add default via fd00:200::1"};
  for (const auto& a : far_addrs) far_cmds.push_back("ip addr add " + a + " dev aqgwb");
  std::string err;
  for (const auto& c : far_cmds)
    if (Sh(c, &out) != 0) {
      err = c + ": " + out;
      break;
    }
  if (setns(g_near_ns, CLONE_NEWNET) != 0) return std::string("setns back: ") + std::strerror(errno);
  return err;
}

std::string ShapeFarLink(int mbit) {
  if (g_near_ns < 0 || g_far_ns < 0) return "no far namespace (MakeFarNetns first)";
  // Burst: at least 4 ms at the rate, so the bucket is not the bottleneck.
  const int64_t burst = std::max<int64_t>(64 << 10, static_cast<int64_t>(mbit) * 1000 * 1000 / 8 / 250);
  auto tbf = [&](const std::string& dev) {
    return "tc qdisc replace dev " + dev + " root tbf rate " + std::to_string(mbit) +
           "mbit burst " + std::to_string(burst) + " latency 100ms";
  };
  std::string out;
  if (Sh(tbf("aqgwa"), &out) != 0) return tbf("aqgwa") + ": " + out;
  if (setns(g_far_ns, CLONE_NEWNET) != 0) return std::string("setns far: ") + std::strerror(errno);
  std::string err;
  if (Sh(tbf("aqgwb"), &out) != 0) err = tbf("aqgwb") + ": " + out;
  if (setns(g_near_ns, CLONE_NEWNET) != 0) return std::string("setns back: ") + std::strerror(errno);
  return err;
}

TestCa MakeTestCa(const std::string& dir) {
  TestCa ca;
  ca.dir = dir;
  ca.ca_pem = dir + "/ca.pem";
  ca.ca_key = dir + "/ca.key";
  std::string out;
  int rc = Sh("openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj '/CN=assessq gateway test CA' "
              "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign "
              "-keyout " + ca.ca_key + " -out " + ca.ca_pem,
              &out);
  if (rc != 0) {
    std::fprintf(stderr, "openssl CA: %s\n", out.c_str());
    std::abort();
  }
  return ca;
}

std::pair<std::string, std::string> TestCa::Issue(const std::string& name, const std::string& san,
                                                  bool self_signed) const {
  std::string key = dir + "/" + name + ".key", pem = dir + "/" + name + ".pem";
  std::string csr = dir + "/" + name + ".csr", ext = dir + "/" + name + ".ext";
  std::string out;
  FILE* f = std::fopen(ext.c_str(), "w");
  std::fprintf(f, "subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
               san.c_str());
  std::fclose(f);
  int rc;
  if (self_signed) {
    rc = Sh("openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj '/CN=" + name +
                "' -addext subjectAltName=" + san + " -keyout " + key + " -out " + pem,
            &out);
  } else {
    rc = Sh("openssl req -newkey rsa:2048 -nodes -sha256 -subj '/CN=" + name + "' -keyout " + key +
                " -out " + csr + " && openssl x509 -req -in " + csr + " -CA " + ca_pem + " -CAkey " +
                ca_key + " -CAcreateserial -days 2 -sha256 -extfile " + ext + " -out " + pem,
            &out);
  }
  if (rc != 0) {
    std::fprintf(stderr, "openssl issue %s: %s\n", name.c_str(), out.c_str());
    std::abort();
  }
  return {pem, key};
}

SSL_CTX* ServerTlsContext(const std::string& cert, const std::string& key) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::fprintf(stderr, "cannot load %s / %s\n", cert.c_str(), key.c_str());
    std::abort();
  }
  return ctx;
}

// ------------------------------------------------------------- TestServer

FarProcess::FarProcess(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;  // made before fork: the child only makes system calls
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ != 0) return;
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
  }
  if (g_far_ns < 0 || setns(g_far_ns, CLONE_NEWNET) != 0) _exit(127);
  execv(args[0], args.data());
  _exit(127);
}

FarProcess::~FarProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

TestServer::TestServer(const std::string& addr, int port, Mode mode, SSL_CTX* tls, bool far)
    : addr_(addr), mode_(mode), tls_(tls) {
  response_ = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n";
  bool v6 = addr.find(':') != std::string::npos;
  // A socket belongs to the namespace it was made in: make it there.
  int here = -1;
  if (far) {
    here = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (g_far_ns < 0 || setns(g_far_ns, CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "no far namespace (MakeFarNetns)\n");
      std::abort();
    }
  }
  listen_fd_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (far) {
    setns(here, CLONE_NEWNET);
    close(here);
  }
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, addr.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, addr.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(listen_fd_, 128) != 0) {
    std::fprintf(stderr, "test server bind %s:%d: %s\n", addr.c_str(), port, std::strerror(errno));
    std::abort();
  }
  len = sizeof ss;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                   : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (pipe2(stop_pipe_, O_CLOEXEC) != 0) std::abort();
  acceptor_ = std::thread([this] { Accept(); });
}

TestServer::~TestServer() {
  (void)!write(stop_pipe_[1], "x", 1);
  acceptor_.join();
  {
    std::lock_guard<std::mutex> l(mu_);
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : threads_) t.join();
  for (int fd : fds_) close(fd);
  close(listen_fd_);
  close(stop_pipe_[0]);
  close(stop_pipe_[1]);
}

void TestServer::Accept() {
  while (true) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    if (mode_ == Mode::kQuick) {
      ServeQuick(fd);
      continue;
    }
    std::lock_guard<std::mutex> l(mu_);
    size_t index = received_.size();
    received_.emplace_back();
    fds_.push_back(fd);
    threads_.emplace_back([this, fd, index] { Handle(fd, index); });
  }
}

void TestServer::ServeQuick(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string got;
  char buf[4096];
  // A client that never finishes its head holds the acceptor 5 s at most.
  while (got.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) break;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  if (got.find("\r\n\r\n") != std::string::npos) {
    std::string r;
    {
      std::lock_guard<std::mutex> l(mu_);
      r = response_;
    }
    size_t off = 0;
    while (off < r.size()) {
      ssize_t w = write(fd, r.data() + off, r.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
  }
  shutdown(fd, SHUT_WR);
  close(fd);
}

void TestServer::set_response(const std::string& r) {
  std::lock_guard<std::mutex> l(mu_);
  response_ = r;
}

std::vector<std::string> TestServer::received() {
  std::lock_guard<std::mutex> l(mu_);
  return received_;
}

std::string TestServer::all_received() {
  std::string s;
  for (const auto& r : received()) s += r;
  return s;
}

void TestServer::Handle(int fd, size_t index) {
  SSL* ssl = nullptr;
  if (tls_) {
    ssl = SSL_new(tls_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
      ++tls_failures_;
      SSL_free(ssl);
      shutdown(fd, SHUT_RDWR);
      return;  // closed by the destructor
    }
  }
  auto rd = [&](char* b, size_t n) -> ssize_t {
    if (ssl) {
      int r = SSL_read(ssl, b, static_cast<int>(n));
      return r > 0 ? r : 0;
    }
    ssize_t r;
    do r = read(fd, b, n);
    while (r < 0 && errno == EINTR);
    return r > 0 ? r : 0;
  };
  auto wr = [&](const char* b, size_t n) -> bool {
    size_t off = 0;
    while (off < n) {
      ssize_t w;
      if (ssl) {
        int r = SSL_write(ssl, b + off, static_cast<int>(std::min<size_t>(n - off, 1 << 20)));
        w = r > 0 ? r : -1;
      } else {
        w = write(fd, b + off, n - off);
        if (w < 0 && errno == EINTR) continue;
      }
      if (w <= 0) return false;
      off += static_cast<size_t>(w);
    }
    return true;
  };
  auto keep = [&](const char* b, size_t n) {
    std::lock_guard<std::mutex> l(mu_);
    received_[index].append(b, n);
  };
  char buf[65536];
  std::string got;
  if (mode_ == Mode::kEcho) {
    ssize_t n;
    while ((n = rd(buf, sizeof buf)) > 0) {
      keep(buf, static_cast<size_t>(n));
      if (!wr(buf, static_cast<size_t>(n))) break;
    }
  } else if (mode_ == Mode::kSilent) {
    ssize_t n;
    while ((n = rd(buf, sizeof buf)) > 0) keep(buf, static_cast<size_t>(n));
  } else if (mode_ == Mode::kUrgent) {
    ssize_t n = rd(buf, sizeof buf);
    if (n > 0) {
      keep(buf, static_cast<size_t>(n));
      wr("a", 1);
      (void)send(fd, "!", 1, MSG_OOB);
      wr("c", 1);
      while ((n = rd(buf, sizeof buf)) > 0) keep(buf, static_cast<size_t>(n));
    }
  } else {
    // A head, then Content-Length bytes of body.
    size_t end = std::string::npos;
    while ((end = got.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = rd(buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
      keep(buf, static_cast<size_t>(n));
    }
    if (end != std::string::npos) {
      size_t want = 0;
      std::string lower = got.substr(0, end);
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (auto p = lower.find("\r\ncontent-length:"); p != std::string::npos)
        want = std::strtoul(lower.c_str() + p + 17, nullptr, 10);
      while (got.size() < end + 4 + want) {
        ssize_t n = rd(buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
        keep(buf, static_cast<size_t>(n));
      }
      if (mode_ == Mode::kHttp) {
        std::string r;
        {
          std::lock_guard<std::mutex> l(mu_);
          r = response_;
        }
        wr(r.data(), r.size());
      } else {
        size_t total = bulk_bytes_.load();
        std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                           std::to_string(total) + "\r\nConnection: close\r\n\r\n";
        if (wr(head.data(), head.size())) {
          std::string chunk(1 << 16, 'x');
          size_t sent = 0;
          while (sent < total) {
            size_t n = std::min(chunk.size(), total - sent);
            if (!wr(chunk.data(), n)) break;
            sent += n;
          }
        }
      }
    }
  }
  if (ssl) {
    SSL_shutdown(ssl);
    SSL_free(ssl);
  }
  shutdown(fd, SHUT_WR);
  // Let the peer read everything before the close.
  pollfd p{fd, POLLIN, 0};
  for (int i = 0; i < 20 && poll(&p, 1, 50) > 0; ++i)
    if (read(fd, buf, sizeof buf) <= 0) break;
}

// ------------------------------------------------------------ UnixClient

UnixClient::UnixClient(const std::string& path, int timeout_ms) {
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd_);
    fd_ = -1;
    return;
  }
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

UnixClient::~UnixClient() {
  if (fd_ >= 0) close(fd_);
}

bool UnixClient::Send(const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string UnixClient::ReadUntil(const std::string& until) {
  std::string out;
  char buf[4096];
  while (out.find(until) == std::string::npos) {
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string UnixClient::ReadAll(bool* eof) {
  std::string out;
  char buf[65536];
  if (eof) *eof = false;
  while (true) {
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && eof) *eof = true;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void UnixClient::ShutdownWrite() { shutdown(fd_, SHUT_WR); }

std::string Exchange(const std::string& socket_path, const std::string& request, int timeout_ms) {
  UnixClient c(socket_path, timeout_ms);
  if (!c.ok()) return "CONNECT-FAILED";
  c.Send(request);
  return c.ReadAll();
}

int StatusOf(const std::string& r) {
  if (r.size() < 12 || r.compare(0, 5, "HTTP/") != 0) return 0;
  return std::atoi(r.c_str() + 9);
}

std::string MakeClientHello(const std::string& sni) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_connect_state(ssl);
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl, sni.c_str());
  SSL_do_handshake(ssl);
  std::string out;
  char buf[4096];
  int n;
  while ((n = BIO_read(wbio, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

// -------------------------------------------------------------- Netbridge

Netbridge::Netbridge(const std::string& binary, const std::string& socket_path, int port) : port_(port) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // As in a container: default signal dispositions (the test ignores SIGPIPE).
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(p[0], 0);
    std::string ps = std::to_string(port);
    execl(binary.c_str(), binary.c_str(), "--socket", socket_path.c_str(), "--port", ps.c_str(), "--",
          "/bin/cat", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(p[0]);
  stdin_fd_ = p[1];
  // Ready when 127.0.0.1:port accepts.
  ready_ = aqtest::PollUntil(
      [&] {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        close(fd);
        return ok;
      },
      5000, 20);
}

bool Netbridge::Alive(int* status) {
  if (pid_ > 0 && status_ < 0) {
    int st;
    if (waitpid(pid_, &st, WNOHANG) == pid_) status_ = st;
  }
  if (status) *status = status_;
  return pid_ > 0 && status_ < 0;
}

Netbridge::~Netbridge() {
  if (stdin_fd_ >= 0) close(stdin_fd_);  // cat sees EOF and exits; so does the bridge
  if (pid_ > 0 && Alive()) {
    int st;
    if (aqtest::PollUntil([&] { return waitpid(pid_, &st, WNOHANG) == pid_; }, 2000, 20)) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, &st, 0);
  }
}

// ------------------------------------------------------------------- curl

namespace {
size_t Append(char* p, size_t s, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, s * n);
  return s * n;
}
}  // namespace

CurlResult Curl(const CurlOptions& o) {
  CurlResult r;
  CURL* c = curl_easy_init();
  char err[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, o.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, o.timeout_s);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, Append);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  // Never the environment's proxy settings, never a resolver.
  curl_easy_setopt(c, CURLOPT_PROXY, o.proxy.c_str());
  curl_easy_setopt(c, CURLOPT_NOPROXY, "");
  if (!o.cainfo.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, o.cainfo.c_str());
  curl_slist* connect_to = nullptr;
  if (!o.connect_to.empty()) {
    connect_to = curl_slist_append(nullptr, o.connect_to.c_str());
    curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_to);
  }
  curl_slist* hdrs = nullptr;
  for (const auto& h : o.headers) hdrs = curl_slist_append(hdrs, h.c_str());
  if (hdrs) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  if (!o.post_body.empty()) curl_easy_setopt(c, CURLOPT_POSTFIELDS, o.post_body.c_str());
  if (!o.method.empty()) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, o.method.c_str());
  r.curl_code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_getinfo(c, CURLINFO_HTTP_CONNECTCODE, &r.connect_status);
  r.error = err;
  curl_slist_free_all(hdrs);
  curl_slist_free_all(connect_to);
  curl_easy_cleanup(c);
  return r;
}

std::string ReadHttpHead(int fd) {
  std::string out;
  char buf[4096];
  while (out.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace gwtest
