// The team scenario timed: machine A builds a case and exports its cache to the registry; machine B (a fresh
// state dir) builds the same case cold, with the cache imported and without it. Next to it, the same with
// BuildKit in dockerd, whose only registry cache here is inline (BUILDKIT_INLINE_CACHE=1, mode=min: the
// docker driver has no type=registry exporter). Median of --reps runs; prints a table and the ratios.
//
// usage: bash bench/team-cache.sh [--cases parallel-stages,deep-layers,hello] [--reps 3]
// (team-cache.sh starts the registry on 127.0.0.1:5000 and dockerd, as bench/run.sh does).
import { execSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const cases = opt('cases', 'parallel-stages,deep-layers,hello').split(',');
const reps = Number(opt('reps', '3'));
const shared = resolve(process.env.KILN_SHARED ?? join(import.meta.dirname, '..', '..', 'shared'));
const kiln = `node ${join(import.meta.dirname, '..', 'bin', 'kiln.js')}`;
const docker = '/usr/bin/docker';
const haveDocker = (() => {
  try {
    execSync(`${docker} info`, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const sh = (cmd, env = {}) => execSync(cmd, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
const timed = (cmd, env) => {
  const t = process.hrtime.bigint();
  sh(cmd, env);
  return Number(process.hrtime.bigint() - t) / 1e9;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fresh = () => mkdtempSync(join(tmpdir(), 'kiln-team-bench-'));

function kilnCase(name, ctx) {
  const cache = `localhost:5000/bench/${name}:kiln-cache`;
  const a = fresh();
  try {
    sh(`${kiln} build -q --cache-to type=registry,ref=${cache},mode=max ${ctx}`, { KILN_ROOT: a });
  } finally {
    rmSync(a, { recursive: true, force: true });
  }
  const run = (extra) =>
    median(
      Array.from({ length: reps }, () => {
        const b = fresh();
        try {
          return timed(`${kiln} build -q ${extra} ${ctx}`, { KILN_ROOT: b });
        } finally {
          rmSync(b, { recursive: true, force: true });
        }
      }),
    );
  return { withCache: run(`--cache-from type=registry,ref=${cache}`), without: run('') };
}

function buildkitCase(name, ctx) {
  const ref = `localhost:5000/bench/${name}:buildkit-inline`;
  const prune = () => {
    sh(`${docker} builder prune -af`);
    sh(`${docker} image prune -af`);
  };
  const env = { DOCKER_BUILDKIT: '1' };
  prune();
  sh(`${docker} build -q --build-arg BUILDKIT_INLINE_CACHE=1 -t ${ref} ${ctx}`, env);
  sh(`${docker} push -q ${ref}`);
  const run = (extra) =>
    median(
      Array.from({ length: reps }, () => {
        prune();
        return timed(`${docker} build -q ${extra} ${ctx}`, env);
      }),
    );
  return { withCache: run(`--cache-from ${ref}`), without: run('') };
}

const rows = [];
for (const name of cases) {
  const ctx = mkdtempSync(join(tmpdir(), `kiln-team-ctx-${name}-`));
  cpSync(join(shared, 'bench', 'cases', name), ctx, { recursive: true });
  try {
    const k = kilnCase(name, ctx);
    const b = haveDocker ? buildkitCase(name, ctx) : undefined;
    rows.push({ name, k, b });
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

const f = (x) => (x === undefined ? '-' : x.toFixed(2));
console.log(`team scenario: machine B cold, median of ${reps} (seconds)\n`);
console.log('| case | kiln, cache imported | kiln, no cache | kiln ratio | BuildKit, inline cache imported | BuildKit, no cache | kiln imported / BuildKit imported |');
console.log('|---|---|---|---|---|---|---|');
for (const { name, k, b } of rows) {
  console.log(`| ${name} | ${f(k.withCache)} | ${f(k.without)} | ${f(k.withCache / k.without)} | ${f(b?.withCache)} | ${f(b?.without)} | ${b ? f(k.withCache / b.withCache) : '-'} |`);
}
