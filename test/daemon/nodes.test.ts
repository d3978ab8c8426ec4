// Builder instances (kiln builder create/ls/use/inspect/rm) and a builder of two kiln serve nodes: a
// two-platform build sends each platform to the node that declares it and merges the results into one
// index, identical to the index of the same build made locally.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { writeContext } from '../helpers/build.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { serve, clientEnv, kilnClient, type Served } from './serve-helpers.js';

const suite = buildSuite();
let amd: Served;
let arm: Served;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-nodes-'));
  [amd, arm] = await Promise.all([
    serve(['--addr', `unix://${join(dir, 'amd.sock')}`, '--name', 'amd-box', '--platform', 'linux/amd64']),
    serve(['--addr', `unix://${join(dir, 'arm.sock')}`, '--name', 'arm-box', '--platform', 'linux/arm64']),
  ]);
});
after(async () => {
  await Promise.all([amd?.stop(), arm?.stop()]);
});

test('kiln builder create, ls, use, inspect and rm manage builder instances in KILN_CONFIG_DIR', () => {
  const env = clientEnv();
  const k = (...args: string[]) => kiln(suite.root, args, { env });
  assert.equal(k('builder', 'create', 'one', '--addr', amd.addr).status, 0);
  const dup = k('builder', 'create', 'one', '--addr', amd.addr);
  assert.equal(dup.status, 1);
  assert.equal(dup.stderr.trim(), 'kiln: kiln builder create: builder "one" exists (use --append to add a node)');
  const badAddr = k('builder', 'create', 'two', '--addr', 'http://x');
  assert.equal(badAddr.stderr.trim(), 'kiln: invalid value "http://x" for flag --addr: expected unix:///path or tcp://host:port');
  let ls = k('builder', 'ls');
  assert.match(ls.stdout, /^default \*/m);
  assert.match(ls.stdout, /^ {2}\\_ one0 +unix:\/\/\S+amd\.sock$/m);
  assert.equal(k('builder', 'use', 'one').status, 0);
  ls = k('builder', 'ls');
  assert.match(ls.stdout, /^one \*$/m);
  const inspect = k('builder', 'inspect');
  assert.match(inspect.stdout, /^Name: +one$/m);
  assert.match(inspect.stdout, /^Status: +running$/m);
  assert.match(inspect.stdout, /^Version: +kiln 0\.1\.0 \(protocol 1\), node amd-box$/m);
  assert.match(inspect.stdout, /^Platforms: +linux\/amd64$/m);
  // The builder in use takes builds without --builder.
  const b = kilnClient(suite.root, ['build', '--progress', 'plain', writeContext({ Dockerfile: `FROM ${suite.base}\n` })], env);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stderr, /^context: 1 files, \d+ uploaded .* already on builder amd-box$/m);
  assert.equal(k('builder', 'rm', 'one').status, 0);
  assert.match(k('builder', 'ls').stdout, /^default \* +embedded$/m);
  const gone = k('builder', 'use', 'one');
  assert.equal(gone.stderr.trim(), 'kiln: no builder "one" (see kiln builder ls)');
});

test('a two-node builder splits a two-platform build by platform and merges one index, the same as a local build', () => {
  const env = clientEnv();
  assert.equal(kiln(suite.root, ['builder', 'create', 'mp', '--addr', amd.addr, '--node', 'amd'], { env }).status, 0);
  assert.equal(kiln(suite.root, ['builder', 'create', 'mp', '--append', '--addr', arm.addr, '--node', 'arm'], { env }).status, 0);
  const files = { Dockerfile: `FROM ${suite.base}\nARG TARGETPLATFORM\nCOPY hello /hello\nRUN uname -m > /arch && echo "$TARGETPLATFORM" > /platform\n`, hello: 'hi\n' };
  const ctx = writeContext(files);
  const archive = join(dir, 'split.tar');
  const r = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', 'mp', '--platform', 'linux/amd64,linux/arm64', '-o', `type=oci,dest=${archive}`, '--metadata-file', join(dir, 'split.json'), ctx], env);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^building linux\/amd64 on node amd$/m);
  assert.match(r.stderr, /^building linux\/arm64 on node arm$/m);
  const index = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${archive}`], { encoding: 'utf8' }));
  assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.deepEqual(index.manifests.map((m: any) => `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? '/' + m.platform.variant : ''}`), ['linux/amd64', 'linux/arm64/v8']);
  // Each node built only its platform (the amd node also has the single-platform build of the test above).
  const history = kiln(suite.root, ['builder', 'builds', 'mp'], { env });
  assert.equal(history.status, 0, history.stderr);
  const rows = history.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/));
  assert.deepEqual(rows.filter((c) => c[3] !== 'native').map((c) => [c[0], c[2], c[3]]), [['amd', 'completed', 'linux/amd64'], ['arm', 'completed', 'linux/arm64']]);
  // The same build, made locally in one process, gives the same index.
  const localArchive = join(dir, 'local.tar');
  const local = kiln(tempRoot(), ['build', '--progress', 'plain', '--platform', 'linux/amd64,linux/arm64', '-o', `type=oci,dest=${localArchive}`, '--metadata-file', join(dir, 'local.json'), ctx], { env });
  assert.equal(local.status, 0, local.stderr);
  const digest = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'))['containerimage.digest'];
  assert.equal(digest('split.json'), digest('local.json'));
  // A local export of the split build has a directory per platform, each with what its node ran.
  const out = join(dir, 'split-local');
  const l = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', 'mp', '--platform', 'linux/amd64,linux/arm64', '-o', `type=local,dest=${out}`, ctx], env);
  assert.equal(l.status, 0, l.stderr);
  assert.equal(readFileSync(join(out, 'linux_amd64', 'arch'), 'utf8'), 'x86_64\n');
  assert.equal(readFileSync(join(out, 'linux_arm64', 'arch'), 'utf8'), 'aarch64\n');
  assert.equal(readFileSync(join(out, 'linux_arm64', 'hello'), 'utf8'), 'hi\n');
});
