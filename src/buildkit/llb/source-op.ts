// LLB source ops → kiln sources: docker-image:// as it is; local://NAME becomes a kiln local source whose
// dir the client's session fills (solve.ts). Other schemes are refused in one line.
import { createHash } from 'node:crypto';
import type { Op } from '../../../solver/graph/ops.js';
import { parseReference } from '../../../base/oci/reference.js';
import { LlbError } from './decode.js';

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

export function sourceOp(what: string, src: { identifier: string; attrs: Record<string, string> }, locals: Map<string, LocalSource>): Op {
  const id = src.identifier;
  if (id.startsWith('docker-image://')) {
    try {
      // Checked here so a bad reference names its op; kiln's image source keys and pulls it.
      return { kind: 'source', identifier: `docker-image://${parseReference(id.slice('docker-image://'.length)).toString()}` };
    } catch (err) {
      throw new LlbError(`${what}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (id.startsWith('local://')) {
    const dirName = id.slice('local://'.length);
    if (!dirName || /[\x00-\x1f\x7f]/.test(dirName)) throw new LlbError(`${what}: a local source needs a name without control characters`);
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
  const scheme = /^([a-z0-9+.-]+):\/\//i.exec(id)?.[1];
  throw new LlbError(`${what}: ${scheme ? `${scheme} sources are` : 'a source without a scheme is'} not supported by this builder (docker-image:// and local:// are)`);
}
