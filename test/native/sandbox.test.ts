// End-to-end tests of the native sandbox: the real helper, real namespaces, overlay and cgroups, with the
// busybox fixture as the image layer and a fresh upperdir per test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { busyboxFixture } from '../helpers/fixtures.js';
import { runSandbox, SandboxError, SandboxAbortedError, type SandboxSpec, type SandboxResult } from '../../native/sandbox.js';

const lower = busyboxFixture().rootfs.amd64;
const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface Scratch { dir: string; upper: string; work: string }

function scratch(t: { after: (fn: () => void) => void }): Scratch {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-sandbox-test-'));
  const upper = join(dir, 'upper');
  const work = join(dir, 'work');
  mkdirSync(upper);
  mkdirSync(work);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, upper, work };
}

interface Run { result: SandboxResult; stdout: string; stderr: string }

async function run(s: Scratch, spec: Partial<SandboxSpec> & { args: string[] }, signal?: AbortSignal): Promise<Run> {
  const full: SandboxSpec = {
    rootfs: { lowerdirs: [lower], upperdir: s.upper, workdir: s.work },
    env: [PATH],
    network: 'none',
    ...spec,
  };
  let stdout = '';
  let stderr = '';
  const result = await runSandbox(full, {
    stdio: 'pipe',
    signal,
    onOutput: (stream, chunk) => {
      if (stream === 'stdout') stdout += chunk.toString();
      else stderr += chunk.toString();
    },
  });
  return { result, stdout, stderr };
}

/** Host pids of processes whose command line is exactly `cmdline` (arguments joined by spaces). */
function pidsWithCmdline(cmdline: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim() === cmdline) out.push(Number(name));
    } catch { /* exited meanwhile */ }
  }
  return out;
}

async function waitFor<T>(what: string, fn: () => T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = fn();
    if (v !== undefined) return v;
    await delay(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function ppidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('PPid:'))!;
  return Number(line.split(/\s+/)[1]);
}

/** Sandbox cgroup dirs the helper with this pid created, in any v1 hierarchy (under our own cgroup). */
function cgroupDirsOf(helperPid: number): string[] {
  const found: string[] = [];
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, controllers, path] = line.split(':');
    if (!['memory', 'pids', 'cpu'].some((c) => controllers!.split(',').includes(c))) continue;
    const name = controllers!.split(',').includes('cpu') ? 'cpu' : controllers!;
    const dir = join('/sys/fs/cgroup', name, path!);
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir)) if (entry.startsWith(`kiln-sandbox-${helperPid}-`)) found.push(join(dir, entry));
  }
  return found;
}

test('the command is PID 1 of its own pid namespace and /proc shows only the sandbox', async (t) => {
  const s = scratch(t);
  const { result, stdout } = await run(s, { args: ['sh', '-c', 'echo $$; sleep 30 & usleep 200000; ps -o pid,comm; echo end'] });
  assert.equal(result.exitCode, 0);
  const [pid, , ...procs] = stdout.trim().replace(/\nend$/, '').split('\n').map((l) => l.trim().split(/\s+/).join(' '));
  assert.equal(pid, '1');
  // pid 1 (this shell), its background sleep and ps itself: nothing from the host.
  assert.equal(procs.length, 3, stdout);
  assert.equal(procs[0], '1 sh');
  assert.deepEqual(procs.map((p) => p.split(' ')[1]).sort(), ['ps', 'sh', 'sleep']);
});

test('hostname is the spec\'s, not the host\'s', async (t) => {
  const s = scratch(t);
  const { stdout } = await run(s, { args: ['hostname'], hostname: 'kiln-test-box' });
  assert.equal(stdout.trim(), 'kiln-test-box');
  assert.notEqual(hostname(), 'kiln-test-box');
});

test('writes land in the upperdir, deletions leave whiteouts, the lower layer is untouched', async (t) => {
  const s = scratch(t);
  const { result } = await run(s, { args: ['sh', '-c', 'echo hello > /greeting && rm /etc/group'] });
  assert.equal(result.exitCode, 0);
  assert.equal(readFileSync(join(s.upper, 'greeting'), 'utf8'), 'hello\n');
  assert.equal(existsSync(join(lower, 'greeting')), false);
  const wh = lstatSync(join(s.upper, 'etc', 'group'));
  assert.ok(wh.isCharacterDevice(), 'deleted lower file is a char-device whiteout');
  assert.equal(wh.rdev, 0);
  assert.ok(existsSync(join(lower, 'etc', 'group')));
  // Nothing else: no /proc, /dev or /sys stubs, no mount points.
  assert.deepEqual(readdirSync(s.upper).sort(), ['etc', 'greeting']);
  assert.deepEqual(readdirSync(join(s.upper, 'etc')), ['group']);
});

test('network "none" has only the loopback interface, and it is up', async (t) => {
  const s = scratch(t);
  const { stdout } = await run(s, { args: ['sh', '-c', 'tail -n +3 /proc/net/dev | cut -d: -f1; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags'] });
  const [iface, , flags] = stdout.trim().split('\n').map((l) => l.trim());
  assert.equal(stdout.trim().split('\n').length, 3, stdout);
  assert.equal(iface, 'lo');
  assert.equal(Number(flags) & 1, 1, 'IFF_UP set on lo');
});

test('a memory limit OOM-kills an allocation over it and reports oomKilled', async (t) => {
  const s = scratch(t);
  // tail keeps the last "line" in memory, and /dev/zero has no newline: it grows until killed.
  const { result } = await run(s, { args: ['sh', '-c', 'head -c 300m /dev/zero | tail > /dev/null'], limits: { memoryBytes: 32 << 20 } });
  assert.equal(result.oomKilled, true);
  assert.equal(result.exitCode, 137);
  const ok = await run(s, { args: ['sh', '-c', 'head -c 1m /dev/zero | tail | wc -c'], limits: { memoryBytes: 32 << 20 } });
  assert.equal(ok.result.oomKilled, false);
  assert.equal(ok.stdout.trim(), String(1 << 20));
});

test('a fork bomb hits the pids limit, the run ends, and the host is fine', async (t) => {
  const s = scratch(t);
  const { stderr } = await run(s, {
    // The shell waits (sleep) until the bomb has certainly hit the limit, however loaded the machine is;
    // if even sleep cannot fork, the limit was hit already.
    args: ['sh', '-c', 'f(){ f|f& }; f; sleep 2; echo done'],
    limits: { pids: 32 },
  });
  assert.match(stderr, /can't fork: Resource temporarily unavailable/);
  const after = await run(s, { args: ['echo', 'still fine'] });
  assert.equal(after.stdout, 'still fine\n');
});

test('mount, unshare and keyctl are refused with EPERM; caps and no_new_privs are Docker\'s', async (t) => {
  const s = scratch(t);
  const prog = join(s.dir, 'probe.c');
  writeFileSync(prog, `#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
static const char *res(long r) { return r < 0 ? strerrorname_np(errno) : "allowed"; }
int main(void) {
  printf("keyctl=%s\\n", res(syscall(SYS_keyctl, 0, -3, 0)));
  printf("add_key=%s\\n", res(syscall(SYS_add_key, "user", "k", "v", 1, -3)));
  printf("unshare=%s\\n", res(unshare(CLONE_NEWNS)));
  printf("bpf=%s\\n", res(syscall(SYS_bpf, 0, 0, 0)));
  printf("personality=%s\\n", res(syscall(SYS_personality, 0x0040000)));
  printf("getpid=%s\\n", res(getpid()));
  return 0;
}
`);
  mkdirSync(join(s.dir, 'bin'));
  execFileSync('gcc', ['-static', '-O1', '-o', join(s.dir, 'bin', 'probe'), prog]);
  const { stdout, stderr, result } = await run(s, {
    args: ['sh', '-c', 'mount -t tmpfs x /tmp; echo mount=$?; /probe/probe; grep -E "^(Cap(Eff|Bnd)|NoNewPrivs|Seccomp):" /proc/self/status'],
    mounts: [{ type: 'bind', source: join(s.dir, 'bin'), target: '/probe', readonly: true }],
  });
  assert.equal(result.exitCode, 0, stderr);
  assert.match(stderr, /mount: permission denied/);
  assert.match(stdout, /^mount=[1-9]/m);
  for (const call of ['keyctl', 'add_key', 'unshare', 'bpf', 'personality']) assert.match(stdout, new RegExp(`^${call}=EPERM$`, 'm'));
  assert.match(stdout, /^getpid=allowed$/m);
  assert.match(stdout, /^CapEff:\s+00000000a80425fb$/m);
  assert.match(stdout, /^CapBnd:\s+00000000a80425fb$/m);
  // As docker run and BuildKit's RUN: no no_new_privs unless asked for (setuid binaries work).
  assert.match(stdout, /^NoNewPrivs:\s+0$/m);
  assert.match(stdout, /^Seccomp:\s+2$/m);
  const nnp = await run(s, { args: ['grep', '-E', '^(NoNewPrivs|Seccomp):', '/proc/self/status'], noNewPrivileges: true });
  assert.match(nnp.stdout, /^NoNewPrivs:\s+1$/m);
  assert.match(nnp.stdout, /^Seccomp:\s+2$/m);

  const priv = await run(s, { args: ['sh', '-c', 'mount -t tmpfs x /tmp && echo mounted; grep -E "^Seccomp:" /proc/self/status'], privileged: true });
  assert.match(priv.stdout, /^mounted$/m);
  assert.match(priv.stdout, /^Seccomp:\s+0$/m);
});

test('the exit code passes through; a process killed by a signal gives 128+n', async (t) => {
  const s = scratch(t);
  assert.equal((await run(s, { args: ['sh', '-c', 'exit 7'] })).result.exitCode, 7);

  const marker = `${Math.floor(Math.random() * 1e6) + 1000000}`;
  const ac = new AbortController();
  t.after(() => ac.abort());
  const pending = run(s, { args: ['sleep', marker] }, ac.signal);
  const [pid] = await waitFor('the sleep process', () => {
    const p = pidsWithCmdline(`sleep ${marker}`);
    return p.length ? p : undefined;
  });
  process.kill(pid!, 'SIGKILL');
  const { result } = await pending;
  assert.equal(result.exitCode, 128 + 9);
  assert.equal(result.signal, 'SIGKILL');
});

test('aborting kills the whole container and leaves no processes or cgroups behind', async (t) => {
  const s = scratch(t);
  const marker = `${Math.floor(Math.random() * 1e6) + 2000000}`;
  const ac = new AbortController();
  t.after(() => ac.abort()); // never leave the container running if an assertion fails first
  // pid 1 is a shell with a background child, so the whole tree must go, not just pid 1.
  const pending = run(s, { args: ['sh', '-c', `sleep ${marker} & sleep ${marker}; wait`], limits: { pids: 50 } }, ac.signal);
  const pids = await waitFor('both sleeps', () => {
    const p = pidsWithCmdline(`sleep ${marker}`);
    return p.length === 2 ? p : undefined;
  });
  const shell = ppidOf(pids[0]!);
  const helper = ppidOf(shell);
  assert.ok(cgroupDirsOf(helper).length >= 2, 'the sandbox has memory and pids cgroups while running');
  ac.abort();
  await assert.rejects(pending, (e: unknown) => e instanceof SandboxAbortedError);
  assert.deepEqual(pidsWithCmdline(`sleep ${marker}`), []);
  assert.equal(existsSync(`/proc/${helper}`), false);
  assert.deepEqual(cgroupDirsOf(helper), []);
});

test('signals sent to the helper are forwarded to the container process', async (t) => {
  const s = scratch(t);
  const marker = `${Math.floor(Math.random() * 1e6) + 3000000}`;
  const ac = new AbortController();
  t.after(() => ac.abort());
  // pid 1 ignores signals it has no handler for, so the shell installs one, like a real init would.
  const pending = run(s, { args: ['sh', '-c', `trap 'echo got-usr1; exit 3' USR1; while :; do sleep ${marker} & wait $!; done`] }, ac.signal);
  const [sleepPid] = await waitFor('the sleep', () => {
    const p = pidsWithCmdline(`sleep ${marker}`);
    return p.length ? p : undefined;
  });
  const helper = ppidOf(ppidOf(sleepPid!));
  process.kill(helper, 'SIGUSR1');
  const { result, stdout } = await pending;
  assert.equal(stdout, 'got-usr1\n');
  assert.equal(result.exitCode, 3);
});

test('cgroup limits are written under the helper\'s own cgroups while the container runs', async (t) => {
  const s = scratch(t);
  const marker = `${Math.floor(Math.random() * 1e6) + 4000000}`;
  const ac = new AbortController();
  t.after(() => ac.abort());
  const pending = run(s, {
    args: ['sleep', marker],
    limits: { memoryBytes: 64 << 20, pids: 17, cpuShares: 512, cpuQuotaUs: 50000, cpuPeriodUs: 100000 },
  }, ac.signal);
  const [pid] = await waitFor('the sleep', () => {
    const p = pidsWithCmdline(`sleep ${marker}`);
    return p.length ? p : undefined;
  });
  const helper = ppidOf(pid!);
  const dirs = cgroupDirsOf(helper);
  const read = (controller: string, file: string) => {
    const dir = dirs.find((d) => d.startsWith(`/sys/fs/cgroup/${controller}/`));
    assert.ok(dir, `a ${controller} cgroup exists`);
    return readFileSync(join(dir, file), 'utf8').trim();
  };
  assert.equal(read('memory', 'memory.limit_in_bytes'), String(64 << 20));
  assert.equal(read('pids', 'pids.max'), '17');
  assert.equal(read('cpu', 'cpu.shares'), '512');
  assert.equal(read('cpu', 'cpu.cfs_quota_us'), '50000');
  assert.equal(read('cpu', 'cpu.cfs_period_us'), '100000');
  assert.ok(read('pids', 'cgroup.procs').split('\n').includes(String(pid)), 'the container process is in the pids cgroup');
  ac.abort();
  await assert.rejects(pending, SandboxAbortedError);
  assert.deepEqual(cgroupDirsOf(helper), []);
});

test('a missing command exits 127 with docker\'s message; a non-executable file exits 126', async (t) => {
  const s = scratch(t);
  const missing = await run(s, { args: ['no-such-command'] });
  assert.equal(missing.result.exitCode, 127);
  assert.equal(missing.result.execError, 'exec: "no-such-command": executable file not found in $PATH');
  assert.match(missing.stderr, /executable file not found in \$PATH/);
  const notExec = await run(s, { args: ['/etc/passwd'] });
  assert.equal(notExec.result.exitCode, 126);
  assert.match(notExec.result.execError!, /permission denied/);
});

test('env, cwd (created when missing) and uid/gid/groups are applied', async (t) => {
  const s = scratch(t);
  const { stdout, result } = await run(s, {
    args: ['sh', '-c', 'echo "$GREETING"; pwd; id -u; id -g; id -G; grep CapEff /proc/self/status'],
    env: [PATH, 'GREETING=hi there'],
    cwd: '/srv/app',
    user: { uid: 65534, gid: 65534, additionalGids: [1234] },
  });
  assert.equal(result.exitCode, 0);
  assert.deepEqual(stdout.trim().split('\n'), ['hi there', '/srv/app', '65534', '65534', '65534 1234', 'CapEff:\t0000000000000000']);
  assert.ok(lstatSync(join(s.upper, 'srv', 'app')).isDirectory(), 'the created cwd is part of the layer');
});

test('bind mounts (rw and ro) and tmpfs mounts from the spec work and leave no trace in the upperdir', async (t) => {
  const s = scratch(t);
  const rw = join(s.dir, 'rw');
  const ro = join(s.dir, 'ro');
  mkdirSync(rw);
  mkdirSync(ro);
  writeFileSync(join(ro, 'input.txt'), 'from host\n');
  const hostsFile = join(s.dir, 'hosts');
  writeFileSync(hostsFile, '127.0.0.1 localhost kiln-test\n');
  const { stdout, stderr, result } = await run(s, {
    args: ['sh', '-c', [
      'echo out > /mnt/out/result.txt',
      'cat /mnt/in/input.txt',
      'echo x > /mnt/in/nope.txt 2>/dev/null || echo ro-refused',
      'echo scratch > /scratch/a && cat /scratch/a',
      'grep " /scratch " /proc/mounts | cut -d" " -f3',
      'grep kiln-test /etc/hosts',
    ].join('; ')],
    mounts: [
      { type: 'bind', source: rw, target: '/mnt/out' },
      { type: 'bind', source: ro, target: '/mnt/in', readonly: true },
      { type: 'tmpfs', target: '/scratch', sizeBytes: 1 << 20 },
      { type: 'bind', source: hostsFile, target: '/etc/hosts', readonly: true },
    ],
  });
  assert.equal(result.exitCode, 0, stderr);
  assert.deepEqual(stdout.trim().split('\n'), ['from host', 'ro-refused', 'scratch', 'tmpfs', '127.0.0.1 localhost kiln-test']);
  assert.equal(readFileSync(join(rw, 'result.txt'), 'utf8'), 'out\n');
  assert.equal(existsSync(join(ro, 'nope.txt')), false);
  // The mount points the sandbox had to create (/mnt/out, /mnt/in, /scratch, /etc/hosts) are gone.
  assert.deepEqual(readdirSync(s.upper), []);
});

test('an overlay mount of other layers (with a subpath) is read-only or discards writes', async (t) => {
  const s = scratch(t);
  const bottom = join(s.dir, 'l1');
  const top = join(s.dir, 'l2');
  mkdirSync(join(bottom, 'app', 'lib'), { recursive: true });
  mkdirSync(join(top, 'app'), { recursive: true });
  writeFileSync(join(bottom, 'app', 'lib', 'a.txt'), 'bottom\n');
  writeFileSync(join(bottom, 'app', 'shadowed.txt'), 'bottom\n');
  writeFileSync(join(top, 'app', 'shadowed.txt'), 'top\n');
  const { stdout, stderr, result } = await run(s, {
    args: ['sh', '-c', [
      'cat /from/lib/a.txt /from/shadowed.txt',
      'touch /from/new 2>/dev/null || echo ro-refused',
      'echo scribble > /rw/scribble && cat /rw/scribble',
    ].join('; ')],
    mounts: [
      { type: 'overlay', lowerdirs: [top, bottom], subpath: '/app', target: '/from', readonly: true },
      { type: 'overlay', lowerdirs: [top, bottom], target: '/rw' },
    ],
  });
  assert.equal(result.exitCode, 0, stderr);
  assert.deepEqual(stdout.trim().split('\n'), ['bottom', 'top', 'ro-refused', 'scribble']);
  assert.equal(existsSync(join(top, 'scribble')), false, 'writes to a writable overlay mount are discarded');
  assert.deepEqual(readdirSync(s.upper), []);
});

test('150 lower layers mount, topmost first', async (t) => {
  const s = scratch(t);
  const layers: string[] = [];
  for (let i = 0; i < 150; i++) {
    const d = join(s.dir, 'layers', String(i).padStart(3, '0'));
    mkdirSync(join(d, 'layers'), { recursive: true });
    writeFileSync(join(d, 'layers', `file-${i}`), `${i}\n`);
    writeFileSync(join(d, 'layers', 'top'), `${i}\n`);
    layers.push(d);
  }
  layers.reverse(); // layer 149 is topmost
  const { stdout, stderr, result } = await run(s, {
    args: ['sh', '-c', 'ls /layers | wc -l; cat /layers/top /layers/file-0 /layers/file-149'],
    rootfs: { lowerdirs: [...layers, lower], upperdir: s.upper, workdir: s.work },
  });
  assert.equal(result.exitCode, 0, stderr);
  assert.deepEqual(stdout.trim().split('\n'), ['151', '149', '0', '149']);
});

test('a read-only single-layer rootfs and a throwaway tmpfs upper', async (t) => {
  const s = scratch(t);
  const ro = await runSandbox({ rootfs: { lowerdirs: [lower], readonly: true }, args: ['sh', '-c', 'touch /x 2>&1 || echo refused'], env: [PATH] }, {
    onOutput: () => {},
  });
  assert.equal(ro.exitCode, 0);
  let out = '';
  const tmp = await runSandbox({ rootfs: { lowerdirs: [lower] }, args: ['sh', '-c', 'echo x > /x && cat /x'], env: [PATH] }, {
    onOutput: (_, c) => { out += c.toString(); },
  });
  assert.equal(tmp.exitCode, 0);
  assert.equal(out, 'x\n');
  assert.equal(existsSync(join(lower, 'x')), false);
});

test('tty: true gives the process a terminal on stdin/stdout', async (t) => {
  const s = scratch(t);
  const { stdout, result } = await run(s, { args: ['sh', '-c', 'tty; test -t 0 && test -t 1 && echo both-tty'], tty: true });
  assert.equal(result.exitCode, 0);
  assert.deepEqual(stdout.trim().split(/\r?\n/), ['/dev/pts/0', 'both-tty']);
});

test('stdin from a Buffer reaches the process', async (t) => {
  const s = scratch(t);
  let out = '';
  const r = await runSandbox(
    { rootfs: { lowerdirs: [lower], upperdir: s.upper, workdir: s.work }, args: ['sh', '-c', 'tr a-z A-Z'], env: [PATH] },
    { stdin: Buffer.from('shout\n'), onOutput: (_, c) => { out += c.toString(); } },
  );
  assert.equal(r.exitCode, 0);
  assert.equal(out, 'SHOUT\n');
});

test('set-up failures reject with a one-line SandboxError naming the problem', async (t) => {
  const s = scratch(t);
  await assert.rejects(
    run(s, { args: ['true'], rootfs: { lowerdirs: [join(s.dir, 'missing-layer')], upperdir: s.upper, workdir: s.work } }),
    (e: unknown) => e instanceof SandboxError && e.userFacing && /missing-layer: No such file or directory/.test(e.message) && !e.message.includes('\n'),
  );
  await assert.rejects(
    run(s, { args: ['true'], mounts: [{ type: 'bind', source: join(s.dir, 'nope'), target: '/x' }] }),
    (e: unknown) => e instanceof SandboxError && /bind mount source .*nope: No such file or directory/.test(e.message),
  );
});
