// The real-world corpus (bench/realworld/projects/, described by projects.json): building a project with
// kiln or BuildKit v0.25, comparing the two images as a user sees them, and starting an image to ask it
// something. Shared by test/realworld/corpus.test.ts and the bench runner bench/realworld/run.mjs.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { repoRoot } from '../helpers/fixtures.js';
import { kilnBin } from '../helpers/kiln.js';
import { fileTree, unpackArchive, MODERN_PEER, type TreeEntry } from '../helpers/oracle.js';

export const corpusDir = join(repoRoot, 'bench', 'realworld');
export const DEFAULT_REGISTRY = '127.0.0.1:5001';

export interface HttpCheck { kind: 'http'; port: number; path: string; expect: string }
export interface CliCheck { kind: 'cli'; args: string[]; expect: string }
export interface Project {
  name: string;
  kinds: string[];
  target?: string;
  check: HttpCheck | CliCheck;
  change: { file: string; comment: string };
  network: ('apt' | 'npm')[];
  ignoredBulkMB?: number;
  ignoredDir?: string;
}

export function loadProjects(): Project[] {
  return JSON.parse(readFileSync(join(corpusDir, 'projects.json'), 'utf8')).projects;
}

/**
 * A private copy of the project's context (builds and the one-file change never touch the repo); a project
 * with `ignoredBulkMB` gets that much data under its .dockerignore'd folder, as a developer's tree has.
 */
export function prepareContext(p: Project, work: string): string {
  const dir = join(work, p.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  execFileSync('cp', ['-a', join(corpusDir, 'projects', p.name), dir]);
  if (p.ignoredBulkMB) {
    const bulk = join(dir, p.ignoredDir!, 'kiln-rw-ignored-bulk');
    mkdirSync(bulk, { recursive: true });
    const chunk = Buffer.alloc(1 << 20, 'k');
    // many small packages' worth of files, like a real node_modules
    for (let i = 0; i < p.ignoredBulkMB * 8; i++) writeFileSync(join(bulk, `f${i}.js`), chunk.subarray(0, 1 << 17));
  }
  return dir;
}

/** The one-source-file change: a comment appended to the project's change file. */
export function changeOneFile(p: Project, context: string, n: number | string): void {
  appendFileSync(join(context, p.change.file), `\n${p.change.comment} kiln-rw change ${n}\n`);
}

export function buildArgs(p: Project, registry: string): string[] {
  return [...(p.target ? ['--target', p.target] : []), '--build-arg', `KILN_RW_REGISTRY=${registry}`];
}

export interface Timed { status: number; stdout: string; stderr: string; seconds: number }

/** One builder command line: what the sync (bench: one build at a time) and async (test) runners start. */
interface Invocation { cmd: string; args: string[]; env: NodeJS.ProcessEnv }

function kilnInvocation(root: string, p: Project, context: string, registry: string, extra: string[]): Invocation {
  return { cmd: process.execPath, args: [kilnBin, 'build', '--progress', 'plain', ...buildArgs(p, registry), ...extra, context], env: { ...process.env, KILN_ROOT: root } };
}

function peerInvocation(p: Project, context: string, registry: string, extra: string[]): Invocation {
  return {
    cmd: MODERN_PEER,
    args: ['buildx', 'build', '--provenance=false', '--progress=plain', ...buildArgs(p, registry), ...extra, context],
    env: { ...process.env, BUILDX_NO_DEFAULT_ATTESTATIONS: '1' },
  };
}

function runTimed(inv: Invocation, timeoutMs: number): Timed {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(inv.cmd, inv.args, { env: inv.env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 256 << 20 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.error) throw r.error;
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr, seconds };
}

/** The same, without blocking: the corpus test runs kiln's and BuildKit's build of a project side by side. */
function runTimedAsync(inv: Invocation, timeoutMs: number): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(inv.cmd, inv.args, { env: inv.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const stderr = Buffer.concat(err).toString('utf8') + (signal ? `\n(killed by ${signal} after ${seconds.toFixed(0)} s)` : '');
      resolve({ status: code ?? 128, stdout: Buffer.concat(out).toString('utf8'), stderr, seconds });
    });
  });
}

export const kilnBuild = (root: string, p: Project, context: string, registry: string, extra: string[], timeoutMs = 900_000): Timed =>
  runTimed(kilnInvocation(root, p, context, registry, extra), timeoutMs);
export const kilnBuildAsync = (root: string, p: Project, context: string, registry: string, extra: string[], timeoutMs = 900_000): Promise<Timed> =>
  runTimedAsync(kilnInvocation(root, p, context, registry, extra), timeoutMs);
export const peerBuild = (p: Project, context: string, registry: string, extra: string[], timeoutMs = 900_000): Timed =>
  runTimed(peerInvocation(p, context, registry, extra), timeoutMs);
export const peerBuildAsync = (p: Project, context: string, registry: string, extra: string[], timeoutMs = 900_000): Promise<Timed> =>
  runTimedAsync(peerInvocation(p, context, registry, extra), timeoutMs);

/** The system's docker (Debian 12's dockerd 20.10, BuildKit v0.8): the older reference in the bench. */
export const LEGACY_DOCKER = '/usr/bin/docker';

/** Starts the system's dockerd when it is installed and not answering; true when it answers. */
export function legacyPeerReady(): boolean {
  const answers = () => spawnSync(LEGACY_DOCKER, ['info'], { stdio: 'ignore', timeout: 20_000 }).status === 0;
  if (answers()) return true;
  if (spawnSync('sh', ['-c', 'command -v dockerd'], { stdio: 'ignore' }).status !== 0) return false;
  spawnSync('sh', ['-c', '(setsid dockerd >/var/log/kiln-bench-dockerd.log 2>&1 &)']);
  for (let i = 0; i < 100 && !answers(); i++) spawnSync('sleep', ['0.2']);
  return answers();
}

/**
 * One build with BuildKit v0.8 (`DOCKER_BUILDKIT=1 docker build`, Docker 20.10). Its exporter has no OCI
 * tarball, so `extra` is usually `-t name`: the image goes into dockerd's own store, its cheapest path.
 */
export function legacyPeerBuild(p: Project, context: string, registry: string, extra: string[], timeoutMs = 900_000): Timed {
  const args = ['build', '--progress=plain', ...buildArgs(p, registry), ...extra, context];
  return runTimed({ cmd: LEGACY_DOCKER, args, env: { ...process.env, DOCKER_BUILDKIT: '1' } }, timeoutMs);
}

/**
 * Paths whose content records when or in which order things ran (logs, caches, lock files, apt's
 * downloaded indexes): the same in neither two BuildKit builds nor two kiln builds, so only their type,
 * mode and owner are compared.
 */
const VOLATILE = [
  /^var\/log\//,
  /^var\/cache\/(ldconfig|debconf|apt)\//,
  /^var\/lib\/apt\/lists\//,
  /^var\/lib\/dpkg\/[^/]*-old$/,
  /^root\/\.npm\//,
  /^root\/\.config\/configstore\//, // update-notifier's last-check time (nodemon's postinstall)
  /^root\/\.cache\//,
  /^tmp\//,
  /\/__pycache__\//,
  /\.pyc$/,
];
export const isVolatile = (path: string): boolean => VOLATILE.some((re) => re.test(path));

const CONFIG_KEYS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck', 'Shell'];

export interface Unpacked { rootfs: string; config: Record<string, any>; tree: Map<string, TreeEntry> }

export function unpackOci(archive: string, work: string): Unpacked {
  mkdirSync(work, { recursive: true });
  const { rootfs, config } = unpackArchive(`oci-archive:${archive}`, work);
  return { rootfs, config, tree: fileTree(rootfs) };
}

/** What differs between BuildKit's image and kiln's: files (type, mode, owner, content), config, layer count. */
export function imageDifferences(peer: Unpacked, ours: Unpacked): string[] {
  const diffs: string[] = [];
  const strip = (path: string, e: TreeEntry) => (isVolatile(path) ? { ...e, content: undefined } : e);
  for (const [path, e] of peer.tree) {
    const h = ours.tree.get(path);
    if (!h) {
      if (!isVolatile(path)) diffs.push(`missing in kiln: ${path} ${JSON.stringify(e)}`);
    } else if (JSON.stringify(strip(path, h)) !== JSON.stringify(strip(path, e))) diffs.push(`differs: ${path} buildkit=${JSON.stringify(e)} kiln=${JSON.stringify(h)}`);
  }
  for (const path of ours.tree.keys()) if (!peer.tree.has(path) && !isVolatile(path)) diffs.push(`only in kiln: ${path}`);
  for (const k of CONFIG_KEYS) {
    const a = JSON.stringify(peer.config.config?.[k] ?? null);
    const b = JSON.stringify(ours.config.config?.[k] ?? null);
    if (a !== b) diffs.push(`config.${k}: buildkit=${a} kiln=${b}`);
  }
  for (const k of ['os', 'architecture']) if (peer.config[k] !== ours.config[k]) diffs.push(`${k}: buildkit=${peer.config[k]} kiln=${ours.config[k]}`);
  const layers = (c: Record<string, any>) => c.rootfs.diff_ids.length;
  if (layers(peer.config) !== layers(ours.config)) diffs.push(`layer count: buildkit=${layers(peer.config)} kiln=${layers(ours.config)}`);
  return diffs;
}

export interface CheckResult { ok: boolean; output: string; seconds: number }

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Starts `image` (in kiln's store under `root`) with `kiln run` and asks it what the project's check says,
 * within `timeoutMs`. The run happens in a network and pid namespace of its own (unshare): the server's
 * port is the container's own 127.0.0.1, never the host's, and everything started ends with the check.
 */
export function runCheck(root: string, image: string, p: Project, timeoutMs = 60_000): CheckResult {
  const kiln = `${sh(process.execPath)} ${sh(kilnBin)}`;
  const log = join(tmpdir(), `kiln-rw-run-${process.pid}-${Date.now()}.log`);
  let script: string;
  if (p.check.kind === 'http') {
    const url = `http://127.0.0.1:${p.check.port}${p.check.path}`;
    script = [
      'ip link set lo up',
      `${kiln} run --rm ${sh(image)} >${sh(log)} 2>&1 &`,
      `end=$(( $(date +%s) + ${Math.ceil(timeoutMs / 1000)} ))`,
      `while [ $(date +%s) -lt $end ]; do out=$(curl -sf -m 2 ${sh(url)}) && { printf '%s' "$out"; exit 0; }; sleep 0.2; done`,
      'echo "no answer; kiln run said:"; cat ${sh(log)}; exit 1',
    ].join('\n');
  } else {
    script = `ip link set lo up\nexec ${kiln} run --rm ${sh(image)} ${p.check.args.map(sh).join(' ')}`;
  }
  const t0 = process.hrtime.bigint();
  const r = spawnSync('unshare', ['--net', '--pid', '--fork', '--mount-proc', '--kill-child', 'sh', '-c', script], {
    env: { ...process.env, KILN_ROOT: root },
    encoding: 'utf8',
    timeout: timeoutMs + 30_000,
    killSignal: 'SIGKILL',
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  rmSync(log, { force: true });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return { ok: r.status === 0 && output.includes(p.check.expect), output: output.slice(-2000), seconds };
}

/** The host's Debian archive (bases.sh reads it from the apt sources) and whether it answers. */
export function debianArchive(): { url: string; reachable: boolean } {
  const url = execFileSync('bash', [join(corpusDir, 'bases.sh'), '--mirror'], { encoding: 'utf8' }).trim();
  return { url, reachable: answers(`${url.replace(/\/$/, '')}/dists/bookworm/Release`) };
}

export const npmRegistryReachable = (): boolean => answers('https://registry.npmjs.org/express');

function answers(url: string): boolean {
  const r = spawnSync('curl', ['-sf', '-o', '/dev/null', '-m', '10', url]);
  return r.status === 0;
}

/** Whether bases.sh has all its base images cached (then it needs no Debian archive to publish them). */
export function basesCached(): boolean {
  const cache = process.env.KILN_BENCH_CACHE ?? '/var/cache/kiln-bench';
  return ['debian', 'node', 'golang', 'python'].every((b) => existsSync(join(cache, `${b}-bookworm.rootfs.tar`)));
}

/** Makes (once, cached) and publishes the base images; returns their names. */
export function ensureBases(registry: string): string {
  return execFileSync('bash', [join(corpusDir, 'bases.sh'), registry], { encoding: 'utf8', timeout: 1_800_000, stdio: ['ignore', 'pipe', 'inherit'] });
}
