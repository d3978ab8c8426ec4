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
import { resetNetworkPool } from '../../native/sandbox.js';

// A bridge of this test's own (same code as kiln0, its own leases and pool), so that builds of other
// test files running at the same time cannot hold the leases and namespaces these tests count.
process.env.KILN_BRIDGE = 'kilntest0';
process.env.KILN_NETWORK_SUBNET = '10.202.0.0/16';

const suite = buildSuite();
let host: TestHost;

before(async () => {
  host = await startTestHost(1, { '/file.txt': 'served from the test host\n', '/other': 'other\n' });
});
after(async () => {
  await host?.stop();
  if (host) {
    resetNetworkPool(host.bridge);
    execFileSync('ip', ['link', 'del', host.bridge.name]);
    // The bridge's iptables rules, as ensureBridge added them.
    for (const line of execFileSync('iptables-save', { encoding: 'utf8' }).split('\n')) {
      const m = /^-A (\S+) (.*kiln-bridge:kilntest0.*)$/.exec(line.replace(/"/g, ''));
      if (m) execFileSync('sh', ['-c', `iptables -t ${m[1] === 'POSTROUTING' ? 'nat' : 'filter'} -D ${m[1]} ${m[2]}`]);
    }
  }
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
  // kiln build --network host asks for it on the command line, which grants it (as buildx does).
  const wholeHost = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN ls /sys/class/net > /ifaces # whole build\n` }, ['--network', 'host', '-o', `type=local,dest=${dest}-all`]);
  assert.equal(wholeHost.status, 0, wholeHost.stderr);
  assert.match(readFileSync(join(`${dest}-all`, 'ifaces'), 'utf8'), new RegExp(`^${host.bridge.name}$`, 'm'));
  const bad = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\n` }, ['--allow', 'network.everything']);
  assert.notEqual(bad.status, 0);
  assert.match(errorLine(bad), /invalid value "network.everything" for flag --allow/);
});

test('50 RUNs: namespaces are pooled, not leaked; without the pool no veth outlives its RUN; stale veths are swept', async () => {
  // A leftover from a crash: a host link with a sandbox name whose lease nobody holds and no pool entry.
  const stale = `${host.bridge.vethPrefix}${host.bridge.poolSize - 1}`;
  execFileSync('ip', ['link', 'add', stale, 'type', 'veth', 'peer', 'name', `kst${process.pid % 100000}`]);
  const lines = [`FROM ${suite.base}`];
  for (let i = 0; i < 50; i++) lines.push(`RUN ip -4 -o addr show eth0 | sed 's/.*inet \\([0-9.]*\\).*/\\1/' >> /addrs; wget -q -O /dev/null ${host.url}/file.txt; echo ${i} > /n`);
  for (const pool of [true, false]) {
    const dest = join(suite.outs, `fifty-${pool}`);
    const served = host.paths.length;
    const context = writeContext({ Dockerfile: lines.join('\n') + `\n# pool ${pool}\n` });
    const r = await kilnAsync(suite.root, ['build', '--progress', 'plain', '--no-cache', '-o', `type=local,dest=${dest}`, context], { env: pool ? {} : { KILN_NETWORK_POOL_IDLE: '0' } }).done;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(host.paths.length - served, 50, 'every RUN reached the test host');
    const addrs = readFileSync(join(dest, 'addrs'), 'utf8').trim().split('\n');
    assert.equal(addrs.length, 50);
    for (const a of addrs) assert.ok(isLeasedAddress(host.bridge, a), a);
    const mine = [...new Set(addrs.map((a) => vethFor(host.bridge, a)))];
    if (pool) {
      // One RUN at a time takes the lowest free lease: a handful of namespaces (other test files build
      // at the same time), each reused, not fifty.
      assert.ok(mine.length <= 4, `namespaces used: ${mine.join(' ')}`);
      // Resetting the pool removes every namespace no RUN is using.
      assert.ok(await until(() => (resetNetworkPool(host.bridge), mine.every((v) => !linkExists(v)))), `left: ${mine.filter(linkExists).join(' ')}`);
    } else {
      assert.ok(await until(() => mine.every((v) => !linkExists(v))), `left: ${mine.filter(linkExists).join(' ')}`);
    }
  }
  assert.ok(!linkExists(stale), 'the stale veth was swept');
});

test('a killed build leaves no process behind and its namespace free for the next RUN', async () => {
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
    // The lease is free again: a reset removes the namespace (it would be reused otherwise).
    assert.ok(await until(() => (resetNetworkPool(host.bridge), !linkExists(veth))), `${veth} is left after killing the ${how}`);
  }
  // And the network still works for the next build.
  const dest = join(suite.outs, 'after-kill');
  const r = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN wget -q -O /f ${host.url}/file.txt # after kill\n` }, ['-o', `type=local,dest=${dest}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(dest, 'f'), 'utf8'), 'served from the test host\n');
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

test('a privileged RUN\'s changes to its network never reach a later RUN (it does not use the pool)', async () => {
  const dest = join(suite.outs, 'privileged-net');
  const r = await kilnBuildAsync(
    suite.root,
    {
      Dockerfile: [
        `FROM ${suite.base}`,
        'RUN --security=insecure ip addr add 10.202.250.250/32 dev eth0 && ip -4 -o addr show eth0 > /privileged',
        'RUN ip -4 -o addr show eth0 > /after && ip route > /after-routes',
      ].join('\n') + '\n',
    },
    ['--allow', 'security.insecure', '-o', `type=local,dest=${dest}`],
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(readFileSync(join(dest, 'privileged'), 'utf8'), /10\.202\.250\.250/);
  assert.doesNotMatch(readFileSync(join(dest, 'after'), 'utf8'), /10\.202\.250\.250/);
  assert.match(readFileSync(join(dest, 'after-routes'), 'utf8'), /^default via /m);
});

test('a pooled namespace is reused by the next RUN, and replaced once idle longer than KILN_NETWORK_POOL_IDLE', async () => {
  resetNetworkPool(host.bridge);
  const runOnce = async (tag: string, env: NodeJS.ProcessEnv) => {
    const dest = join(suite.outs, `idle-${tag}`);
    const context = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN ip -4 -o addr show eth0 > /addr # ${tag}\n` });
    const r = await kilnAsync(suite.root, ['build', '--progress', 'plain', '--no-cache', '-o', `type=local,dest=${dest}`, context], { env }).done;
    assert.equal(r.status, 0, r.stderr);
    const veth = vethFor(host.bridge, /inet (\d+\.\d+\.\d+\.\d+)\//.exec(readFileSync(join(dest, 'addr'), 'utf8'))![1]!);
    // The host end's ifindex tells a reused veth pair from a new one.
    return { veth, ifindex: readFileSync(`/sys/class/net/${veth}/ifindex`, 'utf8').trim() };
  };
  const first = await runOnce('a', {});
  const reused = await runOnce('b', {});
  assert.deepEqual(reused, first, 'the next RUN entered the same namespace');
  await delay(2500);
  const renewed = await runOnce('c', { KILN_NETWORK_POOL_IDLE: '1' });
  assert.equal(renewed.veth, first.veth, 'the same (lowest) lease');
  assert.notEqual(renewed.ifindex, first.ifindex, 'an idle entry was replaced by a new namespace');
});
