// kiln bake: a Compose file's build sections and a JSON bake file (groups, inherits) built in one solve;
// a step several targets share runs once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kiln, kilnBin, type KilnResult } from '../helpers/kiln.js';
import { writeContext, errorLine } from '../helpers/build.js';

const suite = buildSuite();

/** kiln bake run in `cwd` (bake files resolve relative paths against it, as buildx does). */
function kilnBake(cwd: string, args: string[]): KilnResult {
  const r = spawnSync(process.execPath, [kilnBin, 'bake', ...args], { cwd, env: { ...process.env, KILN_ROOT: suite.root }, encoding: 'utf8', timeout: 300_000 });
  if (r.error) throw r.error;
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

/** Progress lines naming a step whose name contains `text` (plain progress names each step once). */
function runLines(stderr: string, text: string): string[] {
  return stderr.split('\n').filter((l) => l.includes(text) && /^#\d+ \[/.test(l));
}

/** Whether the step named on `line` (`#N [...] ...`) was a cache hit (`#N CACHED`). */
function cached(stderr: string, line: string): boolean {
  const id = /^#(\d+) /.exec(line)![1];
  return stderr.split('\n').includes(`#${id} CACHED`);
}

test('bake of a 3-service compose.yaml builds the shared base once and tags each service', () => {
  const marker = randomBytes(6).toString('hex');
  const reg = suite.reg.host;
  const dir = writeContext({
    'Dockerfile': [
      `FROM ${suite.base} AS base`,
      `RUN echo "shared base ${marker}" && echo ${marker} > /base.txt`,
      'FROM base AS api',
      'ARG PORT=80',
      'RUN echo "api:$PORT" > /svc',
      'FROM base AS web',
      'RUN echo web > /svc',
      '',
    ].join('\n'),
    // The worker has its own context and Dockerfile; its first step is the same as the base's.
    'worker/worker.Dockerfile': [`FROM ${suite.base}`, `RUN echo "shared base ${marker}" && echo ${marker} > /base.txt`, 'COPY job.sh /job.sh', 'RUN echo worker > /svc', ''].join('\n'),
    'worker/job.sh': 'echo working\n',
    'compose.yaml': [
      'services:',
      '  api:',
      `    image: ${reg}/bake/api:${marker}`,
      '    build:',
      '      context: .',
      '      target: api',
      '      args:',
      '        PORT: "8080"',
      '  web:',
      `    image: ${reg}/bake/web:${marker}`,
      '    build:',
      '      context: .',
      '      target: web',
      '  worker:',
      `    image: ${reg}/bake/worker:${marker}`,
      '    build:',
      '      context: ./worker',
      '      dockerfile: worker.Dockerfile',
      '  db:',
      '    image: postgres:16',
      '',
    ].join('\n'),
  });
  const r = kilnBake(dir, ['--progress', 'plain']);
  assert.equal(r.status, 0, r.stderr);
  const base = runLines(r.stderr, `RUN echo "shared base ${marker}"`);
  assert.equal(base.length, 1, r.stderr);
  assert.equal(cached(r.stderr, base[0]!), false, 'the shared step ran (once)');
  assert.equal(runLines(r.stderr, 'RUN echo web > /svc').length, 1, r.stderr);
  assert.match(r.stderr, /bake: 3 targets \(api, web, worker\)/);
  const run = (svc: string, ...cmd: string[]) => kiln(suite.root, ['run', '--rm', `${reg}/bake/${svc}:${marker}`, ...cmd]);
  assert.equal(run('api', 'cat', '/svc', '/base.txt').stdout, `api:8080\n${marker}\n`);
  assert.equal(run('web', 'cat', '/svc', '/base.txt').stdout, `web\n${marker}\n`);
  assert.equal(run('worker', 'cat', '/svc', '/base.txt', '/job.sh').stdout, `worker\n${marker}\nechoworking\n`.replace('echoworking', 'echo working'));

  // Again: everything cached; one target on its own; --push sends it.
  const again = kilnBake(dir, ['--progress', 'plain', 'web', '--push']);
  assert.equal(again.status, 0, again.stderr);
  const baseAgain = runLines(again.stderr, `RUN echo "shared base ${marker}"`);
  assert.equal(baseAgain.length, 1, again.stderr);
  assert.equal(cached(again.stderr, baseAgain[0]!), true, again.stderr);
  assert.match(again.stderr, /bake: 1 targets \(web\)/);
  const pushed = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${reg}/bake/web:${marker}`], { encoding: 'utf8' }));
  assert.equal(pushed.Layers.length, 3);
});

test('JSON bake file: groups, inherits (args merged, fields overridden), --print, --set and --metadata-file', () => {
  const marker = randomBytes(6).toString('hex');
  const dir = writeContext({
    'app/Dockerfile': `FROM ${suite.base}\nARG MODE\nARG REGION\nRUN echo "$MODE-$REGION-${marker}" > /mode\n`,
    'kiln-bake.json': JSON.stringify({
      group: { default: { targets: ['all'] }, all: { targets: ['prod', 'dev'] } },
      target: {
        common: { context: 'app', args: { REGION: 'eu', MODE: 'unset' }, tags: ['never-used:1'] },
        prod: { inherits: ['common'], args: { MODE: 'prod' }, tags: [`kiln-bake/prod:${marker}`] },
        dev: { inherits: ['prod'], args: { MODE: 'dev' }, tags: [`kiln-bake/dev:${marker}`] },
        loop1: { inherits: ['loop2'] },
        loop2: { inherits: ['loop1'] },
      },
    }),
  });
  const printed = kilnBake(dir, ['--print']);
  assert.equal(printed.status, 0, printed.stderr);
  const t = JSON.parse(printed.stdout).target;
  assert.deepEqual(Object.keys(t), ['prod', 'dev']);
  assert.deepEqual(t.dev.args, { REGION: 'eu', MODE: 'dev' });
  assert.deepEqual(t.dev.tags, [`kiln-bake/dev:${marker}`]);
  assert.equal(t.prod.context, join(dir, 'app'));
  assert.equal(t.prod.dockerfile, join(dir, 'app', 'Dockerfile'));

  const meta = join(dir, 'meta.json');
  const r = kilnBake(dir, ['--progress', 'plain', '--metadata-file', meta, '--set', 'dev.args.REGION=us']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(kiln(suite.root, ['run', '--rm', `kiln-bake/prod:${marker}`, 'cat', '/mode']).stdout, `prod-eu-${marker}\n`);
  assert.equal(kiln(suite.root, ['run', '--rm', `kiln-bake/dev:${marker}`, 'cat', '/mode']).stdout, `dev-us-${marker}\n`);
  const m = JSON.parse(readFileSync(meta, 'utf8'));
  assert.match(m.prod['containerimage.digest'], /^sha256:[0-9a-f]{64}$/);
  assert.notEqual(m.prod['containerimage.digest'], m.dev['containerimage.digest']);

  const cycle = kilnBake(dir, ['loop1']);
  assert.equal(cycle.status, 1);
  assert.equal(errorLine(cycle), 'kiln: target loop1: inheritance cycle (loop1 -> loop2 -> loop1)');
  const unknown = kilnBake(dir, ['nope']);
  assert.equal(unknown.status, 1);
  assert.match(errorLine(unknown), /^kiln: unknown target or group "nope" \(targets: common, prod, dev, loop1, loop2\)$/);
});

test('bake errors: a bad Compose file and a Dockerfile error name the file or target', () => {
  const dir = writeContext({ 'compose.yaml': 'services:\n  a:\n    build:\n      context: .\n      dockerfil: x\n' });
  const r = kilnBake(dir, []);
  assert.equal(r.status, 1);
  assert.equal(errorLine(r), 'kiln: compose.yaml: services.a.build: unknown key "dockerfil"');
  // Build secrets are taken (test/build/pipeline.test.ts); one not defined at the top level is an error.
  const withSecrets = writeContext({ 'compose.yaml': 'services:\n  a:\n    build:\n      context: .\n      secrets: [token]\n' });
  const sr = kilnBake(withSecrets, []);
  assert.equal(sr.status, 1);
  assert.equal(errorLine(sr), 'kiln: compose.yaml: services.a.build.secrets: secret "token" is not defined under the top-level secrets');
  const privileged = kilnBake(writeContext({ 'compose.yaml': 'services:\n  a:\n    build:\n      context: .\n      privileged: true\n' }), []);
  assert.equal(privileged.status, 1);
  assert.equal(errorLine(privileged), 'kiln: compose.yaml: services.a.build.privileged is not supported by kiln bake yet');
  const dir2 = writeContext({ 'Dockerfile': 'FROM scratch\nBOGUS x\n', 'compose.yaml': 'services:\n  a:\n    build: .\n' });
  const r2 = kilnBake(dir2, []);
  assert.equal(r2.status, 1);
  assert.match(errorLine(r2), /^kiln: target a: .*BOGUS/i);
});

test('compose cache_to / cache_from: a fresh state runs nothing the exported cache holds', () => {
  const marker = randomBytes(6).toString('hex');
  const cacheDir = join(suite.outs, `bake-cache-${marker}`);
  const dir = writeContext({
    'Dockerfile': `FROM ${suite.base}\nRUN echo "cached step ${marker}" > /m\n`,
    'compose.yaml': [
      'services:',
      '  app:',
      `    image: kiln-bake/cached:${marker}`,
      '    build:',
      '      context: .',
      `      cache_to: ["type=local,dest=${cacheDir},mode=max"]`,
      `      cache_from: ["type=local,src=${cacheDir}"]`,
      '',
    ].join('\n'),
  });
  const first = kilnBake(dir, ['--progress', 'plain']);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, /cache exported to .*: \d+ records/);
  const fresh = mkdtempSync(join(tmpdir(), 'kiln-state-'));
  try {
    const r = spawnSync(process.execPath, [kilnBin, 'bake', '--progress', 'plain'], { cwd: dir, env: { ...process.env, KILN_ROOT: fresh }, encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    const step = runLines(r.stderr, `RUN echo "cached step ${marker}"`);
    assert.equal(step.length, 1, r.stderr);
    assert.equal(cached(r.stderr, step[0]!), true, r.stderr);
    assert.equal(kiln(fresh, ['run', '--rm', `kiln-bake/cached:${marker}`, 'cat', '/m']).stdout, `cached step ${marker}\n`);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});
