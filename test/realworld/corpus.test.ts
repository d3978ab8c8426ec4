// The real-world corpus (bench/realworld/projects: real open-source projects' Dockerfiles and sources, FROM
// lines pointed at local Debian bases): each project is built with kiln from a fresh state dir, its image is
// started and must answer (an HTTP GET on the container's 127.0.0.1, or a command's output), and where
// BuildKit v0.25 (docker-sid) runs, the same context is built by it and the two images must match (files,
// modes, owners, config). Network-dependent legs (Debian's archive for apt-get, the npm registry for npm ci)
// are skipped, with the reason printed, only when that service does not answer a probe. .ci/run runs it
// (KILN_REALWORLD=1) after the full suite.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempRoot, kiln } from '../helpers/kiln.js';
import { modernPeerStatus } from '../helpers/oracle.js';
import {
  DEFAULT_REGISTRY, corpusDir, loadProjects, prepareContext, kilnBuild, kilnBuildAsync, peerBuildAsync, runCheck, unpackOci, imageDifferences,
  debianArchive, npmRegistryReachable, ensureBases, basesCached, type Project,
} from './corpus.js';

const registry = process.env.KILN_RW_REGISTRY ?? DEFAULT_REGISTRY;
// KILN_RW_PROJECTS=a,b: only those projects (the whole corpus by default)
const only = process.env.KILN_RW_PROJECTS?.split(',');
const projects = loadProjects().filter((p) => !only || only.includes(p.name));
const peer = modernPeerStatus();
const debian = debianArchive();
const npmOk = npmRegistryReachable();
let root: string;
let work: string;

// The corpus downloads from Debian's archive and the npm registry and debootstraps its bases once per
// machine, so it is a tier of its own: KILN_REALWORLD=1 runs it (.ci/run does, after the full suite).
const enabled = process.env.KILN_REALWORLD === '1';

// Every project builds FROM a base debootstrapped from the Debian archive: without the archive and
// without cached bases, nothing in the corpus can be built.
const basesMissing = enabled && !debian.reachable && !basesCached();

function unreachable(p: Project): string | false {
  if (!enabled) return 'skipped: the real-world corpus runs with KILN_REALWORLD=1 (network, debootstrap, BuildKit v0.25)';
  if (basesMissing) return `skipped: the Debian archive ${debian.url} does not answer and no base images are cached (debootstrap leg)`;
  if (p.network.includes('apt') && !debian.reachable) return `skipped: the Debian archive ${debian.url} does not answer (apt-get leg)`;
  if (p.network.includes('npm') && !npmOk) return 'skipped: the npm registry does not answer (npm ci leg)';
  return false;
}

before(() => {
  if (!enabled || basesMissing) return;
  // bases.sh debootstraps once per machine (cached in $KILN_BENCH_CACHE) and needs the archive for that
  // first time only; pushing the cached images to the registry takes seconds.
  ensureBases(registry);
  root = tempRoot('kiln-rw-');
  work = mkdtempSync(join(tmpdir(), 'kiln-rw-work-'));
});
after(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the corpus covers every kind of project the issue names, in at least 8 projects', () => {
  const all = loadProjects();
  assert.ok(all.length >= 8, `only ${all.length} corpus projects`);
  const kinds = all.flatMap((p) => p.kinds);
  // issue 17: npm ci, C with make, C++ with cmake, Go, Python on Debian's python3, multi-stage into a
  // slim image, cache mounts for apt and npm, a large .dockerignore'd context
  for (const kind of [/npm ci/, /^C project with make/, /^C\+\+ project built with cmake/, /^Go program/, /Debian's python3/,
    /^multi-stage, .*binary into (scratch|a slim image)/, /^RUN --mount=type=cache for apt$/, /^RUN --mount=type=cache for npm$/,
    /^large \.dockerignore'd context/]) {
    assert.ok(kinds.some((k) => kind.test(k)), `no corpus project for: ${kind}`);
  }
  // every project has its folder, with a Dockerfile
  for (const p of all) assert.ok(existsSync(join(corpusDir, 'projects', p.name, 'Dockerfile')), `${p.name} has no Dockerfile`);
});

for (const p of projects) {
  test(`${p.name}: kiln builds it, the image answers, and it matches BuildKit v0.25`, { skip: unreachable(p), timeout: 900_000 }, async () => {
    const context = prepareContext(p, work);
    const dir = mkdtempSync(join(work, `${p.name}-out-`));
    try {
      // kiln's and BuildKit's builds run side by side: both mostly wait on the Debian archive and the npm
      // registry, and the corpus must fit in CI's budget. Each builder has its own copy of the context.
      const oursTar = join(dir, 'kiln.tar');
      const peerTar = join(dir, 'buildkit.tar');
      const peerContext = peer.ok ? prepareContext(p, join(work, 'peer')) : undefined;
      const [ours, theirs] = await Promise.all([
        kilnBuildAsync(root, p, context, registry, ['-o', `type=oci,dest=${oursTar}`]),
        peerContext ? peerBuildAsync(p, peerContext, registry, ['-o', `type=oci,dest=${peerTar}`]) : undefined,
      ]);
      assert.equal(ours.status, 0, `kiln failed to build ${p.name}: ${ours.stderr.slice(-2500)}`);
      const tag = `kiln-rw/${p.name}:test`;
      const tagged = kilnBuild(root, p, context, registry, ['-t', tag]);
      assert.equal(tagged.status, 0, `kiln failed to tag ${p.name}: ${tagged.stderr.slice(-1500)}`);
      assert.match(tagged.stderr, /CACHED/, `${p.name}: the second kiln build of the same context ran steps again`);

      const check = runCheck(root, tag, p);
      assert.ok(check.ok, `${p.name}'s image did not answer "${p.check.expect}" within the time: ${check.output}`);

      if (!theirs) {
        console.log(`# ${p.name}: BuildKit v0.25 comparison ${peer.ok ? "" : peer.reason}`);
        return;
      }
      assert.equal(theirs.status, 0, `BuildKit v0.25 failed to build ${p.name}: ${theirs.stderr.slice(-2500)}`);
      const diffs = imageDifferences(unpackOci(peerTar, join(dir, 'buildkit')), unpackOci(oursTar, join(dir, 'kiln')));
      assert.deepEqual(diffs.slice(0, 40), [], `${p.name}: kiln's image differs from BuildKit v0.25's (${diffs.length} differences)`);
      rmSync(peerContext!, { recursive: true, force: true });
    } finally {
      kiln(root, ['rmi', `kiln-rw/${p.name}:test`]);
      rmSync(dir, { recursive: true, force: true });
      rmSync(context, { recursive: true, force: true });
    }
  });
}
