// UTF-8 helpers for text that crosses the wire: proto3 `string` fields must
// hold valid UTF-8 or the receiver refuses the whole message, so anything
// from an untrusted or byte-oriented source (agent logs, library error
// messages, truncated text) goes through these first. Pure; no I/O.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace assessq {

bool IsValidUtf8(absl::string_view s);
// Replaces every invalid byte sequence with U+FFFD.
std::string SanitizeUtf8(absl::string_view s);
// At most `max_bytes` bytes, never cutting a character in half.
std::string TruncateUtf8(absl::string_view s, size_t max_bytes);
// The last `max_bytes` bytes or fewer, starting on a character boundary.
std::string TailUtf8(absl::string_view s, size_t max_bytes);

}  // namespace assessq
