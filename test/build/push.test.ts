// --push / -o type=registry to a real registry: blobs (small and chunked), manifest, tag; a second push
// uploads nothing; auth-protected registries with credentials from DOCKER_CONFIG.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { startRegistry, pushBusybox } from '../helpers/registry.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { kilnBuild, writeContext, errorLine } from '../helpers/build.js';

const suite = buildSuite();

test('--push sends the image; it pulls back and runs; a second push skips every blob', () => {
  const name = `${suite.reg.host}/kiln/pushed:v1`;
  const context = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN head -c 20000000 /dev/urandom > /big && echo pushed > /msg\nCMD ["cat", "/msg"]\n` });
  const r = kilnBuild(suite.root, {}, ['-t', name, '--push'], { context });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`push ${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: sha256:[0-9a-f]{64} uploaded`));
  // The busybox layer came from library/busybox on the same registry: it is mounted, not sent again.
  assert.match(r.stderr, / mounted$/m);
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${name}`], { encoding: 'utf8' }));
  assert.equal(inspect.Layers.length, 2);
  assert.equal(inspect.Digest, r.digest);

  const fresh = tempRoot();
  try {
    const run = kiln(fresh, ['run', '--rm', name]);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'pushed\n');
    assert.equal(kiln(fresh, ['run', '--rm', name, 'wc', '-c', '/big']).stdout.trim(), '20000000 /big');
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }

  const again = kilnBuild(suite.root, {}, ['-o', `type=registry,name=${name}`], { context });
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stderr, / uploaded$/m);
  assert.match(again.stderr, / skipped$/m);
});

test('push to an auth-protected registry uses DOCKER_CONFIG credentials and fails clearly without', async () => {
  const creds = { user: 'builder', password: 's3cret-pw' };
  const reg = await startRegistry({ auth: creds });
  const dockerConfig = mkdtempSync(join(tmpdir(), 'kiln-dockercfg-'));
  try {
    pushBusybox(reg, 'library/busybox', 'latest', creds);
    writeFileSync(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${creds.user}:${creds.password}`).toString('base64') } } }));
    const name = `${reg.host}/team/app:1`;
    const context = writeContext({ Dockerfile: `FROM ${reg.host}/library/busybox:latest\nRUN echo secure > /s\n` });
    const ok = kilnBuild(suite.root, {}, ['-t', name, '--push'], { context, env: { DOCKER_CONFIG: dockerConfig } });
    assert.equal(ok.status, 0, ok.stderr);
    const out = execFileSync('skopeo', ['inspect', '--tls-verify=false', '--creds', `${creds.user}:${creds.password}`, `docker://${name}`], { encoding: 'utf8' });
    assert.equal(JSON.parse(out).Layers.length, 2);
    const empty = mkdtempSync(join(tmpdir(), 'kiln-dockercfg-empty-'));
    const denied = kilnBuild(suite.root, {}, ['-t', `${reg.host}/team/other:1`, '--push'], { context, env: { DOCKER_CONFIG: empty } });
    rmSync(empty, { recursive: true, force: true });
    assert.notEqual(denied.status, 0);
    assert.match(errorLine(denied), /unauthorized/);
  } finally {
    await reg.stop();
    rmSync(dockerConfig, { recursive: true, force: true });
  }
});

test('--push without a name is a clear error', () => {
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\n` }, ['--push']);
  assert.notEqual(r.status, 0);
  assert.match(errorLine(r), /--push needs a name/);
});
