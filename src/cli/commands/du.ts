// `kiln du`: what the build cache holds, per record, like `docker buildx du`.
import type { Command } from '../command.js';
import { flagBool, FlagError } from '../flags.js';
import { openState } from '../context.js';
import { diskUsage } from '../../../cache/gc.js';
import { formatSize, timeAgo } from '../../../base/units.js';
import { printTable } from '../table.js';

export const duCommand: Command = {
  name: 'du',
  summary: 'Show disk usage of the build cache',
  usage: 'kiln du [--verbose]',
  flags: [{ name: 'verbose', short: 'v', type: 'bool', description: 'One block per record with its description' }],
  async run(args) {
    if (args.positionals.length) throw new FlagError(`kiln du: unexpected argument "${args.positionals[0]}"`);
    const state = await openState();
    try {
      const usage = await diskUsage(state);
      const verbose = flagBool(args, 'verbose');
      if (verbose) {
        for (const u of usage) {
          console.log(`ID:\t\t${u.id}\nDescription:\t${u.description}\nSize:\t\t${formatSize(u.size)}\nLast used:\t${timeAgo(u.lastUsed)}\nShared:\t\t${u.inUseByImage}\nReclaimable:\t${u.reclaimable}\n`);
        }
      } else {
        const rows = [['ID', 'RECLAIMABLE', 'SIZE', 'LAST ACCESSED', 'DESCRIPTION']];
        for (const u of usage) rows.push([u.id.replace(/^result\/sha256:/, '').slice(0, 25), String(u.reclaimable), formatSize(u.size), timeAgo(u.lastUsed), u.description.slice(0, 60)]);
        printTable(rows, { gap: 2 });
      }
      const total = usage.reduce((n, u) => n + u.size, 0);
      const reclaimable = usage.filter((u) => u.reclaimable).reduce((n, u) => n + u.size, 0);
      console.log(`Shared:\t\t${formatSize(total - reclaimable)}\nReclaimable:\t${formatSize(reclaimable)}\nTotal:\t\t${formatSize(total)}`);
      return 0;
    } finally {
      await state.close();
    }
  },
};
