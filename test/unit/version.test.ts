// The version string lives in base/version.ts only; package.json must say the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KILN_VERSION } from '../../base/version.js';

const repo = resolve(new URL('../../..', import.meta.url).pathname);

test('package.json and base/version.ts agree', () => {
  assert.equal(JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).version, KILN_VERSION);
});

test('no other product file spells the version out', () => {
  const found: string[] = [];
  const spelled = new RegExp(`(^|[^0-9.])${KILN_VERSION.replace(/\./g, '\\.')}($|[^0-9.])`);
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (name === 'node_modules' || name === 'build') continue;
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && p !== join(repo, 'base/version.ts') && spelled.test(readFileSync(p, 'utf8'))) found.push(p);
    }
  };
  for (const top of ['base', 'native', 'cache', 'solver', 'frontends', 'src']) walk(join(repo, top));
  assert.deepEqual(found, []);
});
