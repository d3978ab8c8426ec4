#!/usr/bin/env bash
# kiln vs its peers on ../shared/bench/cases, timed in one run: starts a registry on 127.0.0.1:5000 with
# the busybox fixture and dockerd for the BuildKit peer (bench/lib/peers.sh), then runs
# ../shared/bench/run.py. Extra arguments go to run.py (e.g. --cases hello,parallel-stages --reps 3).
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
shared=${KILN_SHARED:-$here/../shared}
source bench/lib/peers.sh

export KILN="node $here/bin/kiln.js"
export KILN_ROOT=${KILN_ROOT:-/var/tmp/kiln-bench/kiln-root}
python3 "$shared/bench/run.py" "$@"
