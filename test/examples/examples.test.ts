// The Dockerfiles in examples/ build offline from the fixture images and run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, pushBusybox, type TestRegistry } from '../helpers/registry.js';
import { repoRoot } from '../helpers/fixtures.js';
import { kiln, tempRoot } from '../helpers/kiln.js';

let reg: TestRegistry;
let root: string;
const example = (name: string) => join(repoRoot, 'examples', name);

before(async () => {
  reg = await startRegistry();
  pushBusybox(reg, 'busybox', 'latest');
  execFileSync('bash', [join(repoRoot, 'test/fixtures/make-toolchain.sh')], { stdio: 'inherit' });
  execFileSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${join(repoRoot, 'test/.fixtures/tcc/oci')}:latest`, `docker://${reg.host}/tcc:latest`]);
  root = tempRoot();
});
after(async () => {
  await reg?.stop();
  rmSync(root, { recursive: true, force: true });
});

const build = (name: string, tag: string) => kiln(root, ['build', '--progress', 'plain', '--build-arg', `REGISTRY=${reg.host}`, '-t', tag, example(name)], { timeoutMs: 300_000 });

test('examples/hello builds and greets', () => {
  const b = build('hello', 'ex/hello');
  assert.equal(b.status, 0, b.stderr);
  const r = kiln(root, ['run', '--rm', 'ex/hello']);
  assert.equal(r.stdout, 'hello from kiln, world! (built on x86_64, running as nobody)\n');
});

test('examples/multi-stage compiles C in a toolchain stage and runs it from scratch', () => {
  const b = build('multi-stage', 'ex/c');
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stderr, /hello from a C program/); // the RUN in the build stage ran the binary once
  const r = kiln(root, ['run', '--rm', 'ex/c']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hello from a C program built by kiln, running from scratch\n');
});

test('examples/heredoc-cache: heredocs work and the cache mount outlives a build', () => {
  const first = build('heredoc-cache', 'ex/heredoc');
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, /cache mount filled/);
  const again = kiln(root, ['build', '--progress', 'plain', '--build-arg', 'REBUILD=2', '--build-arg', `REGISTRY=${reg.host}`, '-t', 'ex/heredoc', example('heredoc-cache')]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /cache mount kept from an earlier build: build \d+/);
  const r = kiln(root, ['run', '--rm', 'ex/heredoc']);
  assert.match(r.stdout, /^Built by kiln from a heredoc\.\nfirst build: build \d+\n$/);
});
