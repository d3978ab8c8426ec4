// bin/kiln.js's first step for `kiln build` and `kiln bake`: hand the command to the state dir's resident
// engine when one runs (or KILN_ENGINE=resident asks for one), so a warm rebuild skips loading the CLI,
// opening the database and warming up. Returns the exit code, or undefined to build in this process:
// whatever the engine could not do exactly as this process would goes there, silently.
import { checkSocket, codeStamp, socketPath, socketPathFits, stateRoot } from './paths.js';
import { connectEngine, forwardBuild, startEngine, stdinUse, writesToStdout } from './client.js';

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
  if (done !== undefined || mode !== 'resident') return done;
  const started = await startEngine(root);
  return started ? forwardBuild(started, argv, root, code) : undefined;
}
