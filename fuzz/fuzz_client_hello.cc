// libFuzzer target: the TLS ClientHello server-name parser the gateway runs
// on the first bytes of every CONNECT tunnel.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "worker/gateway/http_head.h"

using namespace assessq::gateway;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = ParseClientHelloSni(in);
  if (r.ok() && r->has_value()) {
    const std::string& sni = **r;
    if (sni.empty() || sni.size() > size) std::abort();
    for (char c : sni) {
      unsigned char u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u >= 0x7f) std::abort();
    }
    // The name is bytes of the input.
    if (in.find(sni) == absl::string_view::npos) std::abort();
    // More bytes after a complete hello never change the answer.
    std::string more(in);
    more += "\x17\x03\x03";
    auto r2 = ParseClientHelloSni(more);
    if (!r2.ok() || !r2->has_value() || **r2 != sni) std::abort();
  }
  if (r.ok() && !r->has_value() && size >= 5 + 16384 + 2048) std::abort();
  return 0;
}
