// A kiln serve with --buildkit-addr, a buildx builder instance (docker-sid's buildx 0.29, remote driver)
// pointing at it through a byte-counting unix socket relay, the test registry with busybox, and helpers
// to run buildx. The relay counts what the client sends, so a test can see how much crossed the wire.
import { before, after } from 'node:test';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { modernPeerStatus } from '../helpers/oracle.js';
import { startRegistry, pushBusybox, type TestRegistry } from '../helpers/registry.js';
import { serve, type Served } from '../daemon/serve-helpers.js';

export const DOCKER = 'docker-sid';

export interface Buildx {
  peer: ReturnType<typeof modernPeerStatus>;
  reg: TestRegistry;
  base: string;
  server: Served;
  builder: string;
  dir: string;
  /** Bytes the client sent to the builder since the last reset. */
  sent(): number;
  resetSent(): void;
}

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

async function relay(listenPath: string, target: string, count: (n: number) => void): Promise<Server> {
  const srv = createServer((client) => {
    const upstream = createConnection(target);
    client.on('data', (d: Buffer) => count(d.length));
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  await new Promise<void>((r) => srv.listen(listenPath, r));
  return srv;
}

export function buildxSuite(serveArgs: string[] = []): Buildx {
  const s = { peer: modernPeerStatus() } as Buildx;
  let bytes = 0;
  let proxy: Server | undefined;
  s.sent = () => bytes;
  s.resetSent = () => (bytes = 0);
  before(async () => {
    if (!s.peer.ok) return;
    s.dir = mkdtempSync(join(tmpdir(), 'kiln-buildx-'));
    s.reg = await startRegistry();
    s.base = pushBusybox(s.reg, 'library/busybox', 'latest');
    const sock = join(s.dir, 'buildkitd.sock');
    s.server = await serve(['--addr', `unix://${join(s.dir, 'kiln.sock')}`, '--buildkit-addr', `unix://${sock}`, '--platform', 'linux/amd64', '--platform', 'linux/arm64', ...serveArgs]);
    for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
    proxy = await relay(join(s.dir, 'relay.sock'), sock, (n) => (bytes += n));
    s.builder = `kiln-test-${randomBytes(4).toString('hex')}`;
    execFileSync(DOCKER, ['buildx', 'create', '--driver', 'remote', '--name', s.builder, `unix://${join(s.dir, 'relay.sock')}`], { stdio: 'ignore' });
  });
  after(async () => {
    proxy?.close();
    if (s.builder) spawnSync(DOCKER, ['buildx', 'rm', '--force', s.builder], { stdio: 'ignore', timeout: 60_000 });
    await s.server?.stop();
    await s.reg?.stop();
    if (s.server) rmSync(s.server.root, { recursive: true, force: true });
    if (s.dir) rmSync(s.dir, { recursive: true, force: true });
  });
  return s;
}

/**
 * `docker-sid buildx ARGS` (builder flags are the caller's), with default attestations as buildx sets them.
 * Asynchronous: the byte-counting relay runs in this process and must keep relaying meanwhile.
 */
export function buildx(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  const child = spawn(DOCKER, ['buildx', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ status: code ?? (sig ? 128 : 1), stdout, stderr });
    });
  });
}

/** Starts buildx without waiting; resolves with its outcome. */
export function buildxAsync(args: string[]) {
  const child = spawn(DOCKER, ['buildx', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<Run>((r) => child.on('exit', (code, sig) => r({ status: code ?? (sig ? 128 : 1), stdout: '', stderr })));
  return { child, done, stderr: () => stderr };
}

/** The line buildx prints for a failed build. */
export function errorLine(stderr: string): string {
  return stderr.trim().split('\n').filter((l) => l.startsWith('ERROR:')).at(-1) ?? '';
}
