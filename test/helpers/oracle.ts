// The reference builder: BuildKit embedded in Debian's dockerd (v0.8 era), driven with
// `DOCKER_BUILDKIT=1 /usr/bin/docker build`. Starts dockerd when it is not running (and stops it again),
// loads the busybox fixture into it, and unpacks images built by either builder the same way (OCI layout
// → umoci unpack) so their file trees can be compared.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxFixture, repoRoot } from './fixtures.js';

const docker = '/usr/bin/docker';
export const ORACLE_BASE = 'kiln-oracle/busybox:latest';

function dockerUp(): boolean {
  try {
    execFileSync(docker, ['info'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

export async function startOracle(): Promise<{ stop(): Promise<void> }> {
  let daemon: ChildProcess | undefined;
  if (!dockerUp()) {
    daemon = spawn('dockerd', [], { stdio: 'ignore', detached: false });
    const deadline = Date.now() + 60_000;
    while (!dockerUp()) {
      if (daemon.exitCode !== null || Date.now() > deadline) throw new Error('dockerd did not start (install docker.io: scripts/setup.sh)');
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const work = mkdtempSync(join(tmpdir(), 'kiln-oracle-'));
  const archive = join(work, 'busybox.tar');
  execFileSync('skopeo', ['copy', '-q', `oci:${busyboxFixture().ociLayout}:latest`, `docker-archive:${archive}:${ORACLE_BASE}`]);
  execFileSync(docker, ['load', '-q', '-i', archive], { stdio: 'ignore' });
  return {
    async stop() {
      if (daemon && daemon.exitCode === null) {
        const exited = new Promise((r) => daemon!.once('exit', r));
        daemon.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/** Builds with the oracle; returns the path of a docker-archive of the image. */
export function oracleBuild(context: string, tag: string, out: string): string {
  execFileSync(docker, ['build', '-q', '--build-arg', `BASE=${ORACLE_BASE}`, '-t', tag, context], {
    env: { ...process.env, DOCKER_BUILDKIT: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const archive = join(out, `${tag.replace(/[^a-z0-9]/g, '_')}.tar`);
  execFileSync(docker, ['save', '-o', archive, tag]);
  return archive;
}

/** Unpacks an image archive (`docker-archive:` or `oci-archive:` transport) with umoci; returns the rootfs and the config. */
export function unpackArchive(transport: string, work: string): { rootfs: string; config: Record<string, any> } {
  const layout = join(work, 'layout');
  execFileSync('skopeo', ['copy', '-q', transport, `oci:${layout}:img`]);
  const bundle = join(work, 'bundle');
  execFileSync('umoci', ['unpack', '--image', `${layout}:img`, bundle], { stdio: 'ignore' });
  if (transport.startsWith('docker-archive:')) {
    // Converting to OCI drops Docker-only config fields (Healthcheck, Shell, OnBuild): read the original.
    const archive = transport.slice('docker-archive:'.length);
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', archive, 'manifest.json'], { encoding: 'utf8' }));
    const config = JSON.parse(execFileSync('tar', ['-xOf', archive, manifest[0].Config], { encoding: 'utf8' }));
    return { rootfs: join(bundle, 'rootfs'), config };
  }
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const blob = (d: string) => JSON.parse(readFileSync(join(layout, 'blobs/sha256', d.slice(7)), 'utf8'));
  const manifest = blob(index.manifests[0].digest);
  return { rootfs: join(bundle, 'rootfs'), config: blob(manifest.config.digest) };
}

export interface TreeEntry {
  type: string;
  mode: string;
  owner: string;
  content?: string;
}

/** What a user sees of a file tree: per path its type, permission bits, owner, and content or link target. */
export function fileTree(root: string): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
      const e: TreeEntry = { type, mode: (st.mode & 0o7777).toString(8), owner: `${st.uid}:${st.gid}` };
      if (type === 'symlink') e.content = readlinkSync(p);
      if (type === 'file') e.content = createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16);
      out.set(r, e);
      if (type === 'dir') walk(p, r);
    }
  };
  walk(root, '');
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The modern reference: BuildKit v0.25 inside dockerd 28.5, driven by buildx 0.29 as `docker-sid`
// (installed by ../shared/peers/modern-buildkit.sh, which scripts/setup.sh runs in CI).

export const MODERN_PEER = 'docker-sid';

export interface PeerResult {
  status: number;
  stdout: string;
  stderr: string;
}

function peerRunning(): boolean {
  try {
    execFileSync(MODERN_PEER, ['info'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether BuildKit v0.25 can be used. When it is missing, CI (CI=true) must fail loudly rather than pass
 * without comparing anything; a developer's machine gets a reason to print as the skip message.
 */
export function modernPeerStatus(): { ok: true } | { ok: false; reason: string } {
  let ok = peerRunning();
  if (!ok) {
    try {
      execFileSync('bash', [join(repoRoot, '..', 'shared', 'peers', 'modern-buildkit.sh')], { stdio: 'ignore', timeout: 600_000 });
      ok = peerRunning();
    } catch {
      ok = false;
    }
  }
  if (ok) return { ok: true };
  const reason = `skipped: ${MODERN_PEER} missing (BuildKit v0.25 reference; install it with bash ../shared/peers/modern-buildkit.sh)`;
  if (process.env.CI === 'true') throw new Error(`${MODERN_PEER} (BuildKit v0.25) is missing or not running under CI=true: the differential suite cannot run. scripts/setup.sh installs it from ../shared/peers/modern-buildkit.sh`);
  return { ok: false, reason };
}

/** One build with BuildKit v0.25 (buildx, docker driver). `extra` holds further buildx flags. */
export function modernBuild(context: string, extra: string[]): PeerResult {
  const r = spawnSync(MODERN_PEER, ['buildx', 'build', '--provenance=false', '--progress=plain', ...extra, context], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, BUILDX_NO_DEFAULT_ATTESTATIONS: '1' },
  });
  if (r.error) throw r.error;
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}
