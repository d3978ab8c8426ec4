// Records one build into the history while it runs: the vertices' states and times from its progress
// events, the events themselves (flushed a few times a second, so a dashboard can follow), and at the end
// the outcome, the exporters' results and why each step that ran was not cached.
import { createHash } from 'node:crypto';
import type { Definition } from '../../../solver/graph/ops.js';
import type { ProgressEvent } from '../../../solver/progress.js';
import { HistoryStore, retentionFromEnv, thisProcess, type BuildkitRequest, type HistoryRecord, type HistoryVertex, type RetentionPolicy } from './store.js';

export interface RecorderStart {
  origin: string;
  dockerfile: { name: string; text: string; path?: string };
  context?: string;
  target?: string;
  buildArgs?: Record<string, string>;
  platforms: string[];
  cacheImports: string[];
  cacheExports: string[];
  /** kiln serve: recorded while the build waits (for its context, a slot) as `queued`; the client's name. */
  queued?: boolean;
  client?: string;
  /** kiln serve --buildkit-addr: the BuildKit request this build answers. */
  buildkit?: BuildkitRequest;
  /** Which records to keep after this one ends (default: KILN_HISTORY_KEEP / KILN_HISTORY_MAX_AGE). */
  retention?: RetentionPolicy;
}

/** What the engine learned of a build, kept until the recorder's owner finishes it. */
export interface BuildOutcome {
  def?: Definition;
  explanations?: { digest: string; reason: string }[];
  results?: HistoryRecord['results'];
}

export class BuildRecorder {
  readonly record: HistoryRecord;
  private readonly vertices = new Map<string, HistoryVertex>();
  private readonly settled = new Set<string>();
  private pending: ProgressEvent[] = [];
  private timer?: NodeJS.Timeout;
  private full = false;
  private ended = false;
  private noted: BuildOutcome = {};
  private readonly retention?: RetentionPolicy;

  constructor(
    private readonly store: HistoryStore,
    start: RecorderStart,
  ) {
    this.record = {
      id: store.newId(),
      status: start.queued ? 'queued' : 'running',
      started: new Date().toISOString(),
      origin: start.origin,
      dockerfile: { name: start.dockerfile.name, digest: `sha256:${createHash('sha256').update(start.dockerfile.text).digest('hex')}`, ...(start.dockerfile.path ? { path: start.dockerfile.path } : {}) },
      ...(start.context ? { context: start.context } : {}),
      ...(start.target ? { target: start.target } : {}),
      buildArgs: start.buildArgs ?? {},
      platforms: start.platforms,
      vertices: [],
      results: [],
      cacheExports: start.cacheExports,
      cacheImports: start.cacheImports,
      recorder: thisProcess(),
      ...(start.client ? { client: start.client } : {}),
      ...(start.buildkit ? { buildkit: start.buildkit } : {}),
    };
    this.retention = start.retention;
    store.write(this.record);
  }

  /** A queued build starts running. */
  running(): void {
    if (this.ended || this.record.status === 'running') return;
    this.record.status = 'running';
    this.store.write(this.record);
  }

  /** Keeps what the engine learned for finish(), when the recorder belongs to the engine's host (kiln serve). */
  note(outcome: BuildOutcome): void {
    this.noted = { ...this.noted, ...outcome };
  }

  /** The progress sink to chain in front of the build's own. */
  observe(ev: ProgressEvent): void {
    if ('digest' in ev) {
      let v = this.vertices.get(ev.digest);
      if (!v && 'name' in ev) {
        v = { digest: ev.digest, name: ev.name, state: 'ran', start: ev.time, end: ev.time, inputs: [], logBytes: 0 };
        this.vertices.set(ev.digest, v);
      }
      if (v) {
        switch (ev.type) {
          case 'vertex.started':
            v.state = 'ran';
            v.start = v.end = ev.time;
            break;
          case 'vertex.cached':
            v.state = 'cached';
            v.start = v.end = ev.time;
            this.settled.add(ev.digest);
            break;
          case 'vertex.completed':
            v.end = ev.time;
            this.settled.add(ev.digest);
            break;
          case 'vertex.failed':
            this.settled.add(ev.digest);
            v.state = 'failed';
            v.end = ev.time;
            v.error = ev.error;
            break;
          case 'vertex.log':
            v.logBytes += ev.data.length;
            break;
          case 'vertex.explain':
            v.reason = ev.reason;
            break;
        }
      }
    }
    if (this.full) return;
    this.pending.push(ev);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), 250);
      this.timer.unref();
    }
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0 || this.full) return;
    if (!this.store.appendEvents(this.record.id, this.pending)) {
      this.full = true;
      this.record.logsTruncated = true;
    }
    this.pending = [];
  }

  /** Writes the build's end; only the first call counts. */
  finish(end: BuildOutcome & { status: HistoryRecord['status']; error?: string }): void {
    if (this.ended) return;
    this.ended = true;
    const outcome = { ...this.noted, ...Object.fromEntries(Object.entries(end).filter(([, v]) => v !== undefined)) } as BuildOutcome & { status: HistoryRecord['status']; error?: string };
    this.flush();
    const now = Date.now();
    for (const e of outcome.explanations ?? []) {
      const v = this.vertices.get(e.digest);
      if (v) v.reason = e.reason;
    }
    const inputs = new Map(outcome.def?.vertices.map((v) => [v.digest, v.inputs.map((i) => i.digest)]) ?? []);
    for (const v of this.vertices.values()) {
      v.inputs = inputs.get(v.digest) ?? v.inputs;
      // A step still marked running when the build stopped was cut short.
      if (v.state === 'ran' && !this.settled.has(v.digest)) {
        v.state = 'canceled';
        v.end = now;
      }
    }
    delete this.record.recorder;
    Object.assign(this.record, {
      status: outcome.status,
      ended: new Date(now).toISOString(),
      vertices: [...this.vertices.values()].sort((a, b) => a.start - b.start),
      results: outcome.results ?? [],
      ...(outcome.error ? { error: outcome.error } : {}),
    });
    this.store.write(this.record);
    this.store.prune(this.retention ?? retentionFromEnv());
  }
}
