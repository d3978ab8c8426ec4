#!/usr/bin/env bash
# Starts a registry for the bench's caches on 127.0.0.1:$1 with an access log (bytes per request), in $2.
# Prints its pid. The access log is $2/access.log.
set -euo pipefail
port=$1 dir=$2
mkdir -p "$dir/data"
cat >"$dir/config.yml" <<YML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$dir/config.yml" >"$dir/access.log" 2>"$dir/registry.log" &
echo $!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && exit 0; sleep 0.1; done
echo "registry on :$port did not start" >&2; exit 1
