// A Dockerfile, its context and its base image try to reach the host through the RUN sandbox: bind mount
// sources that are symlinks out of their root, mount targets under an image symlink to `/`, the mount-point
// clean-up after a RUN (CVE-2024-23652 class), leaked fds as the cwd (CVE-2024-21626, "Leaky Vessels") and
// the mount/unshare syscalls. Canary files and dirs live outside kiln's state dir; each test asserts they
// were neither read nor changed, and shows what the user gets instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild, writeContext, errorLine } from '../helpers/build.js';
import { kilnBin } from '../helpers/kiln.js';
import { readFileInLayers } from '../../native/layers-in-root.js';
import { resolveImageUser } from '../../native/user.js';

const suite = buildSuite();

/** A host dir outside the state dir holding a secret file, an empty file and an empty subdir. */
function canary() {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-canary-'));
  const secret = `HOST-CANARY-${randomBytes(8).toString('hex')}`;
  writeFileSync(join(dir, 'secret.txt'), secret);
  writeFileSync(join(dir, 'empty-file'), '');
  mkdirSync(join(dir, 'b', 'c'), { recursive: true });
  const snapshot = () => ({
    entries: readdirSync(dir, { recursive: true }).map(String).sort(),
    mtimes: ['.', 'b', 'b/c', 'secret.txt', 'empty-file'].map((p) => (existsSync(join(dir, p)) ? lstatSync(join(dir, p)).mtimeMs : -1)),
    secret: readFileSync(join(dir, 'secret.txt'), 'utf8'),
  });
  const before = snapshot();
  return {
    dir,
    secret,
    assertUntouched() {
      assert.deepEqual(snapshot(), before, `host canary dir ${dir} was changed`);
    },
  };
}

function outDir(name: string): string {
  return join(suite.outs, name);
}

/** Every file under an exported image dir that contains text (symlinks in the image are not followed). */
function filesContaining(dir: string, text: string, rel = ''): string[] {
  const hits: string[] = [];
  for (const name of readdirSync(join(dir, rel))) {
    const p = join(rel, name);
    const st = lstatSync(join(dir, p));
    if (st.isDirectory()) hits.push(...filesContaining(dir, text, p));
    else if (st.isFile() && readFileSync(join(dir, p)).includes(text)) hits.push(p);
  }
  return hits;
}

test('bind mount from the context: a symlink to / resolves inside the context; the host canary is never read', () => {
  const c = canary();
  const context = writeContext({
    Dockerfile: [
      `FROM ${suite.base}`,
      // the link itself names the context's root: the mount shows the context, not the host
      `RUN --mount=type=bind,source=hostroot,target=/h sh -c 'ls /h > /listing; cat /h${c.dir}/secret.txt > /leak 2>/dev/null; true'`,
      `RUN --mount=type=bind,source=sub/up,target=/u sh -c 'ls /u > /listing-up; cat /u${c.dir}/secret.txt > /leak-up 2>/dev/null; true'`,
      '',
    ].join('\n'),
    'sub/keep.txt': 'kept\n',
  });
  symlinkSync('/', join(context, 'hostroot'));
  symlinkSync('../../../../../../../..', join(context, 'sub', 'up'));
  const dest = outDir('ctx-link');
  const r = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}`], { context });
  assert.equal(r.status, 0, r.stderr);
  assert.match(readFileSync(join(dest, 'listing'), 'utf8'), /^Dockerfile$/m, 'hostroot -> / mounts the context root');
  assert.match(readFileSync(join(dest, 'listing-up'), 'utf8'), /^sub$/m, 'sub/up -> ../../.. stops at the context root');
  assert.deepEqual(filesContaining(dest, c.secret), []);

  // A source path through the link to a host file does not exist inside the context: a clear error.
  const direct = writeContext({
    Dockerfile: `FROM ${suite.base}\nRUN --mount=type=bind,source=hostroot${c.dir}/secret.txt,target=/s cat /s\n`,
  });
  symlinkSync('/', join(direct, 'hostroot'));
  const e = kilnBuild(suite.root, {}, [], { context: direct });
  assert.notEqual(e.status, 0);
  assert.doesNotMatch(e.stderr + e.stdout, new RegExp(c.secret));
  assert.match(errorLine(e), /Dockerfile:2: .*bind mount source .*secret\.txt.*No such file or directory/);
  c.assertUntouched();
});

test('bind mount from a one-layer stage: a symlink in the layer cannot reach the host', () => {
  const c = canary();
  const context = writeContext({
    Dockerfile: [
      'FROM scratch AS s',
      'COPY links/ /',
      `FROM ${suite.base}`,
      `RUN --mount=type=bind,from=s,source=hostroot,target=/h sh -c 'ls -a /h > /listing; cat /h${c.dir}/secret.txt > /leak 2>/dev/null; true'`,
      '',
    ].join('\n'),
  });
  mkdirSync(join(context, 'links'));
  symlinkSync('/', join(context, 'links', 'hostroot'));
  writeFileSync(join(context, 'links', 'marker'), 'in the stage\n');
  const dest = outDir('stage-link');
  const r = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}`], { context });
  assert.equal(r.status, 0, r.stderr);
  const listing = readFileSync(join(dest, 'listing'), 'utf8').split('\n').filter(Boolean).sort();
  assert.deepEqual(listing, ['.', '..', 'hostroot', 'marker'], 'the mount is the stage root');
  assert.deepEqual(filesContaining(dest, c.secret), []);

  const e = kilnBuild(suite.root, {}, [], {
    context: (() => {
      const ctx = writeContext({
        Dockerfile: `FROM scratch AS s\nCOPY links/ /\nFROM ${suite.base}\nRUN --mount=type=bind,from=s,source=hostroot${c.dir}/secret.txt,target=/s cat /s\n`,
      });
      mkdirSync(join(ctx, 'links'));
      symlinkSync('/', join(ctx, 'links', 'hostroot'));
      return ctx;
    })(),
  });
  assert.notEqual(e.status, 0);
  assert.doesNotMatch(e.stderr + e.stdout, new RegExp(c.secret));
  assert.match(errorLine(e), /Dockerfile:4: .*No such file or directory/);
  c.assertUntouched();
});

test('cache mount from= a stage: a symlink in the stage does not give the cache dir a host dir\'s owner and mode', () => {
  const c = canary();
  chownSync(join(c.dir, 'b'), 4321, 4322);
  chmodSync(join(c.dir, 'b'), 0o741);
  const context = writeContext({
    Dockerfile: [
      'FROM scratch AS s',
      'COPY links/ /',
      `FROM ${suite.base}`,
      `RUN --mount=type=cache,id=c-${randomBytes(4).toString('hex')},from=s,source=hostroot${c.dir}/b,target=/c stat -c '%a %u %g' /c > /cache-stat`,
      '',
    ].join('\n'),
  });
  mkdirSync(join(context, 'links'));
  symlinkSync('/', join(context, 'links', 'hostroot'));
  const dest = outDir('cache-link');
  const r = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}`], { context });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(dest, 'cache-stat'), 'utf8'), '755 0 0\n');
  const st = statSync(join(c.dir, 'b'));
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [4321, 4322, 0o741]);
});

test('mount targets under an image symlink to / are made inside the rootfs, never on the host', () => {
  const c = canary();
  const context = writeContext({
    Dockerfile: [
      `FROM ${suite.base}`,
      'RUN ln -s / /evil',
      `RUN --mount=type=tmpfs,target=/evil${c.dir}/b/c --mount=type=bind,target=/evil${c.dir}/new-dir/ctx --mount=type=bind,source=Dockerfile,target=/evil${c.dir}/empty-file sh -c 'ls /evil${c.dir}/new-dir/ctx > /seen; cat /evil${c.dir}/secret.txt > /leak 2>/dev/null; true'`,
      '',
    ].join('\n'),
  });
  const dest = outDir('target-link');
  const r = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}`], { context });
  assert.equal(r.status, 0, r.stderr);
  assert.match(readFileSync(join(dest, 'seen'), 'utf8'), /^Dockerfile$/m);
  assert.deepEqual(filesContaining(dest, c.secret), []);
  c.assertUntouched();
});

test('mount-point clean-up after a RUN never follows a symlinked parent to the host (CVE-2024-23652 class)', () => {
  const c = canary();
  const context = writeContext({
    Dockerfile: [
      `FROM ${suite.base}`,
      // The mount points /a/b/c (dir) and /a/empty-file (file) are created for the RUN; it then moves /a away
      // and puts a link to the host canary dir in its place. Clean-up used to rmdir/unlink through it.
      `RUN --mount=type=tmpfs,target=/a/b/c --mount=type=bind,source=Dockerfile,target=/a/empty-file sh -c 'mv /a /moved && ln -s ${c.dir} /a'`,
      // The same with a link to / and a dir that exists on every host.
      "RUN --mount=type=tmpfs,target=/x/tmp sh -c 'mv /x /moved-x && ln -s / /x'",
      '',
    ].join('\n'),
  });
  const tmpBefore = statSync('/tmp');
  const dest = outDir('cleanup-link');
  const r = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}`], { context });
  assert.equal(r.status, 0, r.stderr);
  c.assertUntouched();
  assert.ok(existsSync(join(c.dir, 'b', 'c')) && existsSync(join(c.dir, 'empty-file')));
  assert.equal(statSync('/tmp').ino, tmpBefore.ino);
  // The RUN's own changes are its layer: the link, and the moved mount stubs it now owns.
  assert.equal(lstatSync(join(dest, 'a')).isSymbolicLink(), true);
  assert.ok(existsSync(join(dest, 'moved', 'b', 'c')));
});

test('Leaky Vessels: no host fd reaches a RUN, and WORKDIR /proc/self/fd/N cannot make the cwd a host dir', () => {
  const c = canary();
  // Every fd the RUN's process holds, with what it points at: only its stdio (pipes, /dev/null).
  const fds = kilnBuild(suite.root, {
    Dockerfile: `FROM ${suite.base}\nRUN for f in /proc/self/fd/*; do [ -d "$f" ] && echo "DIR $f -> $(readlink $f)"; done; ls /proc/self/fd | sort -n | tr '\\n' ' '; echo\n`,
  }, ['--no-cache']);
  assert.equal(fds.status, 0, fds.stderr);
  assert.doesNotMatch(fds.stderr + fds.stdout, /DIR \/proc/);
  assert.match(fds.stderr + fds.stdout, /^(#\d+ [\d.]+ )?0 1 2 3 $/m, 'only stdio and ls\'s own dir fd');

  for (const n of [3, 4, 5, 6, 7, 8, 9]) {
    const context = writeContext({
      Dockerfile: `FROM ${suite.base}\nWORKDIR /proc/self/fd/${n}\nRUN cat ../../../../../../..${c.dir}/secret.txt; cat ${'../'.repeat(8)}etc/hostname; pwd\n`,
    });
    const r = kilnBuild(suite.root, {}, ['--no-cache'], { context });
    assert.doesNotMatch(r.stderr + r.stdout, new RegExp(c.secret), `fd ${n}`);
    // Either refused with a one-line error naming the Dockerfile line, or run with a cwd inside the rootfs.
    if (r.status !== 0) assert.match(errorLine(r), /Dockerfile:\d+: /, `fd ${n}: ${errorLine(r)}`);
  }
  c.assertUntouched();
});

test('seccomp: mount, unshare and namespace clones from a RUN are refused', () => {
  const r = kilnBuild(suite.root, {
    Dockerfile: [
      `FROM ${suite.base}`,
      "RUN mount -t tmpfs none /mnt; echo mount=$?; unshare -m true; echo unshare=$?; unshare -U true; echo userns=$?",
      '',
    ].join('\n'),
  }, ['--no-cache']);
  assert.equal(r.status, 0, r.stderr);
  const out = r.stderr + r.stdout;
  assert.match(out, /mount=[1-9]/);
  assert.match(out, /unshare=[1-9]/);
  assert.match(out, /userns=[1-9]/);
  assert.match(out, /Operation not permitted/);
});

/** kiln build with a hard deadline: a build that blocks (on a FIFO) is killed, not waited on. */
function buildWithin(ms: number, context: string): { status: number | null; stderr: string; stdout: string; elapsedMs: number } {
  const started = Date.now();
  const r = spawnSync(process.execPath, [kilnBin, 'build', '--progress', 'plain', context], {
    env: { ...process.env, KILN_ROOT: suite.root },
    encoding: 'utf8',
    timeout: ms,
    killSignal: 'SIGKILL',
  });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout, elapsedMs: Date.now() - started };
}

test('USER lookup reads the image\'s /etc/passwd and /etc/group inside the image: host links, FIFOs, devices, huge files', () => {
  const c = canary();
  const hostPasswd = join(mkdtempSync(join(tmpdir(), 'kiln-host-passwd-')), 'passwd');
  writeFileSync(hostPasswd, 'hostuser:x:4242:4343:host:/hosthome:/bin/sh\n');
  // A link to the host file names a path inside the image, where there is none: the user is unknown.
  const linked = kilnBuild(suite.root, {
    Dockerfile: `FROM ${suite.base}\nRUN rm /etc/passwd && ln -s ${hostPasswd} /etc/passwd\nUSER hostuser\nRUN id\n`,
  });
  assert.notEqual(linked.status, 0);
  assert.match(errorLine(linked), /Dockerfile:4: .*unable to find user hostuser: no matching entries in passwd file/);
  const relative = kilnBuild(suite.root, {
    Dockerfile: `FROM ${suite.base}\nRUN rm /etc/passwd && ln -s ${'../'.repeat(12)}${hostPasswd.slice(1)} /etc/passwd\nUSER hostuser\nRUN id\n`,
  });
  assert.match(errorLine(relative), /Dockerfile:4: .*unable to find user hostuser/);

  // Links inside the image are followed inside it (absolute and relative, chained).
  const dest = outDir('passwd-link');
  const inside = kilnBuild(suite.root, {
    Dockerfile: [
      `FROM ${suite.base}`,
      "RUN mkdir -p /srv/db && cp /etc/passwd /srv/db/passwd.real && echo 'app:x:1500:1600::/home/app:/bin/sh' >> /srv/db/passwd.real && ln -s db/passwd.real /srv/passwd && rm /etc/passwd && ln -s /srv/passwd /etc/passwd",
      'USER app',
      'RUN id -u > /tmp/uid && id -g > /tmp/gid',
      '',
    ].join('\n'),
  }, ['-o', `type=local,dest=${dest}`]);
  assert.equal(inside.status, 0, inside.stderr);
  assert.equal(readFileSync(join(dest, 'tmp', 'uid'), 'utf8'), '1500\n');
  assert.equal(readFileSync(join(dest, 'tmp', 'gid'), 'utf8'), '1600\n');

  // A FIFO is refused at once (it used to block kiln for good); so is a device node and an oversized file.
  const fifo = buildWithin(90_000, writeContext({ Dockerfile: `FROM ${suite.base}\nRUN rm /etc/group && mkfifo /etc/group\nUSER nobody\nRUN id\n` }));
  assert.notEqual(fifo.status, null, `kiln blocked on the FIFO for ${fifo.elapsedMs} ms`);
  assert.notEqual(fifo.status, 0);
  assert.match(fifo.stderr.trim().split('\n').at(-1)!, /Dockerfile:4: unable to look up user nobody: \/etc\/group in the image is not a regular file$/);
  const zero = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN rm /etc/passwd && mknod /etc/passwd c 1 5\nRUN id\n` });
  assert.match(errorLine(zero), /Dockerfile:3: unable to look up user 0: \/etc\/passwd in the image is not a regular file$/);
  const huge = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN head -c 5000000 /dev/zero >> /etc/group\nUSER root\nRUN id\n` });
  assert.match(errorLine(huge), /Dockerfile:4: unable to look up user root: \/etc\/group in the image is larger than 4194304 bytes$/);
  c.assertUntouched();
});

test('RUN identity: supplementary groups from /etc/group include the primary gid (CVE-2023-25173 class); HOME from /etc/passwd', () => {
  const dest = outDir('identity');
  const r = kilnBuild(suite.root, {
    Dockerfile: [
      `FROM ${suite.base}`,
      "RUN echo 'wheel:x:10:root' >> /etc/group && echo 'app:x:1000:' >> /etc/group && echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd",
      'RUN id > /id-root && echo "$HOME" > /home-root',
      'USER 1234',
      'RUN id > /tmp/id-1234 && echo "$HOME" > /tmp/home-1234',
      'USER app',
      'RUN id > /tmp/id-app && echo "$HOME" > /tmp/home-app',
      'USER root:wheel',
      'RUN id > /id-root-wheel',
      'ENV HOME=/custom',
      'RUN echo "$HOME" > /home-env',
      '',
    ].join('\n'),
  }, ['-o', `type=local,dest=${dest}`]);
  assert.equal(r.status, 0, r.stderr);
  const read = (p: string) => readFileSync(join(dest, p), 'utf8');
  assert.equal(read('id-root'), 'uid=0(root) gid=0(root) groups=0(root),10(wheel)\n');
  assert.equal(read('tmp/id-1234'), 'uid=1234 gid=0(root) groups=0(root)\n');
  assert.equal(read('tmp/id-app'), 'uid=1000(app) gid=1000(app) groups=1000(app)\n');
  assert.equal(read('id-root-wheel'), 'uid=0(root) gid=10(wheel) groups=10(wheel)\n');
  assert.equal(read('home-root'), '/root\n');
  assert.equal(read('tmp/home-1234'), '/\n');
  assert.equal(read('tmp/home-app'), '/home/app\n');
  assert.equal(read('home-env'), '/custom\n');
});

test('image files across layers: links resolve in the merged image, whiteouts hide, a lower link under an upper dir is not followed', () => {
  const c = canary();
  const top = mkdtempSync(join(tmpdir(), 'kiln-layers-'));
  const [lower, upper] = [join(top, 'lower'), join(top, 'upper')];
  for (const d of ['etc', 'srv', 'opt']) mkdirSync(join(lower, d), { recursive: true });
  for (const d of ['etc', 'srv', 'opt']) mkdirSync(join(upper, d), { recursive: true });
  writeFileSync(join(lower, 'srv', 'passwd'), 'app:x:1500:1600::/home/app:/bin/sh\n');
  writeFileSync(join(lower, 'etc', 'group'), 'old:x:1:\n');
  symlinkSync(c.dir, join(lower, 'opt', 'host')); // hidden: the upper layer has opt/host as a dir
  mkdirSync(join(upper, 'opt', 'host'));
  // upper: passwd links (relatively, with more `..` than there are dirs) to the lower layer's file;
  // group is whited out; a link to the host canary resolves inside the image, where there is nothing.
  symlinkSync('../../../../srv/passwd', join(upper, 'etc', 'passwd'));
  execFileSync('mknod', [join(upper, 'etc', 'group'), 'c', '0', '0']);
  symlinkSync(join(c.dir, 'secret.txt'), join(upper, 'etc', 'shadow'));
  const layers = [upper, lower];
  assert.equal(readFileInLayers(layers, '/etc/passwd', { maxBytes: 1 << 20 })?.toString(), 'app:x:1500:1600::/home/app:/bin/sh\n');
  assert.equal(readFileInLayers(layers, '/etc/group', { maxBytes: 1 << 20 }), undefined);
  assert.equal(readFileInLayers(layers, '/etc/shadow', { maxBytes: 1 << 20 }), undefined);
  assert.equal(readFileInLayers(layers, '/opt/host/secret.txt', { maxBytes: 1 << 20 }), undefined);
  assert.deepEqual(resolveImageUser('app', layers), { uid: 1500, gid: 1600, additionalGids: [1600], home: '/home/app' });
  rmSync(top, { recursive: true, force: true });
  c.assertUntouched();
});
