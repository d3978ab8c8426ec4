// `kiln build --builder …` and `kiln bake --builder …`: runs the build on a builder's node(s) and returns what the local engine
// would (exports, images, warnings), so the CLI prints the same. With several nodes and several target
// platforms, each platform goes to a node that builds it natively when one exists (its declared
// platforms, else the first platform the node reports), the nodes build in parallel, and their images
// are merged into one index.
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import type { BuildHooks, BuildRequest, BuildResult, BuildTarget, BuildWarning, TargetResult } from '../engine/request.js';
import { unsupportedRemotely } from '../protocol/build-request.js';
import type { OutputSpec } from '../engine/exports.js';
import type { ExportImage } from '../export/types.js';
import type { Descriptor, ImageIndex, Platform } from '../../base/oci/types.js';
import { formatPlatform, normalizePlatform, parsePlatform } from '../../base/oci/platform.js';
import { OCI_INDEX } from '../../base/oci/mediatypes.js';
import { parseReference } from '../../base/oci/reference.js';
import { ContentStore } from '../../cache/content-store.js';
import { serializeIndex } from '../../base/oci/canonical-json.js';
import { blobEntries, writeArchiveTar } from '../export/archive.js';
import { layoutIndexEntries, OCI_LAYOUT_FILE } from '../export/oci-archive.js';
import { platformDirName } from '../export/rootfs.js';
import { UserError } from '../../base/errors.js';
import { connect, unary, type Connection } from './connect.js';
import type { BuilderConfig } from './builders.js';
import type { InfoResponse } from '../protocol/builder.js';
import { remoteBuild, type RemoteBuildInput, type RemoteBuildResult } from './remote-build.js';
import { extractTar } from './untar.js';
import { formatSize } from '../../base/units.js';

/** The target with the platforms and outputs one node builds. */
function inputOf(t: BuildTarget, req: BuildRequest, hooks: BuildHooks, outputs: OutputSpec[], platforms: Platform[] | undefined): RemoteBuildInput {
  return { target: { ...t, platforms, outputs }, explain: req.explain, progress: hooks.progress, signal: hooks.signal };
}

function toTargetResult(t: BuildTarget, r: RemoteBuildResult, outputs: OutputSpec[]): TargetResult & { warnings: BuildWarning[] } {
  return {
    name: t.name ?? '',
    exports: r.exports.map((e, i) => {
      const o = outputs[i] as OutputSpec | undefined;
      return { type: o?.type ?? (e.type as OutputSpec['type']), digest: e.digest || undefined, names: e.names.length ? e.names : undefined, dest: o && 'dest' in o ? o.dest : undefined };
    }),
    images: r.images.map((i) => ({ platform: parsePlatform(i.platform), config: JSON.parse(i.config_json), layers: [] }) as ExportImage),
    warnings: r.warnings.map((w) => ({ target: t.name ?? '', line: w.line || undefined, message: w.message })),
    explanations: r.explanations_json ? JSON.parse(r.explanations_json) : [],
  };
}

function reportSync(hooks: BuildHooks, r: RemoteBuildResult): void {
  const s = r.sync;
  if (!s) return;
  hooks.progress?.({
    type: 'status',
    message: `context: ${s.files} files, ${s.files_uploaded} uploaded (${formatSize(Number(s.bytes_uploaded))}), ${s.files_reused} already on builder ${r.node}`,
    time: Date.now(),
  });
}

/**
 * The engine's request built on a builder: each target is one Solve carrying it (src/protocol/build-request.ts),
 * one after the other, so a later target's shared steps are cache hits on the builder.
 */
export async function buildOnBuilder(builder: BuilderConfig, req: BuildRequest, hooks: BuildHooks = {}): Promise<BuildResult> {
  if (req.printGraph) throw new UserError('--print-graph prints the graph locally: drop --builder');
  // Options the protocol does not carry yet: refuse them rather than build without them.
  for (const t of req.targets) {
    const refused = unsupportedRemotely(t);
    if (refused) throw new UserError(`${refused} is not supported with a remote builder yet`);
  }
  const result: BuildResult = { targets: [], warnings: [], vertices: { merged: 0, perTarget: 0 } };
  for (const t of req.targets) {
    const r = await buildTarget(builder, t, req, hooks);
    const { warnings, ...target } = r;
    result.targets.push(target);
    result.warnings.push(...warnings);
  }
  return result;
}

async function buildTarget(builder: BuilderConfig, t: BuildTarget, req: BuildRequest, hooks: BuildHooks): Promise<TargetResult & { warnings: BuildWarning[] }> {
  const conns = builder.nodes.map((n) => connect(n));
  try {
    const platforms = t.platforms?.length ? t.platforms : undefined;
    const plan = platforms && conns.length > 1 ? await assign(conns, platforms) : [{ conn: conns[0]!, platforms }];
    if (plan.length === 1) {
      const r = await remoteBuild(plan[0]!.conn, inputOf(t, req, hooks, t.outputs, plan[0]!.platforms));
      reportSync(hooks, r);
      return toTargetResult(t, r, t.outputs);
    }
    return await splitBuild(t, req, hooks, plan as { conn: Connection; platforms: Platform[] }[]);
  } finally {
    for (const c of conns) c.close();
  }
}

function present(v: unknown): boolean {
  if (v === undefined || v === null || v === '' || v === false) return false;
  if (Array.isArray(v)) return v.some(present);
  if (typeof v === 'object') return Object.values(v).some(present);
  return true;
}

/** Which node builds which platforms: a node declaring the platform, else one running it natively, else emulating it, else the first. */
async function assign(conns: Connection[], platforms: Platform[]): Promise<{ conn: Connection; platforms: Platform[] }[]> {
  const infos = await Promise.all(
    conns.map(async (c) => (c.node.platforms.length ? undefined : await unary<InfoResponse>(c, 'Info', {}).catch(() => undefined))),
  );
  const key = (p: Platform) => formatPlatform(normalizePlatform(p));
  const native = conns.map((c, i) => (c.node.platforms.length ? c.node.platforms : infos[i]?.platforms.slice(0, 1) ?? []).map((p) => key(parsePlatform(p))));
  const runnable = conns.map((c, i) => (infos[i]?.platforms ?? c.node.platforms).map((p) => key(parsePlatform(p))));
  const groups = new Map<number, Platform[]>();
  for (const p of platforms) {
    const k = key(p);
    let i = native.findIndex((list) => list.includes(k));
    if (i < 0) i = runnable.findIndex((list) => list.includes(k));
    if (i < 0) i = 0;
    groups.set(i, [...(groups.get(i) ?? []), p]);
  }
  return [...groups.entries()].map(([i, ps]) => ({ conn: conns[i]!, platforms: ps }));
}

/** Each node builds its platforms as an OCI archive; the client merges them into the outputs asked for. */
async function splitBuild(t: BuildTarget, req: BuildRequest, hooks: BuildHooks, plan: { conn: Connection; platforms: Platform[] }[]): Promise<TargetResult & { warnings: BuildWarning[] }> {
  for (const o of t.outputs) {
    if (o.type !== 'oci' && o.type !== 'local') throw new UserError(`a build split across builder nodes supports -o type=oci and type=local (not type=${o.type}${o.type === 'image' ? ': the image would be on several machines' : ''})`);
  }
  const tmp = mkdtempSync(join(tmpdir(), 'kiln-merge-'));
  try {
    const wantOci = t.outputs.some((o) => o.type === 'oci');
    const results = await Promise.all(
      plan.map(async ({ conn, platforms }, i) => {
        hooks.progress?.({ type: 'status', message: `building ${platforms.map(formatPlatform).join(', ')} on node ${conn.node.name}`, time: Date.now() });
        const outputs: OutputSpec[] = [];
        if (wantOci) outputs.push({ type: 'oci', dest: join(tmp, `node-${i}.tar`), names: [], attrs: {} });
        for (const o of t.outputs) {
          if (o.type !== 'local') continue;
          // One platform per node at most here; a multi-platform local export has a dir per platform.
          const sub = platforms.length === 1 ? join(o.dest, platformDirName(platforms[0]!)) : o.dest;
          outputs.push({ type: 'local', dest: sub, attrs: o.attrs });
        }
        const r = await remoteBuild(conn, inputOf(t, req, hooks, outputs, platforms));
        reportSync(hooks, r);
        return r;
      }),
    );
    // Merge the per-node layouts into one index, in the order the platforms were asked for.
    let digest: string | undefined;
    if (wantOci) {
      const merged = join(tmp, 'merged');
      const manifests = new Map<string, Descriptor>();
      for (let i = 0; i < plan.length; i++) {
        await extractTar(createReadStream(join(tmp, `node-${i}.tar`)), merged);
        const index = JSON.parse(readFileSync(join(merged, 'index.json'), 'utf8')) as ImageIndex;
        const root = index.manifests[0]!;
        const { annotations: _a, ...plain } = root;
        if (root.mediaType === OCI_INDEX) {
          const inner = JSON.parse(readFileSync(join(merged, 'blobs', 'sha256', root.digest.slice(7)), 'utf8')) as ImageIndex;
          for (const m of inner.manifests) manifests.set(formatPlatform(normalizePlatform(m.platform!)), m);
        } else manifests.set(formatPlatform(normalizePlatform(plan[i]!.platforms[0]!)), { ...plain, platform: normalizePlatform(plan[i]!.platforms[0]!) });
      }
      const ordered = t.platforms!.map((p) => manifests.get(formatPlatform(normalizePlatform(p)))!);
      const content = new ContentStore(merged);
      const bytes = serializeIndex({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: ordered });
      const root: Descriptor = { mediaType: OCI_INDEX, digest: content.putBytes(bytes), size: bytes.length };
      digest = root.digest;
      const blobs: Descriptor[] = [root];
      for (const m of ordered) {
        blobs.push(m);
        const man = JSON.parse(readFileSync(content.path(m.digest), 'utf8')) as { config: Descriptor; layers: Descriptor[] };
        blobs.push(man.config, ...man.layers);
      }
      for (const o of t.outputs) {
        if (o.type !== 'oci') continue;
        const oNames = o.names.map((n) => parseReference(n).toString());
        const entries = [
          { path: 'oci-layout', kind: 'file' as const, bytes: OCI_LAYOUT_FILE },
          { path: 'index.json', kind: 'file' as const, bytes: serializeIndex({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: layoutIndexEntries(root, oNames, t.sourceDateEpoch) }) },
          ...blobEntries(blobs),
        ];
        if (o.dest === '-') await writeArchiveTar(entries, content, process.stdout, t.sourceDateEpoch ?? 0);
        else {
          mkdirSync(dirname(resolve(o.dest)), { recursive: true });
          const out = createWriteStream(resolve(o.dest));
          await writeArchiveTar(entries, content, out, t.sourceDateEpoch ?? 0);
          if (!out.writableFinished) await finished(out);
        }
      }
    }
    return {
      name: t.name ?? '',
      exports: t.outputs.map((o) => ({ type: o.type, digest, dest: 'dest' in o ? o.dest : undefined, names: o.type === 'oci' && o.names.length ? o.names : undefined })),
      images: results.flatMap((r) => r.images.map((i) => ({ platform: parsePlatform(i.platform), config: JSON.parse(i.config_json), layers: [] }) as ExportImage)),
      warnings: results.flatMap((r) => r.warnings.map((w) => ({ target: t.name ?? '', line: w.line || undefined, message: w.message }))),
      explanations: [],
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
