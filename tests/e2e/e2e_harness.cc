#include "tests/e2e/e2e_harness.h"

#include <unistd.h>

#include <memory>
#include <stdexcept>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace aqe2e {

// ------------------------------------------------------------------ inputs

std::string WriteMetadata(const std::string& dir, const std::string& key,
                          const std::string& behaviour) {
  std::string path = dir + "/" + key + ".json";
  json md = {{"Name", "e2e " + key}, {"Dialect", "Modern Standard Arabic"},
             {"X-Test-Behaviour", behaviour}};
  WriteFile(path, md.dump(2));
  return path;
}

std::string WriteAgentProfile(const std::string& path, const AgentLimits& l) {
  json p = {
      {"image", kAgentImage},
      {"command", {"/agent", "--input", "{input}", "--output", "{output_file}", "--dataset",
                   "{dataset}"}},
      {"limits",
       {{"memory_mb", l.memory_mb},
        {"pids", l.pids},
        {"timeout_s", l.timeout_s},
        {"grace_s", l.grace_s},
        {"tmp_mb", l.tmp_mb},
        {"home_mb", l.home_mb},
        {"output_mb", l.output_mb},
        {"result_kb", l.result_kb}}},
  };
  WriteFile(path, p.dump(2));
  return path;
}

// ------------------------------------------------------------------ docker

assessq::docker::DockerClient& Docker() {
  static std::unique_ptr<assessq::docker::DockerClient> client;
  if (!client) {
    auto c = assessq::docker::DockerClient::Create(DockerSocket());
    if (!c.ok()) throw std::runtime_error(std::string(c.status().message()));
    client = std::move(*c);
  }
  if (auto s = client->Ping(); !s.ok())
    throw std::runtime_error(absl::StrCat(
        "Docker does not answer on ", DockerSocket(), " (", s.ToString(),
        "); start it with scripts/start-dockerd.sh"));
  return *client;
}

json ContainersOf(const std::string& worker_name) {
  auto l = Docker().ListContainers({"assessq.worker=" + worker_name}, true);
  if (!l.ok()) throw std::runtime_error(absl::StrCat("list containers: ", l.status().ToString()));
  return *l;
}

void RemoveContainersOf(const std::string& worker_name) {
  auto c = assessq::docker::DockerClient::Create(DockerSocket());
  if (!c.ok()) return;
  auto l = (*c)->ListContainers({"assessq.worker=" + worker_name}, true);
  if (!l.ok()) return;
  for (const auto& x : *l) (void)(*c)->RemoveContainer(x.value("Id", ""), true, true);
}

void DiscardWorker(std::unique_ptr<Workerd>& w) {
  if (!w) return;
  if (w->child()) w->child()->Kill();
  RemoveContainersOf(w->name());
  w.reset();
}

bool ContainerGone(const std::string& id) {
  auto in = Docker().InspectContainer(id);
  return !in.ok() && absl::IsNotFound(in.status());
}

std::optional<json> RunningContainerOfJob(const std::string& worker_name, int64_t job) {
  auto l = Docker().ListContainers(
      {"assessq.worker=" + worker_name, absl::StrCat("assessq.job=", job)}, false);
  if (!l.ok() || l->empty()) return std::nullopt;
  for (const auto& c : *l)
    if (c.value("State", "") == "running") return c;
  return std::nullopt;
}

std::vector<std::string> LinesStartingWith(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n'))
    if (absl::StartsWith(line, prefix)) out.emplace_back(line);
  return out;
}

std::string Unique(const std::string& base) {
  return absl::StrCat(base, "-", getpid(), "-", NowMs() % 100000);
}

}  // namespace aqe2e
