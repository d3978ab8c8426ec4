// The reference builder: BuildKit embedded in Debian's dockerd (v0.8 era), driven with
// `DOCKER_BUILDKIT=1 /usr/bin/docker build`. Starts dockerd when it is not running (and stops it again),
// loads the busybox fixture into it, and unpacks images built by either builder the same way (OCI layout
// → umoci unpack) so their file trees can be compared.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxFixture } from './fixtures.js';

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
