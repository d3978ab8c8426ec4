#!/usr/bin/env node
// Runs every compiled test file with node:test. Node 20's --test takes no globs, so list them here.
// Usage: npm test [-- substring...]   (only test files whose path contains one of the substrings)
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('../dist/test', import.meta.url).pathname;
const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js') && (filters.length === 0 || filters.some((f) => p.includes(f)))) files.push(p);
  }
})(root);
if (files.length === 0) {
  console.error('no test files found under dist/test (did the build run?)');
  process.exit(1);
}
// The offline base images are made once here, before test files run in parallel.
const fixtures = new URL('../test/fixtures/', import.meta.url).pathname;
for (const script of ['make-busybox.sh', 'make-toolchain.sh']) {
  const made = spawnSync('bash', [join(fixtures, script)], { stdio: 'inherit' });
  if (made.status !== 0) {
    console.error(`test fixtures: ${script} failed`);
    process.exit(1);
  }
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
