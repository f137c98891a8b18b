#!/usr/bin/env bash
# Installs what assessq needs on Debian 12, from Debian's own packages only.
# Idempotent; run as root (or with sudo).
#   scripts/install-deps.sh         everything: build, run and all the tests
#   scripts/install-deps.sh --run   only what building and running the three
#                                   programs needs (the quick start)
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then exec sudo -E "$0" "$@"; fi
export DEBIAN_FRONTEND=noninteractive
RUN_PKGS=(
  g++ cmake ninja-build pkg-config ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev libabsl-dev libspdlog-dev
  libsqlite3-dev nlohmann-json3-dev libvalijson-dev libcurl4-openssl-dev
  libcli11-dev prometheus-cpp-dev libasio-dev libssl-dev libidn2-dev
  # the container engine
  docker.io
)
TEST_PKGS=(
  git libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
  # the tests: the test image's static busybox, the benchmark's baseline
  # queue, the certificate tool
  busybox-static beanstalkd openssl sqlite3 iproute2 curl python3 bc
  # the gRPC reflection protocol the API test calls
  grpc-proto
  # the real-agent test's image: a minimal Debian root filesystem
  debootstrap
  # the report test opens `assessctl report`'s page in headless Chromium;
  # Noto gives its Arabic text proper Naskh/Sans Arabic glyphs
  chromium fonts-noto-core
  # the deploy test's `systemd-analyze verify` of deploy/systemd/*.service
  systemd
)
PKGS=("${RUN_PKGS[@]}")
[ "${1:-}" = "--run" ] || PKGS+=("${TEST_PKGS[@]}")
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The real-agent test's image: npm fetches the pinned Claude Code
# (scripts/build-claude-image.sh). Any npm will do; Debian's only if none.
if [ "${1:-}" != "--run" ] && ! command -v npm >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends npm
fi
