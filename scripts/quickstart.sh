#!/usr/bin/env bash
# The quick start: installs what is missing, builds, starts dockerd, a local
# coordinator and one worker, and assesses the bundled example datasets
# (examples/datasets) with the offline assessor, showing a progress bar. No
# credentials, no network. State stays in .assessq-demo/ for a look after.
# Usage: sudo scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then exec sudo -E "$0" "$@"; fi
scripts/install-deps.sh
scripts/build.sh
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
"$bin/workerd" --coordinator "$ASSESSQ_COORDINATOR" --token-file "$ws/worker.token" \
  --slots 2 --state-dir "$ws/worker" --name demo-worker 2>"$ws/workerd.log" &
pids+=($!)

"$bin/assessctl" submit examples/datasets --batch examples
"$bin/assessctl" wait --batch examples --timeout 600
echo
"$bin/assessctl" list --batch examples
echo
"$bin/assessctl" export --batch examples --format csv --out "$ws/examples.csv"
cat <<MSG

Done. The assessments are in $ws/assessq.db (and $ws/examples.csv).
To look around, start the coordinator again and use assessctl:
  export ASSESSQ_COORDINATOR=$ASSESSQ_COORDINATOR ASSESSQ_TOKEN_FILE=$ASSESSQ_TOKEN_FILE
  build/bin/coordinatord --db $ws/assessq.db --listen \$ASSESSQ_COORDINATOR &
  build/bin/assessctl result --batch examples classical_poetry
MSG
