// The builds of the BuildKit API by their ref. buildx opens Status, Solve and the gateway calls of one
// build concurrently, in any order: each finds (or creates) the same entry here. A build's status
// messages are buffered for a Status call that comes late; its end closes every Status stream.
import { StatusTranslator, type StatusResponse } from './progress.js';
import type { BuildRecorder } from '../engine/history/recorder.js';

export interface SolveInfo {
  ref: string;
  session: string;
  exporters: { Type: string; Attrs: Record<string, string> }[];
  frontendAttrs: Record<string, string>;
  cacheImports: { Type: string; Attrs: Record<string, string> }[];
  cacheExports: { Type: string; Attrs: Record<string, string> }[];
  entitlements: string[];
  tenant: string;
  abort: AbortController;
  /** The build's record in the tenant's history (none for buildx's internal builds). */
  recorder?: BuildRecorder;
}

export class BuildEntry {
  private readonly backlog: StatusResponse[] = [];
  private readonly listeners = new Set<(s: StatusResponse | undefined) => void>();
  ended = false;
  solve: SolveInfo | undefined;
  private solveWaiters: ((s: SolveInfo) => void)[] = [];
  /** Set by the gateway's Return: the build function's outcome. */
  returned: Promise<{ error?: string; code?: number }>;
  resolveReturn!: (r: { error?: string; code?: number }) => void;
  /** kiln's progress events in BuildKit's words, with the step counts the history shows. */
  readonly translator = new StatusTranslator();
  /** File content bytes this build's syncs took from the client. */
  syncBytes: number | undefined;
  /** The error of this build's own solve, as kiln said it (the client echoes it back in Return with a prefix). */
  solveError: string | undefined;
  /** What the exporters reported (digest, image name). */
  exporterResponse: Record<string, string> = {};
  createdAt = Date.now();

  constructor(readonly ref: string) {
    this.returned = new Promise((r) => (this.resolveReturn = r));
  }

  get counts() {
    return { ...this.translator.counts };
  }

  emit(s: StatusResponse): void {
    if (this.ended) return;
    this.backlog.push(s);
    for (const l of this.listeners) l(s);
  }

  /** Replays what was sent so far, then follows; undefined marks the end. */
  subscribe(fn: (s: StatusResponse | undefined) => void): () => void {
    for (const s of this.backlog) fn(s);
    if (this.ended) {
      fn(undefined);
      return () => {};
    }
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const l of this.listeners) l(undefined);
    this.listeners.clear();
  }

  setSolve(s: SolveInfo): void {
    this.solve = s;
    for (const w of this.solveWaiters.splice(0)) w(s);
  }

  /** The Control.Solve of this build; the gateway's calls may arrive first. */
  waitSolve(timeoutMs: number): Promise<SolveInfo | undefined> {
    if (this.solve) return Promise.resolve(this.solve);
    return new Promise((resolve) => {
      const w = (s: SolveInfo) => {
        clearTimeout(t);
        resolve(s);
      };
      const t = setTimeout(() => {
        this.solveWaiters = this.solveWaiters.filter((x) => x !== w);
        resolve(undefined);
      }, timeoutMs);
      this.solveWaiters.push(w);
    });
  }
}

export class BuildRegistry {
  private readonly builds = new Map<string, BuildEntry>();

  get(ref: string): BuildEntry {
    let b = this.builds.get(ref);
    if (!b) {
      b = new BuildEntry(ref);
      this.builds.set(ref, b);
      // An entry nobody finishes (a Status for a build that never came) goes after a while.
      const entry = b;
      setTimeout(() => {
        if (!entry.solve) {
          entry.end();
          if (this.builds.get(ref) === entry) this.builds.delete(ref);
        }
      }, 60_000).unref();
    }
    return b;
  }

  /** Ends a build's status and forgets it a little later (a late Status call still gets its messages). */
  finish(ref: string): void {
    const b = this.builds.get(ref);
    if (!b) return;
    b.end();
    setTimeout(() => {
      if (this.builds.get(ref) === b) this.builds.delete(ref);
    }, 30_000).unref();
  }

  /** A build that runs now through this API (its progress is followed live, not read from the history). */
  isLive(ref: string): boolean {
    const b = this.builds.get(ref);
    return !!b && !!b.solve && !b.ended;
  }

  running(): BuildEntry[] {
    return [...this.builds.values()].filter((b) => b.solve && !b.ended);
  }
}
