// libFuzzer target: the gateway's usage meter (worker/gateway/usage_meter.h)
// on a response of any bytes, fed in the chunk sizes the input's first byte
// picks, and again whole. Checks the invariants the gateway relies on: the
// same reading however the bytes are split, counts never negative nor past
// the saturation bound, a model name of printable ASCII within its cap.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "worker/gateway/usage_meter.h"

using namespace assessq::gateway;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckReading(const UsageMeter& m) {
  for (int64_t v : {m.counts().input, m.counts().output, m.counts().cache_write, m.counts().cache_read})
    Check(v >= 0 && v <= kMeterMaxTokens);
  Check(m.model().size() <= kMeterModelBytes);
  for (char c : m.model()) Check(static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f);
  if (!m.seen()) Check(m.model().empty() && m.counts() == TokenCounts{});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t step = 1 + data[0] % 64;
  absl::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  UsageMeter split;
  for (size_t i = 0; i < in.size(); i += step) split.Feed(in.substr(i, step));
  split.Finish();
  UsageMeter whole;
  whole.Feed(in);
  whole.Finish();
  CheckReading(split);
  CheckReading(whole);
  Check(split.seen() == whole.seen());
  Check(split.model() == whole.model());
  Check(split.counts() == whole.counts());
  Check(split.status() == whole.status());
  Check(split.unreadable().empty() == whole.unreadable().empty());
  return 0;
}
