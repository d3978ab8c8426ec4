#!/usr/bin/env bash
# The team scenario timed (bench/team-cache.mjs): B's cold build with the registry cache imported vs
# without, for kiln and for BuildKit (inline cache). Arguments go to team-cache.mjs (--cases, --reps).
set -euo pipefail
cd "$(dirname "$0")/.."
export KILN_SHARED=${KILN_SHARED:-$PWD/../shared}
source bench/lib/peers.sh
node bench/team-cache.mjs "$@"
