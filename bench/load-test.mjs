// Load test of one `kiln serve` (loopback only: a unix socket): N clients run M builds in total, mixed
// cached and uncached, through `kiln build --builder`. Checks every build succeeded and no cache record
// was lost (afterwards every context rebuilds fully cached), and prints throughput, p50/p95 latency
// (client start to exit) and the server's peak memory (VmHWM). Bounded: a fixed number of builds.
//
// usage: npm run build && node bench/load-test.mjs [--clients 20] [--builds 100] [--contexts 10] [--max-parallel 4]
// Needs the test fixtures (bash test/fixtures/make-busybox.sh) and Debian's docker-registry and skopeo.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, pushBusybox } from '../dist/test/helpers/registry.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const clients = opt('clients', 20);
const builds = opt('builds', 100);
const contexts = opt('contexts', 10);
const maxParallel = opt('max-parallel', 4);
const work = mkdtempSync(join(tmpdir(), 'kiln-load-'));
// A snapshot of the built CLI: a rebuild of dist/ during the run (others work in this tree) must not
// swap the bundle under running clients.
const repo = join(import.meta.dirname, '..');
const snap = join(work, 'kiln');
for (const p of ['bin', 'dist/bundle', 'proto', 'native/build', 'package.json']) cpSync(join(repo, p), join(snap, p), { recursive: true });
symlinkSync(join(repo, 'node_modules'), join(snap, 'node_modules'));
const kilnBin = join(snap, 'bin', 'kiln.js');

function run(argv, env = {}) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(process.execPath, [kilnBin, ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code, out, err, secs: Number(process.hrtime.bigint() - t0) / 1e9 }));
  });
}

const reg = await startRegistry();
const base = pushBusybox(reg, 'library/busybox', 'latest');
const sock = join(work, 'kiln.sock');
const server = spawn(process.execPath, [kilnBin, 'serve', '--addr', `unix://${sock}`, '--root', join(work, 'server'), '--max-parallel', String(maxParallel)], { stdio: ['ignore', 'ignore', 'pipe'] });
let serverLog = '';
await new Promise((resolve, reject) => {
  server.stderr.on('data', (d) => {
    serverLog += d;
    if (/listening on/.test(serverLog)) resolve();
  });
  server.on('exit', () => reject(new Error(serverLog)));
});
let peakKb = 0;
const sampler = setInterval(() => {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'));
    if (m) peakKb = Math.max(peakKb, Number(m[1]));
  } catch {}
}, 200);

// Contexts: each has its own files and a RUN step; a build is "uncached" when it passes a fresh build arg
// that its RUN step uses (every third build), otherwise it repeats a context's cached build.
const ctxDirs = [];
for (let c = 0; c < contexts; c++) {
  const dir = join(work, `ctx-${c}`);
  mkdirSync(join(dir, 'src'), { recursive: true });
  for (let f = 0; f < 20; f++) writeFileSync(join(dir, 'src', `f${f}.txt`), `context ${c} file ${f}\n`.repeat(50));
  writeFileSync(join(dir, 'Dockerfile'), `FROM ${base}\nCOPY src /src\nRUN cat /src/*.txt | wc -l > /lines\nARG NONCE=0\nRUN echo "$NONCE" > /nonce && cat /lines\n`);
  ctxDirs.push(dir);
}

const results = [];
let next = 0;
const t0 = Date.now();
await Promise.all(
  Array.from({ length: clients }, async (_, client) => {
    const env = { KILN_CONFIG_DIR: join(work, `client-${client}`, 'config'), KILN_CLIENT_CACHE: join(work, `client-${client}`, 'cache') };
    for (;;) {
      const i = next++;
      if (i >= builds) return;
      const uncached = i % 3 === 0;
      const argv = ['build', '--progress', 'plain', '--builder', `unix://${sock}`, ...(uncached ? ['--build-arg', `NONCE=${i}`] : []), ctxDirs[i % contexts]];
      const r = await run(argv, env);
      results.push({ i, uncached, ...r });
      if (r.code !== 0) process.stderr.write(`build ${i} failed:\n${r.err}\n`);
    }
  }),
);
const wall = (Date.now() - t0) / 1000;

// No cache record lost: every context's default build is fully cached now.
let lost = 0;
for (const dir of ctxDirs) {
  const r = await run(['build', '--progress', 'plain', '--builder', `unix://${sock}`, dir], { KILN_CONFIG_DIR: join(work, 'verify'), KILN_CLIENT_CACHE: join(work, 'verify-cache') });
  const ran = (r.err.match(/^#\d+ DONE /gm) ?? []).length - (r.err.match(/load build context/g) ?? []).length;
  if (r.code !== 0 || ran > 0) {
    lost++;
    process.stderr.write(`verify ${dir}: ${r.code !== 0 ? 'failed' : `${ran} steps ran again`}\n${r.err}\n`);
  }
}
clearInterval(sampler);
server.kill('SIGTERM');
await new Promise((r) => server.on('exit', r));
await reg.stop();

const lat = results.map((r) => r.secs).sort((a, b) => a - b);
const pct = (p) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))];
const failed = results.filter((r) => r.code !== 0).length;
const uncached = results.filter((r) => r.uncached);
const cached = results.filter((r) => !r.uncached);
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
console.log(`kiln serve load test: ${clients} clients, ${results.length} builds (${uncached.length} uncached, ${cached.length} cached), max-parallel ${maxParallel}, ${contexts} contexts`);
console.log(`succeeded:        ${results.length - failed}/${results.length}`);
console.log(`cache records lost: ${lost} of ${contexts} contexts`);
console.log(`wall time:        ${wall.toFixed(1)} s`);
console.log(`throughput:       ${(results.length / wall).toFixed(2)} builds/s`);
console.log(`latency p50/p95:  ${pct(50).toFixed(2)} s / ${pct(95).toFixed(2)} s (cached median ${med(cached.map((r) => r.secs)).toFixed(2)} s, uncached median ${med(uncached.map((r) => r.secs)).toFixed(2)} s)`);
console.log(`server peak RSS:  ${(peakKb / 1024).toFixed(0)} MiB`);
rmSync(work, { recursive: true, force: true });
process.exitCode = failed || lost ? 1 : 0;
