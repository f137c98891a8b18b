#!/usr/bin/env bash
# Builds the local images assessq runs, with no registry: each is FROM scratch
# plus one static binary from build/bin.
#   assessq-offline-assessor:1  the default profile's agent (assessor/)
#   assessq-test-agent:1        the stand-in agent of the container tests
# Usage: scripts/build-images.sh [BUILD_DIR]   (needs a running dockerd)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
export DOCKER_BUILDKIT=0
docker_cli=$(command -v docker)
build_one() {  # tag binary-in-build/bin path-in-image
  local tag=$1 bin=$2 dest=$3 ctx
  [ -x "$build/bin/$bin" ] || { echo "build-images: $build/bin/$bin is missing (build first)" >&2; exit 1; }
  ctx=$(mktemp -d)
  cp "$build/bin/$bin" "$ctx/bin"
  mkdir -p "$ctx/tmp"
  cat > "$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY bin $dest
USER 10001:10001
ENTRYPOINT ["$dest"]
DOCKERFILE
  "$docker_cli" build -q -t "$tag" "$ctx" >/dev/null 2>"$ctx/err" || { cat "$ctx/err" >&2; rm -rf "$ctx"; exit 1; }
  rm -rf "$ctx"
  echo "built $tag"
}
build_one assessq-offline-assessor:1 offline-assessor /assessor
# The test agent exists only in builds with tests.
if [ -x "$build/bin/assessq-test-agent" ]; then
  build_one assessq-test-agent:1 assessq-test-agent /agent
fi
