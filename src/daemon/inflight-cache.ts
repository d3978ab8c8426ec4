// Cross-build dedup of identical vertices: the solver dedups within one solve; this makes concurrent
// builds of one tenant share work too. A vertex is "in flight" from the moment a build starts executing
// it (the solver's vertex.started event, which carries its cache key) until that build records the result
// (put) or the vertex fails or the build ends. A lookup that misses while the key is in flight waits for
// it and looks again, so the second build gets a cache hit instead of running the step. Keys are claimed
// only by executing vertices (their inputs are done), so a wait never waits on a waiter: no deadlock.
import type { Vertex } from '../../solver/graph/ops.js';
import type { Ref } from '../../solver/refs.js';
import type { ResultCache } from '../../solver/solver.js';
import type { ProgressEvent } from '../../solver/progress.js';

interface Flight {
  owner: object;
  done: Promise<void>;
  release: () => void;
}

/** Keys being computed by some build, shared by all builds of one cache namespace. */
export class InflightTable {
  readonly flights = new Map<string, Flight>();
  /** Lookups that waited for another build (for tests and the load test's report). */
  waits = 0;

  claim(key: string, owner: object): void {
    if (this.flights.has(key)) return;
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    this.flights.set(key, { owner, done, release });
  }

  release(key: string, owner: object): void {
    const f = this.flights.get(key);
    if (f && f.owner === owner) {
      this.flights.delete(key);
      f.release();
    }
  }
}

export class InflightResultCache implements ResultCache {
  private readonly keyByDigest = new Map<string, string>();
  private readonly owned = new Set<string>();

  constructor(
    private readonly inner: ResultCache,
    private readonly table: InflightTable,
    private readonly signal?: AbortSignal,
  ) {
    // Optional hooks of the inner cache (content memo, rejecting a hit…) pass straight through.
    const proto = Object.getPrototypeOf(inner) as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(proto)) {
      const fn = proto[name];
      if (name !== 'constructor' && !(name in this) && typeof fn === 'function') (this as unknown as Record<string, unknown>)[name] = (fn as (...a: unknown[]) => unknown).bind(inner);
    }
  }

  async get(key: string, vertex: Vertex): Promise<Ref | undefined> {
    for (;;) {
      const hit = await this.inner.get(key, vertex);
      if (hit) return hit;
      const f = this.table.flights.get(key);
      if (!f || f.owner === this) return undefined;
      this.table.waits++;
      await Promise.race([f.done, aborted(this.signal)]);
      this.signal?.throwIfAborted();
    }
  }

  async put(key: string, vertex: Vertex, ref: Ref): Promise<void> {
    try {
      await this.inner.put(key, vertex, ref);
    } finally {
      this.release(key);
    }
  }

  abandon(key: string): void {
    this.release(key);
  }

  /** Watches the build's progress events: a started vertex claims its key, a failed one gives it up. */
  observe(ev: ProgressEvent): void {
    if (ev.type === 'vertex.started' && ev.key) {
      this.keyByDigest.set(ev.digest, ev.key);
      if (!this.table.flights.has(ev.key)) {
        this.table.claim(ev.key, this);
        this.owned.add(ev.key);
      }
    } else if (ev.type === 'vertex.failed') {
      const k = this.keyByDigest.get(ev.digest);
      if (k) this.release(k);
    }
  }

  /** At the end of the build: whatever it still holds (a canceled step) is given up. */
  releaseAll(): void {
    for (const k of [...this.owned]) this.release(k);
  }

  private release(key: string): void {
    this.owned.delete(key);
    this.table.release(key, this);
  }
}

function aborted(signal?: AbortSignal): Promise<void> {
  if (!signal) return new Promise(() => {});
  return new Promise((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
}
