// `kiln build --explain`: for every step that was not served from the cache, why — compared with the
// last build of the same Dockerfile, target and platform: the instruction changed, a build arg or env
// changed, the base image moved, a copied file changed (named), or an earlier step it builds on changed.
import { createHash } from 'node:crypto';
import { lastBuildTable, type KeyValueDB } from '../../cache/keyspace.js';
import type { Definition, Op } from '../../solver/graph/ops.js';
import type { KeyParts } from '../../solver/solver.js';
import { vertexLabel } from '../../solver/graph/print.js';

export interface VertexRecord {
  digest: string;
  name: string;
  key: string;
  op: Op;
  inputs: string[];
  depKeys: string[];
  files: (Record<string, string> | null | undefined)[];
}

export interface BuildRecord {
  created: string;
  vertices: VertexRecord[];
}

export interface Explanation {
  digest: string;
  name: string;
  reason: string;
}

/** The id of a build's record (in cache/keyspace.ts's lastbuild/ table). */
export function buildRecordKey(parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex');
}

export function makeRecord(def: Definition, keyParts: Map<string, KeyParts>): BuildRecord {
  const vertices: VertexRecord[] = [];
  for (const v of def.vertices) {
    const kp = keyParts.get(v.digest);
    if (!kp) continue;
    vertices.push({
      digest: v.digest,
      name: vertexLabel(v),
      key: kp.key,
      op: v.op,
      inputs: v.inputs.map((i) => i.digest),
      depKeys: kp.deps.map((d) => `${d.key}|${d.content ?? ''}`),
      files: v.inputs.map((_, i) => kp.notes[`files:${i}`] as Record<string, string> | undefined),
    });
  }
  return { created: new Date().toISOString(), vertices };
}

export async function loadRecord(db: KeyValueDB, key: string): Promise<BuildRecord | undefined> {
  return (await lastBuildTable(db).get(key)) as BuildRecord | undefined;
}

export async function saveRecord(db: KeyValueDB, key: string, record: BuildRecord): Promise<void> {
  await lastBuildTable(db).put(key, record);
}

/** `[stage 2/5] RUN x` → `stage 2/5`: a step's place, which survives edits of its text. */
function position(name: string): string | undefined {
  return /^\[([^\]]* )?\d+\/\d+\]/.exec(name)?.[0];
}

function diffEnv(before: string[], after: string[]): string[] {
  const map = (l: string[]) => new Map(l.map((e) => [e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')), e]));
  const a = map(before);
  const b = map(after);
  const out: string[] = [];
  for (const [k, v] of b) if (a.get(k) !== v) out.push(a.has(k) ? `${a.get(k)} → ${v}` : `${v} (new)`);
  for (const [k, v] of a) if (!b.has(k)) out.push(`${v} (removed)`);
  return out;
}

function diffFiles(before: Record<string, string> | null | undefined, after: Record<string, string> | null | undefined): string[] {
  before ??= {};
  after ??= {};
  const out: string[] = [];
  for (const [p, h] of Object.entries(after)) if (before[p] !== h) out.push(before[p] ? `${p} changed` : `${p} added`);
  for (const p of Object.keys(before)) if (!(p in after)) out.push(`${p} removed`);
  return out.sort();
}

function list(items: string[], max = 5): string {
  return items.slice(0, max).join(', ') + (items.length > max ? ` (+${items.length - max} more)` : '');
}

export function explainMisses(prev: BuildRecord | undefined, cur: BuildRecord, executed: Set<string>): Explanation[] {
  const byDigest = new Map(cur.vertices.map((v) => [v.digest, v]));
  const out: Explanation[] = [];
  for (const v of cur.vertices) {
    // Local contexts are read afresh by every build; what matters is whether the files a COPY read changed.
    if (!executed.has(v.digest) || (v.op.kind === 'source' && v.op.identifier.startsWith('local://'))) continue;
    const say = (reason: string) => out.push({ digest: v.digest, name: v.name, reason });
    if (!prev) {
      say('no earlier build of this Dockerfile and target to compare with');
      continue;
    }
    const pos = position(v.name);
    const old = prev.vertices.find((p) => p.name === v.name) ?? (pos ? prev.vertices.find((p) => position(p.name) === pos) : undefined);
    if (!old) {
      say('a new step (no matching step in the last build)');
      continue;
    }
    if (old.key === v.key) {
      say('its cache record is gone (pruned), so it ran again');
      continue;
    }
    const reasons: string[] = [];
    if (old.op.kind === 'source' && v.op.kind === 'source' && old.op.identifier !== v.op.identifier) {
      reasons.push(`base image changed: ${old.op.identifier} → ${v.op.identifier}`);
    } else if (old.op.kind === 'exec' && v.op.kind === 'exec') {
      // The command as written (unexpanded) tells an edit from a changed build arg.
      if (JSON.stringify(old.op.args) !== JSON.stringify(v.op.args)) reasons.push(`instruction changed: "${old.name}" → "${v.name}"`);
      const env = diffEnv(old.op.env, v.op.env);
      if (env.length) reasons.push(`build arg or env changed: ${list(env)}`);
      const rest = (op: Op) => JSON.stringify({ ...op, args: [], env: [] });
      if (rest(old.op) !== rest(v.op)) reasons.push('RUN options changed (mounts, network, user or workdir)');
    } else if (old.name !== v.name) {
      reasons.push(`instruction changed: "${old.name}" → "${v.name}"`);
    } else if (JSON.stringify(old.op) !== JSON.stringify(v.op)) {
      reasons.push('its options changed');
    }
    v.depKeys.forEach((k, i) => {
      if (old.depKeys[i] === k) return;
      // A digest reused from the cache (not re-read) leaves no file list to compare: say which step changed.
      const files = old.files[i] !== undefined && v.files[i] !== undefined ? diffFiles(old.files[i], v.files[i]) : [];
      if (files.length) reasons.push(`files changed: ${list(files)}`);
      else if (old.depKeys[i] !== undefined) {
        const input = byDigest.get(v.inputs[i]!);
        reasons.push(`it builds on a step that changed: ${input?.name ?? v.inputs[i]}`);
      }
    });
    say(reasons.length ? reasons.join('; ') : 'its key changed');
  }
  return out;
}
