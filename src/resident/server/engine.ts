// The resident engine: one process per state dir that keeps the CLI loaded, the state open and the JIT
// warm, and runs the `kiln build` / `kiln bake` command lines its clients send over ROOT/engine.sock, one
// at a time, exactly as kiln would in the client's process (src/cli/dispatch.ts runKiln). It listens on a
// socket only its user can open, leaves after an idle timeout, closes the state when an in-process kiln
// command asks for it, and treats a client that goes away mid-build as a ^C.
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, existsSync, lstatSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { State, StateLockedError } from '../../../cache/state.js';
import { provideState } from '../../cli/context.js';
import { loadCommands, runKiln } from '../../cli/dispatch.js';
import { checkSocket, socketPath } from '../paths.js';
import { connectEngine } from '../client.js';
import { readMessages, send, type BuildRequestMessage, type ClientMessage, type EngineMessage } from '../protocol.js';
import { inInvocation } from './invocation.js';

interface BuildJob {
  kind: 'build';
  sock: Socket;
  msg: BuildRequestMessage;
  done?: boolean;
  /** Retries a signal until the command has put up its own listener for it. */
  pendingSignal?: NodeJS.Timeout;
}
type Job = BuildJob | { kind: 'release'; sock: Socket };

export function log(message: string): void {
  try {
    writeSync(2, `${new Date().toISOString()} kiln engine ${process.pid}: ${message}\n`);
  } catch {
    // no log to write to
  }
}

// Signals a client passes on reach the running command's own SIGINT/SIGTERM listeners (build.ts cancels
// its build there) as process events; the engine's own listener must not take them for its own.
let forwarding = false;
function forwardSignal(sig: 'SIGINT' | 'SIGTERM'): void {
  forwarding = true;
  try {
    process.emit(sig as 'SIGINT');
  } finally {
    forwarding = false;
  }
}

/** The code stamp an engine's hello names (undefined: no hello within a second). */
function helloCode(sock: Socket): Promise<string | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 1_000);
    readMessages<EngineMessage>(sock, (m) => {
      if (m.t !== 'hello') return;
      clearTimeout(timer);
      resolve(m.code);
    });
    sock.once('close', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}

function socketIdentity(path: string): string {
  const st = lstatSync(path, { bigint: true });
  return `${st.dev}:${st.ino}:${st.ctimeNs}`;
}

export class ResidentEngine {
  private state?: State;
  private readonly queue: Job[] = [];
  private active?: Job;
  private served = 0;
  private idleTimer?: NodeJS.Timeout;
  private socketWatch?: NodeJS.Timeout;
  private opening?: Promise<State>;
  /** Set once the open state was handed to another process: from then on it is opened only for a build. */
  private released = false;
  private server?: Server;
  /** dev:ino:ctime of the socket this engine bound: an inode number alone is reused once a state dir is deleted. */
  private socketId?: string;
  private stopping = false;
  private readonly startedAt = Date.now();
  readonly path: string;

  constructor(
    readonly root: string,
    readonly idleSeconds: number,
    /** paths.ts codeStamp of the code this process runs, told to every client. */
    readonly code: string,
  ) {
    this.path = socketPath(root);
  }

  /** Listens on ROOT/engine.sock; false when another engine already does (this one then just leaves). */
  async listen(): Promise<boolean> {
    // An engine of older code (kiln rebuilt since it started) is told to leave, and its place taken once
    // it has: the client that found it stale started this one.
    for (const until = Date.now() + 5_000; ; ) {
      const check = checkSocket(this.path);
      if (check.kind === 'refused') throw new Error(`refusing to listen: ${check.reason}`);
      if (check.kind !== 'ours') break;
      const other = await connectEngine(this.path);
      if (!other) {
        try {
          unlinkSync(this.path); // a dead engine's socket
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // or one that just left
        }
        break;
      }
      const code = await helloCode(other);
      if (code === undefined || code === this.code || Date.now() > until) {
        other.destroy();
        return false;
      }
      send(other, { t: 'stop' });
      other.end();
      await new Promise((r) => setTimeout(r, 50));
    }
    const server = createServer((sock) => this.accept(sock));
    // Created 0600 (umask), not made so after: no other user can ever connect.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.path, () => resolve());
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') return false; // another engine won the race
      throw err;
    } finally {
      process.umask(umask);
    }
    chmodSync(this.path, 0o600);
    this.socketId = socketIdentity(this.path);
    this.server = server;
    // Its socket removed (the state dir deleted: a throwaway KILN_ROOT, a test's root) or taken by a newer
    // engine: nobody can reach this one any more, so it leaves instead of idling out.
    this.socketWatch = setInterval(() => !this.ownsSocket() && this.stop('its socket is gone'), 1000);
    provideState(() => this.openState());
    process.on('SIGTERM', () => !forwarding && this.stop('SIGTERM'));
    process.on('SIGINT', () => !forwarding && this.stop('SIGINT'));
    process.on('SIGHUP', () => undefined); // the session it was started from may end
    this.armIdle();
    log(`listening on ${this.path} (idle timeout ${this.idleSeconds}s)`);
    void this.preopen();
    void this.preload();
    return true;
  }

  /**
   * Loads the build commands' modules (Dockerfile frontend, solver, registry client) while no build
   * runs: the build that started this engine is still running, and the next one then pays nothing for them.
   */
  private async preload(): Promise<void> {
    try {
      await loadCommands(['build', 'bake']);
      log('loaded the build commands ahead of the first build');
    } catch (err) {
      log(`not loading the build commands ahead: ${(err as Error).message}`);
    }
  }

  /**
   * Opens the state as soon as no other kiln process holds it (the build that started this engine does
   * until it exits), so that the first client's build does not pay for opening it. Tries for a minute,
   * only on a state dir that exists, and never after the state was handed to an in-process command.
   */
  private async preopen(): Promise<void> {
    const until = Date.now() + 60_000;
    while (Date.now() < until && !this.state && !this.opening && !this.released && !this.stopping && !this.active && !existsSync(join(this.root, 'db'))) {
      await new Promise((r) => setTimeout(r, 100));
    }
    while (Date.now() < until && !this.state && !this.opening && !this.released && !this.stopping && !this.active) {
      try {
        this.opening = State.open({ root: this.root, lockTimeoutMs: 0 }).finally(() => (this.opening = undefined));
        this.state = await this.opening;
        log('opened the state ahead of the first build');
        return;
      } catch (err) {
        if (!(err instanceof StateLockedError)) return void log(`not opening the state ahead: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The open state, wrapped so that a command's close() leaves it open for the next one. */
  private async openState(): Promise<State> {
    if (!this.state) {
      this.opening ??= State.open({ root: this.root, onWait: (msg) => process.stderr.write(`kiln: ${msg}\n`) }).finally(() => (this.opening = undefined));
      this.state = await this.opening;
    }
    const state = this.state;
    return new Proxy(state, { get: (t, k) => (k === 'close' ? async () => undefined : Reflect.get(t, k, t)) });
  }

  private accept(sock: Socket): void {
    sock.on('error', () => undefined);
    send(sock, { t: 'hello', pid: process.pid, code: this.code });
    let job: BuildJob | undefined;
    readMessages<ClientMessage>(sock, (msg) => {
      switch (msg.t) {
        case 'build':
          if (job || this.stopping) return void sock.destroy();
          job = { kind: 'build', sock, msg };
          this.enqueue(job);
          break;
        case 'signal':
          if (job) this.signal(job, msg.sig);
          break;
        case 'status':
          send(sock, { t: 'status', pid: process.pid, root: this.root, idleTimeoutSeconds: this.idleSeconds, startedAt: this.startedAt, buildsServed: this.served, running: this.active ? 1 : 0, queued: this.queue.length, stateOpen: !!this.state });
          break;
        case 'release':
          this.enqueue({ kind: 'release', sock });
          break;
        case 'stop':
          send(sock, { t: 'stopping', pid: process.pid });
          this.stop('kiln engine stop');
          break;
      }
    });
    sock.once('close', () => job && this.signal(job, 'SIGTERM'));
  }

  private signal(job: BuildJob, sig: 'SIGINT' | 'SIGTERM'): void {
    if (job.done) return;
    if (this.active === job) {
      // The engine's own listener is always there; the command's (build.ts cancels there) may not be yet.
      const deliver = () => {
        if (process.listenerCount(sig) < 2) return false;
        clearInterval(job.pendingSignal);
        forwardSignal(sig);
        return true;
      };
      if (!deliver()) {
        clearInterval(job.pendingSignal);
        job.pendingSignal = setInterval(deliver, 20);
      }
    } else {
      const i = this.queue.indexOf(job);
      if (i >= 0) {
        // Not started yet: it ends as a kiln killed while waiting for the state would (128 + signal).
        this.queue.splice(i, 1);
        send(job.sock, { t: 'exit', code: sig === 'SIGINT' ? 130 : 143 });
        job.sock.end();
        this.armIdle();
      }
    }
  }

  private enqueue(job: Job): void {
    clearTimeout(this.idleTimer);
    this.queue.push(job);
    if (job.kind === 'build' && this.active?.kind === 'build') {
      send(job.sock, { t: 'out', fd: 2, d: Buffer.from(`kiln: waiting for another build on the resident engine (pid ${process.pid}) that is using the state at ${this.root}…\n`).toString('base64') });
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.active) return;
    for (let job = this.queue.shift(); job; job = this.queue.shift()) {
      this.active = job;
      try {
        if (job.kind === 'release') await this.release(job.sock);
        else await this.build(job);
      } catch (err) {
        log(`request failed: ${(err as Error).stack ?? err}`);
        job.sock.destroy();
      }
      this.active = undefined;
    }
    if (this.stopping) await this.exit();
    else this.armIdle();
  }

  private async build(job: BuildJob): Promise<void> {
    const { msg, sock } = job;
    send(sock, { t: 'started', pid: process.pid });
    const out = (fd: 1 | 2, data: Buffer) => send(sock, { t: 'out', fd, d: data.toString('base64') });
    const inv = { cwd: msg.cwd, env: msg.env, umask: msg.umask, stdin: msg.stdin === undefined ? undefined : Buffer.from(msg.stdin, 'base64'), tty: msg.tty };
    const code = await inInvocation(inv, out, () => runKiln(msg.argv))
      .catch((err: Error) => {
        // The client's shoes did not fit (its working dir is gone): one line, as kiln would fail there.
        out(2, Buffer.from(`kiln: ${err.message}\n`));
        return 1;
      })
      .finally(() => {
        job.done = true;
        clearInterval(job.pendingSignal);
      });
    this.served++;
    send(sock, { t: 'exit', code });
    sock.end();
  }

  private async release(sock: Socket): Promise<void> {
    // Every in-process command asks, the build that started this engine too: only a state this engine
    // held and gave away stops preopen() from taking it again.
    await this.opening?.catch(() => undefined);
    if (this.state) {
      this.released = true;
      const state = this.state;
      this.state = undefined;
      await state.close();
      log('closed the state for another kiln process');
    }
    send(sock, { t: 'released' });
    sock.end();
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer);
    if (this.stopping || this.active || this.queue.length) return;
    this.idleTimer = setTimeout(() => this.stop(`idle for ${this.idleSeconds}s`), this.idleSeconds * 1000);
  }

  /** Takes no new clients; leaves once the running and queued commands have ended. */
  stop(why: string): void {
    if (this.stopping) return;
    this.stopping = true;
    log(`stopping: ${why}`);
    clearTimeout(this.idleTimer);
    clearInterval(this.socketWatch);
    // Closing a listening unix socket unlinks its path (libuv does, by name): once another engine has
    // bound that path, this one only stops listening at exit and leaves the path alone.
    if (this.ownsSocket()) this.server?.close();
    else this.server?.unref();
    if (!this.active) void this.exit();
  }

  private ownsSocket(): boolean {
    try {
      return socketIdentity(this.path) === this.socketId;
    } catch {
      return false;
    }
  }

  private async exit(): Promise<void> {
    await this.state?.close();
    this.state = undefined;
    log('stopped');
    process.exit(0);
  }
}
