// bin/kiln.js's first step for `kiln build` and `kiln bake`: hand the command to the state dir's resident
// engine when one runs, so a warm rebuild skips loading the CLI, opening the database and warming up.
// Returns the exit code, or undefined to build in this process: whatever the engine could not do exactly
// as this process would goes there, silently.
//
// KILN_ENGINE picks when an engine is started: unset (or `auto`), a build that finds none runs here and
// starts one beside itself, so the next build attaches; `resident` starts one first and builds in it;
// `off` never uses one.
import { checkSocket, codeStamp, socketPath, socketPathFits, stateRoot } from './paths.js';
import { awaitStartingEngine, connectEngine, forwardBuild, normalPriority, spawnEngine, startEngine, stdinUse, writesToStdout } from './client.js';

export async function attachToEngine(argv: string[]): Promise<number | undefined> {
  const mode = process.env.KILN_ENGINE;
  if (mode === 'off') return undefined;
  if (argv[0] !== 'build' && argv[0] !== 'bake') return undefined;
  // Rootless runs re-execute in a user namespace; the engine serves root's state only.
  if (process.getuid?.() !== 0 || process.env.KILN_ROOTLESS || argv.includes('--rootless')) return undefined;
  // Archives to stdout and a context tar on stdin (unpacked into a dir removed at exit) stay here.
  if (writesToStdout(argv) || stdinUse(argv) === 'context') return undefined;
  const root = stateRoot(process.env);
  const path = socketPath(root);
  if (!socketPathFits(path)) return undefined;
  const check = checkSocket(path);
  if (check.kind === 'refused') {
    process.stderr.write(`kiln: not using the resident engine: ${check.reason}\n`);
    return undefined;
  }
  // This file is dist/bundle/attach.js (beside the CLI's main.js) or dist/src/resident/attach.js.
  const code = codeStamp([new URL('./main.js', import.meta.url), new URL('../cli/main.js', import.meta.url)]);
  const sock = check.kind === 'ours' ? await connectEngine(path) : undefined;
  const done = sock ? await forwardBuild(sock, argv, root, code) : undefined;
  if (done !== undefined) return done;
  if (mode === 'resident') {
    const started = await startEngine(root);
    return started ? forwardBuild(started, argv, root, code) : undefined;
  }
  // Auto: an engine another build started a moment ago is used once it listens (waiting up to 3 s);
  // otherwise this build runs here and starts one beside itself at a low CPU priority, so it takes mostly
  // idle CPU and listens by the time the next build comes. A second engine started at once (two CLIs)
  // finds the first listening and leaves.
  // Not after an engine answered: that one runs older code and is leaving (its socket may still be
  // there for a moment), or went before taking the build; either way a new one is needed.
  if (!sock) {
    const starting = await awaitStartingEngine(root);
    const byStarting = starting ? await forwardBuild(starting, argv, root, code) : undefined;
    if (byStarting !== undefined) return byStarting;
  }
  const engine = spawnEngine(root, undefined, { background: true });
  // Low priority only while this build runs: once it is done, the engine has the machine to itself.
  const pid = engine?.pid;
  if (pid) process.once('exit', () => normalPriority(pid));
  return undefined;
}
