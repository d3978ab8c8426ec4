#!/usr/bin/env node
// kiln vs BuildKit v0.25 (docker-sid) on the real-world corpus, timed in one run. Per project and builder:
//   cold   --no-cache: every step runs, apt-get / npm ci download from the network (included in the time);
//          the base images are already local (registry on 127.0.0.1 / docker-sid's store)
//   warm   the same context again, nothing changed
//   change one source file changed (a comment appended), rebuilt
// each the median of --reps runs (cold: --cold-reps, default 1); both builders export an OCI tarball.
// Overhead = wall time minus the time inside RUN steps (the plain progress output's "#N DONE x.ys" of
// each RUN step, the same format from both builders). The two images of the cold build are compared
// (files, modes, owners, config) and kiln's is started and asked (curl / CLI). Prints a markdown table.
//
// Usage: node bench/realworld/run.mjs [--projects a,b] [--reps 3] [--cold-reps 1] [--registry 127.0.0.1:5001]
// Needs the compiled tree (npm run build) and root.
import { mkdtempSync, rmSync } from 'node:fs';
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
const projects = corpus.loadProjects().filter((p) => !only || only.split(',').includes(p.name));

const log = (s) => process.stderr.write(`${s}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

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

corpus.ensureBases(registry);
const work = mkdtempSync(join(tmpdir(), 'kiln-rw-bench-'));
const rows = [];
try {
  for (const p of projects) {
    log(`== ${p.name}`);
    const context = corpus.prepareContext(p, work);
    const root = mkdtempSync(join(tmpdir(), 'kiln-rw-bench-root-'));
    const out = (who, n) => ['-o', `type=oci,dest=${join(work, `${p.name}-${who}-${n}.tar`)}`];
    const r = { name: p.name, kiln: {}, bk: {} };
    const build = (who, extra, n) => {
      const res = who === 'kiln' ? corpus.kilnBuild(root, p, context, registry, [...extra, ...out(who, n)]) : corpus.peerBuild(p, context, registry, [...extra, ...out(who, n)]);
      if (res.status !== 0) throw new Error(`${who} failed on ${p.name}: ${res.stderr.slice(-2000)}`);
      const run = runSeconds(res.stderr);
      log(`   ${who} ${n}: ${res.seconds.toFixed(2)} s (RUN ${run.toFixed(2)} s)`);
      return { wall: res.seconds, overhead: Math.max(0, res.seconds - run) };
    };
    try {
      for (const who of ['kiln', 'bk']) {
        // the first build fills each builder's cache (and kiln's store with the base image) untimed
        build(who, [], 'prime');
        const cold = [];
        for (let i = 0; i < coldReps; i++) cold.push(build(who, ['--no-cache'], `cold${i}`));
        const warm = [];
        for (let i = 0; i < reps; i++) warm.push(build(who, [], `warm${i}`));
        r[who] = { cold, warm, change: [] };
      }
      // changes alternate builders on the same edited context, each builder seeing every change once
      for (let i = 0; i < reps; i++) {
        corpus.changeOneFile(p, context, i);
        for (const who of ['kiln', 'bk']) r[who].change.push(build(who, [], `change${i}`));
      }
      const diffs = corpus.imageDifferences(
        corpus.unpackOci(join(work, `${p.name}-bk-cold0.tar`), join(work, `${p.name}-unpack-bk`)),
        corpus.unpackOci(join(work, `${p.name}-kiln-cold0.tar`), join(work, `${p.name}-unpack-kiln`)),
      );
      r.diffs = diffs;
      const tag = `kiln-rw/${p.name}:bench`;
      corpus.kilnBuild(root, p, context, registry, ['-t', tag]);
      r.check = corpus.runCheck(root, tag, p);
      log(`   image differences: ${diffs.length}${diffs.length ? ` (first: ${diffs[0]})` : ''}; check: ${r.check.ok ? 'answers' : 'FAILED ' + r.check.output}`);
    } catch (e) {
      r.error = String(e.message ?? e).split('\n').slice(0, 3).join(' ');
      log(`   ${r.error}`);
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(join(work, p.name), { recursive: true, force: true });
    }
    rows.push(r);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const f = (x) => (x === undefined ? '–' : x < 10 ? x.toFixed(2) : x.toFixed(1));
const cell = (r, kind, key) => {
  const k = r.kiln[kind]?.length ? median(r.kiln[kind].map((x) => x[key])) : undefined;
  const b = r.bk[kind]?.length ? median(r.bk[kind].map((x) => x[key])) : undefined;
  if (k === undefined || b === undefined) return '–';
  return `${f(k)} / ${f(b)} (${(k / b).toFixed(2)}×)`;
};
console.log(`| project | cold (network) kiln / BuildKit | warm | one-file change | overhead cold | overhead change | images | answers |`);
console.log(`|---|---|---|---|---|---|---|---|`);
for (const r of rows) {
  if (r.error) {
    console.log(`| ${r.name} | failed: ${r.error.replace(/\|/g, '\\|').slice(0, 200)} | | | | | | |`);
    continue;
  }
  const images = r.diffs.length === 0 ? 'same' : `${r.diffs.length} differences`;
  console.log(`| ${r.name} | ${cell(r, 'cold', 'wall')} | ${cell(r, 'warm', 'wall')} | ${cell(r, 'change', 'wall')} | ${cell(r, 'cold', 'overhead')} | ${cell(r, 'change', 'overhead')} | ${images} | ${r.check.ok ? 'yes' : 'NO'} |`);
}
console.log(`\nseconds, kiln / BuildKit v0.25 (ratio); median of ${reps} (cold: ${coldReps}, --no-cache, downloads included); overhead = wall − time inside RUN steps.`);
for (const r of rows) for (const d of (r.diffs ?? []).slice(0, 5)) console.log(`- ${r.name}: ${d}`);
