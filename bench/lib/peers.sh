# Sourced by the bench scripts: a registry on 127.0.0.1:5000 holding the busybox fixture (the cases build
# FROM localhost:5000/busybox) and, when docker.io is installed, dockerd for the BuildKit peer. Stops the
# registry it started on exit.
bash test/fixtures/make-busybox.sh >/dev/null

bench_work=$(mktemp -d)
bench_cleanup() { [ -n "${regpid:-}" ] && kill "$regpid" 2>/dev/null; rm -rf "$bench_work"; }
trap bench_cleanup EXIT
if ! curl -sf http://127.0.0.1:5000/v2/ >/dev/null 2>&1; then
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:5000\n' "$bench_work" > "$bench_work/config.yml"
  docker-registry serve "$bench_work/config.yml" >"$bench_work/registry.log" 2>&1 & regpid=$!
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
