// Rootless mode: `kiln` run by an ordinary user (or `kiln --rootless …` / KILN_ROOTLESS=1 by root)
// re-executes itself through native/build/kiln-userns, which makes a user namespace (+ mount namespace)
// where the user is uid 0 and the user's /etc/subuid and /etc/subgid ranges are mapped after it. Inside,
// everything works as for root except what needs real root (see README, "Rootless").
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../base/errors.js';

/** Commands that open the state dir or run containers: they need the namespace. */
const stateCommands = new Set(['build', 'bake', 'run', 'pull', 'images', 'rmi', 'du', 'prune', 'history', 'serve']);

/** True inside a user namespace other than the initial one (where uid_map is the identity map of all ids). */
export function inUserNamespace(): boolean {
  try {
    const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return !(map.length === 3 && map[0] === '0' && map[1] === '0' && map[2] === '4294967295');
  } catch {
    return false;
  }
}

function userNsHelper(): string {
  for (const c of ['../../native/build/kiln-userns', '../../../native/build/kiln-userns']) {
    const p = fileURLToPath(new URL(c, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new UserError('rootless: native/build/kiln-userns is missing: run npm install (needs gcc)');
}

/** How many ids (0..n-1) the namespace maps, from /proc/self/uid_map. */
function mappedIds(): number {
  try {
    const lines = readFileSync('/proc/self/uid_map', 'utf8').trim().split('\n');
    return Math.max(...lines.map((l) => l.trim().split(/\s+/).map(Number)).map(([inner = 0, , count = 0]) => inner + count));
  } catch {
    return 0;
  }
}

/**
 * A chown to an id the namespace does not map fails with EINVAL: say why, in the same line. Without an
 * /etc/subuid or /etc/subgid range only the user's own id is mapped (as 0).
 */
export function explainRootlessError(message: string): string {
  const ids = process.env.KILN_ROOTLESS_IDS;
  if (!ids || !/EINVAL: invalid argument, [lf]?chown /.test(message)) return message;
  const user = process.env.KILN_ROOTLESS_USER || 'USER';
  if (ids === 'single')
    return `${message}: rootless mode without a subordinate id range maps only your own uid/gid (as 0), so files cannot be owned by other ids; add a range for ${user} to /etc/subuid and /etc/subgid (e.g. ${user}:100000:65536)`;
  return `${message}: rootless mode maps only ids 0-${mappedIds() - 1} (your uid and the /etc/subuid and /etc/subgid ranges of ${user}); a bigger range gives more`;
}

/** Takes `--rootless` off the arguments: before the command (`kiln --rootless run …`), or anywhere among
 * the arguments of a command other than run (whose arguments after the image are the container's). */
export function takeRootlessFlag(args: string[]): { argv: string[]; rootless: boolean } {
  if (args[0] === '--rootless') return { argv: args.slice(1), rootless: true };
  const [name, ...rest] = args;
  if (name === undefined) return { argv: args, rootless: false };
  const end = name === 'run' ? Math.min(1, rest.length) : rest.indexOf('--') < 0 ? rest.length : rest.indexOf('--');
  const kept = rest.filter((a, i) => !(i < end && a === '--rootless'));
  return { argv: [name, ...kept], rootless: kept.length !== rest.length };
}

/**
 * Called before a command runs. Returns undefined when the command should run in this process (root,
 * already inside the namespace, or a command that needs no state), otherwise the exit code of the same
 * command run again inside a user namespace.
 */
export async function runRootlessIfNeeded(command: string, argv: string[], forced: boolean): Promise<number | undefined> {
  if (!stateCommands.has(command) || inUserNamespace()) return undefined;
  const wanted = forced || process.getuid?.() !== 0 || process.env.KILN_ROOTLESS === '1';
  if (!wanted) return undefined;
  const helper = userNsHelper();
  const child = spawn(helper, [process.execPath, ...process.execArgv, process.argv[1]!, command, ...argv], { stdio: 'inherit' });
  // The child shares the terminal's process group: a Ctrl-C reaches it directly (passing SIGINT on as well
  // would interrupt it twice), so this process only outlives it. Other signals sent to this process alone
  // are passed on.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  for (const s of signals) process.on(s, forward);
  return new Promise<number>((resolve, reject) => {
    child.on('error', (e) => reject(new UserError(`rootless: cannot start ${helper}: ${e.message}`)));
    child.on('close', (code, sig) => {
      for (const s of signals) process.off(s, forward);
      process.off('SIGINT', ignore);
      resolve(code ?? 128 + (sig ? (osConstants.signals[sig] ?? 0) : 0));
    });
  });
}
