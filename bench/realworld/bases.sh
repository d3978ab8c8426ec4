#!/usr/bin/env bash
# Makes the corpus base images without the internet beyond the Debian archive this host already uses:
#   <registry>/kiln-rw/debian:bookworm  Debian 12 minbase + ca-certificates (debootstrap)
#   <registry>/kiln-rw/node:bookworm    the same + nodejs and npm from Debian's archive
#   <registry>/kiln-rw/golang:bookworm  the same + golang-go; kiln-rw/python: python3, pip, python3-flask
# The mirror is read from this host's apt sources at run time (never stored in the repo); the images'
# own apt sources point at that same mirror. Each image is pushed to a registry on 127.0.0.1 (started
# here, left running, when nothing answers there) and loaded into docker-sid (the BuildKit v0.25 peer)
# under the same name, so one Dockerfile FROM line serves both builders.
#
# Usage: bench/realworld/bases.sh [REGISTRY] | --mirror   (default $KILN_RW_REGISTRY or 127.0.0.1:5001; never :5000,
#        the bench runner's). Cache: $KILN_BENCH_CACHE or /var/cache/kiln-bench; a re-run takes seconds.
# Prints "<name> <manifest digest>" per image. Needs root (debootstrap, chroot).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
registry=${KILN_RW_REGISTRY:-127.0.0.1:5001}; [ "${1:-}" = --mirror ] || registry=${1:-$registry}
cache=${KILN_BENCH_CACHE:-/var/cache/kiln-bench}
suite=bookworm
mkdir -p "$cache"
log() { printf 'bases: %s\n' "$*" >&2; }

# --- the host's Debian archive: first deb source whose suite is bookworm (deb822 or one-line form) ---
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      /^[[:space:]]*$/ { if (uris != "" && ok && deb) { print uris; done=1; exit } uris=""; ok=0; deb=0; next }
      /^Types:/ { for (i=2;i<=NF;i++) if ($i=="deb") deb=1 }
      /^URIs:/ { uris=$2 }
      /^Suites:/ { for (i=2;i<=NF;i++) if ($i==suite) ok=1 }
      END { if (!done && uris != "" && ok && deb) print uris }' "$f" | head -1
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk -v suite="$suite" '$1=="deb" { n=2; if ($2 ~ /^\[/) { while ($n !~ /\]$/) n++; n++ } if ($(n+1)==suite) { print $n; exit } }' || true
}
host_security_mirror() {
  cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -v '^[[:space:]]*#' |
    grep -Eo 'https?://[^ ]*debian-security[^ ]*' | head -1 || true
}
mirror=$(host_mirror | head -1 || true)
[ -n "$mirror" ] || { echo "bases: no deb source for $suite in /etc/apt/sources.list{,.d}" >&2; exit 1; }
security=$(host_security_mirror)
# --mirror: only print the archive's URL (the corpus test probes it before its network legs)
if [ "${1:-}" = --mirror ]; then echo "$mirror"; exit 0; fi
log "Debian archive from this host's apt sources: $mirror${security:+ (security: $security)}"

image_sources() {
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" "$suite" "$suite"
  [ -z "$security" ] || printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$security" "$suite"
}

# Rootfs tarball as an image layer: no device nodes, /proc, /sys, apt lists or .debs; numeric owners, sorted.
tar_rootfs() {
  local dir=$1 out=$2
  # never reach through a mount left behind (in_chroot's are private to its namespace)
  if mountpoint -q "$dir/dev" || mountpoint -q "$dir/proc"; then echo "bases: $dir still has mounts" >&2; exit 1; fi
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
    "$dir"/var/log/apt/* "$dir"/var/log/dpkg.log "$dir"/var/log/bootstrap.log "$dir"/dev/* "$dir"/proc/* "$dir"/sys/* \
    "$dir"/etc/resolv.conf "$dir"/etc/hostname "$dir"/root/.cache
  mkdir -p "$dir"/var/lib/apt/lists/partial
  tar --numeric-owner --sort=name --xattrs --xattrs-include='security.capability' -C "$dir" -cf "$out.tmp" . && mv "$out.tmp" "$out"
}

with_resolv() { cp /etc/resolv.conf "$1/etc/resolv.conf"; }
in_chroot() { # a private mount namespace: /proc and /dev go away with it
  local dir=$1; shift
  unshare --mount --propagation private --fork sh -c \
    'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && exec chroot "$0" "$@"' "$dir" "$@"
}

# Certificate authorities this host added to its own trust (regular files among /etc/ssl/certs' package
# symlinks, or /usr/local/share/ca-certificates): a TLS-inspecting proxy's CA must be trusted inside the
# images too, or npm's HTTPS to the registry fails ("self-signed certificate in certificate chain").
host_cas() { # every trusted certificate that no Debian package ships (those live in /usr/share/ca-certificates)
  local f t
  for f in /etc/ssl/certs/*.pem /usr/local/share/ca-certificates/*.crt; do
    t=$(readlink -f "$f") && [ -f "$t" ] || continue
    case $t in /usr/share/ca-certificates/*) continue;; esac
    echo "$f"
  done | sort -u
  return 0
}
add_host_cas() {
  local dir=$1 f n=0
  for f in $(host_cas); do
    cp -L "$f" "$dir/usr/local/share/ca-certificates/kiln-rw-host-$(basename "${f%.*}").crt"; n=$((n + 1))
  done
  [ $n -eq 0 ] || { in_chroot "$dir" update-ca-certificates >/dev/null && log "added $n CA certificate(s) this host trusts"; }
}

debian_rootfs() {
  local out=$cache/debian-$suite.rootfs.tar
  [ -s "$out" ] && { echo "$out"; return; }
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >&2
  local dir=$cache/work/debian-$suite
  rm -rf "$dir"; mkdir -p "$dir" "$cache/debs"
  log "debootstrap $suite (minbase + ca-certificates) from $mirror; a few minutes, once"
  debootstrap --variant=minbase --include=ca-certificates --cache-dir="$cache/debs" "$suite" "$dir" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  rm -f "$dir"/etc/apt/sources.list; image_sources >"$dir"/etc/apt/sources.list.d/debian.sources
  add_host_cas "$dir"
  tar_rootfs "$dir" "$out"; rm -rf "$dir"
  echo "$out"
}

# A Debian base plus packages from Debian's archive, the way the official language images are made:
# derived_rootfs NAME "PACKAGES" [SHELL SNIPPET run in the chroot afterwards]
derived_rootfs() {
  local name=$1 packages=$2 after=${3:-true}
  local out=$cache/$name-$suite.rootfs.tar
  [ -s "$out" ] && { echo "$out"; return; }
  local base; base=$(debian_rootfs)
  local dir=$cache/work/$name-$suite
  rm -rf "$dir"; mkdir -p "$dir"; tar -C "$dir" -xf "$base"
  with_resolv "$dir"
  log "apt-get install $packages (Debian's) into the $name base; once"
  # --force-unsafe-io: dpkg skips its fsync per unpacked file (hundreds of packages for node); the tree is
  # tarred right after, so a crash only means making it again
  in_chroot "$dir" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-unsafe-io $packages && apt-get clean && $after" \
    >"$cache/$name-apt.log" 2>&1 || { tail -20 "$cache/$name-apt.log" >&2; exit 1; }
  tar_rootfs "$dir" "$out"; rm -rf "$dir"
  echo "$out"
}

ensure_registry() {
  curl -sf "http://$registry/v2/" >/dev/null 2>&1 && return
  case $registry in 127.0.0.1:*|localhost:*) ;; *) echo "bases: no registry answers at $registry" >&2; exit 1;; esac
  local port=${registry##*:}
  local dir=$cache/registry-$port
  mkdir -p "$dir"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' "$dir" "$port" >"$dir/config.yml"
  setsid nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  for _ in $(seq 100); do curl -sf "http://$registry/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf "http://$registry/v2/" >/dev/null || { echo "bases: registry on $registry did not start (see $dir/registry.log)" >&2; exit 1; }
  log "started a registry on $registry (pid $(cat "$dir/pid"), data in $dir; left running)"
}

# oci-archive from a rootfs tarball (cached), pushed to the registry and loaded into docker-sid.
publish() {
  local name=$1 rootfs=$2; shift 2
  local ref=$registry/kiln-rw/$name:$suite archive=$cache/$name-$suite.oci.tar
  if [ ! -s "$archive" ] || [ "$archive" -ot "$rootfs" ] || [ "$*" != "$(cat "$archive.args" 2>/dev/null)" ]; then
    python3 "$here/oci-from-rootfs.py" "$rootfs" "$archive.tmp" "$suite" "$@" >/dev/null && mv "$archive.tmp" "$archive"
    printf '%s' "$*" >"$archive.args"
  fi
  skopeo copy -q --dest-tls-verify=false "oci-archive:$archive:$suite" "docker://$ref"
  local digest; digest=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$ref")
  if command -v docker-sid >/dev/null && docker-sid info >/dev/null 2>&1; then
    # docker-sid stores its own manifest for a loaded archive: remember its id for this archive.
    local have; have=$(docker-sid image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)
    if [ -z "$have" ] || [ "$have" != "$(cat "$archive.docker-id" 2>/dev/null)" ] || [ "$archive.docker-id" -ot "$archive" ]; then
      rm -f "$archive.docker.tar"
      skopeo copy -q "oci-archive:$archive:$suite" "docker-archive:$archive.docker.tar:$ref"
      docker-sid load -q -i "$archive.docker.tar" >/dev/null; rm -f "$archive.docker.tar"
      docker-sid image inspect --format '{{.Id}}' "$ref" >"$archive.docker-id"
    fi
  fi
  echo "$ref $digest"
}

ensure_registry
publish debian "$(debian_rootfs)"
# Node reads its own CA list, not the system's: point it at the system bundle when this host added CAs.
node_env=(); [ -z "$(host_cas)" ] || node_env=(NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
publish node "$(derived_rootfs node 'nodejs npm')" "${node_env[@]}" --cmd '["node"]'
# Stand-ins for the official golang and python images (Debian's Go 1.19; Debian's python3 with Flask
# from python3-flask, and pip allowed to see it, as in the official image which is not "externally managed").
publish golang "$(derived_rootfs golang 'golang-go git')" GOPATH=/go
publish python "$(derived_rootfs python 'python3 python3-pip python3-flask' 'rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED')" --cmd '["python3"]'
