#!/usr/bin/env bash
# Configures and builds into build/ (binaries in build/bin/). With no
# arguments it builds everything; with target names (e.g. `coordinatord
# workerd assessctl`) only those. ASSESSQ_BUILD_TESTS=OFF configures without
# the tests and benchmarks (their libraries need not be installed). Uses
# ccache when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc); [ "$jobs" -gt 2 ] && jobs=2
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${ASSESSQ_BUILD_TYPE:-Release}" \
  -DASSESSQ_BUILD_TESTS="${ASSESSQ_BUILD_TESTS:-ON}" "${launcher[@]}" >/dev/null
ninja -C build -j "$jobs" "$@"
