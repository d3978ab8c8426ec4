// `kiln engine start|stop|status`: the resident engine of this state dir (src/resident). While it runs,
// `kiln build` and `kiln bake` hand their work to it instead of loading kiln and opening the state
// themselves. A build that finds none starts one as it exits (src/resident/attach.ts); KILN_ENGINE=resident
// starts it before building, KILN_ENGINE=off never uses one.
import { readFileSync } from 'node:fs';
import type { Command } from '../command.js';
import { flagString, FlagError } from '../flags.js';
import { UserError } from '../../../base/errors.js';
import { askEngine, engineStatus, startEngine } from '../../resident/client.js';
import { checkSocket, socketPath, socketPathFits, stateRoot } from '../../resident/paths.js';

export const engineCommand: Command = {
  name: 'engine',
  summary: 'The resident engine that builds attach to (start, stop, status)',
  usage: 'kiln engine start [--idle-timeout SECONDS] | stop | status',
  flags: [{ name: 'idle-timeout', type: 'string', valueName: 'SECONDS', description: 'start: leave after this long without a build (default 600, or $KILN_ENGINE_IDLE)' }],
  async run(args) {
    const [what, extra] = args.positionals;
    if (extra !== undefined || !['start', 'stop', 'status'].includes(what ?? '')) throw new FlagError('kiln engine: expected one of start, stop, status');
    const root = stateRoot(process.env);
    const path = socketPath(root);
    const check = checkSocket(path);
    if (check.kind === 'refused') throw new UserError(`kiln engine: ${check.reason}; remove it`);
    const status = await engineStatus(root);
    switch (what) {
      case 'status':
        if (!status) {
          console.log(`no kiln engine runs for ${root}`);
          return 1;
        }
        console.log(`kiln engine (pid ${status.pid}) for ${status.root}: up ${Math.round((Date.now() - status.startedAt) / 1000)}s, ${status.buildsServed} builds served, ${status.running} running, ${status.queued} waiting, state ${status.stateOpen ? 'open' : 'closed'}, idle timeout ${status.idleTimeoutSeconds}s`);
        return 0;
      case 'start': {
        const idleText = flagString(args, 'idle-timeout');
        const idle = idleText === undefined ? undefined : Number(idleText);
        if (idle !== undefined && !(Number.isInteger(idle) && idle > 0)) throw new FlagError(`invalid value "${idleText}" for flag --idle-timeout: expected whole seconds above 0`);
        if (status) {
          console.log(`kiln engine (pid ${status.pid}) already runs for ${root}`);
          return 0;
        }
        if (process.getuid?.() !== 0 || process.env.KILN_ROOTLESS) throw new UserError('kiln engine: the resident engine serves builds as root; rootless builds run in their own process');
        if (!socketPathFits(path)) throw new UserError(`kiln engine: the socket path ${path} is longer than a unix socket path may be; use a shorter KILN_ROOT`);
        const sock = await startEngine(root, idle);
        sock?.destroy();
        const started = sock && (await engineStatus(root));
        if (!started) throw new UserError(`kiln engine: the engine did not start; see ${root}/engine.log`);
        console.log(`kiln engine (pid ${started.pid}) runs for ${root}; it leaves after ${started.idleTimeoutSeconds}s without a build`);
        return 0;
      }
      default: {
        if (!status) {
          console.log(`no kiln engine runs for ${root}`);
          return 0;
        }
        await askEngine(root, { t: 'stop' }, 'stopping');
        // It finishes the build it is running first.
        while (alive(status.pid)) await new Promise((r) => setTimeout(r, 20));
        console.log(`kiln engine (pid ${status.pid}) stopped`);
        return 0;
      }
    }
  },
};

/** True while pid runs (a zombie does not: an engine whose parent is gone may wait long to be reaped). */
function alive(pid: number): boolean {
  try {
    return !/^[ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, ''));
  } catch {
    return false;
  }
}
