// libFuzzer target: what the gateway reads back from the model provider (a
// response head's status and retry-after) and the text it writes itself (a
// refusal's reply, a cut field). Checks the bounds the gateway relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "worker/gateway/http_head.h"

using namespace assessq::gateway;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  ResponseSignal s = ParseResponseSignal(in);
  Check(s.limited == (s.status == 429 || s.status == 529 || s.status >= 500));
  Check(s.retry_after_ms >= 0 && s.retry_after_ms <= 86400 * 1000);
  if (!s.limited) Check(s.retry_after_ms == 0);
  if (s.status != 0) Check(absl::StartsWith(in, "HTTP/"));

  // A cut field: at most the bound plus its note, never a split character.
  const size_t max = size % 300;
  std::string cut = CutText(in, max);
  if (size <= max) {
    Check(cut == in);
  } else {
    size_t kept = cut.rfind("...[");
    Check(kept != std::string::npos && kept <= max && in.substr(0, kept) == cut.substr(0, kept));
    Check(kept == 0 || (static_cast<unsigned char>(in[kept]) & 0xC0) != 0x80);
  }

  // The gateway's reply carries the agent's bytes only in its body, cut; its
  // head is fixed but for the body's length, which is right.
  const std::string base = GatewayReply(403, "Forbidden", "host_not_allowed", "");
  const size_t cl = base.find("Content-Length: ");
  std::string reply = GatewayReply(403, "Forbidden", "host_not_allowed", in);
  Check(reply.compare(0, cl, base, 0, cl) == 0);
  const size_t end = reply.find("\r\nConnection: close\r\n\r\n", cl);
  Check(end != std::string::npos);
  const size_t body_at = end + 23;
  Check(reply.substr(cl, end - cl) == "Content-Length: " + std::to_string(reply.size() - body_at));
  Check(reply.size() - body_at <= 400 + 64);
  return 0;
}
