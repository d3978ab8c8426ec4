// kiln's commands and their dispatch: one command line in, its exit code out. User errors print as one
// line (exit 1), bugs keep their stack (exit 2; KILN_DEBUG=1 shows a stack for any error). main.ts runs it
// for this process; the resident engine (src/resident/server) runs it for each client.
import { parseFlags, flagBool, usageText } from './flags.js';
import { helpFlag, type Command } from './command.js';
import { errorMessage, isUserFacing } from '../../base/errors.js';
import { explainRootlessError, runRootlessIfNeeded, takeRootlessFlag } from './rootless.js';
import { KILN_VERSION } from '../../base/version.js';

// Commands load on demand: `kiln run` should not pay for loading the Dockerfile frontend and solver.
const commands: { name: string; summary: string; load: () => Promise<Command> }[] = [
  { name: 'build', summary: 'Build an image from a Dockerfile', load: async () => (await import('./commands/build.js')).buildCommand },
  { name: 'bake', summary: 'Build several targets (Compose or bake file) in one solve', load: async () => (await import('./commands/bake.js')).bakeCommand },
  { name: 'sign', summary: 'Sign an image in a registry (cosign format)', load: async () => (await import('./commands/sign.js')).signCommand },
  { name: 'verify', summary: 'Verify the cosign signatures of an image', load: async () => (await import('./commands/verify.js')).verifyCommand },
  { name: 'run', summary: 'Run a command in a new container', load: async () => (await import('./commands/run.js')).runCommand },
  { name: 'pull', summary: 'Download an image from a registry into the local store', load: async () => (await import('./commands/pull.js')).pullCommand },
  { name: 'images', summary: 'List images in the local store', load: async () => (await import('./commands/images.js')).imagesCommand },
  { name: 'imagetools', summary: 'Inspect images in a registry', load: async () => (await import('./commands/imagetools.js')).imagetoolsCommand },
  { name: 'history', summary: 'Past builds: list, inspect, logs, timeline pictures', load: async () => (await import('./commands/history.js')).historyCommand },
  { name: 'setup', summary: 'Set up this machine (kiln setup binfmt: QEMU emulators)', load: async () => (await import('./commands/setup.js')).setupCommand },
  { name: 'rmi', summary: 'Remove images from the local store', load: async () => (await import('./commands/rmi.js')).rmiCommand },
  { name: 'du', summary: 'Show disk usage of the build cache', load: async () => (await import('./commands/du.js')).duCommand },
  { name: 'prune', summary: 'Remove build cache', load: async () => (await import('./commands/prune.js')).pruneCommand },
  { name: 'serve', summary: 'Run a remote builder (gRPC build service)', load: async () => (await import('./commands/serve.js')).serveCommand },
  { name: 'builder', summary: 'Manage remote builders', load: async () => (await import('./commands/builder.js')).builderCommand },
  { name: 'engine', summary: 'The resident engine that builds attach to (start, stop, status)', load: async () => (await import('./commands/engine.js')).engineCommand },
];

function mainHelp(): string {
  return [
    'Usage: kiln [--rootless] COMMAND [OPTIONS]',
    '',
    'kiln builds and runs OCI images.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    'Environment: KILN_ROOT (state dir, default ~/.local/share/kiln), KILN_INSECURE_REGISTRIES, DOCKER_CONFIG.',
    'Rootless: an ordinary user (or --rootless / KILN_ROOTLESS=1 as root) runs in a user namespace with its',
    '/etc/subuid and /etc/subgid ranges: no resource limits, no bridge network (see README).',
    "Run 'kiln COMMAND --help' for more on a command.",
  ].join('\n');
}

async function dispatch(args: string[]): Promise<number> {
  const { argv, rootless } = takeRootlessFlag(args);
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    console.log(mainHelp());
    return name ? 0 : 1;
  }
  if (name === 'version' || name === '--version') {
    console.log(`kiln ${KILN_VERSION}`);
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    console.error(`kiln: unknown command "${name}" (see 'kiln --help')`);
    return 1;
  }
  const inNamespace = await runRootlessIfNeeded(name, rest, rootless);
  if (inNamespace !== undefined) return inNamespace;
  const cmd = await entry.load();
  const specs = [...cmd.flags, helpFlag];
  const parsed = parseFlags(`kiln ${cmd.name}`, rest, specs, { stopAtPositional: cmd.stopAtPositional });
  if (flagBool(parsed, 'help')) {
    console.log(`${cmd.summary}\n\n${usageText(cmd.usage, specs)}`);
    return 0;
  }
  return cmd.run(parsed);
}

/** Loads commands' modules ahead of their first use (the resident engine does, while it waits for builds). */
export async function loadCommands(names: string[]): Promise<void> {
  await Promise.all(commands.filter((c) => names.includes(c.name)).map((c) => c.load()));
}

/** Runs one kiln command line; its errors become the one line (or stack) main prints, and an exit code. */
export async function runKiln(args: string[]): Promise<number> {
  try {
    return await dispatch(args);
  } catch (err) {
    if (isUserFacing(err) && !process.env.KILN_DEBUG) console.error(`kiln: ${explainRootlessError(errorMessage(err))}`);
    else console.error(err);
    return isUserFacing(err) ? 1 : 2;
  }
}
