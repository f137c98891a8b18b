#!/usr/bin/env bash
# The quick start: installs what is missing (only what building and running
# needs), builds only the programs it runs, starts dockerd, a local
# coordinator and one worker, and assesses the bundled example datasets
# (examples/datasets) with the offline assessor, showing a progress bar. No
# credentials, no network. State stays in .assessq-demo/ for a look after.
# Exits non-zero unless every example dataset succeeded.
# Usage: scripts/quickstart.sh   (as root, or it asks sudo)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then exec sudo -E "$0" "$@"; fi
t0=$(date +%s)
scripts/install-deps.sh --run
ASSESSQ_BUILD_TESTS=OFF scripts/build.sh coordinatord workerd assessctl offline-assessor \
  assessq-netbridge
scripts/start-dockerd.sh
scripts/build-images.sh build

bin=$PWD/build/bin
ws=$PWD/.assessq-demo
rm -rf "$ws" && mkdir -p "$ws" && chmod 700 "$ws"
export ASSESSQ_COORDINATOR=unix:$ws/coordinator.sock
export ASSESSQ_TOKEN_FILE=$ws/operator.token
"$bin/coordinatord" --db "$ws/assessq.db" token create --role operator --out "$ws/operator.token"
"$bin/coordinatord" --db "$ws/assessq.db" token create --role worker --out "$ws/worker.token"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
"$bin/coordinatord" --db "$ws/assessq.db" --listen "$ASSESSQ_COORDINATOR" 2>"$ws/coordinatord.log" &
pids+=($!)
# Wait (bounded) until the coordinator answers its health check.
if ! "$bin/assessctl" health --wait 30 >/dev/null; then
  echo "quickstart: coordinatord did not answer; its log:" >&2
  tail -n 20 "$ws/coordinatord.log" >&2
  exit 1
fi
"$bin/workerd" --coordinator "$ASSESSQ_COORDINATOR" --token-file "$ws/worker.token" \
  --slots 2 --state-dir "$ws/worker" --name demo-worker 2>"$ws/workerd.log" &
pids+=($!)

"$bin/assessctl" submit examples/datasets --batch examples
rc=0
"$bin/assessctl" wait --batch examples --timeout 600 || rc=$?
echo
"$bin/assessctl" list --batch examples
echo
"$bin/assessctl" export --batch examples --format csv --out "$ws/examples.csv"
if [ "$rc" -ne 0 ]; then
  echo "quickstart: not every example succeeded; see 'assessctl list' above and $ws/workerd.log" >&2
  exit "$rc"
fi
cat <<MSG

Done in $(( $(date +%s) - t0 )) s. The assessments are in $ws/assessq.db (and $ws/examples.csv).
To look around, start the coordinator again and use assessctl:
  export ASSESSQ_COORDINATOR=$ASSESSQ_COORDINATOR ASSESSQ_TOKEN_FILE=$ASSESSQ_TOKEN_FILE
  build/bin/coordinatord --db $ws/assessq.db --listen \$ASSESSQ_COORDINATOR &
  build/bin/assessctl result --batch examples classical_poetry
MSG
