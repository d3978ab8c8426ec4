// `kiln prune`: remove build cache, like `docker buildx prune`: everything unused (default), records
// unused for a while (--filter until=24h), or least recently used ones down to --keep-storage. Layers
// and blobs that images in the store use are never removed.
import type { Command } from '../command.js';
import { flagBool, flagList, flagString, FlagError } from '../flags.js';
import { openState } from '../context.js';
import { prune } from '../../../cache/gc.js';
import { formatSize, parseDuration, parseMemorySize } from '../../../base/units.js';

export const pruneCommand: Command = {
  name: 'prune',
  summary: 'Remove build cache',
  usage: 'kiln prune [--all] [--filter until=DURATION] [--keep-storage SIZE] [-f]',
  flags: [
    { name: 'all', short: 'a', type: 'bool', description: 'Also remove RUN cache mounts' },
    { name: 'filter', type: 'string', multiple: true, valueName: 'until=DURATION', description: 'Only cache unused for at least DURATION (e.g. 24h)' },
    { name: 'keep-storage', type: 'string', valueName: 'SIZE', description: 'Remove least recently used cache until it takes at most SIZE (e.g. 10GB)' },
    { name: 'force', short: 'f', type: 'bool', description: 'Do not ask (kiln never asks; accepted for docker compatibility)' },
  ],
  async run(args) {
    if (args.positionals.length) throw new FlagError(`kiln prune: unexpected argument "${args.positionals[0]}"`);
    let olderThanMs: number | undefined;
    for (const f of flagList(args, 'filter')) {
      const [k, v] = f.split('=', 2);
      if (k !== 'until' || v === undefined) throw new FlagError(`invalid value "${f}" for flag --filter: only until=DURATION is supported`);
      olderThanMs = parseDuration('--filter until', v);
    }
    const keep = flagString(args, 'keep-storage');
    const keepStorage = keep === undefined ? undefined : parseMemorySize('--keep-storage', keep.replace(/B$/i, ''));
    const state = await openState();
    try {
      const r = await prune(state, { all: flagBool(args, 'all'), olderThanMs, keepStorage });
      console.log(`Removed ${r.removedRecords} cache record${r.removedRecords === 1 ? '' : 's'}; reclaimed ${formatSize(r.reclaimedBytes)}`);
      return 0;
    } finally {
      await state.close();
    }
  },
};
