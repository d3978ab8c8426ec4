// BuildKit's ops → kiln's build graph (solver/graph). Each LLB op becomes one kiln vertex with the same
// inputs; what kiln's ops cannot express (git/http sources, diff and build ops, file actions that are not
// one chain, a result taken from an exec mount other than the rootfs) ends the solve with one line naming
// the op. Paths stay as the client wrote them: kiln's file op and sandbox resolve every one of them
// inside the root they act on.
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { GraphBuilder } from '../../../solver/graph/builder.js';
import type { ChownOpt, ExecMount, FileAction, GraphPlatform, Op, VertexInput } from '../../../solver/graph/ops.js';
import { describeOp, LlbError, type DecodedDefinition } from './decode.js';
import type { PbChownOpt, PbExecOp, PbFileAction, PbOp, PbUserOpt } from './wire.js';

/** A local:// source: the client's dir that the session's file sync brings in, and the kiln name it gets. */
export interface LocalSource {
  /** The name in kiln's graph (`local://NAME`), one per dir and filter set. */
  name: string;
  /** The dir the client shares (buildctl --local NAME=DIR). */
  dirName: string;
  session?: string;
  sharedKeyHint?: string;
  includePatterns?: string[];
  excludePatterns?: string[];
  followPaths?: string[];
}

export interface Translation {
  definition: ReturnType<GraphBuilder['definition']>;
  output: VertexInput;
  /** The platform of the result (its image config's). */
  platform?: GraphPlatform;
  locals: LocalSource[];
  secretIds: string[];
  sshIds: string[];
  /** kiln vertex digest → BuildKit vertex digest, for progress. */
  progressDigest: Map<string, string>;
}

const MOUNT_TYPES = ['bind', 'secret', 'ssh', 'cache', 'tmpfs'] as const;
const SHARING = ['shared', 'private', 'locked'] as const;

function platformOf(op: PbOp): GraphPlatform | undefined {
  const p = op.platform;
  if (!p || !p.OS || !p.Architecture) return undefined;
  return { os: p.OS, architecture: p.Architecture, ...(p.Variant ? { variant: p.Variant } : {}) };
}

/** A path of a file action or mount: absolute below the root it acts on; NUL is never a path. */
function cleanPath(what: string, p: string): string {
  if (p.includes('\0')) throw new LlbError(`${what}: path ${JSON.stringify(p)} contains NUL`);
  return p.startsWith('/') ? p : `/${p}`;
}

/** An exec mount's dest in one spelling ("//", "/./" and "/.." are all the rootfs). */
function mountDest(what: string, dest: string): string {
  if (!dest) throw new LlbError(`${what}: a mount without a destination`);
  return posix.normalize(cleanPath(what, dest));
}

const isRootDest = (dest: string) => dest !== '' && !dest.includes('\0') && posix.normalize(dest.startsWith('/') ? dest : `/${dest}`) === '/';

function jsonList(what: string, raw: string | undefined): string[] | undefined {
  if (raw === undefined || raw === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new LlbError(`${what}: not a JSON list of strings`);
  }
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new LlbError(`${what}: not a JSON list of strings`);
  return v as string[];
}

function userOpt(what: string, u: PbUserOpt | null): { id?: number; name?: string } | undefined {
  if (!u || !u.user) return undefined;
  if (u.user === 'byID') return { id: u.byID ?? 0 };
  const name = u.byName?.name ?? '';
  if (!name) throw new LlbError(`${what}: an owner by name with no name`);
  return { name };
}

function chown(what: string, o: PbChownOpt | null): ChownOpt | undefined {
  if (!o) return undefined;
  const user = userOpt(what, o.user);
  const group = userOpt(what, o.group);
  return user || group ? { ...(user ? { user } : {}), ...(group ? { group } : {}) } : undefined;
}

/** BuildKit's file timestamps are unix nanoseconds, -1 for "not set"; kiln's are seconds. */
function seconds(ns: number): number | undefined {
  return ns === -1 ? undefined : Math.floor(ns / 1e9);
}

function execOp(what: string, e: PbExecOp, nInputs: number, locals: { secrets: Set<string>; ssh: Set<string> }): Op {
  const meta = e.meta;
  if (!meta || meta.args.length === 0) throw new LlbError(`${what}: no command (meta.args is empty)`);
  if (meta.extraHosts.length) throw new LlbError(`${what}: extra hosts are not supported by this builder`);
  if (meta.ulimit.length) throw new LlbError(`${what}: ulimits are not supported by this builder`);
  if (meta.cgroupParent) throw new LlbError(`${what}: cgroupParent is not supported by this builder`);
  if (e.cdiDevices.length) throw new LlbError(`${what}: CDI devices are not supported by this builder`);
  const mounts: ExecMount[] = e.mounts.map((m, i) => {
    const mw = `${what}: mount ${i} (${JSON.stringify(m.dest)})`;
    const type = MOUNT_TYPES[m.mountType];
    if (!type) throw new LlbError(`${mw}: unknown mount type ${m.mountType}`);
    if (!Number.isInteger(m.input) || m.input < -1 || m.input >= nInputs) throw new LlbError(`${mw}: input ${m.input} is not one of the op's ${nInputs} inputs`);
    if (!Number.isInteger(m.output) || m.output < -1) throw new LlbError(`${mw}: invalid output ${m.output}`);
    const dest = mountDest(mw, m.dest);
    // kiln keeps an exec's rootfs as its one result (a reference to another mount's output was refused).
    const mount: ExecMount = { input: m.input, dest, output: dest === '/' ? 0 : -1, type };
    if (m.selector && m.selector !== '/') mount.selector = cleanPath(mw, m.selector);
    if (m.readonly) mount.readonly = true;
    switch (type) {
      case 'cache': {
        const sharing = SHARING[m.cacheOpt?.sharing ?? 0];
        if (!sharing) throw new LlbError(`${mw}: unknown cache sharing ${m.cacheOpt?.sharing}`);
        mount.cache = { id: m.cacheOpt?.ID || mount.dest, sharing };
        break;
      }
      case 'tmpfs':
        mount.tmpfs = m.TmpfsOpt?.size ? { size: m.TmpfsOpt.size } : {};
        break;
      case 'secret': {
        const s = m.secretOpt;
        if (!s?.ID) throw new LlbError(`${mw}: a secret mount without a secret id`);
        locals.secrets.add(s.ID);
        mount.secret = { id: s.ID, uid: s.uid, gid: s.gid, mode: s.mode || 0o400, optional: s.optional };
        break;
      }
      case 'ssh': {
        const s = m.SSHOpt;
        const id = s?.ID || 'default';
        locals.ssh.add(id);
        mount.ssh = { id, uid: s?.uid ?? 0, gid: s?.gid ?? 0, mode: s?.mode || 0o600, optional: s?.optional ?? false };
        break;
      }
    }
    return mount;
  });
  const roots = mounts.filter((m) => m.dest === '/');
  if (roots.length !== 1) throw new LlbError(`${what}: ${roots.length ? 'more than one' : 'no'} rootfs mount (dest "/")`);
  if (roots[0]!.type !== 'bind') throw new LlbError(`${what}: the rootfs mount must be a bind mount, not ${roots[0]!.type}`);
  for (const s of e.secretenv) {
    if (!s.ID || !s.name) throw new LlbError(`${what}: a secret env without an id or a name`);
    locals.secrets.add(s.ID);
    mounts.push({ input: -1, dest: '', output: -1, type: 'secret', secret: { id: s.ID, uid: 0, gid: 0, mode: 0o400, optional: s.optional, env: s.name } });
  }
  const network = e.network === 0 ? 'default' : e.network === 1 ? 'host' : e.network === 2 ? 'none' : undefined;
  if (!network) throw new LlbError(`${what}: unknown network mode ${e.network}`);
  const security = e.security === 0 ? 'sandbox' : e.security === 1 ? 'insecure' : undefined;
  if (!security) throw new LlbError(`${what}: unknown security mode ${e.security}`);
  const proxy = Object.fromEntries(Object.entries(meta.proxy_env ?? {}).filter(([, v]) => v));
  return {
    kind: 'exec',
    args: meta.args,
    env: meta.env,
    cwd: meta.cwd || '/',
    user: meta.user,
    ...(meta.hostname ? { hostname: meta.hostname } : {}),
    mounts,
    network,
    security,
    ...(meta.validExitCodes.length ? { validExitCodes: meta.validExitCodes } : {}),
    ...(Object.keys(proxy).length ? { proxyEnv: proxy } : {}),
  };
}

/**
 * kiln's file op is one chain of actions on one base: the first action acts on an input (or scratch),
 * each next one on the result of the one before, and the last one is the op's only result. That is the
 * shape BuildKit's client library gives a chain like Mkdir(…).Mkfile(…).Copy(…).
 */
function fileOp(what: string, actions: PbFileAction[], nInputs: number): Op {
  if (actions.length === 0) throw new LlbError(`${what}: no actions`);
  let base = -1;
  const out: FileAction[] = actions.map((a, i) => {
    const aw = `${what}: action ${i}${a.action ? ` (${a.action})` : ''}`;
    if (i === 0) {
      if (!Number.isInteger(a.input) || a.input < -1 || a.input >= nInputs) throw new LlbError(`${aw}: input ${a.input} is not one of the op's ${nInputs} inputs`);
      base = a.input;
    } else if (a.input !== nInputs + i - 1) {
      throw new LlbError(`${aw}: acts on input ${a.input}, not on the action before it; file ops other than one chain of actions are not supported by this builder`);
    }
    const wantOutput = i === actions.length - 1 ? 0 : -1;
    if (a.output !== wantOutput) throw new LlbError(`${aw}: output ${a.output}; only the last action of a file op may be (and is) its result on this builder`);
    switch (a.action) {
      case 'copy': {
        const c = a.copy!;
        if (!Number.isInteger(a.secondaryInput) || a.secondaryInput < -1 || a.secondaryInput >= nInputs) {
          throw new LlbError(`${aw}: copies from input ${a.secondaryInput}, which is not one of the op's ${nInputs} inputs`);
        }
        return {
          type: 'copy',
          src: a.secondaryInput,
          srcPath: cleanPath(aw, c.src),
          destPath: cleanPath(aw, c.dest),
          ...optional({
            owner: chown(aw, c.owner),
            mode: c.mode === -1 || c.mode === 0 ? undefined : c.mode,
            followSymlink: c.followSymlink || undefined,
            dirCopyContents: c.dirCopyContents || undefined,
            attemptUnpackDockerCompatibility: c.attemptUnpackDockerCompatibility || undefined,
            createDestPath: c.createDestPath || undefined,
            allowWildcard: c.allowWildcard || undefined,
            allowEmptyWildcard: c.allowEmptyWildcard || undefined,
            includePatterns: c.include_patterns.length ? c.include_patterns : undefined,
            excludePatterns: c.exclude_patterns.length ? c.exclude_patterns : undefined,
            alwaysReplaceExistingDestPaths: c.alwaysReplaceExistingDestPaths || undefined,
            timestamp: seconds(c.timestamp),
          }),
        };
      }
      case 'mkfile': {
        const m = a.mkfile!;
        return { type: 'mkfile', path: cleanPath(aw, m.path), mode: m.mode, data: Buffer.from(m.data ?? []).toString('base64'), ...optional({ owner: chown(aw, m.owner), timestamp: seconds(m.timestamp) }) };
      }
      case 'mkdir': {
        const m = a.mkdir!;
        return { type: 'mkdir', path: cleanPath(aw, m.path), mode: m.mode, makeParents: m.makeParents, ...optional({ owner: chown(aw, m.owner), timestamp: seconds(m.timestamp) }) };
      }
      case 'rm': {
        const r = a.rm!;
        return { type: 'rm', path: cleanPath(aw, r.path), allowNotFound: r.allowNotFound, allowWildcard: r.allowWildcard };
      }
      case 'symlink':
        throw new LlbError(`${aw}: symlink actions are not supported by this builder`);
      default:
        throw new LlbError(`${aw}: an action with no kind`);
    }
  });
  return { kind: 'file', base, actions: out };
}

function optional<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function sourceOp(what: string, src: { identifier: string; attrs: Record<string, string> }, locals: Map<string, LocalSource>): Op {
  const id = src.identifier;
  if (id.startsWith('docker-image://')) {
    if (id.length === 'docker-image://'.length) throw new LlbError(`${what}: no image reference`);
    return { kind: 'source', identifier: id };
  }
  if (id.startsWith('local://')) {
    const dirName = id.slice('local://'.length);
    if (!dirName) throw new LlbError(`${what}: a local source without a name`);
    const a = src.attrs ?? {};
    const single = a['local.includepattern'];
    const include = jsonList(`${what}: local.includepatterns`, a['local.includepatterns']) ?? (single ? [single] : undefined);
    const exclude = jsonList(`${what}: local.excludepatterns`, a['local.excludepatterns']);
    const follow = jsonList(`${what}: local.followpaths`, a['local.followpaths']);
    const session = a['local.session'] || undefined;
    // One kiln local name per dir and filter set: the same dir with other filters is another sync.
    const key = createHash('sha256').update(JSON.stringify([dirName, session ?? '', include ?? [], exclude ?? [], follow ?? []])).digest('hex').slice(0, 16);
    const name = `llb-${dirName.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40)}-${key}`;
    if (!locals.has(name)) {
      locals.set(name, { name, dirName, session, sharedKeyHint: a['local.sharedkeyhint'] || undefined, includePatterns: include, excludePatterns: exclude, followPaths: follow });
    }
    return { kind: 'source', identifier: `local://${name}` };
  }
  const scheme = /^([a-z0-9+.-]+):\/\//i.exec(id)?.[1] ?? id.slice(0, 20);
  throw new LlbError(`${what}: ${scheme} sources are not supported by this builder (docker-image:// and local:// are)`);
}

export function translateDefinition(d: DecodedDefinition): Translation {
  const g = new GraphBuilder();
  const refOf = new Map<string, VertexInput>();
  const progressDigest = new Map<string, string>();
  const locals = new Map<string, LocalSource>();
  const session = { secrets: new Set<string>(), ssh: new Set<string>() };
  // What each op's users take from it: kiln has one result per vertex (an exec's is its rootfs).
  for (const digest of d.order) {
    for (const input of d.ops.get(digest)!.inputs) {
      const from = d.ops.get(input.digest)!;
      if (from.op === 'exec') {
        const root = from.exec!.mounts.find((m) => isRootDest(m.dest));
        if (!root || root.output !== input.index) {
          throw new LlbError(`${describeOp(input.digest, from)}: its output ${input.index} is not the rootfs; results of other exec mounts are not supported by this builder`);
        }
      }
    }
  }
  if (d.ops.get(d.result.digest)!.op === 'exec') {
    const from = d.ops.get(d.result.digest)!;
    const root = from.exec!.mounts.find((m) => isRootDest(m.dest));
    if (!root || root.output !== d.result.index) throw new LlbError(`${describeOp(d.result.digest, from)}: the result is not its rootfs; results of other exec mounts are not supported by this builder`);
  }
  // A local source is read in place (a dir, not layers). Where LLB uses it as a filesystem state (an
  // exec's rootfs, a file op's base, a merge input, the result), kiln first copies it into a layer.
  const layerOf = new Map<string, VertexInput>();
  const asState = (llbDigest: string): VertexInput => {
    const ref = refOf.get(llbDigest)!;
    const op = d.ops.get(llbDigest)!;
    if (op.op !== 'source' || !op.source!.identifier.startsWith('local://')) return ref;
    let layer = layerOf.get(llbDigest);
    if (!layer) {
      layer = g.add({ kind: 'file', base: -1, actions: [{ type: 'copy', src: 0, srcPath: '/', destPath: '/', dirCopyContents: true, createDestPath: true }] }, [ref], {
        platform: platformOf(op),
        meta: { description: `[internal] ${op.source!.identifier} as a filesystem state` },
      });
      layerOf.set(llbDigest, layer);
    }
    return layer;
  };
  for (const digest of d.order) {
    const op = d.ops.get(digest)!;
    const what = describeOp(digest, op);
    const stateInputs = new Set<number>();
    if (op.op === 'exec') op.exec!.mounts.forEach((m) => isRootDest(m.dest) && m.input >= 0 && stateInputs.add(m.input));
    if (op.op === 'file' && op.file!.actions[0] && op.file!.actions[0].input >= 0) stateInputs.add(op.file!.actions[0].input);
    if (op.op === 'merge') op.merge!.inputs.forEach((m) => stateInputs.add(m.input));
    const inputs = op.inputs.map((i, n) => (stateInputs.has(n) ? asState(i.digest) : refOf.get(i.digest)!));
    let kop: Op;
    let kinputs = inputs;
    switch (op.op) {
      case 'source':
        if (op.inputs.length) throw new LlbError(`${what}: a source op has no inputs`);
        kop = sourceOp(what, op.source!, locals);
        break;
      case 'exec':
        kop = execOp(what, op.exec!, inputs.length, session);
        break;
      case 'file':
        kop = fileOp(what, op.file!.actions, inputs.length);
        break;
      case 'merge': {
        const m = op.merge!.inputs;
        if (m.length === 0) throw new LlbError(`${what}: a merge of nothing`);
        kinputs = m.map((x, i) => {
          if (!Number.isInteger(x.input) || x.input < 0 || x.input >= inputs.length) throw new LlbError(`${what}: merge input ${i} names input ${x.input}, not one of the op's ${inputs.length}`);
          return inputs[x.input]!;
        });
        kop = { kind: 'merge' };
        break;
      }
      case 'diff':
      case 'build':
        throw new LlbError(`${what}: ${op.op} ops are not supported by this builder`);
      default:
        throw new LlbError(`${what}: an op with no kind before the terminal op`);
    }
    const md = d.metadata[digest];
    // BuildKit names a step by its custom name, else by what it is; a local source by the client's name for it.
    const description = md?.description?.['llb.customname'] || (op.op === 'source' && kop.kind === 'source' && kop.identifier !== op.source!.identifier ? op.source!.identifier : undefined);
    const ref = g.add(kop, kinputs, { platform: platformOf(op), meta: { ...(description ? { description } : {}), ...(md?.ignore_cache ? { ignoreCache: true } : {}) } });
    refOf.set(digest, ref);
    if (!progressDigest.has(ref.digest)) progressDigest.set(ref.digest, digest);
  }
  const output = asState(d.result.digest);
  return {
    definition: g.definition([output]),
    output,
    platform: platformOf(d.ops.get(d.result.digest)!),
    locals: [...locals.values()],
    secretIds: [...session.secrets],
    sshIds: [...session.ssh],
    progressDigest,
  };
}
