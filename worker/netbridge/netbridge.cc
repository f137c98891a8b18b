// assessq-netbridge: the job's side of the egress gateway. A tiny static
// program the worker mounts read-only into the container and runs in front of
// the agent: it listens on 127.0.0.1:PORT inside the container (whose network
// is `none`: loopback only), forwards every connection to the gateway's Unix
// socket mounted at --socket, starts the agent command, passes signals on to
// it, and exits with its status. It holds no secret and makes no decision;
// the gateway outside decides everything.
//
// One thread serves every connection with an epoll loop (no thread per
// connection: none to start per request, and none counted against the
// container's pids limit), moving the bytes with splice(2) through a pipe per
// direction, so they never pass through this process's memory (a plain
// read/write through a buffer where no pipe can be had, e.g. at the nofile
// limit). Each direction ends on its own: the end of one side's stream is
// passed on as a half-close of the other side, and a side that refuses bytes
// (its peer has gone) ends that direction; the connection closes when both
// have ended.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

pid_t g_child = -1;

void Forward(int sig) {
  if (g_child > 0) kill(g_child, sig);
}

constexpr unsigned kSplice = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
constexpr size_t kCopyBuffer = 64 << 10;

// One direction of a bridged connection: src -> pipe -> dst.
struct Flow {
  int src = -1, dst = -1;
  int pipe_r = -1, pipe_w = -1;  // -1: no pipe, copy through `buf`
  std::vector<char> buf;
  size_t cap = 0;     // what one read may take: the pipe's size or the buffer's
  size_t held = 0;    // bytes read from src, not yet written to dst
  size_t off = 0;     // where they start in `buf`
  bool eof = false;   // src has ended (or failed): nothing more to read
  bool done = false;  // this direction is over (dst half-closed)

  void Open(int from, int to) {
    src = from;
    dst = to;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
      pipe_r = p[0];
      pipe_w = p[1];
      int got = fcntl(pipe_w, F_GETPIPE_SZ);
      cap = got > 0 ? static_cast<size_t>(got) : 4096;
    } else {
      buf.resize(kCopyBuffer);
      cap = buf.size();
    }
  }
  void Close() {
    if (pipe_r >= 0) close(pipe_r);
    if (pipe_w >= 0) close(pipe_w);
    pipe_r = pipe_w = -1;
  }
  bool reading() const { return !done && !eof && held == 0; }
  bool writing() const { return !done && held > 0; }

  // Moves what it can without blocking, at most 32 pipe fills a turn (the
  // loop serves every connection; a level-triggered wake-up brings it back).
  void Step() {
    for (int turns = 0; !done && turns < 64; ++turns) {
      if (held > 0) {
        ssize_t n = pipe_r >= 0 ? splice(pipe_r, nullptr, dst, nullptr, held, kSplice)
                                : send(dst, buf.data() + off, held, MSG_NOSIGNAL);
        if (n > 0) {
          held -= static_cast<size_t>(n);
          off += static_cast<size_t>(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;  // dst full: wait until writable
        // dst's peer has gone: it will never see the rest.
        shutdown(src, SHUT_RD);
        shutdown(dst, SHUT_WR);
        eof = done = true;
        return;
      }
      if (eof) {
        shutdown(dst, SHUT_WR);
        done = true;
        return;
      }
      ssize_t n = pipe_r >= 0 ? splice(src, nullptr, pipe_w, nullptr, cap, kSplice)
                              : read(src, buf.data(), cap);
      if (n > 0) {
        held = static_cast<size_t>(n);
        off = 0;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;  // nothing yet: wait until readable
      eof = true;                            // EOF, or a reset
    }
    if (!done && eof && held == 0) {  // the turns ran out just as src ended
      shutdown(dst, SHUT_WR);
      done = true;
    }
  }
};

struct Conn {
  int fd[2] = {-1, -1};  // the agent's TCP connection, the gateway's socket
  Flow flow[2];          // fd[0] -> fd[1], fd[1] -> fd[0]
  uint32_t watched[2] = {0, 0};  // epoll interest per fd (0: not in the set)
  bool dead = false;
};

class Loop {
 public:
  Loop(int listener, std::string socket_path) : ls_(listener), socket_path_(std::move(socket_path)) {}

  void Run() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    // Held back for the moment the nofile limit is reached: closed, it lets
    // one connection be accepted and refused instead of waiting forever.
    spare_ = open("/", O_RDONLY | O_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the listener
    if (ep_ < 0 || epoll_ctl(ep_, EPOLL_CTL_ADD, ls_, &ev) != 0) {
      std::perror("netbridge: epoll");
      return;
    }
    std::vector<epoll_event> events(64);
    std::vector<Conn*> ended;
    while (true) {
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("netbridge: epoll_wait");
        return;
      }
      for (int i = 0; i < n; ++i) {
        auto* c = static_cast<Conn*>(events[i].data.ptr);
        if (!c) {
          Accept();
          continue;
        }
        if (c->dead) continue;  // ended earlier in this batch
        Drive(c);
        if (c->dead) ended.push_back(c);
      }
      for (Conn* c : ended) delete c;  // after the batch: later events may name it
      ended.clear();
    }
  }

 private:
  void Accept() {
    while (true) {
      int fd = accept4(ls_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        Start(fd);
        continue;
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // Out of descriptors (accept4 says so even when nobody is waiting).
      if ((errno == EMFILE || errno == ENFILE) && spare_ >= 0) {
        close(spare_);
        fd = accept4(ls_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) Refuse(fd, "503 Service Unavailable");
        spare_ = open("/", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) continue;  // more may be waiting
      }
      return;  // EAGAIN: all taken
    }
  }

  static void Refuse(int fd, const char* status) {
    std::string msg = std::string("HTTP/1.1 ") + status + "\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    (void)!send(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
  }

  void Start(int client) {
    int one = 1;
    // Replies go out as they come from the gateway (curl and undici set
    // TCP_NODELAY on their side too).
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A blocking connect: it waits only while the gateway's accept backlog
    // is full.
    int up = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, socket_path_.c_str(), sizeof a.sun_path - 1);
    if (up < 0 || connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      Refuse(client, "502 Bad Gateway");
      if (up >= 0) close(up);
      return;
    }
    fcntl(up, F_SETFL, fcntl(up, F_GETFL) | O_NONBLOCK);
    auto* c = new Conn;
    c->fd[0] = client;
    c->fd[1] = up;
    c->flow[0].Open(client, up);
    c->flow[1].Open(up, client);
    Drive(c);
    if (c->dead) delete c;  // not in the epoll set: no event can name it
  }

  // Moves what can be moved, then waits for what each direction needs.
  void Drive(Conn* c) {
    for (Flow& f : c->flow) f.Step();
    if (c->flow[0].done && c->flow[1].done) return End(c);
    for (int i = 0; i < 2; ++i) {
      // fd[i] is read by flow[i] and written by flow[1 - i].
      uint32_t want = (c->flow[i].reading() ? EPOLLIN : 0u) | (c->flow[1 - i].writing() ? EPOLLOUT : 0u);
      if (want == c->watched[i]) continue;
      // Out of the set when nothing is awaited on it: its hang-up or error
      // (always reported) must not spin the loop while the other waits.
      epoll_event ev{};
      ev.events = want;
      ev.data.ptr = c;
      int op = want == 0 ? EPOLL_CTL_DEL : c->watched[i] == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
      if (epoll_ctl(ep_, op, c->fd[i], &ev) != 0) return End(c);  // no wait possible: give up
      c->watched[i] = want;
    }
  }

  // Closes a connection; it is freed once no event of this batch can name it.
  void End(Conn* c) {
    for (int i = 0; i < 2; ++i) {
      if (c->watched[i]) epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd[i], nullptr);
      c->watched[i] = 0;
      close(c->fd[i]);
      c->flow[i].Close();
    }
    c->dead = true;
  }

  int ls_, ep_ = -1, spare_ = -1;
  std::string socket_path_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen_addr = "127.0.0.1", socket_path;
  int port = 3128, cmd = -1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      cmd = i + 1;
      break;
    }
    if (i + 1 >= argc) break;
    if (a == "--port") port = std::atoi(argv[++i]);
    else if (a == "--socket") socket_path = argv[++i];
  }
  if (socket_path.empty() || cmd < 0 || cmd >= argc || port <= 0 || port > 65535) {
    std::fprintf(stderr, "usage: netbridge --socket PATH [--port N] -- COMMAND...\n");
    return 2;
  }
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, listen_addr.c_str(), &sa.sin_addr);
  if (ls < 0 || bind(ls, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(ls, 128) != 0) {
    std::perror("netbridge: listen");
    return 125;
  }
  g_child = fork();
  if (g_child < 0) {
    std::perror("netbridge: fork");
    return 125;
  }
  if (g_child == 0) {
    close(ls);
    execvp(argv[cmd], argv + cmd);
    std::perror("netbridge: exec");
    _exit(127);
  }
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) signal(s, Forward);
  // A peer that closes first must not kill the bridge (and with it the
  // agent's network): splice(2) into such a socket raises SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  std::thread([ls, socket_path] { Loop(ls, socket_path).Run(); }).detach();
  int status = 0;
  while (waitpid(g_child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}
