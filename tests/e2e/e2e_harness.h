// The end-to-end container tests' harness: a real coordinatord, real workerd
// processes and a real dockerd, all driven the way an operator would (the
// assessctl binary, -o json), each test in its own temp dir with its own
// worker names, so tests may run in parallel (ctest -j). The processes, temp
// dirs, polling and the program drivers are the shared test support
// (tests/support); this adds the coordinator with its two tokens, the test
// agent's inputs and Docker.
//
// Infrastructure problems (a child that will not start, a command that
// times out, Docker that does not answer) throw std::runtime_error carrying
// the relevant log tail; GoogleTest reports them as failures of the test,
// never as skips.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/drivers.h"
#include "tests/support/process.h"
#include "worker/docker/docker_client.h"

namespace aqe2e {

using json = nlohmann::json;

using aqtest::Child;
using aqtest::Ctl;
using aqtest::DockerSocket;
using aqtest::JsonLines;
using aqtest::ListDir;
using aqtest::MasaderDir;
using aqtest::NowMs;
using aqtest::PollUntil;
using aqtest::ReadFile;
using aqtest::Run;
using aqtest::RunResult;
using aqtest::TempDir;
using aqtest::UnmountBelow;
using aqtest::WorkerOptions;
using aqtest::Workerd;
using aqtest::WriteFile;

// Built programs.
inline std::string CoordinatordBin() { return aqtest::BinPath("coordinatord"); }
inline std::string WorkerdBin() { return aqtest::BinPath("workerd"); }
inline std::string AssessctlBin() { return aqtest::BinPath("assessctl"); }

inline constexpr char kAgentImage[] = "assessq-test-agent:1";

// The last `max_bytes` of `text`, for failure messages.
inline std::string Tail(const std::string& text, size_t max_bytes = 6000) {
  return aqtest::TailText(text, max_bytes);
}

// One coordinatord on `dir`/assessq.db, listening on unix:`dir`/c.sock, with
// an operator token and a worker token made before the first start.
class Coordinator : public aqtest::Coordinator {
 public:
  explicit Coordinator(std::string dir, double lease_seconds = 30)
      : aqtest::Coordinator(std::move(dir), {.lease_seconds = lease_seconds}) {
    CreateStandardTokens();
  }
};

// Test inputs.
// A metadata file `dir`/`key`.json with a Name and the agent's behaviour.
std::string WriteMetadata(const std::string& dir, const std::string& key,
                          const std::string& behaviour);
struct AgentLimits {
  int memory_mb = 128;
  int pids = 64;
  int timeout_s = 6;
  int grace_s = 2;
  int tmp_mb = 8;
  int home_mb = 8;
  int output_mb = 4;
  int result_kb = 256;
};
// The test agent's profile, written to `path`.
std::string WriteAgentProfile(const std::string& path, const AgentLimits& l = {});

// Docker: a client that answered /_ping (throws otherwise: tests fail, never
// skip, without Docker), and the containers labelled assessq.worker=NAME.
assessq::docker::DockerClient& Docker();
json ContainersOf(const std::string& worker_name);
void RemoveContainersOf(const std::string& worker_name);
// Docker says the container `id` does not exist (any other answer: false).
bool ContainerGone(const std::string& id);
// Kills the workerd (if there is one), removes its containers, resets `w`.
void DiscardWorker(std::unique_ptr<Workerd>& w);
// The running container of `job` (label assessq.job) of this worker, if any.
std::optional<json> RunningContainerOfJob(const std::string& worker_name, int64_t job);

// Lines of `text` that start with `prefix`.
std::vector<std::string> LinesStartingWith(const std::string& text, const std::string& prefix);

// A unique suffix for worker and batch names (pid + time), so parallel test
// processes never share a label.
std::string Unique(const std::string& base);

}  // namespace aqe2e
