// The fixture every end-to-end test shares: checks Docker answers and the
// test agent image exists (a failure, never a skip), makes a temp dir, starts
// a coordinatord in it, and on tear-down kills every workerd it started,
// removes every container labelled with one of their names and the temp dir.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/e2e/e2e_harness.h"

namespace aqe2e {

class E2eTest : public ::testing::Test {
 protected:
  // Lease period of the coordinator; a test may override it before SetUp.
  double lease_seconds_ = 30;

  void SetUp() override {
    // Docker must answer; the test agent image must be there (ctest fixture
    // assessq_images builds it: scripts/build-images.sh BUILD_DIR).
    ASSERT_NO_THROW(Docker()) << "Docker is required for these tests";
    auto img = Docker().ImageExists(kAgentImage);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    ASSERT_TRUE(*img) << kAgentImage
                      << " is missing: run scripts/build-images.sh BUILD_DIR (the "
                         "assessq_images ctest fixture does)";
    dir_ = std::make_unique<TempDir>();
    inputs_ = dir_->Join("inputs");
    std::filesystem::create_directories(inputs_);
    coord_ = std::make_unique<Coordinator>(dir_->path(), lease_seconds_);
    coord_->Start();
    ctl_ = std::make_unique<Ctl>(*coord_);
  }

  void TearDown() override {
    if (HasFailure()) {
      // The logs are the first thing anyone needs when one of these fails.
      if (coord_) std::cerr << "--- coordinatord log ---\n" << Tail(coord_->Log(), 4000) << "\n";
      for (auto& w : workers_)
        std::cerr << "--- workerd " << w->name() << " log ---\n" << Tail(w->Log(), 6000) << "\n";
    }
    for (auto& w : workers_)
      if (w->child()) w->child()->Kill();
    for (const auto& n : worker_names_) RemoveContainersOf(n);
    workers_.clear();
    ctl_.reset();
    coord_.reset();
    dir_.reset();
  }

  Workerd& AddWorker(const std::string& base, WorkerOptions opt = {}) {
    std::string name = Unique("e2e-" + base);
    worker_names_.push_back(name);
    workers_.push_back(std::make_unique<Workerd>(*coord_, dir_->path(), name, opt));
    workers_.back()->Start();
    return *workers_.back();
  }

  std::string Profile(const AgentLimits& l = {}, const std::string& file = "profile.json") {
    return WriteAgentProfile(dir_->Join(file), l);
  }
  // A profile with these time limits and the defaults otherwise.
  std::string TimedProfile(int timeout_s, int grace_s) {
    AgentLimits limits;
    limits.timeout_s = timeout_s;
    limits.grace_s = grace_s;
    return Profile(limits);
  }

  // Writes inputs_/`key`.json with the agent's `behaviour` and submits the
  // inputs as `batch` with `profile`; returns the job of `key`.
  int64_t SubmitOne(const std::string& key, const std::string& behaviour, const std::string& batch,
                    const std::string& profile) {
    WriteMetadata(inputs_, key, behaviour);
    return ctl_->Submit({inputs_}, batch, profile).at(key);
  }

  // The job's running container on `w` (docker's list entry), once there is
  // one (60 s); throws with the worker's log past that.
  std::optional<json> WaitRunningContainer(Workerd& w, int64_t job) {
    std::optional<json> c;
    if (!PollUntil([&] { return (c = RunningContainerOfJob(w.name(), job)).has_value(); }, 60000,
                   20))
      throw std::runtime_error("no running container of job " + std::to_string(job) + "\n" +
                               Tail(w.Log()));
    return c;
  }

  std::unique_ptr<TempDir> dir_;
  std::string inputs_;
  std::unique_ptr<Coordinator> coord_;
  std::unique_ptr<Ctl> ctl_;
  std::vector<std::unique_ptr<Workerd>> workers_;
  std::vector<std::string> worker_names_;
};

}  // namespace aqe2e
