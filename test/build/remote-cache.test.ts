// Sharing the cache across machines: --cache-to/--cache-from with a registry (mode=max), a local
// directory and inline cache. Two state dirs stand for two machines. Also: lazy import (a push-only build
// fetches nothing), a corrupted layer refused and rebuilt, export errors, auth, records per platform.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { kilnBuild, writeContext, errorLine } from '../helpers/build.js';
import { startRegistry, pushBusybox } from '../helpers/registry.js';

const suite = buildSuite();

function events(stderr: string): any[] {
  return stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}
/** The Dockerfile steps that ran (not served from a cache). */
function ran(stderr: string): string[] {
  return events(stderr)
    .filter((e) => e.type === 'vertex.started')
    .map((e) => String(e.name))
    .filter((n) => /\b(RUN|COPY|ADD)\b/.test(n))
    .map((n) => n.replace(/^\[[^\]]*\]\s*/, ''));
}
const rawjson = ['--progress', 'rawjson'];

function teamContext() {
  return writeContext({
    Dockerfile: [
      `FROM ${suite.base} AS builder`,
      'COPY a.txt /a.txt',
      'RUN cat /a.txt > /out && echo built >> /out',
      `FROM ${suite.base}`,
      'COPY --from=builder /out /out',
      'COPY b.txt /b.txt',
      'RUN cat /out /b.txt > /final',
      'CMD ["cat", "/final"]',
      '',
    ].join('\n'),
    'a.txt': 'a\n',
    'b.txt': 'b\n',
  });
}

function withRoots<T>(n: number, fn: (...roots: string[]) => T): T {
  const roots = Array.from({ length: n }, () => tempRoot());
  try {
    return fn(...roots);
  } finally {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  }
}

/** The one writer's cache manifest a cache tag's index names (docs/cache-format.md, "Several writers"). */
function cacheManifestOf(reg: string, repo: string, tag: string): any {
  const index = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg}/${repo}:${tag}`], { encoding: 'utf8' }));
  assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.equal(index.manifests.length, 1);
  return JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg}/${repo}@${index.manifests[0].digest}`], { encoding: 'utf8' }));
}

/** Every file name under `dir` (recursively). */
function filesUnder(dir: string): string[] {
  return execFileSync('find', [dir, '-type', 'f', '-printf', '%f\n'], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

test('team scenario: A pushes with a mode=max registry cache; B, cold, runs no step and fetches no layer; after a change B runs only what follows it', () => {
  const reg = suite.reg.host;
  const context = teamContext();
  withRoots(2, (a, b) => {
    const built = kilnBuild(a, {}, ['-t', `${reg}/team/app:1`, '--push', '--cache-to', `type=registry,ref=${reg}/team/app:buildcache,mode=max`, ...rawjson], { context });
    assert.equal(built.status, 0, built.stderr);
    assert.deepEqual(ran(built.stderr).sort(), ['COPY --from=builder /out /out', 'COPY a.txt /a.txt', 'COPY b.txt /b.txt', 'RUN cat /a.txt > /out && echo built >> /out', 'RUN cat /out /b.txt > /final'].sort());
    const manifest = cacheManifestOf(reg, 'team/app', 'buildcache');
    assert.equal(manifest.artifactType, 'application/vnd.kiln.cache.v1');
    assert.equal(manifest.config.mediaType, 'application/vnd.kiln.cache.config.v1+json');

    // B: a fresh machine. Nothing runs; the push mounts A's layers, so none is downloaded.
    const cold = kilnBuild(b, {}, ['-t', `${reg}/team/app:2`, '--push', '--cache-from', `type=registry,ref=${reg}/team/app:buildcache`, ...rawjson], { context });
    assert.equal(cold.status, 0, cold.stderr);
    assert.deepEqual(ran(cold.stderr), []);
    const pushedA = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${reg}/team/app:1`], { encoding: 'utf8' }));
    const pushedB = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${reg}/team/app:2`], { encoding: 'utf8' }));
    assert.equal(pushedB.Digest, pushedA.Digest, 'the same commit gives the same image');
    const copied = mkdtempSync(join(tmpdir(), 'kiln-skopeo-copy-'));
    try {
      execFileSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg}/team/app:2`, `oci:${copied}:app`], { stdio: 'pipe' });
      assert.ok(existsSync(join(copied, 'index.json')));
    } finally {
      rmSync(copied, { recursive: true, force: true });
    }
    const held = new Set(filesUnder(b));
    for (const layer of pushedA.Layers as string[]) assert.ok(!held.has(layer.replace('sha256:', '')), `layer ${layer} was downloaded`);

    // One file changed: only the steps after its COPY run (their parents are fetched now).
    writeFileSync(join(context, 'b.txt'), 'b changed\n');
    const changed = kilnBuild(b, {}, ['-t', 'team-app:changed', '--cache-from', `type=registry,ref=${reg}/team/app:buildcache`, ...rawjson], { context });
    assert.equal(changed.status, 0, changed.stderr);
    assert.deepEqual(ran(changed.stderr).sort(), ['COPY b.txt /b.txt', 'RUN cat /out /b.txt > /final']);
    const run = kiln(b, ['run', '--rm', 'team-app:changed']);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'a\nbuilt\nb changed\n');
    // What B fetched is now in its own cache. The builder stage was never fetched (its output's content
    // digest came with the cache), so without --cache-from only it runs again; the same output keeps the
    // final stage cached.
    const again = kilnBuild(b, {}, ['-t', 'team-app:changed', ...rawjson], { context });
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(ran(again.stderr).sort(), ['COPY a.txt /a.txt', 'RUN cat /a.txt > /out && echo built >> /out']);
  });
});

test('mode=min exports only the final stage; type=local caches round-trip; a corrupted layer is refused with a warning and rebuilt', () => {
  const context = teamContext();
  const minDir = mkdtempSync(join(tmpdir(), 'kiln-cache-min-'));
  const maxDir = mkdtempSync(join(tmpdir(), 'kiln-cache-max-'));
  try {
    withRoots(4, (a, b, c, d) => {
      const built = kilnBuild(a, {}, ['--cache-to', `type=local,dest=${minDir}`, '--cache-to', `type=local,dest=${maxDir},mode=max`], { context });
      assert.equal(built.status, 0, built.stderr);
      assert.ok(existsSync(join(maxDir, 'index.json')) && existsSync(join(maxDir, 'oci-layout')));

      // mode=min: the builder stage is not in the cache, so its RUN runs; the final stage's steps do not.
      const fromMin = kilnBuild(b, {}, ['--cache-from', `type=local,src=${minDir}`, ...rawjson], { context });
      assert.equal(fromMin.status, 0, fromMin.stderr);
      assert.deepEqual(ran(fromMin.stderr).sort(), ['COPY a.txt /a.txt', 'RUN cat /a.txt > /out && echo built >> /out']);

      const fromMax = kilnBuild(c, {}, ['-t', 'from-max', '--cache-from', `type=local,src=${maxDir}`, ...rawjson], { context });
      assert.equal(fromMax.status, 0, fromMax.stderr);
      assert.deepEqual(ran(fromMax.stderr), []);
      assert.equal(kiln(c, ['run', '--rm', 'from-max']).stdout, 'a\nbuilt\nb\n');

      // Corrupt the top layer of the final RUN's record: same size, other bytes.
      const index = JSON.parse(readFileSync(join(maxDir, 'index.json'), 'utf8'));
      const blob = (dg: string) => join(maxDir, 'blobs', 'sha256', dg.replace('sha256:', ''));
      // The tag names the writers' index (docs/cache-format.md, "Several writers"); one writer here.
      const writers = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
      assert.equal(writers.manifests.length, 1);
      const manifest = JSON.parse(readFileSync(blob(writers.manifests[0].digest), 'utf8'));
      const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8'));
      const finalRun = config.records.find((r: any) => /RUN cat \/out/.test(r.description ?? ''));
      assert.ok(finalRun, 'the record of the last RUN is exported with its description');
      const top = manifest.layers[finalRun.layers.at(-1)];
      const size = readFileSync(blob(top.digest)).length;
      writeFileSync(blob(top.digest), Buffer.alloc(size, 7));

      const refused = kilnBuild(d, {}, ['-t', 'after-corruption', '--cache-from', `type=local,src=${maxDir}`, ...rawjson], { context });
      assert.equal(refused.status, 0, refused.stderr);
      const warning = events(refused.stderr).find((e) => e.type === 'vertex.warning');
      assert.match(warning?.message ?? '', new RegExp(`cache record refused, running the step: layer ${top.digest} .*digest mismatch`));
      assert.deepEqual(ran(refused.stderr), ['RUN cat /out /b.txt > /final']);
      assert.equal(kiln(d, ['run', '--rm', 'after-corruption']).stdout, 'a\nbuilt\nb\n');
    });
  } finally {
    rmSync(minDir, { recursive: true, force: true });
    rmSync(maxDir, { recursive: true, force: true });
  }
});

test('type=inline puts the cache in the pushed image config; --cache-from IMAGE reuses it', () => {
  const reg = suite.reg.host;
  const context = writeContext({ Dockerfile: `FROM ${suite.base}\nCOPY f.txt /f.txt\nRUN wc -c /f.txt > /n\n`, 'f.txt': 'inline\n' });
  withRoots(2, (a, b) => {
    const built = kilnBuild(a, {}, ['-t', `${reg}/team/inline:1`, '--push', '--cache-to', 'type=inline'], { context });
    assert.equal(built.status, 0, built.stderr);
    const config = JSON.parse(execFileSync('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', `docker://${reg}/team/inline:1`], { encoding: 'utf8' }));
    assert.equal(config['kiln.cache.v1'].version, 1);
    assert.ok(config['kiln.cache.v1'].records.length >= 2);
    const cold = kilnBuild(b, {}, ['--cache-from', `${reg}/team/inline:1`, ...rawjson], { context });
    assert.equal(cold.status, 0, cold.stderr);
    assert.deepEqual(ran(cold.stderr), []);
  });
});

test('cache export errors warn and keep the build unless ignore-error=false; an auth registry works with credentials', async () => {
  const creds = { user: 'ci', password: 'cache-pw' };
  const reg = await startRegistry({ auth: creds });
  const dockerConfig = mkdtempSync(join(tmpdir(), 'kiln-dockercfg-'));
  const noCreds = mkdtempSync(join(tmpdir(), 'kiln-dockercfg-none-'));
  try {
    pushBusybox(reg, 'library/busybox', 'latest', creds);
    writeFileSync(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${creds.user}:${creds.password}`).toString('base64') } } }));
    const context = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo cached-in-auth-registry > /x\n` });
    const to = `type=registry,ref=${reg.host}/ci/cache:main,mode=max`;
    withRoots(2, (a, b) => {
      const warned = kilnBuild(a, {}, ['--cache-to', to], { context, env: { DOCKER_CONFIG: noCreds } });
      assert.equal(warned.status, 0, warned.stderr);
      assert.match(warned.stderr, new RegExp(`^WARNING: cache export to ${reg.host}/ci/cache:main failed \\(build kept\\): .*unauthorized`, 'm'));
      const failed = kilnBuild(a, {}, ['--cache-to', `${to},ignore-error=false`], { context, env: { DOCKER_CONFIG: noCreds } });
      assert.notEqual(failed.status, 0);
      assert.match(errorLine(failed), new RegExp(`cache export to ${reg.host}/ci/cache:main failed: .*unauthorized`));

      const ok = kilnBuild(a, {}, ['--cache-to', to], { context, env: { DOCKER_CONFIG: dockerConfig } });
      assert.equal(ok.status, 0, ok.stderr);
      assert.doesNotMatch(ok.stderr, /WARNING/);
      const imported = kilnBuild(b, {}, ['--cache-from', `type=registry,ref=${reg.host}/ci/cache:main`, ...rawjson], { context, env: { DOCKER_CONFIG: dockerConfig } });
      assert.equal(imported.status, 0, imported.stderr);
      assert.deepEqual(ran(imported.stderr), []);
      // An unreadable cache source only warns: the build runs its steps.
      const missing = kilnBuild(b, {}, ['--no-cache', '--cache-from', `type=registry,ref=${reg.host}/ci/cache:nope`], { context, env: { DOCKER_CONFIG: dockerConfig } });
      assert.equal(missing.status, 0, missing.stderr);
      assert.match(missing.stderr, /^WARNING: cannot import cache from .*ci\/cache:nope/m);
    });
  } finally {
    await reg.stop();
    rmSync(dockerConfig, { recursive: true, force: true });
    rmSync(noCreds, { recursive: true, force: true });
  }
});

test('bad --cache-to / --cache-from values are one-line flag errors', () => {
  const bad = (args: string[], re: RegExp) => {
    const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\n` }, args);
    assert.notEqual(r.status, 0);
    assert.match(errorLine(r), re);
  };
  bad(['--cache-to', 'type=registry,mode=max'], /--cache-to: ref=REGISTRY\/REPO:TAG is required/);
  bad(['--cache-to', 'type=registry,ref=x/y:z,mode=all'], /--cache-to: mode must be min or max/);
  bad(['--cache-to', 'type=gha'], /--cache-to: unsupported type "gha"/);
  bad(['--cache-from', 'type=local'], /--cache-from: type=local needs src=DIR/);
});

test('a two-platform build exports records per platform; a fresh machine imports both and runs nothing', () => {
  const reg = suite.reg.host;
  const context = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN uname -m > /arch\n` });
  withRoots(2, (a, b) => {
    const built = kilnBuild(a, {}, ['--platform', 'linux/amd64,linux/arm64', '--cache-to', `type=registry,ref=${reg}/team/multi:cache,mode=max`], { context });
    assert.equal(built.status, 0, built.stderr);
    const manifest = cacheManifestOf(reg, 'team/multi', 'cache');
    const config = JSON.parse(execFileSync('curl', ['-sf', `http://${reg}/v2/team/multi/blobs/${manifest.config.digest}`], { encoding: 'utf8' }));
    const runs = config.records.filter((r: any) => /RUN uname/.test(r.description ?? ''));
    assert.deepEqual(runs.map((r: any) => r.platform).sort(), ['linux/amd64', 'linux/arm64']);
    const dest = join(tmpdir(), `kiln-mp-cache-${process.pid}`);
    const cold = kilnBuild(b, {}, ['--platform', 'linux/amd64,linux/arm64', '--cache-from', `type=registry,ref=${reg}/team/multi:cache`, '-o', `type=local,dest=${dest}`, ...rawjson], { context });
    try {
      assert.equal(cold.status, 0, cold.stderr);
      assert.deepEqual(ran(cold.stderr), []);
      assert.equal(readFileSync(join(dest, 'linux_arm64/arch'), 'utf8'), 'aarch64\n');
      assert.equal(readFileSync(join(dest, 'linux_amd64/arch'), 'utf8'), 'x86_64\n');
    } finally {
      rmSync(dest, { recursive: true, force: true });
    }
  });
});
