// assessq-netbridge: the job's side of the egress gateway. A tiny static
// program the worker mounts read-only into the container and runs in front of
// the agent: it listens on 127.0.0.1:PORT inside the container (whose network
// is `none`: loopback only), forwards every connection to the gateway's Unix
// socket mounted at --socket, starts the agent command, passes signals on to
// it, and exits with its status. It holds no secret and makes no decision;
// the gateway outside decides everything.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
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

void Pump(int from, int to) {
  char buf[65536];  // fewer syscalls per MiB than 16 KiB (gateway_bench)
  while (true) {
    ssize_t n = read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    ssize_t off = 0;
    while (off < n) {
      ssize_t w = write(to, buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        shutdown(from, SHUT_RD);
        shutdown(to, SHUT_WR);
        return;
      }
      off += w;
    }
  }
  shutdown(to, SHUT_WR);
}

void Serve(int client, std::string socket_path) {
  int up = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, socket_path.c_str(), sizeof a.sun_path - 1);
  if (up < 0 || connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const char* msg = "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    (void)!write(client, msg, std::strlen(msg));
    close(client);
    if (up >= 0) close(up);
    return;
  }
  std::thread t([client, up] { Pump(client, up); });
  Pump(up, client);
  t.join();
  close(client);
  close(up);
}

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
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
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
  // A peer that closes first must not kill the bridge (and with it the agent's network).
  signal(SIGPIPE, SIG_IGN);
  std::thread([ls, socket_path] {
    while (true) {
      int c = accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
        return;
      }
      std::thread(Serve, c, socket_path).detach();
    }
  }).detach();
  int status = 0;
  while (waitpid(g_child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}
