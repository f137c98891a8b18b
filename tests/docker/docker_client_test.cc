// Tests of the worker's Docker Engine API client against a real dockerd on
// /var/run/docker.sock (or $ASSESSQ_DOCKER_SOCKET). They fail, never skip,
// when the daemon does not answer: start it with scripts/start-dockerd.sh.
// Containers run the locally built image assessq-test-busybox:1 (see
// build_test_image.sh; nothing is pulled). Every container and network made
// here carries the labels assessq.test=1 and assessq.test.run=<this run> and
// is removed at the end of its test; the image is removed by ctest's fixture
// clean-up, or at exit when this process had to build it itself. The
// StreamDemuxer tests at the end need no daemon.
#include "worker/docker/docker_client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/support/process.h"

#ifndef ASSESSQ_BUILD_TEST_IMAGE
#error "ASSESSQ_BUILD_TEST_IMAGE (path of build_test_image.sh) must be defined"
#endif

namespace assessq::docker {
namespace {

using json = nlohmann::json;

constexpr char kImage[] = "assessq-test-busybox:1";
constexpr char kMissingImage[] = "assessq-test-missing-image:404";

std::string SocketPath() {
  const char* env = std::getenv("ASSESSQ_DOCKER_SOCKET");
  return env != nullptr && *env != '\0' ? env : kDefaultDockerSocket;
}

// Unique per process, so parallel test processes never see each other's objects.
const std::string& RunId() {
  static const std::string id = absl::StrCat(
      getpid(), "-",
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::system_clock::now().time_since_epoch())
              .count() %
          100000000);
  return id;
}

std::string RunLabelFilter() { return absl::StrCat("assessq.test.run=", RunId()); }

// What every test shares: one client, and whether Docker and the image are ready.
struct Shared {
  std::unique_ptr<DockerClient> client;
  absl::Status ready;
  bool built_image = false;
};

Shared& GetShared() {
  static Shared* shared = [] {
    auto* s = new Shared;
    auto client = DockerClient::Create(SocketPath());
    if (!client.ok()) {
      s->ready = client.status();
      return s;
    }
    s->client = std::move(*client);
    s->ready = s->client->Ping();
    if (!s->ready.ok()) return s;
    auto exists = s->client->ImageExists(kImage);
    if (!exists.ok()) {
      s->ready = exists.status();
      return s;
    }
    if (!*exists) {
      int rc = std::system(ASSESSQ_BUILD_TEST_IMAGE);
      if (rc != 0) {
        s->ready = absl::InternalError(
            absl::StrCat(ASSESSQ_BUILD_TEST_IMAGE, " failed (status ", rc, ")"));
        return s;
      }
      s->built_image = true;
      exists = s->client->ImageExists(kImage);
      if (!exists.ok() || !*exists) {
        s->ready = absl::InternalError(absl::StrCat("image ", kImage, " missing after build"));
      }
    }
    return s;
  }();
  return *shared;
}

// Removes whatever this process left behind, and the image if it built it.
class CleanupEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    Shared& s = GetShared();
    if (!s.ready.ok()) return;
    if (auto list = s.client->ListContainers({RunLabelFilter()}); list.ok()) {
      for (const auto& c : *list) {
        if (c.contains("Id") && c["Id"].is_string()) {
          (void)s.client->RemoveContainer(c["Id"].get<std::string>(), true, true);
        }
      }
    }
    if (auto list = s.client->ListNetworks({RunLabelFilter()}); list.ok()) {
      for (const auto& n : *list) {
        if (n.contains("Id") && n["Id"].is_string()) {
          (void)s.client->RemoveNetwork(n["Id"].get<std::string>());
        }
      }
    }
    if (s.built_image && std::getenv("ASSESSQ_KEEP_TEST_IMAGE") == nullptr) {
      (void)std::system(absl::StrCat(ASSESSQ_BUILD_TEST_IMAGE, " --remove >/dev/null").c_str());
    }
  }
};
::testing::Environment* const kCleanup =
    ::testing::AddGlobalTestEnvironment(new CleanupEnvironment);

class DockerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Shared& s = GetShared();
    ASSERT_TRUE(s.ready.ok())
        << "Docker is not usable on " << SocketPath()
        << " (start it with scripts/start-dockerd.sh, as root): " << s.ready;
    client_ = s.client.get();
  }

  void TearDown() override {
    if (client_ == nullptr) return;
    for (const std::string& id : containers_) {
      absl::Status st = client_->RemoveContainer(id, /*force=*/true, /*remove_volumes=*/true);
      if (!st.ok() && !absl::IsNotFound(st)) ADD_FAILURE() << "cleanup: " << st;
    }
    for (const std::string& id : networks_) {
      absl::Status st = client_->RemoveNetwork(id);
      if (!st.ok() && !absl::IsNotFound(st)) ADD_FAILURE() << "cleanup: " << st;
    }
  }

  std::string Name(const std::string& what) const {
    return absl::StrCat("assessq-test-", RunId(), "-", what);
  }

  static json TestLabels() {
    return json{{"assessq.test", "1"}, {"assessq.test.run", RunId()}};
  }

  // Creates a container of the test image running `cmd`, with the test
  // labels merged into config["Labels"], and registers it for removal.
  absl::StatusOr<std::string> Create(const std::string& what, std::vector<std::string> cmd,
                                     json config = json::object()) {
    if (!config.contains("Image")) config["Image"] = kImage;
    config["Cmd"] = std::move(cmd);
    json labels = TestLabels();
    if (config.contains("Labels")) labels.update(config["Labels"]);
    config["Labels"] = labels;
    auto id = client_->CreateContainer(Name(what), config);
    if (id.ok()) containers_.push_back(*id);
    return id;
  }

  absl::StatusOr<std::string> CreateAndStart(const std::string& what, std::vector<std::string> cmd,
                                             json config = json::object()) {
    auto id = Create(what, std::move(cmd), std::move(config));
    if (!id.ok()) return id;
    if (absl::Status st = client_->StartContainer(*id); !st.ok()) return st;
    return id;
  }

  DockerClient* client_ = nullptr;
  std::vector<std::string> containers_;
  std::vector<std::string> networks_;
};

std::vector<std::string> Sh(const std::string& script) { return {"sh", "-c", script}; }

TEST_F(DockerClientTest, PingAndVersionReportApiAtLeast141) {
  ASSERT_TRUE(client_->Ping().ok());
  auto v = client_->Version();
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE((*v)["ApiVersion"].is_string()) << v->dump();
  int major = 0, minor = 0;
  ASSERT_EQ(std::sscanf((*v)["ApiVersion"].get<std::string>().c_str(), "%d.%d", &major, &minor), 2);
  EXPECT_TRUE(major > 1 || (major == 1 && minor >= 41)) << v->dump();
  EXPECT_TRUE((*v)["Version"].is_string());
}

TEST_F(DockerClientTest, RunPropagatesExitCodeAndSplitsStreams) {
  auto id = CreateAndStart("exit3", Sh("echo out; echo err >&2; echo out2; exit 3"));
  ASSERT_TRUE(id.ok()) << id.status();
  auto code = client_->WaitContainer(*id, absl::Seconds(60));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 3);

  auto logs = client_->Logs(*id, 1 << 20);
  ASSERT_TRUE(logs.ok()) << logs.status();
  EXPECT_EQ(logs->out, "out\nout2\n");
  EXPECT_EQ(logs->err, "err\n");
  EXPECT_FALSE(logs->out_truncated);
  EXPECT_FALSE(logs->err_truncated);

  auto info = client_->InspectContainer(*id);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ((*info)["State"]["ExitCode"], 3);
  EXPECT_EQ((*info)["State"]["Running"], false);
  EXPECT_EQ((*info)["Id"], *id);
}

TEST_F(DockerClientTest, LogsAreDemultiplexedAndCappedToTheTail) {
  constexpr int kLines = 3000;
  auto id = CreateAndStart(
      "chatty", Sh(absl::StrCat("i=0; while [ $i -lt ", kLines,
                                " ]; do echo o$i; echo e$i >&2; i=$((i+1)); done")));
  ASSERT_TRUE(id.ok()) << id.status();
  auto code = client_->WaitContainer(*id, absl::Seconds(60));
  ASSERT_TRUE(code.ok()) << code.status();
  ASSERT_EQ(*code, 0);

  std::string want_out, want_err;
  for (int i = 0; i < kLines; ++i) {
    absl::StrAppend(&want_out, "o", i, "\n");
    absl::StrAppend(&want_err, "e", i, "\n");
  }
  auto full = client_->Logs(*id, 1 << 20);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->out, want_out);
  EXPECT_EQ(full->err, want_err);
  EXPECT_EQ(full->out_total_bytes, want_out.size());

  constexpr std::size_t kCap = 100;
  auto tail = client_->Logs(*id, kCap);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(tail->out, want_out.substr(want_out.size() - kCap));
  EXPECT_EQ(tail->err, want_err.substr(want_err.size() - kCap));
  EXPECT_TRUE(tail->out_truncated);
  EXPECT_TRUE(tail->err_truncated);
  EXPECT_EQ(tail->out_total_bytes, want_out.size());
  EXPECT_EQ(tail->err_total_bytes, want_err.size());
}

TEST_F(DockerClientTest, TtyContainerLogsAreRaw) {
  auto id = CreateAndStart("tty", Sh("echo hello; echo world >&2"), json{{"Tty", true}});
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(client_->WaitContainer(*id, absl::Seconds(60)).ok());
  auto logs = client_->Logs(*id, 1 << 20);
  ASSERT_TRUE(logs.ok()) << logs.status();
  EXPECT_EQ(logs->out, "hello\r\nworld\r\n");
  EXPECT_EQ(logs->err, "");
}

TEST_F(DockerClientTest, HardenedHostConfigIsAppliedAndEnforced) {
  constexpr std::int64_t kMemory = 64ll << 20;
  json host = {
      {"CapDrop", {"ALL"}},
      {"ReadonlyRootfs", true},
      {"SecurityOpt", {"no-new-privileges"}},
      {"PidsLimit", 64},
      {"Memory", kMemory},
      {"MemorySwap", kMemory},
      {"NetworkMode", "none"},
      {"Tmpfs", {{"/tmp", "rw,noexec,nosuid,size=16m"}}},
      {"Init", true},
  };
  auto id = CreateAndStart(
      "hardened",
      Sh("id -u; id -g; "
         "touch /rootfs-probe 2>/dev/null && echo rootfs-rw || echo rootfs-ro; "
         "touch /tmp/probe && echo tmp-rw; "
         "grep -E '^(NoNewPrivs|CapEff|Seccomp):' /proc/self/status; "
         "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes "
         "/sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max 2>/dev/null; "
         "ls /sys/class/net; cat /proc/1/cmdline | tr '\\0' ' '; echo"),
      json{{"User", "65534:65534"}, {"HostConfig", host}});
  ASSERT_TRUE(id.ok()) << id.status();
  auto code = client_->WaitContainer(*id, absl::Seconds(60));
  ASSERT_TRUE(code.ok()) << code.status();

  auto info = client_->InspectContainer(*id);
  ASSERT_TRUE(info.ok()) << info.status();
  const json& hc = (*info)["HostConfig"];
  EXPECT_EQ(hc["CapDrop"], json({"ALL"}));
  EXPECT_EQ(hc["ReadonlyRootfs"], true);
  EXPECT_EQ(hc["SecurityOpt"], json({"no-new-privileges"}));
  EXPECT_EQ(hc["PidsLimit"], 64);
  EXPECT_EQ(hc["Memory"], kMemory);
  EXPECT_EQ(hc["MemorySwap"], kMemory);
  EXPECT_EQ(hc["NetworkMode"], "none");
  EXPECT_EQ(hc["Tmpfs"]["/tmp"], "rw,noexec,nosuid,size=16m");
  EXPECT_EQ(hc["Init"], true);
  EXPECT_EQ((*info)["Config"]["User"], "65534:65534");

  auto logs = client_->Logs(*id, 1 << 20);
  ASSERT_TRUE(logs.ok()) << logs.status();
  EXPECT_EQ(*code, 0) << logs->out << logs->err;
  const std::string& out = logs->out;
  EXPECT_EQ(out.rfind("65534\n65534\nrootfs-ro\ntmp-rw\n", 0), 0u) << out << logs->err;
  EXPECT_NE(out.find("NoNewPrivs:\t1"), std::string::npos) << out;
  EXPECT_NE(out.find("CapEff:\t0000000000000000"), std::string::npos) << out;
  EXPECT_NE(out.find("Seccomp:\t2"), std::string::npos) << out;  // default profile
  EXPECT_NE(out.find("\n64\n"), std::string::npos) << out;        // pids.max
  EXPECT_NE(out.find(absl::StrCat("\n", kMemory, "\n")), std::string::npos) << out;
  EXPECT_NE(out.find("\nlo\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("eth0"), std::string::npos) << out;            // NetworkMode none
  EXPECT_NE(out.find("docker-init"), std::string::npos) << out;     // Init: PID 1 is tini
}

TEST_F(DockerClientTest, MemoryLimitOomKills) {
  constexpr std::int64_t kMemory = 32ll << 20;
  auto id = CreateAndStart(
      "oom", Sh("x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"),
      json{{"HostConfig", {{"Memory", kMemory}, {"MemorySwap", kMemory}}}});
  ASSERT_TRUE(id.ok()) << id.status();
  auto code = client_->WaitContainer(*id, absl::Seconds(60));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 137);
  // dockerd sets OOMKilled from an event that may come after the exit.
  absl::StatusOr<json> info;
  aqtest::PollUntil(
      [&] {
        info = client_->InspectContainer(*id);
        return info.ok() && (*info)["State"].value("OOMKilled", false);
      },
      10000, 50);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ((*info)["State"]["OOMKilled"], true) << (*info)["State"].dump();
}

TEST_F(DockerClientTest, KillStopsASleepingContainer) {
  auto id = CreateAndStart("sleeper", {"sleep", "300"});
  ASSERT_TRUE(id.ok()) << id.status();
  auto info = client_->InspectContainer(*id);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ((*info)["State"]["Running"], true);

  ASSERT_TRUE(client_->KillContainer(*id, "SIGKILL").ok());
  auto code = client_->WaitContainer(*id, absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 137);  // 128 + SIGKILL

  // Killing a container that is not running is a precondition failure.
  absl::Status again = client_->KillContainer(*id, "SIGKILL");
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_NE(again.message().find("409"), absl::string_view::npos) << again;
}

TEST_F(DockerClientTest, StopSendsTermThroughInit) {
  auto id = CreateAndStart("stopper", {"sleep", "300"}, json{{"HostConfig", {{"Init", true}}}});
  ASSERT_TRUE(id.ok()) << id.status();
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(client_->StopContainer(*id, absl::Seconds(20)).ok());
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(10));  // SIGTERM worked: no 20 s grace
  auto code = client_->WaitContainer(*id, absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 143);  // 128 + SIGTERM
  // Stopping a stopped container (HTTP 304) is fine.
  EXPECT_TRUE(client_->StopContainer(*id, absl::Seconds(1)).ok());
}

TEST_F(DockerClientTest, WaitTimeoutIsDeadlineExceeded) {
  auto id = CreateAndStart("waiter", {"sleep", "300"});
  ASSERT_TRUE(id.ok()) << id.status();
  auto start = std::chrono::steady_clock::now();
  auto code = client_->WaitContainer(*id, absl::Milliseconds(1500));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(code.status().code(), absl::StatusCode::kDeadlineExceeded) << code.status();
  EXPECT_GE(took, std::chrono::milliseconds(1400));
  EXPECT_LT(took, std::chrono::seconds(10));
  auto info = client_->InspectContainer(*id);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ((*info)["State"]["Running"], true);
}

TEST_F(DockerClientTest, RemoveRunningNeedsForce) {
  auto id = CreateAndStart("removable", {"sleep", "300"});
  ASSERT_TRUE(id.ok()) << id.status();
  absl::Status plain = client_->RemoveContainer(*id);
  EXPECT_EQ(plain.code(), absl::StatusCode::kFailedPrecondition) << plain;
  EXPECT_NE(plain.message().find("HTTP 409"), absl::string_view::npos) << plain;

  ASSERT_TRUE(client_->RemoveContainer(*id, /*force=*/true, /*remove_volumes=*/true).ok());
  auto info = client_->InspectContainer(*id);
  EXPECT_EQ(info.status().code(), absl::StatusCode::kNotFound) << info.status();
  absl::Status again = client_->RemoveContainer(*id, true);
  EXPECT_EQ(again.code(), absl::StatusCode::kNotFound) << again;
}

TEST_F(DockerClientTest, MissingImageIsNotFoundNamingTheImage) {
  auto id = Create("noimage", {"true"}, json{{"Image", kMissingImage}});
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kNotFound) << id.status();
  EXPECT_NE(id.status().message().find(kMissingImage), absl::string_view::npos) << id.status();
  EXPECT_NE(id.status().message().find("HTTP 404"), absl::string_view::npos) << id.status();

  auto exists = client_->ImageExists(kMissingImage);
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_FALSE(*exists);
  EXPECT_EQ(client_->InspectImage(kMissingImage).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DockerClientTest, ImageInspectAndExists) {
  auto exists = client_->ImageExists(kImage);
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_TRUE(*exists);
  auto image = client_->InspectImage(kImage);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ((*image)["Config"]["Labels"]["assessq.test"], "1") << image->dump();
  EXPECT_NE((*image)["RepoTags"].dump().find(kImage), std::string::npos);
}

TEST_F(DockerClientTest, DuplicateNameIsAlreadyExists) {
  auto first = Create("dup", {"true"});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Create("dup", {"true"});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists) << second.status();
  EXPECT_NE(second.status().message().find("409"), absl::string_view::npos) << second.status();
}

TEST_F(DockerClientTest, UnknownContainerIsNotFound) {
  const std::string ghost = Name("ghost");
  EXPECT_EQ(client_->InspectContainer(ghost).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->StartContainer(ghost).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->KillContainer(ghost).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->WaitContainer(ghost, absl::Seconds(5)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Logs(ghost, 10).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->InspectContainer("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DockerClientTest, LabelFilteredListingFindsOnlyLabelled) {
  const json group_a = {{"Labels", {{"assessq.test.group", "a"}}}};
  auto a1 = Create("list-a1", {"true"}, group_a);
  auto a2 = CreateAndStart("list-a2", {"sleep", "300"}, group_a);
  auto b = Create("list-b", {"true"}, json{{"Labels", {{"assessq.test.group", "b"}}}});
  auto plain = Create("list-plain", {"true"});
  ASSERT_TRUE(a1.ok() && a2.ok() && b.ok() && plain.ok());

  auto ids = [](const json& list) {
    std::set<std::string> out;
    for (const auto& c : list) out.insert(c["Id"].get<std::string>());
    return out;
  };
  auto listed = client_->ListContainers({RunLabelFilter(), "assessq.test.group=a"});
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(ids(*listed), (std::set<std::string>{*a1, *a2}));

  auto any_group = client_->ListContainers({RunLabelFilter(), "assessq.test.group"});
  ASSERT_TRUE(any_group.ok()) << any_group.status();
  EXPECT_EQ(ids(*any_group), (std::set<std::string>{*a1, *a2, *b}));

  auto running = client_->ListContainers({RunLabelFilter(), "assessq.test.group=a"}, false);
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(ids(*running), (std::set<std::string>{*a2}));

  auto none = client_->ListContainers({RunLabelFilter(), "assessq.test.group=zzz"});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST_F(DockerClientTest, NetworkCreateListRemoveWithLabels) {
  const std::string name = Name("net");
  json labels = TestLabels();
  labels["assessq.test.kind"] = "net";
  auto id = client_->CreateNetwork(name, json{{"Driver", "bridge"}, {"Internal", true},
                                              {"Labels", labels}});
  ASSERT_TRUE(id.ok()) << id.status();
  networks_.push_back(*id);

  auto dup = client_->CreateNetwork(name, json{{"Labels", TestLabels()}});
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists) << dup.status();
  if (dup.ok()) networks_.push_back(*dup);

  auto listed = client_->ListNetworks({RunLabelFilter(), "assessq.test.kind=net"});
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u) << listed->dump();
  EXPECT_EQ((*listed)[0]["Id"], *id);
  EXPECT_EQ((*listed)[0]["Name"], name);
  EXPECT_EQ((*listed)[0]["Internal"], true);

  auto other = client_->ListNetworks({RunLabelFilter(), "assessq.test.kind=other"});
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_TRUE(other->empty()) << other->dump();

  // A container can join it; while it is attached the network cannot go.
  auto c = CreateAndStart("on-net", {"sleep", "300"}, json{{"HostConfig", {{"NetworkMode", name}}}});
  ASSERT_TRUE(c.ok()) << c.status();
  absl::Status busy = client_->RemoveNetwork(*id);
  EXPECT_FALSE(busy.ok());
  ASSERT_TRUE(client_->RemoveContainer(*c, true).ok());

  ASSERT_TRUE(client_->RemoveNetwork(*id).ok());
  EXPECT_EQ(client_->RemoveNetwork(*id).code(), absl::StatusCode::kNotFound);
  auto after = client_->ListNetworks({RunLabelFilter(), "assessq.test.kind=net"});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->empty());
}

TEST_F(DockerClientTest, SafeFromSeveralThreads) {
  auto id = CreateAndStart("threads", {"sleep", "300"});
  ASSERT_TRUE(id.ok()) << id.status();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        if (!client_->Ping().ok()) ++failures;
        auto info = client_->InspectContainer(*id);
        if (!info.ok() || (*info)["Id"] != *id) ++failures;
        if (!client_->ImageExists(kImage).value_or(false)) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// No daemon needed below.

TEST(DockerClientNoDaemonTest, MissingSocketIsUnavailable) {
  auto client = DockerClient::Create("/nonexistent/assessq/docker.sock");
  ASSERT_TRUE(client.ok()) << client.status();
  absl::Status st = (*client)->Ping();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_EQ((*client)->CreateContainer("x", json{{"Image", kImage}}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(DockerClient::Create("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*client)->CreateContainer("x", json::array()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

std::string Frame(int stream, const std::string& payload) {
  std::string h(8, '\0');
  h[0] = static_cast<char>(stream);
  std::uint32_t n = static_cast<std::uint32_t>(payload.size());
  h[4] = static_cast<char>(n >> 24);
  h[5] = static_cast<char>(n >> 16);
  h[6] = static_cast<char>(n >> 8);
  h[7] = static_cast<char>(n);
  return h + payload;
}

TEST(StreamDemuxerTest, SplitsFramesFedByteByByte) {
  const std::string stream = Frame(1, "hello ") + Frame(2, "oops\n") + Frame(1, "") +
                             Frame(0, "world\n") + Frame(2, std::string(300, 'x'));
  StreamDemuxer d(1 << 20);
  for (char c : stream) ASSERT_TRUE(d.Feed(absl::string_view(&c, 1)).ok());
  auto logs = d.Finish();
  ASSERT_TRUE(logs.ok()) << logs.status();
  EXPECT_EQ(logs->out, "hello world\n");
  EXPECT_EQ(logs->err, "oops\n" + std::string(300, 'x'));
  EXPECT_FALSE(logs->out_truncated);
}

TEST(StreamDemuxerTest, KeepsTheTailOfEachStream) {
  std::string stream, want_out, want_err;
  for (int i = 0; i < 1000; ++i) {
    std::string o = absl::StrCat("out", i, "\n"), e = absl::StrCat("err", i, "\n");
    stream += Frame(1, o) + Frame(2, e);
    want_out += o;
    want_err += e;
  }
  for (std::size_t cap : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{64},
                          std::size_t{5000}, std::size_t{1} << 20}) {
    for (std::size_t chunk : {std::size_t{1}, std::size_t{13}, std::size_t{4096}, stream.size()}) {
      StreamDemuxer d(cap);
      for (std::size_t i = 0; i < stream.size(); i += chunk) {
        ASSERT_TRUE(d.Feed(absl::string_view(stream).substr(i, chunk)).ok());
      }
      auto logs = d.Finish();
      ASSERT_TRUE(logs.ok()) << logs.status();
      std::size_t ko = std::min(cap, want_out.size()), ke = std::min(cap, want_err.size());
      EXPECT_EQ(logs->out, want_out.substr(want_out.size() - ko)) << cap << "/" << chunk;
      EXPECT_EQ(logs->err, want_err.substr(want_err.size() - ke)) << cap << "/" << chunk;
      EXPECT_EQ(logs->out_truncated, cap < want_out.size());
      EXPECT_EQ(logs->err_truncated, cap < want_err.size());
      EXPECT_EQ(logs->out_total_bytes, want_out.size());
      EXPECT_EQ(logs->err_total_bytes, want_err.size());
    }
  }
}

TEST(StreamDemuxerTest, RejectsBadHeadersAndCutFrames) {
  StreamDemuxer bad(100);
  EXPECT_EQ(bad.Feed(std::string("\x07\0\0\0\0\0\0\x01z", 9)).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(bad.Finish().status().code(), absl::StatusCode::kDataLoss);

  StreamDemuxer cut(100);
  ASSERT_TRUE(cut.Feed(Frame(1, "abcdef").substr(0, 10)).ok());
  EXPECT_EQ(cut.Finish().status().code(), absl::StatusCode::kDataLoss);

  StreamDemuxer half_header(100);
  ASSERT_TRUE(half_header.Feed(Frame(1, "ab") + std::string(3, '\0')).ok());
  EXPECT_EQ(half_header.Finish().status().code(), absl::StatusCode::kDataLoss);
}

TEST(StreamDemuxerTest, RawStreamGoesToStdout) {
  StreamDemuxer d(5, /*raw=*/true);
  ASSERT_TRUE(d.Feed("\x01\x02 hello").ok());
  ASSERT_TRUE(d.Feed(" world").ok());
  auto logs = d.Finish();
  ASSERT_TRUE(logs.ok());
  EXPECT_EQ(logs->out, "world");
  EXPECT_TRUE(logs->out_truncated);
  EXPECT_EQ(logs->err, "");
}

}  // namespace
}  // namespace assessq::docker
