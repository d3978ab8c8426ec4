// What users type, as BuildKit v0.25 takes it (each case checked against it with docker-sid).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild } from '../helpers/build.js';

const suite = buildSuite();

test('COPY --chown: names resolve like BuildKit readUser (unknown group keeps the user\'s primary gid, a numeric user is its own gid, unknown names change nothing)', () => {
  const dest = join(suite.outs, 'chown');
  const r = kilnBuild(suite.root, {
    Dockerfile: [
      `FROM ${suite.base}`,
      "RUN echo 'app:x:1234:2345::/home/app:/bin/sh' >> /etc/passwd && echo 'grp:x:777:' >> /etc/group",
      'COPY --chown=app:nogroup f /a',
      'COPY --chown=app f /b',
      'COPY --chown=app:grp f /c',
      'COPY --chown=1234:nogroup f /d',
      'COPY --chown=app:5 f /e',
      'COPY --chown=nouser:grp f /g',
      'COPY --chown=999 f /h',
      'COPY --chown=nouser f /i',
      'COPY --chown=:grp f /j',
      "RUN for f in a b c d e g h i j; do echo $f $(stat -c %u:%g /$f); done > /owners",
      '',
    ].join('\n'),
    f: 'hi\n',
  }, ['-o', `type=local,dest=${dest}`]);
  assert.equal(r.status, 0, r.stderr);
  // The owners BuildKit v0.25 gives the same Dockerfile.
  assert.equal(readFileSync(join(dest, 'owners'), 'utf8'), ['a 1234:2345', 'b 1234:2345', 'c 1234:777', 'd 1234:1234', 'e 1234:5', 'g 0:777', 'h 999:999', 'i 0:0', 'j 0:777', ''].join('\n'));
});
