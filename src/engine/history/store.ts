// Build history on disk: <state>/history/<id>.json (the record, rewritten when the build ends) and
// <id>.events.jsonl (progress events as they happen, size-capped), so a build in progress can be watched
// from another process, and `kiln history` needs no lock on the state. Old records are removed by count
// and age.
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ProgressEvent } from '../../../solver/progress.js';
import { UserError } from '../../../base/errors.js';
import { parseDuration } from '../../../base/units.js';

export type VertexState = 'ran' | 'cached' | 'failed' | 'canceled';

export interface HistoryVertex {
  digest: string;
  name: string;
  state: VertexState;
  /** ms since the epoch */
  start: number;
  end: number;
  inputs: string[];
  /** Why a step that ran was not cached (the --explain text). */
  reason?: string;
  error?: string;
  logBytes: number;
}

/** The one record of a build, local or remote (kiln serve writes it into the tenant's state, as builds run). */
export interface HistoryRecord {
  id: string;
  /** `queued`: a kiln serve build waiting for its context or a build slot. */
  status: 'queued' | 'running' | 'completed' | 'failed' | 'canceled';
  started: string;
  ended?: string;
  /** Where it ran: `local`, or the kiln serve tenant. */
  origin: string;
  dockerfile: { name: string; digest: string; path?: string };
  context?: string;
  target?: string;
  buildArgs: Record<string, string>;
  platforms: string[];
  vertices: HistoryVertex[];
  /** Image digests and names written by the exporters. */
  results: { type: string; digest?: string; names?: string[]; dest?: string }[];
  cacheExports: string[];
  cacheImports: string[];
  error?: string;
  /** True when the event log reached its size cap and later output was dropped. */
  logsTruncated?: boolean;
  /** The process recording a running build, to tell a build in progress from one whose process died. */
  recorder?: RecorderProcess;
  /** kiln serve: the client that asked for the build, and what its context sync moved. */
  client?: string;
  sync?: ContextSync;
  /** A build asked for through BuildKit's API (kiln serve --buildkit-addr): its ref and request, as buildx shows them. */
  buildkit?: BuildkitRequest;
}

export interface BuildkitRequest {
  ref: string;
  frontend: string;
  frontendAttrs: Record<string, string>;
  exporters: { Type: string; Attrs: Record<string, string> }[];
}

export interface ContextSync {
  files: number;
  filesUploaded: number;
  bytesUploaded: number;
  filesReused: number;
}

/** A build not yet ended. */
export const inProgress = (r: HistoryRecord): boolean => r.status === 'running' || r.status === 'queued';

/** A process as the kernel names it: its pid and start time (a pid alone is reused), on its host. */
export interface RecorderProcess {
  host: string;
  pid: number;
  /** Start time in clock ticks since boot (/proc/PID/stat field 22), '' where unknown. */
  startTicks: string;
}

/** The start time of a process (field 22 of /proc/PID/stat), or undefined when there is no such process. */
function processStartTicks(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces or ')': split after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

export function thisProcess(): RecorderProcess {
  return { host: hostname(), pid: process.pid, startTicks: processStartTicks(process.pid) ?? '' };
}

/** True when the process that recorded a running build is known to be gone (killed, crashed, host rebooted). */
function recorderIsGone(p: RecorderProcess): boolean {
  if (p.host !== hostname()) return false; // a state dir shared between hosts: not ours to judge
  const ticks = processStartTicks(p.pid);
  return ticks === undefined || (p.startTicks !== '' && ticks !== p.startTicks);
}

export interface RetentionPolicy {
  keep: number;
  maxAgeMs: number;
}

/** KILN_HISTORY_KEEP (records, default 100) and KILN_HISTORY_MAX_AGE (e.g. 72h, 7d; default 7d). */
export function retentionFromEnv(env: NodeJS.ProcessEnv = process.env): RetentionPolicy {
  const keepText = env.KILN_HISTORY_KEEP;
  const keep = keepText === undefined || keepText === '' ? 100 : Number(keepText);
  if (!Number.isInteger(keep) || keep < 0) throw new UserError(`invalid KILN_HISTORY_KEEP "${keepText}": expected a number of builds`);
  const ageText = env.KILN_HISTORY_MAX_AGE;
  return { keep, maxAgeMs: ageText === undefined || ageText === '' ? 7 * 86_400_000 : parseDuration('KILN_HISTORY_MAX_AGE', ageText) };
}

/** Per build: at most this much of event log on disk. */
export const MAX_EVENT_LOG_BYTES = 4 * 1024 * 1024;

export class HistoryStore {
  readonly dir: string;

  constructor(stateRoot: string) {
    this.dir = join(stateRoot, 'history');
  }

  newId(): string {
    // Sortable by time, unique across processes.
    return `${Date.now().toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`;
  }

  write(r: HistoryRecord): void {
    mkdirSync(this.dir, { recursive: true });
    const tmp = join(this.dir, `.${r.id}.${process.pid}.tmp`);
    writeFileSync(tmp, JSON.stringify(r));
    renameSync(tmp, join(this.dir, `${r.id}.json`));
  }

  /** Appends events; false once the log is full (the rest is dropped). */
  appendEvents(id: string, events: ProgressEvent[]): boolean {
    const path = join(this.dir, `${id}.events.jsonl`);
    const size = existsSync(path) ? statSync(path).size : 0;
    const text = events.map((e) => JSON.stringify(e)).join('\n') + '\n';
    if (size + text.length > MAX_EVENT_LOG_BYTES) return false;
    mkdirSync(this.dir, { recursive: true });
    appendFileSync(path, text);
    return true;
  }

  ids(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => /^[0-9a-z]+\.json$/.test(f))
      .map((f) => f.slice(0, -5))
      .sort();
  }

  list(): HistoryRecord[] {
    return this.ids().flatMap((id) => {
      const r = this.tryGet(id);
      return r ? [r] : [];
    });
  }

  tryGet(id: string): HistoryRecord | undefined {
    let r: HistoryRecord;
    try {
      r = JSON.parse(readFileSync(join(this.dir, `${id}.json`), 'utf8')) as HistoryRecord;
    } catch {
      return undefined;
    }
    return this.settleAbandoned(r);
  }

  /**
   * A build whose kiln process died (kill -9, OOM, power loss) never wrote its end: whoever reads the
   * record next marks it failed, so it is not shown as running forever and retention can remove it.
   */
  private settleAbandoned(r: HistoryRecord): HistoryRecord {
    if (!inProgress(r) || !r.recorder || !recorderIsGone(r.recorder)) return r;
    const ended = this.lastEventTime(r.id) ?? Date.parse(r.started);
    const settled: HistoryRecord = {
      ...r,
      status: 'failed',
      ended: new Date(ended).toISOString(),
      error: `kiln stopped before the build finished (process ${r.recorder.pid} was killed or crashed)`,
    };
    delete settled.recorder;
    try {
      this.write(settled);
    } catch {
      // A read-only state dir: still report it as failed.
    }
    return settled;
  }

  /** Time of the last progress event of a build (ms), if its log has one. */
  private lastEventTime(id: string): number | undefined {
    const { events } = this.events(id);
    let last: number | undefined;
    for (const e of events) if (typeof (e as { time?: unknown }).time === 'number') last = Math.max(last ?? 0, (e as { time: number }).time);
    return last;
  }

  /** A record by id or unique id prefix (`kiln history inspect 0m3k`). */
  get(idOrPrefix: string): HistoryRecord {
    const ids = this.ids();
    const matches = idOrPrefix === 'latest' ? ids.slice(-1) : ids.filter((i) => i.startsWith(idOrPrefix));
    if (matches.length === 0) throw new UserError(`no build ${idOrPrefix} in the history (kiln history ls lists them)`);
    if (matches.length > 1) throw new UserError(`build id ${idOrPrefix} is ambiguous: ${matches.slice(0, 5).join(', ')}${matches.length > 5 ? ', …' : ''}`);
    const r = this.tryGet(matches[0]!);
    if (!r) throw new UserError(`build ${matches[0]} has an unreadable history record`);
    return r;
  }

  /** Events after byte `offset` of the log (for following a running build). */
  events(id: string, offset = 0): { events: ProgressEvent[]; offset: number } {
    const path = join(this.dir, `${id}.events.jsonl`);
    if (!existsSync(path)) return { events: [], offset };
    const buf = readFileSync(path);
    const end = buf.lastIndexOf(10) + 1;
    if (end <= offset) return { events: [], offset };
    const text = buf.subarray(offset, end).toString('utf8');
    return { events: text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as ProgressEvent), offset: end };
  }

  remove(id: string): void {
    rmSync(join(this.dir, `${id}.json`), { force: true });
    rmSync(join(this.dir, `${id}.events.jsonl`), { force: true });
  }

  /**
   * Keeps the newest `keep` records younger than `maxAgeMs`; running builds are kept. Runs after every
   * build, so it decides from the ids (their prefix is the start time) and reads only the records it may
   * remove.
   */
  prune(policy: RetentionPolicy, now = Date.now()): string[] {
    const ids = this.ids();
    const removed: string[] = [];
    ids.forEach((id, i) => {
      const tooMany = ids.length - i > policy.keep;
      const startedLongAgo = now - parseInt(id.slice(0, 9), 36) > policy.maxAgeMs;
      if (!tooMany && !startedLongAgo) return;
      const r = this.tryGet(id);
      if (!r || inProgress(r)) return;
      if (tooMany || now - Date.parse(r.ended ?? r.started) > policy.maxAgeMs) {
        this.remove(r.id);
        removed.push(r.id);
      }
    });
    return removed;
  }
}
