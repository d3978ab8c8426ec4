// RUN networking end to end: the default network is kiln's bridge (a RUN fetches from a test host that
// sits in a network namespace of this test's own, attached to the bridge), `none` has only loopback,
// `host` needs the network.host entitlement, and no veth or process outlives its RUN, even when the
// build is killed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { buildSuite } from '../helpers/suite.js';
import { kilnAsync } from '../helpers/kiln.js';
import { kilnBuildAsync, writeContext, errorLine } from '../helpers/build.js';
import { startTestHost, isLeasedAddress, vethFor, type TestHost } from './test-host.js';

const suite = buildSuite();
let host: TestHost;

before(async () => {
  host = await startTestHost(1, { '/file.txt': 'served from the test host\n', '/other': 'other\n' });
});
after(async () => {
  await host?.stop();
});

const linkExists = (name: string) => existsSync(`/sys/class/net/${name}`);

async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await delay(50)) if (cond()) return true;
  return cond();
}

test('default network: a RUN fetches a file from a test host through the bridge', async () => {
  const dest = join(suite.outs, 'fetched');
  const r = await kilnBuildAsync(
    suite.root,
    {
      Dockerfile: [
        `FROM ${suite.base}`,
        `RUN wget -q -O /fetched ${host.url}/file.txt && ip -4 -o addr show eth0 > /addr && ip route > /routes`,
        'RUN cat /etc/hosts > /hosts.txt && cat /etc/resolv.conf > /resolv.txt',
      ].join('\n'),
    },
    ['-o', `type=local,dest=${dest}`],
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(dest, 'fetched'), 'utf8'), 'served from the test host\n');
  // It came from a sandbox address on the bridge, not from the host (which would use the gateway address).
  const addr = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(readFileSync(join(dest, 'addr'), 'utf8'))![1]!;
  assert.ok(isLeasedAddress(host.bridge, addr), addr);
  assert.equal(host.clients.at(-1), addr);
  assert.match(readFileSync(join(dest, 'routes'), 'utf8'), new RegExp(`default via ${host.bridge.gateway.replace(/\./g, '\\.')} dev eth0`));
  assert.match(readFileSync(join(dest, 'hosts.txt'), 'utf8'), /127\.0\.0\.1\s+localhost buildkitsandbox/);
  // /etc/hosts and /etc/resolv.conf are the build's, mounted for the RUN: the image (which has neither) gains none.
  assert.ok(!existsSync(join(dest, 'etc/hosts')) && !existsSync(join(dest, 'etc/resolv.conf')));
});

test('--add-host names the test host; --dns replaces resolv.conf', async () => {
  const dest = join(suite.outs, 'add-host');
  const r = await kilnBuildAsync(
    suite.root,
    { Dockerfile: `FROM ${suite.base}\nRUN wget -q -O /other http://testhost.internal:8080/other && cat /etc/resolv.conf > /resolv.txt && cat /etc/hosts > /hosts.txt\n` },
    ['--add-host', `testhost.internal:${host.ip}`, '--dns', host.ip, '-o', `type=local,dest=${dest}`],
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(dest, 'other'), 'utf8'), 'other\n');
  assert.equal(readFileSync(join(dest, 'resolv.txt'), 'utf8'), `nameserver ${host.ip}\n`);
  assert.match(readFileSync(join(dest, 'hosts.txt'), 'utf8'), new RegExp(`${host.ip.replace(/\./g, '\\.')}\\s+testhost\\.internal`));
  const bad = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\n` }, ['--add-host', 'nohost']);
  assert.notEqual(bad.status, 0);
  assert.match(errorLine(bad), /--add-host/);
});

test('--network=none cannot reach the test host, per RUN or for the whole build', async () => {
  const before = host.paths.length;
  const perRun = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN --network=none wget -q -T 2 -O /x ${host.url}/file.txt\n` });
  assert.notEqual(perRun.status, 0);
  assert.match(errorLine(perRun), /Dockerfile:2: .*did not complete successfully/);
  const whole = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN wget -q -T 2 -O /x ${host.url}/file.txt # whole\n` }, ['--network', 'none']);
  assert.notEqual(whole.status, 0);
  assert.match(errorLine(whole), /did not complete successfully/);
  assert.equal(host.paths.length, before, 'no request reached the test host');
});

test('host network needs the network.host entitlement', async () => {
  const refused = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN --network=host ls /sys/class/net\n` });
  assert.notEqual(refused.status, 0);
  assert.match(errorLine(refused), /Dockerfile:2: network mode "host" needs the network.host entitlement: pass --allow network.host/);
  const dest = join(suite.outs, 'hostnet');
  const allowed = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN --network=host ls /sys/class/net > /ifaces\n` }, ['--allow', 'network.host', '-o', `type=local,dest=${dest}`]);
  assert.equal(allowed.status, 0, allowed.stderr);
  // The host's interfaces, kiln's bridge among them.
  assert.match(readFileSync(join(dest, 'ifaces'), 'utf8'), new RegExp(`^${host.bridge.name}$`, 'm'));
  const bad = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\n` }, ['--allow', 'network.everything']);
  assert.notEqual(bad.status, 0);
  assert.match(errorLine(bad), /invalid value "network.everything" for flag --allow/);
});

test('50 RUNs leave no veth behind; a stale veth is removed at the next start', async () => {
  // A leftover from a crash: a host link with a sandbox name whose lease nobody holds.
  const stale = `${host.bridge.vethPrefix}${host.bridge.poolSize - 1}`;
  execFileSync('ip', ['link', 'add', stale, 'type', 'veth', 'peer', 'name', `kst${process.pid % 100000}`]);
  const lines = [`FROM ${suite.base}`];
  for (let i = 0; i < 50; i++) lines.push(`RUN ip -4 -o addr show eth0 | sed 's/.*inet \\([0-9.]*\\).*/\\1/' >> /addrs; echo ${i} > /n`);
  const dest = join(suite.outs, 'fifty');
  const r = await kilnBuildAsync(suite.root, { Dockerfile: lines.join('\n') + '\n' }, ['-o', `type=local,dest=${dest}`]);
  assert.equal(r.status, 0, r.stderr);
  const addrs = readFileSync(join(dest, 'addrs'), 'utf8').trim().split('\n');
  assert.equal(addrs.length, 50);
  for (const a of addrs) assert.ok(isLeasedAddress(host.bridge, a), a);
  const mine = addrs.map((a) => vethFor(host.bridge, a));
  assert.ok(await until(() => mine.every((v) => !linkExists(v))), `left: ${mine.filter(linkExists).join(' ')}`);
  assert.ok(!linkExists(stale), 'the stale veth was swept');
});

test('a killed build leaves no veth and no process behind', async () => {
  for (const how of ['cli', 'cli+helper'] as const) {
    const marker = how === 'cli' ? 4321 : 4322;
    const context = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN ip -4 -o addr show eth0; sleep ${marker}\n` });
    const run = kilnAsync(suite.root, ['build', '--progress', 'plain', '--no-cache', context]);
    let addr: string | undefined;
    assert.ok(await until(() => !!(addr = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(run.output().stderr)?.[1]), 60_000), run.output().stderr);
    const veth = vethFor(host.bridge, addr!);
    assert.ok(linkExists(veth), `${veth} exists while the RUN runs`);
    const helpers = how === 'cli+helper' ? pidsOf((cmd) => cmd.includes('kiln-sandbox')).filter((p) => parentOf(p) === run.child.pid) : [];
    run.child.kill('SIGKILL');
    for (const p of helpers) process.kill(p, 'SIGKILL');
    await run.done;
    assert.ok(await until(() => pidsOf((cmd) => cmd === `sleep ${marker}`).length === 0), `sleep ${marker} still runs`);
    assert.ok(await until(() => !linkExists(veth)), `${veth} is left after killing the ${how}`);
  }
});

function pidsOf(match: (cmdline: string) => boolean): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (match(readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim())) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

function parentOf(pid: number): number {
  try {
    return Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  } catch {
    return -1;
  }
}
