#!/usr/bin/env bash
# kiln vs its peers on ../shared/bench/cases and this repo's bench/cases (many-copies: 25 small COPY
# steps), timed in one run: starts a registry on 127.0.0.1:5000 with the busybox fixture and dockerd for
# the BuildKit peer (bench/lib/peers.sh), then runs ../shared/bench/run.py. Extra arguments go to run.py
# (e.g. --cases hello,many-copies --reps 3). $KILN picks another kiln (e.g. an older checkout's bin).
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
shared=${KILN_SHARED:-$here/../shared}
source bench/lib/peers.sh

export KILN=${KILN:-node $here/bin/kiln.js}
# run.py reads one cases dir: one of links to both (a name in both is an error, not a silent pick).
export BENCH_CASES=$bench_work/cases
mkdir -p "$BENCH_CASES"
for d in "$shared"/bench/cases/*/ "$here"/bench/cases/*/; do
  name=$(basename "$d")
  if [ -e "$BENCH_CASES/$name" ]; then echo "bench: case $name is in both $shared/bench/cases and bench/cases" >&2; exit 1; fi
  ln -s "${d%/}" "$BENCH_CASES/$name"
done
export KILN_ROOT=${KILN_ROOT:-/var/tmp/kiln-bench/kiln-root}
python3 "$shared/bench/run.py" "$@"
