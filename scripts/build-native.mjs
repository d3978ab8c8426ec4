#!/usr/bin/env node
// Builds the native sandbox helper (native/build/kiln-sandbox) with a plain gcc call. Skips the build when
// the binary is newer than every source file. Runs at `npm install` and before `npm test`.
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const srcDir = join(root, 'native', 'src');
const outDir = join(root, 'native', 'build');
const out = join(outDir, 'kiln-sandbox');
const sources = readdirSync(srcDir).filter((f) => f.endsWith('.c') || f.endsWith('.h')).map((f) => join(srcDir, f));
const force = process.argv.includes('--force');

const newestSource = Math.max(...sources.map((f) => statSync(f).mtimeMs), statSync(fileURLToPath(import.meta.url)).mtimeMs);
if (!force && existsSync(out) && statSync(out).mtimeMs > newestSource) process.exit(0);

const hasGcc = spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status === 0;
const hasSeccomp = existsSync('/usr/include/seccomp.h');
if (!hasGcc || !hasSeccomp) {
  console.error(`kiln: cannot build the sandbox helper: ${!hasGcc ? 'gcc' : 'libseccomp headers'} not found; run: apt-get install gcc libseccomp-dev`);
  process.exit(1);
}
mkdirSync(outDir, { recursive: true });
const args = ['-O2', '-Wall', '-Wextra', '-Wno-unused-parameter', '-std=gnu11', '-o', out + '.tmp',
  ...sources.filter((f) => f.endsWith('.c')), '-lseccomp'];
const r = spawnSync('gcc', args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.error('kiln: building native/build/kiln-sandbox failed (see the gcc output above)');
  process.exit(1);
}
// Rename into place so a concurrent test run never executes a half-written binary.
spawnSync('mv', ['-f', out + '.tmp', out]);
