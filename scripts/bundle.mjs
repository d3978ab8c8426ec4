#!/usr/bin/env node
// Bundles the compiled CLI (dist/src/cli/main.js and the commands it loads on demand) into a few files
// in dist/bundle with esbuild. Loading ~100 small ES modules costs more start-up time than running a
// container; one bundle per command saves ~60 ms on every `kiln` call. level (a native addon) stays
// external. bin/kiln.js prefers the bundle and falls back to dist/src when it is missing.
//
// A kiln process may be running from the bundle while it is rebuilt (several people and test runs share
// a checkout): chunks have content-hashed names and are written first, main.js is renamed into place
// last, and chunks that no main.js uses any more are removed only when they are an hour old.
import { build } from 'esbuild';
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = join(root, 'dist', 'bundle');
const result = await build({
  entryPoints: [`${root}/dist/src/cli/main.js`],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['level', 'classic-level'],
  // CommonJS dependencies (undici) call require(): give the ES module bundle one.
  banner: { js: "import { createRequire as __kilnRequire } from 'node:module'; const require = __kilnRequire(import.meta.url);" },
  logLevel: 'warning',
  write: false,
});
mkdirSync(outdir, { recursive: true });
const fresh = new Set(result.outputFiles.map((f) => basename(f.path)));
const entries = result.outputFiles.filter((f) => basename(f.path) === 'main.js');
for (const f of [...result.outputFiles.filter((f) => !entries.includes(f)), ...entries]) {
  const tmp = `${f.path}.tmp-${process.pid}`;
  writeFileSync(tmp, f.contents);
  renameSync(tmp, f.path);
}
const hourAgo = Date.now() - 3600_000;
for (const name of readdirSync(outdir)) {
  if (fresh.has(name)) continue;
  const p = join(outdir, name);
  try {
    if (statSync(p).mtimeMs < hourAgo) rmSync(p, { force: true });
  } catch {
    // removed meanwhile by another run
  }
}
