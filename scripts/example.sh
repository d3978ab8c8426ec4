#!/usr/bin/env bash
# The README's first command: set up, make the offline base images (busybox from Debian's busybox-static,
# a tcc toolchain image), serve them from a throwaway local registry (127.0.0.1, free port), then build
# examples/hello with kiln's embedded engine and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash test/fixtures/make-busybox.sh >/dev/null
bash test/fixtures/make-toolchain.sh >/dev/null

export KILN_ROOT=${KILN_ROOT:-$PWD/.kiln-example}
reg=$(mktemp -d)
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$reg" "$port" > "$reg/config.yml"
docker-registry serve "$reg/config.yml" >"$reg/log" 2>&1 & regpid=$!
trap 'status=$?; kill $regpid 2>/dev/null || true; wait $regpid 2>/dev/null || true; rm -rf "$reg"; exit $status' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
skopeo copy -q --all --dest-tls-verify=false oci:test/.fixtures/busybox/oci:latest "docker://127.0.0.1:$port/busybox:latest"
skopeo copy -q --dest-tls-verify=false oci:test/.fixtures/tcc/oci:latest "docker://127.0.0.1:$port/tcc:latest"

set -x
node bin/kiln.js build --build-arg "REGISTRY=127.0.0.1:$port" -t kiln-example/hello examples/hello
node bin/kiln.js run --rm kiln-example/hello
node bin/kiln.js build --build-arg "REGISTRY=127.0.0.1:$port" -t kiln-example/c-from-scratch examples/multi-stage
node bin/kiln.js run --rm kiln-example/c-from-scratch
node bin/kiln.js images
