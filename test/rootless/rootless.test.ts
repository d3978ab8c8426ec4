// Rootless mode: kiln run by an ordinary user (uid != 0) re-executes itself in a user namespace with the
// user's /etc/subuid and /etc/subgid ranges mapped. The test makes a real user (kiln-rootless) with ranges,
// and drives `kiln build` / `kiln run` as that user with runuser against the test registry.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, pushBusybox, type TestRegistry } from '../helpers/registry.js';
import { kilnBin } from '../helpers/kiln.js';

const USER = 'kiln-rootless';
let reg: TestRegistry;
let base: string;
let home: string; // owned by the user: state dir, contexts, outputs
let uid: number;
let gid: number;

function ensureUser(): void {
  if (spawnSync('id', ['-u', USER]).status !== 0) execFileSync('useradd', ['--create-home', '--shell', '/bin/sh', USER]);
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const text = readFileSync(file, 'utf8');
    if (!text.split('\n').some((l) => l.startsWith(`${USER}:`))) writeFileSync(file, `${text}${text && !text.endsWith('\n') ? '\n' : ''}${USER}:300000:65536\n`);
  }
  uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }));
  gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }));
}

interface Result { status: number; stdout: string; stderr: string }

/** A second user with no subordinate ranges at all (useradd may have given it some: they are removed). */
const NOIDS_USER = 'kiln-rootless-noids';
function ensureUserWithoutRanges(): void {
  if (spawnSync('id', ['-u', NOIDS_USER]).status !== 0) execFileSync('useradd', ['--no-create-home', '--shell', '/bin/sh', NOIDS_USER]);
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const text = readFileSync(file, 'utf8');
    const kept = text.split('\n').filter((l) => !l.startsWith(`${NOIDS_USER}:`));
    if (kept.length !== text.split('\n').length) writeFileSync(file, kept.join('\n'));
  }
}

/** kiln as the test user (a real login of it: runuser), with a state dir it owns. */
function asUser(args: string[], env: Record<string, string> = {}, user = USER): Result {
  const all: Record<string, string> = { KILN_ROOT: join(home, user === USER ? 'state' : `state-${user}`), HOME: home, ...env };
  const vars = Object.entries(all).filter(([, v]) => v !== '').map(([k, v]) => `${k}=${v}`);
  const r = spawnSync('runuser', ['-u', user, '--', 'env', '-u', 'KILN_ROOT', ...vars, process.execPath, kilnBin, ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    cwd: home,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

/** A build context the user can read. */
function context(name: string, files: Record<string, string>): string {
  const dir = join(home, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  for (const p of [dir, ...Object.keys(files).map((f) => join(dir, f))]) chownSync(p, uid, gid);
  return dir;
}

/** Entries of every layer of the single image in an OCI archive, as `tar -tv --numeric-owner` lines. */
function layerListings(archive: string): string[][] {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-rootless-oci-'));
  try {
    execFileSync('tar', ['-xf', archive, '-C', dir]);
    const blob = (d: string) => join(dir, 'blobs', 'sha256', d.replace('sha256:', ''));
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    let manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
    if (manifest.manifests) manifest = JSON.parse(readFileSync(blob(manifest.manifests[0].digest), 'utf8'));
    return manifest.layers.map((l: { digest: string }) =>
      execFileSync('tar', ['-tvzf', blob(l.digest), '--numeric-owner'], { encoding: 'utf8' }).trim().split('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

before(async () => {
  ensureUser();
  ensureUserWithoutRanges();
  reg = await startRegistry();
  base = pushBusybox(reg, 'library/busybox', 'latest');
  home = mkdtempSync(join(tmpdir(), 'kiln-rootless-'));
  chownSync(home, uid, gid);
});

after(async () => {
  await reg?.stop();
  // The user's files include ones owned by its subordinate ids: remove them as root.
  if (home) rmSync(home, { recursive: true, force: true });
});

const dockerfile = (b: string) =>
  [
    `FROM ${b} AS tools`,
    'RUN echo made-in-stage > /tool',
    `FROM ${b}`,
    'COPY --chown=1234:1234 owned.txt /owned.txt',
    'COPY --from=tools /tool /tool',
    'RUN id -u > /uid && rm /bin/ls && mkdir /d && touch /d/old',
    'RUN rm -rf /d && mkdir /d && touch /d/new',
    'USER 1000:1000',
    'RUN touch /tmp/by-1000',
  ].join('\n');

test('an ordinary user builds into its own state dir: COPY --chown, multi-stage, RUN as uid 0, whiteouts, opaque dirs', () => {
  const ctx = context('ctx', { Dockerfile: dockerfile(base), 'owned.txt': 'mine\n' });
  const r = asUser(['build', '--progress', 'plain', '-t', 'rootless/img', ctx]);
  assert.equal(r.status, 0, r.stderr);
  // The state dir is the user's, not root's.
  assert.equal(statSync(join(home, 'state')).uid, uid);
  for (const e of readdirSync(join(home, 'state'))) assert.equal(statSync(join(home, 'state', e)).uid, uid, e);

  const out = join(home, 'out');
  mkdirSync(out);
  chownSync(out, uid, gid);
  const archive = join(out, 'img.tar');
  const e = asUser(['build', '--progress', 'plain', '-o', `type=oci,dest=${archive}`, ctx]);
  assert.equal(e.status, 0, e.stderr);
  const layers = layerListings(archive);
  const all = layers.flat();
  const owned = all.find((l) => / owned\.txt$/.test(l));
  assert.match(owned ?? '', / 1234\/1234 /, `COPY --chown owner in the layer tar: ${owned}`);
  assert.ok(all.some((l) => / bin\/\.wh\.ls$/.test(l)), 'rm in a RUN gives a whiteout');
  assert.ok(all.some((l) => / d\/\.wh\.\.wh\.\.opq$/.test(l)), 'a dir removed and made again is opaque');
});

test('kiln run as the user: the image USER (1000) or --user 0, RUN as uid 0, ownership from COPY --chown, the RUN changes', () => {
  const run = (cmd: string) => asUser(['run', '--rm', 'rootless/img', 'sh', '-c', cmd]);
  const r = run('id -u; cat /uid; stat -c %u:%g /owned.txt /tmp/by-1000; cat /tool; ls /d; test -e /bin/ls || echo ls-gone');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['1000', '0', '1234:1234', '1000:1000', 'made-in-stage', 'new', 'ls-gone']);
  assert.equal(asUser(['run', '--rm', '--user', '0', 'rootless/img', 'id', '-u']).stdout, '0\n');
  assert.equal(run('exit 7').status, 7);
});

test('rootless: a chown beyond the mapped ids is a one-line error naming the range', () => {
  const ctx = context('ctx-big-id', { Dockerfile: `FROM ${base}\nCOPY --chown=70000:70000 a /a\n`, a: 'a\n' });
  const r = asUser(['build', '--progress', 'plain', ctx]);
  assert.equal(r.status, 1);
  assert.match(r.stderr.trim().split('\n').at(-1)!, /^kiln: Dockerfile:2: .*chown.*: rootless mode maps only ids 0-65536 \(your uid and the \/etc\/subuid and \/etc\/subgid ranges of kiln-rootless\)/);
});

test('rootless RUN mounts: a secret, a cache mount, --network=none; a RUN cannot make device nodes', () => {
  const secret = join(home, 'token');
  writeFileSync(secret, 's3cret');
  chownSync(secret, uid, gid);
  const ctx = context('ctx-mounts', {
    Dockerfile: [
      `FROM ${base}`,
      'RUN --mount=type=secret,id=token cat /run/secrets/token > /got',
      'RUN --mount=type=cache,target=/c echo x >> /c/n && wc -l < /c/n > /cache-lines',
      'RUN --network=none ls /sys/class/net > /nets',
      'RUN mknod /null c 1 3 2> /mknod-error; test ! -e /null',
    ].join('\n'),
  });
  const out = join(home, 'out-mounts');
  const r = asUser(['build', '--progress', 'plain', '--secret', `id=token,src=${secret}`, '-o', `type=local,dest=${out}`, ctx]);
  assert.equal(r.status, 0, r.stderr);
  const read = (f: string) => readFileSync(join(out, f), 'utf8');
  assert.equal(read('got'), 's3cret');
  assert.equal(read('cache-lines'), '1\n');
  assert.equal(read('nets'), 'lo\n');
  assert.match(read('mknod-error'), /Operation not permitted/);
});

test('rootless: limits are reported as not enforced, the default network is the host network', () => {
  const config = join(home, 'config.json');
  writeFileSync(config, JSON.stringify({ limits: { run: { memory: '512m', pids: 100 } } }));
  chownSync(config, uid, gid);
  const ctx = context('ctx-limits', { Dockerfile: `FROM ${base}\nRUN cat /sys/class/net/*/address | sort > /macs && echo limited\n` });
  const r = asUser(['build', '--progress', 'plain', ctx], { KILN_CONFIG: config });
  assert.equal(r.status, 0, r.stderr);
  const warnings = r.stderr.split('\n').filter((l) => l.includes('warning: rootless mode'));
  assert.equal(warnings.filter((l) => /resource limits are not enforced \(memory, pids\)/.test(l)).length, 1, r.stderr);
  assert.equal(warnings.filter((l) => /no bridge network/.test(l)).length, 1, r.stderr);
});

test('without KILN_ROOT the user\'s state dir is ~/.local/share/kiln: kiln pull and kiln images', () => {
  const env = { KILN_ROOT: '' };
  const pull = asUser(['pull', base], env);
  assert.equal(pull.status, 0, pull.stderr);
  const state = join(home, '.local', 'share', 'kiln');
  assert.equal(statSync(join(state, 'db')).uid, uid);
  const images = asUser(['images'], env);
  assert.equal(images.status, 0, images.stderr);
  assert.match(images.stdout, /library\/busybox\s+latest/);
});

test('rootless RUN for a foreign platform uses the existing binfmt registration', () => {
  // Registering needs real root: done here as root, as an administrator would (kiln setup binfmt).
  const setup = spawnSync(process.execPath, [kilnBin, 'setup', 'binfmt'], { encoding: 'utf8' });
  assert.equal(setup.status, 0, setup.stderr);
  const ctx = context('ctx-arm', { Dockerfile: `FROM ${base}\nRUN uname -m > /arch\n` });
  const out = join(home, 'out-arm');
  const r = asUser(['build', '--progress', 'plain', '--platform', 'linux/arm64', '-o', `type=local,dest=${out}`, ctx]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(out, 'arch'), 'utf8'), 'aarch64\n');
});

test('a user without subordinate ranges: only its own id is mapped; other owners are a clear one-line error', () => {
  // A dir of this user's own (the other test user's home is closed to it): state and context.
  const own = mkdtempSync(join(tmpdir(), 'kiln-rootless-noids-'));
  after(() => rmSync(own, { recursive: true, force: true }));
  const noidsUid = Number(execFileSync('id', ['-u', NOIDS_USER], { encoding: 'utf8' }));
  chownSync(own, noidsUid, noidsUid);
  const ctx = join(own, 'ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'a'), 'a\n');
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${base}\nRUN id -u > /uid\nCOPY a /a\n`);
  // The user's own files (COPY keeps a context file's owner: the user is 0 inside).
  for (const p of [ctx, join(ctx, 'a'), join(ctx, 'Dockerfile')]) chownSync(p, noidsUid, noidsUid);
  const env = { KILN_ROOT: join(own, 'state'), HOME: own };
  const ok = asUser(['build', '--progress', 'plain', '-t', 'noids/img', ctx], env, NOIDS_USER);
  assert.equal(ok.status, 0, ok.stderr);
  const run = asUser(['run', '--rm', 'noids/img', 'sh', '-c', 'cat /uid; stat -c %u /a'], env, NOIDS_USER);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, '0\n0\n');
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${base}\nCOPY --chown=1234:1234 a /a\n`);
  const r = asUser(['build', '--progress', 'plain', ctx], env, NOIDS_USER);
  assert.equal(r.status, 1);
  assert.match(r.stderr.trim().split('\n').at(-1)!, /^kiln: Dockerfile:2: .*chown.*: rootless mode without a subordinate id range maps only your own uid\/gid \(as 0\).*add a range for kiln-rootless-noids to \/etc\/subuid and \/etc\/subgid/);
});

test('root with --rootless: no subordinate range for root, so a chown to another id is a clear one-line error', () => {
  const root = mkdtempSync(join(tmpdir(), 'kiln-rootless-root-'));
  try {
    const ctx = mkdtempSync(join(tmpdir(), 'kiln-rootless-ctx-'));
    writeFileSync(join(ctx, 'a'), 'a\n');
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${base}\nRUN id -u > /uid\nCOPY --chown=1234:1234 a /a\n`);
    const kilnAsRoot = (args: string[]) => spawnSync(process.execPath, [kilnBin, ...args], { encoding: 'utf8', env: { ...process.env, KILN_ROOT: root } });
    const r = kilnAsRoot(['build', '--rootless', '--progress', 'plain', ctx]);
    assert.equal(r.status, 1);
    const last = r.stderr.trim().split('\n').at(-1)!;
    assert.match(last, /^kiln: Dockerfile:3: .*chown.*rootless mode without a subordinate id range maps only your own uid\/gid .*\/etc\/subuid and \/etc\/subgid \(e\.g\. root:100000:65536\)$/);
    // The same state dir, now used as root without --rootless: refused, its layers are rootless ones.
    const mixed = kilnAsRoot(['build', '--progress', 'plain', ctx]);
    assert.equal(mixed.status, 1);
    assert.match(mixed.stderr.trim(), /^kiln: kiln state at .* belongs to rootless kiln and cannot be used as root .*set KILN_ROOT to another dir$/);
    rmSync(ctx, { recursive: true, force: true });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
