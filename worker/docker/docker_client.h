// A Docker Engine API client that the worker uses to run agents in disposable
// hardened containers. It speaks HTTP/1.1 over the daemon's unix socket with
// libcurl (never the docker CLI), pinned to API v1.41 (Docker 20.10), so every
// path is "/v1.41/...". Each call uses its own curl handle, so one client may
// be used from several threads at once. Every failure is an absl::Status and
// no exception escapes: a daemon error response becomes a status whose message
// holds the method, path, HTTP code and Docker's "message" field (400 ->
// kInvalidArgument, 401/403 -> kPermissionDenied, 404 -> kNotFound, 409 ->
// kAlreadyExists on create and kFailedPrecondition elsewhere, other 4xx ->
// kFailedPrecondition, 500 -> kInternal, 501 -> kUnimplemented, 502-504 ->
// kUnavailable), a socket that does not answer -> kUnavailable, and a curl
// timeout -> kDeadlineExceeded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace assessq::docker {

inline constexpr char kDefaultDockerSocket[] = "/var/run/docker.sock";
inline constexpr char kDockerApiVersion[] = "1.41";

// A container's output, split by stream. Each stream keeps at most the last
// `max_bytes` passed to Logs (the tail); *_truncated says bytes were dropped.
struct ContainerLogs {
  std::string out;                 // stdout (all output when the container has a TTY)
  std::string err;                 // stderr
  bool out_truncated = false;
  bool err_truncated = false;
  std::uint64_t out_total_bytes = 0;  // bytes the daemon sent for stdout
  std::uint64_t err_total_bytes = 0;  // bytes the daemon sent for stderr
};

// Splits Docker's multiplexed attach/logs stream (frames of an 8-byte header
// {stream, 0, 0, 0, big-endian uint32 size} then `size` payload bytes; stream
// 1 = stdout, 2 = stderr, 0 = stdin, treated as stdout) into its two streams,
// keeping only the last `max_bytes` of each. Fed in arbitrary chunks; memory
// stays within about 2 * max_bytes per stream whatever the input size.
// Exposed for tests; DockerClient::Logs uses it.
class StreamDemuxer {
 public:
  // `raw` = true: the stream has no framing (container with a TTY); all bytes
  // go to stdout.
  explicit StreamDemuxer(std::size_t max_bytes, bool raw = false);

  // Returns kDataLoss on a malformed header (unknown stream id).
  absl::Status Feed(absl::string_view chunk);
  // Returns kDataLoss if the input ended inside a frame. Call once, at the end.
  absl::StatusOr<ContainerLogs> Finish();

 private:
  void Append(int stream, absl::string_view bytes);

  std::size_t max_bytes_;
  bool raw_;
  std::string header_;          // partial header bytes (< 8)
  int current_stream_ = 0;      // stream of the frame being read
  std::uint32_t remaining_ = 0; // payload bytes still to come in that frame
  bool in_frame_ = false;
  bool failed_ = false;
  ContainerLogs logs_;
};

class DockerClient {
 public:
  // Makes a client for the daemon at `socket_path`. Does not contact the
  // daemon (use Ping for that), so it succeeds before dockerd is up.
  static absl::StatusOr<std::unique_ptr<DockerClient>> Create(
      std::string socket_path = kDefaultDockerSocket);

  DockerClient(const DockerClient&) = delete;
  DockerClient& operator=(const DockerClient&) = delete;
  ~DockerClient();

  const std::string& socket_path() const { return socket_path_; }

  // GET /_ping: OK when the daemon answers "OK".
  absl::Status Ping();
  // GET /version: {"Version": "20.10.24", "ApiVersion": "1.41",
  // "MinAPIVersion": ..., "Os": ..., ...}.
  absl::StatusOr<nlohmann::json> Version();

  // POST /containers/create?name=NAME with `config` as the body (Image, Cmd,
  // Env, User, Labels, HostConfig{...}, ...). Returns the container's id.
  // `name` may be empty (Docker picks one). Missing image -> kNotFound naming
  // the image (nothing is pulled); name in use -> kAlreadyExists.
  absl::StatusOr<std::string> CreateContainer(const std::string& name,
                                              const nlohmann::json& config);
  // POST /containers/{id}/start. Already running (HTTP 304) is OK.
  absl::Status StartContainer(const std::string& id);
  // GET /containers/{id}/json.
  absl::StatusOr<nlohmann::json> InspectContainer(const std::string& id);
  // POST /containers/{id}/wait?condition=not-running: blocks until the
  // container is not running and returns its exit code. Call it after
  // StartContainer (a created, never-started container counts as not
  // running). Not stopped within `timeout` -> kDeadlineExceeded (the container
  // is left running). A non-positive timeout waits without limit.
  absl::StatusOr<std::int64_t> WaitContainer(const std::string& id,
                                             absl::Duration timeout);
  // POST /containers/{id}/kill?signal=SIGNAL ("SIGKILL", "SIGTERM", "9"...).
  // Not running -> kFailedPrecondition.
  absl::Status KillContainer(const std::string& id,
                             const std::string& signal = "SIGKILL");
  // POST /containers/{id}/stop?t=SECONDS: SIGTERM (or the image's
  // StopSignal), then SIGKILL after `grace`. Already stopped (304) is OK.
  absl::Status StopContainer(const std::string& id,
                             absl::Duration grace = absl::Seconds(10));
  // DELETE /containers/{id}?force=..&v=... `force` kills a running container
  // first; `remove_volumes` also removes its anonymous volumes.
  absl::Status RemoveContainer(const std::string& id, bool force = false,
                               bool remove_volumes = false);
  // GET /containers/{id}/logs?stdout=1&stderr=1, demultiplexed, each stream
  // capped at `max_bytes` keeping the tail (see ContainerLogs).
  absl::StatusOr<ContainerLogs> Logs(const std::string& id,
                                     std::size_t max_bytes);
  // GET /containers/json?all=1&filters={"label":[...]}: a JSON array of
  // container summaries. Each filter is "key" (label present) or "key=value";
  // all must match. `all` = false lists running containers only.
  absl::StatusOr<nlohmann::json> ListContainers(
      const std::vector<std::string>& label_filters, bool all = true);

  // POST /networks/create with `config` (Driver, Internal, Labels, Options,
  // ...) plus Name and CheckDuplicate=true. Returns the network's id. Name in
  // use -> kAlreadyExists.
  absl::StatusOr<std::string> CreateNetwork(const std::string& name,
                                            const nlohmann::json& config = nlohmann::json::object());
  // DELETE /networks/{id-or-name}. Still in use -> kFailedPrecondition.
  absl::Status RemoveNetwork(const std::string& id);
  // GET /networks?filters={"label":[...]}: a JSON array of networks.
  absl::StatusOr<nlohmann::json> ListNetworks(
      const std::vector<std::string>& label_filters);

  // GET /images/{name}/json. Missing -> kNotFound.
  absl::StatusOr<nlohmann::json> InspectImage(const std::string& name);
  // True if the image is present locally (nothing is ever pulled).
  absl::StatusOr<bool> ImageExists(const std::string& name);

 private:
  explicit DockerClient(std::string socket_path);

  struct Response {
    long http_code = 0;
    std::string body;
  };
  // Where a request's 2xx body goes: accumulated into Response::body (null
  // sink) or streamed to `sink` (which returns false to abort).
  struct Call;

  absl::StatusOr<Response> Do(Call& call);
  // Do, and the answer's body parsed as JSON.
  absl::StatusOr<nlohmann::json> DoJson(Call& call);
  // GET /COLLECTION/NAME/json (NAME checked as `what`, escaped keeping its
  // slashes when `keep_slashes`), parsed; `op` names the call in errors.
  absl::StatusOr<nlohmann::json> Inspect(const char* op, const char* collection,
                                         const std::string& name, const char* what,
                                         bool keep_slashes);
  // POSTs `body` to a create endpoint (an existing name is kAlreadyExists) and
  // returns the new object's Id, logging the warnings Docker answered with as
  // "docker <log_as>: <warning>".
  absl::StatusOr<std::string> Create(const char* path, std::string query,
                                     const nlohmann::json& body, const std::string& log_as);

  std::string socket_path_;
};

}  // namespace assessq::docker
