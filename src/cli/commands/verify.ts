// `kiln verify --key cosign.pub REF`: checks the cosign signatures of the image REF names now. Prints the
// verified payloads as JSON (as `cosign verify` does); exit 1 when no signature verifies.
import type { Command } from '../command.js';
import { flagString, FlagError } from '../flags.js';
import { imageRef } from '../context.js';
import { RegistryClient } from '../../../base/oci/registry/client.js';
import { loadPublicKey } from '../../sign/keys.js';
import { verifyImage } from '../../sign/cosign.js';

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'Verify the cosign signatures of an image in a registry',
  usage: 'kiln verify --key FILE REF',
  flags: [{ name: 'key', type: 'string', valueName: 'FILE', description: 'Public key (cosign.pub, PEM PKIX P-256) or the private key file' }],
  async run(args) {
    if (args.positionals.length !== 1) throw new FlagError('kiln verify: expected exactly one image reference');
    const keyPath = flagString(args, 'key');
    if (!keyPath) throw new FlagError('kiln verify: --key FILE is required');
    const key = loadPublicKey(keyPath);
    const ref = imageRef(args.positionals[0]!);
    const client = new RegistryClient();
    try {
      const r = await verifyImage(client, ref, key);
      process.stderr.write(
        `\nVerification for ${ref.toString()} --\nThe following checks were performed on each of these signatures:\n` +
          '  - The cosign claims were validated\n  - The signatures were verified against the specified public key\n',
      );
      process.stdout.write(JSON.stringify(r.verified.map((v) => ({ ...v.payload }))) + '\n');
      return 0;
    } finally {
      await client.close();
    }
  },
};
