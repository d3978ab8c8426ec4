// Starts `kiln serve` as a user would (node bin/kiln.js serve …) and waits for its "listening on" line;
// makes TLS material with openssl; runs `kiln` with a client config dir of its own.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kilnBin, kiln, kilnAsync, type KilnResult } from '../helpers/kiln.js';

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
