#!/usr/bin/env node
// kiln vs BuildKit v0.25 (docker-sid buildx) and BuildKit v0.8 (Debian 12's Docker 20.10,
// DOCKER_BUILDKIT=1 docker build) on the real-world corpus, timed in one run. Per project and builder:
//   cold   --no-cache: every step runs, apt-get / npm ci download from the network (included in the time);
//          the base images are already local (registry on 127.0.0.1 / docker-sid's store)
//   warm   the same context again, nothing changed
//   change one source file changed (a comment appended), rebuilt
// Timed builds alternate builders and each starts once the machine is quiet (settle()).
// each the median of --reps runs (cold: --cold-reps, default 1). kiln and BuildKit v0.25 export an OCI
// tarball; BuildKit v0.8 has no OCI exporter in Docker 20.10 and tags into dockerd's store (cheaper).
// Overhead = wall time minus the time inside RUN steps (the plain progress output's "#N DONE x.ys" of
// each RUN step, the same format from both builders). The two images of the cold build are compared
// (files, modes, owners, config) and kiln's is started and asked (curl / CLI). Prints a markdown table.
//
// Usage: node bench/realworld/run.mjs [--projects a,b] [--builders kiln,bk25,bk08] [--reps 3] [--cold-reps 1]
//        [--registry 127.0.0.1:5001] [--json out.json]     |   --render a.json[,b.json] (tables only)
// Needs the compiled tree (npm run build) and root. Prints markdown tables (one per BuildKit) on stdout.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dist = new URL('../../dist/test/realworld/corpus.js', import.meta.url).pathname;
const corpus = await import(dist);

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const reps = Number(opt('reps', '3'));
const coldReps = Number(opt('cold-reps', '1'));
const registry = opt('registry', process.env.KILN_RW_REGISTRY ?? corpus.DEFAULT_REGISTRY);
const only = opt('projects', '');
const all = corpus.loadProjects();
// --projects a,b: those, in that order
const projects = only ? only.split(',').map((n) => all.find((p) => p.name === n) ?? (() => { throw new Error(`no corpus project ${n}`); })()) : all;

const log = (s) => process.stderr.write(`${s}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The machine's CPU counters: busy and total jiffies, from /proc/stat. */
function cpuTimes() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

/**
 * Waits (at most 20 s) until under 10% of the machine's CPU is busy over half a second, so that one
 * builder's background work after its build (containerd's garbage collection after a BuildKit build, seen
 * at 80% of a core) is not timed as part of the next builder's build. Returns the seconds waited.
 */
function settle() {
  const start = Date.now();
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const a = cpuTimes();
    Atomics.wait(pause, 0, 0, 500);
    const b = cpuTimes();
    if ((b.busy - a.busy) / Math.max(1, b.total - a.total) < 0.1 || Date.now() - start > 20_000) return (Date.now() - start) / 1000;
  }
}

/** Seconds inside RUN steps, from plain progress: "#5 [build 2/4] RUN …" … "#5 DONE 1.7s". */
function runSeconds(output) {
  const runSteps = new Set();
  let total = 0;
  for (const line of output.split('\n')) {
    const head = line.match(/^#(\d+) \[[^\]]*\] RUN /);
    if (head) runSteps.add(head[1]);
    const done = line.match(/^#(\d+) DONE ([\d.]+)s/);
    if (done && runSteps.has(done[1])) total += Number(done[2]);
  }
  return total;
}

const NAMES = { kiln: 'kiln', bk25: 'BuildKit v0.25', bk08: 'BuildKit v0.8' };
const builders = opt('builders', 'kiln,bk25,bk08').split(',');
const runNonce = Date.now().toString(36);
const jsonOut = opt('json', '');
if (builders.includes('bk08') && !corpus.legacyPeerReady()) {
  log('# BuildKit v0.8: /usr/bin/docker does not answer and dockerd could not be started; left out');
  builders.splice(builders.indexOf('bk08'), 1);
}

/** Pulls and unpacks the project's base images into kiln's `root` (a FROM + RUN true build per base). */
function primeKilnBases(root, p, work) {
  const dockerfile = readFileSync(join(corpus.corpusDir, 'projects', p.name, 'Dockerfile'), 'utf8');
  const bases = new Set([...dockerfile.matchAll(/kiln-rw\/([a-z]+):bookworm/g)].map((m) => m[1]));
  for (const b of bases) {
    const ctx = mkdtempSync(join(work, 'prime-'));
    writeFileSync(join(ctx, 'Dockerfile'), `ARG KILN_RW_REGISTRY\nFROM \${KILN_RW_REGISTRY}/kiln-rw/${b}:bookworm\nRUN true\n`);
    const res = corpus.kilnBuild(root, { ...p, target: undefined }, ctx, registry, []);
    rmSync(ctx, { recursive: true, force: true });
    if (res.status !== 0) throw new Error(`kiln could not prime base ${b}: ${res.stderr.slice(-500)}`);
    log(`   kiln base ${b}: ${res.seconds.toFixed(2)} s (untimed prime)`);
  }
}

/** Times every project with every builder; returns one row per project. */
function bench() {
  corpus.ensureBases(registry);
  const work = mkdtempSync(join(tmpdir(), 'kiln-rw-bench-'));
  const rows = [];
  try {
    for (const p of projects) {
      log(`== ${p.name}`);
      const context = corpus.prepareContext(p, work);
      const root = mkdtempSync(join(tmpdir(), 'kiln-rw-bench-root-'));
      const out = (who, n) => (who === 'bk08' ? ['-t', `kiln-rw-bench/${p.name}:${n}`] : ['-o', `type=oci,dest=${join(work, `${p.name}-${who}-${n}.tar`)}`]);
      const r = { name: p.name, errors: {} };
      const build = (who, extra, n) => {
        const run = { kiln: () => corpus.kilnBuild(root, p, context, registry, [...extra, ...out(who, n)]),
          bk25: () => corpus.peerBuild(p, context, registry, [...extra, ...out(who, n)]),
          bk08: () => corpus.legacyPeerBuild(p, context, registry, [...extra, ...out(who, n)]) }[who];
        const waited = settle();
        if (waited > 1) log(`   (waited ${waited.toFixed(1)} s for the machine to be quiet)`);
        const res = run();
        if (res.status !== 0) throw new Error(`${NAMES[who]} failed on ${p.name}: ${res.stderr.trim().split('\n').slice(-4).join(' / ')}`);
        const inRun = runSeconds(res.stderr);
        log(`   ${who} ${n}: ${res.seconds.toFixed(2)} s (RUN ${inRun.toFixed(2)} s)`);
        return { wall: res.seconds, run: inRun, overhead: Math.max(0, res.seconds - inRun) };
      };
      try {
        // BuildKit: a first, untimed build fills its cache (the bases are already in its store). kiln: its
        // root is new: the bases are pulled into it first by an untimed build (as BuildKit has them loaded;
        // that build also starts kiln's resident engine, as any first build does), then its first
        // --no-cache build is cold0; a --no-cache build still fills kiln's cache for the warm runs.
        let alive = [];
        for (const who of builders) {
          try {
            if (who !== 'kiln') build(who, [], 'prime');
            else primeKilnBases(root, p, work);
            r[who] = { cold: [], warm: [], change: [] };
            alive.push(who);
          } catch (e) {
            r.errors[who] = String(e.message ?? e);
            log(`   ${r.errors[who]}`);
          }
        }
        // Timed builds alternate builders, like the changes below, so that a slow spell of the machine
        // (or one builder's background work) falls on both, not on one builder's whole series.
        const series = (kind, n, extra) => {
          for (let i = 0; i < n; i++) {
            for (const who of alive) {
              try {
                r[who][kind].push(build(who, extra, `${kind}${i}`));
              } catch (e) {
                r.errors[who] = String(e.message ?? e);
                log(`   ${r.errors[who]}`);
                delete r[who];
              }
            }
            alive = alive.filter((who) => r[who]);
          }
        };
        series('cold', coldReps, ['--no-cache']);
        series('warm', reps, []);
        // changes alternate builders on the same edited context, each builder seeing every change once
        for (let i = 0; i < reps; i++) {
          // unique per bench run: an edit a builder saw in an earlier run would be a cache hit, not a change
          corpus.changeOneFile(p, context, `${runNonce}-${i}`);
          for (const who of alive) r[who].change.push(build(who, [], `change${i}`));
        }
        if (r.kiln && r.bk25) {
          r.diffs = corpus.imageDifferences(
            corpus.unpackOci(join(work, `${p.name}-bk25-cold0.tar`), join(work, `${p.name}-unpack-bk`)),
            corpus.unpackOci(join(work, `${p.name}-kiln-cold0.tar`), join(work, `${p.name}-unpack-kiln`)),
          );
        }
        if (r.kiln) {
          const tag = `kiln-rw/${p.name}:bench`;
          corpus.kilnBuild(root, p, context, registry, ['-t', tag]);
          r.check = corpus.runCheck(root, tag, p);
        }
        log(`   image differences: ${r.diffs?.length ?? '–'}${r.diffs?.length ? ` (first: ${r.diffs[0]})` : ''}; check: ${r.check?.ok ? 'answers' : 'FAILED ' + r.check?.output}`);
      } catch (e) {
        r.error = String(e.message ?? e).split('\n').slice(0, 3).join(' ');
        log(`   ${r.error}`);
      } finally {
        rmSync(root, { recursive: true, force: true });
        rmSync(join(work, p.name), { recursive: true, force: true });
        // this project's exported tarballs and unpacked images (GBs for the Node projects)
        for (const f of readdirSync(work)) if (f.startsWith(`${p.name}-`)) rmSync(join(work, f), { recursive: true, force: true });
      }
      rows.push(r);
      if (jsonOut) writeFileSync(jsonOut, JSON.stringify(rows, null, 1));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

// --render a.json,b.json: no builds, the tables from earlier --json files (a later file's project replaces
// an earlier one's)
const render = opt('render', '');
const rows = render
  ? [...new Map(render.split(',').flatMap((file) => JSON.parse(readFileSync(file, 'utf8'))).map((r) => [r.name, r])).values()]
  : bench();

const f = (x) => (x === undefined ? '–' : x < 10 ? x.toFixed(2) : x.toFixed(1));
const med = (r, who, kind, key) => (r[who]?.[kind]?.length ? median(r[who][kind].map((x) => x[key])) : undefined);
const cell = (r, peer, kind, key) => {
  const k = med(r, 'kiln', kind, key);
  const b = med(r, peer, kind, key);
  if (k === undefined || b === undefined) return '–';
  return `${f(k)} / ${f(b)} (**${(k / b).toFixed(2)}×**)`;
};
for (const peer of builders.filter((b) => b !== 'kiln')) {
  console.log(`\n### kiln vs ${NAMES[peer]}\n`);
  console.log(`| project | cold (network) | warm | one-file change | overhead cold | overhead change |${peer === 'bk25' ? ' images | answers |' : ''}`);
  console.log(`|---|---|---|---|---|---|${peer === 'bk25' ? '---|---|' : ''}`);
  for (const r of rows) {
    const failed = r.error ?? r.errors.kiln ?? r.errors[peer];
    if (failed) {
      // a parse error says all: BuildKit v0.8's built-in frontend predates heredocs (dockerfile 1.4)
      const parse = failed.match(/dockerfile parse error line \d+: [^/]*/);
      const why = parse ? `${failed.split(' failed on ')[0]} cannot build it: ${parse[0].trim()} (a heredoc)` : failed;
      console.log(`| ${r.name} | failed: ${why.replace(/\|/g, '\\|').slice(0, 220)} | | | | |${peer === 'bk25' ? ' | |' : ''}`);
      continue;
    }
    const images = r.diffs ? (r.diffs.length === 0 ? 'same' : `${r.diffs.length} differences`) : '–';
    console.log(`| ${r.name} | ${cell(r, peer, 'cold', 'wall')} | ${cell(r, peer, 'warm', 'wall')} | ${cell(r, peer, 'change', 'wall')} | ${cell(r, peer, 'cold', 'overhead')} | ${cell(r, peer, 'change', 'overhead')} |${peer === 'bk25' ? ` ${images} | ${r.check?.ok ? 'yes' : 'NO'} |` : ''}`);
  }
  console.log(`\nseconds, kiln / ${NAMES[peer]} (ratio); median of ${reps} (cold: ${coldReps}, --no-cache, downloads from Debian's archive and the npm registry included); overhead = wall − time inside RUN steps (each RUN step's "DONE" time in the plain progress output).`);
}
for (const r of rows) for (const d of (r.diffs ?? []).slice(0, 5)) console.log(`- ${r.name}: ${d}`);
