// `kiln rmi NAME...`: remove image names from the local store. What only they used is freed by the next
// `kiln prune` (or the automatic GC after a build).
import type { Command } from '../command.js';
import { FlagError } from '../flags.js';
import { imageRef, openState } from '../context.js';
import { UserError } from '../../../base/errors.js';

export const rmiCommand: Command = {
  name: 'rmi',
  summary: 'Remove images from the local store',
  usage: 'kiln rmi NAME[:TAG]...',
  flags: [],
  async run(args) {
    if (args.positionals.length === 0) throw new FlagError('kiln rmi: requires at least one argument: the image to remove');
    const state = await openState();
    try {
      const missing: string[] = [];
      for (const name of args.positionals) {
        const ref = imageRef(name).toString();
        if (await state.images.remove(ref)) console.log(`Untagged: ${ref}`);
        else missing.push(name);
      }
      if (missing.length) throw new UserError(`no such image: ${missing.join(', ')}`);
      return 0;
    } finally {
      await state.close();
    }
  },
};
