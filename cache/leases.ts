// Leases: what running builds use, so that GC can run while they run. A build takes a lease when it
// starts and releases it when it ends. The lease holds the layer dirs and blobs of the cache records the
// build was served from (their records may be pruned meanwhile; their files stay until the lease ends),
// and everything created since the oldest running build started (new layers, unpacked and fetched
// layers, blobs: their inode change time is newer) is left alone without being named.
import { realpathSync } from 'node:fs';

export class Lease {
  readonly startedAt = Date.now();
  readonly dirs = new Set<string>();
  readonly blobs = new Set<string>();
  /** Bytes of the layers this build made and recorded: its own new data. */
  newBytes = 0;

  constructor(private readonly onRelease: (l: Lease) => void) {}

  /** Holds a layer dir (by real path) and, when known, its blob. */
  hold(dir: string, blob?: string): void {
    try {
      this.dirs.add(realpathSync(dir));
    } catch {
      // gone already: nothing to hold
    }
    if (blob) this.blobs.add(blob);
  }

  release(): void {
    this.onRelease(this);
  }
}

export class Leases {
  private readonly active = new Set<Lease>();
  /** New data of the last builds that finished, to make room for builds that run at once. */
  private readonly recent: number[] = [];

  begin(): Lease {
    const lease = new Lease((l) => {
      if (!this.active.delete(l)) return;
      this.recent.push(l.newBytes);
      if (this.recent.length > 8) this.recent.shift();
    });
    this.active.add(lease);
    return lease;
  }

  get running(): number {
    return this.active.size;
  }

  /**
   * Files whose inode changed at or after this time (ms) may belong to a running build. A second of
   * slack covers a clock tick between a build's start and its first file.
   */
  get protectedSince(): number {
    let oldest = Infinity;
    for (const l of this.active) oldest = Math.min(oldest, l.startedAt);
    return oldest - 1000;
  }

  /**
   * Room GC keeps free while several builds run, so that together they overshoot the limit by at most one
   * build's new data: every running build but one is expected to add as much as the largest recent build
   * (or as much as it has already added, if more).
   */
  headroom(): number {
    if (this.active.size <= 1) return 0;
    const typical = Math.max(0, ...this.recent);
    const expected = [...this.active].map((l) => Math.max(typical - l.newBytes, 0)).sort((a, b) => b - a);
    return expected.slice(1).reduce((a, b) => a + b, 0);
  }

  heldDirs(): Set<string> {
    return new Set([...this.active].flatMap((l) => [...l.dirs]));
  }

  heldBlobs(): Set<string> {
    return new Set([...this.active].flatMap((l) => [...l.blobs]));
  }
}
