// `kiln imagetools inspect REF`: what a registry (or kiln's local store) holds for a name, like
// `docker buildx imagetools inspect`: the index and its per-platform manifests, or `--raw` JSON.
import type { Command } from '../command.js';
import { flagBool, flagString, FlagError } from '../flags.js';
import { imageRef } from '../context.js';
import { RegistryClient } from '../../../base/oci/registry/client.js';
import { parseManifest } from '../../../base/oci/manifest.js';
import { formatPlatform } from '../../../base/oci/platform.js';

export const imagetoolsCommand: Command = {
  name: 'imagetools',
  summary: 'Inspect images in a registry (kiln imagetools inspect REF)',
  usage: "kiln imagetools inspect [--raw] [--format '{{json .SBOM}}'] REF",
  flags: [
    { name: 'raw', type: 'bool', description: 'Print the manifest or index JSON as the registry sends it' },
    { name: 'format', type: 'string', valueName: 'TEMPLATE', description: "Print fields: '{{json .SBOM}}', '{{json .Provenance}}', '{{json .Manifest}}', '{{.Name}}'" },
  ],
  async run(args) {
    const [sub, refText, ...rest] = args.positionals;
    if (sub !== 'inspect' || !refText || rest.length) throw new FlagError('kiln imagetools: expected "kiln imagetools inspect [--raw] REF"');
    const ref = imageRef(refText);
    const client = new RegistryClient();
    try {
      const m = await client.getManifest(ref);
      if (flagBool(args, 'raw')) {
        process.stdout.write(m.bytes.toString('utf8') + (m.bytes.at(-1) === 0x0a ? '' : '\n'));
        return 0;
      }
      const format = flagString(args, 'format');
      if (format !== undefined) {
        const { readAttestations, attestationView, renderFormat } = await import('../../attest/read.js');
        let atts: ReturnType<typeof readAttestations> | undefined;
        const attestations = () => (atts ??= readAttestations(client, ref, m.bytes, m.mediaType));
        const out = await renderFormat(format, {
          SBOM: async () => attestationView(await attestations(), 'SBOM'),
          Provenance: async () => attestationView(await attestations(), 'Provenance'),
          Name: async () => ref.toString(),
          Manifest: async () => JSON.parse(m.bytes.toString('utf8')),
        });
        process.stdout.write(out.endsWith('\n') ? out : out + '\n');
        return 0;
      }
      const parsed = parseManifest(m.bytes, { ref: ref.toString(), contentType: m.mediaType });
      const lines = [`Name:      ${ref.toString()}`, `MediaType: ${parsed.mediaType}`, `Digest:    ${m.digest}`];
      if (parsed.kind === 'index') {
        lines.push('', 'Manifests:');
        for (const d of parsed.index.manifests) {
          lines.push(`  Name:      ${ref.name}@${d.digest}`, `  MediaType: ${d.mediaType}`);
          if (d.platform) lines.push(`  Platform:  ${formatPlatform(d.platform)}`);
          lines.push('');
        }
      } else {
        lines.push(`Layers:    ${parsed.manifest.layers.length}`);
      }
      console.log(lines.join('\n').trimEnd());
      return 0;
    } finally {
      await client.close();
    }
  },
};
