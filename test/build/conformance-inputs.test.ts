// What users type, as BuildKit v0.25 takes it (each case checked against it with docker-sid).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { tarOf as craftedTar } from '../security/crafted.js';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild, writeContext } from '../helpers/build.js';
import { kilnBin } from '../helpers/kiln.js';

const suite = buildSuite();

test('COPY --chown: names resolve like BuildKit readUser (unknown group keeps the user\'s primary gid, a numeric user is its own gid, unknown names change nothing)', () => {
  const dest = join(suite.outs, 'chown');
  const r = kilnBuild(suite.root, {
    Dockerfile: [
      `FROM ${suite.base}`,
      "RUN echo 'app:x:1234:2345::/home/app:/bin/sh' >> /etc/passwd && echo 'grp:x:777:' >> /etc/group",
      'COPY --chown=app:nogroup f /a',
      'COPY --chown=app f /b',
      'COPY --chown=app:grp f /c',
      'COPY --chown=1234:nogroup f /d',
      'COPY --chown=app:5 f /e',
      'COPY --chown=nouser:grp f /g',
      'COPY --chown=999 f /h',
      'COPY --chown=nouser f /i',
      'COPY --chown=:grp f /j',
      "RUN for f in a b c d e g h i j; do echo $f $(stat -c %u:%g /$f); done > /owners",
      '',
    ].join('\n'),
    f: 'hi\n',
  }, ['-o', `type=local,dest=${dest}`]);
  assert.equal(r.status, 0, r.stderr);
  // The owners BuildKit v0.25 gives the same Dockerfile.
  assert.equal(readFileSync(join(dest, 'owners'), 'utf8'), ['a 1234:2345', 'b 1234:2345', 'c 1234:777', 'd 1234:1234', 'e 1234:5', 'g 0:777', 'h 999:999', 'i 0:0', 'j 0:777', ''].join('\n'));
});

test('a unix socket in the build context arrives as an empty regular file with its permissions', async () => {
  const context = writeContext({ Dockerfile: `FROM ${suite.base}\nCOPY . /ctx/\nRUN stat -c '%F %a %s' /ctx/agent.sock > /socket\n` });
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(join(context, 'agent.sock'), resolve));
  try {
    chmodSync(join(context, 'agent.sock'), 0o750);
    const dest = join(suite.outs, 'socket');
    const r = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}`], { context });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(dest, 'socket'), 'utf8'), 'regular empty file 750 0\n');
  } finally {
    server.close();
  }
});

test('--build-context name=DIR honours DIR/.dockerignore (and the main context\'s ignore file does not apply to it)', () => {
  const named = writeContext({ '.dockerignore': 'secret*\n**/*.log\n', keep: 'k\n', 'secret.txt': 's\n', 'sub/a.log': 'l\n', 'sub/b': 'b\n' });
  const dest = join(suite.outs, 'named-ignore');
  const r = kilnBuild(suite.root, {
    Dockerfile: `FROM ${suite.base}\nCOPY --from=named / /named/\n`,
    '.dockerignore': 'keep\n',
  }, ['--build-context', `named=${named}`, '-o', `type=local,dest=${dest}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(join(dest, 'named')).sort(), ['.dockerignore', 'keep', 'sub']);
  assert.deepEqual(readdirSync(join(dest, 'named/sub')), ['b']);
});

test('--build-context name=docker-image://scratch is the empty image, without asking a registry', () => {
  const dest = join(suite.outs, 'scratch-ctx');
  const r = kilnBuild(suite.root, {
    Dockerfile: `FROM empty AS e\nCOPY f /f\nFROM ${suite.base}\nCOPY --from=empty / /x/\nCOPY --from=e /f /f\nRUN ls -A /x > /listing\n`,
    f: 'f\n',
  }, ['--build-context', 'empty=docker-image://scratch', '-o', `type=local,dest=${dest}`], { env: { HTTPS_PROXY: 'http://127.0.0.1:1', https_proxy: 'http://127.0.0.1:1' } });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /docker\.io|registry/);
  assert.equal(readFileSync(join(dest, 'listing'), 'utf8'), '');
  assert.equal(readFileSync(join(dest, 'f'), 'utf8'), 'f\n');
});

test('--no-cache: cache mounts start empty (shared by that build\'s RUNs), and the persistent cache mount is left as it was', () => {
  const dockerfile = (n: number) => [
    `FROM ${suite.base}`,
    `RUN --mount=type=cache,target=/c,id=conf-nocache ls /c > /first; echo ${n} > /c/from-first`,
    'RUN --mount=type=cache,target=/c,id=conf-nocache ls /c > /second',
    '',
  ].join('\n');
  const context = writeContext({ Dockerfile: dockerfile(1) });
  const run = (tag: string, args: string[] = []) => {
    const dest = join(suite.outs, tag);
    const r = kilnBuild(suite.root, {}, [...args, '-o', `type=local,dest=${dest}`], { context });
    assert.equal(r.status, 0, r.stderr);
    return (p: string) => readFileSync(join(dest, p), 'utf8');
  };
  const first = run('nocache-1');
  assert.equal(first('first'), '');
  assert.equal(first('second'), 'from-first\n');
  writeFileSync(join(context, 'Dockerfile'), dockerfile(2));
  const persisted = run('nocache-2');
  assert.equal(persisted('first'), 'from-first\n', 'a normal build sees the cache mount of the last one');
  const uncached = run('nocache-3', ['--no-cache']);
  assert.equal(uncached('first'), '', '--no-cache: the cache mount starts empty');
  assert.equal(uncached('second'), 'from-first\n', 'and is shared by the RUNs of that build');
  assert.deepEqual(readdirSync(join(suite.root, 'cachemounts-uncached')), [], 'the build\'s own cache mounts are removed after it');
});

test('the BUILDKIT_SANDBOX_HOSTNAME build arg sets the RUN host name (no unused-arg warning)', () => {
  const dest = join(suite.outs, 'hostname');
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN hostname > /name && grep -c myhost /etc/hosts > /hosts\n` }, ['--build-arg', 'BUILDKIT_SANDBOX_HOSTNAME=myhost', '-o', `type=local,dest=${dest}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(dest, 'name'), 'utf8'), 'myhost\n');
  assert.equal(readFileSync(join(dest, 'hosts'), 'utf8'), '1\n');
  assert.doesNotMatch(r.stderr, /not consumed/);
});

/** A tar made entry by entry (kiln's tar writer writes the headers; names and links are ours). */
async function tarOf(entries: { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; body?: string; linkname?: string; mode?: number }[]): Promise<Buffer> {
  const types = { file: 'file', directory: 'dir', symlink: 'symlink', link: 'hardlink' } as const;
  return craftedTar(
    entries.map((e) => ({ name: e.name, type: types[e.type ?? 'file'], data: e.body, linkname: e.linkname ?? '', ...(e.mode === undefined ? {} : { mode: e.mode }) })),
    1_600_000_000,
  );
}

function buildStdin(input: Buffer, args: string[] = []) {
  const r = spawnSync(process.execPath, [kilnBin, 'build', '--progress', 'plain', ...args, '-'], { env: { ...process.env, KILN_ROOT: suite.root }, input, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status ?? 128, stderr: r.stderr };
}

test('kiln build - < context.tar: a tar on stdin (plain or gzip) is the context, -f names a file in it; a plain Dockerfile on stdin still works', async () => {
  const archive = await tarOf([
    { name: 'Dockerfile', body: `FROM ${suite.base}\nCOPY . /ctx/\n` },
    { name: 'build/Other.df', body: `FROM ${suite.base}\nCOPY app/ /app/\n` },
    { name: 'app', type: 'directory', mode: 0o750 },
    { name: 'app/run.sh', body: 'echo hi\n', mode: 0o755 },
    { name: 'app/link', type: 'symlink', linkname: 'run.sh' },
    { name: '.dockerignore', body: 'ignored\n' },
    { name: 'ignored', body: 'no\n' },
  ]);
  const plain = join(suite.outs, 'stdin-tar');
  const r = buildStdin(archive, ['-o', `type=local,dest=${plain}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(join(plain, 'ctx')).sort(), ['.dockerignore', 'Dockerfile', 'app', 'build']);
  assert.equal(readFileSync(join(plain, 'ctx/app/run.sh'), 'utf8'), 'echo hi\n');
  assert.equal(lstatSync(join(plain, 'ctx/app/run.sh')).mode & 0o777, 0o755);
  assert.equal(lstatSync(join(plain, 'ctx/app')).mode & 0o777, 0o750);
  assert.equal(readlinkSync(join(plain, 'ctx/app/link')), 'run.sh');

  const gz = join(suite.outs, 'stdin-tgz');
  const g = buildStdin(gzipSync(archive), ['-f', 'build/Other.df', '-o', `type=local,dest=${gz}`]);
  assert.equal(g.status, 0, g.stderr);
  assert.deepEqual(readdirSync(join(gz, 'app')).sort(), ['link', 'run.sh']);

  const missing = buildStdin(gzipSync(archive), ['-f', 'nope.df']);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr.trim().split('\n').at(-1)!, /cannot read Dockerfile nope\.df in the context tar on stdin/);

  const text = join(suite.outs, 'stdin-text');
  const t = buildStdin(Buffer.from(`FROM ${suite.base}\nRUN echo plain > /p\n`), ['-o', `type=local,dest=${text}`]);
  assert.equal(t.status, 0, t.stderr);
  assert.equal(readFileSync(join(text, 'p'), 'utf8'), 'plain\n');
});

test('kiln build - < crafted.tar: no entry is written outside the context (symlink parents, .., hard links to host files)', async () => {
  const canary = mkdtempSync(join(tmpdir(), 'kiln-canary-'));
  mkdirSync(join(canary, 'b'), { mode: 0o700 });
  writeFileSync(join(canary, 'keep'), 'canary\n');
  const before = statSync(join(canary, 'b'));
  const df = { name: 'Dockerfile', body: `FROM ${suite.base}\nCOPY . /ctx/\n` };
  try {
    // A dir entry, a file through a later symlink of the same name, a dir whose parent later becomes a
    // symlink: everything stays in the context; the symlinks are plain symlinks there.
    const swapped = await tarOf([df, { name: 'l/pwned', body: 'x\n' }, { name: 'a/b', type: 'directory', mode: 0o777 }, { name: 'l', type: 'symlink', linkname: canary }, { name: 'a', type: 'symlink', linkname: canary }]);
    const out = join(suite.outs, 'stdin-swapped');
    const r = buildStdin(swapped, ['-o', `type=local,dest=${out}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readlinkSync(join(out, 'ctx/l')), canary);
    assert.deepEqual(readdirSync(canary).sort(), ['b', 'keep'], 'nothing written into the canary dir');
    assert.equal(statSync(join(canary, 'b')).mode, before.mode, 'the canary dir mode is unchanged');
    assert.equal(statSync(join(canary, 'b')).mtimeMs, before.mtimeMs);

    const cases: [string, Parameters<typeof tarOf>[0], RegExp][] = [
      ['dotdot', [df, { name: '../escape', body: 'x\n' }], /entry outside it: "\.\.\/escape"/],
      ['hardlink-out', [df, { name: 'h', type: 'link', linkname: '../../../etc/passwd' }], /entry outside it/],
      ['hardlink-via-symlink', [df, { name: 's', type: 'symlink', linkname: '/etc/passwd' }, { name: 'h', type: 'link', linkname: 's' }], /links "h" to "s", which is not a file before it/],
      ['symlink-below-symlink', [df, { name: 's', type: 'symlink', linkname: canary }, { name: 's/x', type: 'symlink', linkname: 'keep' }], /entry below a symlink: "s\/x"/],
    ];
    for (const [name, entries, message] of cases) {
      const bad = buildStdin(await tarOf(entries));
      assert.notEqual(bad.status, 0, name);
      const last = bad.stderr.trim().split('\n').at(-1)!;
      assert.match(last, message, `${name}: ${bad.stderr}`);
      assert.doesNotMatch(bad.stderr, /\n\s+at /, `${name}: one line, no stack`);
    }
    assert.deepEqual(readdirSync(canary).sort(), ['b', 'keep']);
    assert.equal(readFileSync(join(canary, 'keep'), 'utf8'), 'canary\n');
    assert.equal(existsSync(join(tmpdir(), 'escape')), false);
  } finally {
    rmSync(canary, { recursive: true, force: true });
  }
});
