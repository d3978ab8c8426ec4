import type { Command } from '../command.js';
import { openState } from '../context.js';
import { formatSize, shortDigest, timeAgo } from '../../../base/units.js';
import { flagBool, flagString, FlagError } from '../flags.js';
import { parseReference } from '../../../base/oci/reference.js';
import { printTable } from '../table.js';

export const imagesCommand: Command = {
  name: 'images',
  summary: 'List images in the local store',
  usage: 'kiln images [OPTIONS]',
  flags: [
    { name: 'quiet', short: 'q', type: 'bool', description: 'Only show image IDs' },
    { name: 'digests', type: 'bool', description: 'Show digests' },
    { name: 'format', type: 'string', valueName: 'json', description: 'Print as JSON lines with "json"' },
  ],
  async run(args) {
    if (args.positionals.length > 0) throw new FlagError(`kiln images: unexpected argument "${args.positionals[0]}"`);
    const format = flagString(args, 'format');
    if (format !== undefined && format !== 'json') throw new FlagError(`invalid value "${format}" for flag --format: only "json" is supported`);
    const state = await openState();
    try {
      const records = await state.images.list();
      const rows = records.flatMap((r) => r.platforms.map((p) => ({ r, p })));
      if (format === 'json') {
        for (const { r, p } of rows) console.log(JSON.stringify({ name: r.name, digest: r.digest, platform: p.platform, id: p.configDigest, manifest: p.manifestDigest, size: p.size, updated: r.updated }));
        return 0;
      }
      if (flagBool(args, 'quiet')) {
        for (const { p } of rows) console.log(shortDigest(p.configDigest));
        return 0;
      }
      const showDigests = flagBool(args, 'digests');
      const table = rows.map(({ r, p }) => {
        const ref = parseReference(r.name);
        const repo = ref.familiarName();
        const row = [repo, ref.tag ?? '<none>'];
        if (showDigests) row.push(r.digest);
        row.push(shortDigest(p.configDigest), p.platform, timeAgo(r.updated), formatSize(p.size));
        return row;
      });
      const head = ['REPOSITORY', 'TAG', ...(showDigests ? ['DIGEST'] : []), 'IMAGE ID', 'PLATFORM', 'CREATED', 'SIZE'];
      printTable([head, ...table]);
      return 0;
    } finally {
      await state.close();
    }
  },
};
