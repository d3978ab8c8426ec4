// Bad input from a build context or the command line is never lost data and never a stack trace: files
// named like layer whiteouts are refused by COPY (they would delete paths in every other tool that reads
// the layer), output paths that cannot be written and an empty --platform are one line naming the flag,
// and a build whose kiln process was killed is marked failed in the history instead of "running" forever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kiln, kilnAsync, tempRoot } from '../helpers/kiln.js';
import { kilnBuild, writeContext, errorLine } from '../helpers/build.js';

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
  const deadline = Date.now() + 60_000;
  while (!run.output().stderr.includes('started') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
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
