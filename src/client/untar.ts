// Unpacks a tar stream a remote builder sent (the per-node OCI layouts of a multi-node build) into a
// directory, through kiln's one tar stack (src/export/apply-layer.ts → cache/layers): nothing is written
// outside the directory, a symlink an earlier entry made is never followed (an entry below it gets a real
// directory instead), and owners, binary xattrs and nanosecond mtimes are kept.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { intoTree } from '../export/apply-layer.js';

export async function extractTar(input: Readable, dest: string): Promise<void> {
  mkdirSync(dest, { recursive: true });
  await intoTree(resolve(dest), (tree) => tree.apply({ data: input, compression: 'none', what: `the tar for ${dest}` }));
}
