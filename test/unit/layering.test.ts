// The layer table in docs/design.md is the rule; this test reads every import of the product code and
// fails on an edge the table forbids: a folder imports only folders listed above it (or itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const repo = resolve(new URL('../../..', import.meta.url).pathname);

/** Folders in layer order, bottom first, from the table under "## Layers" in docs/design.md. */
export function layerTable(markdown: string): string[] {
  const section = markdown.split(/^## /m).find((s) => s.startsWith('Layers'));
  if (!section) throw new Error('docs/design.md has no "## Layers" section');
  const folders: string[] = [];
  for (const line of section.split('\n')) {
    const m = /^\|\s*\d+\s*\|\s*`([^`]+)`/.exec(line);
    if (m) folders.push(m[1]!.replace(/\/$/, ''));
  }
  return folders;
}

/** Relative import specifiers of one TypeScript source (static, re-exports and dynamic). */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|^import\s+['"](\.[^'"]+)['"]/gm;
  for (let m = re.exec(source); m; m = re.exec(source)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

function productFiles(folders: string[]): string[] {
  const tops = [...new Set(folders.map((f) => f.split('/')[0]!))];
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (name === 'node_modules' || name === 'build') continue;
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(p);
    }
  };
  for (const t of tops) walk(join(repo, t));
  return files;
}

/** The table folder a path belongs to: the longest listed prefix. */
function owner(folders: string[], path: string): string | undefined {
  const rel = relative(repo, path);
  let best: string | undefined;
  for (const f of folders) if ((rel === f || rel.startsWith(f + '/')) && (!best || f.length > best.length)) best = f;
  return best;
}

/** Every (from folder, to folder, file, specifier) edge that points at a folder not below its own. */
export function forbiddenEdges(folders: string[]): string[] {
  const rank = new Map(folders.map((f, i) => [f, i]));
  const bad: string[] = [];
  for (const file of productFiles(folders)) {
    const from = owner(folders, file);
    if (!from) {
      bad.push(`${relative(repo, file)}: in no folder of the layer table`);
      continue;
    }
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const to = owner(folders, resolve(dirname(file), spec));
      if (to === undefined) bad.push(`${relative(repo, file)} imports ${spec}: outside the layer table`);
      else if (to !== from && rank.get(to)! > rank.get(from)!) bad.push(`${from} -> ${to} (${relative(repo, file)} imports ${spec})`);
    }
  }
  return bad;
}

test('the layer table lists each folder once, bottom first', () => {
  const folders = layerTable(readFileSync(join(repo, 'docs/design.md'), 'utf8'));
  assert.ok(folders.length >= 10, `too few folders in the table: ${folders.join(', ')}`);
  assert.equal(new Set(folders).size, folders.length);
  assert.equal(folders[0], 'base');
});

test('no import points up the layer table', () => {
  const folders = layerTable(readFileSync(join(repo, 'docs/design.md'), 'utf8'));
  assert.deepEqual(forbiddenEdges(folders), []);
});

test('the import reader sees static, re-export, type-only and dynamic imports', () => {
  const src = [
    "import { a } from './a.js';",
    "import type { B } from '../b.js';",
    "export { c } from './c.js';",
    "export * from './d.js';",
    "const e = await import('./e.js');",
    "import './f.js';",
    "import { g } from 'node:fs';",
  ].join('\n');
  assert.deepEqual(importsOf(src), ['./a.js', '../b.js', './c.js', './d.js', './e.js', './f.js']);
});
