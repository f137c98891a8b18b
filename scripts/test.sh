#!/usr/bin/env bash
# Runs every test: installs what is missing (Debian packages), builds, starts
# dockerd if it is not running, and runs the whole CTest suite, the Docker
# tests included (they fail, never skip, without a working Docker).
# Usage: sudo scripts/test.sh [extra ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then exec sudo -E "$0" "$@"; fi
scripts/install-deps.sh
scripts/build.sh
scripts/start-dockerd.sh
jobs=$(nproc); [ "$jobs" -gt 2 ] && jobs=2
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 900 "$@"
