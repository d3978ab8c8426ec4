// One build pipeline: kiln bake targets keep their own RUN settings (a secret one target has is not seen by
// another, a target with network=none has no network while the other has one), and kiln serve decides
// which contexts a RUN mounts writable from the converted graph, not from the Dockerfile's text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnBin, type KilnResult } from '../helpers/kiln.js';
import { writeContext } from '../helpers/build.js';
import { convert, AMD64 } from '../frontend-convert/helpers.js';
import { writableLocalSources } from '../../src/engine/writable-contexts.js';

const suite = buildSuite();

function kilnBake(cwd: string, args: string[]): KilnResult {
  const r = spawnSync(process.execPath, [kilnBin, 'bake', ...args], { cwd, env: { ...process.env, KILN_ROOT: suite.root }, encoding: 'utf8', timeout: 300_000 });
  if (r.error) throw r.error;
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

/** Interfaces in a /proc/net/dev dump. */
const interfaces = (dump: string) =>
  dump
    .split('\n')
    .slice(2)
    .map((l) => l.split(':')[0]!.trim())
    .filter(Boolean);

test('two bake targets keep their own secret, ssh agent and network: each RUN sees only its own target\'s settings', () => {
  const marker = randomBytes(6).toString('hex');
  const secretFile = join(mkdtempSync(join(tmpdir(), 'kiln-secret-')), 's1.txt');
  writeFileSync(secretFile, `secret of a ${marker}`);
  const key = join(mkdtempSync(join(tmpdir(), 'kiln-sshkey-')), 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  // The same probe in both targets (different only by a marker, so neither step is the other's cache hit).
  const probe = (who: string) =>
    [
      `FROM ${suite.base}`,
      `RUN --mount=type=secret,id=s1 --mount=type=ssh echo ${who}-${marker} && (cat /run/secrets/s1 2>/dev/null || echo no-secret) > /secret.txt && cat /proc/net/dev > /net.txt && (test -S /run/buildkit/ssh_agent.0 && echo agent || echo no-agent) > /ssh.txt`,
      '',
    ].join('\n');
  const outA = mkdtempSync(join(tmpdir(), 'kiln-out-a-'));
  const outB = mkdtempSync(join(tmpdir(), 'kiln-out-b-'));
  const dir = writeContext({
    'a.Dockerfile': probe('a'),
    'b.Dockerfile': probe('b'),
    'docker-bake.json': JSON.stringify({
      group: { default: { targets: ['a', 'b'] } },
      target: {
        a: { dockerfile: 'a.Dockerfile', secret: [`id=s1,src=${secretFile}`], output: [`type=local,dest=${outA}`] },
        b: { dockerfile: 'b.Dockerfile', network: 'none', ssh: [`default=${key}`], output: [`type=local,dest=${outB}`] },
      },
    }),
  });
  const r = kilnBake(dir, ['--progress', 'plain']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(readFileSync(join(outA, 'secret.txt'), 'utf8'), new RegExp(`^secret of a ${marker}`));
  assert.equal(readFileSync(join(outB, 'secret.txt'), 'utf8'), 'no-secret\n', 'target b has no secret s1: it must not see a\'s');
  assert.deepEqual(interfaces(readFileSync(join(outB, 'net.txt'), 'utf8')), ['lo'], 'target b asked for network=none');
  assert.ok(interfaces(readFileSync(join(outA, 'net.txt'), 'utf8')).some((i) => i !== 'lo'), 'target a keeps the default network');
  assert.equal(readFileSync(join(outB, 'ssh.txt'), 'utf8'), 'agent\n', 'target b forwards its ssh agent');
  assert.equal(readFileSync(join(outA, 'ssh.txt'), 'utf8'), 'no-agent\n', 'target a has no ssh agent: it must not see b\'s');
});

test('a Compose service\'s build secrets, network and extra_hosts reach only that service\'s RUN steps', () => {
  const marker = randomBytes(6).toString('hex');
  const out = (n: string) => mkdtempSync(join(tmpdir(), `kiln-out-${n}-`));
  const outs = { api: out('api'), web: out('web') };
  const dir = writeContext({
    'Dockerfile': [
      `FROM ${suite.base}`,
      'ARG WHO',
      `RUN --mount=type=secret,id=token echo "$WHO ${marker}" && (cat /run/secrets/token 2>/dev/null || echo no-secret) > /secret.txt && cat /etc/hosts > /hosts.txt`,
      '',
    ].join('\n'),
    'token.txt': `token-${marker}`,
    'compose.yaml': [
      'secrets:',
      '  token:',
      '    file: ./token.txt',
      'services:',
      '  api:',
      '    build:',
      '      context: .',
      '      args: { WHO: api }',
      '      secrets: [token]',
      '      extra_hosts: ["apihost:10.1.2.3"]',
      '  web:',
      '    build:',
      '      context: .',
      '      args: { WHO: web }',
      '      network: none',
      '',
    ].join('\n'),
  });
  const r = kilnBake(dir, ['--set', `api.output=type=local,dest=${outs.api}`, '--set', `web.output=type=local,dest=${outs.web}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(outs.api, 'secret.txt'), 'utf8').trim(), `token-${marker}`);
  assert.match(readFileSync(join(outs.api, 'hosts.txt'), 'utf8'), /^10\.1\.2\.3\s+apihost$/m);
  assert.equal(readFileSync(join(outs.web, 'secret.txt'), 'utf8'), 'no-secret\n');
  assert.doesNotMatch(readFileSync(join(outs.web, 'hosts.txt'), 'utf8'), /apihost/);
});

// ---- which contexts a RUN mounts writable: the converted graph, not the text ----

async function writable(dockerfile: string, opts: Parameters<typeof convert>[1] = {}): Promise<string[]> {
  const r = await convert(dockerfile, { targetPlatform: AMD64, ...opts });
  return [...writableLocalSources(r.definition)].sort();
}

test('the writable contexts come from the graph: rw in a comment or a heredoc does not count, readonly=false, RW and readonly=$ARG expanding to false do', async () => {
  // Text that the old grep (--mount=…rw|readwrite|$) took for a writable mount, and is not one:
  assert.deepEqual(await writable('FROM busybox\n# RUN --mount=type=bind,target=/ctx,rw is what we avoid\nRUN --mount=type=bind,target=/ctx cat /ctx/x\n'), []);
  assert.deepEqual(await writable('FROM busybox\nRUN <<EOF\necho "--mount=type=bind,rw"\nEOF\n'), []);
  assert.deepEqual(await writable('FROM busybox\nARG RO=true\nRUN --mount=type=bind,target=/ctx,readonly=$RO cat /ctx/x\n'), []);
  // Writable mounts the grep missed or only guessed at:
  assert.deepEqual(await writable('FROM busybox\nRUN --mount=type=bind,target=/ctx,readonly=false touch /ctx/x\n'), ['context']);
  assert.deepEqual(await writable('FROM busybox\nARG RO=false\nRUN --mount=type=bind,target=/ctx,readonly=$RO touch /ctx/x\n'), ['context']);
  assert.deepEqual(await writable('FROM busybox\nRUN --mount=type=bind,target=/ctx,RW touch /ctx/x\n'), ['context']);
  assert.deepEqual(await writable('FROM busybox\nRUN --mount=type=bind,target=/ctx,rw touch /ctx/x\n'), ['context']);
  // A read-write mount of a stage is not a context; a named local context is, under its own name.
  assert.deepEqual(await writable('FROM busybox AS s\nRUN true\nFROM busybox\nRUN --mount=type=bind,from=s,target=/s,rw touch /s/x\n'), []);
  assert.deepEqual(
    await writable('FROM busybox\nRUN --mount=type=bind,from=other,target=/o,rw touch /o/x\n', { namedContexts: { other: { kind: 'local', name: 'ctx-other' } } }),
    ['ctx-other'],
  );
});

test('kiln bake --builder builds each target on the remote builder with its own settings', async () => {
  const { serve, clientEnv } = await import('../daemon/serve-helpers.js');
  const sock = join(mkdtempSync(join(tmpdir(), 'kiln-sock-')), 'kiln.sock');
  const server = await serve(['--addr', `unix://${sock}`]);
  try {
    const marker = randomBytes(6).toString('hex');
    const secretFile = join(mkdtempSync(join(tmpdir(), 'kiln-secret-')), 's1.txt');
    writeFileSync(secretFile, `remote secret ${marker}`);
    const probe = (who: string) => [`FROM ${suite.base}`, `RUN --mount=type=secret,id=s1 echo ${who}-${marker} && (cat /run/secrets/s1 2>/dev/null || echo no-secret) > /secret.txt && cat /proc/net/dev > /net.txt`, ''].join('\n');
    const outA = mkdtempSync(join(tmpdir(), 'kiln-out-a-'));
    const outB = mkdtempSync(join(tmpdir(), 'kiln-out-b-'));
    const dir = writeContext({
      'a.Dockerfile': probe('a'),
      'b.Dockerfile': probe('b'),
      'docker-bake.json': JSON.stringify({
        target: {
          a: { dockerfile: 'a.Dockerfile', secret: [`id=s1,src=${secretFile}`], output: [`type=local,dest=${outA}`] },
          b: { dockerfile: 'b.Dockerfile', network: 'none', output: [`type=local,dest=${outB}`] },
        },
      }),
    });
    const r = spawnSync(process.execPath, [kilnBin, 'bake', '--progress', 'plain', '--builder', `unix://${sock}`, 'a', 'b'], { cwd: dir, env: { ...process.env, ...clientEnv(), KILN_ROOT: suite.root }, encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^context: \d+ files, /m, 'the targets went through the builder');
    assert.match(readFileSync(join(outA, 'secret.txt'), 'utf8'), new RegExp(`^remote secret ${marker}`));
    assert.equal(readFileSync(join(outB, 'secret.txt'), 'utf8'), 'no-secret\n');
    assert.deepEqual(interfaces(readFileSync(join(outB, 'net.txt'), 'utf8')), ['lo']);
    assert.ok(interfaces(readFileSync(join(outA, 'net.txt'), 'utf8')).some((i) => i !== 'lo'));
  } finally {
    await server.stop();
  }
});
