// Docker's default device policy in every sandbox (RUN steps and `kiln run`): root in the container may
// mknod any node (so whiteouts and device nodes in a layer still work) but may read or write only null,
// zero, full, random, urandom, tty, console, ptmx, the pts and tun. The host's /dev/kvm, hwrng,
// loop-control and block devices stay closed whether the node is made by mknod, shipped in a pulled layer
// or sits in the build context.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild, writeContext } from '../helpers/build.js';
import { kiln, kilnBin, tempRoot } from '../helpers/kiln.js';
import { busyboxFixture } from '../helpers/fixtures.js';
import { runSandbox, sandboxHelperPath, type SandboxSpec } from '../../native/sandbox.js';

const suite = buildSuite();

/** Host devices a container must never use: name, type, major, minor. All exist on this kind of machine. */
const forbidden: [string, 'c' | 'b', number, number][] = [
  ['kvm', 'c', 10, 232],
  ['hwrng', 'c', 10, 183],
  ['loop-control', 'c', 10, 237],
  ['loop0', 'b', 7, 0],
];
/** Nodes Docker allows; made with mknod in the container, as debootstrap does in a chroot. */
const allowed: [string, number, number][] = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9],
];

/** A shell script that makes each node with mknod and opens it; prints "name: MADE" and "name: OPEN" or
 * "name: REFUSED <error>". */
function probeScript(): string {
  const lines: string[] = ['mkdir -p /probe'];
  const all = [...forbidden.map(([n, t, a, b]) => [n, t, a, b] as const), ...allowed.map(([n, a, b]) => [`own-${n}`, 'c', a, b] as const)];
  for (const [name, type, major, minor] of all) {
    lines.push(`mknod /probe/${name} ${type} ${major} ${minor} && echo "${name}: MADE"`);
    lines.push(`if err=$( (: < /probe/${name}) 2>&1 ); then echo "${name}: OPEN"; else echo "${name}: REFUSED $err"; fi`);
  }
  for (const [name] of allowed) lines.push(`if err=$( (: <> /dev/${name}) 2>&1 ); then echo "dev-${name}: OPEN"; else echo "dev-${name}: REFUSED $err"; fi`);
  return lines.join('\n');
}

function assertPolicy(out: string): void {
  for (const [name] of forbidden) {
    assert.match(out, new RegExp(`(^| )${name}: MADE$`, 'm'), `mknod ${name} is allowed (as in Docker):\n${out}`);
    assert.match(out, new RegExp(`(^| )${name}: REFUSED .*Operation not permitted`, 'm'), `${name} must not open:\n${out}`);
  }
  for (const [name] of allowed) {
    assert.match(out, new RegExp(`(^| )own-${name}: OPEN$`, 'm'), `a node made for ${name} opens:\n${out}`);
    assert.match(out, new RegExp(`(^| )dev-${name}: OPEN$`, 'm'), `/dev/${name} opens:\n${out}`);
  }
}

test('sandbox: root may mknod any node but opens only Docker\'s default devices', async (t) => {
  for (const [name, , major, minor] of forbidden) {
    const host = `/dev/${name}`;
    if (!existsSync(host)) continue;
    const st = statSync(host);
    assert.deepEqual([Math.floor(st.rdev / 256), st.rdev % 256], [major, minor], `${host} numbers`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'kiln-devices-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'upper'));
  mkdirSync(join(dir, 'work'));
  let out = '';
  const r = await runSandbox(
    {
      rootfs: { lowerdirs: [busyboxFixture().rootfs.amd64], upperdir: join(dir, 'upper'), workdir: join(dir, 'work') },
      args: ['sh', '-c', probeScript()],
      env: ['PATH=/bin:/usr/bin'],
      network: 'none',
    },
    { onOutput: (_s, c) => (out += c.toString()) },
  );
  assert.equal(r.exitCode, 0, out);
  assertPolicy(out);
  // The nodes are in the layer, as Docker keeps them.
  assert.equal(statSync(join(dir, 'upper', 'probe', 'kvm')).isCharacterDevice(), true);
});

test('RUN: device nodes made in the RUN, shipped in a pulled layer or in the context cannot be used', () => {
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN ${JSON.stringify(['sh', '-c', probeScript()])}\n` }, ['--no-cache']);
  assert.equal(r.status, 0, r.stderr);
  assertPolicy(r.stderr + r.stdout);

  // An image whose layer carries /dev-nodes/loop-control (pushed by one build, pulled by another state dir).
  const image = `${suite.reg.host}/kiln/with-devices:v1`;
  const push = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN mkdir /dev-nodes && mknod -m 666 /dev-nodes/loop-control c 10 237 && mknod -m 666 /dev-nodes/loop0 b 7 0\n` }, ['-t', image, '--push']);
  assert.equal(push.status, 0, push.stderr);
  const fresh = tempRoot();
  try {
    const context = writeContext({
      Dockerfile: [
        `FROM ${image}`,
        'RUN ls -l /dev-nodes/loop-control && (: <> /dev-nodes/loop-control) 2>&1 | sed "s/^/layer-node: /"; (: < /dev-nodes/loop0) 2>&1 | sed "s/^/layer-block: /"',
        'COPY ctx-node /ctx-node',
        'RUN --mount=type=bind,target=/ctx sh -c \'(: <> /ctx/ctx-node) 2>&1 | sed "s/^/ctx-bind: /"; (: <> /ctx-node) 2>&1 | sed "s/^/ctx-copy: /"; ls -l /ctx-node\'',
        '',
      ].join('\n'),
    });
    execFileSync('mknod', ['-m', '666', join(context, 'ctx-node'), 'c', '10', '237']);
    const b = kilnBuild(fresh, {}, ['--no-cache'], { context });
    assert.equal(b.status, 0, b.stderr);
    const out = b.stderr + b.stdout;
    assert.match(out, /crw-rw-rw- .* 10,\s+237 .*\/dev-nodes\/loop-control/, 'the pulled node is there');
    for (const what of ['layer-node', 'layer-block', 'ctx-bind', 'ctx-copy']) assert.match(out, new RegExp(`${what}: .*Operation not permitted`), `${what}:\n${out}`);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});

test('kiln run: the same device policy', () => {
  const name = 'kiln-test/devices-run';
  const b = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN mknod -m 666 /lc c 10 237\n` }, ['-t', name]);
  assert.equal(b.status, 0, b.stderr);
  const r = kiln(suite.root, ['run', '--rm', name, 'sh', '-c', `${probeScript()}\n(: <> /lc) 2>&1 | sed "s/^/image-node: /"`]);
  assert.equal(r.status, 0, r.stderr);
  assertPolicy(r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /image-node: .*Operation not permitted/);
});

test('rootless mode: the kernel refuses mknod of devices in the user namespace', (t) => {
  const user = 'kiln-rootless';
  // The same user the rootless suite makes: an ordinary user with subordinate id ranges.
  if (spawnSync('id', ['-u', user]).status !== 0) execFileSync('useradd', ['--create-home', '--shell', '/bin/sh', user]);
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const text = readFileSync(file, 'utf8');
    if (!text.split('\n').some((l) => l.startsWith(`${user}:`))) writeFileSync(file, `${text}${text && !text.endsWith('\n') ? '\n' : ''}${user}:300000:65536\n`);
  }
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }));
  const home = mkdtempSync(join(tmpdir(), 'kiln-devices-rootless-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  chownSync(home, uid, gid);
  const script = 'mknod /tmp/kvm c 10 232; echo "mknod=$?"; (: <> /dev/null) && echo null-ok';
  const r = spawnSync('runuser', ['-u', user, '--', 'env', `KILN_ROOT=${join(home, 'state')}`, `HOME=${home}`, process.execPath, kilnBin, 'build', '--progress', 'plain', '--no-cache', '-'], {
    input: `FROM ${suite.base}\nRUN ${JSON.stringify(['sh', '-c', script])}\n`,
    encoding: 'utf8',
    cwd: home,
    timeout: 300_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /mknod=1/);
  assert.match(r.stderr, /Operation not permitted/);
  assert.match(r.stderr, /null-ok/);
});

test('without a v1 devices controller (e.g. a cgroup v2 host) device nodes are unusable: nodev mounts, host nodes in /dev', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-devices-nodev-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const d of ['upper', 'work', 'ctx']) mkdirSync(join(dir, d));
  execFileSync('mknod', ['-m', '666', join(dir, 'ctx', 'loop-control'), 'c', '10', '237']);
  const spec: SandboxSpec = {
    rootfs: { lowerdirs: [busyboxFixture().rootfs.amd64], upperdir: join(dir, 'upper'), workdir: join(dir, 'work') },
    args: ['sh', '-c', `${probeScript()}\n(: <> /ctx/loop-control) 2>&1 | sed "s/^/ctx-node: /"; mknod /dev/kvm c 10 232 && (: < /dev/kvm) 2>&1 | sed "s/^/dev-kvm: /"`],
    env: ['PATH=/bin:/usr/bin'],
    network: 'none',
    mounts: [{ type: 'bind', source: join(dir, 'ctx'), target: '/ctx' }],
  };
  writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec) + '\n');
  // A private mount namespace in which the devices hierarchy is not mounted: the helper cannot find it.
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `umount /sys/fs/cgroup/devices && exec "$0" 3<"$1"`, sandboxHelperPath(), join(dir, 'spec.json')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout + r.stderr;
  for (const [name] of forbidden) assert.match(out, new RegExp(`(^| )${name}: REFUSED .*Permission denied`, 'm'), `${name}:\n${out}`);
  for (const [name] of allowed) assert.match(out, new RegExp(`(^| )dev-${name}: OPEN$`, 'm'), `/dev/${name}:\n${out}`);
  assert.match(out, /ctx-node: .*Permission denied/);
  assert.match(out, /dev-kvm: .*Permission denied/);
});
