import type { Command } from '../command.js';
import { flagString, FlagError } from '../flags.js';
import { imageRef, openState, platformFlag, pullPrinter } from '../context.js';
import { pullImage } from '../../../cache/pull.js';
import { RegistryClient } from '../../../base/oci/registry/client.js';

export const pullCommand: Command = {
  name: 'pull',
  summary: 'Download an image from a registry into the local store',
  usage: 'kiln pull [OPTIONS] NAME[:TAG|@DIGEST]',
  flags: [
    { name: 'platform', type: 'string', valueName: 'os/arch[/variant]', description: 'Platform to pull (default: this machine)' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Print only the image digest' },
  ],
  async run(args) {
    if (args.positionals.length !== 1) throw new FlagError('kiln pull: requires exactly one argument: the image to pull');
    const ref = imageRef(args.positionals[0]!);
    const platform = platformFlag(flagString(args, 'platform'));
    const quiet = args.values.get('quiet') === true;
    const state = await openState();
    const client = new RegistryClient();
    try {
      const pulled = await pullImage(state, ref, { platform, client, onEvent: quiet ? undefined : pullPrinter(process.stdout) });
      if (quiet) console.log(pulled.record.digest);
      return 0;
    } finally {
      await client.close();
      await state.close();
    }
  },
};
