// Finds or builds the kiln-fsops helper (fsops.c beside this module's source). The binary is named by
// the hash of its source, so an edited helper is rebuilt and concurrent builders never see a torn file
// (each compiles to a private name and renames).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../src/util/errors.js';

let cached: string | undefined;

function findSource(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // Compiled: dist/cache/layers/ → the source tree's cache/layers/; run from source: this folder.
  for (const candidate of [join(here, '..', '..', '..', 'cache', 'layers', 'fsops.c'), join(here, 'fsops.c')]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`kiln-fsops source fsops.c not found near ${here}`);
}

/** Path of a built helper; `KILN_FSOPS_BIN` overrides (e.g. a packaged prebuilt one). */
export function fsopsBinary(): string {
  if (cached) return cached;
  if (process.env.KILN_FSOPS_BIN) return (cached = process.env.KILN_FSOPS_BIN);
  const source = findSource();
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 16);
  const repoRoot = join(dirname(source), '..', '..');
  const dirs = [join(repoRoot, 'node_modules', '.cache', 'kiln'), join(tmpdir(), `kiln-fsops-${process.getuid?.() ?? 0}`)];
  for (const dir of dirs) {
    const bin = join(dir, `fsops-${hash}`);
    if (existsSync(bin)) return (cached = bin);
  }
  let lastErr: unknown;
  for (const dir of dirs) {
    const bin = join(dir, `fsops-${hash}`);
    const tmp = `${bin}.${process.pid}.tmp`;
    try {
      mkdirSync(dir, { recursive: true });
      execFileSync('gcc', ['-O2', '-Wall', '-o', tmp, source], { stdio: ['ignore', 'ignore', 'pipe'] });
      renameSync(tmp, bin);
      return (cached = bin);
    } catch (err) {
      rmSync(tmp, { force: true });
      lastErr = err;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') break; // no gcc: another dir will not help
    }
  }
  throw new UserError(
    `cannot build kiln's file-system helper from ${source} (needs gcc and libc6-dev; run scripts/setup.sh): ${(lastErr as Error)?.message?.split('\n')[0]}`,
  );
}
