// The seccomp profile of every job container: deploy/seccomp/assessq.json,
// embedded into workerd at build time (worker/CMakeLists.txt). An allow list
// tighter than Docker 20.10's default: no io_uring, no socket families but
// AF_UNIX, AF_INET, AF_INET6 and NETLINK_ROUTE (so no AF_VSOCK), no namespaces,
// mounts, ptrace, keyrings, bpf, perf or userfaultfd; clone3 fails with
// ENOSYS so the C library falls back to the filtered clone. docs/hardening.md
// explains each choice.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace assessq {

// The profile as parsed JSON (aborts at first use if the embedded text is not
// JSON: a build defect that seccomp_profile_test catches).
const nlohmann::json& SeccompProfile();
// Its compact text: what BuildCreateBody passes as "seccomp=<text>".
const std::string& SeccompProfileText();

}  // namespace assessq
