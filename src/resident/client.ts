// The client half of the resident engine: reach the state dir's engine (starting it when asked), send it
// one build, and act for it here: print its output, pass on ^C and SIGTERM, exit with its exit code.
// Imports only Node built-ins, so bin/kiln.js can load it without the CLI bundle.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { createConnection, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { checkSocket, engineLog, isEngineProcess, socketPath, socketPathFits, startingEngine, startingPath } from './paths.js';
import { readMessages, send, type ClientMessage, type EngineMessage, type EngineStatus } from './protocol.js';

/** A connection to the engine at path, or undefined when nothing accepts there. */
export function connectEngine(path: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const sock = createConnection(path);
    sock.once('connect', () => {
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', () => resolve(undefined));
  });
}

/** The engine's entry: the bundle's engine.js beside this file, or the compiled module when not bundled. */
function engineEntry(): string {
  const bundled = fileURLToPath(new URL('./engine.js', import.meta.url));
  return existsSync(bundled) ? bundled : fileURLToPath(new URL('./server/main.js', import.meta.url));
}

/**
 * Spawns the state dir's engine, detached (its own session: a terminal's ^C does not reach it) with its
 * output in ROOT/engine.log, without waiting for it; ROOT/engine.starting names it until it listens.
 * `background`: it starts at a low CPU priority, for a start beside a running build (it gets the normal
 * one back once it listens, when that build exits, or when a build waits for it: normalPriority). Undefined when it could not be spawned.
 */
export function spawnEngine(root: string, idleSeconds?: number, opts: { background?: boolean } = {}): ChildProcess | undefined {
  if (!socketPathFits(socketPath(root))) return undefined;
  let log: number;
  try {
    mkdirSync(root, { recursive: true }); // a first build on a new state dir
    log = openSync(engineLog(root), 'a', 0o600);
  } catch {
    return undefined;
  }
  const env = { ...process.env };
  if (idleSeconds !== undefined) env.KILN_ENGINE_IDLE = String(idleSeconds);
  if (opts.background) env.KILN_ENGINE_NICE = '1';
  try {
    // `engine serve` in argv: what the state's "in use by" message names (cache/state.ts writes db.owner).
    // Beside a build, V8 compiles the engine's code as it loads (--no-lazy) rather than at its first use:
    // that start is off the critical path, and the next build (the engine's first) halves its cost.
    const v8 = opts.background ? ['--no-lazy'] : [];
    const child = spawn(process.execPath, [...v8, engineEntry(), 'engine', 'serve', root], { detached: true, stdio: ['ignore', log, log], env });
    child.once('error', () => undefined);
    child.unref();
    if (child.pid) {
      // Background start: at a low priority (nice 10: about a tenth of a busy core) until it listens, as
      // the build that started it is running.
      if (opts.background) {
        try {
          setPriority(child.pid, 10);
        } catch {
          // it already left
        }
      }
      markStarting(root, child.pid);
    }
    return child;
  } catch {
    return undefined;
  } finally {
    closeSync(log);
  }
}

/**
 * ROOT/engine.starting := pid; never through a symlink planted there (O_NOFOLLOW), as the socket is never
 * used through one, nor waiting on a FIFO (O_NONBLOCK: no reader is an error).
 */
function markStarting(root: string, pid: number): void {
  try {
    const fd = openSync(startingPath(root), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
    try {
      writeFileSync(fd, String(pid));
    } finally {
      closeSync(fd);
    }
  } catch {
    // no marker: a build that comes before this engine listens runs in its own process
  }
}

/**
 * Starts the state dir's engine (spawnEngine) and returns a connection once it listens. Two clients
 * starting one at once is fine: the second engine finds the first listening and leaves. Undefined when
 * no engine came up.
 */
export async function startEngine(root: string, idleSeconds?: number): Promise<Socket | undefined> {
  const path = socketPath(root);
  const child = spawnEngine(root, idleSeconds);
  if (!child) return undefined;
  let exited = false;
  child.once('exit', () => (exited = true));
  child.once('error', () => (exited = true));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const check = checkSocket(path);
    if (check.kind === 'ours') {
      const sock = await connectEngine(path);
      if (sock) return sock;
    } else if (check.kind === 'refused' || exited) return undefined;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}

/**
 * A connection to the engine that is starting for root (ROOT/engine.starting), once it listens; undefined
 * when none is starting, or it has not listened within timeoutMs or went away.
 */
export async function awaitStartingEngine(root: string, timeoutMs = 3_000): Promise<Socket | undefined> {
  const path = socketPath(root);
  const deadline = Date.now() + timeoutMs;
  let hurried = false;
  while (Date.now() < deadline) {
    const check = checkSocket(path);
    if (check.kind === 'ours') return connectEngine(path);
    if (check.kind === 'refused') return undefined;
    // No engine starting (any more): it may have just listened and removed its marker.
    const pid = startingEngine(root);
    if (pid === undefined) return checkSocket(path).kind === 'ours' ? connectEngine(path) : undefined;
    // Started beside a build at a low priority, it is now what this build waits for: on a busy machine a
    // niced start took seconds.
    if (!hurried) {
      normalPriority(pid);
      hurried = true;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}

/** Gives an engine of this user's (pid, checked to be one) that was started in the background the normal CPU priority. */
export function normalPriority(pid: number): void {
  try {
    if (statSync(`/proc/${pid}`).uid === process.getuid?.() && isEngineProcess(pid)) setPriority(pid, 0);
  } catch {
    // gone already, or not allowed
  }
}

/** One request that gets one answer (status, release, stop); undefined when no engine answers. */
export async function askEngine<T extends EngineMessage>(root: string, msg: ClientMessage, answer: T['t'], timeoutMs = 10_000): Promise<T | undefined> {
  const path = socketPath(root);
  if (!socketPathFits(path) || checkSocket(path).kind !== 'ours') return undefined;
  const sock = await connectEngine(path);
  if (!sock) return undefined;
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(undefined), timeoutMs);
    const done = (v: T | undefined) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    readMessages<EngineMessage>(sock, (m) => m.t === answer && done(m as T));
    sock.once('close', () => done(undefined));
    sock.once('error', () => done(undefined));
    send(sock, msg);
  });
}

export const engineStatus = (root: string) => askEngine<{ t: 'status' } & EngineStatus>(root, { t: 'status' }, 'status', 2_000);

/**
 * Asks a running engine to close the state (after its running builds), so that this process can open
 * it: an in-process command must not wait for an idle engine's timeout. No engine: returns at once.
 */
export async function releaseEngineState(root: string): Promise<void> {
  await askEngine(root, { t: 'release' }, 'released', 5_000);
}

/** Where `-` in the arguments reads stdin: a Dockerfile (`-f -`), a context (`build -`), or nowhere. */
export function stdinUse(argv: string[]): 'none' | 'dockerfile' | 'context' {
  let use: 'none' | 'dockerfile' | 'context' = 'none';
  for (const [i, a] of argv.entries()) {
    if (a === '--file=-' || a === '-f-' || (a === '-' && (argv[i - 1] === '-f' || argv[i - 1] === '--file'))) use = use === 'none' ? 'dockerfile' : use;
    else if (a === '-') use = 'context';
  }
  return use;
}

/** An archive written to kiln's own stdout (`-o -`, `dest=-`): the engine's stdout is not this terminal's. */
export function writesToStdout(argv: string[]): boolean {
  return argv.some((a, i) => /(^|,)dest=-(,|$)/.test(a) || a === '--output=-' || a === '-o-' || (a === '-' && (argv[i - 1] === '-o' || argv[i - 1] === '--output')));
}

/**
 * Sends one build to the engine and stands in for it until it ends: its output goes to this process's
 * stdout and stderr; SIGINT and SIGTERM are passed on (the engine cancels the build as an in-process
 * kiln would); the engine going away mid-build is one line and exit status 1. Undefined (build in this
 * process) when the engine runs other kiln code than `code` or leaves before it took the build.
 */
export function forwardBuild(sock: Socket, argv: string[], root: string, code: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    let enginePid: number | undefined;
    let finished = false;
    let sent = false;
    // Sent once the engine said hello with our code: until then, this process can still build itself.
    const sendBuild = () => {
      sent = true;
      const stdin = stdinUse(argv) === 'dockerfile' ? readFileSync(0) : undefined;
      const tty = { stdout: !!process.stdout.isTTY, stderr: !!process.stderr.isTTY, columns: process.stderr.columns ?? process.stdout.columns };
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
      send(sock, { t: 'build', argv, cwd: process.cwd(), env, umask: process.umask(), stdin: stdin?.toString('base64'), tty });
    };
    const onSignal = (sig: 'SIGINT' | 'SIGTERM') => {
      if (sent) return send(sock, { t: 'signal', sig });
      // Before the engine has the build, a signal ends this process as it would end an in-process kiln.
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      sock.destroy();
      process.kill(process.pid, sig);
    };
    const onInt = () => onSignal('SIGINT');
    const onTerm = () => onSignal('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    const finish = (exitCode: number | undefined) => {
      if (finished) return;
      finished = true;
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      sock.destroy();
      resolve(exitCode);
    };
    readMessages<EngineMessage>(sock, (m) => {
      if (m.t === 'hello' && !sent) {
        enginePid = m.pid;
        if (m.code === code) return sendBuild();
        // kiln was rebuilt since the engine started: let it leave, and build with this code instead.
        send(sock, { t: 'stop' });
        sock.end();
        finish(undefined);
      } else if (m.t === 'started') enginePid = m.pid;
      else if (m.t === 'out') (m.fd === 1 ? process.stdout : process.stderr).write(Buffer.from(m.d, 'base64'));
      else if (m.t === 'exit') finish(m.code);
    });
    const lost = () => {
      if (finished) return;
      if (!sent) return finish(undefined); // it went before taking the build: build here
      process.stderr.write(`kiln: the resident engine${enginePid ? ` (pid ${enginePid})` : ''} stopped during the build; see ${engineLog(root)}\n`);
      finish(1);
    };
    sock.once('close', lost);
    sock.on('error', lost);
  });
}
