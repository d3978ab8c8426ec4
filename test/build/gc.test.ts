// Build cache disk usage and garbage collection: `kiln du`, `kiln prune` (all, --filter until,
// --keep-storage) and the automatic policy after builds. Images in the store keep working throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { buildSuite } from '../helpers/suite.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { kilnBuild, writeContext } from '../helpers/build.js';

const suite = buildSuite();
const ran = (stderr: string, what: string) => new RegExp(`${what.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\n#\\d+ DONE`).test(stderr);

test('kiln du lists the cache; kiln prune removes it but keeps what images use', () => {
  const root = tempRoot();
  try {
    const tagged = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo kept > /kept\n` });
    const loose = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo loose > /loose\n` });
    assert.equal(kilnBuild(root, {}, ['-t', 'kiln-test/kept'], { context: tagged }).status, 0);
    assert.equal(kilnBuild(root, {}, [], { context: loose }).status, 0);
    const du = kiln(root, ['du']);
    assert.equal(du.status, 0, du.stderr);
    assert.match(du.stdout, /RUN echo kept > \/kept/);
    assert.match(du.stdout, /RUN echo loose > \/loose/);
    assert.match(du.stdout, /^Total:\s+\S+/m);

    const fresh = kiln(root, ['prune', '--filter', 'until=1h']);
    assert.match(fresh.stdout, /^Removed 0 cache records/);
    assert.ok(!ran(kilnBuild(root, {}, [], { context: loose }).stderr, 'RUN echo loose > /loose'), 'recent cache survives --filter until=1h');

    const all = kiln(root, ['prune']);
    assert.equal(all.status, 0, all.stderr);
    assert.match(all.stdout, /^Removed [1-9]\d* cache records; reclaimed/);
    assert.doesNotMatch(kiln(root, ['du']).stdout, /RUN echo/);
    // The tagged image still runs; the loose build runs again.
    assert.equal(kiln(root, ['run', '--rm', 'kiln-test/kept', 'cat', '/kept']).stdout, 'kept\n');
    assert.ok(ran(kilnBuild(root, {}, [], { context: loose }).stderr, 'RUN echo loose > /loose'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('--keep-storage removes least recently used records first; the automatic policy after builds does the same', () => {
  const root = tempRoot();
  try {
    const older = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN head -c 1048576 /dev/zero > /older\n` });
    const newer = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN head -c 1048576 /dev/zero > /newer\n` });
    assert.equal(kilnBuild(root, {}, [], { context: older }).status, 0);
    assert.equal(kilnBuild(root, {}, [], { context: newer }).status, 0);
    // base image 2 MB (used by an image: not reclaimable) + 1 MiB + 1 MiB; keep 3.5 MB: the older goes.
    const r = kiln(root, ['prune', '--keep-storage', '3.5MB']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!ran(kilnBuild(root, {}, [], { context: newer }).stderr, 'RUN head -c 1048576 /dev/zero > /newer'), 'newer kept');
    assert.ok(ran(kilnBuild(root, {}, [], { context: older }).stderr, 'RUN head -c 1048576 /dev/zero > /older'), 'older pruned');

    // A limit of 1 byte after every build: the build cache does not outlive the build, the image does.
    const tiny = { KILN_GC_KEEP_STORAGE: '1' };
    assert.equal(kilnBuild(root, {}, ['-t', 'kiln-test/gc'], { context: newer, env: tiny }).status, 0);
    assert.ok(ran(kilnBuild(root, {}, [], { context: newer, env: tiny }).stderr, 'RUN head -c 1048576 /dev/zero > /newer'));
    assert.equal(kiln(root, ['run', '--rm', 'kiln-test/gc', 'wc', '-c', '/newer']).stdout.trim(), '1048576 /newer');

    // Removing the name lets the next prune free what only it used.
    const rmi = kiln(root, ['rmi', 'kiln-test/gc']);
    assert.equal(rmi.stdout, 'Untagged: docker.io/kiln-test/gc:latest\n');
    assert.match(kiln(root, ['prune']).stdout, /reclaimed [1-9][\d.]*MB/);
    assert.notEqual(kiln(root, ['run', '--rm', 'kiln-test/gc', 'true']).status, 0);
    const again = kiln(root, ['rmi', 'kiln-test/gc']);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /no such image: kiln-test\/gc/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
