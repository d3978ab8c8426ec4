#!/usr/bin/env node
// Bundles the compiled CLI (dist/src/cli/main.js and the commands it loads on demand) into a few files
// in dist/bundle with esbuild. Loading ~100 small ES modules costs more start-up time than running a
// container; one bundle per command saves ~60 ms on every `kiln` call. level (a native addon) stays
// external. bin/kiln.js prefers the bundle and falls back to dist/src when it is missing.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
rmSync(`${root}/dist/bundle`, { recursive: true, force: true });
await build({
  entryPoints: [`${root}/dist/src/cli/main.js`],
  outdir: `${root}/dist/bundle`,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['level', 'classic-level'],
  // CommonJS dependencies (undici) call require(): give the ES module bundle one.
  banner: { js: "import { createRequire as __kilnRequire } from 'node:module'; const require = __kilnRequire(import.meta.url);" },
  logLevel: 'warning',
});
