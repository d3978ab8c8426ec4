// A COPY from the build context that runs again (a file changed, or a step below it changed) hard-links
// the unchanged files from the layer it made last time, and reuses that whole layer when nothing in it
// differs. What a user must see: exactly the image a fresh build makes (same layer bytes), the changed
// file's new content, and a reused layer only when it is really the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, rmSync, symlinkSync, utimesSync, readdirSync, lstatSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { kilnBuild, writeContext } from '../helpers/build.js';

const suite = buildSuite();
const old = new Date('2001-02-03T04:05:06.789Z');

function contextWithTree(dockerfile: string): string {
  const files: Record<string, string> = { Dockerfile: dockerfile };
  for (let i = 0; i < 40; i++) files[`src/d${i % 4}/f${i}.txt`] = `file ${i}\n`.repeat(i + 1);
  files['src/empty'] = '';
  files['src/tool.sh'] = '#!/bin/sh\necho tool\n';
  const ctx = writeContext(files);
  chmodSync(join(ctx, 'src/tool.sh'), 0o755);
  symlinkSync('d0/f0.txt', join(ctx, 'src/link'));
  // Old, fixed times: the stat index trusts them, and SOURCE_DATE_EPOCH below does not clamp them.
  const touch = (dir: string): void => {
    for (const n of readdirSync(dir)) {
      const p = join(dir, n);
      if (lstatSync(p).isDirectory()) touch(p);
      if (!lstatSync(p).isSymbolicLink()) utimesSync(p, old, old);
    }
  };
  touch(join(ctx, 'src'));
  return ctx;
}

/** Every regular file under a dir with more than one link (a file shared between layers). */
function sharedFiles(dir: string): number {
  let n = 0;
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.nlink > 1) n++;
    }
  };
  walk(dir);
  return n;
}

test('a COPY re-run after one file changed gives the layers of a fresh build, with the new content', () => {
  // Directory times made during the build are clamped to SOURCE_DATE_EPOCH, so layers compare by bytes.
  const env = { ...process.env, SOURCE_DATE_EPOCH: String(Date.parse('2010-01-01') / 1000) };
  const ctx = contextWithTree(`FROM ${suite.base}\nWORKDIR /app\nCOPY src/ ./src/\nRUN cat src/d1/f5.txt | wc -l > /lines\n`);
  const root = tempRoot();
  const fresh = tempRoot();
  try {
    const first = kilnBuild(root, {}, ['-t', 'kiln-test/rerun:1'], { context: ctx, env });
    assert.equal(first.status, 0, first.stderr);
    appendFileSync(join(ctx, 'src/d1/f5.txt'), 'one more line\n');
    utimesSync(join(ctx, 'src/d1/f5.txt'), old, new Date('2001-02-03T04:05:07.123Z'));
    const again = kilnBuild(root, {}, ['-t', 'kiln-test/rerun:1'], { context: ctx, env });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /COPY src\/ \.\/src\/\n#\d+ DONE/);
    const clean = kilnBuild(fresh, {}, [], { context: ctx, env });
    assert.equal(clean.status, 0, clean.stderr);
    assert.deepEqual(again.config?.rootfs?.diff_ids, clean.config?.rootfs?.diff_ids);
    assert.notDeepEqual(again.config?.rootfs?.diff_ids, first.config?.rootfs?.diff_ids);
    const out = kiln(root, ['run', '--rm', 'kiln-test/rerun:1', 'sh', '-c', 'cat /lines; tail -n1 src/d1/f5.txt; ./src/tool.sh; readlink src/link']);
    assert.equal(out.stdout, '7\none more line\ntool\nd0/f0.txt\n');
    // The unchanged files were linked from the first build's layer, not copied again.
    assert.ok(sharedFiles(join(root, 'snapshots', 'layers')) >= 40);
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(fresh, { recursive: true, force: true });
  }
});

test('a COPY re-run because a step below it changed reuses its layer only when nothing in it differs', () => {
  const ctx = contextWithTree(`FROM ${suite.base}\nWORKDIR /app\nARG MODE=755\nRUN chmod $MODE /app && echo $MODE > /mode\nCOPY src/ ./src/\n`);
  const root = tempRoot();
  try {
    const build = (mode: string) => {
      const r = kilnBuild(root, {}, ['-t', 'kiln-test/reuse:1', '--build-arg', `MODE=${mode}`], { context: ctx });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /COPY src\/ \.\/src\/\n#\d+ DONE/);
      return r.config!.rootfs!.diff_ids;
    };
    const a = build('755');
    // Only the RUN's output changed (/mode): the COPY's layer (/app with mode 755 and the files) is the same.
    const b = build('0755');
    assert.notEqual(b.at(-2), a.at(-2));
    assert.equal(b.at(-1), a.at(-1));
    // /app's mode in the base changed: the COPY's layer carries /app, so it is a new layer.
    const c = build('700');
    assert.notEqual(c.at(-1), a.at(-1));
    const out = kiln(root, ['run', '--rm', 'kiln-test/reuse:1', 'sh', '-c', 'stat -c %a /app; cat /app/src/d2/f6.txt | wc -l']);
    assert.equal(out.stdout, '700\n7\n');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a big unchanged context is not walked again, and any change to it is still seen', async () => {
  const files: Record<string, string> = { Dockerfile: `FROM ${suite.base}\nCOPY ctx/ /ctx/\nRUN cat /ctx/d3/f3.txt > /seen\n` };
  for (let i = 0; i < 600; i++) files[`ctx/d${i % 10}/f${i}.txt`] = `file ${i}\n`;
  const ctx = writeContext(files);
  const root = tempRoot();
  // A context entry changed in the last two seconds is not trusted: let the writes age.
  const settle = () => new Promise((r) => setTimeout(r, 2100));
  try {
    await settle();
    const build = () => {
      const r = kilnBuild(root, {}, ['-t', 'kiln-test/bigctx:1'], { context: ctx });
      assert.equal(r.status, 0, r.stderr);
      return r;
    };
    build();
    const warm = build();
    assert.match(warm.stderr, /COPY ctx\/ \/ctx\/\n#\d+ CACHED/);
    // Same size, mtime put back: only the ctime tells.
    const f = join(ctx, 'ctx/d3/f3.txt');
    const before = lstatSync(f);
    writeFileSync(f, 'FILE 3\n');
    utimesSync(f, before.atime, before.mtime);
    await settle();
    const changed = build();
    assert.match(changed.stderr, /COPY ctx\/ \/ctx\/\n#\d+ DONE/);
    assert.equal(kiln(root, ['run', '--rm', 'kiln-test/bigctx:1', 'cat', '/seen']).stdout, 'FILE 3\n');
    // A mode change alone.
    chmodSync(join(ctx, 'ctx/d5/f5.txt'), 0o600);
    await settle();
    assert.match(build().stderr, /COPY ctx\/ \/ctx\/\n#\d+ DONE/);
    assert.equal(kiln(root, ['run', '--rm', 'kiln-test/bigctx:1', 'stat', '-c', '%a', '/ctx/d5/f5.txt']).stdout, '600\n');
    assert.match(build().stderr, /COPY ctx\/ \/ctx\/\n#\d+ CACHED/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
