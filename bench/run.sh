#!/usr/bin/env bash
# kiln vs its peers on ../shared/bench/cases, timed in one run: starts a registry on 127.0.0.1:5000 with
# the busybox fixture (the cases build FROM localhost:5000/busybox), starts dockerd for the BuildKit peer
# if docker.io is installed, then runs ../shared/bench/run.py. Extra arguments go to run.py
# (e.g. --cases hello,parallel-stages --reps 3).
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
shared=${KILN_SHARED:-$here/../shared}
bash test/fixtures/make-busybox.sh >/dev/null

work=$(mktemp -d)
cleanup() { [ -n "${regpid:-}" ] && kill "$regpid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
if ! curl -sf http://127.0.0.1:5000/v2/ >/dev/null 2>&1; then
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:5000\n' "$work" > "$work/config.yml"
  docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 & regpid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:5000/v2/ >/dev/null && break; sleep 0.1; done
fi
skopeo copy -q --all --dest-tls-verify=false oci:test/.fixtures/busybox/oci:latest docker://localhost:5000/busybox:latest

if command -v dockerd >/dev/null && ! /usr/bin/docker info >/dev/null 2>&1; then
  (dockerd >/var/log/kiln-bench-dockerd.log 2>&1 &)
  for _ in $(seq 100); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 0.2; done
fi
if /usr/bin/docker info >/dev/null 2>&1; then
  # dockerd reaches the registry through its own allow-list of insecure registries: localhost is on it.
  /usr/bin/docker pull -q localhost:5000/busybox >/dev/null
fi

export KILN="node $here/bin/kiln.js"
export KILN_ROOT=${KILN_ROOT:-/var/tmp/kiln-bench/kiln-root}
python3 "$shared/bench/run.py" "$@"
