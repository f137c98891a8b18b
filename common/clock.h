// The wall clock in milliseconds since the Unix epoch, as every record and
// report of assessq stores it.
#pragma once

#include <chrono>
#include <cstdint>

namespace assessq {

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace assessq
