#!/usr/bin/env bash
# Builds the gateway's libFuzzer targets with clang (the main build uses g++)
# and runs each for a short time from the seed corpus in fuzz/corpus/TARGET.
# New corpus units and crash artifacts go to the output dir, never the repo.
#   fuzz/run.sh [--out DIR] [--seconds N] [--target NAME] [--no-run]
# Targets: request_head (ParseRequestHead + ParseConnectTarget /
# ParseAbsoluteUri / ParseHostHeader / IsSelfAuthority / SelfTarget /
# RewriteRequestHead), response_head (ParseResponseSignal / CutText /
# GatewayReply), client_hello (ParseClientHelloSni), host (NormalizeHost /
# ParseIpLiteral / ParseRule / DecideHost), usage_meter (UsageMeter, the
# gateway's reading of a model response's usage).
# Needs: clang, libclang-rt-14-dev (libFuzzer and sanitizer runtimes),
# pkg-config, libabsl-dev, libidn2-dev. Exit status 0 when no target crashed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=/tmp/assessq-fuzz
seconds=20
only=""
run=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --target) only=$2; shift 2 ;;
    --no-run) run=0; shift ;;
    *) echo "usage: $0 [--out DIR] [--seconds N] [--target NAME] [--no-run]" >&2; exit 2 ;;
  esac
done
cxx=${FUZZ_CXX:-clang++}
command -v "$cxx" >/dev/null || { echo "fuzz: $cxx missing (apt-get install -y clang libclang-rt-14-dev)" >&2; exit 1; }
mkdir -p "$out"
cflags=(-std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
        -fno-sanitize-recover=undefined -I"$root")
read -r -a absl_cflags <<<"$(pkg-config --cflags absl_strings absl_status absl_statusor)"
read -r -a absl_libs <<<"$(pkg-config --libs absl_strings absl_status absl_statusor)"

declare -A sources=(
  [request_head]=http_head
  [response_head]=http_head
  [client_hello]=http_head
  [host]=egress_policy
  [usage_meter]=usage_meter
)
declare -A extra_libs=([request_head]="" [response_head]="" [client_hello]="" [host]="-lidn2" [usage_meter]="")
# A shorter run for the host target: libidn2 dominates its time.
declare -A share=([request_head]=1 [response_head]=2 [client_hello]=1 [host]=2 [usage_meter]=1)

# stale FILE SOURCES...: true when FILE is missing or older than a source.
stale() {
  local f=$1; shift
  [ -e "$f" ] || return 0
  [ -n "$(find "$@" -newer "$f" 2>/dev/null | head -1)" ]
}
# The parsers, built once for all targets.
for src in http_head egress_policy usage_meter; do
  obj="$out/$src.o"
  if stale "$obj" "$root/worker/gateway/$src.cc" "$root/worker/gateway/$src.h" "$0"; then
    echo "fuzz: compiling worker/gateway/$src.cc"
    "$cxx" "${cflags[@]/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,}" "${absl_cflags[@]}" \
      -c "$root/worker/gateway/$src.cc" -o "$obj"
  fi
done

status=0
for t in request_head response_head client_hello host usage_meter; do
  [ -n "$only" ] && [ "$only" != "$t" ] && continue
  bin="$out/fuzz_$t"
  if stale "$bin" "$root/fuzz/fuzz_$t.cc" "$out/${sources[$t]}.o"; then
    echo "fuzz: building $t"
    # shellcheck disable=SC2086
    "$cxx" "${cflags[@]}" "${absl_cflags[@]}" "$root/fuzz/fuzz_$t.cc" "$out/${sources[$t]}.o" \
      -o "$bin" "${absl_libs[@]}" ${extra_libs[$t]}
  fi
  [ "$run" = 1 ] || continue
  work="$out/corpus/$t"
  mkdir -p "$work" "$out/artifacts"
  secs=$(( seconds / ${share[$t]} ))
  [ "$secs" -ge 1 ] || secs=1
  echo "fuzz: running $t for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=20000 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$t-" "$work" "$root/fuzz/corpus/$t" >"$out/$t.log" 2>&1; then
    echo "fuzz: $t FAILED; last lines of $out/$t.log:" >&2
    tail -n 60 "$out/$t.log" >&2
    status=1
  else
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|Done [0-9]+ runs" "$out/$t.log" | sed "s/^/fuzz: $t: /" || true
    echo "fuzz: $t: corpus $(ls "$work" | wc -l) units, no crash"
  fi
done
exit $status
