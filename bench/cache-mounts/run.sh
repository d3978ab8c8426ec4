#!/usr/bin/env bash
# Bench: cache mounts in a team cache (issue 19, item 1). Two projects whose slow step fills a cache mount:
#   node:   npm ci with --mount=type=cache,target=/root/.npm
#   debian: apt-get update + install with cache mounts on /var/cache/apt and /var/lib/apt
# Machine A builds version 1 and exports a registry cache (mode=max). Machine B, cold (a fresh state dir),
# builds version 2 (one package more, so the slow step runs again) three ways:
#   kiln+cache   kiln --cache-from the cache A exported with cache-mounts=true
#   kiln-cold    kiln without any cache
#   buildkit     docker-sid (BuildKit v0.25) --cache-from its own registry cache (mode=max) of A's build,
#                after `docker-sid builder prune -af` (B is cold; BuildKit caches do not carry cache mounts)
# Reported per run: seconds; bytes from the cache registry (its access log); bytes npm/apt fetched from
# the network, as the growth of the build's cache mounts (kiln: the state's cachemounts/ minus what was
# filled from the import; BuildKit: `buildx du` of its exec.cachemount records); and the rx bytes of the
# default-route interface (the whole machine: other builds at the same time count too, so it is noisy).
#
# Usage: bench/cache-mounts/run.sh BASES_SH
#   BASES_SH makes the Debian 12 and Node base images (bench/realworld/bases.sh of the realworld branch:
#   `git show h-realworld:bench/realworld/bases.sh > /tmp/bases.sh`) and prints "<ref> <digest>" lines.
# Env: BENCH_CACHE_PORT (default 5002), BENCH_WORK (default a temp dir), BENCH_PROJECTS ("node debian"),
#      BENCH_BUILDERS ("kiln buildkit"), BUILDKIT_NETWORK (e.g. host, when dockerd's bridge has no egress).
# Needs root, npm, docker-sid.
# This is a bench, not a test: it uses the network (npm registry, the host's Debian mirror).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bases=${1:?usage: run.sh BASES_SH}
port=${BENCH_CACHE_PORT:-5002}
work=${BENCH_WORK:-$(mktemp -d /tmp/kiln-bench-cachemounts-XXXXXX)}
kiln="node $repo/bin/kiln.js"
cachereg=127.0.0.1:$port
mkdir -p "$work"
log() { printf 'bench: %s\n' "$*" >&2; }

if ss -ltn | grep -q "127.0.0.1:$port "; then log "something listens on :$port already: set BENCH_CACHE_PORT"; exit 1; fi
regpid=$("$here/registry.sh" "$port" "$work/registry")
trap 'kill "$regpid" 2>/dev/null || true' EXIT

images=$(bash "$bases")
debian=$(awk '/kiln-rw\/debian:/ {print $1}' <<<"$images")
node=$(awk '/kiln-rw\/node:/ {print $1}' <<<"$images")
[ -n "$debian" ] && [ -n "$node" ] || { log "bases did not print the debian and node images"; exit 1; }

iface=$(ip route show default | awk '{print $5; exit}')
rx() { cat "/sys/class/net/$iface/statistics/rx_bytes"; }
accesslines() { wc -l <"$work/registry/access.log"; }
# Bytes the cache registry sent (GET responses) since access-log line $1.
regbytes() { tail -n +"$(($1 + 1))" "$work/registry/access.log" | awk '$6 == "\"GET" && $9 ~ /^2/ { s += $10 } END { print s + 0 }'; }

# What npm/apt fetched in a build = what its cache mounts grew by (they start empty or with the imported
# contents, whose size kiln prints: "cache mount ID: N files (B bytes downloaded)").
kiln_fetched() { # STATE LOG
  local total seeded
  total=$(du -sb "$1/cachemounts" 2>/dev/null | cut -f1); total=${total:-0}
  seeded=$(grep -o '([0-9]* bytes downloaded)' "$2" | tr -dc '0-9\n' | awk '{ s += $1 } END { print s + 0 }')
  echo $((total - seeded))
}
# BuildKit's cache mounts (pruned before each B build): their sizes from buildx du.
buildkit_fetched() {
  docker-sid buildx du --filter type=exec.cachemount --verbose | awk '
    /^Size:/ { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v)
               m = (u == "kB" ? 1e3 : u == "MB" ? 1e6 : u == "GB" ? 1e9 : 1); s += v * m }
    END { printf "%d\n", s }'
}

results=$work/results.tsv
: >"$results"
# measure LABEL FETCHED_FN CMD… : runs CMD, appends "LABEL seconds cache-registry-bytes fetched-bytes host-rx".
measure() {
  local label=$1 fetched=$2; shift 2
  local l0 r0 t0 t1 r1
  l0=$(accesslines); r0=$(rx); t0=$(date +%s.%N)
  if ! "$@" >"$work/$label.log" 2>&1; then log "$label failed:"; tail -20 "$work/$label.log" >&2; exit 1; fi
  t1=$(date +%s.%N); r1=$(rx)
  printf '%s\t%.1f\t%s\t%s\t%s\n' "$label" "$(echo "$t1 - $t0" | bc)" "$(regbytes "$l0")" "$(eval "$fetched")" "$((r1 - r0))" | tee -a "$results" >&2
}

# --- projects ---
node_project() { # DIR EXTRA_DEP
  mkdir -p "$1"
  local deps='"express":"4.21.2","lodash":"4.17.21","axios":"1.7.9","moment":"2.30.1","rxjs":"7.8.1","typescript":"5.7.2","webpack":"5.97.1"'
  [ -z "$2" ] || deps="$deps,$2"
  printf '{"name":"bench-app","version":"1.0.0","private":true,"dependencies":{%s}}\n' "$deps" >"$1/package.json"
  (cd "$1" && npm install --package-lock-only --ignore-scripts --no-audit --no-fund >/dev/null)
  # The host's CA bundle, read at run time: where egress goes through a TLS-inspecting proxy, npm in the
  # build must trust what the host trusts. Bind-mounted for the RUN only (not in the image, not a secret).
  cp /etc/ssl/certs/ca-certificates.crt "$1/host-ca.crt"
  cat >"$1/Dockerfile" <<EOF
FROM $node
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm --mount=type=bind,source=host-ca.crt,target=/tmp/host-ca.crt \\
    NODE_EXTRA_CA_CERTS=/tmp/host-ca.crt npm ci --no-audit --no-fund
EOF
}
debian_project() { # DIR PACKAGES
  mkdir -p "$1"
  cat >"$1/Dockerfile" <<EOF
FROM $debian
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target=/var/lib/apt,sharing=locked \\
    apt-get update && apt-get install -y --no-install-recommends $2
EOF
}

node_project "$work/node-v1" ''
node_project "$work/node-v2" '"uuid":"11.0.3"'
debian_project "$work/debian-v1" 'curl git make'
debian_project "$work/debian-v2" 'curl git make jq'

# BuildKit's default RUN network (dockerd's bridge) has no egress on some hosts: BUILDKIT_NETWORK=host then.
bknet=${BUILDKIT_NETWORK:+--network $BUILDKIT_NETWORK}
for p in ${BENCH_PROJECTS:-node debian}; do
  ref=$cachereg/bench/$p
  a=$work/state-$p-a
  if [[ " ${BENCH_BUILDERS:-kiln buildkit} " == *" kiln "* ]]; then
  log "$p: machine A (kiln), version 1, exports $ref:kiln with cache-mounts=true"
  measure "$p.kiln.A" "kiln_fetched $a $work/$p.kiln.A.log" env KILN_ROOT="$a" $kiln build --progress plain --cache-to "type=registry,ref=$ref:kiln,mode=max,cache-mounts=true" "$work/$p-v1"
  b1=$work/state-$p-b1 b2=$work/state-$p-b2
  measure "$p.kiln.B+cache" "kiln_fetched $b1 $work/$p.kiln.B+cache.log" env KILN_ROOT="$b1" $kiln build --progress plain --cache-from "type=registry,ref=$ref:kiln" "$work/$p-v2"
  measure "$p.kiln.B-cold" "kiln_fetched $b2 $work/$p.kiln.B-cold.log" env KILN_ROOT="$b2" $kiln build --progress plain "$work/$p-v2"

  fi
  [[ " ${BENCH_BUILDERS:-kiln buildkit} " == *" buildkit "* ]] || continue
  log "$p: BuildKit v0.25 (docker-sid): A exports $ref:buildkit; B is A's daemon after builder prune -af"
  docker-sid builder prune -af >/dev/null
  measure "$p.buildkit.A" buildkit_fetched docker-sid buildx build $bknet --progress plain --provenance=false --cache-to "type=registry,ref=$ref:buildkit,mode=max" "$work/$p-v1"
  docker-sid builder prune -af >/dev/null
  measure "$p.buildkit.B+cache" buildkit_fetched docker-sid buildx build $bknet --progress plain --provenance=false --cache-from "type=registry,ref=$ref:buildkit" "$work/$p-v2"
  docker-sid builder prune -af >/dev/null
  measure "$p.buildkit.B-cold" buildkit_fetched docker-sid buildx build $bknet --progress plain --provenance=false "$work/$p-v2"
done

printf '\n| run | seconds | bytes from the cache registry | bytes npm/apt fetched (cache mount growth) | host rx bytes (whole machine, noisy) |\n|---|---|---|---|---|\n'
awk -F'\t' '{ printf "| %s | %s | %\047d | %\047d | %\047d |\n", $1, $2, $3, $4, $5 }' "$results"
log "logs and states in $work"
