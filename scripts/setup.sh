#!/usr/bin/env bash
# Set-up on a fresh Debian 12 machine (as root): the system packages kiln and its tests use, the npm
# dependencies, the TypeScript build and the native sandbox helper. Safe to run again: it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc + libseccomp-dev build the sandbox helper; docker-registry, skopeo, umoci, apache2-utils (htpasswd)
# serve and check images in tests; busybox-static (amd64 + arm64) makes the offline base image;
# qemu-user-static runs foreign platforms; runc/crun are the peers in the sandbox benchmark; docker.io is
# the reference builder (its embedded BuildKit) for differential tests and the benchmark.
# iproute2 + iptables make kiln's build network (bridge, NAT); openssh-client gives the ssh tests an agent;
# chromium is the browser the dashboard tests drive (playwright-core, no browser download); uidmap
# (newuidmap/newgidmap) maps a user's /etc/subuid and /etc/subgid ranges in rootless mode; debootstrap and
# curl make and publish the real-world corpus's Debian bases (bench/realworld/bases.sh).
packages=(gcc libc6-dev make libseccomp-dev docker-registry skopeo umoci apache2-utils busybox-static
  qemu-user-static runc crun iproute2 attr zstd bzip2 xz-utils docker.io iptables openssh-client chromium uidmap
  debootstrap curl)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
arm=0; dpkg --print-foreign-architectures | grep -qx arm64 || arm=1
if [ ${#missing[@]} -gt 0 ] || [ $arm = 1 ]; then
  [ $arm = 1 ] && dpkg --add-architecture arm64
  echo "setup: installing ${missing[*]:-(arm64 package lists)}" >&2
  apt-get update -o DPkg::Lock::Timeout=300 >/dev/null
  [ ${#missing[@]} -gt 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
fi

# The modern reference builder (dockerd 28.5 with BuildKit v0.25, buildx 0.29) for the differential suite
# (test/oracle): installed beside the system's docker when the shared peers folder sits next to the repo.
# Only install and start it: the script's own verify/bench steps expect a registry on localhost:5000, which
# the tests do not use (each starts its own registry).
if [ -f ../shared/peers/modern-buildkit.sh ]; then
  bash ../shared/peers/modern-buildkit.sh install
  bash ../shared/peers/modern-buildkit.sh start
  # That dockerd runs with --iptables=false --ip-masq=false, so its bridge gets no NAT and a RUN in
  # BuildKit v0.25 can reach nothing (DNS times out: EAI_AGAIN) while the system's docker0 and kiln0 are
  # masqueraded. Give its bridge the same masquerade rule, so both builders use a bridge with NAT.
  sid_net=$(ip -4 route show dev docker-sid0 proto kernel 2>/dev/null | awk '{print $1; exit}')
  if [ -n "$sid_net" ]; then
    rule=(POSTROUTING -s "$sid_net" ! -o docker-sid0 -m comment --comment kiln-peer:docker-sid0 -j MASQUERADE)
    iptables -t nat -C "${rule[@]}" 2>/dev/null || iptables -t nat -A "${rule[@]}"
    sysctl -qw net.ipv4.ip_forward=1
  fi
fi

# docker-registry's Debian package starts a registry on :5000 as a service; tests start their own.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm run build --silent
  node scripts/build-native.mjs
fi
