// A progress line for long client work: a bar, counts, rate and ETA, redrawn
// in place on a terminal (stderr) and silent otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace assessq::cli {

// Renders "[#####.....]  45%  450/1000  12.0/s  ETA 46s" into `width` bar cells.
std::string RenderBar(int64_t done, int64_t total, double rate_per_s, int width);

class Progress {
 public:
  Progress(std::string label, int64_t total, bool enabled);
  void Add(int64_t n);
  void Done();

 private:
  void Draw(bool final);
  std::string label_;
  int64_t total_, done_ = 0;
  bool enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace assessq::cli
