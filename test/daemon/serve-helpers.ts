// Starts `kiln serve` as a user would (node bin/kiln.js serve …) and waits for its "listening on" line;
// makes TLS material with openssl; runs `kiln` with a client config dir of its own.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { kilnBin, kiln, kilnAsync, type KilnResult } from '../helpers/kiln.js';
import { builderService, AUTH_HEADER, PROTOCOL_VERSION, type BuildStart, type ContextEntry, type SolveRequest, type SolveResponse, type SolveResult } from '../../src/protocol/builder.js';
import { parseAddr } from '../../src/client/address.js';

export interface Served {
  addr: string;
  proc: ChildProcess;
  root: string;
  stderr(): string;
  /** SIGTERM, then waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

export async function serve(args: string[], opts: { root?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Served> {
  const root = opts.root ?? mkdtempSync(join(tmpdir(), 'kiln-serve-'));
  const proc = spawn(process.execPath, [kilnBin, 'serve', '--root', root, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number>((r) => proc.on('exit', (code, sig) => r(code ?? (sig ? 128 : 1))));
  const addr = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kiln serve did not start:\n${stderr}`)), 30_000);
    proc.stderr!.on('data', (d) => {
      stderr += d;
      const m = /listening on (\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.on('exit', () => {
      clearTimeout(timer);
      reject(new Error(`kiln serve exited:\n${stderr}`));
    });
  });
  return {
    addr,
    proc,
    root,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      // The root stays: a test may start a new server on it (history and cache survive a restart).
      return exited;
    },
  };
}

/** A client environment: its own builder config dir and stat-index cache. */
export function clientEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-client-'));
  return { KILN_CONFIG_DIR: join(dir, 'config'), KILN_CLIENT_CACHE: join(dir, 'cache'), SOURCE_DATE_EPOCH: '1700000000', ...extra };
}

export function kilnClient(root: string, args: string[], env: NodeJS.ProcessEnv): KilnResult {
  return kiln(root, args, { env, timeoutMs: 300_000 });
}

export function kilnClientAsync(root: string, args: string[], env: NodeJS.ProcessEnv) {
  return kilnAsync(root, args, { env });
}

export interface Certs {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  client(name: string): { cert: string; key: string };
  /** A client certificate signed by another CA (the server must refuse it). */
  rogue: { cert: string; key: string };
}

export function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-certs-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const key = (name: string) => ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  const ca = (name: string) => ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`);
  const sign = (name: string, by: string, ext?: string) => {
    if (ext) writeFileSync(join(dir, `${name}.ext`), ext);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${by}.crt`, '-CAkey', `${by}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', ...(ext ? ['-extfile', `${name}.ext`] : []));
  };
  ca('test-ca');
  ca('rogue-ca');
  key('server');
  sign('server', 'test-ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const clients = new Map<string, { cert: string; key: string }>();
  const client = (name: string) => {
    let c = clients.get(name);
    if (!c) {
      key(name);
      sign(name, 'test-ca');
      c = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
      clients.set(name, c);
    }
    return c;
  };
  key('mallory');
  sign('mallory', 'rogue-ca');
  return { dir, ca: join(dir, 'test-ca.crt'), serverCert: join(dir, 'server.crt'), serverKey: join(dir, 'server.key'), client, rogue: { cert: join(dir, 'mallory.crt'), key: join(dir, 'mallory.key') } };
}

/** The "context: N files, M uploaded (…)" line a remote build prints. */
export function uploads(stderr: string): { files: number; uploaded: number; reused: number } | undefined {
  const m = /^context: (\d+) files, (\d+) uploaded \([^)]*\), (\d+) already on builder/m.exec(stderr);
  return m ? { files: Number(m[1]), uploaded: Number(m[2]), reused: Number(m[3]) } : undefined;
}

// ---- Raw protocol: what a hostile client can send without kiln's own client code. ----

export interface RawFile {
  path: string;
  content?: Buffer | string;
  /** A symlink with this target. */
  symlink?: string;
  /** A hard link to this path (of the manifest, or anything a hostile client names). */
  hardlinkTo?: string;
  dir?: boolean;
  mode?: number;
}

export interface RawOutcome {
  /** gRPC status code and details when the build failed. */
  code?: number;
  details?: string;
  result?: SolveResult;
  buildId?: string;
  outputs: Map<number, Buffer>;
  progress: string[];
}

/** Context entries for a crafted manifest, and the contents by digest the client can send. */
export function rawManifest(files: RawFile[]): { entries: ContextEntry[]; contents: Map<string, Buffer> } {
  const contents = new Map<string, Buffer>();
  const entries = files.map((f): ContextEntry => {
    const base = { path: f.path, uid: 0, gid: 0, mtime_ns: '1700000000000000000', size: '0', digest: '', link_target: '', hardlink_to: '' };
    if (f.dir) return { ...base, kind: 'DIR', mode: f.mode ?? 0o755 };
    if (f.symlink !== undefined) return { ...base, kind: 'SYMLINK', mode: 0o777, link_target: f.symlink };
    if (f.hardlinkTo !== undefined) return { ...base, kind: 'FILE', mode: f.mode ?? 0o644, hardlink_to: f.hardlinkTo };
    const data = Buffer.from(f.content ?? '');
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    contents.set(digest, data);
    return { ...base, kind: 'FILE', mode: f.mode ?? 0o644, size: String(data.length), digest };
  });
  return { entries, contents };
}

export function rawStart(dockerfile: string, entries: ContextEntry[], more: Partial<BuildStart> = {}): BuildStart {
  return {
    protocol_version: PROTOCOL_VERSION, frontend: 'dockerfile.v0', dockerfile_text: dockerfile, dockerfile_name: 'Dockerfile', dockerfile_path: '',
    has_dockerignore: false, dockerignore: [], target: '', build_args: {}, platforms: [], no_cache: false, no_cache_filter: [], pull: false,
    has_source_date_epoch: true, source_date_epoch: '1700000000', labels: {}, outputs: [], network: '', context: { entries }, secret_ids: [],
    explain: false, client: 'raw-test', named_contexts: [], cache_from: [], cache_to: [], allow: [], extra_hosts: [], ...more,
  };
}

/** A client of the builder service with an optional bearer token: for crafted requests. */
export function rawClient(addr: string, token?: string): { client: grpc.Client & Record<string, any>; md: grpc.Metadata } {
  const Ctor = builderService();
  const client = new Ctor(parseAddr(addr).target, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024 }) as grpc.Client & Record<string, any>;
  const md = new grpc.Metadata();
  if (token) md.set(AUTH_HEADER, `Bearer ${token}`);
  return { client, md };
}

/** One Solve call driven by hand: sends `start`, answers need_files from `contents`, collects outputs. */
export function rawSolve(addr: string, token: string | undefined, start: BuildStart, contents: Map<string, Buffer>, hooks: { onAccepted?: (id: string) => void } = {}): Promise<RawOutcome> {
  const { client, md } = rawClient(addr, token);
  const call = client.Solve(md) as grpc.ClientDuplexStream<SolveRequest, SolveResponse>;
  const out: RawOutcome = { outputs: new Map(), progress: [] };
  return new Promise((resolve) => {
    call.on('data', (m: SolveResponse) => {
      if (m.accepted) {
        out.buildId = m.accepted.build_id;
        hooks.onAccepted?.(m.accepted.build_id);
      } else if (m.need_files) {
        for (const d of m.need_files.digests) {
          const data = contents.get(d) ?? Buffer.alloc(0);
          for (let off = 0; off < data.length; off += 64 * 1024) call.write({ file: { digest: d, data: data.subarray(off, off + 64 * 1024), last: false } });
          call.write({ file: { digest: d, data: Buffer.alloc(0), last: true } });
        }
      } else if (m.progress) out.progress.push(m.progress.json);
      else if (m.output) out.outputs.set(m.output.index, Buffer.concat([out.outputs.get(m.output.index) ?? Buffer.alloc(0), m.output.data]));
      else if (m.result) out.result = m.result;
    });
    call.on('error', (err: grpc.ServiceError) => {
      out.code = err.code;
      out.details = err.details;
      client.close();
      resolve(out);
    });
    call.on('end', () => {
      client.close();
      resolve(out);
    });
    call.write({ start });
  });
}
