// The differential harness against BuildKit v0.25 (docker-sid buildx, docker driver): the same context is
// built by both builders against one local registry holding the busybox fixture, and what a user sees is
// compared: the file tree (type, mode, owner, content, link target), the image config and history, the
// build-check findings, or the error. Each case is one node:test test; builds run one after another.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, pushBusybox, type TestRegistry } from '../helpers/registry.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { writeContext, type ContextFiles } from '../helpers/build.js';
import { fileTree, modernBuild, modernPeerStatus, unpackArchive, type PeerResult } from '../helpers/oracle.js';

export interface DiffCase {
  name: string;
  /** `BUSYBOX` stands for the fixture image in the test registry. */
  dockerfile: string;
  files?: ContextFiles;
  prepare?: (context: string) => void;
  /** Flags for both builders (--build-arg, --target, --platform …). */
  args?: string[];
  /** The Dockerfile's name in the context (default `Dockerfile`). */
  dockerfileName?: string;
  /** image: both build, images compared; error: both fail, both print `error`; check: --call=check compared. */
  kind: 'image' | 'error' | 'check';
  error?: string;
  /** Also compare the image's created time and each history entry's (a fixed SOURCE_DATE_EPOCH). */
  compareCreated?: boolean;
  /** Further assertions on both results. */
  extra?: (peer: Built, ours: Built) => void;
  /**
   * A difference found and not yet fixed, with where the fix belongs: the case still runs every time and
   * reports as TODO (node:test), so it is seen, and passes plainly once fixed.
   */
  knownDifference?: string;
}

export interface Built {
  result: PeerResult;
  config?: Record<string, any>;
  rootfs?: string;
  tree?: Map<string, unknown>;
}

const CONFIG_KEYS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck', 'Shell', 'OnBuild', 'ArgsEscaped'];
const IMAGE_KEYS = ['os', 'architecture', 'variant', 'os.version', 'author'];

/** Colour codes dropped; BuildKit lists violated rules in Go map order, so that list is sorted. */
const normalize = (s: string): string =>
  s.replace(/\x1b\[[0-9;]*m/g, '').replace(/(lint violation found for rules: )([A-Za-z, ]+)/g, (_, head: string, rules: string) => head + rules.split(', ').sort().join(', '));

/** The findings buildx/kiln list after a build: ` - Rule: message (line N)`, sorted. */
export function listedWarnings(stderr: string): string[] {
  return [...normalize(stderr).matchAll(/^ - ([A-Z][A-Za-z]+: .*)$/gm)].map((m) => m[1]!).sort();
}

/** `--call=check,format=json` output reduced to sorted `Rule line-range detail` lines plus the error. */
export function checkSummary(stdout: string): string[] {
  let parsed: { warnings?: any[] | null; buildError?: { message: string } };
  try {
    parsed = JSON.parse(stdout);
  } catch {
    return [`unparseable: ${stdout.slice(0, 200)}`];
  }
  const lines = (parsed.warnings ?? []).map((w) => {
    const ranges = w.location?.ranges ?? [];
    const span = ranges.length ? `${ranges[0].start.line}-${ranges[ranges.length - 1].end.line}` : '0';
    return `${w.ruleName} ${span} ${w.detail}`;
  });
  lines.sort();
  if (parsed.buildError) lines.push(`ERROR ${normalize(parsed.buildError.message)}`);
  return lines;
}

/**
 * Declares the cases as tests. Without docker-sid they are skipped with the reason (outside CI only:
 * modernPeerStatus throws under CI=true, which fails the file).
 */
export function differentialSuite(cases: DiffCase[]): void {
  const peer = modernPeerStatus();
  let reg: TestRegistry;
  let base: string;
  let root: string;
  let work: string;
  before(async () => {
    if (!peer.ok) return;
    reg = await startRegistry();
    base = pushBusybox(reg, 'library/busybox', 'latest');
    root = tempRoot();
    work = mkdtempSync(join(tmpdir(), 'kiln-modern-diff-'));
  });
  after(async () => {
    await reg?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
    if (work) rmSync(work, { recursive: true, force: true });
  });

  let n = 0;
  for (const c of cases) {
    test(c.name, { skip: peer.ok ? false : peer.reason, todo: c.knownDifference ?? false }, () => {
      const dir = join(work, `case-${n++}`);
      mkdirSync(dir);
      const dfName = c.dockerfileName ?? 'Dockerfile';
      const context = writeContext({ [dfName]: c.dockerfile.replaceAll('BUSYBOX', base), ...(c.files ?? {}) });
      try {
        c.prepare?.(context);
        if (c.kind === 'check') return compareChecks(c, context, root);
        const peerOut = join(dir, 'peer.tar');
        const oursOut = join(dir, 'ours.tar');
        const theirs = modernBuild(context, [...(c.args ?? []), '-o', `type=oci,dest=${peerOut}`]);
        const ours = kiln(root, ['build', '--progress', 'plain', ...(c.args ?? []), '-o', `type=oci,dest=${oursOut}`, context], { timeoutMs: 300_000 });
        if (c.kind === 'error') {
          assert.notEqual(theirs.status, 0, `BuildKit v0.25 built it: ${theirs.stderr.slice(-500)}`);
          assert.notEqual(ours.status, 0, 'kiln built it');
          assert.ok(normalize(theirs.stderr).includes(c.error!), `BuildKit v0.25 says: ${theirs.stderr.slice(-800)}`);
          assert.ok(ours.stderr.includes(c.error!), `kiln says: ${ours.stderr.slice(-800)}`);
          return;
        }
        assert.equal(theirs.status, 0, `BuildKit v0.25 failed: ${theirs.stderr.slice(-1500)}`);
        assert.equal(ours.status, 0, `kiln failed: ${ours.stderr.slice(-1500)}`);
        const p = unpacked(theirs, peerOut, join(dir, 'peer'));
        const o = unpacked(ours, oursOut, join(dir, 'ours'));
        compareImages(c, p, o);
        assert.deepEqual(listedWarnings(ours.stderr), listedWarnings(theirs.stderr), 'build-check warnings after the build');
        c.extra?.(p, o);
      } finally {
        rmSync(context, { recursive: true, force: true });
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}

function unpacked(result: PeerResult, archive: string, work: string): Built {
  mkdirSync(work);
  // skopeo wants the archive's one image; a name without a tag keeps it unambiguous
  const tar = join(work, 'image.tar');
  renameSync(archive, tar);
  const { rootfs, config } = unpackArchive(`oci-archive:${tar}`, work);
  return { result, config, rootfs, tree: fileTree(rootfs) };
}

function compareImages(c: DiffCase, p: Built, o: Built): void {
  const diffs: string[] = [];
  for (const [path, e] of p.tree!) {
    const h = o.tree!.get(path);
    if (!h) diffs.push(`missing in kiln: ${path} ${JSON.stringify(e)}`);
    else if (JSON.stringify(h) !== JSON.stringify(e)) diffs.push(`differs: ${path} buildkit=${JSON.stringify(e)} kiln=${JSON.stringify(h)}`);
  }
  for (const path of o.tree!.keys()) if (!p.tree!.has(path)) diffs.push(`only in kiln: ${path}`);
  assert.deepEqual(diffs, [], `file trees differ for ${c.name}`);
  for (const k of CONFIG_KEYS) assert.deepEqual(o.config!.config?.[k] ?? null, p.config!.config?.[k] ?? null, `config.${k}`);
  for (const k of IMAGE_KEYS) assert.deepEqual(o.config![k] ?? null, p.config![k] ?? null, k);
  assert.equal(o.config!.rootfs.diff_ids.length, p.config!.rootfs.diff_ids.length, 'layer count');
  const hist = (cfg: Record<string, any>) => cfg.history.map((h: any) => ({ created_by: h.created_by ?? '', empty_layer: !!h.empty_layer, comment: h.comment ?? '', ...(c.compareCreated ? { created: h.created } : {}) }));
  assert.deepEqual(hist(o.config!), hist(p.config!), 'history');
  if (c.compareCreated) assert.equal(o.config!.created, p.config!.created, 'created');
}

function compareChecks(c: DiffCase, context: string, root: string): void {
  const theirs = modernBuild(context, [...(c.args ?? []), '--call=check,format=json']);
  const ours = kiln(root, ['build', ...(c.args ?? []), '--call=check,format=json', context]);
  const want = checkSummary(theirs.stdout);
  assert.ok(want.length > 0 || theirs.status === 0, `BuildKit v0.25's check did not run: ${theirs.stderr.slice(-800)}`);
  assert.deepEqual(checkSummary(ours.stdout), want, `check findings (kiln stderr: ${ours.stderr.slice(-400)})`);
  assert.equal(ours.status, theirs.status, 'exit status of the check');
}
