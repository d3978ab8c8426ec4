// The RUN sandbox's security profile, seen from inside a build: Docker's default seccomp profile and
// capability set (for root and for another user), runc's masked and read-only /proc paths, and
// `RUN --security=insecure` only with the security.insecure entitlement.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { repoRoot } from '../helpers/fixtures.js';
import { kilnBuild, writeContext, errorLine } from '../helpers/build.js';

const suite = buildSuite();
let context: string;

before(() => {
  context = writeContext({});
  execFileSync('gcc', ['-static', '-O2', '-o', join(context, 'probe'), join(repoRoot, 'test/security/probe.c')]);
});

function probe(name: string, dockerfileTail: string[], args: string[] = []): { status: number; stderr: string; results: Record<string, string> } {
  const dest = join(suite.outs, name);
  const df = [`FROM ${suite.base}`, 'COPY probe /probe', 'RUN mkdir -p /mnt', ...dockerfileTail].join('\n') + '\n';
  const r = kilnBuild(suite.root, { Dockerfile: df }, ['-o', `type=local,dest=${dest}`, ...args], { context: withDockerfile(df) });
  const results: Record<string, string> = {};
  if (r.status === 0) {
    for (const line of readFileSync(join(dest, 'probe.out'), 'utf8').trim().split('\n')) {
      const [k, v] = line.split(' ');
      results[k!] = v!;
    }
  }
  return { status: r.status, stderr: r.stderr, results };
}

function withDockerfile(text: string): string {
  execFileSync('sh', ['-c', `cat > ${join(context, 'Dockerfile')}`], { input: text });
  return context;
}

// What Docker's default profile gives root: CAP_NET_RAW (raw and packet sockets), CAP_SYS_CHROOT; no
// CAP_SYS_ADMIN / CAP_SYS_TIME, and seccomp refuses unshare, mount, keyctl, add_key, swapon with EPERM.
test('root in a RUN: syscalls and capabilities as under Docker\'s default profile', () => {
  const r = probe('root', ['RUN /probe > /probe.out && grep ^CapEff /proc/self/status > /caps']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.results, {
    'unshare-mount-ns': 'EPERM',
    'unshare-user-ns': 'EPERM',
    'mount-tmpfs': 'EPERM',
    'keyctl-join': 'EPERM',
    'add-key': 'EPERM',
    'raw-icmp-socket': 'ok',
    'packet-socket': 'ok',
    'clock-settime': 'EPERM',
    sethostname: 'EPERM',
    chroot: 'ok',
    swapon: 'EPERM',
  });
  // Docker's default set: chown dac_override fowner fsetid kill setgid setuid setpcap net_bind_service
  // net_raw sys_chroot mknod audit_write setfcap.
  assert.equal(readFileSync(join(suite.outs, 'root', 'caps'), 'utf8'), 'CapEff:\t00000000a80425fb\n');
});

test('another user in a RUN: no capabilities, so no raw sockets either', () => {
  const r = probe('user', ['RUN chmod 777 /mnt && touch /probe.out && chmod 666 /probe.out', 'USER 1000:1000', 'RUN /probe > /probe.out && grep ^CapEff /proc/self/status > /tmp/caps']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.results['raw-icmp-socket'], 'EPERM');
  assert.equal(r.results['packet-socket'], 'EPERM');
  assert.equal(r.results['unshare-user-ns'], 'EPERM');
  assert.equal(r.results['mount-tmpfs'], 'EPERM');
  assert.equal(r.results['keyctl-join'], 'EPERM');
  assert.equal(readFileSync(join(suite.outs, 'user', 'tmp/caps'), 'utf8'), 'CapEff:\t0000000000000000\n');
});

test('masked paths read empty; /proc/sys is read-only', () => {
  const dest = join(suite.outs, 'masked');
  const df = [
    `FROM ${suite.base}`,
    'RUN for p in /proc/kcore /proc/keys /proc/timer_list /proc/interrupts; do echo "$p $(cat $p 2>/dev/null | wc -c)"; done > /masked',
    'RUN for d in /proc/acpi /sys/firmware; do echo "$d $(ls -A $d 2>/dev/null | wc -l)"; done > /masked-dirs',
    'RUN (echo 1 > /proc/sys/vm/drop_caches) 2> /sysctl-err; echo "exit $?" >> /sysctl-err',
  ].join('\n') + '\n';
  const r = kilnBuild(suite.root, { Dockerfile: df }, ['-o', `type=local,dest=${dest}`]);
  assert.equal(r.status, 0, r.stderr);
  for (const line of readFileSync(join(dest, 'masked'), 'utf8').trim().split('\n')) assert.match(line, / 0$/, line);
  for (const line of readFileSync(join(dest, 'masked-dirs'), 'utf8').trim().split('\n')) assert.match(line, / 0$/, line);
  const err = readFileSync(join(dest, 'sysctl-err'), 'utf8');
  assert.match(err, /Read-only file system/);
  assert.match(err, /exit 1/);
});

test('RUN --security=insecure needs --allow security.insecure, and then lifts the profile', () => {
  const refused = probe('insecure-refused', ['RUN --security=insecure /probe > /probe.out']);
  assert.notEqual(refused.status, 0);
  assert.match(errorLine(refused as never), /Dockerfile:4: RUN --security=insecure needs the security.insecure entitlement: pass --allow security.insecure/);
  const allowed = probe('insecure', ['RUN --security=insecure /probe > /probe.out && cat /proc/interrupts | wc -c > /interrupts'], ['--allow', 'security.insecure']);
  assert.equal(allowed.status, 0, allowed.stderr);
  assert.equal(allowed.results['unshare-mount-ns'], 'ok');
  assert.equal(allowed.results['mount-tmpfs'], 'ok');
  assert.equal(allowed.results['keyctl-join'], 'ok');
  assert.notEqual(readFileSync(join(suite.outs, 'insecure', 'interrupts'), 'utf8').trim(), '0', '/proc/interrupts is not masked');
});
