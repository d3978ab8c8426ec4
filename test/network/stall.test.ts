// RUN networking never stalls: 500 consecutive RUNs on the default bridge each resolve a name through a DNS
// server and fetch a file from a test host (both in a network namespace of this test's own), while ports
// with lower MACs join and leave the bridge, as pooled namespaces' veths do. Before the bridge had a fixed
// MAC it took the lowest MAC of its ports, so a reused namespace kept sending to the gateway's old MAC and
// lost all traffic for ~20 s.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnAsync } from '../helpers/kiln.js';
import { writeContext } from '../helpers/build.js';
import { startTestHost, type TestHost } from './test-host.js';
import { bridgeMac } from '../../native/network/bridge.js';
import { resetNetworkPool } from '../../native/sandbox.js';

// A bridge of this test's own, so builds of other test files cannot disturb the pool it measures.
process.env.KILN_BRIDGE = 'kilnstall0';
process.env.KILN_NETWORK_SUBNET = '10.203.0.0/16';

const suite = buildSuite();
let host: TestHost;
const low = `kstl${process.pid % 100000}`;
const sh = (...cmd: string[]) => execFileSync(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });

before(async () => {
  host = await startTestHost(3, { '/f': 'ok\n' });
});
after(async () => {
  try { sh('ip', 'link', 'del', low); } catch { /* not there */ }
  await host?.stop();
  if (host) {
    resetNetworkPool(host.bridge);
    sh('ip', 'link', 'del', host.bridge.name);
    for (const line of execFileSync('iptables-save', { encoding: 'utf8' }).split('\n')) {
      const m = /^-A (\S+) (.*kiln-bridge:kilnstall0.*)$/.exec(line.replace(/"/g, ''));
      if (m) execFileSync('sh', ['-c', `iptables -t ${m[1] === 'POSTROUTING' ? 'nat' : 'filter'} -D ${m[1]} ${m[2]}`]);
    }
  }
});

test('500 RUNs resolve and fetch through the bridge with no stall over 1 s, while ports come and go', async () => {
  const builds = 10;
  const perBuild = 50;
  const lines = [`FROM ${suite.base}`];
  // /proc/uptime has centiseconds; busybox date has no %N.
  for (let i = 0; i < perBuild; i++) {
    // nslookup asks the DNS server of resolv.conf (--dns); static busybox's own wget resolver is not used.
    lines.push(`RUN a=$(cut -d' ' -f1 /proc/uptime); ip=$(nslookup files.kiln-test | sed -n 's/^Address: //p' | tail -n 1); wget -q -O /dev/null "http://$ip:8080/f" || exit 7; b=$(cut -d' ' -f1 /proc/uptime); echo "${i} $a $b" >> /times`);
  }
  const starts: number[] = [];
  for (let b = 0; b < builds; b++) {
    // A port with a MAC lower than any veth's joins the bridge before odd builds and leaves before even ones.
    if (b % 2 === 1) {
      sh('ip', 'link', 'add', low, 'type', 'veth', 'peer', 'name', `${low}p`);
      sh('ip', 'link', 'set', low, 'address', '02:00:00:00:00:01');
      sh('ip', 'link', 'set', low, 'master', host.bridge.name, 'up');
    } else if (b > 0) {
      sh('ip', 'link', 'del', low);
    }
    const dest = join(suite.outs, `stall-${b}`);
    const context = writeContext({ Dockerfile: lines.join('\n') + `\n# build ${b}\n` });
    starts.push(host.paths.length);
    const r = await kilnAsync(suite.root, ['build', '--progress', 'plain', '--no-cache', '--dns', host.ip, '-o', `type=local,dest=${dest}`, context]).done;
    assert.equal(r.status, 0, r.stderr);
    const times = readFileSync(join(dest, 'times'), 'utf8').trim().split('\n').map((l) => l.split(' ').map(Number));
    assert.equal(times.length, perBuild);
    const slow = times.filter(([, a, z]) => z! - a! > 1).map(([i, a, z]) => `RUN ${i}: ${(z! - a!).toFixed(2)} s`);
    assert.deepEqual(slow, [], `build ${b}: stalled RUNs`);
    assert.equal(host.paths.length - starts[b]!, perBuild, `every RUN reached the test host (${host.paths.length}, ${JSON.stringify(host.clients.slice(-3))})`);
  }
  const sys = `/sys/class/net/${host.bridge.name}`;
  assert.equal(readFileSync(`${sys}/address`, 'utf8').trim(), bridgeMac(host.bridge.name));
  assert.equal(readFileSync(`${sys}/addr_assign_type`, 'utf8').trim(), '3', 'the bridge MAC is set, not inherited from a port');
});
