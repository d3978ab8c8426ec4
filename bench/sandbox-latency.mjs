#!/usr/bin/env node
// Start-to-exit latency of one container running /bin/true in the busybox rootfs: kiln's helper alone
// (overlay with a throwaway upper, namespaces, cgroups, seccomp) versus `runc run` and `crun run` on an
// equivalent bundle (config.json from `<runtime> spec`, read-only rootfs = the same busybox dir).
// Prints a markdown table of medians. usage: node bench/sandbox-latency.mjs [runs=30]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const runs = Number(process.argv[2] ?? 30);
execFileSync('bash', [join(root, 'test/fixtures/make-busybox.sh'), join(root, 'test/.fixtures/busybox')], { stdio: 'inherit' });
execFileSync(process.execPath, [join(root, 'scripts/build-native.mjs')], { stdio: 'inherit' });
const rootfs = join(root, 'test/.fixtures/busybox/rootfs-amd64');
const helper = join(root, 'native/build/kiln-sandbox');
const work = mkdtempSync(join(tmpdir(), 'kiln-bench-sandbox-'));

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

/** Runs fn `runs` times; returns the median in ms, or the first failure's message. */
function measure(fn) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = fn(i);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) return { error: (r.stderr?.toString() || `exit ${r.status}`).trim().split('\n').pop() };
    times.push(ms);
  }
  return { ms: median(times) };
}

const specFile = join(work, 'spec.json');
writeFileSync(specFile, JSON.stringify({ rootfs: { lowerdirs: [rootfs] }, args: ['/bin/true'], env: ['PATH=/bin'] }) + '\n');
const results = [];
results.push(['kiln-sandbox (overlay + tmpfs upper)', measure(() => spawnSync('sh', ['-c', `exec ${helper} 3<${specFile}`]))]);
// The same with each network mode: a netns with lo only, and a veth pair on kiln's bridge (set up once).
{
  const { ensureBridge } = await import(join(root, 'dist/native/network/bridge.js'));
  const bridge = await ensureBridge();
  for (const network of ['none', 'bridge', 'host']) {
    const f = join(work, `spec-${network}.json`);
    writeFileSync(f, JSON.stringify({ rootfs: { lowerdirs: [rootfs] }, args: ['/bin/true'], env: ['PATH=/bin'], network, bridge }) + '\n');
    results.push([`kiln-sandbox, network ${network}`, measure(() => spawnSync('sh', ['-c', `exec ${helper} 3<${f}`]))]);
  }
}

for (const runtime of ['runc', 'crun']) {
  const bundle = join(work, runtime);
  execFileSync('mkdir', ['-p', bundle]);
  const gen = spawnSync(runtime, ['spec'], { cwd: bundle });
  if (gen.status !== 0) { results.push([`${runtime} run`, { error: gen.stderr.toString().trim() }]); continue; }
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  config.root = { path: rootfs, readonly: true };
  config.process.terminal = false;
  config.process.args = ['/bin/true'];
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config, null, 2));
  const id = `kiln-bench-${process.pid}-${runtime}`;
  results.push([`${runtime} run`, measure((i) => spawnSync(runtime, ['run', '-b', bundle, `${id}-${i}`], { stdio: ['ignore', 'ignore', 'pipe'] }))]);
}

// The whole CLI: `kiln run --rm IMAGE true` (node start-up, state open, image lookup, sandbox), with the
// image pulled from a throwaway local registry first.
{
  const port = 20000 + (process.pid % 20000);
  const regDir = join(work, 'registry');
  execFileSync('mkdir', ['-p', regDir]);
  writeFileSync(join(regDir, 'config.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${regDir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const { spawn } = await import('node:child_process');
  const reg = spawn('docker-registry', ['serve', join(regDir, 'config.yml')], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 100 && spawnSync('curl', ['-sf', `http://127.0.0.1:${port}/v2/`]).status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    const image = `127.0.0.1:${port}/busybox:latest`;
    execFileSync('skopeo', ['copy', '-q', '--all', '--dest-tls-verify=false', `oci:${join(root, 'test/.fixtures/busybox/oci')}:latest`, `docker://${image}`]);
    const env = { ...process.env, KILN_ROOT: join(work, 'kiln-root') };
    const kiln = join(root, 'bin/kiln.js');
    execFileSync(process.execPath, [kiln, 'pull', '-q', image], { env, stdio: 'ignore' });
    results.push(['kiln run --rm (whole CLI)', measure(() => spawnSync(process.execPath, [kiln, 'run', '--rm', image, 'true'], { env, stdio: ['ignore', 'ignore', 'pipe'] }))]);
    results.push(['node -e 0 (Node start-up alone)', measure(() => spawnSync(process.execPath, ['-e', '0']))]);
  } finally {
    reg.kill();
  }
}
rmSync(work, { recursive: true, force: true });

console.log(`\nmedian of ${runs} runs of /bin/true in the busybox rootfs\n`);
console.log('| runtime | median ms | vs kiln-sandbox |');
console.log('|---|---:|---:|');
const base = results[0][1].ms;
for (const [name, r] of results) {
  if (r.error) console.log(`| ${name} | failed: ${r.error.replace(/\|/g, '\\|')} | |`);
  else console.log(`| ${name} | ${r.ms.toFixed(1)} | ${(r.ms / base).toFixed(2)}x |`);
}
