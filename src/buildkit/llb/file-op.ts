// LLB file ops → kiln file ops: mkdir, mkfile, rm and copy actions with owners, modes and timestamps.
// BuildKit's timestamps are unix nanoseconds (-1: not set), kiln's seconds; mkfile data travels base64.
import type { ChownOpt, FileAction, Op } from '../../../solver/graph/ops.js';
import { LlbError } from './decode.js';
import { cleanPath } from './paths.js';
import type { PbChownOpt, PbFileAction, PbUserOpt } from './wire.js';

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


/**
 * kiln's file op is one chain of actions on one base: the first action acts on an input (or scratch),
 * each next one on the result of the one before, and the last one is the op's only result. That is the
 * shape BuildKit's client library gives a chain like Mkdir(…).Mkfile(…).Copy(…).
 */
export function fileOp(what: string, actions: PbFileAction[], nInputs: number): Op {
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
