// One client's command runs in the engine as if kiln had been started in the client's shoes: its working
// dir, environment, umask, stdin and terminal facts, with stdout and stderr going back over its socket.
// These are process-wide, so the engine runs one command at a time (engine.ts queues them); a build
// in-process holds the state lock for its whole run, so builds on one state were one at a time already.
import { provideStdin } from '../../cli/stdin-context.js';

type Write = typeof process.stdout.write;

export interface Invocation {
  cwd: string;
  env: Record<string, string>;
  umask: number;
  stdin?: Buffer;
  tty: { stdout: boolean; stderr: boolean; columns?: number };
}

function replaceEnv(next: Record<string, string>): void {
  for (const k of Object.keys(process.env)) if (!(k in next)) delete process.env[k];
  Object.assign(process.env, next);
}

function streamWrite(fd: 1 | 2, out: (fd: 1 | 2, data: Buffer) => void): Write {
  return function write(chunk: string | Uint8Array, encoding?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean {
    out(fd, typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8') : Buffer.from(chunk));
    const done = typeof encoding === 'function' ? encoding : cb;
    if (done) process.nextTick(done);
    return true;
  } as Write;
}

/** Runs fn in the invocation's shoes and puts the engine's own back afterwards. */
export async function inInvocation<T>(inv: Invocation, out: (fd: 1 | 2, data: Buffer) => void, fn: () => Promise<T>): Promise<T> {
  const saved = { cwd: process.cwd(), env: { ...process.env } as Record<string, string>, umask: process.umask() };
  const streams = [process.stdout, process.stderr] as const;
  const savedStreams = streams.map((s) => ({ write: Object.getOwnPropertyDescriptor(s, 'write'), isTTY: Object.getOwnPropertyDescriptor(s, 'isTTY'), columns: Object.getOwnPropertyDescriptor(s, 'columns') }));
  process.chdir(inv.cwd);
  replaceEnv(inv.env);
  process.umask(inv.umask);
  provideStdin(() => inv.stdin ?? Buffer.alloc(0));
  streams.forEach((s, i) => {
    const fd = (i + 1) as 1 | 2;
    Object.defineProperty(s, 'write', { value: streamWrite(fd, out), configurable: true, writable: true });
    Object.defineProperty(s, 'isTTY', { value: fd === 1 ? inv.tty.stdout : inv.tty.stderr, configurable: true, writable: true });
    Object.defineProperty(s, 'columns', { value: inv.tty.columns, configurable: true, writable: true });
  });
  try {
    return await fn();
  } finally {
    streams.forEach((s, i) => {
      for (const key of ['write', 'isTTY', 'columns'] as const) {
        const d = savedStreams[i]![key];
        if (d) Object.defineProperty(s, key, d);
        else delete (s as unknown as Record<string, unknown>)[key];
      }
    });
    provideStdin(undefined);
    process.umask(saved.umask);
    replaceEnv(saved.env);
    try {
      process.chdir(saved.cwd);
    } catch {
      process.chdir('/');
    }
  }
}
