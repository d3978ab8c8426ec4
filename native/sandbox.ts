// The TypeScript side of the sandbox: spawns native/build/kiln-sandbox per container, hands it the run
// spec on fd 3, reads its status from fd 4, and turns that into a SandboxResult. Node itself never
// creates namespaces (see docs/design.md, "Native helper, not an addon").
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { bridgeConfig, ensureBridge, type BridgeConfig } from './network/bridge.js';
import { inUserNamespace } from './userns.js';

/** A mount added to the container, besides the rootfs, /proc, /dev and /sys. */
export type SandboxMount =
  /** `source` is a host path; or, with `root`, a path inside root resolved there by the helper (openat2
   * RESOLVE_IN_ROOT): a symlink in the tree (`hostroot -> /`) stays inside root, never reaching the host. */
  | { type: 'bind'; source: string; root?: string; target: string; readonly?: boolean }
  | { type: 'tmpfs'; target: string; sizeBytes?: number; mode?: number; readonly?: boolean }
  /** Other layers merged (topmost first) and mounted at target; only `subpath` of the merged tree when
   * given. Read-only, or writable into a throwaway upper whose writes are discarded. */
  | { type: 'overlay'; lowerdirs: string[]; subpath?: string; target: string; readonly?: boolean };

/** The run spec the helper reads (one JSON line on fd 3). Paths are absolute host paths, targets absolute
 * container paths. */
export interface SandboxSpec {
  rootfs: {
    /** Layer directories in overlay form (whiteouts as 0/0 char devices, opaque dirs by xattr), topmost first. */
    lowerdirs: string[];
    /** Receives exactly the process's changes; needs workdir on the same filesystem. Omit both for a
     * throwaway upper on tmpfs. */
    upperdir?: string;
    workdir?: string;
    /** Read-only root with no upper at all (a single lowerdir is bind-mounted read-only). */
    readonly?: boolean;
  };
  /** The command; args[0] without a slash is looked up in the PATH from env. */
  args: string[];
  /** KEY=value entries, the process's whole environment. */
  env?: string[];
  /** Working directory, created (as root, like runc) when missing. Default "/". */
  cwd?: string;
  user?: { uid: number; gid: number; additionalGids?: number[] };
  /** Default "kiln-sandbox". */
  hostname?: string;
  /** 'none': a new network namespace with only lo; 'host': the host's network; 'bridge': a new network
   * namespace with eth0 on kiln's bridge (an address leased from its pool, default route, NAT out). Default 'none'. */
  network?: 'none' | 'host' | 'bridge';
  /** For 'bridge': which bridge; filled from native/network/bridge.ts (which also creates it) when omitted. */
  bridge?: BridgeConfig;
  mounts?: SandboxMount[];
  limits?: { memoryBytes?: number; pids?: number; cpuShares?: number; cpuQuotaUs?: number; cpuPeriodUs?: number };
  /** A cgroup shared by the sandboxes of one build (under the helper's own cgroup, made on first use and
   * removed by the last sandbox to leave it), with the build's limits; this sandbox's cgroup goes inside. */
  buildCgroup?: { name: string; limits?: SandboxSpec['limits'] };
  /** Allocate a pty in the container as its stdin/stdout/stderr (relayed by the helper). */
  tty?: boolean;
  /** All capabilities, no seccomp, no masked paths, writable /sys (RUN --security=insecure). */
  privileged?: boolean;
  /** pid 1 is a tiny reaping init that runs the command as its child and passes signals on (docker run --init). */
  init?: boolean;
  /** Set no_new_privs (docker's --security-opt no-new-privileges). Off by default, as in docker run and
   * BuildKit's RUN: setuid binaries such as sudo work for a non-root USER. */
  noNewPrivileges?: boolean;
}

export interface SandboxResult {
  /** The process's exit code; 128+n when killed by signal n; 126/127 when it could not be executed. */
  exitCode: number;
  /** e.g. "SIGKILL" when the process was killed by a signal. */
  signal?: string;
  /** The memory limit made the kernel kill a process in the container. */
  oomKilled: boolean;
  /** Why the command could not be executed, docker-style (`exec: "foo": executable file not found in $PATH`). */
  execError?: string;
}

export interface RunSandboxOptions {
  /** 'inherit' for `kiln run`; 'pipe' for RUN steps (output via onOutput). Default 'pipe'. */
  stdio?: 'inherit' | 'pipe';
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  /** With 'pipe': the container's stdin (otherwise it reads end-of-file). */
  stdin?: NodeJS.ReadableStream | Buffer;
  /** Abort kills every process of the container, cleans up, and rejects with an AbortError. */
  signal?: AbortSignal;
  /** Signals this process receives that are passed on to the container (`kiln run`, like docker's sig-proxy).
   * The helper then ignores copies that reach it directly from a process-group signal. */
  forwardSignals?: NodeJS.Signals[];
}

/** The sandbox could not be set up (bad spec, missing layer dir, cgroup failure...): one line. */
export class SandboxError extends Error {
  readonly userFacing = true;
  override name = 'SandboxError';
}

/** The run was aborted through its AbortSignal; the container is gone. */
export class SandboxAbortedError extends Error {
  override name = 'AbortError';
}

interface HelperStatus {
  exitCode: number;
  oomKilled: boolean;
  aborted: boolean;
  signal?: string;
  execError?: string;
  setupError?: string;
}

/** Absolute path of the helper binary (built by scripts/build-native.mjs). */
export function sandboxHelperPath(): string {
  // Works from both native/sandbox.ts and dist/native/sandbox.js.
  const candidates = ['../build/kiln-sandbox', '../../native/build/kiln-sandbox'];
  for (const c of candidates) {
    const p = fileURLToPath(new URL(c, import.meta.url));
    if (existsSync(p)) return p;
  }
  return fileURLToPath(new URL('../../native/build/kiln-sandbox', import.meta.url));
}

function checkSpec(spec: SandboxSpec): void {
  const paths = [...spec.rootfs.lowerdirs, spec.rootfs.upperdir, spec.rootfs.workdir];
  for (const m of spec.mounts ?? []) {
    if (m.type === 'bind') paths.push(m.root ?? m.source);
    if (m.type === 'overlay') paths.push(...m.lowerdirs);
  }
  for (const p of paths) if (p !== undefined && !isAbsolute(p)) throw new SandboxError(`sandbox: host path ${p} must be absolute`);
  if (spec.args.length === 0) throw new SandboxError('sandbox: no command to run (args is empty)');
}

/** True in kiln's rootless mode: this process is in a user namespace (made by native/build/kiln-userns). */
export const rootlessSandbox: boolean = inUserNamespace;

const warned = new Set<string>();
function warnOnce(key: string, text: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  process.stderr.write(`kiln: warning: ${text}\n`);
}

/** Rootless mode has no cgroups and no bridge: limits are dropped and the bridge becomes the host's
 * network (the user's own network access), each with a one-time warning naming what is not done. */
function rootlessSpec(spec: SandboxSpec): SandboxSpec {
  const limits = { ...spec.limits, ...spec.buildCgroup?.limits };
  const names = Object.entries(limits).filter(([, v]) => v !== undefined && v > 0).map(([k]) => k);
  if (names.length) {
    const what = [...new Set(names.map((n) => (n.startsWith('cpu') ? 'cpu' : n === 'memoryBytes' ? 'memory' : n)))].join(', ');
    warnOnce('limits', `rootless mode: resource limits are not enforced (${what}): no cgroup delegation for unprivileged users`);
  }
  if (spec.network === 'bridge') warnOnce('network', 'rootless mode: no bridge network (it needs root); RUN steps use the host network');
  const { limits: _l, buildCgroup: _b, bridge: _n, ...rest } = spec;
  return { ...rest, network: spec.network === 'bridge' ? 'host' : spec.network };
}

export async function runSandbox(spec: SandboxSpec, opts: RunSandboxOptions = {}): Promise<SandboxResult> {
  if (rootlessSandbox) return runHelper(rootlessSpec(spec), opts);
  if (spec.network === 'bridge' && !spec.bridge) spec = { ...spec, bridge: await ensureBridge(bridgeConfig(), resetNetworkPool) };
  return runHelper(spec, opts);
}

function runHelper(spec: SandboxSpec, opts: RunSandboxOptions): Promise<SandboxResult> {
  const helper = sandboxHelperPath();
  if (!existsSync(helper)) {
    return Promise.reject(new SandboxError(`sandbox helper ${helper} is missing: run npm install (needs gcc and libseccomp-dev)`));
  }
  try {
    checkSpec(spec);
  } catch (e) {
    return Promise.reject(e);
  }
  if (opts.signal?.aborted) return Promise.reject(new SandboxAbortedError('sandbox run aborted before it started', { cause: opts.signal.reason }));
  const inherit = opts.stdio === 'inherit';
  const child = spawn(helper, [], {
    stdio: [inherit ? 'inherit' : 'pipe', inherit ? 'inherit' : 'pipe', inherit ? 'inherit' : 'pipe', 'pipe', 'pipe'],
  });
  const control = child.stdio[3] as Writable;
  const statusStream = child.stdio[4] as Readable;
  // The helper treats end-of-file (or any byte) on fd 3 after the spec as "abort", so fd 3 stays open until
  // the helper exits; if this process dies, the kernel closes it and the container goes with it.
  control.on('error', () => {});
  // A proxying parent tells the helper to take those signals from it alone (see forwardSignals).
  const wire = opts.forwardSignals?.length ? { ...spec, signalProxy: true } : spec;
  control.write(JSON.stringify(wire) + '\n');

  if (!inherit) {
    child.stdout!.on('data', (c: Buffer) => opts.onOutput?.('stdout', c));
    child.stderr!.on('data', (c: Buffer) => opts.onOutput?.('stderr', c));
    const stdin = child.stdin!;
    stdin.on('error', () => {}); // the container may exit without reading its input
    if (Buffer.isBuffer(opts.stdin)) stdin.end(opts.stdin);
    else if (opts.stdin) (opts.stdin as Readable).pipe(stdin);
    else stdin.end();
  }

  const statusChunks: Buffer[] = [];
  statusStream.on('data', (c: Buffer) => statusChunks.push(c));
  const statusDone = new Promise<void>((resolve) => statusStream.on('close', resolve).on('end', resolve));

  let aborted = false;
  const onAbort = () => {
    aborted = true;
    control.destroy(); // EOF on fd 3: the helper SIGKILLs the container and cleans up
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // Passed on as a byte on fd 3, not as a signal: a signal would merge with the copy a process-group
  // signal delivers to the helper directly (two pending signals of one number are one).
  const forward = (sig: NodeJS.Signals) => {
    if (!aborted && child.exitCode === null && control.writable) control.write(Buffer.of(osConstants.signals[sig]));
  };
  for (const sig of opts.forwardSignals ?? []) process.on(sig, forward);

  return new Promise<SandboxResult>((resolve, reject) => {
    child.on('error', (e) => reject(new SandboxError(`cannot start sandbox helper ${helper}: ${e.message}`)));
    child.on('close', async (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort);
      for (const s of opts.forwardSignals ?? []) process.off(s, forward);
      control.destroy();
      await statusDone;
      const text = Buffer.concat(statusChunks).toString('utf8').trim();
      let status: HelperStatus | undefined;
      try {
        status = text ? (JSON.parse(text) as HelperStatus) : undefined;
      } catch {
        status = undefined;
      }
      if (aborted || status?.aborted) {
        reject(new SandboxAbortedError('sandbox run aborted; the container was killed', { cause: opts.signal?.reason }));
        return;
      }
      if (!status) {
        reject(new Error(`sandbox helper exited (${sig ?? code}) without reporting a status`));
        return;
      }
      if (status.setupError) {
        reject(new SandboxError(`sandbox set-up failed: ${status.setupError}`));
        return;
      }
      const result: SandboxResult = { exitCode: status.exitCode, oomKilled: status.oomKilled };
      if (status.signal) result.signal = status.signal;
      if (status.execError) {
        result.execError = status.execError;
        // Shown where the process's own error output would have gone, as docker run does.
        const line = Buffer.from(`kiln: ${status.execError}\n`);
        if (inherit) process.stderr.write(line);
        else opts.onOutput?.('stderr', line);
      }
      resolve(result);
    });
  });
}

/** Removes the bridge's pooled network namespaces that no RUN is using (and their veths). */
export function resetNetworkPool(cfg: BridgeConfig = bridgeConfig()): void {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-net-reset-'));
  try {
    const file = join(dir, 'spec.json');
    writeFileSync(file, JSON.stringify({ rootfs: { lowerdirs: ['/'] }, args: ['true'], network: 'bridge', bridge: cfg }) + '\n');
    const fd = openSync(file, 'r');
    try {
      const r = spawnSync(sandboxHelperPath(), ['--net-reset'], { stdio: ['ignore', 'ignore', 'pipe', fd], encoding: 'utf8' });
      if (r.status !== 0) throw new SandboxError(`network: resetting the namespace pool failed: ${(r.stderr || '').trim()}`);
    } finally {
      closeSync(fd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
