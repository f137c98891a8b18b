#!/usr/bin/env bash
# Load driver for the worker pipeline (not a test): side by side in one run,
#  1. per-job overhead: N jobs through coordinatord + workerd (1 slot: lease,
#     create, verify, start, wait, read, upload) against N bare
#     `docker run --rm` of the same image and command;
#  2. makespan: M jobs whose agent works 1 s, at 4 slots, against the old
#     sequential loop (`docker run --rm ...; sleep 2`, one at a time).
# Prints the figures and their ratios. Needs root, a running dockerd, a build
# with tests (the test agent), and the images (scripts/build-images.sh).
# Usage: bench/pipeline_bench.sh [BUILD_DIR] [N=30] [M=200]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; n=${2:-30}; m=${3:-200}
case "$build" in /*) bin=$build/bin ;; *) bin=$PWD/$build/bin ;; esac
ws=$(mktemp -d /tmp/aqpipe.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$ws"; }
trap cleanup EXIT
now() { date +%s.%N; }
mkdir -p "$ws/in" "$ws/in1s" "$ws/bare"
for i in $(seq 1 "$n"); do echo "{\"Name\":\"bench $i\"}" > "$ws/in/b$i.json"; done
for i in $(seq 1 "$m"); do echo "{\"Name\":\"slow $i\",\"X-Test-Behaviour\":\"sleep_ms:1000\"}" > "$ws/in1s/s$i.json"; done
profile='{"image":"assessq-test-agent:1","command":["/agent","--input","{input}","--output","{output_file}","--dataset","{dataset}"],"limits":{"memory_mb":128,"cpus":0.5,"pids":64,"timeout_s":60,"grace_s":2,"tmp_mb":8,"home_mb":8,"output_mb":4}}'
echo "$profile" > "$ws/profile.json"

# --- bare docker run, the same image and command, one at a time
bare_run() {  # metadata file
  mkdir -p "$ws/bare/out" && chmod 777 "$ws/bare/out"
  docker run --rm --network none --cap-drop ALL --security-opt no-new-privileges --user 10001:10001 \
    -v "$1:/input/metadata.json:ro" -v "$ws/bare/out:/output" assessq-test-agent:1 \
    /agent --input /input/metadata.json --output /output/assessment.json --dataset x >/dev/null
  rm -rf "$ws/bare/out"
}
t0=$(now); for f in "$ws"/in/*.json; do bare_run "$f"; done; t1=$(now)
bare=$(echo "($t1 - $t0) / $n" | bc -l)

# --- the pipeline, 1 slot
export ASSESSQ_COORDINATOR=unix:$ws/c.sock ASSESSQ_TOKEN_FILE=$ws/op.tok
"$bin/coordinatord" --db "$ws/q.db" token create --role operator --out "$ws/op.tok"
"$bin/coordinatord" --db "$ws/q.db" token create --role worker --out "$ws/wk.tok"
"$bin/coordinatord" --db "$ws/q.db" --listen "$ASSESSQ_COORDINATOR" --log-level warn 2>"$ws/c.log" & pids+=($!)
for _ in $(seq 100); do [ -S "$ws/c.sock" ] && break; sleep 0.1; done
start_worker() {  # slots name
  "$bin/workerd" --coordinator "$ASSESSQ_COORDINATOR" --token-file "$ws/wk.tok" --slots "$1" \
    --state-dir "$ws/state-$2" --name "$2" --log-level warn 2>"$ws/w-$2.log" & pids+=($!)
}
start_worker 1 one
t0=$(now)
"$bin/assessctl" submit "$ws/in" --batch overhead --profile "$ws/profile.json" >/dev/null
"$bin/assessctl" wait --batch overhead --timeout 3600 >/dev/null 2>&1
t1=$(now)
pipe=$(echo "($t1 - $t0) / $n" | bc -l)
kill "${pids[1]}"; wait "${pids[1]}" 2>/dev/null || true

# --- makespan: 4 slots vs the old loop
start_worker 4 four
t0=$(now)
"$bin/assessctl" submit "$ws/in1s" --batch makespan --profile "$ws/profile.json" >/dev/null
"$bin/assessctl" wait --batch makespan --timeout 3600 >/dev/null 2>&1
t1=$(now)
ours=$(echo "$t1 - $t0" | bc -l)
t0=$(now); for f in "$ws"/in1s/*.json; do bare_run "$f"; sleep 2; done; t1=$(now)
loop=$(echo "$t1 - $t0" | bc -l)

printf 'per-job: pipeline %.3f s, bare docker run %.3f s, ratio %.2fx (target <= 1.15x)\n' "$pipe" "$bare" "$(echo "$pipe / $bare" | bc -l)"
printf 'makespan of %d one-second jobs: assessq (4 slots) %.1f s, sequential loop with sleep 2 %.1f s, speed-up %.1fx\n' \
  "$m" "$ours" "$loop" "$(echo "$loop / $ours" | bc -l)"
