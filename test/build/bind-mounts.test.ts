// RUN --mount=type=bind: read-only by default; with rw the RUN may write, and the writes are thrown away
// as in BuildKit: the build context and the cached layers under the mount are never changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild, writeContext, errorLine } from '../helpers/build.js';

const suite = buildSuite();

test('bind mounts: read-only by default; rw writes are seen by the RUN and thrown away (context and stages untouched)', () => {
  const context = writeContext({
    Dockerfile: [
      `FROM ${suite.base} AS s`,
      'RUN echo orig > /f',
      `FROM ${suite.base}`,
      "RUN --mount=type=bind,rw,target=/ctx sh -c 'echo changed > /ctx/data.txt && echo new > /ctx/new.txt && cat /ctx/data.txt /ctx/new.txt > /seen'",
      "RUN --mount=type=bind,from=s,rw,target=/s sh -c 'echo mod > /s/f && cat /s/f > /seen-stage'",
      'RUN --mount=type=bind,from=s,target=/s cat /s/f > /after',
      '',
    ].join('\n'),
    'data.txt': 'original\n',
  });
  const dest = join(suite.outs, 'bind-rw');
  const r = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}`], { context });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(dest, 'seen'), 'utf8'), 'changed\nnew\n');
  assert.equal(readFileSync(join(dest, 'seen-stage'), 'utf8'), 'mod\n');
  assert.equal(readFileSync(join(dest, 'after'), 'utf8'), 'orig\n', 'the stage under the rw mount is unchanged');
  assert.equal(readFileSync(join(context, 'data.txt'), 'utf8'), 'original\n', 'the context is unchanged');
  assert.equal(existsSync(join(context, 'new.txt')), false);

  const ro = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN --mount=type=bind,target=/ctx touch /ctx/x\n` });
  assert.notEqual(ro.status, 0);
  assert.match(ro.stderr, /Read-only file system/);
  assert.match(errorLine(ro), /Dockerfile:2: .*exit code: 1/);
});
