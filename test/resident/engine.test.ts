// The resident engine (src/resident): `kiln build` hands its work to a per-state-dir engine process over
// ROOT/engine.sock. What a user sees must not change: the same image, the same output, ^C cancels a RUN,
// a dead engine is one line, an idle engine leaves, and a socket someone else planted is never used.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { writeContext } from '../helpers/build.js';
import { kiln, kilnAsync, kilnBin, tempRoot, type KilnResult } from '../helpers/kiln.js';
import { repoRoot } from '../helpers/fixtures.js';
import { alive, procsWith, sandboxHelpersUnder, sleep, waitFor } from '../lifecycle/procs.js';

// This file tests the engine as a user gets it: kiln's default, not the test runner's KILN_ENGINE=off.
delete process.env.KILN_ENGINE;

const suite = buildSuite();
const roots: string[] = [];
const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
  for (const root of [...roots].reverse()) {
    kiln(root, ['engine', 'stop']);
    for (const p of enginesOf(root)) process.kill(p, 'SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
});

function newRoot(): string {
  const root = tempRoot('kiln-res-');
  roots.push(root);
  return root;
}

/** Engine processes serving root (their command line ends with `engine serve ROOT`). */
function enginesOf(root: string): number[] {
  return procsWith(`engine serve ${root}`).filter((p) => p.cmdline.endsWith(`engine serve ${root}`)).map((p) => p.pid);
}

const resident = { KILN_ENGINE: 'resident' };
const inProcess = { KILN_ENGINE: 'off' };

function served(root: string): number {
  const r = kiln(root, ['engine', 'status']);
  const m = /(\d+) builds served/.exec(r.stdout);
  return m ? Number(m[1]) : -1;
}

/** Progress output without the step timings, which differ from run to run. */
const normalized = (r: KilnResult) => r.stderr.replace(/DONE \d+\.\d+s/g, 'DONE');

test('a warm no-op through the resident engine: the same image and output as in-process, -f - included; in-process commands are not kept waiting', () => {
  const root = newRoot();
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n`, 'a.txt': 'resident\n' });
  const args = ['build', '--progress', 'plain', '-t', 'res:1', ctx];
  assert.equal(kiln(root, args, { env: inProcess }).status, 0);
  const local = kiln(root, args, { env: inProcess });
  assert.equal(local.status, 0, local.stderr);
  assert.deepEqual(enginesOf(root), [], 'KILN_ENGINE=off starts no engine');

  const first = kiln(root, args, { env: resident });
  assert.equal(first.status, 0, first.stderr);
  const [engine] = enginesOf(root);
  assert.ok(engine, 'KILN_ENGINE=resident started an engine');
  const warm = kiln(root, args, { env: resident });
  assert.equal(warm.status, 0, warm.stderr);
  assert.equal(served(root), 2, 'both builds ran in the engine');
  assert.equal(normalized(warm), normalized(local));
  assert.equal(warm.stdout, local.stdout);
  assert.match(warm.stderr, /^image sha256:[0-9a-f]{64} \(docker\.io\/library\/res:1\) for linux\/amd64$/m);

  // Without KILN_ENGINE, a running engine is used; -q and -f - (stdin sent by the client) give the same digest.
  const q = kiln(root, ['build', '-q', ctx], { env: inProcess });
  const qRes = kiln(root, ['build', '-q', ctx]);
  assert.equal(qRes.status, 0, qRes.stderr);
  assert.match(qRes.stdout, /^sha256:[0-9a-f]{64}\n$/);
  assert.equal(qRes.stdout, q.stdout);
  const stdinRes = kiln(root, ['build', '-q', '-f', '-', ctx], { input: readFileSync(join(ctx, 'Dockerfile'), 'utf8') });
  assert.equal(stdinRes.stdout, q.stdout, stdinRes.stderr);
  assert.equal(served(root), 4);

  // A user error is the same one line, with the same exit status.
  const bad = writeContext({ Dockerfile: `FROM ${suite.base}\nCOPY missing.txt /\n` });
  const badLocal = kiln(root, ['build', '--progress', 'quiet', bad], { env: inProcess });
  const badRes = kiln(root, ['build', '--progress', 'quiet', bad]);
  assert.equal(badRes.status, badLocal.status);
  assert.notEqual(badRes.status, 0);
  assert.equal(badRes.stderr, badLocal.stderr);
  assert.equal(served(root), 5);

  // kiln bake goes the same way: the same targets, the same lines.
  writeFileSync(join(ctx, 'kiln-bake.json'), JSON.stringify({ target: { one: { context: '.', tags: ['res:bake'] } } }));
  const bakeLocal = spawnSync(process.execPath, [kilnBin, 'bake', '--progress', 'plain', 'one'], { cwd: ctx, env: { ...process.env, KILN_ROOT: root, ...inProcess }, encoding: 'utf8' });
  const bakeRes = spawnSync(process.execPath, [kilnBin, 'bake', '--progress', 'plain', 'one'], { cwd: ctx, env: { ...process.env, KILN_ROOT: root }, encoding: 'utf8' });
  assert.equal(bakeRes.status, 0, bakeRes.stderr);
  assert.equal(bakeRes.stderr.replace(/DONE \d+\.\d+s/g, 'DONE'), bakeLocal.stderr.replace(/DONE \d+\.\d+s/g, 'DONE'));
  assert.match(bakeRes.stderr, /^one: image sha256:[0-9a-f]{64} \(docker\.io\/library\/res:bake\)/m);
  assert.equal(served(root), 6);

  // The engine holds the state between builds; an in-process command gets it at once all the same.
  const images = kiln(root, ['images'], { env: { KILN_LOCK_TIMEOUT: '2' } });
  assert.equal(images.status, 0, images.stderr);
  assert.match(images.stdout, /^res +1 /m);
  assert.deepEqual(enginesOf(root), [engine], 'one engine all along');
  const again = kiln(root, args);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(served(root), 7, 'the engine takes the state back for its next build');
});

test('two concurrent CLIs start and share one engine, on a state dir that does not exist yet', async () => {
  const root = join(newRoot(), 'new');
  roots.push(root);
  const a = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo a > /a\n` });
  const b = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo b > /b\n` });
  const [ra, rb] = await Promise.all([kilnAsync(root, ['build', '-q', a], { env: resident }).done, kilnAsync(root, ['build', '-q', b], { env: resident }).done]);
  assert.equal(ra.status, 0, ra.stderr);
  assert.equal(rb.status, 0, rb.stderr);
  assert.notEqual(ra.stdout, rb.stdout);
  assert.equal(enginesOf(root).length, 1, `engines: ${enginesOf(root)}`);
  assert.equal(served(root), 2);
  // The same two builds in-process give the same images.
  assert.equal(kiln(root, ['build', '-q', a], { env: inProcess }).stdout, ra.stdout);
  assert.equal(kiln(root, ['build', '-q', b], { env: inProcess }).stdout, rb.stdout);
});

test('the engine leaves after its idle timeout; kiln engine stop stops it', async () => {
  const root = newRoot();
  const start = kiln(root, ['engine', 'start', '--idle-timeout', '1']);
  assert.equal(start.status, 0, start.stderr);
  assert.match(start.stdout, /^kiln engine \(pid \d+\) runs for .*; it leaves after 1s without a build\n$/);
  const [pid] = enginesOf(root);
  assert.ok(pid);
  assert.ok(await waitFor(() => !alive(pid), 60_000), 'the idle engine left');
  assert.equal(existsSync(join(root, 'engine.sock')), false, 'and removed its socket');
  const status = kiln(root, ['engine', 'status']);
  assert.equal(status.status, 1);
  assert.equal(status.stdout, `no kiln engine runs for ${root}\n`);

  assert.equal(kiln(root, ['engine', 'start']).status, 0);
  const [second] = enginesOf(root);
  assert.ok(second);
  const stop = kiln(root, ['engine', 'stop']);
  assert.equal(stop.stdout, `kiln engine (pid ${second}) stopped\n`);
  assert.equal(alive(second), false);
  assert.equal(kiln(root, ['engine', 'status']).status, 1);
});

let seq = 0;
function longRun(): { context: string; marker: string } {
  const marker = `sleep ${32000 + (process.pid % 1000) * 10 + seq++}`;
  return { context: writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo started && ${marker}\n` }), marker };
}
const running = (marker: string) => procsWith(marker, { containerOnly: true }).length;

/** kiln build in its own process group (setsid: a shell job), through the engine. */
function groupBuild(root: string, context: string) {
  const child = spawn('setsid', [process.execPath, kilnBin, 'build', '--progress', 'plain', context], { env: { ...process.env, KILN_ROOT: root, ...resident }, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  return { child, done, stderr: () => stderr };
}

test('Ctrl-C (SIGINT to the client\'s process group) cancels a RUN in the engine: one line, no sandbox left', async () => {
  const root = newRoot();
  const { context, marker } = longRun();
  const build = groupBuild(root, context);
  assert.ok(await waitFor(() => running(marker) === 1, 120_000), build.stderr());
  const [engine] = enginesOf(root);
  assert.ok(engine, 'the build runs in the engine');
  const helpers = sandboxHelpersUnder(engine);
  assert.equal(helpers.length, 1, 'the RUN sandbox is the engine\'s');
  await sleep(300);
  process.kill(-build.child.pid!, 'SIGINT');
  const code = await build.done;
  assert.equal(code, 1);
  const lines = build.stderr().trim().split('\n');
  assert.equal(lines.at(-1), 'kiln: build canceled', build.stderr());
  assert.equal(lines.filter((l) => l.startsWith('kiln:')).length, 1);
  assert.ok(await waitFor(() => running(marker) === 0 && helpers.filter(alive).length === 0, 10_000), 'the RUN and its sandbox are gone');
  assert.ok(alive(engine), 'the engine itself goes on');
  const next = kiln(root, ['build', '-q', writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo after-cancel\n` })]);
  assert.equal(next.status, 0, next.stderr);
});

test('an engine killed mid-build: the client says so in one line, and the next build works', async () => {
  const root = newRoot();
  const { context, marker } = longRun();
  const build = groupBuild(root, context);
  assert.ok(await waitFor(() => running(marker) === 1, 120_000), build.stderr());
  const [engine] = enginesOf(root);
  assert.ok(engine);
  process.kill(engine, 'SIGKILL');
  const code = await build.done;
  assert.equal(code, 1);
  const lines = build.stderr().trim().split('\n');
  assert.equal(lines.at(-1), `kiln: the resident engine (pid ${engine}) stopped during the build; see ${root}/engine.log`);
  assert.equal(lines.filter((l) => l.startsWith('kiln:')).length, 1);
  assert.ok(await waitFor(() => running(marker) === 0, 10_000), 'the RUN went with its engine');
  // A new engine replaces the dead one's socket; the state is whole: the cancelled step runs again.
  const quick = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo after-kill > /k\n` });
  const next = kiln(root, ['build', '-q', quick], { env: resident });
  assert.equal(next.status, 0, next.stderr);
  assert.equal(enginesOf(root).length, 1);
  assert.notEqual(enginesOf(root)[0], engine);
  const local = kiln(root, ['build', '-q', quick], { env: inProcess });
  assert.equal(local.status, 0, local.stderr);
  assert.equal(local.stdout, next.stdout);
});

/** A listening unix socket at path that counts who connects. */
async function decoy(path: string): Promise<{ server: Server; connections: () => number }> {
  let n = 0;
  const server = createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  cleanups.push(() => server.close());
  return { server, connections: () => n };
}

test('a socket planted by another user, or a symlink at the socket path, is never used', async () => {
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo planted > /p\n` });

  const root = newRoot();
  const planted = await decoy(join(root, 'engine.sock'));
  chmodSync(join(root, 'engine.sock'), 0o600);
  chownSync(join(root, 'engine.sock'), 65534, 65534);
  const r = kiln(root, ['build', '-q', ctx], { env: resident });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, `kiln: not using the resident engine: ${root}/engine.sock is owned by uid 65534, not by you (uid 0)\n`);
  assert.equal(planted.connections(), 0);
  assert.deepEqual(enginesOf(root), [], 'no engine started over it');
  const start = kiln(root, ['engine', 'start']);
  assert.equal(start.status, 1);
  assert.equal(start.stderr, `kiln: kiln engine: ${root}/engine.sock is owned by uid 65534, not by you (uid 0); remove it\n`);
  assert.equal(planted.connections(), 0);

  const root2 = newRoot();
  const elsewhere = mkdtempSync(join(tmpdir(), 'kiln-decoy-'));
  cleanups.push(() => rmSync(elsewhere, { recursive: true, force: true }));
  const target = await decoy(join(elsewhere, 's'));
  symlinkSync(join(elsewhere, 's'), join(root2, 'engine.sock'));
  const viaLink = kiln(root2, ['build', '-q', ctx], { env: resident });
  assert.equal(viaLink.status, 0, viaLink.stderr);
  assert.equal(viaLink.stderr, `kiln: not using the resident engine: ${root2}/engine.sock is a symbolic link\n`);
  assert.match(viaLink.stdout, /^sha256:[0-9a-f]{64}\n$/, 'built in-process');
  assert.equal(target.connections(), 0);
  assert.deepEqual(enginesOf(root2), []);

  // A symlink planted at ROOT/engine.starting (where a starting engine's pid is written): the file it
  // points to outside is never written, and the build and the engine it starts work all the same.
  const root3 = newRoot();
  const canary = join(elsewhere, 'canary');
  writeFileSync(canary, 'canary\n');
  symlinkSync(canary, join(root3, 'engine.starting'));
  const viaMarker = kiln(root3, ['build', '-q', ctx]);
  assert.equal(viaMarker.status, 0, viaMarker.stderr);
  assert.ok(await waitFor(() => served(root3) === 0, 30_000), 'an engine was started');
  assert.equal(readFileSync(canary, 'utf8'), 'canary\n');
  assert.equal(kiln(root3, ['build', '-q', ctx]).stdout, viaMarker.stdout);
  assert.equal(served(root3), 1);
  assert.equal(readFileSync(canary, 'utf8'), 'canary\n');

  // A FIFO there: nobody blocks on it; the build runs.
  const root4 = newRoot();
  assert.equal(spawnSync('mkfifo', [join(root4, 'engine.starting')]).status, 0);
  const viaFifo = kiln(root4, ['build', '-q', ctx], { timeoutMs: 60_000 });
  assert.equal(viaFifo.status, 0, viaFifo.stderr);
  assert.match(viaFifo.stdout, /^sha256:[0-9a-f]{64}\n$/);
});

test('kiln rebuilt since the engine started: the client builds itself and the old engine leaves', async () => {
  const root = newRoot();
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo stale > /s\n` });
  assert.equal(kiln(root, ['engine', 'start']).status, 0);
  const [engine] = enginesOf(root);
  assert.ok(engine);
  const before = kiln(root, ['build', '-q', ctx]);
  assert.equal(before.status, 0, before.stderr);
  assert.equal(served(root), 1);
  // What `npm run build` does last: a new dist/bundle/main.js (here: the same bytes, a new mtime).
  const main = join(repoRoot, 'dist', 'bundle', 'main.js');
  const { atime, mtime } = statSync(main);
  utimesSync(main, atime, new Date(mtime.getTime() + 1000));
  cleanups.push(() => utimesSync(main, atime, mtime));
  const after = kiln(root, ['build', '-q', ctx]);
  assert.equal(after.status, 0, after.stderr);
  assert.equal(after.stdout, before.stdout);
  assert.equal(after.stderr, '');
  assert.ok(await waitFor(() => !alive(engine), 30_000), 'the stale engine left');
  // The client that built itself started an engine of the new code as it exited; the next build uses it.
  assert.ok(await waitFor(() => served(root) === 0, 30_000), 'a new engine listens');
  assert.equal(kiln(root, ['build', '-q', ctx]).stdout, before.stdout);
  assert.equal(served(root), 1);
});

test('by default a first build runs in-process and starts the engine beside itself; the next build attaches; an engine whose state dir is removed leaves', async () => {
  const root = newRoot();
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo auto > /auto\n` });
  const first = kiln(root, ['build', '-q', ctx]);
  assert.equal(first.status, 0, first.stderr);
  assert.equal(first.stderr, '');
  assert.ok(await waitFor(() => served(root) === 0, 30_000), 'the first build started an engine');
  const [engine] = enginesOf(root);
  assert.ok(engine);
  assert.equal(spawnSync('ps', ['-o', 'ni=', '-p', String(engine)], { encoding: 'utf8' }).stdout.trim(), '0', 'listening, it runs at the normal priority');
  assert.equal(existsSync(join(root, 'engine.starting')), false);
  // It opens the state once the build that started it has let go, ahead of the next build…
  const status = () => kiln(root, ['engine', 'status']).stdout;
  assert.ok(await waitFor(() => /state open/.test(status()), 30_000), status());
  // …and hands it at once to an in-process command, then no longer takes it on its own.
  const images = kiln(root, ['images'], { env: { KILN_LOCK_TIMEOUT: '2' } });
  assert.equal(images.status, 0, images.stderr);
  assert.match(status(), /state closed/);
  const second = kiln(root, ['build', '-q', ctx]);
  assert.equal(second.status, 0, second.stderr);
  assert.equal(second.stdout, first.stdout);
  assert.equal(served(root), 1, 'the second build ran in the engine');
  assert.deepEqual(enginesOf(root), [engine]);
  rmSync(root, { recursive: true, force: true });
  assert.ok(await waitFor(() => !alive(engine), 30_000), 'the engine left with its state dir');

  // A build right after the first one, while the engine it started is still loading, waits for it.
  const quick = newRoot();
  const a = kiln(quick, ['build', '-q', ctx]);
  const b = kiln(quick, ['build', '-q', ctx]);
  assert.equal(b.status, 0, b.stderr);
  assert.equal(b.stdout, a.stdout);
  assert.equal(served(quick), 1, 'the second build ran in the engine the first one started');
});

test('a build waiting for an engine started in the background gives it the normal priority; other processes keep theirs', async () => {
  const root = newRoot();
  // Stand-ins with an engine's command line (`… engine serve ROOT`) and one without, both at nice 10.
  const sleeper = (args: string[]) => spawn('nice', ['-n', '10', process.execPath, '-e', 'setTimeout(() => {}, 20000)', ...args], { stdio: 'ignore' });
  const engine = sleeper(['engine', 'serve', root]);
  const other = sleeper(['something', 'else', root]);
  cleanups.push(() => void engine.kill('SIGKILL'), () => void other.kill('SIGKILL'));
  const niceOf = (pid: number) => spawnSync('ps', ['-o', 'ni=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
  assert.ok(await waitFor(() => niceOf(engine.pid!) === '10' && niceOf(other.pid!) === '10', 5_000));
  const { awaitStartingEngine, normalPriority } = await import('../../src/resident/client.js');
  // ROOT/engine.starting names the starting engine: the waiting build finds it, never listening here.
  writeFileSync(join(root, 'engine.starting'), String(engine.pid));
  assert.equal(await awaitStartingEngine(root, 300), undefined);
  assert.equal(niceOf(engine.pid!), '0', 'the engine being waited for runs at the normal priority');
  normalPriority(other.pid!);
  assert.equal(niceOf(other.pid!), '10', 'a process that is no engine is left alone');
});

test('an engine whose state dir was deleted leaves without removing the socket of the engine that took its place', async () => {
  const root = newRoot();
  assert.equal(kiln(root, ['engine', 'start']).status, 0);
  const [old] = enginesOf(root);
  assert.ok(old);
  // The old engine is held still while its state dir is deleted and a new engine binds the same path
  // (on ext4 the new socket often gets the deleted one's inode number). Let go, it sees its socket gone.
  process.kill(old, 'SIGSTOP');
  try {
    rmSync(root, { recursive: true, force: true });
    const start = kiln(root, ['engine', 'start']);
    assert.equal(start.status, 0, start.stderr);
  } finally {
    process.kill(old, 'SIGCONT');
  }
  const fresh = enginesOf(root).find((p) => p !== old);
  assert.ok(fresh, 'a new engine runs');
  assert.ok(await waitFor(() => !alive(old), 30_000), 'the old engine left');
  assert.ok(existsSync(join(root, 'engine.sock')), 'the new engine\'s socket is still there');
  const status = kiln(root, ['engine', 'status']);
  assert.equal(status.status, 0, status.stdout + status.stderr);
  assert.match(status.stdout, new RegExp(`^kiln engine \\(pid ${fresh}\\)`));
  // A build attaches to it rather than building in-process beside it (which would wait for its lock).
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo kept > /kept\n` });
  const build = kiln(root, ['build', '-q', ctx], { env: { KILN_LOCK_TIMEOUT: '5' } });
  assert.equal(build.status, 0, build.stderr);
  assert.equal(served(root), 1, 'the build ran in the new engine');
});

test('an in-process command waiting for the state gets it even when an engine takes it the moment it is free', async () => {
  const root = newRoot();
  const marker = `sleep 4.${process.pid % 1000}`;
  const holder = kilnAsync(root, ['build', '-q', writeContext({ Dockerfile: `FROM ${suite.base}\nRUN ${marker}\n` })], { env: inProcess });
  cleanups.push(() => holder.child.kill('SIGKILL'));
  assert.ok(await waitFor(() => running(marker) > 0, 60_000), 'the in-process build holds the state');
  // An engine started now waits to open the state ahead of its first build, trying every 100 ms…
  assert.equal(kiln(root, ['engine', 'start']).status, 0);
  // …so when the holder lets go it usually wins over a command that waits with a growing delay: that
  // command asks it again at each try, and it lets go.
  const images = kilnAsync(root, ['images'], { env: { ...inProcess, KILN_LOCK_TIMEOUT: '20' } });
  cleanups.push(() => images.child.kill('SIGKILL'));
  assert.equal((await holder.done).status, 0);
  const r = await images.done;
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /waiting for another kiln process/);
  assert.doesNotMatch(r.stderr, /gave up/);
});
