// Implementation of the worker's Docker Engine API client (see
// docker_client.h): one libcurl easy handle per request over the daemon's unix
// socket, JSON bodies with nlohmann (parsed without exceptions), HTTP error
// responses and curl failures turned into absl::Status, and the demultiplexer
// for the 8-byte-header framing Docker uses on logs of non-TTY containers.
#include "worker/docker/docker_client.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace assessq::docker {
namespace {

using json = nlohmann::json;

// Ordinary calls: generous, since create/start/remove can take seconds on a
// busy host, but bounded so a wedged daemon cannot hang the worker.
constexpr absl::Duration kDefaultTimeout = absl::Seconds(120);
constexpr long kConnectTimeoutMs = 5000;
// A non-streamed response larger than this is refused (kResourceExhausted).
constexpr std::size_t kMaxBodyBytes = 64u << 20;

std::string Dump(const json& j) {
  // error_handler_t::replace: invalid UTF-8 in a caller's string must not throw.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Percent-encodes all but RFC 3986 unreserved characters and `also`.
std::string PercentEscape(absl::string_view s, absl::string_view also) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == '~' ||
                also.find(static_cast<char>(c)) != absl::string_view::npos;
    if (keep) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// A path segment: also keeps ':' '@', plus '/' when `keep_slash`, for image
// references like "registry/x/y:tag".
std::string Escape(absl::string_view s, bool keep_slash) {
  return PercentEscape(s, keep_slash ? ":@/" : ":@");
}

std::string QueryEscape(absl::string_view s) { return PercentEscape(s, ""); }

std::string LabelFilterQuery(const std::vector<std::string>& label_filters) {
  if (label_filters.empty()) return "";
  json filters = json::object();
  filters["label"] = label_filters;
  return absl::StrCat("filters=", QueryEscape(Dump(filters)));
}

absl::StatusOr<json> ParseJson(const std::string& body, const std::string& what) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InternalError(absl::StrCat(what, ": daemon sent invalid JSON: ",
                                            body.substr(0, 200)));
  }
  return j;
}

std::optional<std::string> GetString(const json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// The answer to a create call: its JSON, which must hold a non-empty "Id".
absl::StatusOr<json> CreatedObject(const std::string& body, const std::string& what) {
  auto j = ParseJson(body, what);
  if (!j.ok()) return j.status();
  auto id = GetString(*j, "Id");
  if (!id || id->empty())
    return absl::InternalError(absl::StrCat(what, ": no Id in answer: ", body.substr(0, 200)));
  return j;
}

absl::Status CheckId(const std::string& id, const char* what) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat("docker: empty ", what));
  return absl::OkStatus();
}

int Seconds(absl::Duration d) {
  return static_cast<int>(std::max<int64_t>(0, absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1)))));
}

// Runs `f`, turning any exception into kInternal so none leaves the client.
template <typename F>
auto Guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("docker ", what, ": unexpected exception: ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat("docker ", what, ": unexpected exception"));
  }
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_ALL); });
}

absl::StatusCode CodeForHttp(long http, absl::StatusCode conflict) {
  switch (http) {
    case 400: return absl::StatusCode::kInvalidArgument;
    case 401:
    case 403: return absl::StatusCode::kPermissionDenied;
    case 404: return absl::StatusCode::kNotFound;
    case 409: return conflict;
    case 500: return absl::StatusCode::kInternal;
    case 501: return absl::StatusCode::kUnimplemented;
    case 502:
    case 503:
    case 504: return absl::StatusCode::kUnavailable;
    default:
      return http >= 400 && http < 500 ? absl::StatusCode::kFailedPrecondition
                                       : absl::StatusCode::kUnknown;
  }
}

absl::StatusCode CodeForCurl(CURLcode rc) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return absl::StatusCode::kDeadlineExceeded;
    case CURLE_OUT_OF_MEMORY: return absl::StatusCode::kResourceExhausted;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_FAILED_INIT: return absl::StatusCode::kInternal;
    default:
      // Could not connect, connection reset, nothing received...: the daemon
      // is not (or no longer) there; worth retrying.
      return absl::StatusCode::kUnavailable;
  }
}

}  // namespace

// ---------------------------------------------------------------- demuxer --

StreamDemuxer::StreamDemuxer(std::size_t max_bytes, bool raw)
    : max_bytes_(max_bytes), raw_(raw) {}

void StreamDemuxer::Append(int stream, absl::string_view bytes) {
  if (bytes.empty()) return;
  std::string& buf = stream == 2 ? logs_.err : logs_.out;
  bool& truncated = stream == 2 ? logs_.err_truncated : logs_.out_truncated;
  (stream == 2 ? logs_.err_total_bytes : logs_.out_total_bytes) += bytes.size();
  if (bytes.size() >= max_bytes_) {
    if (!buf.empty() || bytes.size() > max_bytes_) truncated = true;
    buf.assign(bytes.data() + (bytes.size() - max_bytes_), max_bytes_);
    return;
  }
  buf.append(bytes.data(), bytes.size());
  // Trim lazily (at twice the cap) so trimming costs O(1) amortized per byte.
  if (buf.size() > 2 * max_bytes_) {
    buf.erase(0, buf.size() - max_bytes_);
    truncated = true;
  }
}

absl::Status StreamDemuxer::Feed(absl::string_view chunk) {
  if (failed_) return absl::DataLossError("docker log stream: malformed frame header");
  if (raw_) {
    Append(1, chunk);
    return absl::OkStatus();
  }
  while (!chunk.empty()) {
    if (!in_frame_) {
      std::size_t take = std::min<std::size_t>(8 - header_.size(), chunk.size());
      header_.append(chunk.data(), take);
      chunk.remove_prefix(take);
      if (header_.size() < 8) break;
      auto b = [&](int i) { return static_cast<std::uint8_t>(header_[i]); };
      if (b(0) > 2) {
        failed_ = true;
        return absl::DataLossError(absl::StrCat(
            "docker log stream: malformed frame header (stream byte ", b(0), ")"));
      }
      current_stream_ = b(0) == 2 ? 2 : 1;
      remaining_ = (std::uint32_t{b(4)} << 24) | (std::uint32_t{b(5)} << 16) |
                   (std::uint32_t{b(6)} << 8) | std::uint32_t{b(7)};
      in_frame_ = remaining_ > 0;
      header_.clear();
    } else {
      std::size_t take = std::min<std::size_t>(remaining_, chunk.size());
      Append(current_stream_, chunk.substr(0, take));
      chunk.remove_prefix(take);
      remaining_ -= static_cast<std::uint32_t>(take);
      if (remaining_ == 0) in_frame_ = false;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ContainerLogs> StreamDemuxer::Finish() {
  if (failed_) return absl::DataLossError("docker log stream: malformed frame header");
  if (in_frame_ || !header_.empty()) {
    return absl::DataLossError("docker log stream ended inside a frame");
  }
  auto trim = [this](std::string& buf, bool& truncated) {
    if (buf.size() > max_bytes_) {
      buf.erase(0, buf.size() - max_bytes_);
      truncated = true;
    }
  };
  trim(logs_.out, logs_.out_truncated);
  trim(logs_.err, logs_.err_truncated);
  return std::move(logs_);
}

// ------------------------------------------------------------- transport --

struct DockerClient::Call {
  const char* method = "GET";  // GET, POST or DELETE
  std::string path;            // after "/v1.41", e.g. "/containers/create"
  std::string query;           // without '?'; may be empty
  std::optional<std::string> body;  // JSON request body (POST)
  absl::Duration timeout = kDefaultTimeout;  // <= 0: none
  // When set, a 2xx response body is streamed here instead of collected;
  // a non-OK return aborts the transfer and becomes the call's status.
  std::function<absl::Status(absl::string_view)> sink;
  // What a 409 means for this call.
  absl::StatusCode conflict = absl::StatusCode::kFailedPrecondition;

  std::string Describe() const {
    return absl::StrCat("docker ", method, " ", path, query.empty() ? "" : "?", query);
  }
};

namespace {

struct WriteContext {
  CURL* curl = nullptr;
  const std::function<absl::Status(absl::string_view)>* sink = nullptr;
  bool decided = false;
  bool streaming = false;
  bool too_big = false;
  absl::Status sink_status;
  std::string body;
};

size_t WriteCallback(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* ctx = static_cast<WriteContext*>(userdata);
  const size_t n = size * nmemb;
  try {
    if (!ctx->decided) {
      long code = 0;
      curl_easy_getinfo(ctx->curl, CURLINFO_RESPONSE_CODE, &code);
      ctx->streaming = *ctx->sink && code >= 200 && code < 300;
      ctx->decided = true;
    }
    if (ctx->streaming) {
      absl::Status s = (*ctx->sink)(absl::string_view(ptr, n));
      if (!s.ok()) {
        ctx->sink_status = std::move(s);
        return 0;  // aborts with CURLE_WRITE_ERROR
      }
      return n;
    }
    if (ctx->body.size() + n > kMaxBodyBytes) {
      ctx->too_big = true;
      return 0;
    }
    ctx->body.append(ptr, n);
    return n;
  } catch (...) {
    ctx->sink_status = absl::InternalError("exception while reading the response");
    return 0;
  }
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// Builds the status for a non-2xx response from Docker's {"message": "..."}.
absl::Status HttpError(const std::string& what, long http, const std::string& body,
                       absl::StatusCode conflict) {
  std::string message;
  json j = json::parse(body, nullptr, false);
  if (auto m = GetString(j, "message")) {
    message = *m;
  } else {
    message = body.substr(0, 512);
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
      message.pop_back();
    }
  }
  return absl::Status(CodeForHttp(http, conflict),
                      absl::StrCat(what, ": HTTP ", http, ": ", message));
}

}  // namespace

absl::StatusOr<DockerClient::Response> DockerClient::Do(Call& call) {
  const std::string what = call.Describe();
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return absl::InternalError(absl::StrCat(what, ": curl_easy_init failed"));
  CURL* h = curl.get();

  std::string url = absl::StrCat("http://localhost/v", kDockerApiVersion, call.path,
                                 call.query.empty() ? "" : "?", call.query);
  char errbuf[CURL_ERROR_SIZE] = {0};
  WriteContext ctx;
  ctx.curl = h;
  ctx.sink = &call.sink;

  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Expect:");
  if (call.body) headers = curl_slist_append(headers, "Content-Type: application/json");
  std::unique_ptr<curl_slist, SlistDeleter> header_guard(headers);

  curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, socket_path_.c_str());
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // required with threads
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
  if (call.timeout > absl::ZeroDuration()) {
    long ms = static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(call.timeout)));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteCallback);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &ctx);
  const std::string method = call.method;
  static const std::string kEmpty;
  const std::string& body = call.body ? *call.body : kEmpty;
  if (method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call.method);
  }

  CURLcode rc = curl_easy_perform(h);
  long http = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
  if (rc != CURLE_OK) {
    if (rc == CURLE_WRITE_ERROR && !ctx.sink_status.ok()) return ctx.sink_status;
    if (ctx.too_big) {
      return absl::ResourceExhaustedError(
          absl::StrCat(what, ": response larger than ", kMaxBodyBytes, " bytes"));
    }
    std::string detail = errbuf[0] ? std::string(errbuf) : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return absl::DeadlineExceededError(absl::StrCat(
          what, ": no complete answer within ", absl::FormatDuration(call.timeout), " (", detail, ")"));
    }
    absl::StatusCode code = CodeForCurl(rc);
    return absl::Status(code, absl::StrCat(what, ": ", detail, " (socket ", socket_path_, ")"));
  }
  spdlog::debug("{} -> HTTP {}", what, http);
  if (http < 200 || (http >= 300 && http != 304)) {
    return HttpError(what, http, ctx.body, call.conflict);
  }
  return Response{http, std::move(ctx.body)};
}

// ----------------------------------------------------------------- client --

DockerClient::DockerClient(std::string socket_path) : socket_path_(std::move(socket_path)) {}
DockerClient::~DockerClient() = default;

absl::StatusOr<std::unique_ptr<DockerClient>> DockerClient::Create(std::string socket_path) {
  return Guarded("Create", [&]() -> absl::StatusOr<std::unique_ptr<DockerClient>> {
    if (socket_path.empty()) return absl::InvalidArgumentError("docker: empty socket path");
    GlobalInit();
    curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
    if (info == nullptr || info->version_num < 0x073200) {  // 7.50: unix sockets
      return absl::FailedPreconditionError("docker: libcurl >= 7.50 is needed for unix sockets");
    }
    return std::unique_ptr<DockerClient>(new DockerClient(std::move(socket_path)));
  });
}

absl::Status DockerClient::Ping() {
  return Guarded("Ping", [&]() -> absl::Status {
    Call call;
    call.path = "/_ping";
    call.timeout = absl::Seconds(10);
    auto r = Do(call);
    if (!r.ok()) return r.status();
    if (r->body != "OK") {
      return absl::UnavailableError(absl::StrCat("docker GET /_ping: unexpected answer: ",
                                                 r->body.substr(0, 100)));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<nlohmann::json> DockerClient::Version() {
  return Guarded("Version", [&]() -> absl::StatusOr<json> {
    Call call;
    call.path = "/version";
    call.timeout = absl::Seconds(10);
    return DoJson(call);
  });
}

absl::StatusOr<json> DockerClient::DoJson(Call& call) {
  auto r = Do(call);
  if (!r.ok()) return r.status();
  return ParseJson(r->body, call.Describe());
}

absl::StatusOr<std::string> DockerClient::Create(const char* path, std::string query,
                                                 const json& body, const std::string& log_as) {
  Call call;
  call.method = "POST";
  call.path = path;
  call.query = std::move(query);
  call.body = Dump(body);
  call.conflict = absl::StatusCode::kAlreadyExists;
  auto r = Do(call);
  if (!r.ok()) return r.status();
  auto j = CreatedObject(r->body, call.Describe());
  if (!j.ok()) return j.status();
  // A container's create answers "Warnings": [...], a network's "Warning": "...".
  if (auto w = j->find("Warnings"); w != j->end() && w->is_array()) {
    for (const auto& warning : *w) {
      if (warning.is_string()) spdlog::warn("docker {}: {}", log_as, warning.get<std::string>());
    }
  }
  if (auto w = GetString(*j, "Warning"); w && !w->empty()) spdlog::warn("docker {}: {}", log_as, *w);
  return *GetString(*j, "Id");
}

absl::StatusOr<std::string> DockerClient::CreateContainer(const std::string& name,
                                                          const nlohmann::json& config) {
  return Guarded("CreateContainer", [&]() -> absl::StatusOr<std::string> {
    if (!config.is_object()) {
      return absl::InvalidArgumentError("docker CreateContainer: config must be a JSON object");
    }
    return Create("/containers/create", name.empty() ? "" : absl::StrCat("name=", QueryEscape(name)),
                  config, absl::StrCat("create ", name));
  });
}

absl::Status DockerClient::StartContainer(const std::string& id) {
  return Guarded("StartContainer", [&]() -> absl::Status {
    if (auto s = CheckId(id, "container id"); !s.ok()) return s;
    Call call;
    call.method = "POST";
    call.path = absl::StrCat("/containers/", Escape(id, false), "/start");
    auto r = Do(call);
    return r.status();
  });
}

absl::StatusOr<nlohmann::json> DockerClient::Inspect(const char* op, const char* collection,
                                                     const std::string& name, const char* what,
                                                     bool keep_slashes) {
  return Guarded(op, [&]() -> absl::StatusOr<json> {
    if (auto s = CheckId(name, what); !s.ok()) return s;
    Call call;
    call.path = absl::StrCat("/", collection, "/", Escape(name, keep_slashes), "/json");
    return DoJson(call);
  });
}

absl::StatusOr<nlohmann::json> DockerClient::InspectContainer(const std::string& id) {
  return Inspect("InspectContainer", "containers", id, "container id", false);
}

absl::StatusOr<std::int64_t> DockerClient::WaitContainer(const std::string& id,
                                                         absl::Duration timeout) {
  return Guarded("WaitContainer", [&]() -> absl::StatusOr<std::int64_t> {
    if (auto s = CheckId(id, "container id"); !s.ok()) return s;
    Call call;
    call.method = "POST";
    call.path = absl::StrCat("/containers/", Escape(id, false), "/wait");
    call.query = "condition=not-running";
    call.timeout = timeout > absl::ZeroDuration() ? timeout : absl::ZeroDuration();
    auto r = Do(call);
    if (!r.ok()) {
      if (absl::IsDeadlineExceeded(r.status())) {
        return absl::DeadlineExceededError(absl::StrCat(
            "docker: container ", id, " still running after ", absl::FormatDuration(timeout)));
      }
      return r.status();
    }
    auto j = ParseJson(r->body, call.Describe());
    if (!j.ok()) return j.status();
    if (auto e = j->find("Error"); e != j->end() && e->is_object()) {
      auto msg = GetString(*e, "Message");
      if (msg && !msg->empty()) {
        return absl::InternalError(absl::StrCat(call.Describe(), ": ", *msg));
      }
    }
    auto code = j->find("StatusCode");
    if (code == j->end() || !code->is_number_integer()) {
      return absl::InternalError(absl::StrCat(call.Describe(), ": no StatusCode in answer: ",
                                              r->body.substr(0, 200)));
    }
    return code->get<std::int64_t>();
  });
}

absl::Status DockerClient::KillContainer(const std::string& id, const std::string& signal) {
  return Guarded("KillContainer", [&]() -> absl::Status {
    if (auto s = CheckId(id, "container id"); !s.ok()) return s;
    Call call;
    call.method = "POST";
    call.path = absl::StrCat("/containers/", Escape(id, false), "/kill");
    if (!signal.empty()) call.query = absl::StrCat("signal=", QueryEscape(signal));
    return Do(call).status();
  });
}

absl::Status DockerClient::StopContainer(const std::string& id, absl::Duration grace) {
  return Guarded("StopContainer", [&]() -> absl::Status {
    if (auto s = CheckId(id, "container id"); !s.ok()) return s;
    Call call;
    call.method = "POST";
    call.path = absl::StrCat("/containers/", Escape(id, false), "/stop");
    call.query = absl::StrCat("t=", Seconds(grace));
    call.timeout = grace + kDefaultTimeout;
    return Do(call).status();  // 304 (already stopped) counts as success
  });
}

absl::Status DockerClient::RemoveContainer(const std::string& id, bool force,
                                           bool remove_volumes) {
  return Guarded("RemoveContainer", [&]() -> absl::Status {
    if (auto s = CheckId(id, "container id"); !s.ok()) return s;
    Call call;
    call.method = "DELETE";
    call.path = absl::StrCat("/containers/", Escape(id, false));
    call.query = absl::StrCat("force=", force ? 1 : 0, "&v=", remove_volumes ? 1 : 0);
    return Do(call).status();
  });
}

absl::StatusOr<ContainerLogs> DockerClient::Logs(const std::string& id, std::size_t max_bytes) {
  return Guarded("Logs", [&]() -> absl::StatusOr<ContainerLogs> {
    if (auto s = CheckId(id, "container id"); !s.ok()) return s;
    // A TTY container's log stream is raw; otherwise it is multiplexed. API
    // 1.41 does not say which in Content-Type, so ask the container.
    auto info = InspectContainer(id);
    if (!info.ok()) return info.status();
    bool tty = false;
    if (auto cfg = info->find("Config"); cfg != info->end() && cfg->is_object()) {
      if (auto t = cfg->find("Tty"); t != cfg->end() && t->is_boolean()) tty = t->get<bool>();
    }
    StreamDemuxer demux(max_bytes, tty);
    Call call;
    call.path = absl::StrCat("/containers/", Escape(id, false), "/logs");
    call.query = "stdout=1&stderr=1";
    call.sink = [&demux](absl::string_view chunk) { return demux.Feed(chunk); };
    auto r = Do(call);
    if (!r.ok()) return r.status();
    return demux.Finish();
  });
}

absl::StatusOr<nlohmann::json> DockerClient::ListContainers(
    const std::vector<std::string>& label_filters, bool all) {
  return Guarded("ListContainers", [&]() -> absl::StatusOr<json> {
    Call call;
    call.path = "/containers/json";
    call.query = absl::StrCat("all=", all ? 1 : 0);
    if (std::string f = LabelFilterQuery(label_filters); !f.empty()) {
      absl::StrAppend(&call.query, "&", f);
    }
    auto j = DoJson(call);
    if (j.ok() && !j->is_array()) {
      return absl::InternalError(absl::StrCat(call.Describe(), ": answer is not an array"));
    }
    return j;
  });
}

absl::StatusOr<std::string> DockerClient::CreateNetwork(const std::string& name,
                                                        const nlohmann::json& config) {
  return Guarded("CreateNetwork", [&]() -> absl::StatusOr<std::string> {
    if (name.empty()) return absl::InvalidArgumentError("docker CreateNetwork: empty name");
    if (!config.is_object() && !config.is_null()) {
      return absl::InvalidArgumentError("docker CreateNetwork: config must be a JSON object");
    }
    json body = config.is_null() ? json::object() : config;
    body["Name"] = name;
    if (!body.contains("CheckDuplicate")) body["CheckDuplicate"] = true;
    return Create("/networks/create", "", body, absl::StrCat("network create ", name));
  });
}

absl::Status DockerClient::RemoveNetwork(const std::string& id) {
  return Guarded("RemoveNetwork", [&]() -> absl::Status {
    if (auto s = CheckId(id, "network id"); !s.ok()) return s;
    Call call;
    call.method = "DELETE";
    call.path = absl::StrCat("/networks/", Escape(id, false));
    return Do(call).status();
  });
}

absl::StatusOr<nlohmann::json> DockerClient::ListNetworks(
    const std::vector<std::string>& label_filters) {
  return Guarded("ListNetworks", [&]() -> absl::StatusOr<json> {
    Call call;
    call.path = "/networks";
    call.query = LabelFilterQuery(label_filters);
    auto j = DoJson(call);
    if (j.ok() && j->is_null()) return json::array();  // some daemons send null for none
    if (j.ok() && !j->is_array()) {
      return absl::InternalError(absl::StrCat(call.Describe(), ": answer is not an array"));
    }
    return j;
  });
}

absl::StatusOr<nlohmann::json> DockerClient::InspectImage(const std::string& name) {
  return Inspect("InspectImage", "images", name, "image name", true);
}

absl::StatusOr<bool> DockerClient::ImageExists(const std::string& name) {
  auto r = InspectImage(name);
  if (r.ok()) return true;
  if (absl::IsNotFound(r.status())) return false;
  return r.status();
}

}  // namespace assessq::docker
