// bin/kiln.js's first step for `kiln build` and `kiln bake`: hand the command to the state dir's resident
// engine when one runs (or KILN_ENGINE=resident asks for one), so a warm rebuild skips loading the CLI,
// opening the database and warming up. Returns the exit code, or undefined to build in this process:
// whatever the engine could not do exactly as this process would goes there, silently.
import { checkSocket, socketPath, socketPathFits, stateRoot } from './paths.js';
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
  let sock = check.kind === 'ours' ? await connectEngine(path) : undefined;
  if (!sock && mode === 'resident') sock = await startEngine(root);
  if (!sock) return undefined;
  return forwardBuild(sock, argv, root);
}
