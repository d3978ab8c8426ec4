// `kiln run`: runs an image's process in kiln's sandbox, the way `docker run` does: Entrypoint + Cmd
// from the image config (CLI args replace Cmd), Env merged with -e, WorkingDir, User; the container's exit
// code becomes kiln's. The state lock is held only while the image is found or pulled, not while the
// container runs, so other kiln commands can work meanwhile.
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../command.js';
import { flagBool, flagList, flagString, FlagError } from '../flags.js';
import { imageRef, localOrPull, openState, platformFlag } from '../context.js';
import { parseMemorySize } from '../../../base/units.js';
import { resolveImageUser } from '../../../native/user.js';
import { runSandbox, type SandboxSpec } from '../../../native/sandbox.js';
import { emulatorFor } from '../../../native/binfmt.js';
import { registerEmulator } from '../../../native/binfmt-setup.js';
import { parsePlatform } from '../../../base/oci/platform.js';
import { UserError } from '../../../base/errors.js';

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const runCommand: Command = {
  name: 'run',
  summary: 'Run a command in a new container',
  usage: 'kiln run [OPTIONS] IMAGE [COMMAND] [ARG...]',
  stopAtPositional: true,
  flags: [
    { name: 'rm', type: 'bool', description: 'Remove the container when it exits' },
    { name: 'platform', type: 'string', valueName: 'os/arch[/variant]', description: 'Platform of the image to run' },
    { name: 'env', short: 'e', type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'Set an environment variable (KEY alone takes it from this environment)' },
    { name: 'workdir', short: 'w', type: 'string', valueName: 'DIR', description: 'Working directory inside the container' },
    { name: 'user', short: 'u', type: 'string', valueName: 'USER[:GROUP]', description: 'User name or uid (and group) to run as' },
    { name: 'network', type: 'string', valueName: 'host|none', description: 'Network mode (default host)' },
    { name: 'memory', short: 'm', type: 'string', valueName: 'SIZE', description: 'Memory limit, e.g. 256m' },
    { name: 'pids-limit', type: 'string', valueName: 'N', description: 'Limit on the number of processes' },
    { name: 'cpus', type: 'string', valueName: 'N', description: 'Number of CPUs (e.g. 0.5)' },
    { name: 'hostname', type: 'string', valueName: 'NAME', description: 'Container host name (default: its short id)' },
    { name: 'entrypoint', type: 'string', valueName: 'CMD', description: "Override the image's entrypoint" },
    { name: 'tty', short: 't', type: 'bool', description: 'Allocate a pseudo-terminal' },
    { name: 'interactive', short: 'i', type: 'bool', description: 'Keep stdin open' },
    { name: 'init', type: 'bool', description: 'Run an init inside the container that forwards signals and reaps processes' },
    { name: 'security-opt', type: 'string', multiple: true, valueName: 'OPT', description: 'Security options (no-new-privileges)' },
  ],
  async run(args) {
    const [imageArg, ...cmdArgs] = args.positionals;
    if (!imageArg) throw new FlagError('kiln run: requires at least one argument: the image to run');
    const ref = imageRef(imageArg);
    const platform = platformFlag(flagString(args, 'platform'));
    const network = flagString(args, 'network') ?? 'host';
    if (network !== 'host' && network !== 'none') throw new FlagError(`invalid value "${network}" for flag --network: expected host or none`);
    const limits: SandboxSpec['limits'] = {};
    const mem = flagString(args, 'memory');
    if (mem !== undefined) limits.memoryBytes = parseMemorySize('--memory', mem);
    const pids = flagString(args, 'pids-limit');
    if (pids !== undefined) {
      if (!/^[1-9][0-9]*$/.test(pids)) throw new FlagError(`invalid value "${pids}" for flag --pids-limit: expected a positive number`);
      limits.pids = Number(pids);
    }
    const cpus = flagString(args, 'cpus');
    if (cpus !== undefined) {
      const n = Number(cpus);
      if (!(n > 0)) throw new FlagError(`invalid value "${cpus}" for flag --cpus: expected a positive number`);
      limits.cpuPeriodUs = 100_000;
      limits.cpuQuotaUs = Math.round(n * 100_000);
    }

    let noNewPrivileges = false;
    for (const opt of flagList(args, 'security-opt')) {
      if (opt === 'no-new-privileges' || opt === 'no-new-privileges:true' || opt === 'no-new-privileges=true') noNewPrivileges = true;
      else if (opt === 'no-new-privileges:false' || opt === 'no-new-privileges=false') noNewPrivileges = false;
      else throw new FlagError(`invalid value "${opt}" for flag --security-opt: kiln supports no-new-privileges[:true|false]`);
    }

    const id = randomBytes(32).toString('hex');
    const state = await openState();
    let containerDir: string;
    let spec: SandboxSpec;
    try {
      const image = await localOrPull(state, ref, platform, process.stderr);
      let emu = emulatorFor(parsePlatform(image.platform));
      if (!emu.runnable && process.getuid?.() === 0) {
        // As root, register Debian's qemu-user-static for the platform (what `kiln setup binfmt` does).
        try {
          registerEmulator(parsePlatform(image.platform));
        } catch (err) {
          throw new UserError(`${emu.reason}; ${(err as Error).message}`);
        }
        emu = emulatorFor(parsePlatform(image.platform));
      }
      if (!emu.runnable) throw new UserError(emu.reason);
      const cfg = image.config.config ?? {};

      const entrypointFlag = flagString(args, 'entrypoint');
      const entrypoint = entrypointFlag !== undefined ? (entrypointFlag === '' ? [] : [entrypointFlag]) : cfg.Entrypoint ?? [];
      // As docker: a new entrypoint resets the image's Cmd; CLI args replace Cmd.
      const cmd = cmdArgs.length > 0 ? cmdArgs : entrypointFlag !== undefined ? [] : cfg.Cmd ?? [];
      const argv = [...entrypoint, ...cmd];
      if (argv.length === 0) throw new UserError(`${imageArg}: no command specified (the image has no Entrypoint or Cmd)`);

      const userSpec = flagString(args, 'user') ?? cfg.User ?? '';
      const user = resolveImageUser(userSpec || '0', image.lowerdirs);

      const env = mergeEnv(cfg.Env ?? [], flagList(args, 'env'));
      if (!env.some((e) => e.startsWith('PATH='))) env.unshift(DEFAULT_PATH);
      if (!env.some((e) => e.startsWith('HOSTNAME='))) env.push(`HOSTNAME=${flagString(args, 'hostname') ?? id.slice(0, 12)}`);
      if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${user.home}`);
      if (flagBool(args, 'tty') && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');

      containerDir = join(state.containersDir, id);
      mkdirSync(join(containerDir, 'upper'), { recursive: true });
      mkdirSync(join(containerDir, 'work'), { recursive: true });
      spec = {
        rootfs: { lowerdirs: image.lowerdirs, upperdir: join(containerDir, 'upper'), workdir: join(containerDir, 'work') },
        args: argv,
        env,
        cwd: flagString(args, 'workdir') ?? (cfg.WorkingDir || '/'),
        user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
        hostname: flagString(args, 'hostname') ?? id.slice(0, 12),
        network,
        limits,
        tty: flagBool(args, 'tty'),
        ...(flagBool(args, 'init') ? { init: true } : {}),
        ...(noNewPrivileges ? { noNewPrivileges: true } : {}),
      };
    } finally {
      await state.close();
    }

    // Signals sent to kiln go to the container's pid 1, as docker run's sig-proxy does. A signal sent to the
    // whole process group (a terminal's ^C, `timeout`) also reaches the sandbox helper directly; the helper
    // then passes on only kiln's copy, so pid 1 sees it once.
    try {
      const result = await runSandbox(spec, { stdio: 'inherit', forwardSignals: ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] });
      if (result.oomKilled) process.stderr.write('kiln: the container was killed: out of memory (--memory limit reached)\n');
      return result.exitCode;
    } finally {
      if (flagBool(args, 'rm')) rmSync(containerDir, { recursive: true, force: true });
    }
  },
};

/** Image Env, then -e flags in order; a later KEY replaces an earlier one in place. */
function mergeEnv(base: string[], flags: string[]): string[] {
  const out = [...base];
  for (const f of flags) {
    let entry = f;
    if (!f.includes('=')) {
      const v = process.env[f];
      if (v === undefined) continue;
      entry = `${f}=${v}`;
    }
    const key = entry.slice(0, entry.indexOf('='));
    if (!key) throw new FlagError(`invalid value "${f}" for flag --env: empty variable name`);
    const i = out.findIndex((e) => e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')) === key);
    if (i >= 0) out[i] = entry;
    else out.push(entry);
  }
  return out;
}
