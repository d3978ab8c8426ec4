// Multi-platform caches: one --cache-to from a `--platform linux/amd64,linux/arm64` build serves a cold
// machine (a fresh state dir) that builds only arm64, only amd64, or both: no cached step runs, and the
// files are the ones of each platform.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { tempRoot } from '../helpers/kiln.js';
import { kilnBuild, writeContext } from '../helpers/build.js';

const suite = buildSuite();

/** The Dockerfile steps that started (were not served from a cache). */
function ran(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((e) => e.type === 'vertex.started' && /\b(RUN|COPY|ADD)\b/.test(String(e.name)))
    .map((e) => String(e.name));
}

function context(): string {
  return writeContext({
    Dockerfile: [
      `FROM ${suite.base} AS tool`,
      'ARG TARGETARCH',
      'COPY input.txt /input.txt',
      'RUN echo "$TARGETARCH $(uname -m)" > /tool && cat /input.txt >> /tool',
      `FROM ${suite.base}`,
      'COPY --from=tool /tool /tool',
      'RUN cat /tool > /final && uname -m >> /final',
      '',
    ].join('\n'),
    'input.txt': 'shared input\n',
  });
}

const expected: Record<string, string> = {
  'linux/amd64': 'amd64 x86_64\nshared input\nx86_64\n',
  'linux/arm64': 'arm64 aarch64\nshared input\naarch64\n',
};

test('one --cache-to from an amd64+arm64 build: a cold machine building arm64 only, amd64 only, or both runs no step', () => {
  const ctx = context();
  const cacheRef = `${suite.reg.host}/team/multiplatform:cache`;
  const localCache = mkdtempSync(join(tmpdir(), 'kiln-mp-local-'));
  const roots: string[] = [];
  const root = () => {
    const r = tempRoot();
    roots.push(r);
    return r;
  };
  try {
    const built = kilnBuild(root(), {}, ['--platform', 'linux/amd64,linux/arm64', '--cache-to', `type=registry,ref=${cacheRef},mode=max`, '--cache-to', `type=local,dest=${localCache},mode=max`, '--progress', 'rawjson'], { context: ctx });
    assert.equal(built.status, 0, built.stderr);
    assert.equal(ran(built.stderr).length, 8, 'the first build runs every step of both platforms');

    const froms = { registry: ['--cache-from', `type=registry,ref=${cacheRef}`], local: ['--cache-from', `type=local,src=${localCache}`] };
    for (const [carrier, from] of Object.entries(froms)) {
      for (const platforms of [['linux/arm64'], ['linux/amd64'], ['linux/amd64', 'linux/arm64']]) {
        const dest = mkdtempSync(join(tmpdir(), 'kiln-mp-out-'));
        try {
          const cold = kilnBuild(root(), {}, ['--platform', platforms.join(','), ...from, '-o', `type=local,dest=${dest}`, '--progress', 'rawjson'], { context: ctx });
          assert.equal(cold.status, 0, cold.stderr);
          assert.deepEqual(ran(cold.stderr), [], `${carrier} cache, --platform ${platforms.join(',')}: no step runs`);
          for (const p of platforms) {
            const file = platforms.length > 1 ? join(dest, p.replace('/', '_'), 'final') : join(dest, 'final');
            assert.equal(readFileSync(file, 'utf8'), expected[p], `${carrier} cache, ${p} of --platform ${platforms.join(',')}`);
          }
        } finally {
          rmSync(dest, { recursive: true, force: true });
        }
      }
    }
  } finally {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
    rmSync(localCache, { recursive: true, force: true });
  }
});

test('control: a cache from an amd64-only build does not serve arm64 (the steps run, with arm64 results)', () => {
  const ctx = context();
  const cacheRef = `${suite.reg.host}/team/multiplatform:amd64-only`;
  const [a, b] = [tempRoot(), tempRoot()];
  const dest = mkdtempSync(join(tmpdir(), 'kiln-mp-out-'));
  try {
    const built = kilnBuild(a, {}, ['--platform', 'linux/amd64', '--cache-to', `type=registry,ref=${cacheRef},mode=max`], { context: ctx });
    assert.equal(built.status, 0, built.stderr);
    const cold = kilnBuild(b, {}, ['--platform', 'linux/arm64', '--cache-from', `type=registry,ref=${cacheRef}`, '-o', `type=local,dest=${dest}`, '--progress', 'rawjson'], { context: ctx });
    assert.equal(cold.status, 0, cold.stderr);
    assert.equal(ran(cold.stderr).length, 4);
    assert.equal(readFileSync(join(dest, 'final'), 'utf8'), expected['linux/arm64']);
  } finally {
    for (const r of [a, b, dest]) rmSync(r, { recursive: true, force: true });
  }
});
