// Bad input from a build context or the command line is never lost data and never a stack trace: file
// names that are not UTF-8 are copied byte for byte, files named like layer whiteouts are refused by COPY (they would delete paths in every other tool that reads
// the layer), output paths that cannot be written and an empty --platform are one line naming the flag,
// and a build whose kiln process was killed is marked failed in the history instead of "running" forever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kiln, kilnAsync, tempRoot } from '../helpers/kiln.js';
import { kilnBuild, writeContext, errorLine } from '../helpers/build.js';
import { waitFor } from '../helpers/wait.js';
import { nameFromBytes, nameToBytes } from '../../base/raw-names.js';

const suite = buildSuite();

/** One line on stderr, no stack frame anywhere. */
function assertOneLineError(r: { status: number; stdout: string; stderr: string }, pattern: RegExp): void {
  assert.equal(r.status, 1, r.stderr);
  assert.match(errorLine(r), pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
}

test('COPY refuses context files named like whiteouts (.wh.*), naming the Dockerfile line and the file', () => {
  const dest = join(suite.outs, 'wh-local');
  // A whiteout-named file deep in a copied directory.
  const deep = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN echo keep > /etc/keep\nCOPY app /app\n`, 'app/ok.txt': 'ok\n', 'app/sub/.wh.keep': '' }, ['-o', `type=local,dest=${dest}`]);
  assertOneLineError(deep, /Dockerfile:3: .*"\/app\/sub\/\.wh\.keep".*"\.wh\.keep".*whiteout|Dockerfile:3: .*"\/app\/sub\/\.wh\.keep".*mark deleted files/);
  assert.equal(existsSync(join(dest, 'app')), false, 'nothing was exported');
  // The opaque marker, copied as a single file.
  const opaque = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nCOPY .wh..wh..opq /etc/\n`, '.wh..wh..opq': '' });
  assertOneLineError(opaque, /Dockerfile:2: .*"\/\.wh\.\.wh\.\.opq".*mark deleted files/);
  // A whiteout name made by the destination, from an innocent source file.
  const renamed = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nCOPY a.txt /.wh.etc\n`, 'a.txt': 'a\n' });
  assertOneLineError(renamed, /Dockerfile:2: .*"\/a\.txt" to "\/\.wh\.etc".*mark deleted files/);
  // Ignored by .dockerignore: never read, so no error.
  const ignored = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nCOPY . /ctx/\n`, '.dockerignore': '**/.wh.*\n', 'x/.wh.y': '', 'x/z': 'z\n' }, ['-o', `type=local,dest=${join(suite.outs, 'wh-ignored')}`]);
  assert.equal(ignored.status, 0, ignored.stderr);
  assert.equal(readFileSync(join(suite.outs, 'wh-ignored', 'ctx', 'x', 'z'), 'utf8'), 'z\n');
  assert.equal(existsSync(join(suite.outs, 'wh-ignored', 'ctx', 'x', '.wh.y')), false);
});

test('--iidfile, --metadata-file and -o dest that cannot be written are one line naming the flag, before the build', () => {
  const df = { Dockerfile: `FROM ${suite.base}\nRUN echo built > /built\n` };
  const dir = join(suite.outs, 'out-dir');
  mkdirSync(dir, { recursive: true });
  const aFile = join(suite.outs, 'a-file');
  writeFileSync(aFile, 'x');
  assertOneLineError(kilnBuild(suite.root, df, ['--iidfile', '/']), /^kiln: invalid value "\/" for flag --iidfile: it is a directory, not a file$/);
  assertOneLineError(kilnBuild(suite.root, df, ['--iidfile', join(aFile, 'iid')]), /^kiln: invalid value ".*a-file\/iid" for flag --iidfile: .*a-file is not a directory$/);
  assertOneLineError(kiln(suite.root, ['build', '--metadata-file', dir, writeContext(df)]), /^kiln: invalid value ".*out-dir" for flag --metadata-file: it is a directory, not a file$/);
  assertOneLineError(kilnBuild(suite.root, df, ['-o', `type=tar,dest=${dir}`]), /^kiln: invalid value ".*out-dir" for flag --output: it is a directory, not a file$/);
  assertOneLineError(kilnBuild(suite.root, df, ['-o', `type=local,dest=${aFile}`]), /^kiln: invalid value ".*a-file" for flag --output: it exists and is not a directory$/);
  // A file whose directory is missing is found only when it is written: still one line.
  const missing = join(suite.outs, 'no-such-dir', 'iid');
  assertOneLineError(kilnBuild(suite.root, df, ['--iidfile', missing]), /^kiln: --iidfile .*no-such-dir\/iid: cannot write the file: its directory does not exist \(ENOENT\)$/);
  // Paths the kernel refuses: one line, not a crash of an unhandled stream error or a mkdir loop.
  assertOneLineError(kilnBuild(suite.root, df, ['-o', 'type=tar,dest=/proc/kiln-rootfs.tar']), /^kiln: --output \/proc\/kiln-rootfs\.tar: cannot write the file: the file system refuses to create it \(ENOENT\)$/);
  assertOneLineError(kilnBuild(suite.root, df, ['-o', 'type=local,dest=/proc/sys/kiln-out']), /^kiln: --output type=local,dest=\/proc\/sys\/kiln-out: cannot write: .*\(ENOENT\)$/);
  assertOneLineError(kilnBuild(suite.root, df, ['--iidfile', '/proc/kiln-iid']), /^kiln: --iidfile \/proc\/kiln-iid: cannot write the file: the file system refuses to create it \(ENOENT\)$/);
  // And the flag works where it can.
  const iid = join(suite.outs, 'iid');
  const ok = kilnBuild(suite.root, df, ['--iidfile', iid]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(readFileSync(iid, 'utf8'), ok.digest);
});

test("--platform '' is an error naming the flag, not a build for the host", () => {
  const df = { Dockerfile: `FROM ${suite.base}\nRUN echo built\n` };
  assertOneLineError(kilnBuild(suite.root, df, ['--platform', '']), /^kiln: invalid value "" for flag --platform: empty platform/);
  assertOneLineError(kilnBuild(suite.root, df, ['--platform', 'linux/amd64,']), /^kiln: invalid value "linux\/amd64," for flag --platform: empty platform/);
});

test('a build whose kiln was killed with -9 is marked failed in history ls at the next start, not running forever', async () => {
  const root = tempRoot();
  const context = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo started && sleep 31338\n` });
  const run = kilnAsync(root, ['build', '--progress', 'plain', context]);
  await waitFor(() => run.output().stderr.includes('started'), { timeoutMs: 60_000, what: 'the RUN to start' });
  const during = kiln(root, ['history', 'ls']);
  assert.match(during.stdout.trim().split('\n')[1] ?? '', /^\S+ +running /, 'a live build is running');
  run.child.kill('SIGKILL');
  await run.done;
  const ls = kiln(root, ['history', 'ls']);
  assert.equal(ls.status, 0, ls.stderr);
  const row = ls.stdout.trim().split('\n')[1] ?? '';
  assert.match(row, /^\S+ +failed /);
  const inspect = kiln(root, ['history', 'inspect', 'latest']);
  assert.match(inspect.stdout, /^Status: +failed \(kiln stopped before the build finished \(process \d+ was killed or crashed\)\)$/m);
  assert.doesNotMatch(inspect.stdout, /^Duration: +running$/m);
  // The record on disk says so too (a dashboard reading it sees the same), and a later build is listed above it.
  const id = row.split(/\s+/)[0]!;
  assert.equal(JSON.parse(readFileSync(join(root, 'history', `${id}.json`), 'utf8')).status, 'failed');
  const next = kilnBuild(root, { Dockerfile: `FROM ${suite.base}\nRUN echo next\n` });
  assert.equal(next.status, 0, next.stderr);
  const rows = kiln(root, ['history', 'ls']).stdout.trim().split('\n').slice(1);
  assert.match(rows[0]!, /^\S+ +completed /);
  assert.match(rows[1]!, new RegExp(`^${id} +failed `));
});

// ---- file names are bytes ----

/** A context written with raw byte names (not UTF-8). */
function rawContext(files: [Buffer, string][], links: [Buffer, Buffer][] = [], dockerfile: string): string {
  const ctx = writeContext({ Dockerfile: dockerfile });
  mkdirSync(join(ctx, 'dir'));
  const dir = Buffer.from(join(ctx, 'dir') + '/');
  for (const [name, body] of files) writeFileSync(Buffer.concat([dir, name]), body);
  for (const [name, target] of links) symlinkSync(target, Buffer.concat([dir, name]));
  return ctx;
}

const LATIN1 = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2d, 0xff, 0x2e, 0x74, 0x78, 0x74]); // "caf\xe9-\xff.txt"
const LINK = Buffer.from([0x6c, 0x69, 0x6e, 0x6b, 0x2d, 0xfe]); // "link-\xfe"
const PRIVATE_USE = Buffer.from('esc-\uF8FF-zz.txt'); // valid UTF-8 that looks like an escape
const EMOJI = Buffer.from('emoji-\u{1F600}.txt');

/** Names under `dir` of a local export, as bytes, sorted. */
function rawNames(dir: string): Buffer[] {
  return readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare);
}

test('non-UTF-8 file names in the context are copied byte for byte: into the layer, type=tar and type=local', () => {
  const df = `FROM ${suite.base}\nCOPY dir /dir\n`;
  const ctx = rawContext([[LATIN1, 'latin1 name\n'], [PRIVATE_USE, 'private use\n'], [EMOJI, 'emoji\n'], [Buffer.from('ok.txt'), 'ok\n']], [[LINK, LATIN1]], df);
  const tarOut = join(suite.outs, 'raw-names.tar');
  const t = kilnBuild(suite.root, {}, ['-o', `type=tar,dest=${tarOut}`], { context: ctx });
  assert.equal(t.status, 0, t.stderr);
  // GNU tar prints the bytes as octal escapes: an independent reader of the archive.
  const listing = execFileSync('tar', ['--quoting-style=escape', '-tvf', tarOut], { encoding: 'latin1' });
  assert.match(listing, /^-rw-r--r-- .* dir\/caf\\351-\\377\.txt$/m);
  assert.match(listing, /^lrwxrwxrwx .* dir\/link-\\376 -> caf\\351-\\377\.txt$/m);
  const names = execFileSync('tar', ['-tf', tarOut]).toString('latin1').split('\n');
  assert.ok(names.includes('dir/' + PRIVATE_USE.toString('latin1')), 'a private-use character stays itself');
  assert.ok(names.includes('dir/' + EMOJI.toString('latin1')));
  const local = join(suite.outs, 'raw-names-local');
  const l = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${local}`], { context: ctx });
  assert.equal(l.status, 0, l.stderr);
  assert.deepEqual(rawNames(join(local, 'dir')), [LATIN1, EMOJI, PRIVATE_USE, LINK, Buffer.from('ok.txt')].sort(Buffer.compare));
  const dir = Buffer.from(join(local, 'dir') + '/');
  assert.equal(readFileSync(Buffer.concat([dir, LATIN1]), 'utf8'), 'latin1 name\n');
  assert.deepEqual(readlinkSync(Buffer.concat([dir, LINK]), { encoding: 'buffer' }), LATIN1);
  assert.equal(readFileSync(Buffer.concat([dir, LINK]), 'utf8'), 'latin1 name\n', 'the link resolves to the raw-named file');

  // Two names that differ only in a non-UTF-8 byte are different keys: a rename is not a cache hit.
  const renamed = rawContext([[Buffer.from([0x61, 0xfe]), 'same\n']], [], df);
  const first = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${join(suite.outs, 'raw-a')}`], { context: renamed });
  assert.equal(first.status, 0, first.stderr);
  renameSync(Buffer.from(join(renamed, 'dir') + '/a\xfe', 'latin1'), Buffer.from(join(renamed, 'dir') + '/a\xff', 'latin1'));
  const second = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${join(suite.outs, 'raw-b')}`], { context: renamed });
  assert.equal(second.status, 0, second.stderr);
  assert.deepEqual(rawNames(join(suite.outs, 'raw-b', 'dir')), [Buffer.from([0x61, 0xff])]);
  assert.notEqual(first.digest, second.digest);
});

test('the byte-name mapping is exact both ways', () => {
  const samples = [Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf0, 0x9f, 0x98]), Buffer.from('plain'), Buffer.from('\u{1F600}\uF8FF'), Buffer.from([0xe2, 0x82, 0xac, 0x80, 0x41])];
  for (let i = 0; i < 200; i++) samples.push(randomBytes(1 + (i % 12)));
  for (const b of samples) {
    const name = nameFromBytes(b);
    assert.deepEqual(nameToBytes(name), b);
  }
});

test('a remote builder cannot receive a non-UTF-8 name yet: one line naming the file, not a stack trace or a renamed file', async () => {
  const { serve, clientEnv, kilnClient } = await import('../daemon/serve-helpers.js');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const sock = join(mkdtempSync(join(tmpdir(), 'kiln-sock-')), 'kiln.sock');
  const server = await serve(['--addr', `unix://${sock}`]);
  try {
    const ctx = rawContext([[LATIN1, 'x\n']], [], `FROM ${suite.base}\nCOPY dir /dir\n`);
    const r = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, ctx], clientEnv());
    assertOneLineError(r, /^kiln: context file dir\/caf\\xe9-\\xff\.txt: its name is not UTF-8, which a remote builder cannot receive yet/);
  } finally {
    await server.stop();
  }
});
