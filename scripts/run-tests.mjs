#!/usr/bin/env node
// Runs compiled test files with node:test. Node 20's --test takes no globs, so list them here.
// Usage: npm test [-- substring...]   every test file (only those whose path contains a substring)
//        npm run test:unit [-- substring...]   the fast tier: no root, no registry, no dockerd, no fixtures
// The unit tier runs what `npm run build` (or `npm test`'s pretest) compiled into dist/: it does not
// compile, so a user who cannot write dist/ can run it.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

/**
 * The fast tier: everything under test/unit/, plus pure tests that live beside the code they test
 * (they read only files of the repository and ../shared). Each runs in well under a second.
 */
export const UNIT_TIER = [
  'unit/',
  'frontend/corpus.test.js',
  'frontend/dockerignore.test.js',
  'frontend/heredoc-directives.test.js',
  'frontend/instructions.test.js',
  'frontend/lint.test.js',
  'frontend/parser-conformance.test.js',
  'frontend/shell-lexer-conformance.test.js',
  'frontend-convert/',
  'oci/model.test.js',
  'oci/platform.test.js',
  'oci/reference.test.js',
  'oci/auth-parsing.test.js',
  'native/binfmt.test.js',
  'cli/units.test.js',
];

const repo = new URL('..', import.meta.url).pathname;
const root = join(repo, 'dist/test');
const args = process.argv.slice(2);
const unit = args[0] === '--unit';
const filters = unit ? args.slice(1) : args;

if (!existsSync(root)) {
  console.error('no compiled tests under dist/test: run `npm run build` first');
  process.exit(1);
}
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const rel = relative(root, p);
    if (statSync(p).isDirectory()) walk(p);
    else if (!name.endsWith('.test.js')) continue;
    else if (unit && !UNIT_TIER.some((t) => rel.startsWith(t))) continue;
    // Matched against the repo-relative path: the checkout's own path (e.g. /work/realworld/) must not match.
    else if (filters.length === 0 || filters.some((f) => join('test', rel).includes(f))) files.push(p);
  }
})(root);
if (files.length === 0) {
  console.error(`no test files found under dist/test${filters.length ? ` matching ${filters.join(', ')}` : ''} (did the build run?)`);
  process.exit(1);
}

if (unit) {
  // A test source newer than its compiled file would run stale code: say so rather than pass quietly.
  const stale = files.filter((js) => {
    const ts = join(repo, relative(join(repo, 'dist'), js)).replace(/\.js$/, '.ts');
    return existsSync(ts) && statSync(ts).mtimeMs > statSync(js).mtimeMs;
  });
  if (stale.length) {
    console.error(`compiled tests are older than their sources (run \`npm run build\`): ${stale.map((f) => relative(root, f)).join(', ')}`);
    process.exit(1);
  }
} else {
  // The offline base images are made once here, before test files run in parallel.
  const fixtures = join(repo, 'test/fixtures/');
  for (const script of ['make-busybox.sh', 'make-toolchain.sh']) {
    const made = spawnSync('bash', [join(fixtures, script)], { stdio: 'inherit' });
    if (made.status !== 0) {
      console.error(`test fixtures: ${script} failed`);
      process.exit(1);
    }
  }
}
// Every test makes its own state dirs: kiln's default would leave a resident engine behind each first
// build. Tests build in-process unless they ask otherwise; test/resident tests the engine and the default.
const env = { ...process.env, KILN_ENGINE: process.env.KILN_ENGINE ?? 'off' };
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${unit ? 4 : 2}`, ...files], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
