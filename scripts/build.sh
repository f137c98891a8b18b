#!/usr/bin/env bash
# Configures and builds everything into build/ (binaries in build/bin/).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc); [ "$jobs" -gt 2 ] && jobs=2
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${ASSESSQ_BUILD_TYPE:-Release}" >/dev/null
ninja -C build -j "$jobs"
