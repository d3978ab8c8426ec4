// `kiln sign --key cosign.key REF`: signs the image REF names (its digest) in cosign's format and pushes the
// signature to REPO:sha256-HEX.sig. `kiln sign --generate-key [PREFIX]` writes PREFIX.key / PREFIX.pub.
import type { Command } from '../command.js';
import { flagBool, flagList, flagString, FlagError } from '../flags.js';
import { imageRef } from '../context.js';
import { RegistryClient } from '../../../base/oci/registry/client.js';
import { generateKeyFiles, loadPrivateKey } from '../../sign/keys.js';
import { signImage } from '../../sign/cosign.js';

export function parseAnnotations(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new FlagError(`invalid value "${a}" for flag --annotation: expected KEY=VALUE`);
    out[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return out;
}

export const signCommand: Command = {
  name: 'sign',
  summary: 'Sign an image in a registry (cosign format)',
  usage: 'kiln sign --key FILE [-a KEY=VALUE]... REF | kiln sign --generate-key [PREFIX]',
  flags: [
    { name: 'key', type: 'string', valueName: 'FILE', description: 'Private key: cosign.key (password in COSIGN_PASSWORD), or PEM PKCS#8 / EC P-256' },
    { name: 'annotation', short: 'a', type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'Extra claims in the signed payload (optional section)' },
    { name: 'generate-key', type: 'bool', description: 'Write a new P-256 key pair PREFIX.key (cosign format) and PREFIX.pub (default prefix: cosign)' },
  ],
  async run(args) {
    if (flagBool(args, 'generate-key')) {
      if (args.positionals.length > 1) throw new FlagError('kiln sign --generate-key: expected at most one PREFIX');
      const { privatePath, publicPath } = generateKeyFiles(args.positionals[0] ?? 'cosign');
      process.stderr.write(`Private key written to ${privatePath}\nPublic key written to ${publicPath}\n`);
      return 0;
    }
    if (args.positionals.length !== 1) throw new FlagError('kiln sign: expected exactly one image reference');
    const keyPath = flagString(args, 'key');
    if (!keyPath) throw new FlagError('kiln sign: --key FILE is required');
    const key = loadPrivateKey(keyPath);
    const ref = imageRef(args.positionals[0]!);
    const client = new RegistryClient();
    try {
      const r = await signImage(client, ref, key, { annotations: parseAnnotations(flagList(args, 'annotation')) });
      process.stderr.write(`${r.added ? 'Pushing signature to' : 'Already signed with this key:'} ${r.signatureRef}\n`);
      process.stdout.write(`${r.digest}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
