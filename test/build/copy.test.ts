// COPY and ADD as BuildKit does them, checked on the built image's files (type, mode, owner, content,
// symlink targets) through a `type=local` export.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, chmodSync, chownSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild, kilnBuildAsync, writeContext, errorLine } from '../helpers/build.js';

const suite = buildSuite();

let n = 0;
function exported(dockerfile: string, files: Record<string, string>, prepare?: (ctx: string) => void, args: string[] = [], localAttrs = '') {
  const context = writeContext({ Dockerfile: dockerfile, ...files });
  prepare?.(context);
  const dest = join(suite.outs, `out-${n++}`);
  const r = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}${localAttrs}`, ...args], { context });
  assert.equal(r.status, 0, r.stderr);
  const st = (p: string) => lstatSync(join(dest, p));
  const read = (p: string) => readFileSync(join(dest, p), 'utf8');
  return { dest, st, read, stderr: r.stderr, has: (p: string) => existsSync(join(dest, p)) };
}

test('COPY destinations: file, into a dir, dir contents, wildcards, several sources', () => {
  const img = exported(
    [
      `FROM ${suite.base}`,
      'COPY a.txt /renamed.txt',
      'COPY a.txt /into/',
      'COPY dir /contents',
      'COPY dir/ /contents-slash/',
      'COPY *.txt /txt/',
      'COPY a.txt b.txt /multi/',
      'WORKDIR /work',
      'COPY a.txt .',
      'COPY a.txt relative/',
    ].join('\n'),
    { 'a.txt': 'A\n', 'b.txt': 'B\n', 'c.md': 'C\n', 'dir/one': '1\n', 'dir/sub/two': '2\n' },
  );
  assert.equal(img.read('renamed.txt'), 'A\n');
  assert.equal(img.read('into/a.txt'), 'A\n');
  assert.equal(img.read('contents/one'), '1\n');
  assert.equal(img.read('contents/sub/two'), '2\n');
  assert.ok(!img.has('contents/dir'), 'COPY dir copies the contents, not the dir');
  assert.equal(img.read('contents-slash/sub/two'), '2\n');
  assert.equal(img.read('txt/a.txt'), 'A\n');
  assert.equal(img.read('txt/b.txt'), 'B\n');
  assert.ok(!img.has('txt/c.md'));
  assert.equal(img.read('multi/b.txt'), 'B\n');
  assert.equal(img.read('work/a.txt'), 'A\n');
  assert.equal(img.read('work/relative/a.txt'), 'A\n');
});

test('COPY keeps modes, setuid bits and symlinks; --chmod and --chown change them', () => {
  const img = exported(
    [
      `FROM ${suite.base}`,
      'COPY tool /keep/tool',
      'COPY link /keep/link',
      'COPY --chmod=0640 tool /chmod/tool',
      'COPY --chown=nobody:nobody tool /chown-name/tool',
      'COPY --chown=1234:5678 dir /chown-id/',
      'COPY --chown=4321 tool /chown-uid/tool',
    ].join('\n'),
    { tool: '#!/bin/sh\n', 'dir/f': 'f\n' },
    (ctx) => {
      chmodSync(join(ctx, 'tool'), 0o4755);
      symlinkSync('tool', join(ctx, 'link'));
    },
    [],
    ',preserve-special=true', // a local export drops setuid bits unless asked to keep them
  );
  assert.equal(img.st('keep/tool').mode & 0o7777, 0o4755);
  // As in BuildKit, a symlink named as the source is followed: its target's content is copied.
  assert.ok(img.st('keep/link').isFile());
  assert.equal(img.read('keep/link'), '#!/bin/sh\n');
  assert.equal(img.st('chmod/tool').mode & 0o7777, 0o640);
  assert.deepEqual([img.st('chown-name/tool').uid, img.st('chown-name/tool').gid], [65534, 65534]);
  assert.deepEqual([img.st('chown-id/f').uid, img.st('chown-id/f').gid], [1234, 5678]);
  assert.deepEqual([img.st('chown-uid/tool').uid, img.st('chown-uid/tool').gid], [4321, 4321]);
});

test('an unknown --chown name falls back to 0 with a warning naming the line', () => {
  const img = exported(`FROM ${suite.base}\nCOPY --chown=ghost:ghost a /a\n`, { a: 'a\n' });
  assert.deepEqual([img.st('a').uid, img.st('a').gid], [0, 0]);
  assert.match(img.stderr, /WARNING: .*user "ghost" not found/);
});

test('COPY --link, --exclude, --parents, --from a stage', () => {
  const img = exported(
    [
      '# syntax=docker/dockerfile:1.7-labs',
      `FROM ${suite.base} AS builder`,
      'RUN mkdir -p /out/logs && echo built > /out/app && echo noise > /out/logs/x.log',
      `FROM ${suite.base}`,
      'COPY --link a.txt /linked/a.txt',
      'COPY --exclude=*.log tree/ /excluded/',
      'COPY --parents tree/deep/./x/y.txt /parents/',
      'COPY --from=builder /out/app /from-stage/app',
    ].join('\n'),
    { 'a.txt': 'A\n', 'tree/keep.txt': 'k\n', 'tree/drop.log': 'd\n', 'tree/deep/x/y.txt': 'y\n' },
  );
  assert.equal(img.read('linked/a.txt'), 'A\n');
  assert.ok(img.has('bin/busybox'), '--link result is stacked on the stage');
  assert.equal(img.read('excluded/keep.txt'), 'k\n');
  assert.ok(!img.has('excluded/drop.log'));
  assert.equal(img.read('parents/x/y.txt'), 'y\n');
  assert.equal(img.read('from-stage/app'), 'built\n');
});

test('.dockerignore hides files from COPY, with ! exceptions', () => {
  const img = exported(`FROM ${suite.base}\nCOPY . /ctx/\n`, {
    '.dockerignore': '*.secret\nbuild/**\n!build/keep.me\n',
    'app.txt': 'app\n',
    'key.secret': 'no\n',
    'build/out.o': 'no\n',
    'build/keep.me': 'yes\n',
  });
  assert.equal(img.read('ctx/app.txt'), 'app\n');
  assert.ok(!img.has('ctx/key.secret'));
  assert.ok(!img.has('ctx/build/out.o'));
  assert.equal(img.read('ctx/build/keep.me'), 'yes\n');
});

test('ADD extracts local tar archives (gzip, bzip2, xz) and copies other files', () => {
  const img = exported(
    [`FROM ${suite.base}`, 'ADD plain.tar /t/', 'ADD files.tar.gz /gz/', 'ADD files.tar.bz2 /bz/', 'ADD files.tar.xz /xz/', 'ADD notes.txt /notes.txt'].join('\n'),
    { 'notes.txt': 'n\n' },
    (ctx) => {
      const src = join(ctx, 'src');
      mkdirSync(join(src, 'pkg'), { recursive: true });
      writeFileSync(join(src, 'pkg/run.sh'), 'echo run\n', { mode: 0o755 });
      execFileSync('tar', ['-cf', join(ctx, 'plain.tar'), '-C', src, 'pkg']);
      execFileSync('tar', ['-czf', join(ctx, 'files.tar.gz'), '-C', src, 'pkg']);
      execFileSync('tar', ['-cjf', join(ctx, 'files.tar.bz2'), '-C', src, 'pkg']);
      execFileSync('tar', ['-cJf', join(ctx, 'files.tar.xz'), '-C', src, 'pkg']);
      rmSync(src, { recursive: true });
    },
  );
  for (const d of ['t', 'gz', 'bz', 'xz']) {
    assert.equal(img.read(`${d}/pkg/run.sh`), 'echo run\n', d);
    assert.equal(img.st(`${d}/pkg/run.sh`).mode & 0o777, 0o755, d);
  }
  assert.equal(img.read('notes.txt'), 'n\n');
});

test('ADD of an http URL: not extracted, mode 0600, --checksum verified', async () => {
  const body = 'remote content\n';
  const sum = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  let served = 0;
  const srv: Server = createServer((req, res) => {
    if (req.url === '/files/remote.txt') served++;
    if (req.url === '/files/remote.txt') res.writeHead(200, { 'last-modified': 'Wed, 01 Jan 2020 00:00:00 GMT' }).end(body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}/files/remote.txt`;
  try {
    const dest = join(suite.outs, 'url');
    const ok = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\nADD --checksum=${sum} ${url} /dl/\n` }, ['-o', `type=local,dest=${dest}`]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(readFileSync(join(dest, 'dl/remote.txt'), 'utf8'), body);
    assert.equal(lstatSync(join(dest, 'dl/remote.txt')).mode & 0o777, 0o600);
    // With --checksum the step is keyed by it: a rebuild is cached without fetching the URL again.
    const before = served;
    const again = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\nADD --checksum=${sum} ${url} /dl/\n` });
    assert.equal(again.status, 0, again.stderr);
    assert.equal(served, before);
    const bad = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\nADD --checksum=sha256:${'0'.repeat(64)} ${url} /dl/\n` });
    assert.notEqual(bad.status, 0);
    assert.match(errorLine(bad), /Dockerfile:2: .*digest mismatch/);
    const missing = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\nADD ${url}.nope /dl/\n` });
    assert.notEqual(missing.status, 0);
    assert.match(errorLine(missing), /404/);
  } finally {
    srv.close();
  }
});

test('sources never escape the context', () => {
  const parent = mkdtempSync(join(tmpdir(), 'kiln-escape-'));
  writeFileSync(join(parent, 'outside.txt'), 'secret outside the context\n');
  const context = join(parent, 'ctx');
  mkdirSync(context);
  writeFileSync(join(context, 'Dockerfile'), `FROM ${suite.base}\nCOPY ../outside.txt /x\n`);
  symlinkSync('../outside.txt', join(context, 'sneaky'));
  try {
    const r = kilnBuild(suite.root, {}, [], { context });
    assert.notEqual(r.status, 0);
    assert.match(errorLine(r), /Dockerfile:2: .*outside\.txt.*not found/);
    // A symlink is followed inside the context's suite.root: ../outside.txt is /outside.txt of the context.
    writeFileSync(join(context, 'Dockerfile'), `FROM ${suite.base}\nCOPY sneaky /copied\n`);
    const viaLink = kilnBuild(suite.root, {}, [], { context });
    assert.notEqual(viaLink.status, 0);
    assert.match(errorLine(viaLink), /Dockerfile:2: .*not found/);
    assert.doesNotMatch(viaLink.stderr, /secret outside the context/);
    // Copied as part of a directory, the link stays a link (its target is not read).
    writeFileSync(join(context, 'Dockerfile'), `FROM ${suite.base}\nCOPY . /ctx/\n`);
    const dest = join(suite.outs, 'escape');
    const whole = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}`], { context });
    assert.equal(whole.status, 0, whole.stderr);
    assert.equal(readlinkSync(join(dest, 'ctx/sneaky')), '../outside.txt');
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test('WORKDIR is created owned by the current USER', () => {
  const img = exported(`FROM ${suite.base}\nUSER nobody\nWORKDIR /work/dir\n`, {});
  assert.equal(img.st('work/dir').uid, 65534);
  assert.equal(img.st('work/dir').mode & 0o777, 0o755);
});

void chownSync;

test('COPY from the context gives 0:0 whoever owns the files here (as docker build); --chown and stages keep theirs; host owners are not in the key', () => {
  const context = writeContext({
    Dockerfile: [
      `FROM ${suite.base} AS stage`,
      'RUN echo s > /owned && chown 7:8 /owned',
      `FROM ${suite.base}`,
      'COPY host.txt /plain.txt',
      'COPY --chown=5:6 host.txt /chowned.txt',
      'COPY --from=stage /owned /owned',
      '',
    ].join('\n'),
    'host.txt': 'h\n',
  });
  chownSync(join(context, 'host.txt'), 1000, 1000);
  const dest = join(suite.outs, 'owners');
  const r = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}`], { context });
  assert.equal(r.status, 0, r.stderr);
  const owner = (p: string) => `${statSync(join(dest, p)).uid}:${statSync(join(dest, p)).gid}`;
  assert.equal(owner('plain.txt'), '0:0');
  assert.equal(owner('chowned.txt'), '5:6');
  assert.equal(owner('owned'), '7:8');
  chownSync(join(context, 'host.txt'), 2000, 2000);
  const again = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}-2`], { context });
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /COPY host\.txt \/plain\.txt\n#\d+ CACHED/);
});

test('symbolic --chmod adjusts each copied file from its own mode; the mode string is in the cache key', () => {
  const files = { 'd/f': 'f\n', 'd/x': 'x\n', 'd/sub/g': 'g\n' };
  const prepare = (ctx: string) => {
    chmodSync(join(ctx, 'd/f'), 0o644);
    chmodSync(join(ctx, 'd/x'), 0o750);
    chmodSync(join(ctx, 'd/sub'), 0o700);
  };
  const img = exported(`FROM ${suite.base}\nCOPY --chmod=a+X,go-w d /sym/\nCOPY --chmod=u=rw,g=u,o= d/f /eq\n`, files, prepare);
  const mode = (p: string) => img.st(p).mode & 0o7777;
  assert.equal(mode('sym/f'), 0o644, 'X leaves a file without any execute bit alone');
  assert.equal(mode('sym/x'), 0o751, 'X adds execute to a file that had some');
  assert.equal(mode('sym/sub'), 0o711, 'X adds search to a directory');
  assert.equal(mode('sym/sub/g'), 0o644);
  assert.equal(mode('sym'), 0o755, 'the destination directory the copy creates stays 0755');
  assert.equal(mode('eq'), 0o660);
  // Another mode string over the same files is another result, not a cache hit of the first.
  const other = exported(`FROM ${suite.base}\nCOPY --chmod=a+X,go-r d /sym/\nCOPY --chmod=u=rw,g=u,o= d/f /eq\n`, files, prepare);
  assert.equal(other.st('sym/x').mode & 0o7777, 0o711);
  assert.doesNotMatch(other.stderr, /COPY --chmod=a\+X,go-r d \/sym\/\n#\d+ CACHED/);
});

test('an invalid symbolic --chmod is one line naming the Dockerfile line', () => {
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nCOPY --chmod=x+u a /a\n`, a: 'a' });
  assert.notEqual(r.status, 0);
  assert.match(errorLine(r), /Dockerfile:2: .*invalid chmod parameter: 'x\+u': invalid syntax/);
});

test('COPY --parents of a missing source fails like plain COPY', () => {
  const files = { a: 'a\n', 'tree/x/y.txt': 'y\n' };
  const plain = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nCOPY tree/nope/z.txt /dst/\n`, ...files });
  assert.notEqual(plain.status, 0);
  assert.match(errorLine(plain), /Dockerfile:2: .*"\/tree\/nope\/z\.txt": not found/);
  for (const src of ['tree/nope/z.txt', 'tree/./nope/z.txt']) {
    const r = kilnBuild(suite.root, { Dockerfile: `# syntax=docker/dockerfile:1.7-labs\nFROM ${suite.base}\nCOPY --parents a ${src} /dst/\n`, ...files });
    assert.notEqual(r.status, 0, `COPY --parents ${src} built`);
    assert.match(errorLine(r), /Dockerfile:3: .*"\/tree\/nope\/z\.txt": not found/);
  }
  // A wildcard that matches nothing next to a real source is no error, as without --parents.
  const img = exported(`# syntax=docker/dockerfile:1.7-labs\nFROM ${suite.base}\nCOPY --parents tree/x/y.txt tree/*/none* /dst/\n`, files);
  assert.equal(img.read('dst/tree/x/y.txt'), 'y\n');
});
