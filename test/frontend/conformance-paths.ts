// Where the conformance data lives: test/fixtures/conformance (copied from public projects; see its README).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';

export const conformanceDir = join(repoRoot, 'test', 'fixtures', 'conformance');
export const buildkitDockerfileDir = join(conformanceDir, 'buildkit', 'frontend', 'dockerfile');

/** Every Dockerfile below a conformance folder (names containing "dockerfile"), sorted. */
export function conformanceDockerfiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) out.push(...conformanceDockerfiles(p));
    else if (st.isFile() && /dockerfile/i.test(name) && !name.endsWith('.dockerignore')) out.push(p);
  }
  return out;
}
