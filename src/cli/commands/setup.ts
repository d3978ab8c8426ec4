// `kiln setup binfmt`: register qemu-user-static emulators for foreign platforms (root only).
import type { Command } from '../command.js';
import { FlagError, flagString } from '../flags.js';
import { registerEmulator } from '../../../native/binfmt-setup.js';
import { emulatorFor } from '../../../native/binfmt.js';

export const setupCommand: Command = {
  name: 'setup',
  summary: 'Set up this machine (binfmt: register QEMU emulators for foreign platforms)',
  usage: 'kiln setup binfmt [--platforms linux/arm64,linux/arm/v7,...]',
  flags: [{ name: 'platforms', type: 'string', valueName: 'LIST', description: 'Platforms to set up (default: linux/arm64,linux/arm/v7,linux/ppc64le,linux/s390x,linux/riscv64)' }],
  async run(args) {
    if (args.positionals[0] !== 'binfmt' || args.positionals.length !== 1) throw new FlagError('kiln setup: expected "kiln setup binfmt"');
    const list = (flagString(args, 'platforms') ?? 'linux/arm64,linux/arm/v7,linux/ppc64le,linux/s390x,linux/riscv64').split(',');
    for (const p of list) {
      const [os = 'linux', architecture = '', variant] = p.trim().split('/');
      const platform = { os, architecture, variant };
      const name = registerEmulator(platform);
      const v = emulatorFor(platform);
      console.log(`${p.trim()}: ${name ? `registered ${name}` : 'already runnable'}${v.runnable && !v.native ? ` (${v.interpreter}, flags F)` : v.runnable ? ' (native)' : ''}`);
    }
    return 0;
  },
};
