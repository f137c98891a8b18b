// assessq-test-agent: the stand-in agent of the container tests, built fully
// static for a FROM scratch image. It reads /input/metadata.json and behaves
// as the metadata's "X-Test-Behaviour" field says (default: write a valid
// assessment), so one batch can mix well-behaved jobs with hostile ones:
// exit1, hang, hang_ignore_term, invalid_json, symlink_shadow, hardlink,
// fifo, huge, forkbomb, read_host, escalate, oom, sleep_ms:N, no_output,
// done_linger (a final Claude Code result line, the output, then it lingers
// with a background child), done_linger_no_output.
// Probes print "LEAK ..." / "ESCALATED ..." when a protection is missing and
// "PROBE-DONE" at the end, so a test can read the log tail.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string ReadAll(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A schema-valid assessment (see schemas/assessment.schema.json).
std::string ValidAssessment(const nlohmann::json& md, const std::string& key) {
  std::string name = md.value("Name", key);
  nlohmann::json a = {
      {"الاسم", name},
      {"الاسم_الأصلي", name},
      {"درجة_الجودة", 65},
      {"تقدير_الجودة", "جيد"},
      {"الملخص", "تقييم تجريبي لمجموعة البيانات أعده وكيل الاختبار اعتمادا على البيانات الوصفية وحدها."},
      {"فحص_البيانات",
       {{"الطريقة_المستخدمة", "metadata_only"},
        {"عدد_العينات_المفحوصة", 0},
        {"معاينة_العينات", nlohmann::json::array()},
        {"مشاكل_مكتشفة", nlohmann::json::array()},
        {"البيانات_تطابق_الوصف", true}}},
      {"نقاط_القوة", {"وصف واضح للبيانات ومصدرها"}},
      {"نقاط_الضعف", {"لم تحمل عينات فعلية في هذا الاختبار"}},
      {"الاستخدامات_الموصى_بها", {"اختبار خط المعالجة"}},
      {"تفصيل_الجودة",
       {{"سهولة_الوصول", 70},
        {"التوثيق", 60},
        {"السلامة_الأخلاقية", 70},
        {"الترخيص", 60},
        {"قابلية_إعادة_الإنتاج", 60},
        {"المراجعة_العلمية", 60},
        {"جودة_البيانات", 65}}},
      {"المصادر_المفتوحة", nlohmann::json::array()},
      {"تم_تحميل_البيانات", false},
  };
  return a.dump();
}

bool WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  return static_cast<bool>(out);
}

void Probe(const char* what, bool succeeded) {
  std::printf("%s %s\n", succeeded ? "LEAK" : "denied", what);
}

}  // namespace

int main(int argc, char** argv) {
  std::string input = "/input/metadata.json", output = "/output/assessment.json", key = "x";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "--input") input = argv[i + 1];
    else if (f == "--output") output = argv[i + 1];
    else if (f == "--dataset") key = argv[i + 1];
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto md = nlohmann::json::parse(ReadAll(input), nullptr, false);
  if (md.is_discarded() || !md.is_object()) {
    std::fprintf(stderr, "test-agent: cannot parse %s\n", input.c_str());
    return 2;
  }
  std::string b = md.value("X-Test-Behaviour", "valid");
  std::printf("test-agent: dataset %s behaviour %s uid %d\n", key.c_str(), b.c_str(), getuid());
  std::string dir = output.substr(0, output.rfind('/'));

  if (b == "valid") return WriteFile(output, ValidAssessment(md, key)) ? 0 : 1;
  if (b.rfind("sleep_ms:", 0) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(b.c_str() + 9)));
    return WriteFile(output, ValidAssessment(md, key)) ? 0 : 1;
  }
  if (b.rfind("ticks:", 0) == 0) {
    // Output over time, for `assessctl logs -f`: "tick I" every 300 ms.
    int n = std::atoi(b.c_str() + 6);
    for (int i = 0; i < n; ++i) {
      std::printf("tick %d\n", i);
      if (i == n / 2) std::fprintf(stderr, "halfway on stderr\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    return WriteFile(output, ValidAssessment(md, key)) ? 0 : 1;
  }
  if (b == "done_linger" || b == "done_linger_no_output") {
    // Claude Code when a Bash command it moved to the background outlives
    // its final turn: the result event is printed (and, for done_linger, the
    // output written), but the process waits on for its background child.
    if (b == "done_linger" && !WriteFile(output, ValidAssessment(md, key))) return 1;
    if (fork() == 0) {
      for (;;) pause();
    }
    std::printf("{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"test-agent\"}\n");
    std::printf("{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,"
                "\"num_turns\":1,\"result\":\"done\",\"session_id\":\"test-agent\"}\n");
    for (;;) pause();
  }
  if (b == "exit1") return 1;
  if (b == "no_output") return 0;
  if (b == "hang") {
    for (;;) pause();  // SIGTERM's default action ends it
  }
  if (b == "hang_ignore_term") {
    signal(SIGTERM, SIG_IGN);
    for (;;) pause();
  }
  if (b == "invalid_json") return WriteFile(output, "{\"الاسم\": not json") ? 0 : 1;
  if (b == "schema_invalid") return WriteFile(output, "{\"score\": 101}") ? 0 : 1;
  if (b == "symlink_shadow") {
    if (symlink("/etc/shadow", output.c_str()) != 0) std::perror("symlink");
    return 0;
  }
  if (b == "hardlink") {
    std::string other = dir + "/other.json";
    WriteFile(other, ValidAssessment(md, key));
    if (link(other.c_str(), output.c_str()) != 0) std::perror("link");
    return 0;
  }
  if (b == "fifo") {
    if (mkfifo(output.c_str(), 0644) != 0) std::perror("mkfifo");
    return 0;
  }
  if (b == "huge") {
    // 2 GB, in 1 MiB writes; the output filesystem's cap stops it early.
    int fd = open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::string chunk(1 << 20, 'A');
    long long total = 0;
    for (int i = 0; i < 2048 && fd >= 0; ++i) {
      ssize_t n = write(fd, chunk.data(), chunk.size());
      if (n <= 0) break;
      total += n;
    }
    std::printf("wrote %lld bytes\n", total);
    if (fd >= 0) close(fd);
    return 0;
  }
  if (b == "forkbomb") {
    int made = 0;
    for (int i = 0; i < 100000; ++i) {
      pid_t p = fork();
      if (p == 0) {
        pause();
        _exit(0);
      }
      if (p < 0) break;
      ++made;
    }
    std::printf("forked %d processes before the limit\n", made);
    return 3;
  }
  if (b == "read_host") {
    // PID 1 is the container's own init (private PID namespace), so its root
    // is a leak only if it is not our own root.
    struct stat own{}, pid1{};
    bool pid1_foreign = stat("/", &own) == 0 && stat("/proc/1/root/", &pid1) == 0 &&
                        (own.st_dev != pid1.st_dev || own.st_ino != pid1.st_ino);
    Probe("/proc/1/root is the host's root", pid1_foreign);
    for (const char* p : {"/etc/shadow", "/var/run/docker.sock", "/run/docker.sock", "/host",
                          "/proc/sysrq-trigger"}) {
      int fd = open(p, O_RDONLY | O_NONBLOCK);
      Probe(p, fd >= 0 && std::strcmp(p, "/proc/sysrq-trigger") != 0);
      if (fd >= 0) close(fd);
    }
    int w = open("/proc/sysrq-trigger", O_WRONLY);
    Probe("write /proc/sysrq-trigger", w >= 0);
    if (w >= 0) close(w);
    std::printf("PROBE-DONE\n");
    return WriteFile(output, ValidAssessment(md, key)) ? 0 : 1;
  }
  if (b == "escalate") {
    Probe("setuid(0)", setuid(0) == 0);
    Probe("setgid(0)", setgid(0) == 0);
    Probe("mount tmpfs", mount("none", "/tmp", "tmpfs", 0, nullptr) == 0);
    Probe("chroot", chroot("/tmp") == 0);
    int fd = open("/escalate-test", O_WRONLY | O_CREAT, 0644);
    Probe("write to root filesystem", fd >= 0);
    std::string status = ReadAll("/proc/self/status");
    auto pos = status.find("CapEff:");
    std::string capeff = pos == std::string::npos ? "" : status.substr(pos + 7, 20);
    bool caps = capeff.find_first_not_of("0\t \n") != std::string::npos &&
                capeff.find_first_not_of("0\t \n") < capeff.find('\n');
    Probe("effective capabilities", caps);
    pos = status.find("NoNewPrivs:");
    Probe("NoNewPrivs off", pos == std::string::npos || status.substr(pos + 11, 3).find('1') == std::string::npos);
    std::printf("PROBE-DONE\n");
    return WriteFile(output, ValidAssessment(md, key)) ? 0 : 1;
  }
  if (b == "oom") {
    std::vector<char*> blocks;
    for (int i = 0; i < 100000; ++i) {
      char* p = static_cast<char*>(std::malloc(16 << 20));
      if (!p) break;
      std::memset(p, 1, 16 << 20);
      blocks.push_back(p);
    }
    return 4;
  }
  std::fprintf(stderr, "test-agent: unknown behaviour %s\n", b.c_str());
  return 2;
}
