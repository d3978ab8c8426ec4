// What the lifecycle tests look at from outside: the processes of containers (found in /proc by a marker
// in their command line, and by a pid namespace other than the host's), ports, and a terminal run in tmux.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect } from 'node:net';

export interface Proc {
  pid: number;
  cmdline: string;
}

const ownPidNs = readlinkSync('/proc/self/ns/pid');

/** Live processes (zombies excluded: this machine's pid 1 may never reap) whose command line contains marker. */
export function procsWith(marker: string, opts: { containerOnly?: boolean } = {}): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (!cmdline.includes(marker)) continue;
      const state = readFileSync(`/proc/${name}/stat`, 'utf8').replace(/^.*\) /, '')[0];
      if (state === 'Z' || state === 'X') continue;
      if (opts.containerOnly && readlinkSync(`/proc/${name}/ns/pid`) === ownPidNs) continue;
      out.push({ pid: Number(name), cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Live sandbox helpers that are descendants of pid (kiln, or a tmux pane running kiln). */
export function sandboxHelpersUnder(pid: number): number[] {
  const under = descendants(pid);
  return procsWith('native/build/kiln-sandbox').map((p) => p.pid).filter((p) => under.has(p));
}

/** Live descendants of pid. */
export function descendants(pid: number): Set<number> {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
      parent.set(Number(name), Number(stat[1]));
    } catch {
      // gone meanwhile
    }
  }
  const under = (p: number): boolean => {
    for (let q = parent.get(p); q !== undefined && q > 1; q = parent.get(q)) if (q === pid) return true;
    return false;
  };
  return new Set([...parent.keys()].filter((p) => under(p) && alive(p)));
}

/** True while pid is a live (not zombie) process. */
export function alive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until cond() is true or ms pass; returns the last value of cond(). */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await sleep(stepMs);
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A free TCP port on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A terminal: a tmux server of its own (so tests never touch a user's tmux) with one window. */
export class Terminal {
  private readonly socket = `kiln-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
  constructor(command: string, env: Record<string, string>, size = { cols: 100, rows: 30 }) {
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`).join(' ');
    // remain-on-exit in the same call: the window must stay to report how the command ended
    this.tmux('new-session', '-d', '-s', 't', '-x', String(size.cols), '-y', String(size.rows), `env ${envArgs} ${command}`, ';', 'set-option', '-t', 't', 'remain-on-exit', 'on');
  }
  tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }
  /** What the window shows now. */
  screen(): string {
    return this.tmux('capture-pane', '-p', '-t', 't', '-S', '-200');
  }
  keys(...keys: string[]): void {
    this.tmux('send-keys', '-t', 't', ...keys);
  }
  resize(cols: number, rows: number): void {
    this.tmux('resize-window', '-t', 't', '-x', String(cols), '-y', String(rows));
  }
  /** The pid of the process tmux started in the window (kiln). */
  panePid(): number {
    return Number(this.tmux('display-message', '-p', '-t', 't', '#{pane_pid}').trim());
  }
  /** Exit status of the window's process once it ended (128+n when killed by signal n), or undefined while it runs. */
  exitStatus(): number | undefined {
    const [dead, status, signal] = this.tmux('display-message', '-p', '-t', 't', '#{pane_dead} #{pane_dead_status}. #{pane_dead_signal}.').trim().split(' ');
    if (dead !== '1') return undefined;
    if (/^\d+\.$/.test(signal ?? '')) return 128 + parseInt(signal!, 10);
    if (/^\d+\.$/.test(status ?? '')) return parseInt(status!, 10);
    // tmux marks a pane dead when its terminal closes and records how the process ended only when it reaps
    // it, which lags under load: a zombie's wait status is in /proc/PID/stat (field 52) meanwhile.
    try {
      const stat = readFileSync(`/proc/${this.panePid()}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z') return undefined;
      const ws = Number(fields[49]);
      return ws & 0x7f ? 128 + (ws & 0x7f) : (ws >> 8) & 0xff;
    } catch {
      return undefined; // reaped meanwhile: tmux has the status on the next look
    }
  }

  /** Closes the window as a user closing a terminal does: the pty hangs up. */
  close(): void {
    try {
      this.tmux('kill-server');
    } catch {
      // already gone
    }
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
