// ^C during a RUN: a terminal's Ctrl-C (SIGINT to the whole foreground process group), `kill -INT -PGID`
// and `timeout` (SIGTERM to its process group) stop `kiln build` promptly inside a RUN that would run for
// ages: the sandbox is killed, one line says the build was canceled, the state lock is free at once. The
// same for builds on `kiln serve`: ^C on the client cancels; a killed server leaves no sandbox behind.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { writeContext } from '../helpers/build.js';
import { kilnBin } from '../helpers/kiln.js';
import { serve, clientEnv } from '../daemon/serve-helpers.js';
import { alive, procsWith, sandboxHelpersUnder, sleep, Terminal, waitFor } from './procs.js';

const suite = buildSuite();
const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

let seq = 0;
/** A context whose RUN sleeps for `sleep N` with N unique to the test (so its process can be found). */
function longRun(): { context: string; marker: string } {
  const marker = `sleep ${31000 + process.pid % 1000 * 10 + seq++}`;
  return { context: writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo started && ${marker}\n` }), marker };
}

const running = (marker: string) => procsWith(marker, { containerOnly: true }).length;

/** The lock is free and the state usable: a small build starts and finishes at once, without waiting. */
function assertStateFree() {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [kilnBin, 'build', '--progress', 'plain', writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo next-${Date.now()}\n` })], {
    env: { ...process.env, KILN_ROOT: suite.root, KILN_LOCK_TIMEOUT: '2' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /waiting for another kiln process/);
  assert.ok(Date.now() - t0 < 20_000);
}

test('Ctrl-C in a terminal stops kiln build inside a long RUN: one line, no sandbox left, lock free', async () => {
  const { context, marker } = longRun();
  const term = new Terminal(`${process.execPath} ${kilnBin} build --progress plain ${context}`, { KILN_ROOT: suite.root, PATH: process.env.PATH ?? '' });
  cleanups.push(() => term.close());
  assert.ok(await waitFor(() => running(marker) === 1, 60_000), term.screen());
  const helpers = sandboxHelpersUnder(term.panePid());
  assert.equal(helpers.length, 1);
  await sleep(300);
  const t0 = Date.now();
  term.keys('C-c');
  assert.ok(await waitFor(() => term.exitStatus() !== undefined, 5_000), `kiln build still runs after ^C (${term.tmux('display-message', '-p', '-t', 't', '#{pane_dead} #{pane_dead_status} #{pane_dead_signal}')}):\n${term.screen()}`);
  assert.ok(Date.now() - t0 < 5_000);
  assert.notEqual(term.exitStatus(), 0);
  const lines = term.screen().trim().split('\n').filter((l) => l.trim() && !/^Pane is dead/.test(l)).map((l) => l.replace(/^\^C/, '')); // the terminal echoes ^C
  assert.equal(lines.at(-1), 'kiln: build canceled', term.screen());
  assert.equal(lines.filter((l) => l.startsWith('kiln:')).length, 1, 'one line, no stack trace');
  assert.equal(running(marker), 0, 'the RUN process is gone');
  assert.deepEqual(helpers.filter(alive), [], 'the sandbox helper is gone');
  term.close();
  assertStateFree();
});

for (const how of ['kill -INT -PGID', 'timeout -s TERM'] as const) {
  test(`${how} stops kiln build inside a long RUN`, async () => {
    const { context, marker } = longRun();
    const args = [kilnBin, 'build', '--progress', 'plain', context];
    const child =
      how === 'timeout -s TERM'
        ? spawn('timeout', ['-s', 'TERM', '600', process.execPath, ...args], { env: { ...process.env, KILN_ROOT: suite.root }, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('setsid', [process.execPath, ...args], { env: { ...process.env, KILN_ROOT: suite.root }, stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(() => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const done = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    assert.ok(await waitFor(() => running(marker) === 1, 60_000), stderr);
    const helpers = sandboxHelpersUnder(child.pid!);
    assert.equal(helpers.length, 1);
    const t0 = Date.now();
    if (how === 'timeout -s TERM') {
      // SIGALRM is timeout's own timer firing: it sends TERM to kiln and then to its whole process group,
      // exactly as when the duration runs out, without a test that depends on how fast the RUN starts.
      await sleep(300);
      child.kill('SIGALRM');
    } else {
      // setsid made kiln the leader of its own group (a job in a shell): signal the whole group.
      await sleep(300);
      const kilnPid = Number(spawnSync('pgrep', ['-f', '-n', `${kilnBin} build --progress plain ${context}`], { encoding: 'utf8' }).stdout.trim());
      assert.ok(kilnPid > 0);
      process.kill(-kilnPid, 'SIGINT');
    }
    const code = await done;
    assert.ok(Date.now() - t0 < 5_000, `took ${Date.now() - t0} ms`);
    assert.notEqual(code, 0);
    if (how === 'timeout -s TERM') assert.equal(code, 124, 'timeout reports that it timed out');
    assert.equal(stderr.trim().split('\n').at(-1), 'kiln: build canceled', stderr);
    assert.equal(running(marker), 0);
    assert.deepEqual(helpers.filter(alive), []);
    assertStateFree();
  });
}

test('kiln serve: Ctrl-C in the client terminal cancels the remote RUN; a server killed -9 leaves no sandbox', async () => {
  const server = await serve(['--addr', `unix://${join(suite.outs, 'lc.sock')}`]);
  cleanups.push(() => server.proc.kill('SIGKILL'));
  const env = clientEnv();
  const first = longRun();
  const envVars: Record<string, string> = { PATH: process.env.PATH ?? '', KILN_ROOT: suite.root };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) envVars[k] = v;
  const term = new Terminal(`${process.execPath} ${kilnBin} build --progress plain --builder ${server.addr} ${first.context}`, envVars);
  cleanups.push(() => term.close());
  assert.ok(await waitFor(() => running(first.marker) === 1, 60_000), term.screen());
  await sleep(300);
  term.keys('C-c');
  // Usually ~70 ms; under a loaded full suite the client was seen to take over 5 s to exit after printing
  // its cancel line (not yet explained): the bound catches a client that never ends.
  assert.ok(await waitFor(() => term.exitStatus() !== undefined, 20_000), term.screen());
  assert.notEqual(term.exitStatus(), 0);
  assert.match(term.screen(), /^(\^C)?kiln: build canceled$/m); // the terminal echoes ^C
  assert.ok(await waitFor(() => running(first.marker) === 0, 10_000), 'the remote RUN process is gone');
  term.close();

  // A server killed outright: its sandboxes go with it.
  const second = longRun();
  const client = spawn(process.execPath, [kilnBin, 'build', '--progress', 'plain', '--builder', server.addr, second.context], {
    env: { ...process.env, ...env, KILN_ROOT: suite.root },
    stdio: 'ignore',
  });
  cleanups.push(() => client.kill('SIGKILL'));
  assert.ok(await waitFor(() => running(second.marker) === 1, 60_000));
  const helpers = sandboxHelpersUnder(server.proc.pid!);
  assert.equal(helpers.length, 1);
  server.proc.kill('SIGKILL');
  assert.ok(await waitFor(() => running(second.marker) === 0 && helpers.filter(alive).length === 0, 5_000), `left: ${helpers.filter(alive)}`);
});
