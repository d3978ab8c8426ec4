// Where the kiln-fsops helper is: built by scripts/build-native.mjs into native/build (at npm install and
// before npm test); KILN_FSOPS_BIN overrides it (e.g. a packaged copy).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../base/errors.js';

export function fsopsBinary(): string {
  if (process.env.KILN_FSOPS_BIN) return process.env.KILN_FSOPS_BIN;
  // Works from the source tree (cache/layers) and from dist/cache/layers.
  for (const rel of ['../../native/build/kiln-fsops', '../../../native/build/kiln-fsops']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new UserError("kiln's file-system helper native/build/kiln-fsops is missing: run `npm install` (needs gcc and libc6-dev)");
}
