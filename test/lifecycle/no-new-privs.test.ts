// RUN and kiln run do not set no_new_privs, as BuildKit's RUN and docker run do not: a setuid-root binary
// run as a non-root USER gains euid 0 (what `USER dev` + `RUN sudo …` needs). `kiln run --security-opt
// no-new-privileges` sets it, as docker's does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild } from '../helpers/build.js';
import { kiln } from '../helpers/kiln.js';

const suite = buildSuite();

/** A static binary that prints its real and effective uid, like `id` would after sudo. */
function whoamiBinary(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-suid-'));
  writeFileSync(join(dir, 'ids.c'), '#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf("ruid=%d euid=%d\\n", (int)getuid(), (int)geteuid()); return 0; }\n');
  execFileSync('gcc', ['-static', '-O1', '-o', join(dir, 'ids'), join(dir, 'ids.c')]);
  return readFileSync(join(dir, 'ids')).toString('base64');
}

test('RUN as a non-root USER gains euid 0 through a setuid-root binary; NoNewPrivs is 0 as in BuildKit', () => {
  const dest = join(suite.outs, 'suid');
  const files = {
    Dockerfile: [
      `FROM ${suite.base}`,
      'COPY ids.b64 /tmp/ids.b64',
      'RUN base64 -d /tmp/ids.b64 > /usr/bin/ids && chown 0:0 /usr/bin/ids && chmod 4755 /usr/bin/ids && mkdir -m 777 /out',
      'USER nobody',
      'RUN /usr/bin/ids > /out/ids && grep NoNewPrivs /proc/self/status > /out/nnp',
    ].join('\n') + '\n',
    'ids.b64': whoamiBinary(),
  };
  const r = kilnBuild(suite.root, files, ['-o', `type=local,dest=${dest}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(dest, 'out', 'ids'), 'utf8'), 'ruid=65534 euid=0\n');
  assert.equal(readFileSync(join(dest, 'out', 'nnp'), 'utf8'), 'NoNewPrivs:\t0\n');

  const tagged = kilnBuild(suite.root, files, ['-t', 'kiln-test/suid']);
  assert.equal(tagged.status, 0, tagged.stderr);

  // kiln run as docker run: no no_new_privs by default; --security-opt no-new-privileges sets it.
  const plain = kiln(suite.root, ['run', '--rm', '-u', 'nobody', 'kiln-test/suid', '/usr/bin/ids']);
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(plain.stdout, 'ruid=65534 euid=0\n');
  const nnp = kiln(suite.root, ['run', '--rm', '-u', 'nobody', '--security-opt', 'no-new-privileges', 'kiln-test/suid', 'sh', '-c', '/usr/bin/ids; grep NoNewPrivs /proc/self/status']);
  assert.equal(nnp.status, 0, nnp.stderr);
  assert.match(nnp.stdout, /^ruid=65534 euid=65534$/m);
  assert.match(nnp.stdout, /^NoNewPrivs:\s+1$/m);
  const bad = kiln(suite.root, ['run', '--rm', '--security-opt', 'seccomp=unconfined', 'kiln-test/suid', 'true']);
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr.trim(), 'kiln: invalid value "seccomp=unconfined" for flag --security-opt: kiln supports no-new-privileges[:true|false]');
});
