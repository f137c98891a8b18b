#include "client/progress.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"

namespace assessq::cli {

std::string RenderBar(int64_t done, int64_t total, double rate, int width) {
  double frac = total > 0 ? static_cast<double>(done) / total : 1.0;
  if (frac > 1) frac = 1;
  int filled = static_cast<int>(frac * width + 0.5);
  std::string bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
  std::string eta = "-";
  if (done >= total) {
    eta = "0s";
  } else if (rate > 0) {
    int64_t s = static_cast<int64_t>((total - done) / rate);
    eta = s >= 3600 ? absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60)
          : s >= 60 ? absl::StrFormat("%dm%02ds", s / 60, s % 60)
                    : absl::StrFormat("%ds", s);
  }
  return absl::StrFormat("%s %3d%%  %d/%d  %.1f/s  ETA %s", bar,
                         static_cast<int>(frac * 100), done, total, rate, eta);
}

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled && isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()) {}

void Progress::Add(int64_t n) {
  done_ += n;
  Draw(false);
}

void Progress::Done() {
  if (finished_) return;
  finished_ = true;
  Draw(true);
}

void Progress::Draw(bool final) {
  if (!enabled_) return;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = secs > 0 ? done_ / secs : 0;
  std::fprintf(stderr, "\r\033[K%s %s", label_.c_str(),
               RenderBar(done_, total_, rate, 30).c_str());
  if (final) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace assessq::cli
