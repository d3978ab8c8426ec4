#!/usr/bin/env node
// Builds kiln's native helpers with plain gcc calls: native/build/kiln-sandbox (the sandbox runtime,
// from native/src), native/build/kiln-fsops (mknod/xattr/utimensat server, from native/fsops) and
// native/build/kiln-userns (the user namespace of rootless mode, from native/rootless). A
// binary newer than its sources is not rebuilt. Runs at `npm install` and before `npm test`.
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = join(root, 'native', 'build');
const force = process.argv.includes('--force');
const helpers = [
  { name: 'kiln-sandbox', src: join(root, 'native', 'src'), libs: ['-lseccomp'], needs: '/usr/include/seccomp.h' },
  { name: 'kiln-fsops', src: join(root, 'native', 'fsops'), libs: [], needs: '/usr/include/stdio.h' },
  { name: 'kiln-userns', src: join(root, 'native', 'rootless'), libs: [], needs: '/usr/include/stdio.h' },
];

const hasGcc = spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status === 0;
for (const h of helpers) {
  const out = join(outDir, h.name);
  const sources = readdirSync(h.src).filter((f) => f.endsWith('.c') || f.endsWith('.h')).map((f) => join(h.src, f));
  const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs), statSync(fileURLToPath(import.meta.url)).mtimeMs);
  if (!force && existsSync(out) && statSync(out).mtimeMs > newest) continue;
  if (!hasGcc || !existsSync(h.needs)) {
    console.error(`kiln: cannot build ${h.name}: ${!hasGcc ? 'gcc' : h.needs} not found; run: apt-get install gcc libc6-dev libseccomp-dev`);
    process.exit(1);
  }
  mkdirSync(outDir, { recursive: true });
  const args = ['-O2', '-Wall', '-Wextra', '-Wno-unused-parameter', '-std=gnu11', '-o', `${out}.tmp`, ...sources.filter((f) => f.endsWith('.c')), ...h.libs];
  if (spawnSync('gcc', args, { stdio: 'inherit' }).status !== 0) {
    console.error(`kiln: building native/build/${h.name} failed (see the gcc output above)`);
    process.exit(1);
  }
  // Rename into place so a concurrent run never executes a half-written binary.
  renameSync(`${out}.tmp`, out);
}
