// The persistent layer cache: keys that do not depend on the machine or state dir, precise
// invalidation, two builds at once, and kill -9 at any moment of a build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync, utimesSync, cpSync, mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kiln, kilnAsync, tempRoot } from '../helpers/kiln.js';
import { waitFor } from '../helpers/wait.js';
import { kilnBuild, writeContext } from '../helpers/build.js';

const suite = buildSuite();

function events(stderr: string): any[] {
  return stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}
const cached = (stderr: string, step: string) => new RegExp(`${step.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\n#\\d+ CACHED`).test(stderr);

test('cache keys are the same in another state dir, for a copy of the context elsewhere, whatever the mtimes', () => {
  const files = { Dockerfile: `FROM ${suite.base}\nCOPY app /app\nRUN cat /app/a > /copy\n`, 'app/a': 'a\n', 'app/b': 'b\n' };
  const one = writeContext(files);
  const other = mkdtempSync(join(tmpdir(), 'kiln-ctx-copy-'));
  cpSync(one, other, { recursive: true });
  utimesSync(join(other, 'app/a'), new Date(2001, 1, 1), new Date(2001, 1, 1));
  const rootA = tempRoot();
  const rootB = tempRoot();
  try {
    const a = kilnBuild(rootA, {}, ['--progress', 'rawjson'], { context: one });
    const b = kilnBuild(rootB, {}, ['--progress', 'rawjson'], { context: other });
    assert.equal(a.status, 0, a.stderr);
    assert.equal(b.status, 0, b.stderr);
    const keys = (s: string) => Object.fromEntries(events(s).filter((e) => e.type === 'vertex.started' && e.key).map((e) => [e.name, e.key]));
    const ka = keys(a.stderr);
    assert.ok(Object.keys(ka).some((n) => n.includes('COPY app /app')));
    assert.deepEqual(keys(b.stderr), ka);
  } finally {
    for (const d of [rootA, rootB, other]) rmSync(d, { recursive: true, force: true });
  }
});

test('a change invalidates exactly the steps that depend on it', () => {
  const context = writeContext({
    Dockerfile: `FROM ${suite.base}\nCOPY first.txt /first.txt\nRUN cat /first.txt > /r1\nCOPY second.txt /second.txt\nRUN cat /second.txt > /r2\n`,
    'first.txt': '1\n',
    'second.txt': '2\n',
    'unused.txt': 'u\n',
  });
  assert.equal(kilnBuild(suite.root, {}, [], { context }).status, 0);
  writeFileSync(join(context, 'unused.txt'), 'changed, but no COPY reads it\n');
  const untouched = kilnBuild(suite.root, {}, [], { context });
  for (const s of ['COPY first.txt /first.txt', 'RUN cat /first.txt > /r1', 'COPY second.txt /second.txt', 'RUN cat /second.txt > /r2']) assert.ok(cached(untouched.stderr, s), s);
  writeFileSync(join(context, 'second.txt'), '2 changed\n');
  const r = kilnBuild(suite.root, {}, [], { context });
  assert.ok(cached(r.stderr, 'COPY first.txt /first.txt'));
  assert.ok(cached(r.stderr, 'RUN cat /first.txt > /r1'));
  assert.ok(!cached(r.stderr, 'COPY second.txt /second.txt'));
  assert.ok(!cached(r.stderr, 'RUN cat /second.txt > /r2'));
});

test('two builds at once on one state dir both succeed, and a step both need runs once', async () => {
  const root = tempRoot();
  const context = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN sleep 1 && echo shared-step-ran\n` });
  try {
    const first = kilnAsync(root, ['build', '--progress', 'plain', context]);
    // The second starts once the first holds the state (it records itself as the lock's owner).
    await waitFor(() => existsSync(join(root, 'db.owner')), { timeoutMs: 30_000, what: 'the first build to hold the state' });
    const second = kilnAsync(root, ['build', '--progress', 'plain', context]);
    const [a, b] = await Promise.all([first.done, second.done]);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(b.status, 0, b.stderr);
    // The step's output line (`#N 1.012 shared-step-ran`), not its name, shows where it ran.
    const runs = [a.stderr, b.stderr].filter((s) => /^#\d+ \d+\.\d+ shared-step-ran$/m.test(s)).length;
    assert.equal(runs, 1, 'the RUN ran in one build and was CACHED in the other');
    assert.match(a.stderr + b.stderr, /waiting for another kiln process/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('kill -9 at any moment of a build leaves a state the next build uses correctly', async () => {
  const root = tempRoot();
  const context = writeContext({
    Dockerfile: `FROM ${suite.base}\nCOPY data /data\nRUN head -c 30000000 /dev/urandom > /big && echo made\nRUN md5sum /data/* > /sums\n`,
    'data/a': 'a\n',
    'data/b': 'b\n',
  });
  try {
    // Kill points spread over the whole build: pulling, COPY, RUN, exporting the 30 MB layer, recording.
    for (const delay of [150, 400, 700, 1000, 1300, 1700, 2200]) {
      const run = kilnAsync(root, ['build', '--progress', 'plain', '-t', 'kiln-test/crash', context]);
      await new Promise((r) => setTimeout(r, delay));
      run.child.kill('SIGKILL');
      await run.done;
    }
    const r = kilnBuild(root, {}, ['-t', 'kiln-test/crash'], { context });
    assert.equal(r.status, 0, r.stderr);
    const out = kiln(root, ['run', '--rm', 'kiln-test/crash', 'sh', '-c', 'wc -c < /big; cat /sums']);
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /^30000000\n[0-9a-f]{32}  \/data\/a\n[0-9a-f]{32}  \/data\/b\n$/);
    // A second build after the crashes is fully cached and gives the same image.
    const again = kilnBuild(root, {}, ['-t', 'kiln-test/crash'], { context });
    assert.equal(again.digest, r.digest);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a base image tag resolved once is reused: a warm build needs no registry; --pull asks again', async () => {
  const { startRegistry, pushBusybox } = await import('../helpers/registry.js');
  const reg = await startRegistry();
  const root = tempRoot();
  try {
    const base = pushBusybox(reg, 'library/busybox', 'latest');
    const context = writeContext({ Dockerfile: `FROM ${base}\nRUN echo offline > /o\n` });
    assert.equal(kilnBuild(root, {}, [], { context }).status, 0);
    await reg.stop();
    const warm = kilnBuild(root, {}, [], { context });
    assert.equal(warm.status, 0, warm.stderr);
    const pulled = kilnBuild(root, {}, ['--pull'], { context });
    assert.notEqual(pulled.status, 0);
    assert.match(pulled.stderr.trim().split('\n').at(-1)!, /cannot reach registry/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
