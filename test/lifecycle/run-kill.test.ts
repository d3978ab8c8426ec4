// `kiln run` never leaks its container: killed -9 (alone, or after a SIGTERM the container's pid 1
// ignores, as CI runners and supervisors do; or with its whole process group), every process of the
// container is gone within a bounded wait and its port is free. Signals reach pid 1 as with docker run,
// and --init gives a reaping init like docker's.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { buildSuite } from '../helpers/suite.js';
import { kiln, kilnAsync, kilnBin } from '../helpers/kiln.js';
import { alive, freePort, portOpen, procsWith, sandboxHelpersUnder, sleep, waitFor } from './procs.js';

const suite = buildSuite();
// A failed assertion must not leave a kiln run (and its container) behind.
const started: { kill(sig: NodeJS.Signals): unknown }[] = [];
after(() => {
  for (const c of started) c.kill('SIGKILL');
});

/** A server on 127.0.0.1:port whose pid 1 (a shell) ignores SIGTERM; marker names its processes. */
function serverScript(port: number, marker: string): string[] {
  return ['sh', '-c', `trap "" TERM; httpd -f -p 127.0.0.1:${port} -h / -r ${marker} & echo ready; while :; do sleep 1; done`, marker];
}

async function startServer(port: number, marker: string, detached = false) {
  const child = spawn(process.execPath, [kilnBin, 'run', '--rm', '--network', 'host', suite.base, ...serverScript(port, marker)], {
    env: { ...process.env, KILN_ROOT: suite.root },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached,
  });
  started.push(child);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  assert.ok(await waitFor(() => portOpen(port), 30_000, 100), `the server answers on ${port}: ${out}`);
  assert.ok(procsWith(marker, { containerOnly: true }).length >= 2, 'pid 1 and httpd run in the container');
  return { child, exited, output: () => out };
}

async function assertGone(port: number, marker: string) {
  const gone = await waitFor(async () => procsWith(marker, { containerOnly: true }).length === 0 && !(await portOpen(port)), 5_000);
  assert.ok(gone, `no container process is left: ${JSON.stringify(procsWith(marker, { containerOnly: true }))}; port ${port} open: ${await portOpen(port)}`);
}

test('kiln run killed -9 after a SIGTERM its pid 1 ignores leaves no container process and frees the port', async () => {
  const port = await freePort();
  const marker = `lc-kill-${port}`;
  const run = await startServer(port, marker);
  run.child.kill('SIGTERM');
  await sleep(1000);
  // As with docker run: pid 1 ignores SIGTERM, so the container keeps running until it is killed.
  assert.ok(await portOpen(port), 'SIGTERM ignored by pid 1 leaves the server running');
  run.child.kill('SIGKILL');
  await run.exited;
  await assertGone(port, marker);
});

test('kiln run killed -9 at once leaves no container process', async () => {
  const port = await freePort();
  const marker = `lc-kill9-${port}`;
  const run = await startServer(port, marker);
  run.child.kill('SIGKILL');
  await run.exited;
  await assertGone(port, marker);
});

test('kiln run with its whole process group killed -9 (the sandbox helper too) leaves no container process', async () => {
  const port = await freePort();
  const marker = `lc-pgkill-${port}`;
  const run = await startServer(port, marker, true);
  const helpers = sandboxHelpersUnder(run.child.pid!);
  assert.equal(helpers.length, 1);
  process.kill(-run.child.pid!, 'SIGKILL');
  await run.exited;
  await assertGone(port, marker);
  assert.deepEqual(helpers.filter(alive), []);
});

test('signals sent to kiln run reach the container pid 1 once each, as with docker run', async () => {
  const script =
    'for s in INT HUP USR1 USR2 QUIT; do trap "echo got-$s" $s; done; trap "echo got-TERM; exit 7" TERM; echo ready; while :; do sleep 0.05; done';
  const child = spawn(process.execPath, [kilnBin, 'run', '--rm', suite.base, 'sh', '-c', script], {
    env: { ...process.env, KILN_ROOT: suite.root },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  started.push(child);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  assert.ok(await waitFor(() => out.includes('ready'), 30_000), out);
  const expect: string[] = ['ready'];
  // SIGINT last: the group ^C below follows it at once, so no time window may merge the two.
  for (const sig of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGQUIT', 'SIGINT'] as const) {
    child.kill(sig); // kiln alone: it passes the signal on
    expect.push(`got-${sig.slice(3)}`);
    assert.ok(await waitFor(() => out.trim().split('\n').length === expect.length, 5_000), `after ${sig}: ${out}`);
  }
  // The whole process group (a terminal's ^C): kiln and the helper both get it; pid 1 sees it once.
  process.kill(-child.pid!, 'SIGINT');
  expect.push('got-INT');
  assert.ok(await waitFor(() => out.trim().split('\n').length === expect.length, 5_000), out);
  await sleep(500);
  process.kill(-child.pid!, 'SIGTERM');
  expect.push('got-TERM');
  assert.equal(await code, 7);
  assert.deepEqual(out.trim().split('\n'), expect);
});

test('kiln run --init: pid 1 is an init that passes SIGTERM to a command that has no handler and reaps orphans', async () => {
  // Without --init, `sleep` is pid 1 and the kernel drops SIGTERM for it (docker run behaves the same).
  const plain = kilnAsync(suite.root, ['run', '--rm', suite.base, 'sleep', '1001']);
  started.push(plain.child);
  assert.ok(await waitFor(() => procsWith('sleep 1001', { containerOnly: true }).length === 1, 30_000));
  plain.child.kill('SIGTERM');
  await sleep(1000);
  assert.equal(procsWith('sleep 1001', { containerOnly: true }).length, 1, 'pid 1 without a handler ignores SIGTERM');
  plain.child.kill('SIGKILL');
  await plain.done;

  const withInit = kilnAsync(suite.root, ['run', '--rm', '--init', suite.base, 'sleep', '1002']);
  started.push(withInit.child);
  assert.ok(await waitFor(() => procsWith('sleep 1002', { containerOnly: true }).length === 1, 30_000));
  const t0 = Date.now();
  withInit.child.kill('SIGTERM');
  const r = await withInit.done;
  assert.equal(r.status, 143, r.stderr);
  assert.ok(Date.now() - t0 < 5_000);

  // Orphans re-parented to pid 1 are reaped; the command is pid 2 under the init; its exit code is kiln's.
  const script = 'sh -c "sleep 0.2 & exit 0"; sleep 0.8; echo "me=$$"; ps -o pid,ppid,stat,comm; exit 3';
  const out = kiln(suite.root, ['run', '--rm', '--init', suite.base, 'sh', '-c', script]);
  assert.equal(out.status, 3, out.stderr);
  assert.match(out.stdout, /^me=2$/m);
  assert.match(out.stdout, /^\s*1\s+0\s+\S+\s+kiln-init$/m);
  assert.doesNotMatch(out.stdout, /^\s*\d+\s+\d+\s+Z/m, `no zombie:\n${out.stdout}`);
  // A command that cannot be found is reported as without --init.
  const missing = kiln(suite.root, ['run', '--rm', '--init', suite.base, 'no-such-command']);
  assert.equal(missing.status, 127);
  assert.match(missing.stderr, /executable file not found in \$PATH/);
});
