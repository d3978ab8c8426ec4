// file ops: COPY/ADD (copy), WORKDIR (mkdir), heredoc files (mkfile) and rm, applied in order into one
// new layer on top of the base state. The key covers the op and, for each copy source, a digest of
// exactly the files it selects.
import { createHash } from 'node:crypto';
import { writeFileSync, chownSync, chmodSync, utimesSync, existsSync, mkdtempSync, rmSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import type { NewLayer } from '../../../cache/snapshots.js';
import type { FileOp, CopyAction } from '../../graph/ops.js';
import { canonicalJSON } from '../../graph/canonical.js';
import type { CacheMapDep, OpContext, OpImpl } from '../../op.js';
import { SolveError } from '../../op.js';
import { layersOf, type Ref } from '../../refs.js';
import { FsOps } from '../../../cache/layers/fsops.js';
import { FsView } from './view.js';
import { LayerTarget } from './target.js';
import { resolveOwner } from './owner.js';
import { copyAction } from './copy.js';
import { expandWildcard, hasWildcard } from './glob.js';
import { selectionDigest, type Selection } from './checksum.js';
import { Donors } from './donors.js';
import { sameLayerTree } from './same-tree.js';
import { rememberLayerSize } from '../../../cache/gc.js';
import { today, type SelectionMemo } from '../../../cache/keyspace.js';
import { traced } from '../../step-trace.js';
import { vertexLabel } from '../../graph/print.js';

/**
 * COPY selection digests of a build context, remembered with a fingerprint of the whole context's
 * names and lstat (taken before the walk, by the fsops helper in one request): while the fingerprint is
 * unchanged, so is every file's stat, so the stat index would give the same hashes — the walk is
 * skipped. A context with an entry changed in the last two seconds is not trusted (the stat index's
 * racy rule), and small contexts skip the fingerprint (walking them costs less than starting the helper).
 */
const contextPrints = new WeakMap<object, Map<string, Promise<{ fingerprint: string; entries: number } | undefined>>>();
const SMALL_CONTEXT = 500;

async function contextPrint(ctx: OpContext, dir: string): Promise<{ fingerprint: string; entries: number } | undefined> {
  let byDir = contextPrints.get(ctx.env);
  if (!byDir) contextPrints.set(ctx.env, (byDir = new Map()));
  let p = byDir.get(dir);
  if (!p) {
    p = (async () => {
      const fsops = FsOps.start();
      try {
        const now = Date.now();
        const r = await fsops.treeFingerprint(dir);
        return r.newestMs > now - 2000 ? undefined : { fingerprint: r.fingerprint, entries: r.entries };
      } catch {
        return undefined;
      } finally {
        await fsops.close();
      }
    })();
    byDir.set(dir, p);
  }
  return p;
}

async function selectionMemo(
  ctx: OpContext,
  dir: string,
  excludes: string[],
  sels: unknown[],
): Promise<{ hit?: SelectionMemo; store: (r: { digest: string; files: Record<string, string> }) => Promise<void> } | undefined> {
  const table = ctx.env.state.keys.selections;
  const id = createHash('sha256').update(canonicalJSON({ dir, excludes, sels })).digest('hex');
  const known = await table.get(id);
  if (known && known.entries < SMALL_CONTEXT) return undefined;
  const print = await contextPrint(ctx, dir);
  if (!print) return undefined;
  if (known && known.fingerprint === print.fingerprint && print.entries >= SMALL_CONTEXT) {
    // Its last use, by day, is what GC ages it by.
    return { hit: known, store: async () => (known.used === today() ? undefined : table.put(id, { ...known, used: today() })) };
  }
  return { store: (r) => table.put(id, { ...r, dir, used: today(), fingerprint: print.fingerprint, entries: print.entries }) };
}

/** Content hashes of context files computed while keying a vertex, reused when it runs. */
const keyedHashes = new WeakMap<OpContext, Map<string, string>>();

const FS_TOPDIR_FL = 0x00020000;
const spreadDirs = new Set<string>();

/**
 * A new layer dir, in a parent marked FS_TOPDIR_FL (once per process): ext4 then places each layer in a
 * block group of its own choosing, as for top-level dirs, instead of next to the layers deleted last.
 * On ext4 without a journal, creating a file in a group full of recently deleted inodes costs ~0.3 ms
 * (the allocator skips each of them), so a 20,000-file COPY after a prune took seconds longer.
 */
async function newSpreadLayer(state: OpContext['env']['state'], fsops: FsOps): Promise<NewLayer> {
  const layer = state.snapshots.newLayer({ workdir: false });
  const parent = dirname(layer.dir);
  if (spreadDirs.has(parent)) return layer;
  spreadDirs.add(parent);
  const flagged = await fsops.addInodeFlags(parent, FS_TOPDIR_FL).then(
    () => true,
    () => false,
  );
  if (!flagged) return layer;
  layer.discard();
  return state.snapshots.newLayer({ workdir: false });
}

function viewOf(ref: Ref, fsops: FsOps): FsView {
  if (ref.kind === 'dir') return FsView.ofDir(ref.path, ref.excludes);
  return FsView.ofLayers(ref.layers.map((l) => l.dir).reverse(), fsops);
}

/**
 * The content key of what a step reads from input `i`: a digest of exactly the selected files (type,
 * mode, owner, link target, content), as COPY keys its sources. Exec mounts use it too (exec.ts).
 */
export async function selectionsContentDigest(ctx: OpContext, i: number, ref: Ref, sels: Selection[]): Promise<string> {
  // An unchanged build context: the digest of the last build, without walking it again.
  const memo = ref.kind === 'dir' && ctx.env.fileHasher ? await selectionMemo(ctx, ref.path, ref.excludes, sels) : undefined;
  if (memo?.hit) {
    ctx.notes[`files:${i}`] = memo.hit.files;
    return memo.hit.digest;
  }
  // A build context is read with plain fs calls: no helper process to start.
  const fsops = ref.kind === 'dir' ? undefined : FsOps.start();
  try {
    const view = ref.kind === 'dir' ? FsView.ofDir(ref.path, ref.excludes) : viewOf(ref, fsops!);
    const parts = [];
    const files: Record<string, string> = {};
    const hashes = keyedHashes.get(ctx) ?? new Map<string, string>();
    keyedHashes.set(ctx, hashes);
    const hasher = ctx.env.fileHasher;
    const remembering = hasher && ((real: string, st?: Stats) => {
      const h = hasher(real, st);
      hashes.set(real, h);
      return h;
    });
    for (const sel of sels) parts.push(await selectionDigest(view, sel, remembering, files));
    ctx.notes[`files:${i}`] = files;
    const digest = `sha256:${createHash('sha256').update(parts.join(',')).digest('hex')}`;
    await memo?.store({ digest, files });
    return digest;
  } finally {
    await fsops?.close();
  }
}

export const fileOp: OpImpl<FileOp> = {
  async cacheMap(op, ctx) {
    const deps: CacheMapDep[] = ctx.vertex.inputs.map(() => ({}));
    const copies = op.actions.filter((a): a is CopyAction => a.type === 'copy' && a.src >= 0);
    for (let i = 0; i < deps.length; i++) {
      const uses = copies.filter((a) => a.src === i);
      if (uses.length === 0) continue;
      const sels = uses.map((a) => ({ path: a.srcPath, allowWildcard: a.allowWildcard, followSymlink: a.followSymlink, includePatterns: a.includePatterns, excludePatterns: a.excludePatterns }));
      // A source that is not also the base enters the key by the files read alone (as in BuildKit): a
      // change elsewhere in that stage leaves the COPY cached.
      deps[i] = { contentDigest: (ref) => selectionsContentDigest(ctx, i, ref, sels), contentOnly: i !== op.base };
    }
    return { digest: `sha256:${createHash('sha256').update(canonicalJSON({ file: op })).digest('hex')}`, deps };
  },

  async exec(op, inputs, ctx) {
    const trace = <T>(phase: string, fn: () => Promise<T> | T) => traced(ctx.vertex.digest, vertexLabel(ctx.vertex), phase, fn);
    const base = op.base >= 0 ? layersOf(inputs[op.base]!, 'file op base') : [];
    const { state, fileHasher } = ctx.env;
    // COPYs from the build context link unchanged files from the layer this op made last time.
    const fromContext =
      fileHasher !== undefined &&
      op.actions.length > 0 &&
      op.actions.every((a) => a.type === 'copy' && a.src >= 0 && inputs[a.src]?.kind === 'dir' && !a.attemptUnpackDockerCompatibility);
    const opDigest = fromContext ? createHash('sha256').update(canonicalJSON({ file: op })).digest('hex') : '';
    const keyed = keyedHashes.get(ctx);
    keyedHashes.delete(ctx);
    const hasher = (real: string, st?: Stats) => keyed?.get(real) ?? fileHasher!(real, st);
    const donors = fromContext ? await trace('donors', () => Donors.load(state.keys.donors, opDigest, (id) => state.snapshots.builtLayerDir(id), hasher)) : undefined;
    const fsops = FsOps.start();
    let layer: NewLayer;
    try {
      layer = await trace('newlayer', () => newSpreadLayer(state, fsops));
    } catch (err) {
      await fsops.close();
      throw err;
    }
    try {
      const target = new LayerTarget(layer.dir, base.map((l) => l.dir).reverse(), fsops);
      // Directory mtimes at or after this are the copy's own (the kernel's clock is coarse: a margin).
      const started = Date.now() - 50;
      await trace('copy', async () => {
        for (const action of op.actions) {
          ctx.signal.throwIfAborted();
          await applyAction(action, inputs, target, fsops, ctx, donors);
          target.merged.invalidate();
        }
      });
      // Everything linked from the layer this op made last time, and nothing else differs: that layer is
      // this one (it already has its diffID and blob), as if the step had been cached.
      const donor = donors?.layer;
      if (donor && donors.copied === 0 && donors.linked > 0 && (await sameLayerTree(layer.dir, donor.dir, started, fsops))) {
        layer.discard();
        return { kind: 'layers', layers: [...base, { dir: donor.dir, id: donor.id, created: donor.created ?? new Date().toISOString() }] };
      }
      const dir = await trace('commit', () => layer.commit());
      const created = new Date().toISOString();
      if (donors) {
        await trace('donors', async () => {
          await donors.save(state.keys.donors, opDigest, { id: layer.id, dir, created });
          await rememberLayerSize(state, dir, donors.bytes);
        });
      }
      return { kind: 'layers', layers: [...base, { dir, id: layer.id, created }] };
    } catch (err) {
      layer.discard();
      if (err instanceof SolveError || (err as { userFacing?: boolean }).userFacing) throw err;
      throw new SolveError((err as Error).message);
    } finally {
      await trace('helper-close', () => fsops.close());
    }
  },
};

let emptyDir: string | undefined;
/** An empty dir (0755) standing for scratch's root; made once per process, never written to. */
function emptyRoot(): string {
  if (!emptyDir || !existsSync(emptyDir)) {
    emptyDir = mkdtempSync(join(tmpdir(), 'kiln-scratch-'));
    chmodSync(emptyDir, 0o755);
    process.once('exit', () => rmSync(emptyDir!, { recursive: true, force: true }));
  }
  return emptyDir;
}

async function applyAction(action: FileOp['actions'][number], inputs: Ref[], target: LayerTarget, fsops: FsOps, ctx: OpContext, donors?: Donors): Promise<void> {
  const warn = (m: string) => ctx.progress.warn(m);
  switch (action.type) {
    case 'copy': {
      const from = action.src >= 0 ? inputs[action.src]! : undefined;
      // Scratch (an empty stage, docker-image://scratch) still has its root dir: `COPY --from=empty / /x/` works.
      const src = from && !(from.kind === 'layers' && from.layers.length === 0) ? viewOf(from, fsops) : FsView.ofDir(emptyRoot(), []);
      // Without --chown, files from the build context become 0:0 (BuildKit's client resets them), files
      // from an image or stage keep their owner.
      // An archive ADD unpacks keeps its entries' owners unless --chown says otherwise.
      const explicit = await resolveOwner(action.owner, target.merged, warn);
      const owner = explicit ?? (src.isPlainDir ? { uid: 0, gid: 0 } : undefined);
      await copyAction(src, target, action, owner, donors, explicit ?? null);
      return;
    }
    case 'mkdir': {
      const owner = await resolveOwner(action.owner, target.merged, warn);
      const path = await target.merged.resolve(action.path, true);
      const mtime = action.timestamp !== undefined ? new Date(action.timestamp * 1000) : undefined;
      const existing = await target.merged.lookup(path);
      if (existing) {
        if (!existing.stat.isDirectory()) throw new SolveError(`mkdir ${action.path}: not a directory`);
        // BuildKit's mkdir -p of an existing dir changes nothing, but WORKDIR still makes a layer entry.
        await target.mkdirAll(path);
        return;
      }
      if (!action.makeParents) {
        const parent = await target.merged.lookup(posix.dirname(posix.join('/', path)));
        if (!parent) throw new SolveError(`mkdir ${action.path}: no such file or directory`);
      }
      await target.mkdirAll(path, action.mode & 0o777, owner, mtime);
      return;
    }
    case 'mkfile': {
      const owner = await resolveOwner(action.owner, target.merged, warn);
      const path = await target.merged.resolve(action.path, false);
      await target.mkdirAll(posix.dirname(posix.join('/', path)));
      target.clear(path);
      const out = target.real(path);
      writeFileSync(out, Buffer.from(action.data, 'base64'));
      if (owner) chownSync(out, owner.uid, owner.gid);
      chmodSync(out, action.mode & 0o7777);
      if (action.timestamp !== undefined) {
        const t = new Date(action.timestamp * 1000);
        utimesSync(out, t, t);
      }
      return;
    }
    case 'rm': {
      const paths = action.allowWildcard && hasWildcard(action.path) ? await expandWildcard(target.merged, action.path) : [action.path];
      for (const p of paths) {
        const resolved = await target.merged.resolve(p, false);
        const here = await target.merged.lookup(resolved);
        if (!here) {
          if (action.allowNotFound) continue;
          throw new SolveError(`rm ${action.path}: no such file or directory`);
        }
        // A whiteout is needed only when the base (not this layer) shows something at the path.
        await target.remove(resolved, (await target.base.lookup(resolved)) !== undefined);
      }
      return;
    }
  }
}
