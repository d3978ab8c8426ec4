// Cross-build dedup of identical vertices: the solver dedups within one solve; this makes concurrent
// builds of one tenant share work too. A build that misses a key claims it ("in flight") until it records
// the result (put), the vertex fails, or the build ends. Another build whose lookup of the same key misses
// while it is in flight waits for it and looks again, getting a cache hit instead of running the step.
//
// No deadlock: a claimant needs only the key's inputs, which are strictly lower in the graph of cache
// keys, so every chain of waits goes down that DAG and ends at a step that needs nothing. A waiting lookup
// holds no solver slot (the solver queues only executing vertices).
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
      // Build contexts are read in place, never recorded: nothing to share.
      if (vertex.op.kind === 'source' && vertex.op.identifier.startsWith('local://')) return undefined;
      const f = this.table.flights.get(key);
      if (!f) {
        // Nothing awaited between the miss above and this claim: no other build can slip in between.
        this.table.claim(key, this);
        this.owned.add(key);
        this.keyByDigest.set(vertex.digest, key);
        return undefined;
      }
      if (f.owner === this) return undefined;
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

  /** Watches the build's progress events: a failed vertex gives its key up at once. */
  observe(ev: ProgressEvent): void {
    if (ev.type === 'vertex.failed') {
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
