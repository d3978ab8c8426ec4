#!/usr/bin/env bash
# The README's first command: set up, make the offline busybox base image (from Debian's busybox-static),
# serve it from a throwaway local registry (127.0.0.1, free port), and run it with kiln's embedded engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash test/fixtures/make-busybox.sh >/dev/null

export KILN_ROOT=${KILN_ROOT:-$PWD/.kiln-example}
reg=$(mktemp -d)
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$reg" "$port" > "$reg/config.yml"
docker-registry serve "$reg/config.yml" >"$reg/log" 2>&1 & regpid=$!
trap 'kill $regpid 2>/dev/null; wait $regpid 2>/dev/null; rm -rf "$reg"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
skopeo copy -q --all --dest-tls-verify=false oci:test/.fixtures/busybox/oci:latest "docker://127.0.0.1:$port/busybox:latest"

set -x
node bin/kiln.js pull "127.0.0.1:$port/busybox:latest"
node bin/kiln.js run --rm "127.0.0.1:$port/busybox:latest" sh -c 'echo "hello from kiln: $(uname -m), pid $$, host $(hostname)"'
node bin/kiln.js images
