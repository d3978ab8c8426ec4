#!/usr/bin/env bash
# Parallel stages vs the same work in sequence, with kiln (cold builds, --no-cache), median of N runs:
# shows the solver running independent stages at once. Needs a registry on 127.0.0.1:5000 with the
# busybox fixture (bench/run.sh starts one; or run this after it). usage: bench/parallel.sh [N=3]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3}
shared=${KILN_SHARED:-$PWD/../shared}
export KILN_ROOT=$(mktemp -d)
trap 'rm -rf "$KILN_ROOT"' EXIT
time_build() {
  local s e
  s=$(date +%s.%N); node bin/kiln.js build --no-cache --progress quiet "$1" >/dev/null 2>&1; e=$(date +%s.%N)
  echo "$e - $s" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
node bin/kiln.js build --progress quiet "$shared/bench/cases/parallel-stages" >/dev/null # pulls the base once
par=$(for _ in $(seq "$n"); do time_build "$shared/bench/cases/parallel-stages"; done | median)
seq=$(for _ in $(seq "$n"); do time_build bench/cases/sequential-stages; done | median)
echo "| build | median s |"
echo "|---|---:|"
echo "| 4 independent stages (parallel-stages) | $par |"
echo "| the same 4 loops in sequence | $seq |"
echo "| parallel / sequential | $(echo "scale=2; $par / $seq" | bc) |"
