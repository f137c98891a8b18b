// A test suite whose tests share one costly world (a namespace, stand-in
// hosts, a coordinator and a workerd, jobs run once): built on the first
// test's suite set-up, deleted after the last. A set-up that throws is
// recorded, and every test of the suite then fails with it (a failure, never
// a skip), with the workerd log tail when there is one. `World` has
// `setup_error` and a `worker` (std::unique_ptr<Workerd>), and
// SuiteWorldTest<World, &g_world, SetUpWorld> is the suite's base.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <iostream>
#include <string>

#include "tests/e2e/e2e_harness.h"

namespace aqe2e {

template <typename World, World** kWorld, void (*kSetUp)(World&)>
class SuiteWorldTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (*kWorld) return;
    *kWorld = new World;
    try {
      kSetUp(**kWorld);
    } catch (const std::exception& e) {
      World& w = **kWorld;
      w.setup_error = e.what();
      if (w.worker) w.setup_error += "\n--- workerd log ---\n" + Tail(w.worker->Log(), 6000);
    }
  }
  // After a failure prints the workerd log tail; deletes the world (a suite
  // may print more first, then call this).
  static void TearDownTestSuite() {
    if (!*kWorld) return;
    if (AnyTestFailed() && (*kWorld)->worker)
      std::cerr << "--- workerd log ---\n" << Tail((*kWorld)->worker->Log(), 8000) << "\n";
    delete *kWorld;
    *kWorld = nullptr;
  }
  void SetUp() override { ASSERT_EQ((*kWorld)->setup_error, "") << "suite set-up failed"; }
  static bool AnyTestFailed() {
    return ::testing::UnitTest::GetInstance()->failed_test_count() > 0;
  }
};

}  // namespace aqe2e
